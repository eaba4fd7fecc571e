"""Structural analysis of trajectories: radial distribution functions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from nnpot.atomistic.neighbors import neighbor_pairs


def rdf(images: Sequence[Atoms], a: str, b: str, r_max: float = 6.0, n_bins: int = 120
        ) -> tuple[np.ndarray, np.ndarray]:
    """Partial radial distribution function g_ab(r) averaged over periodic ``images``.

    g_ab(r) = V / (N_a N_b) · ⟨Σ_{i∈a, j∈b, j≠i} δ(r − r_ij)⟩ / (4π r² dr)
    (r in Å; pairs from the periodic neighbour list, so r_max may exceed half the cell).
    """
    za, zb = atomic_numbers[a], atomic_numbers[b]
    edges = np.linspace(0.0, r_max, n_bins + 1)
    hist = np.zeros(n_bins)
    norm = 0.0
    for at in images:
        z = at.get_atomic_numbers()
        i, j, s = neighbor_pairs(at.get_positions(), np.array(at.get_cell()[:]),
                                 at.get_pbc(), r_max)
        sel = (z[i] == za) & (z[j] == zb)
        vec = at.get_positions()[j[sel]] - at.get_positions()[i[sel]] + s[sel] @ at.get_cell()[:]
        d = np.linalg.norm(vec, axis=1)
        hist += np.histogram(d, edges)[0]
        n_a, n_b = int((z == za).sum()), int((z == zb).sum())
        norm += n_a * n_b / at.get_volume()
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres, hist / (shell * max(norm, 1e-30))
