"""Reusable physics checks: finite-difference forces and stress, invariances.

These are used by the test suite and are handy for users who add their own tails or
descriptors: any ASE calculator can be checked.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms


def fd_forces(atoms: Atoms, delta: float = 1e-4, indices=None) -> np.ndarray:
    """Central finite-difference forces −∂E/∂r (eV/Å) of ``atoms.calc``."""
    idx = range(len(atoms)) if indices is None else indices
    f = np.zeros((len(atoms), 3))
    pos0 = atoms.get_positions()
    for a in idx:
        for c in range(3):
            e = []
            for sgn in (1, -1):
                p = pos0.copy()
                p[a, c] += sgn * delta
                atoms.set_positions(p)
                e.append(atoms.get_potential_energy())
            f[a, c] = -(e[0] - e[1]) / (2 * delta)
    atoms.set_positions(pos0)
    return f


def fd_stress(atoms: Atoms, delta: float = 1e-5) -> np.ndarray:
    """Central finite-difference stress σ = (1/V) ∂E/∂ε (eV/Å³, Voigt, ASE sign)."""
    cell0 = atoms.get_cell().copy()
    vol = atoms.get_volume()
    s = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            e = []
            for sgn in (1, -1):
                eps = np.eye(3)
                eps[a, b] += sgn * delta
                atoms.set_cell(cell0 @ eps, scale_atoms=True)
                e.append(atoms.get_potential_energy())
            s[a, b] = (e[0] - e[1]) / (2 * delta * vol)
    atoms.set_cell(cell0, scale_atoms=True)
    s = 0.5 * (s + s.T)
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q
