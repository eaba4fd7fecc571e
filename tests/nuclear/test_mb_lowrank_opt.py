"""Optimised rank-R separable forms (EST start, phase shifts as the target)."""

import pytest
import torch

from nnpot.errors import InputError
from nnpot.nuclear.channels import get_channel
from nnpot.nuclear.lowrank import (
    TWO_MU,
    bound_state_energy,
    check_grid,
    est_greedy,
    full_onshell_k,
    grow,
    max_phase_deviation,
    optimised_lowrank,
    phase_shifts_deg,
    rank_report,
    separable_bound_state_energy,
    separable_onshell_k,
)
from nnpot.nuclear.lowrank.report import tlab_grid
from nnpot.nuclear.mesh import default_mesh
from nnpot.nuclear.potential import NuclearPotential

TMAX, NE = 300.0, 60  # training grid: tlab_grid(TMAX, NE)


@pytest.fixture(scope="module")
def ope():
    """Regulated LO potential (OPE + seeded contacts) in 3S1-3D1 on a coarse mesh."""
    model = NuclearPotential(pion={"order": "LO"})
    ch = get_channel("3S1-3D1")
    k, w = default_mesh(24)
    pot = lambda a, b: model(ch, a, b)
    return pot, k, w, bound_state_energy(pot, k, w)


def _dev(pot, sep, k, w, tl):
    p0 = torch.sqrt(0.5 * tl * TWO_MU)
    return max_phase_deviation(phase_shifts_deg(separable_onshell_k(sep, p0), p0),
                               phase_shifts_deg(full_onshell_k(pot, k, w, p0), p0))


@pytest.fixture(scope="module")
def fits(ope):
    pot, k, w, e_d = ope
    out, prev = {}, None
    for rank in (2, 4):  # rank 4 grown from the optimised rank 2
        est = est_greedy(pot, k, w, rank, TMAX, e_d)
        opt = optimised_lowrank(pot, k, w, rank, TMAX, e_d, n_energies=NE, init=est,
                                iterations=200, warm=prev)
        out[rank], prev = (est, opt), opt
    return out


def test_grow_embeds_the_lower_rank_form_exactly(ope, fits):
    _, k, _, _ = ope
    small, big = fits[2][1], fits[4][0]
    g = grow(small, big)
    assert g.rank == 4
    p = torch.cat([k[::5], torch.tensor([0.7, 1.9], dtype=torch.float64)])
    vs = small(p, p)
    assert torch.allclose(g(p, p), vs, rtol=1e-10, atol=1e-10 * float(vs.abs().max()))


def test_optimised_beats_est_on_and_between_the_training_energies(ope, fits):
    pot, k, w, _ = ope
    devs = {}
    for rank, (est, opt) in fits.items():
        for name, tl in (("train", tlab_grid(TMAX, NE)), ("mid", check_grid(TMAX, NE))):
            d_est, d_opt = _dev(pot, est, k, w, tl), _dev(pot, opt, k, w, tl)
            assert d_opt < 0.5 * d_est, (rank, name, d_opt, d_est)
            devs[rank, name] = d_opt
    assert devs[4, "train"] < devs[2, "train"]
    assert devs[4, "mid"] < devs[2, "mid"]


def test_deuteron_pole_stays_exact(ope, fits):
    pot, k, w, e_d = ope
    assert e_d < 0
    for _, opt in fits.values():
        assert abs(separable_bound_state_energy(opt) - e_d) < 1e-6  # MeV (1 eV)


def test_optimised_form_is_symmetric_and_its_closed_form_solve_is_exact(fits, ope):
    _, k, w, _ = ope
    _, opt = fits[4]
    assert opt.method == "opt" and opt.rank == 4
    assert torch.equal(opt.lam, opt.lam.T)
    p = torch.tensor([0.3, 1.1, 2.5], dtype=torch.float64)
    v = opt(p, p)  # V_R[L', L](p_i, p_j) = V_R[L, L'](p_j, p_i)
    assert torch.allclose(v, v.permute(1, 0, 3, 2), rtol=1e-10, atol=1e-12)
    p0 = torch.sqrt(0.5 * torch.tensor([1.0, 33.0, 150.0, 290.0], dtype=torch.float64) * TWO_MU)
    assert torch.allclose(separable_onshell_k(opt, p0), full_onshell_k(opt, k, w, p0),
                          rtol=1e-8, atol=1e-10)


def test_uncoupled_channel_deterministic_and_in_rank_report():
    model = NuclearPotential(pion={"order": "LO"})
    ch = get_channel("1S0")
    k, w = default_mesh(20)
    pot = lambda a, b: model(ch, a, b)
    a = optimised_lowrank(pot, k, w, 2, 150.0, n_energies=30, iterations=60)
    b = optimised_lowrank(pot, k, w, 2, 150.0, n_energies=30, iterations=60)
    assert torch.equal(a.lam, b.lam) and torch.equal(a.coef, b.coef)
    rep_opt = rank_report(pot, k, w, 2, "opt", tlab_max=150.0, n_energies=30, repeats=1)
    rep_est = rank_report(pot, k, w, 2, "est", tlab_max=150.0, n_energies=30, repeats=1)
    assert rep_opt["method"] == "opt"
    assert rep_opt["max_dphase_deg"] < rep_est["max_dphase_deg"]


def test_bad_inputs_raise(ope):
    pot, k, w, _ = ope
    with pytest.raises(InputError):
        optimised_lowrank(pot, k, w, 2, 300.0, e_pole=1.0)
    with pytest.raises(InputError):
        optimised_lowrank(pot, k, w, 2, -5.0)
    with pytest.raises(InputError):
        optimised_lowrank(pot, k, w, 2, 300.0, iterations=-1)
