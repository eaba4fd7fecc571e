"""Fitting machinery: exact Jacobians, Levenberg-Marquardt without runaways, Yukawa basis,
truncation model, and the pitfall that the network's input variable changes A_S."""

import math

import numpy as np
import pytest
import torch

from nnpot.nuclear import deuteron as D
from nnpot.nuclear import fit as F
from nnpot.nuclear import lsq
from nnpot.nuclear import orders as O
from nnpot.nuclear.channels import get_channel
from nnpot.nuclear.constants import HBARC, p_cm, q_expansion
from nnpot.nuclear.mesh import default_mesh, two_part_mesh
from nnpot.nuclear.midrange import C0
from nnpot.nuclear.ope import NORM
from nnpot.nuclear.potential import NuclearPotential

torch.set_num_threads(1)


def _random_model(seed=1):
    torch.manual_seed(seed)
    m = NuclearPotential(short={"jmax": 2, "hidden": 3, "seed": seed}, mid={"jmax": 2})
    with torch.no_grad():
        for p in list(m.short.coef.values()) + list(m.mid.coef.values()):
            p.copy_(0.1 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("name", ["1S0", "3S1-3D1", "3P2-3F2"])
def test_jacobian_equals_autograd_and_hellmann_feynman(name):
    """dK = u^T dV u (+ Hellmann-Feynman for B_d) against reverse-mode autograd / FD."""
    m = _random_model()
    mesh = two_part_mesh(16, 8, 3.5, 2.0)
    ch = get_channel(name)
    d = F.channel_data(F.make_data((5.0, 50.0, 150.0, 300.0), jmax=2), ch)
    deut = name.startswith("3S1")
    if deut:  # make it bind
        with torch.no_grad():
            m.short.coef["3S1_3D1_00"][0] = -3.0
    prob = lsq.Problem(m, ch, mesh, d.p0, d.target, d.sigma, d.weight,
                       sigma_b=0.001 if deut else None)
    names = lsq.parameter_names(m, ch)
    assert any(n.startswith("mid.") for n in names) and any(".nets." in n for n in names)
    r, jac, delta, energy = lsq.residuals(prob, names)
    slow = lsq.slow_jacobian(prob, names)
    nw = delta.numel()
    assert torch.allclose(jac[:nw], slow, rtol=1e-8, atol=1e-9 * float(slow.abs().max()))
    with torch.no_grad():
        ref = F.predict(m, d, mesh)
    assert torch.allclose(delta, ref, atol=1e-9)
    if deut:
        assert energy < 0
        p = dict(m.named_parameters())[names[0]]
        h = 1e-6
        with torch.no_grad():
            p.view(-1)[0] += h
            e1 = float(F.deuteron_energy(m, mesh))
            p.view(-1)[0] -= 2 * h
            e2 = float(F.deuteron_energy(m, mesh))
            p.view(-1)[0] += h
        assert float(-jac[nw, 0] * 0.001) == pytest.approx((e1 - e2) / (2 * h), rel=1e-6)


def test_3p0_contact_fit_does_not_run_away():
    """A gradient method started at zero ran the 3P0 contact off to -6e6 MeV fm^3 (a deep
    spurious bound state) and stalled about 13 deg off; the start grid + LM finds the
    natural minimum: 2 N2LO contacts fit 3P0 to ~1 deg up to 300 MeV with O(1) values."""
    mesh = default_mesh(32)
    data = F.make_data(waves=["3P0"], jmax=0)
    m = NuclearPotential(short={"jmax": 0, "hidden": 0})
    res = F.fit(m, data, mesh, max_iter=60)
    coef = m.short.coef["3P0_11"].detach()
    assert float(coef.abs().max()) < 5.0
    assert float((res["pred"] - data.target).abs().max()) < 2.0
    evals = torch.linalg.eigvalsh(D.hamiltonian(m, get_channel("3P0"), mesh).detach())
    assert float(evals[0]) > -1.0  # no spurious deep bound state


def test_yukawa_s_wave_projection_is_analytic():
    """Central Yukawa C0 M^2/(q^2 + M^2) in 1S0: V = NORM 2 pi C0 M^2 /(2 p p' (hbar c)^2)
    ln[((p + p')^2 (hbar c)^2 + M^2) / ((p - p')^2 (hbar c)^2 + M^2)]."""
    m = NuclearPotential(short={"jmax": 0, "hidden": 0}, mid={"jmax": 0,
                                                               "masses_mev": [300.0]})
    p1 = torch.tensor([0.3, 1.1, 2.2], dtype=torch.float64)
    p2 = torch.tensor([0.5, 1.7], dtype=torch.float64)
    got = m.mid.basis(get_channel("1S0"), p1, p2)[0, 0, 0]
    a, b, mm = p1[:, None] * HBARC, p2[None, :] * HBARC, 300.0
    ref = NORM * 2 * math.pi * C0 * mm**2 / (2 * a * b) * torch.log(
        ((a + b) ** 2 + mm**2) / ((a - b) ** 2 + mm**2))
    assert torch.allclose(got, ref, rtol=1e-9)
    assert m.mid.coef["1S0"].shape == (1, 1) and m.mid.coef["3P0"].shape == (1, 2)


def test_truncation_band_formula_and_natural_coefficients():
    """Synthetic order-by-order predictions with coefficients ~ N(0, 1) give cbar ~ 1, and
    sigma_trunc = y_ref tau Q^4 / sqrt(1 - Q^2) sqrt(nu / (nu - 2))."""
    rng = np.random.default_rng(0)
    waves = ["1S0", "3P0", "1D2"]
    tlab = np.array([5.0, 50.0, 150.0, 300.0])
    p0 = p_cm(tlab, warn=False)
    q = q_expansion(p0).numpy()
    y_ref = np.array([50.0, 10.0, 3.0])[:, None]
    c = rng.normal(size=(3, 3, 4))
    steps = c * y_ref * q[None, None, :] ** np.array([0, 2, 3])[:, None, None]
    preds = np.cumsum(steps, axis=0)
    tm, coef = O.truncation_posterior(preds, p0, y_ref[:, 0])
    assert np.allclose(coef, c)
    assert 0.6 < tm.cbar < 1.5
    post = O.posterior_dict(tm, dict(zip(waves, y_ref[:, 0], strict=True)), 600.0, O.EMAX,
                            coef)
    sd = O.truncation_std(post, waves, p0).numpy()
    ref = y_ref * tm.cbar * q**4 / np.sqrt(1 - q**2) * math.sqrt(tm.nu / (tm.nu - 2))
    assert np.allclose(sd, ref, rtol=1e-12)
    hw = O.truncation_half_width(post, waves, p0)
    assert np.all(hw < sd * 1.01) and np.all(hw > 0.9 * sd)  # 68 % ~ 1 sigma


def _bind(model, coef, mesh, target=2.224575):
    """Bisect the leading 3S1 contact so that B_d = target [MeV]."""
    lo, hi = -6.0, 10.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        with torch.no_grad():
            coef[0] = mid
            e = float(F.deuteron_energy(model, mesh))
        if -e > target:
            lo = mid
        else:
            hi = mid
    return -e


def _a_s(model, mesh, window):
    """A_S [fm^-1/2] read from u(r) exp(gamma r) on ``window`` [fm]."""
    ch = get_channel("3S1-3D1")
    with torch.no_grad():
        e, psi = D.bound_state(model, ch, mesh)
    gamma = math.sqrt(-float(e) * D.TWO_MU)
    r = np.linspace(*window, 9)
    u = D.r_space(model, ch, mesh, float(e), psi, r)
    props = D.deuteron_properties(model, mesh)
    norm_fac = props.A_S / float(np.mean(D.r_space(model, ch, mesh, float(e), psi,
                                                   np.linspace(12.0, 20.0, 17))[0]
                                         * np.exp(gamma * np.linspace(12.0, 20.0, 17))))
    return float(np.mean(u[0] * np.exp(gamma * r))) * norm_fac


def test_pitfall_network_input_variable_changes_a_s():
    """Same network weights, same B_d: with inputs (p'^2, p^2) V is analytic in p^2, the
    deuteron tail is a pure exp(-gamma r) and A_S is one number; with inputs (p', p) V has
    odd powers of |p| (a power-law tail in r), the 'A_S' read from the tail depends on
    where it is read and differs from the analytic model's."""
    mesh = default_mesh(64)
    out = {}
    for inp in ("p2", "p"):
        m = NuclearPotential(pion={"order": "LO"},
                             short={"jmax": 1, "hidden": 3, "seed": 5, "net_input": inp,
                                    "contacts": "LO"})
        net = m.short.nets["3S1_3D1_00"]
        with torch.no_grad():
            net[-1].weight.mul_(100.0)  # an O(1) correction
        b = _bind(m, m.short.coef["3S1_3D1_00"], mesh)
        assert b == pytest.approx(2.224575, abs=1e-6)
        out[inp] = (_a_s(m, mesh, (12.0, 20.0)), _a_s(m, mesh, (20.0, 28.0)))
    near, far = out["p2"]
    assert far == pytest.approx(near, rel=2e-3)
    near_p, far_p = out["p"]
    assert abs(far_p / near_p - 1) > 5 * abs(far / near - 1)
    assert abs(near_p / near - 1) > 0.01


@pytest.mark.parametrize("name", ["1S0", "3S1-3D1"])
def test_s_wave_attraction_term_value_and_jacobian(name):
    """The S-wave term is sqrt(w) max(0, V(k_1,k_1) + margin) / V0 with V the full potential
    at the lowest mesh momentum; its Jacobian row equals central finite differences, and it
    vanishes (value and row) once V(0,0) is below -margin. No such row in P waves."""
    m = _random_model()
    mesh = two_part_mesh(16, 8, 3.5, 2.0)
    ch = get_channel(name)
    d = F.channel_data(F.make_data((5.0, 50.0), jmax=2), ch)
    key = name.replace("-", "_") + "_00"
    names = lsq.parameter_names(m, ch)
    params = dict(m.named_parameters())

    def term(prob):
        r, jac, _, _ = lsq.residuals(prob, names)
        return r[-1], jac[-1]

    def v00():
        k0 = mesh[0][:1]
        with torch.no_grad():
            return float(m(ch, k0, k0)[0, 0, 0, 0])

    kw = {"s_wave_weight": 100.0, "s_wave_margin": 10.0}
    prob = lsq.Problem(m, ch, mesh, d.p0, d.target, d.sigma, d.weight, **kw)
    with torch.no_grad():  # repulsive at zero momentum: the term is on
        params[f"short.coef.{key}"][0] = 2.0
    val, row = term(prob)
    assert v00() > 0 and float(val) == pytest.approx(10.0 * (v00() + 10.0) / 100.0, rel=1e-10)
    h = 1e-6
    for c in range(len(names)):
        p = params[names[c]].view(-1)
        with torch.no_grad():
            p[0] += h
            up = float(term(prob)[0])
            p[0] -= 2 * h
            dn = float(term(prob)[0])
            p[0] += h
        off = sum(params[n].numel() for n in names[:c])
        # FD rounding: eps · |value| / h ~ 1e-8
        assert float(row[off]) == pytest.approx((up - dn) / (2 * h), rel=1e-5, abs=3e-8)
    with torch.no_grad():  # attractive beyond the margin: the term is off
        params[f"short.coef.{key}"][0] = -3.0
    val, row = term(prob)
    assert v00() < -10.0 and float(val) == 0.0 and float(row.abs().max()) == 0.0
    # the same problem without the weight has one residual fewer; P waves get none
    n_off = lsq.residuals(lsq.Problem(m, ch, mesh, d.p0, d.target, d.sigma, d.weight),
                          names)[0].numel()
    assert lsq.residuals(prob, names)[0].numel() == n_off + 1
    cp = get_channel("3P0")
    dp = F.channel_data(F.make_data((5.0, 50.0), jmax=2), cp)
    pn = lsq.parameter_names(m, cp)
    a = lsq.Problem(m, cp, mesh, dp.p0, dp.target, dp.sigma, dp.weight, **kw)
    b = lsq.Problem(m, cp, mesh, dp.p0, dp.target, dp.sigma, dp.weight)
    assert lsq.residuals(a, pn)[0].numel() == lsq.residuals(b, pn)[0].numel()
