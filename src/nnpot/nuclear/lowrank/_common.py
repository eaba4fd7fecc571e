"""Shared pieces of :mod:`nnpot.nuclear.lowrank`: block potentials, meshes, propagator."""

from __future__ import annotations

from collections.abc import Callable

import torch

from nnpot.errors import InputError
from nnpot.nuclear.constants import HBARC, MU_NP

#: (p_out [n1], p_in [n2]) -> V (nL, nL, n1, n2) [MeV fm^3]
BlockPotential = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

TWO_MU = 2.0 * MU_NP / HBARC**2  #: 2 mu/(hbar c)^2 [MeV^-1 fm^-2]


def _as64(x, like: torch.Tensor | None = None) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64,
                           device=like.device if like is not None else None)


def block_matrix(potential: BlockPotential, p_out, p_in) -> torch.Tensor:
    """V as one matrix (nL n_out, nL n_in), row/column blocks ordered by L [MeV fm^3].

    Evaluated without autograd (the low-rank forms are post-processing of a fitted V).
    """
    with torch.no_grad():
        v = potential(_as64(p_out).reshape(-1), _as64(p_in).reshape(-1))
    if v.dim() != 4 or v.shape[0] != v.shape[1] or v.shape[0] not in (1, 2):
        raise InputError(f"potential returned shape {tuple(v.shape)}; expected (nL, nL, n, m)"
                         " with nL = 1 or 2")
    if not bool(torch.isfinite(v).all()):
        raise InputError("potential returned NaN or infinite values")
    nl = v.shape[0]
    return v.permute(0, 2, 1, 3).reshape(nl * v.shape[2], nl * v.shape[3])


def _mesh(k, w) -> tuple[torch.Tensor, torch.Tensor]:
    k = _as64(k).reshape(-1)
    w = _as64(w, k).reshape(-1)
    if k.numel() == 0 or k.shape != w.shape:
        raise InputError("mesh points and weights must be non-empty and of equal length")
    if not bool(torch.isfinite(k).all() and torch.isfinite(w).all()) or \
            bool((k <= 0).any()) or bool((w <= 0).any()):
        raise InputError("mesh points (fm^-1) and weights must be positive and finite")
    return k, w


def _check_rank(rank, limit: int) -> int:
    if int(rank) != rank or rank < 1:
        raise InputError(f"rank must be a positive integer, got {rank}")
    if rank > limit:
        raise InputError(f"rank {rank} exceeds the {limit} mesh degrees of freedom")
    return int(rank)


def _propagator(k: torch.Tensor, w: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
    """D on (k_1..k_N, p0) for each p0: shape (B, N + 1) [MeV^-1 fm^-3]."""
    den = p0[:, None] ** 2 - k[None, :] ** 2
    if bool((den == 0).any()):
        raise InputError("an on-shell momentum coincides with a mesh point; shift the energy")
    d = TWO_MU * w * k * k / den
    d0 = -TWO_MU * p0**2 * (w / den).sum(-1)
    return torch.cat([d, d0[:, None]], dim=1)


