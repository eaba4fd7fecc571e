"""Tang–Toennies potentials of the homonuclear rare-gas dimers He₂, Ne₂, Ar₂, Kr₂, Xe₂.

Source: K. T. Tang and J. P. Toennies, "The van der Waals potentials between all the rare
gas atoms from He to Rn", J. Chem. Phys. 118, 4976 (2003), Table I (potential parameters,
atomic units). The model is

    V(R) = A exp(-b R) - Σ_{n=3}^{5} f_{2n}(b R) C_{2n} / R^{2n},
    f_{2n}(x) = 1 - exp(-x) Σ_{k=0}^{2n} x^k / k!,

a Born–Mayer repulsion plus the damped dispersion series through C₁₀ (Tang–Toennies 1984
damping, J. Chem. Phys. 80, 3726). With the tabulated A, b, C₆, C₈, C₁₀ the series truncated
at C₁₀ reproduces the paper's well depths and positions (e.g. Ar: Rₑ = 7.10 a₀ = 3.757 Å,
Dₑ = 4.54·10⁻⁴ Eₕ = 143 K = 12.4 meV); extending it with C₁₂..C₁₆ from the recursion
C_{2n} = C_{2n-6} (C_{2n-2}/C_{2n-4})³ deepens the Ar well to ~200 K, so those terms are not
part of this parameter set (see README.md).

Everything public is in eV and Å: ``tang_toennies(r, gas)`` returns V in eV (0 for separated
atoms), ``tang_toennies_derivative`` returns dV/dr in eV/Å, ``c6_ev_angstrom6`` returns C₆ in
eV·Å⁶. The parameters themselves are kept in atomic units (Eₕ, a₀) as published.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np
from ase.units import Bohr, Hartree, kB
from scipy.optimize import minimize_scalar

from nnpot.errors import InputError

__all__ = [
    "GASES",
    "PARAMETERS",
    "TTParameters",
    "c6_ev_angstrom6",
    "dispersion_coefficients_ev",
    "minimum",
    "tang_toennies",
    "tang_toennies_derivative",
]


@dataclass(frozen=True)
class TTParameters:
    """One dimer's Tang–Toennies parameters, atomic units as in TT2003 Table I.

    ``A`` in Eₕ, ``b`` in a₀⁻¹, ``C6``/``C8``/``C10`` in Eₕ a₀⁶ / a₀⁸ / a₀¹⁰.
    ``Re_bohr`` and ``De_kelvin`` are the reference well position and depth the model
    was built to reproduce (TT2003), used only to check this implementation.
    """

    A: float
    b: float
    C6: float
    C8: float
    C10: float
    Re_bohr: float
    De_kelvin: float


#: TT2003 Table I (A, b, C6, C8, C10 in atomic units) and the well parameters (Re in a0,
#: De in K) the model reproduces. Provenance of each number: see README.md.
PARAMETERS: dict[str, TTParameters] = {
    "He": TTParameters(A=41.96, b=2.523, C6=1.461, C8=14.11, C10=183.6,
                       Re_bohr=5.608, De_kelvin=10.98),
    "Ne": TTParameters(A=199.5, b=2.458, C6=6.383, C8=90.34, C10=1536.0,
                       Re_bohr=5.841, De_kelvin=42.25),
    "Ar": TTParameters(A=748.3, b=2.031, C6=64.30, C8=1623.0, C10=49060.0,
                       Re_bohr=7.10, De_kelvin=143.2),
    "Kr": TTParameters(A=832.4, b=1.865, C6=129.6, C8=4187.0, C10=155500.0,
                       Re_bohr=7.579, De_kelvin=201.2),
    "Xe": TTParameters(A=951.8, b=1.681, C6=285.9, C8=12810.0, C10=619800.0,
                       Re_bohr=8.247, De_kelvin=282.8),
}

GASES: tuple[str, ...] = tuple(PARAMETERS)


def _params(gas: str) -> TTParameters:
    try:
        return PARAMETERS[gas]
    except KeyError:
        raise InputError(
            f"Unknown rare gas {gas!r}; choose one of {', '.join(GASES)}."
        ) from None


def _damping(n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f_n(x) = 1 - e^{-x} Σ_{k=0}^{n} x^k/k! and its derivative e^{-x} x^n / n!."""
    s = np.zeros_like(x)
    term = np.ones_like(x)
    for k in range(n + 1):
        if k > 0:
            term = term * x / k
        s = s + term
    ex = np.exp(-x)
    return 1.0 - ex * s, ex * x**n / factorial(n)


def _as_bohr(r_angstrom) -> np.ndarray:
    r = np.asarray(r_angstrom, dtype=float)
    if not np.all(np.isfinite(r)) or np.any(r <= 0.0):
        raise InputError("Distances must be finite and positive (in Å).")
    return r / Bohr


def tang_toennies(r_angstrom, gas: str):
    """Tang–Toennies dimer energy V(r) in eV at separation ``r_angstrom`` (Å).

    V → 0 as r → ∞ (separated atoms are the zero of energy). Accepts a scalar or an array;
    returns the same shape.
    """
    p = _params(gas)
    R = _as_bohr(r_angstrom)
    x = p.b * R
    v = p.A * np.exp(-x)
    for n2, c in ((6, p.C6), (8, p.C8), (10, p.C10)):
        f, _ = _damping(n2, x)
        v = v - f * c / R**n2
    out = v * Hartree
    return float(out) if np.ndim(out) == 0 else out


def tang_toennies_derivative(r_angstrom, gas: str):
    """dV/dr of :func:`tang_toennies` in eV/Å (the force on atom 2 along r̂₁₂ is −dV/dr).

    dV/dR = −A b e^{−bR} − Σ C_{2n} [b f'_{2n}(bR) R^{−2n} − 2n f_{2n}(bR) R^{−2n−1}].
    """
    p = _params(gas)
    R = _as_bohr(r_angstrom)
    x = p.b * R
    dv = -p.A * p.b * np.exp(-x)
    for n2, c in ((6, p.C6), (8, p.C8), (10, p.C10)):
        f, df = _damping(n2, x)
        dv = dv - c * (p.b * df / R**n2 - n2 * f / R ** (n2 + 1))
    out = dv * Hartree / Bohr
    return float(out) if np.ndim(out) == 0 else out


def dispersion_coefficients_ev(gas: str) -> dict[int, float]:
    """C₆, C₈, C₁₀ of ``gas`` in eV·Å⁶, eV·Å⁸, eV·Å¹⁰ (keys 6, 8, 10)."""
    p = _params(gas)
    return {n: c * Hartree * Bohr**n for n, c in ((6, p.C6), (8, p.C8), (10, p.C10))}


def c6_ev_angstrom6(gas: str) -> float:
    """The London coefficient C₆ of ``gas`` in eV·Å⁶ (V ≈ −C₆/r⁶ at large r)."""
    return dispersion_coefficients_ev(gas)[6]


def minimum(gas: str) -> tuple[float, float]:
    """Position (Å) and depth (eV, positive) of the model's potential well, found numerically."""
    p = _params(gas)
    lo, hi = 0.8 * p.Re_bohr * Bohr, 1.25 * p.Re_bohr * Bohr
    res = minimize_scalar(lambda r: tang_toennies(r, gas), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-10})
    return float(res.x), float(-res.fun)


def published_well(gas: str) -> tuple[float, float]:
    """Reference well position (Å) and depth (eV) that TT2003 reports for ``gas``."""
    p = _params(gas)
    return p.Re_bohr * Bohr, p.De_kelvin * kB
