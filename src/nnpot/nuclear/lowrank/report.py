"""Rank tables: greedy EST energies and a per-channel report against the full solve."""

from __future__ import annotations

import math

import torch

from nnpot.errors import InputError
from nnpot.nuclear.lowrank._common import TWO_MU, BlockPotential, _check_rank, _mesh, block_matrix
from nnpot.nuclear.lowrank.full import (
    assemble_augmented,
    augmented_potential,
    bound_state_energy,
    full_onshell_k,
    max_phase_deviation,
    phase_shifts_deg,
    solve_augmented,
)
from nnpot.nuclear.lowrank.separable import (
    SeparablePotential,
    est_lowrank,
    separable_bound_states,
    separable_onshell_k,
    svd_lowrank,
    weinberg_lowrank,
)


def tlab_grid(tlab_max: float, n: int) -> torch.Tensor:
    """Lab energies [MeV] for choosing and checking low-rank forms: ``n`` evenly spaced up
    to ``tlab_max`` plus 8 geometric ones from 0.5 to 10 MeV, where S-wave phases change
    fastest (1S0 virtual state) and an evenly spaced grid has no point (sorted, unique)."""
    even = torch.linspace(tlab_max / n, tlab_max, n, dtype=torch.float64)
    low = torch.logspace(math.log10(0.5), 1.0, 8, dtype=torch.float64)
    return torch.unique(torch.cat([low[low < tlab_max], even]))


