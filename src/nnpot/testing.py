"""Reusable physics checks: finite-difference forces and stress, invariances.

These are used by the test suite and are handy for users who add their own tails or
descriptors: any ASE calculator can be checked.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms


def fd_forces(atoms: Atoms, delta: float = 1e-4, indices=None) -> np.ndarray:
    """Central finite-difference forces −∂E/∂r (eV/Å) of ``atoms.calc``."""
    pos0 = atoms.get_positions()

    def energy(p):
        atoms.set_positions(p)
        return atoms.get_potential_energy()

    try:
        return fd_forces_of(energy, pos0, delta, indices)
    finally:
        atoms.set_positions(pos0)


def fd_forces_of(energy, positions, delta: float = 1e-4, indices=None) -> np.ndarray:
    """Central finite-difference forces −∂E/∂r (eV/Å) of ``energy(positions) -> float``
    (eV) at ``positions`` (N, 3) Å, for the atoms ``indices`` (all by default; rows of the
    others stay 0)."""
    pos0 = np.asarray(positions, dtype=float)
    idx = range(len(pos0)) if indices is None else indices
    f = np.zeros((len(pos0), 3))
    for a in idx:
        for c in range(3):
            e = []
            for sgn in (1, -1):
                p = pos0.copy()
                p[a, c] += sgn * delta
                e.append(float(energy(p)))
            f[a, c] = -(e[0] - e[1]) / (2 * delta)
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


def water_box(n_side: int = 2, seed: int = 0, density: float = 1.0, jitter: float = 0.1):
    """(numbers, positions [Å], cell [Å]) of n_side³ randomly oriented rigid water molecules
    (O-H 0.9572 Å, 104.52°) on a cubic grid at ``density`` [g/cm³], centres displaced
    uniformly by up to ``jitter`` [Å]: a cheap periodic liquid-like test and benchmark
    system (not equilibrated)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    n_mol = n_side**3
    length = (n_mol * 18.015 / 0.602214076 / density) ** (1.0 / 3.0)  # Å
    a = length / n_side
    theta = np.radians(104.52)
    mol = np.array([[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0],
                    [0.9572 * np.cos(theta), 0.9572 * np.sin(theta), 0.0]])
    mol -= mol.mean(0)
    rot = Rotation.random(n_mol, random_state=rng).as_matrix()
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    centres = (grid + 0.5) * a + rng.uniform(-jitter, jitter, (n_mol, 3))
    pos = np.einsum("mij,aj->mai", rot, mol) + centres[:, None, :]
    return np.tile([8, 1, 1], n_mol), pos.reshape(-1, 3), np.eye(3) * length


def scrambled_model(spec, n_members: int, hidden=(6, 6), seed: int = 2, weight_seed: int = 7,
                    feature_std: float = 2.0):
    """A small untrained NNP whose weights are O(1) Gaussians (every feature matters) and
    whose inputs are scaled by ``feature_std``: a test model for comparing two code paths
    (the C kernels and torch), where a freshly initialised model's tiny outputs would hide
    differences."""
    import torch

    from nnpot.atomistic.model import NNP

    model = NNP(spec, hidden=hidden, n_members=n_members, seed=seed)
    gen = torch.Generator().manual_seed(weight_seed)
    with torch.no_grad():
        for p in model.heads.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        model.feature_std.fill_(feature_std)
    return model
