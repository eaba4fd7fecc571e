"""Synthetic radial-symmetry-function descriptor clouds for the uq tests (arrays only)."""

from __future__ import annotations

import numpy as np

R_S = np.array([2.0, 2.4, 2.8, 3.2, 3.6, 4.0, 4.4, 4.8])  # Å, centres of radial functions
ETA = 4.0  # Å⁻²
R_CUT = 5.0  # Å
R0 = (2.3, 2.9)  # Å, nearest-neighbour distance of "element" 0 and 1


def radial_descriptors(rng, n_atoms, r0, strain=1.0):
    """G_k = Σ_j exp(−η (r_ij − r_s,k)²) f_c(r_ij), cosine cutoff, for atoms with ten first
    neighbours near r0 and ten second neighbours near 1.6 r0 (thermal scatter); ``strain``
    scales every distance (0.9 = a structure compressed by 10 %)."""
    d1 = r0 + 0.15 * rng.standard_normal((n_atoms, 10))
    d2 = 1.6 * r0 + 0.3 * rng.standard_normal((n_atoms, 10))
    d = np.concatenate([d1, d2], axis=1) * strain
    fc = np.where(d < R_CUT, 0.5 * (np.cos(np.pi * d / R_CUT) + 1.0), 0.0)
    return (np.exp(-ETA * (d[:, :, None] - R_S) ** 2) * fc[:, :, None]).sum(axis=1)


def structures(rng, n_structures, n_atoms, strain=1.0):
    """Rows, element index and structure index of random two-element structures."""
    feats, groups, owner = [], [], []
    for s in range(n_structures):
        g = rng.integers(0, 2, n_atoms)
        for e in (0, 1):
            k = int((g == e).sum())
            feats.append(radial_descriptors(rng, k, R0[e], strain))
            groups.append(np.full(k, e))
            owner.append(np.full(k, s))
    return np.concatenate(feats), np.concatenate(groups), np.concatenate(owner)
