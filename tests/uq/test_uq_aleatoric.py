"""Aleatoric losses against scipy / analytic gradients, and a heteroscedastic toy fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from nnpot.uq import (
    ScalarRecalibration,
    UQInputError,
    beta_nll,
    coverage,
    gaussian_nll,
    heteroscedastic_loss,
    positive_variance,
    structure_variance,
)


def test_gaussian_nll_is_minus_log_density():
    rng = np.random.default_rng(0)
    mu, y = rng.normal(size=50), rng.normal(size=50)
    var = rng.uniform(0.1, 2.0, 50)
    ref = -stats.norm.logpdf(y, loc=mu, scale=np.sqrt(var))
    np.testing.assert_allclose(gaussian_nll(mu, var, y, reduction="none"), ref, rtol=1e-13)
    assert gaussian_nll(mu, var, y) == pytest.approx(ref.mean(), rel=1e-13)
    assert gaussian_nll(mu, var, y, reduction="sum") == pytest.approx(ref.sum(), rel=1e-13)
    t = gaussian_nll(torch.tensor(mu), torch.tensor(var), torch.tensor(y))
    assert float(t) == pytest.approx(ref.mean(), rel=1e-13)
    with pytest.raises(UQInputError, match="reduction"):
        gaussian_nll(mu, var, y, reduction="avg")
    with pytest.raises(UQInputError, match="positive"):
        gaussian_nll(mu, -var, y)


def test_beta_nll_weights_and_gradients():
    rng = np.random.default_rng(1)
    mu = torch.tensor(rng.normal(size=20), requires_grad=True)
    var = torch.tensor(rng.uniform(0.2, 3.0, 20), requires_grad=True)
    y = torch.tensor(rng.normal(size=20))
    # beta = 0 is plain NLL
    b0 = beta_nll(mu, var, y, beta=0.0).item()
    assert b0 == pytest.approx(gaussian_nll(mu, var, y).item(), rel=1e-14)
    # value: each sample's NLL times var^beta
    b = 0.5
    ref = (var.detach() ** b * gaussian_nll(mu, var, y, reduction="none")).mean()
    assert beta_nll(mu, var, y, beta=b).item() == pytest.approx(ref.item(), rel=1e-13)
    # beta = 1: the mean gets exactly the MSE gradient (mu - y)/N (Seitzer et al. 2022)
    beta_nll(mu, var, y, beta=1.0).backward()
    np.testing.assert_allclose(mu.grad.numpy(), ((mu - y) / 20).detach().numpy(), rtol=1e-12)
    # ... and var gets the NLL gradient times stop_grad(var)^beta
    vg = var.grad.clone()
    var.grad = None
    gaussian_nll(mu, var, y).backward()
    np.testing.assert_allclose(vg.numpy(), (var.grad * var.detach()).numpy(), rtol=1e-12)
    with pytest.raises(UQInputError, match="beta"):
        beta_nll(mu, var, y, beta=1.5)


def test_positive_variance_and_structure_variance():
    raw = np.linspace(-50, 50, 11)
    v = positive_variance(raw, min_var=1e-6)
    assert np.all(v >= 1e-6)
    np.testing.assert_allclose(v, positive_variance(torch.tensor(raw), 1e-6).numpy(), rtol=1e-12)
    av = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    idx = np.array([0, 0, 2, 2, 2])
    np.testing.assert_allclose(structure_variance(av, idx, 3), [3.0, 0.0, 12.0])
    t = structure_variance(torch.tensor(av, requires_grad=True), torch.tensor(idx), 3)
    np.testing.assert_allclose(t.detach().numpy(), [3.0, 0.0, 12.0])
    with pytest.raises(UQInputError):
        structure_variance(av, np.array([0, 0, 5, 2, 2]), 3)


def sigma_true(x):
    """Known noise level of the toy data: 0.05 at x = -1 growing linearly to 0.25 at x = 1."""
    return 0.05 + 0.1 * (x + 1.0)


def test_heteroscedastic_head_recovers_noise_level():
    """MSE warm-up then β-NLL on 1-D data with known σ(x)."""
    torch.set_num_threads(1)
    f = lambda x: np.sin(3 * x)
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.uniform(-1, 1, n)
    y = f(x) + sigma_true(x) * rng.standard_normal(n)
    xt, yt = torch.tensor(x[:, None]), torch.tensor(y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(1, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 2),
    ).double()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for it in range(1500):
        out = net(xt)
        kind = "mse" if it < 300 else "beta_nll"
        loss = heteroscedastic_loss(out[:, 0], positive_variance(out[:, 1]), yt, kind, beta=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it == 1000:
            for g in opt.param_groups:
                g["lr"] = 3e-3

    def predict(xx):
        with torch.no_grad():
            out = net(torch.tensor(xx[:, None]))
        return out[:, 0].numpy(), positive_variance(out[:, 1]).sqrt().numpy()

    # sigma within ±20 % of the truth over the data-rich region (away from the edges)
    xg = np.linspace(-0.9, 0.9, 37)
    _, sg = predict(xg)
    rel = sg / sigma_true(xg) - 1.0
    assert np.max(np.abs(rel)) < 0.20, rel

    # recalibrate on a validation split, check 68 % coverage on a fresh test set
    xv = rng.uniform(-1, 1, 1000)
    yv = f(xv) + sigma_true(xv) * rng.standard_normal(1000)
    xs = rng.uniform(-1, 1, 2000)
    ys = f(xs) + sigma_true(xs) * rng.standard_normal(2000)
    mv, sv = predict(xv)
    ms, ss = predict(xs)
    rc = ScalarRecalibration().fit(mv - yv, sv)
    assert 0.61 <= coverage(ms - ys, rc(ss), 0.68) <= 0.75
    # the predicted noise level ranks the true one
    assert stats.spearmanr(ss, sigma_true(xs))[0] > 0.8
