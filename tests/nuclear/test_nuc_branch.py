"""Branch choice of the channel fit: S waves must end attractive at zero momentum
(V_S(0,0) < 0) without spurious deep bound states, at a chi2 as good as the old start."""

import pytest
import torch

from nnpot.nuclear import fit as F
from nnpot.nuclear.channels import get_channel
from nnpot.nuclear.deuteron import hamiltonian
from nnpot.nuclear.mesh import default_mesh
from nnpot.nuclear.pipeline import DEGREES, FitConfig, ModelCfg, build_model

torch.set_num_threads(1)

# N2LO with Weinberg-like S-wave contacts: C_00 + C_01 (p^2 + p'^2) in 1S0
CFG = FitConfig(committee=1, model=ModelCfg(degrees={**DEGREES, "1S0": 1}))
MESH = default_mesh(32)


def _fit_1s0(settings):
    model = build_model(CFG, 0)
    dc = F.channel_data(F.make_data(F.FIT_TLAB, 4, waves=["1S0"]), get_channel("1S0"))
    res = F.fit_channel(model, dc, MESH, None, settings)
    return model, dc, res


def test_1s0_fit_lands_on_attractive_branch_without_spurious_state():
    """The old 1-D start grid (C_01 = 0) ends at V_1S0(0,0) > 0 (attraction only at
    p ~ 2-3 fm^-1); the 2-D grid + branch choice ends attractive at no worse objective."""
    kw = {"max_iter": 300, "lambda_s": 1e-7, "sigma_c": 100.0}
    _, _, old = _fit_1s0(F.FitSettings(grid_s1=(0.0,), n_starts=1, **kw))
    settings = F.FitSettings(**kw)
    model, dc, new = _fit_1s0(settings)
    assert old["v00"] > 0  # the setup exercises the wrong branch of the old start
    assert new["v00"] < 0
    assert new["deep"] == []
    diag = F.branch_diagnostics(model, get_channel("1S0"), MESH)
    assert diag["v00"] < 0 and diag["deep"] == []
    # 1S0 has no bound state at all (virtual state, a_s = -23.7 fm)
    ev = torch.linalg.eigvalsh(hamiltonian(model, get_channel("1S0"), MESH))
    assert float(ev.min()) > 0
    assert new["cost"] <= old["cost"] + settings.branch_dchi2
    assert new["chi2"] / dc.target.numel() < 0.1
    with torch.no_grad():
        pred = F.predict(model, dc, MESH)
    assert float((pred - dc.target).abs().max()) < 0.3  # degrees


def test_branch_diagnostics_sees_a_deep_state():
    """A strongly attractive contact binds deep in 1S0; a repulsive one gives V(0,0) > 0."""
    ch = get_channel("1S0")
    model = build_model(CFG, 0)
    with torch.no_grad():
        model.short.coef["1S0_00"][0] = -20.0
    d = F.branch_diagnostics(model, ch, MESH)
    assert d["v00"] < 0 and d["deep"] and min(d["deep"]) < -5.0
    with torch.no_grad():
        model.short.coef["1S0_00"][0] = 5.0
    d = F.branch_diagnostics(model, ch, MESH)
    assert d["v00"] > 0 and d["deep"] == []


def test_choose_rules():
    """Spurious fits are dropped, V(0,0) < 0 wins within dchi2, else the lowest objective."""
    r = [{"cost": 0.1, "v00": 50.0, "deep": []},
         {"cost": 0.01, "v00": -900.0, "deep": [-300.0]},
         {"cost": 0.6, "v00": -40.0, "deep": []},
         {"cost": 5.0, "v00": -30.0, "deep": []}]
    assert F._choose(r, 1.0) == 2
    assert F._choose(r, 0.1) == 0  # the attractive fit is too much worse
    assert F._choose(r[1:2], 1.0) == 0  # all spurious: the best one is kept


def test_warm_start_that_left_the_branch_is_refitted_from_the_grid():
    """A committee member is warm-started at member 0's optimum; if its fit ends on the
    repulsive branch (V_S(0,0) > 0), the channel is fitted again from the start grid and
    the branch rules choose: here the attractive fit, which the model then holds. (Without
    the S-wave attraction term, which would otherwise decide the branch by itself.)"""
    kw = {"max_iter": 300, "lambda_s": 1e-7, "sigma_c": 100.0, "s_wave_weight": 0.0}
    model, dc, old = _fit_1s0(F.FitSettings(grid_s1=(0.0,), n_starts=1, **kw))
    assert old["v00"] > 0 and old["branch_guard"] is None  # init=True: no guard
    settings = F.FitSettings(**kw)
    res = F.fit_channel(model, dc, MESH, None, settings, init=False)
    guard = res["branch_guard"]
    assert guard["warm"]["v00"] > 0 and guard["grid"]["v00"] < 0
    assert guard["kept"] == "grid"
    assert guard["grid"]["cost"] <= guard["warm"]["cost"] + settings.branch_dchi2
    assert res["v00"] < 0 and res["deep"] == []
    assert F.branch_diagnostics(model, get_channel("1S0"), MESH)["v00"] < 0
    # a warm start that stays on the attractive branch is left alone
    again = F.fit_channel(model, dc, MESH, None, settings, init=False)
    assert again["branch_guard"] is None and again["v00"] < 0
    assert again["cost"] <= res["cost"] + 1e-6


def test_s_wave_attraction_term_picks_the_attractive_end_of_the_flat_valley():
    """1S0 with the shipped contact degrees, fitted to PWA93 + sigma_data noise (a
    committee member's targets): without the attraction term the fit ends strongly
    repulsive at zero momentum, with it at V(0,0) = -margin, for a chi2 (10 points) larger
    by less than 0.1 (the valley of phase-equivalent potentials is nearly flat), and no
    spurious state."""
    cfg = FitConfig(committee=1)
    mesh = default_mesh(32)
    data = F.make_data(F.FIT_TLAB, 4, waves=["1S0"])
    gen = torch.Generator().manual_seed(1)
    noisy = data.with_target(data.target + data.sigma * torch.randn(
        data.target.shape, generator=gen, dtype=torch.float64))
    dc = F.channel_data(noisy, get_channel("1S0"))
    out = {}
    for w in (0.0, 100.0):
        model = build_model(cfg, 1)
        s = F.FitSettings(max_iter=300, lambda_s=1e-7, sigma_c=100.0, s_wave_weight=w)
        out[w] = F.fit_channel(model, dc, mesh, None, s)
    assert out[0.0]["v00"] > 50.0
    assert out[100.0]["v00"] == pytest.approx(-10.0, abs=0.5) and out[100.0]["deep"] == []
    assert out[100.0]["chi2"] < out[0.0]["chi2"] + 0.1
