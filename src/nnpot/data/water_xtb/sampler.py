"""A cheap flexible-water force field used only to *sample* configurations for xTB labels.

Intermolecular part: TIP3P (W. L. Jorgensen et al., J. Chem. Phys. 79, 926 (1983)) point
charges q_H = 0.417 e, q_O = −0.834 e and the O–O Lennard-Jones σ, ε, taken from
``ase.calculators.tip3p``; each molecule pair interacts through

    E_mk = s(d_OO) [ Σ_{a∈m, b∈k} k_e q_a q_b / r_ab + 4ε((σ/d_OO)¹² − (σ/d_OO)⁶) ],

with d_OO the minimum-image O–O distance (orthorhombic cells) and s a cubic switch that
goes from 1 at d = r_c − w to 0 at d = r_c (whole neutral molecules are switched, as in
ASE's TIP3P). Intramolecular part: harmonic O–H bonds and H–O–H angle,

    E_intra = ½ k_r [(r₁ − r₀)² + (r₂ − r₀)²] + ½ k_θ (θ − θ₀)²,

with r₀, θ₀, k_r, k_θ fitted to the GFN2-xTB monomer (see make.py), so that sampled
bond lengths and angles fluctuate around xTB's own geometry with thermal widths.

Atoms must come in O, H, H order per molecule. Units: eV, Å, eV/Å.
"""

from __future__ import annotations

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.tip3p import epsilon0, qH, sigma0

K_E = units.Hartree * units.Bohr  # Coulomb constant, eV·Å / e²
CHARGES = np.array([-2.0 * qH, qH, qH])


def _switch(d: np.ndarray, rc: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Cubic switch s(d) and ds/dd: 1 below rc − width, 0 above rc."""
    y = np.clip((d - rc + width) / width, 0.0, 1.0)
    s = 1.0 - y * y * (3.0 - 2.0 * y)
    ds = np.where((y > 0.0) & (y < 1.0), -6.0 * y * (1.0 - y) / width, 0.0)
    return s, ds


class FlexibleWater(Calculator):
    """Flexible TIP3P-like water (energy, forces) for configuration sampling only.

    ``intra`` = (r0 Å, theta0 rad, k_r eV/Å², k_theta eV/rad²). ``rc``, ``width`` in Å;
    the cutoff is ignored for non-periodic systems (all pairs interact fully).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, intra: tuple[float, float, float, float], rc: float = 4.9,
                 width: float = 1.0):
        super().__init__()
        self.intra = intra
        self.rc = rc
        self.width = width

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        e, f = water_energy_forces(self.atoms.positions, self.atoms.cell.lengths(),
                                   bool(self.atoms.pbc.all()), self.intra, self.rc, self.width)
        self.results = {"energy": e, "forces": f}


def water_energy_forces(positions: np.ndarray, box: np.ndarray, periodic: bool,
                        intra: tuple[float, float, float, float], rc: float,
                        width: float) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å) of the flexible model; see the module docstring."""
    R = positions.reshape(-1, 3, 3)
    n = len(R)
    F = np.zeros_like(R)
    r0, th0, kr, kth = intra

    # intramolecular: bonds
    b1 = R[:, 1] - R[:, 0]
    b2 = R[:, 2] - R[:, 0]
    l1 = np.linalg.norm(b1, axis=1)
    l2 = np.linalg.norm(b2, axis=1)
    energy = 0.5 * kr * np.sum((l1 - r0) ** 2 + (l2 - r0) ** 2)
    u1 = b1 / l1[:, None]
    u2 = b2 / l2[:, None]
    g1 = (kr * (l1 - r0))[:, None] * u1  # dE/dx_H1 from bond 1
    g2 = (kr * (l2 - r0))[:, None] * u2
    # angle
    c = np.clip(np.sum(u1 * u2, axis=1), -1.0, 1.0)
    th = np.arccos(c)
    energy += 0.5 * kth * np.sum((th - th0) ** 2)
    sin = np.sqrt(np.maximum(1.0 - c * c, 1e-12))
    dE_dc = (-kth * (th - th0) / sin)[:, None]  # dE/dcos
    dc_dx1 = (u2 - c[:, None] * u1) / l1[:, None]
    dc_dx2 = (u1 - c[:, None] * u2) / l2[:, None]
    g1 = g1 + dE_dc * dc_dx1
    g2 = g2 + dE_dc * dc_dx2
    F[:, 1] -= g1
    F[:, 2] -= g2
    F[:, 0] += g1 + g2

    if n > 1:
        im, ik = np.triu_indices(n, 1)
        d = R[ik, 0] - R[im, 0]
        if periodic:
            shift = -box * np.round(d / box)
        else:
            shift = np.zeros_like(d)
        d = d + shift
        dOO = np.linalg.norm(d, axis=1)
        if periodic:
            s, ds = _switch(dOO, rc, width)
        else:
            s, ds = np.ones_like(dOO), np.zeros_like(dOO)
        keep = s > 0.0
        im, ik, d, dOO = im[keep], ik[keep], d[keep], dOO[keep]
        s, ds, shift = s[keep], ds[keep], shift[keep]
        # raw pair energies
        sr6 = (sigma0 / dOO) ** 6
        e_raw = 4.0 * epsilon0 * (sr6 * sr6 - sr6)
        g_lj = (4.0 * epsilon0 * (-12.0 * sr6 * sr6 + 6.0 * sr6) / dOO)[:, None] * d / dOO[:, None]
        # dE_raw/dx_{O_k} = g_lj ; dE_raw/dx_{O_m} = -g_lj
        Gk = np.zeros((len(im), 3, 3))
        Gm = np.zeros((len(im), 3, 3))
        Gk[:, 0] += s[:, None] * g_lj
        Gm[:, 0] -= s[:, None] * g_lj
        for a in range(3):
            for b in range(3):
                v = R[ik, b] + shift - R[im, a]
                r = np.linalg.norm(v, axis=1)
                qq = K_E * CHARGES[a] * CHARGES[b]
                e_raw = e_raw + qq / r
                g = (-qq / r**3)[:, None] * v  # d(qq/r)/dx_b
                Gk[:, b] += s[:, None] * g
                Gm[:, a] -= s[:, None] * g
        energy += float(np.sum(s * e_raw))
        gs = (e_raw * ds)[:, None] * d / dOO[:, None]  # switch derivative, acts on the O atoms
        Gk[:, 0] += gs
        Gm[:, 0] -= gs
        np.add.at(F, ik, -Gk)
        np.add.at(F, im, -Gm)
    return float(energy), F.reshape(-1, 3)
