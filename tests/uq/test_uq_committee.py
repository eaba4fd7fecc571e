"""Committees: statistics against slow oracles, DP-GEN deviation, bootstrap, 1-D toy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnpot.uq import (
    ScalarRecalibration,
    UQInputError,
    atomic_force_deviation,
    bootstrap_weights,
    committee_stats,
    max_force_deviation,
)


def test_committee_stats_matches_loop_and_torch():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(5, 7, 3))
    mean, std = committee_stats(y, axis=0)
    for i in range(7):
        for j in range(3):
            vals = [y[m, i, j] for m in range(5)]
            mu = sum(vals) / 5
            assert mean[i, j] == pytest.approx(mu, abs=1e-14)
            assert std[i, j] == pytest.approx(np.sqrt(sum((v - mu) ** 2 for v in vals) / 5))
    t = torch.tensor(y, requires_grad=True)
    tm, ts = committee_stats(t, axis=0)
    np.testing.assert_allclose(tm.detach().numpy(), mean, atol=1e-14)
    np.testing.assert_allclose(ts.detach().numpy(), std, atol=1e-14)
    ts.sum().backward()  # differentiable
    assert t.grad is not None
    # member axis elsewhere
    m2, s2 = committee_stats(np.moveaxis(y, 0, 2), axis=2)
    np.testing.assert_allclose(s2, std, atol=1e-14)


def test_force_deviation_definition():
    # two members with F = ±a on atom 0 and identical forces on atom 1: eps = (|a|, 0)
    a = np.array([0.3, -0.4, 1.2])
    f = np.zeros((2, 2, 3))
    f[0, 0], f[1, 0] = a, -a
    f[:, 1] = [1.0, 2.0, 3.0]
    eps = atomic_force_deviation(f)
    np.testing.assert_allclose(eps, [np.linalg.norm(a), 0.0], atol=1e-14)
    assert max_force_deviation(f) == pytest.approx(np.linalg.norm(a))
    # random case against a slow loop; torch agrees
    rng = np.random.default_rng(1)
    f = rng.normal(size=(4, 6, 3))
    slow = []
    for i in range(6):
        fbar = sum(f[m, i] for m in range(4)) / 4
        slow.append(np.sqrt(sum(np.dot(f[m, i] - fbar, f[m, i] - fbar) for m in range(4)) / 4))
    assert max_force_deviation(f) == pytest.approx(max(slow), rel=1e-13)
    assert max_force_deviation(torch.tensor(f)) == pytest.approx(max(slow), rel=1e-13)
    # a rigid rotation of all members leaves the deviation unchanged (it is a norm)
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    assert max_force_deviation(f @ rot.T) == pytest.approx(max(slow), rel=1e-12)
    with pytest.raises(UQInputError, match="shape"):
        max_force_deviation(np.zeros((3, 4)))


def test_bootstrap_weights():
    w = bootstrap_weights(5000, 4, seed=3)
    assert w.shape == (4, 5000) and w.dtype == np.int64
    assert np.all(w.sum(axis=1) == 5000)
    # each sample is in a member's bag with probability 1 - (1 - 1/n)^n ≈ 1 - 1/e
    frac = (w > 0).mean(axis=1)
    np.testing.assert_allclose(frac, 1 - np.exp(-1), atol=0.015)
    assert not np.array_equal(w[0], w[1])
    np.testing.assert_array_equal(w, bootstrap_weights(5000, 4, seed=3))
    with pytest.raises(UQInputError):
        bootstrap_weights(0, 3, seed=0)


def _train_committee(x, y, n_members, seed):
    xt = torch.tensor(x[:, None])
    yt = torch.tensor(y)
    w = torch.tensor(bootstrap_weights(len(x), n_members, seed=seed), dtype=torch.float64)
    nets = []
    for m in range(n_members):
        torch.manual_seed(100 * seed + m)
        net = torch.nn.Sequential(
            torch.nn.Linear(1, 32), torch.nn.SiLU(),
            torch.nn.Linear(32, 32), torch.nn.SiLU(),
            torch.nn.Linear(32, 1),
        ).double()
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(500):
            loss = (w[m] * (net(xt)[:, 0] - yt) ** 2).sum() / w[m].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        nets.append(net)

    def predict(xx):
        with torch.no_grad():
            return np.stack([n(torch.tensor(xx[:, None]))[:, 0].numpy() for n in nets])

    return predict


def test_committee_spread_grows_away_from_data_and_recalibration_stays_order_one():
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    truth = lambda x: np.sin(2 * x)
    x = rng.uniform(-1, 1, 200)
    y = truth(x) + 0.05 * rng.standard_normal(200)
    predict = _train_committee(x, y, n_members=5, seed=2)

    # in distribution: fit the global factor on a validation set (error vs the truth)
    xv = rng.uniform(-1, 1, 500)
    mv, sv = committee_stats(predict(xv))
    rc = ScalarRecalibration().fit(mv - truth(xv), sv)
    assert 0.3 < rc.scale < 5.0

    spreads, factors = [], []
    for lo, hi in [(1.0, 1.5), (1.5, 2.0), (2.0, 3.0)]:
        xo = np.concatenate([rng.uniform(lo, hi, 250), rng.uniform(-hi, -lo, 250)])
        mo, so = committee_stats(predict(xo))
        spreads.append(so.mean())
        factors.append(ScalarRecalibration().fit(mo - truth(xo), so).scale)
    # spread grows monotonically with the distance from the data
    assert spreads[0] > 3.0 * sv.mean()
    assert spreads[0] < spreads[1] < spreads[2]
    # the factor that would be needed out of distribution stays within 5x of the one fitted
    # in distribution: the spread grows roughly like the error, nothing explodes
    ratios = np.array(factors) / rc.scale
    assert np.all((ratios > 0.2) & (ratios < 5.0)), ratios
