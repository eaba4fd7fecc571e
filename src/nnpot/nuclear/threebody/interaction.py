"""Two-body HO matrix elements for the Jacobi NCSM, channel by channel.

A channel is (s, j, t, ls): pair spin, total angular momentum, isospin and its orbital
momenta (one, or (j - 1, j + 1) coupled); antisymmetry fixes t by (-1)^(l + s + t) = -1.
The relative oscillator length is b_rel = sqrt(2 hbar^2/(m hbar omega)) [fm] for the
nucleon mass m (hbar^2/m in MeV fm^2). Matrix elements [MeV] are returned as
{(s, j, t): {(l', l): M[n', n]}} with 2n + l <= nmax (see :mod:`nnpot.nuclear.ho` for the
radial functions and phases). Channels absent from the dict have V = 0.

Two sources: a local central V(r) per channel (coordinate-space quadrature), or any
momentum-space block potential per channel (quadrature on a Gauss-Legendre mesh).
``effective_me`` turns bare matrix elements computed up to ``nbig`` quanta into the OLS
effective interaction of :mod:`nnpot.nuclear.threebody.effective` for every channel with
l <= nmax (also those with V = 0, which still carry the -(2/A) U_rel term).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from nnpot.errors import InputError
from nnpot.nuclear.ho import ho_matrix_local, ho_matrix_momentum, ho_mesh
from nnpot.nuclear.threebody.effective import effective_channel

__all__ = ["relative_channels", "b_relative", "local_me", "momentum_me", "effective_me"]

Channel3 = tuple[int, int, int, tuple[int, ...]]


def relative_channels(lmax: int) -> list[Channel3]:
    """All NN channels (s, j, t, ls) whose orbital momenta are <= lmax."""
    out: list[Channel3] = []
    for j in range(0, lmax + 2):
        cands = [(0, (j,)), (1, (j,))] if j > 0 else [(0, (0,)), (1, (1,))]
        if j > 0:
            cands.append((1, (j - 1, j + 1)))
        for s, ls in cands:
            ls = tuple(l for l in ls if l <= lmax)
            if not ls:
                continue
            t = 1 if (ls[0] + s) % 2 == 0 else 0
            out.append((s, j, t, ls))
    return out


def b_relative(hw: float, hbar2_m: float) -> float:
    """Relative-motion oscillator length sqrt(2 hbar^2/m / hbar omega) [fm]."""
    if not (hw > 0 and hbar2_m > 0):
        raise InputError(f"hbar omega and hbar^2/m must be positive, got {hw}, {hbar2_m}")
    return math.sqrt(2.0 * hbar2_m / hw)


def local_me(vfun: Callable[[int, int, int, int], Callable | None], nmax: int, hw: float,
             hbar2_m: float, lmax: int | None = None) -> dict:
    """Matrix elements of local central potentials: ``vfun(s, j, t, l)`` -> V(r) or None."""
    b = b_relative(hw, hbar2_m)
    out: dict = {}
    for s, j, t, ls in relative_channels(nmax if lmax is None else min(lmax, nmax)):
        blocks = {}
        for l in ls:
            v = vfun(s, j, t, l)
            if v is not None:
                blocks[(l, l)] = ho_matrix_local(v, l, nmax, b)
        if blocks:
            out[(s, j, t)] = blocks
    return out


def momentum_me(potential: Callable[[int, int, int, tuple[int, ...]], Callable | None],
                nmax: int, hw: float, hbar2_m: float, lmax: int | None = None,
                npoints: int | None = None, pmax: float | None = None) -> dict:
    """Matrix elements from momentum-space block potentials.

    ``potential(s, j, t, ls)`` returns a function (p_out, p_in) -> V (nL, nL, n, m)
    [MeV fm^3] (torch or numpy) or None. ``pmax`` [fm^-1] caps the mesh where V is
    negligible (default: where the HO functions end); ``npoints`` defaults to
    max(160, 2 nmax + 100).
    """
    b = b_relative(hw, hbar2_m)
    npoints = max(160, 2 * nmax + 100) if npoints is None else int(npoints)
    k, w = ho_mesh(nmax, b, npoints, pmax=pmax)
    kt = torch.as_tensor(k, dtype=torch.float64)
    out: dict = {}
    for s, j, t, ls in relative_channels(nmax if lmax is None else min(lmax, nmax)):
        pot = potential(s, j, t, ls)
        if pot is None:
            continue
        with torch.no_grad():
            v = pot(kt, kt)
        v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        if v.shape != (len(ls), len(ls), k.size, k.size):
            raise InputError(f"potential for channel (s, j, t) = ({s}, {j}, {t}) returned "
                             f"shape {v.shape}, expected {(len(ls), len(ls), k.size, k.size)}")
        out[(s, j, t)] = {(lo, li): ho_matrix_momentum(k, w, v[a, c], lo, li, nmax, b)
                          for a, lo in enumerate(ls) for c, li in enumerate(ls)}
    return out


def effective_me(bare: dict, nmax: int, nbig: int, hw: float, a: int = 3) -> dict:
    """OLS effective matrix elements (2n + l <= nmax) from bare ones up to ``nbig`` quanta.

    Every channel with l <= nmax gets an entry: channels with bare blocks are diagonalised
    in the nbig space; V = 0 channels (only -(2/A) U_rel, whose eigenvectors decay fast in
    n) in min(nbig, nmax + 40).
    """
    out: dict = {}
    for s, j, t, ls in relative_channels(nmax):
        blocks = bare.get((s, j, t), {})
        for (lo, _), m in blocks.items():
            if 2 * (m.shape[0] - 1) + lo < nbig - 1:
                raise InputError(f"bare matrix elements of channel ({s}, {j}, {t}) stop below "
                                 f"{nbig} quanta; compute them with nmax = {nbig}")
        big = nbig if blocks else min(nbig, nmax + 40)
        out[(s, j, t)] = effective_channel(blocks, ls, nmax, big, hw, a)
    return out
