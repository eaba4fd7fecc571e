"""Okubo-Lee-Suzuki (OLS) two-body effective interaction for the Jacobi NCSM.

Following Navratil, Kamuntavicius, Barrett, Phys. Rev. C 61, 044001 (2000) (two-body
cluster approximation): the A-body Hamiltonian gets the centre-of-mass oscillator added,
H^Omega = sum_i h_HO(i) + sum_{i<j} [V_ij - m Omega^2 (r_i - r_j)^2 / (2A)], whose two-body
cluster in relative coordinates is

    H_2 = h_rel + V - (2/A) U_rel,    h_rel = T_rel + U_rel,  U_rel = mu Omega^2 r^2 / 2,

with <n l|h_rel|n l> = hw (2n + l + 3/2) and U_rel = (hw/2) x^2 (x = r/b_rel). H_2 is
diagonalised in a large two-body HO space Q + P (P: 2n + l <= N_max), and the OLS
transformation gives the hermitian effective Hamiltonian in P,

    H_eff = O diag(E_k) O^T,  O = U_P (U_P^T U_P)^{-1/2},

where the columns of U_P are the P-space components of the dim(P) eigenvectors |k> of
H_2 with the largest P-space norm (O is the orthogonal polar factor of U_P). The effective
interaction V_eff = H_eff - P h_rel P replaces V - (2/A) U_rel; in the three-body
Jacobi space the one-body part is then T_int + U_int = hw (e + 3) (diagonal). As
N_max -> infinity, V_eff -> V - (2/A) U_rel and the exact result is recovered; the
approach to it is not variational.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.linalg

from nnpot.nuclear.ho import n_states

__all__ = ["okubo_lee_suzuki", "effective_channel"]


def okubo_lee_suzuki(h: np.ndarray, p_index: np.ndarray) -> np.ndarray:
    """Hermitian OLS effective Hamiltonian on the P states ``p_index`` of symmetric ``h``."""
    p_index = np.asarray(p_index)
    w, v = scipy.linalg.eigh(h)
    up = v[p_index, :]
    weight = np.sum(up * up, axis=0)
    sel = np.sort(np.argsort(-weight)[: p_index.size])
    u = up[:, sel]
    left, _, right = np.linalg.svd(u)
    o = left @ right
    return (o * w[sel]) @ o.T


def effective_channel(v_big: Mapping[tuple[int, int], np.ndarray], ls: Sequence[int],
                      nmax_p: int, nmax_big: int, hw: float, a: int = 3
                      ) -> dict[tuple[int, int], np.ndarray]:
    """V_eff blocks <n' l'|V_eff|n l> [MeV] (2n + l <= nmax_p) for one (coupled) channel.

    ``v_big[(l', l)]``: bare HO matrix elements [MeV] with 2n + l <= nmax_big (missing
    blocks are zero); ``hw`` [MeV]; ``a`` the number of nucleons of the NCSM (3).
    """
    sizes = [n_states(l, nmax_big) for l in ls]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    dim = int(off[-1])
    h = np.zeros((dim, dim))
    p_index = []
    for i, l in enumerate(ls):
        n = np.arange(sizes[i])
        x2 = np.diag(2 * n + l + 1.5) - np.diag(np.sqrt((n[:-1] + 1) * (n[:-1] + l + 1.5)), 1) \
            - np.diag(np.sqrt((n[:-1] + 1) * (n[:-1] + l + 1.5)), -1)
        blk = slice(off[i], off[i + 1])
        h[blk, blk] += np.diag(hw * (2 * n + l + 1.5)) - (hw / a) * x2
        p_index.extend(off[i] + np.arange(n_states(l, nmax_p)))
        for k, l2 in enumerate(ls):
            m = v_big.get((l, l2))
            if m is not None:
                h[blk, off[k]:off[k + 1]] += m[: sizes[i], : sizes[k]]
    p_index = np.array(p_index, dtype=int)
    heff = okubo_lee_suzuki(h, p_index)
    out = {}
    pos = 0
    starts = []
    for l in ls:
        starts.append(pos)
        pos += n_states(l, nmax_p)
    for i, l in enumerate(ls):
        ni = n_states(l, nmax_p)
        for k, l2 in enumerate(ls):
            nk = n_states(l2, nmax_p)
            blk = heff[starts[i]:starts[i] + ni, starts[k]:starts[k] + nk].copy()
            if i == k:
                blk -= np.diag(hw * (2 * np.arange(ni) + l + 1.5))
            out[(l, l2)] = blk
    return out
