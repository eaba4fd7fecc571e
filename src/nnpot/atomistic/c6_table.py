"""Built-in dispersion coefficients: C6 (eV·Å⁶), C8/C6 (Å²), damping lengths, per element.

Sources, in order of precedence (the first table that has an element is used):

1. Rare gases He, Ne, Ar, Kr, Xe: K. T. Tang and J. P. Toennies, J. Chem. Phys. 118, 4976
   (2003), Table I: C6, C8 (atomic units) and the Born–Mayer exponent b (a₀⁻¹) that sets
   their damping f_2n(b r). Static polarizabilities (for the combination rule) from
   X. Chu and A. Dalgarno, J. Chem. Phys. 121, 4083 (2004) (He–Kr) and P. Schwerdtfeger
   and J. K. Nagle, Mol. Phys. 117, 1200 (2019) (Xe: 27.32 a₀³).
2. Free-atom α (a₀³) and C6 (Eₕ a₀⁶) from time-dependent DFT: X. Chu and A. Dalgarno,
   J. Chem. Phys. 121, 4083 (2004) (the reference values of A. Tkatchenko and M. Scheffler,
   Phys. Rev. Lett. 102, 073005 (2009)).
3. The remaining elements H–Xe: S. Grimme, J. Comput. Chem. 27, 1787 (2006) (DFT-D2), a
   London-formula estimate C6 = 0.05 N I_p α (J nm⁶ mol⁻¹); no polarizability.

Elements in none of these tables raise :class:`~nnpot.errors.ConfigError` (give a number).

Unlike pairs (combination rules):

* C6_ij = 2 C6_i C6_j / ((α_j/α_i) C6_i + (α_i/α_j) C6_j) when both α are known
  (K. T. Tang, Phys. Rev. 177, 108 (1969); eq. 9 of Tkatchenko–Scheffler 2009), otherwise
  the geometric mean √(C6_i C6_j) (Grimme 2006, eq. 4).
* C8_ij = C6_ij √(q_i q_j) with q = C8/C6, Grimme's D3 rule C8_ij = 3 C6_ij √(Q_i Q_j)
  (S. Grimme et al., J. Chem. Phys. 132, 154104 (2010)).

Length scales. Tang–Toennies damping uses b_ij = √(b_i b_j) (our choice; the damping only
acts inside the short-range network's cutoff, where the network absorbs its details);
Becke–Johnson damping uses the critical radius R0_ij = √(C8_ij/C6_ij) = (q_i q_j)^{1/4}
(A. D. Becke and E. R. Johnson, J. Chem. Phys. 123, 154101 (2005); a1 = 1, a2 = 0).
Where TT2003 gives no b and C8, both are estimated from the van der Waals radius R (ASE's
``vdw_radii``, mostly A. Bondi, J. Phys. Chem. 68, 441 (1964); where it has none, S. Alvarez,
Dalton Trans. 42, 8617 (2013), ASE's ``vdw_alvarez``):  b = κ/(2R) and
q = (λ·2R)², where κ = mean of b·2R and λ = mean of √(C8/C6)/(2R) over the five rare
gases (κ ≈ 14.0, λ ≈ 0.70: TT2003 potentials have b·Rₑ ≈ 14 and √(C8/C6) ≈ 0.7 Rₑ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers, vdw_radii
from ase.data.vdw_alvarez import vdw_radii as alvarez_radii
from ase.units import Bohr, Hartree, kJ, mol

from nnpot.errors import ConfigError

AU_C6 = Hartree * Bohr**6  # eV·Å⁶ per Eₕ a₀⁶
AU_C8 = Hartree * Bohr**8
D2_C6 = kJ / 1000 / mol * 1e6  # eV·Å⁶ per J nm⁶ mol⁻¹

#: TT2003 Table I: C6 (Eₕ a₀⁶), C8 (Eₕ a₀⁸), b (a₀⁻¹); α (a₀³) as cited above.
TT2003 = {
    "He": (1.461, 14.11, 2.523, 1.38),
    "Ne": (6.383, 90.34, 2.458, 2.67),
    "Ar": (64.30, 1623.0, 2.031, 11.1),
    "Kr": (129.6, 4187.0, 1.865, 16.7),
    "Xe": (285.9, 12810.0, 1.681, 27.32),
}

#: Chu & Dalgarno 2004: α (a₀³), C6 (Eₕ a₀⁶) of free atoms (H: exact α, C6).
CHU_DALGARNO_2004 = {
    "H": (4.5, 6.5), "He": (1.38, 1.42), "Li": (164, 1392), "Be": (38, 227),
    "B": (21, 99.5), "C": (12, 46.6), "N": (7.4, 24.2), "O": (5.4, 15.6), "F": (3.8, 9.52),
    "Ne": (2.67, 6.20), "Na": (163, 1518), "Mg": (71, 626), "Al": (60, 528),
    "Si": (37, 305), "P": (25, 185), "S": (19.6, 134), "Cl": (15, 94.6), "Ar": (11.1, 64.2),
    "Ca": (160, 2163), "Sc": (120, 1383), "Ti": (98, 1044), "V": (84, 832), "Cr": (78, 602),
    "Mn": (63, 552), "Fe": (56, 482), "Co": (50, 408), "Ni": (48, 373), "Cu": (42, 253),
    "Zn": (40, 284), "As": (29, 246), "Se": (25, 210), "Br": (20, 162), "Kr": (16.7, 130),
    "Sr": (199, 3175), "Te": (40, 445), "I": (35, 385),
}

#: Grimme 2006 (DFT-D2) Table 1: C6 in J nm⁶ mol⁻¹ (Sc–Zn share 10.80, Y–Cd 24.67).
GRIMME_D2 = {
    "H": 0.14, "He": 0.08, "Li": 1.61, "Be": 1.61, "B": 3.13, "C": 1.75, "N": 1.23,
    "O": 0.70, "F": 0.75, "Ne": 0.63, "Na": 5.71, "Mg": 5.71, "Al": 10.79, "Si": 9.23,
    "P": 7.84, "S": 5.57, "Cl": 5.07, "Ar": 4.61, "K": 10.80, "Ca": 10.80,
    **{e: 10.80 for e in ("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")},
    "Ga": 16.99, "Ge": 17.10, "As": 16.37, "Se": 12.64, "Br": 12.47, "Kr": 12.01,
    "Rb": 24.67, "Sr": 24.67,
    **{e: 24.67 for e in ("Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd")},
    "In": 37.32, "Sn": 38.71, "Sb": 38.44, "Te": 31.74, "I": 31.50, "Xe": 29.99,
}


def _radius(symbol: str) -> float:
    """Van der Waals radius (Å): ASE's Bondi-based set, else Alvarez's; NaN if neither."""
    z = atomic_numbers[symbol]
    r = float(vdw_radii[z])
    return r if np.isfinite(r) else float(alvarez_radii[z])


def _rare_gas_constants() -> tuple[float, float]:
    """κ = ⟨b·2R⟩ and λ = ⟨√(C8/C6)/(2R)⟩ over the TT2003 rare gases (dimensionless)."""
    kappa, lam = [], []
    for el, (c6, c8, b, _) in TT2003.items():
        two_r = 2 * _radius(el)
        kappa.append(b / Bohr * two_r)
        lam.append(np.sqrt(c8 / c6) * Bohr / two_r)
    return float(np.mean(kappa)), float(np.mean(lam))


KAPPA, LAMBDA = _rare_gas_constants()


@dataclass(frozen=True)
class ElementDispersion:
    """One element's dispersion data.

    c6: homonuclear C6 (eV·Å⁶); alpha: static polarizability (a₀³) or None;
    c8_ratio: q = C8/C6 (Å²); b: Tang–Toennies damping exponent (Å⁻¹); source: citation.
    """

    symbol: str
    c6: float
    alpha: float | None
    c8_ratio: float
    b: float
    source: str


def _estimated_lengths(symbol: str) -> tuple[float, float]:
    r = _radius(symbol)
    if not np.isfinite(r):
        raise ConfigError(f"[model.dispersion]: no van der Waals radius for element {symbol!r},"
                          " so no damping length can be estimated")
    return (LAMBDA * 2 * r) ** 2, KAPPA / (2 * r)


def element_dispersion(symbol: str, c6: float | None = None) -> ElementDispersion:
    """Dispersion data of ``symbol`` from the tables (``c6`` in eV·Å⁶ overrides the C6).

    Raises :class:`ConfigError` for an unknown symbol or an element in no table (unless
    ``c6`` is given).
    """
    if symbol not in atomic_numbers:
        raise ConfigError(f"[model.dispersion]: {symbol!r} is not a chemical symbol")
    if symbol in TT2003:
        c6_au, c8_au, b_au, alpha = TT2003[symbol]
        rec = ElementDispersion(symbol, c6_au * AU_C6, alpha, (c8_au / c6_au) * Bohr**2,
                                b_au / Bohr, "Tang & Toennies, JCP 118, 4976 (2003)")
    elif symbol in CHU_DALGARNO_2004:
        alpha, c6_au = CHU_DALGARNO_2004[symbol]
        q, b = _estimated_lengths(symbol)
        rec = ElementDispersion(symbol, c6_au * AU_C6, float(alpha), q, b,
                                "Chu & Dalgarno, JCP 121, 4083 (2004)")
    elif symbol in GRIMME_D2:
        q, b = _estimated_lengths(symbol)
        rec = ElementDispersion(symbol, GRIMME_D2[symbol] * D2_C6, None, q, b,
                                "Grimme, J. Comput. Chem. 27, 1787 (2006)")
    elif c6 is not None:
        q, b = _estimated_lengths(symbol)
        rec = ElementDispersion(symbol, float(c6), None, q, b, "user")
    else:
        raise ConfigError(
            f"[model.dispersion]: no tabulated C6 for element {symbol!r} (the built-in tables "
            "cover H–Xe); give c6 = <number in eV·Å⁶> in [model.dispersion]")
    if c6 is not None:
        rec = ElementDispersion(symbol, float(c6), rec.alpha, rec.c8_ratio, rec.b, "user")
    return rec


@dataclass(frozen=True)
class PairTable:
    """Pair coefficients for elements ``e_0..e_{n-1}`` (symmetric (n, n) arrays).

    c6 (eV·Å⁶), c8 (eV·Å⁸), b (Å⁻¹, Tang–Toennies), r0 (Å, Becke–Johnson), sources.
    """

    elements: tuple[str, ...]
    c6: np.ndarray
    c8: np.ndarray
    b: np.ndarray
    r0: np.ndarray
    sources: tuple[str, ...]


def combine_c6(c6_i: float, c6_j: float, alpha_i: float | None, alpha_j: float | None
               ) -> float:
    """C6 of an unlike pair (eV·Å⁶): Tang's rule with polarizabilities, else geometric mean."""
    if alpha_i and alpha_j:
        return 2 * c6_i * c6_j / (alpha_j / alpha_i * c6_i + alpha_i / alpha_j * c6_j)
    return float(np.sqrt(c6_i * c6_j))


