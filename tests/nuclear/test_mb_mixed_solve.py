"""Mixed-precision LS solves: float32 LU + float64 refinement is never worse than float64,
also for systems too ill-conditioned for float32 (an on-shell momentum next to a node)."""

import torch

from nnpot.nuclear.lowrank import (
    TWO_MU,
    full_onshell_k,
    max_phase_deviation,
    phase_shifts_deg,
    solve_refined,
)
from nnpot.nuclear.mesh import default_mesh


def _batch(conds, n=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mats = []
    for c in conds:
        q1, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        q2, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        s = torch.logspace(0, -torch.log10(torch.tensor(c)).item(), n, dtype=torch.float64)
        mats.append(q1 @ torch.diag(s) @ q2.T)
    a = torch.stack(mats)
    b = torch.randn(len(conds), n, 2, generator=gen, dtype=torch.float64)
    return a, b


def test_refined_equals_float64_for_good_and_ill_conditioned_systems():
    a, b = _batch([1e2, 1e5, 1e11])
    ref = torch.linalg.solve(a, b)
    x = solve_refined(a, b)
    rel = (x - ref).abs().amax(dim=(1, 2)) / ref.abs().amax(dim=(1, 2))
    assert rel[0] < 1e-13 and rel[1] < 1e-10
    # cond 1e11: float32 alone is useless here, the refined solve falls back to float64
    f32 = torch.linalg.solve(a[2].float(), b[2].float()).double()
    assert (f32 - ref[2]).abs().max() / ref[2].abs().max() > 1e-2
    assert rel[2] < 1e-12
    # unbatched input takes the same route
    x2 = solve_refined(a[2], b[2])
    assert ((x2 - ref[2]).abs().max() / ref[2].abs().max()) < 1e-12


def test_mixed_phase_shifts_match_float64_on_a_dense_energy_grid():
    """300 energies on a 48-point mesh: one on-shell momentum falls next to a mesh node, where
    a float32 solve is off by degrees; the mixed solve matches float64 to 1e-8 deg."""
    k, w = default_mesh(48)

    def pot(p_out, p_in):  # attractive S wave + repulsive D wave + S-D coupling (MeV fm^3)
        g = lambda p: torch.exp(-p * p / 1.5)
        h = lambda p: (p * p / 1.5) * torch.exp(-p * p / 1.5)
        v00 = -900.0 * g(p_out)[:, None] * g(p_in)[None, :] + 300.0 * torch.exp(
            -(p_out[:, None] ** 2 + p_in[None, :] ** 2) / 6.0)
        v22 = 40.0 * h(p_out)[:, None] * h(p_in)[None, :]
        v02 = -60.0 * g(p_out)[:, None] * h(p_in)[None, :]
        return torch.stack([torch.stack([v00, v02]), torch.stack([v02.T, v22])])

    p0 = torch.sqrt(0.5 * torch.linspace(1.0, 300.0, 300, dtype=torch.float64) * TWO_MU)
    ref = phase_shifts_deg(full_onshell_k(pot, k, w, p0), p0)
    mixed = phase_shifts_deg(full_onshell_k(pot, k, w, p0, precision="mixed"), p0)
    f32 = phase_shifts_deg(full_onshell_k(pot, k, w, p0, precision="float32"), p0)
    assert max_phase_deviation(f32, ref) > 0.1  # the grid does hit an ill-conditioned energy
    assert max_phase_deviation(mixed, ref) < 1e-8
