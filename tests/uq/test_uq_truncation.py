"""BUQEYE truncation model: coefficient extraction, conjugate posterior, band coverage.

Synthetic EFT: ``y = y_ref Σ_{n ∈ orders} c_n Q^n`` with ``c_n ~ N(0, c̄²)`` iid and the
chiral pattern of orders (0, 2, 3, 4, ...; c_1 = 0). With the scale-invariant prior
(ν₀ = 0) the Student-t band is an exact frequentist prediction interval
(``δy / (y_ref c̄ Q^m/√(1−Q²)) ~ N(0, 1)`` is independent of ``Σc²/c̄² ~ χ²_N``), so its
empirical coverage must match the nominal level up to binomial noise.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from nnpot.uq import (
    TruncationGP,
    TruncationModel,
    UQInputError,
    extract_coefficients,
    truncation_band,
)

CHIRAL = (0, 2, 3, 4)  # LO, NLO, N2LO, N3LO
TAIL = tuple(range(5, 40))  # orders beyond N3LO, for the "true" observable


def cumulative(c, y_ref, Q, orders):
    """Order-by-order predictions y_k = y_ref Σ_{n ≤ k} c_n Q^n (slow, explicit)."""
    out, acc = [], 0.0
    for cn, n in zip(c, orders, strict=True):
        acc = acc + y_ref * cn * Q**n
        out.append(acc)
    return np.stack(out)


def test_extract_coefficients_inverts_the_expansion():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(4, 3, 5))
    y_ref = rng.uniform(1, 10, (3, 5))
    Q = rng.uniform(0.1, 0.6, (3, 5))
    y = cumulative(c, y_ref, Q, CHIRAL)
    np.testing.assert_allclose(extract_coefficients(y, y_ref, Q, CHIRAL), c, rtol=1e-10)
    yt = torch.tensor(y, requires_grad=True)
    ct = extract_coefficients(yt, y_ref, torch.tensor(Q), CHIRAL)  # mixed numpy / torch
    np.testing.assert_allclose(ct.detach().numpy(), c, rtol=1e-10)
    ct.sum().backward()  # differentiable through the predictions
    with pytest.raises(UQInputError, match="increasing"):
        extract_coefficients(y, y_ref, Q, (0, 3, 2, 4))
    with pytest.raises(UQInputError, match="entries"):
        extract_coefficients(y, y_ref, Q, (0, 2, 3))
    with pytest.raises(UQInputError, match="nonzero"):
        extract_coefficients(y, 0.0 * y_ref, Q, CHIRAL)


def test_posterior_is_the_conjugate_update():
    """Against a direct grid evaluation of prior × likelihood over c̄²."""
    rng = np.random.default_rng(1)
    c = 0.8 * rng.normal(size=(3, 4))
    m = TruncationModel(nu0=2.0, tau0=1.3).fit(c, orders=(0, 2, 3), exclude_orders=(0,))
    used = c[1:].ravel()
    assert m.nu == 2.0 + used.size
    assert m.tau2 == pytest.approx((2.0 * 1.3**2 + np.sum(used**2)) / m.nu)
    prior = stats.invgamma(a=1.0, scale=2.0 * 1.3**2 / 2)  # χ⁻²(ν₀=2, τ₀²=1.3²)
    unnorm = lambda s2: prior.pdf(s2) * np.prod(stats.norm.pdf(used, scale=np.sqrt(s2)))
    z = integrate.quad(unnorm, 0, np.inf, limit=200)[0]
    for s2 in (0.2, 0.5, 1.0, 3.0):
        assert m.cbar2_posterior().pdf(s2) == pytest.approx(unnorm(s2) / z, rel=1e-6)


def test_posterior_cbar_recovers_truth():
    rng = np.random.default_rng(2)
    cbar_true, Q = 1.7, 0.35
    c = cbar_true * rng.normal(size=(4, 60))  # 60 observables, 4 orders present
    y_ref = rng.uniform(5, 50, 60)
    y = cumulative(c, y_ref, Q, CHIRAL)
    m = TruncationModel().fit(extract_coefficients(y, y_ref, Q, CHIRAL), CHIRAL)
    lo, hi = m.cbar_interval(0.95)
    assert lo < cbar_true < hi
    assert m.cbar == pytest.approx(cbar_true, rel=0.1)
    # frequentist check of the credible interval over many small data sets (ν₀ = 0: exact)
    hits68 = hits95 = 0
    n_rep = 2000
    for _ in range(n_rep):
        mm = TruncationModel(nu0=0.0).fit(cbar_true * rng.normal(size=(3, 2)))
        post = mm.cbar2_posterior()
        hits68 += post.ppf(0.16) < cbar_true**2 < post.ppf(0.84)
        hits95 += post.ppf(0.025) < cbar_true**2 < post.ppf(0.975)
    se = np.sqrt(0.68 * 0.32 / n_rep)
    assert abs(hits68 / n_rep - 0.68) < 3.5 * se
    assert abs(hits95 / n_rep - 0.95) < 3.5 * np.sqrt(0.95 * 0.05 / n_rep)


@pytest.mark.parametrize("k_index", [0, 3])  # LO (next order 2) and N3LO (next order 5)
def test_band_coverage_matches_nominal(k_index):
    rng = np.random.default_rng(3 + k_index)
    cbar_true, Q, n_obs, n_rep = 1.3, 0.4, 6, 1000
    orders_all = CHIRAL + TAIL
    hits = {0.68: 0, 0.95: 0}
    for rep in range(n_rep):
        c = cbar_true * rng.normal(size=(len(orders_all), n_obs))
        y_ref = rng.uniform(1.0, 20.0, n_obs)
        y_all = cumulative(c, y_ref, Q, orders_all)
        truth = y_all[-1]
        pred = y_all[: len(CHIRAL)]  # what an EFT calculation up to N3LO provides
        err = np.abs(truth - pred[k_index])
        for level in hits:
            # at LO the first omitted order is 2 (c_1 = 0), not 1
            nxt = 2 if k_index == 0 else None
            out = truncation_band(pred[: k_index + 1], y_ref, Q, CHIRAL[: k_index + 1],
                                  level=level, nu0=0.0, next_order=nxt)
            hits[level] += int(np.sum(err <= out["half_width"]))
            if rep == 0:  # the per-order bands of a full call are what was known then
                full = truncation_band(pred, y_ref, Q, CHIRAL, level=level, nu0=0.0)
                np.testing.assert_allclose(full["half_width_per_order"][k_index],
                                           out["half_width"], rtol=1e-12)
    n = n_rep * n_obs
    for level, h in hits.items():
        se = np.sqrt(level * (1 - level) / n)
        assert abs(h / n - level) < 4 * se, (level, h / n)


def test_truncation_band_outputs_and_std():
    rng = np.random.default_rng(4)
    Q = np.linspace(0.2, 0.5, 7)
    y_ref = np.full(7, 10.0)
    c = rng.normal(size=(4, 7))
    pred = cumulative(c, y_ref, Q, CHIRAL)
    out = truncation_band(pred, y_ref, Q, CHIRAL, level=0.68)
    m = TruncationModel().fit(c, CHIRAL)
    assert out["half_width"].shape == (7,) and out["std_per_order"].shape == (4, 7)
    np.testing.assert_allclose(out["half_width"], m.band(y_ref, Q, 4, 0.68), rtol=1e-12)
    np.testing.assert_allclose(out["half_width_per_order"][-1], out["half_width"], rtol=1e-12)
    # std = Student-t standard deviation = scale · sqrt(ν/(ν−2)); compare with scipy
    sd = stats.t(df=m.nu, scale=m.scale(y_ref, Q, 4)).std()
    np.testing.assert_allclose(out["std"], sd, rtol=1e-12)
    # the band shrinks order by order like Q^(k+1) when c̄ is fixed
    assert np.all(np.diff(out["half_width_per_order"][1:], axis=0) < 0)
    assert out["cbar"] == pytest.approx(np.sqrt(m.tau2))
    m2 = TruncationModel.from_dict(json.loads(json.dumps(m.to_dict())))
    np.testing.assert_allclose(m2.band(y_ref, Q, 4), m.band(y_ref, Q, 4))
    with pytest.raises(UQInputError, match="between 0 and 1"):
        m.band(y_ref, 1.2, 4)
    with pytest.raises(UQInputError, match="nu > 2"):
        TruncationModel(nu0=0.0).fit(np.ones((2, 1))).std(1.0, 0.3, 2)


# --------------------------------------------------------------------------- GP version
X = np.linspace(0.0, 1.0, 25)


def gp_curves(rng, n_curves, cbar, ell):
    r = np.exp(-0.5 * ((X[:, None] - X[None, :]) / ell) ** 2) + 1e-8 * np.eye(X.size)
    return cbar * rng.normal(size=(n_curves, X.size)) @ np.linalg.cholesky(r).T


def test_gp_marginal_likelihood_against_quadrature():
    rng = np.random.default_rng(5)
    curves = gp_curves(rng, 2, 1.2, 0.3)[:, :6]
    x = X[:6]
    gp = TruncationGP(nu0=3.0, tau0=0.9)
    ell = 0.3
    r = np.exp(-0.5 * ((x[:, None] - x[None, :]) / ell) ** 2) + gp.nugget * np.eye(6)

    def integrand(s2):
        like = np.prod([stats.multivariate_normal(cov=s2 * r).pdf(c) for c in curves])
        return like * stats.invgamma(a=1.5, scale=3.0 * 0.9**2 / 2).pdf(s2)

    ref = integrate.quad(integrand, 0, np.inf, limit=200)[0]
    assert gp.log_marginal_likelihood(ell, x, curves) == pytest.approx(np.log(ref), abs=1e-6)


def test_gp_reduces_to_pointwise_for_uncorrelated_points():
    rng = np.random.default_rng(6)
    c = rng.normal(size=(3, 2, X.size))
    gp = TruncationGP(length_scale=1e-4).fit(X, c)
    pw = TruncationModel().fit(c)
    assert gp.nu == pw.nu and gp.tau2 == pytest.approx(pw.tau2, rel=1e-6)
    np.testing.assert_allclose(gp.band(X, 2.0, 0.3, 2), pw.band(2.0, 0.3, 2), rtol=1e-6)


def test_gp_recovers_hyperparameters_and_covers():
    rng = np.random.default_rng(7)
    cbar_true, ell_true = 1.5, 0.25
    gp = TruncationGP().fit(X, gp_curves(rng, 40, cbar_true, ell_true)[None])
    assert gp.length_scale == pytest.approx(ell_true, rel=0.15)
    assert gp.cbar == pytest.approx(cbar_true, rel=0.1)
    cov = gp.cov(X, 3.0, 0.3, 3)
    np.testing.assert_allclose(cov, cov.T)
    assert np.min(np.linalg.eigvalsh(cov)) > -1e-12 * np.max(np.diag(cov))
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), gp.std(X, 3.0, 0.3, 3))
    # coverage with the true length scale (exact t prediction): truncation error at N3LO
    Q, y_ref, n_rep, hits = 0.3, 4.0, 400, 0
    for _ in range(n_rep):
        known = gp_curves(rng, 4, cbar_true, ell_true)  # orders 0, 2, 3, 4
        tail = gp_curves(rng, 12, cbar_true, ell_true)  # orders 5..16
        delta = y_ref * sum(t * Q ** (5 + j) for j, t in enumerate(tail))
        g = TruncationGP(nu0=0.0, length_scale=ell_true).fit(X, known[:, None, :], CHIRAL)
        hits += int(np.sum(np.abs(delta) <= g.band(X, y_ref, Q, 4, 0.68)))
    frac = hits / (n_rep * X.size)
    # points on one curve are correlated: the effective sample is ~n_rep, not n_rep·n_x
    assert abs(frac - 0.68) < 4 * np.sqrt(0.68 * 0.32 / n_rep)