def pair_table(elements, c6: str | float = "table") -> PairTable:
    """Pair coefficients of ``elements``; ``c6`` = "table" (or "learn": the table is the
    initial value) or a number (eV·Å⁶) given to every element."""
    if isinstance(c6, str) and c6 not in ("table", "learn"):
        raise ConfigError(f"[model.dispersion] c6 = {c6!r}: use \"table\", \"learn\" or a "
                          "number in eV·Å⁶")
    value = None if isinstance(c6, str) else float(c6)
    if value is not None and not (np.isfinite(value) and value > 0):
        raise ConfigError(f"[model.dispersion] c6 = {value}: C6 must be positive (eV·Å⁶)")
    recs = [element_dispersion(e, value) for e in elements]
    n = len(recs)
    out = {k: np.zeros((n, n)) for k in ("c6", "c8", "b", "r0")}
    for i, a in enumerate(recs):
        for j, b in enumerate(recs):
            c = a.c6 if i == j else combine_c6(a.c6, b.c6, a.alpha, b.alpha)
            q = np.sqrt(a.c8_ratio * b.c8_ratio)
            out["c6"][i, j] = c
            out["c8"][i, j] = c * q
            out["b"][i, j] = np.sqrt(a.b * b.b)
            out["r0"][i, j] = np.sqrt(q)
    return PairTable(tuple(elements), out["c6"], out["c8"], out["b"], out["r0"],
                     tuple(r.source for r in recs))