def est_states(rank: int, nl: int, tlab_max: float, e_pole: float | None = None) -> list:
    """EST state list of total rank ``rank``: the pole (if given), standing waves at
    n = (rank - poles)//nL CM energies E_i = T_i/2 with T_i = T_max ((i + 1/2)/n)^1.5
    (denser at low energy), and leftover ranks as extra Weinberg states at the pole (or at
    -10 MeV when there is no pole)."""
    n_pole = 1 if e_pole is not None else 0
    n_e = max(0, (rank - n_pole) // nl)
    extra = rank - n_pole - nl * n_e
    grid = [0.5 * tlab_max * ((i + 0.5) / n_e) ** 1.5 for i in range(n_e)]
    states: list = []
    if e_pole is not None:
        states.append((e_pole, 1 + extra))
    elif extra:
        states.append((-10.0, extra))
    return states + grid


def est_greedy(potential: BlockPotential, k, w, rank: int, tlab_max: float = 300.0,
               e_pole: float | None = None, n_candidates: int = 40) -> SeparablePotential:
    """EST of total rank ``rank`` with energies chosen greedily.

    Start from the pole (if given) or the lowest candidate; then repeatedly add the
    candidate CM energy (T_lab/2, T_lab on :func:`tlab_grid` up to ``tlab_max`` [MeV])
    where the current separable phase shifts deviate most from the full ones. Leftover rank (odd
    rank in a coupled channel) becomes extra Weinberg states at the pole (or -10 MeV).
    """
    k, w = _mesh(k, w)
    nl = block_matrix(potential, k[:1], k[:1]).shape[0]
    rank = _check_rank(rank, nl * k.numel())
    tl = tlab_grid(tlab_max, n_candidates)
    p_c = torch.sqrt(0.5 * tl * TWO_MU)
    ref = phase_shifts_deg(full_onshell_k(potential, k, w, p_c), p_c)
    n_pole = 1 if e_pole is not None else 0
    n_e = (rank - n_pole) // nl
    extra = rank - n_pole - nl * n_e
    head: list = []
    if e_pole is not None:
        head.append((e_pole, 1 + extra))
    elif extra:
        head.append((-10.0, extra))
    chosen: list[float] = []
    if not head and n_e:
        chosen.append(float(0.5 * tl[0]))
    while len(chosen) < n_e:
        sep = est_lowrank(potential, k, w, head + chosen)
        ph = phase_shifts_deg(separable_onshell_k(sep, p_c), p_c)
        err = (torch.remainder(ph - ref + 90.0, 180.0) - 90.0).abs().amax(dim=1)
        for c in chosen:  # never pick an energy twice
            err[(0.5 * tl - c).abs() < 1e-9] = -1.0
        chosen.append(float(0.5 * tl[int(torch.argmax(err))]))
    return est_lowrank(potential, k, w, head + sorted(chosen))


def _warm_block_time(fn, calls: int = 3) -> float:
    """Seconds per call of ``fn`` with warm caches: one untimed call, then the mean of
    ``calls`` consecutive ones. (Timing single calls right after a big LU solve charges the
    small separable solve ~50 us of cache misses, 3x its warm cost at rank 1.)"""
    import time

    fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def rank_report(potential: BlockPotential, k, w, rank: int, method: str = "est",
                tlab_max: float = 300.0, n_energies: int = 30,
                deuteron: bool = False, repeats: int = 5) -> dict:
    """Rank-R separable form of one channel against the full potential.

    Phase shifts on :func:`tlab_grid` (``n_energies`` evenly spaced lab energies up to
    ``tlab_max`` [MeV] and 8 low ones from 0.5 to 10 MeV; E_cm = T_lab/2),
    max deviation [deg] (mod 180); with ``deuteron`` the bound state [MeV] of both.
    ``method``: "svd"; "weinberg" (at the deuteron pole if ``deuteron``, else -2.2 MeV);
    "est" (:func:`est_greedy`: the pole if ``deuteron``, standing waves at energies
    chosen where the error is largest); "opt" (:func:`optimised_lowrank`: that EST form
    optimised on the phase shifts up to ``tlab_max``, the pole kept exact). Timings (best
    of ``repeats`` interleaved warm blocks, :func:`_warm_block_time`) compare the LS work
    per set of energies: the full solve (propagator, A = 1 - V D, batched LU solve) given V
    on the mesh + on-shell grid, and the closed-form separable solve (propagator, Gs,
    R x R solve) given the form factors on the same grid; neither includes evaluating V
    or the form factors. ``seconds_separable_solve_cold``: one separable call timed right
    after the full solve's LUs have evicted the caches (an upper bound for a lone call).
    """
    import time

    k, w = _mesh(k, w)
    tl = tlab_grid(tlab_max, n_energies)
    p0 = torch.sqrt(0.5 * tl * TWO_MU)
    e_full = bound_state_energy(potential, k, w) if deuteron else None
    if method == "svd":
        sep = svd_lowrank(potential, k, w, rank)
    elif method == "weinberg":
        sep = weinberg_lowrank(potential, k, w, rank, e_full if deuteron else -2.2)
    elif method == "est":
        sep = est_greedy(potential, k, w, rank, tlab_max, e_full)
    elif method == "opt":
        from nnpot.nuclear.lowrank.optimised import optimised_lowrank

        sep = optimised_lowrank(potential, k, w, rank, tlab_max, e_full)
    else:
        raise InputError(f"unknown low-rank method {method!r}; use svd, weinberg, est or opt")
    v, on = augmented_potential(potential, k, w, p0)
    rhs = v[:, :, on]
    g_on = sep.form_factors(p0)
    separable_onshell_k(sep, p0[:1], g_on[:, :1])  # warm the mesh form factors

    def full():
        return solve_augmented(assemble_augmented(v, k, w, p0), rhs, on)

    def separable():
        return separable_onshell_k(sep, p0, g_on)

    t_full, t_sep, t_cold = math.inf, math.inf, math.inf
    for _ in range(repeats):  # V on the grids and g_on are evaluated beforehand
        t_full = min(t_full, _warm_block_time(full))
        t0 = time.perf_counter()  # one separable call right after the full LUs: cold caches
        separable()
        t_cold = min(t_cold, time.perf_counter() - t0)
        t_sep = min(t_sep, _warm_block_time(separable))
    kf, ks = full(), separable()
    dev = max_phase_deviation(phase_shifts_deg(ks, p0), phase_shifts_deg(kf, p0))
    out = {"method": sep.method or method, "rank": sep.rank, "max_dphase_deg": dev,
           "tlab_max_mev": tlab_max, "n_energies": n_energies,
           "seconds_full_solve": t_full, "seconds_separable_solve": t_sep,
           "seconds_separable_solve_cold": t_cold}
    if deuteron:
        out["e_d_full_mev"] = e_full
        try:
            states_sep = separable_bound_states(sep)
            out["e_d_separable_mev"] = states_sep[-1] if states_sep else None
            out["spurious_bound_states"] = len(states_sep) - 1 if states_sep else 0
        except InputError:
            out["e_d_separable_mev"] = None
    return out


def smallest_rank_report(potential: BlockPotential, k, w, method: str = "opt",
                         tol_deg: float = 0.05, tol_bd_mev: float = 1e-3, max_rank: int = 8,
                         tlab_max: float = 300.0, n_energies: int = 300,
                         deuteron: bool = False, repeats: int = 5) -> dict:
    """:func:`rank_report` of the smallest rank R <= ``max_rank`` whose separable form
    reproduces the phase shifts within ``tol_deg`` [deg] on :func:`tlab_grid` (``n_energies``
    + 8 lab energies up to ``tlab_max`` [MeV]) and, with ``deuteron``, the bound state within
    ``tol_bd_mev`` [MeV] with no spurious bound state. Ranks are tried upwards (a coupled
    channel starts at 2 with "est"/"opt", which need a standing wave per partial wave or the
    pole); the result has ``"met": False`` and the ``max_rank`` report if none qualifies,
    and ``"tried"`` lists (rank, max deviation [deg]) of every attempt."""
    if tol_deg <= 0 or tol_bd_mev <= 0:
        raise InputError(f"tolerances must be positive, got {tol_deg} deg and {tol_bd_mev} MeV")
    k, w = _mesh(k, w)
    nl = block_matrix(potential, k[:1], k[:1]).shape[0]
    max_rank = _check_rank(max_rank, nl * k.numel())
    tried: list = []
    rep: dict = {}
    for rank in range(1, max_rank + 1):
        try:
            rep = rank_report(potential, k, w, rank, method, tlab_max, n_energies, deuteron,
                              repeats)
        except InputError as exc:  # e.g. too few ranks for the states of a coupled channel
            tried.append((rank, None, str(exc)))
            continue
        tried.append((rank, rep["max_dphase_deg"]))
        ok = rep["max_dphase_deg"] <= tol_deg
        if deuteron:
            es = rep.get("e_d_separable_mev")
            ok = ok and es is not None and abs(es - rep["e_d_full_mev"]) <= tol_bd_mev \
                and rep.get("spurious_bound_states", 0) == 0
        if ok:
            return {**rep, "met": True, "tried": tried, "tol_deg": tol_deg}
    return {**rep, "met": False, "tried": tried, "tol_deg": tol_deg}
