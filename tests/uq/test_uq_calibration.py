"""Calibration metrics against analytic Gaussian results; recalibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from nnpot.uq import (
    IsotonicRecalibration,
    ScalarRecalibration,
    UQInputError,
    calibration_report,
    combine,
    coverage,
    coverage_curve,
    ence,
    gaussian_nll_np,
    miscalibration_area,
    recalibration_from_dict,
    spearman_error_sigma,
)


def calibrated_samples(n=20000, seed=0):
    """Errors drawn exactly from N(0, σ²) with heteroscedastic σ (log-uniform 0.1..10)."""
    rng = np.random.default_rng(seed)
    sigma = np.exp(rng.uniform(np.log(0.1), np.log(10.0), n))
    return sigma * rng.standard_normal(n), sigma


def analytic_area(factor):
    """∫₀¹ |P(|Z| ≤ z_p / factor) − p| dp for predictions whose σ is ``factor`` × too small
    (factor > 1) or too large (factor < 1)."""

    def integrand(p):
        z = stats.norm.ppf(0.5 * (1 + p))
        return abs(2 * stats.norm.cdf(z / factor) - 1 - p)

    return integrate.quad(integrand, 0, 1, limit=200)[0]


def test_perfectly_calibrated_gaussian():
    err, sigma = calibrated_samples()
    for level in (0.5, 0.68, 0.9, 0.95):
        assert abs(coverage(err, sigma, level) - level) < 0.02
    assert miscalibration_area(err, sigma) < 0.02
    # NLL equals its expectation E[½ log 2πσ² + ½ z²] = mean(½ log 2πσ²) + ½
    expected = np.mean(0.5 * np.log(2 * np.pi * sigma**2)) + 0.5
    assert gaussian_nll_np(err, sigma) == pytest.approx(expected, abs=0.02)
    assert ence(err, sigma, 10) < 0.05
    rep = calibration_report(err, sigma)
    assert set(rep) >= {"coverage_68", "coverage_95", "miscalibration_area", "nll", "ence",
                        "spearman", "rmse", "n"}
    assert abs(rep["coverage_68"] - 0.68) < 0.02 and abs(rep["coverage_95"] - 0.95) < 0.02
    json.dumps(rep)  # JSON-ready


def test_overconfident_and_underconfident():
    err, sigma = calibrated_samples(seed=1)
    half = miscalibration_area(err, sigma / 2)
    assert half > 0.1
    assert half == pytest.approx(analytic_area(2.0), abs=0.01)
    assert miscalibration_area(err, 2 * sigma) == pytest.approx(analytic_area(0.5), abs=0.01)
    # observed 68 % coverage with σ halved: P(|Z| ≤ z_0.68 / 2)
    z68 = stats.norm.ppf(0.84)
    assert coverage(err, sigma / 2, 0.68) == pytest.approx(2 * stats.norm.cdf(z68 / 2) - 1,
                                                           abs=0.01)
    # ENCE with σ halved: RMV = σ/2, RMSE = σ in every bin -> |0.5 − 1| / 0.5 = 1
    assert ence(err, sigma / 2, 10) == pytest.approx(1.0, abs=0.05)
    # the curve is monotone, starts at 0 and ends at 1
    p, obs = coverage_curve(err, sigma / 2, 50)
    assert obs[0] == 0.0 and obs[-1] == 1.0 and np.all(np.diff(obs) >= 0)
    assert np.all(obs[1:-1] < p[1:-1])  # over-confident: under-covers at every level


def test_spearman_ranks_errors():
    err, sigma = calibrated_samples(seed=2)
    assert spearman_error_sigma(err, sigma) > 0.5  # σ spans two decades: it ranks |err|
    rng = np.random.default_rng(3)
    assert abs(spearman_error_sigma(err, rng.permutation(sigma))) < 0.05
    assert np.isnan(spearman_error_sigma(err, np.ones_like(err)))


def test_scalar_recalibration_is_maximum_likelihood():
    err, sigma = calibrated_samples(seed=4)
    rc = ScalarRecalibration().fit(err, sigma / 3)
    assert rc.scale == pytest.approx(3.0, rel=0.02)
    # s maximises the likelihood: NLL(s σ) is smallest at the fitted s
    nll = lambda s: gaussian_nll_np(err, s * sigma / 3)
    assert nll(rc.scale) < min(nll(0.97 * rc.scale), nll(1.03 * rc.scale))
    assert abs(coverage(err, rc(sigma / 3), 0.68) - 0.68) < 0.02
    t = rc(torch.tensor(sigma))
    assert isinstance(t, torch.Tensor)
    rc2 = recalibration_from_dict(json.loads(json.dumps(rc.to_dict())))
    assert isinstance(rc2, ScalarRecalibration) and rc2.scale == rc.scale
    with pytest.raises(UQInputError, match="not fitted"):
        ScalarRecalibration()(sigma)
    with pytest.raises(UQInputError, match="positive"):
        ScalarRecalibration().fit(err, -sigma)


def test_isotonic_recalibration_fixes_heavy_tails():
    """Student-t (ν = 3) errors: one scale factor cannot fix all levels, isotonic can."""
    rng = np.random.default_rng(5)

    def draw(n):
        sigma = np.exp(rng.uniform(-1, 1, n))
        return sigma * stats.t.rvs(3, size=n, random_state=rng), sigma

    ev, sv = draw(5000)
    et, st = draw(20000)
    iso = IsotonicRecalibration().fit(ev, sv)
    sc = ScalarRecalibration().fit(ev, sv)
    levels = (0.5, 0.68, 0.9, 0.95)
    iso_cov = [np.mean(np.abs(et) <= iso.half_width(st, p)) for p in levels]
    sc_cov = [np.mean(np.abs(et) <= sc.half_width(st, p)) for p in levels]
    assert np.max(np.abs(np.array(iso_cov) - levels)) < 0.02
    assert np.max(np.abs(np.array(sc_cov) - levels)) > 0.04
    # Gaussian-equivalent σ' reproduces the 68.27 % interval; multipliers are monotone
    assert abs(coverage(et, iso(st), 0.6827) - 0.6827) < 0.02
    m = iso.multiplier(np.array([0.001, 0.3, 0.6, 0.9, 0.999]))
    assert np.all(np.diff(m) > 0)
    iso2 = recalibration_from_dict(json.loads(json.dumps(iso.to_dict())))
    np.testing.assert_allclose(iso2.multiplier(0.95), iso.multiplier(0.95))
    # on calibrated Gaussian errors the isotonic map is close to the identity
    eg, sg = calibrated_samples(seed=6)
    assert IsotonicRecalibration().fit(eg, sg).multiplier(0.95) == pytest.approx(1.96, rel=0.03)


def test_combine_and_bad_input():
    np.testing.assert_allclose(combine(3.0, 4.0), 5.0)
    a = torch.tensor([3.0], requires_grad=True)
    out = combine(a, torch.tensor([4.0]))
    out.sum().backward()
    assert out.item() == 5.0 and a.grad.item() == pytest.approx(0.6)
    with pytest.raises(UQInputError, match="same number"):
        coverage(np.zeros(3), np.ones(4), 0.68)
    with pytest.raises(UQInputError, match="NaN"):
        coverage(np.array([np.nan]), np.ones(1), 0.68)
    with pytest.raises(UQInputError, match="level"):
        coverage(np.zeros(3), np.ones(3), 1.5)
    with pytest.raises(UQInputError, match="kind"):
        recalibration_from_dict({"kind": "magic"})
