"""Hybrid selection: disagreement pre-filter, then greedy D-optimal (batch diversity)."""

from __future__ import annotations

import numpy as np
import pytest
from support_atomistic import rattled_cu, tiny_cu_committee
from support_select import logdet_pd

from nnpot.active.select import (
    d_optimal,
    disagreement_then_d_optimal,
    information_prior,
    max_disagreement,
    shortlist_size,
)
from nnpot.errors import InputError


def _slow_hybrid(scores, phi, k, prefilter, a0):
    """Obviously correct reference: sort by score (ties: lower index), keep the first
    ceil(prefilter k), then each step tries every shortlisted candidate with an explicit
    log det."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    short = order[:min(len(scores), int(np.ceil(prefilter * k)))]
    chosen, a = [], a0.copy()
    for _ in range(min(k, len(short))):
        vals = [(-np.inf if i in chosen else logdet_pd(a + np.outer(phi[i], phi[i])))
                for i in short]
        i = short[int(np.argmax(vals))]
        chosen.append(i)
        a = a + np.outer(phi[i], phi[i])
    return chosen


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("prefilter", [1.0, 2.5, 4.0])
def test_hybrid_matches_slow_reference(seed, prefilter):
    rng = np.random.default_rng(seed)
    n, d, k = 14, 3, 3
    scores = rng.uniform(0.0, 1.0, size=n)
    phi = rng.normal(size=(n, d)) * rng.uniform(0.2, 2.0, size=(n, 1))
    train = rng.normal(size=(5, d))
    for prior in (1e-2, train):
        a0 = information_prior(d, prior, ridge=1e-8)
        got = disagreement_then_d_optimal(scores, phi, k, prefilter, prior=prior, ridge=1e-8)
        assert got.tolist() == _slow_hybrid(scores, phi, k, prefilter, a0)
        # every pick is on the shortlist: its score is among the m largest
        m = shortlist_size(n, k, prefilter)
        assert scores[got].min() >= np.sort(scores)[::-1][m - 1]


def test_hybrid_limits_interpolate_between_disagreement_and_d_optimal():
    rng = np.random.default_rng(7)
    n, k = 30, 4
    scores = rng.uniform(size=n)
    phi = rng.normal(size=(n, 5))
    # prefilter 1: the shortlist is the batch, the same set as plain disagreement
    assert sorted(disagreement_then_d_optimal(scores, phi, k, 1.0).tolist()) == sorted(
        max_disagreement(scores, k).tolist())
    # prefilter >= n/k: everything is shortlisted, the same set as plain D-optimal
    assert sorted(disagreement_then_d_optimal(scores, phi, k, n / k).tolist()) == sorted(
        d_optimal(phi, k).tolist())


def test_hybrid_takes_one_of_a_burst_of_identical_frames():
    """Ten copies of one MD frame with the largest σ: disagreement labels the same
    structure k times, the hybrid once, and fills the batch with other candidates."""
    rng = np.random.default_rng(3)
    burst = np.repeat(np.array([[2.0, 0.5, -1.0, 1.0]]), 10, axis=0)
    others = rng.normal(scale=0.5, size=(20, 4))
    phi = np.vstack([others[:5], burst, others[5:]])
    scores = np.concatenate([rng.uniform(0, 0.5, 5), np.full(10, 0.9), rng.uniform(0, 0.5, 15)])
    k = 4
    dis = max_disagreement(scores, k)
    assert all(5 <= i < 15 for i in dis)  # the whole batch is the burst
    hyb = disagreement_then_d_optimal(scores, phi, k, prefilter=4.0, prior=1e-3)
    assert len(hyb) == k == len(set(hyb.tolist()))
    assert sum(5 <= i < 15 for i in hyb) == 1
    assert 5 in hyb  # of equal copies the first (lowest index) is kept


def test_hybrid_bad_inputs():
    phi = np.ones((3, 2))
    with pytest.raises(InputError, match="pre-filter"):
        disagreement_then_d_optimal([0.1, 0.2, 0.3], phi, 1, prefilter=0.5)
    with pytest.raises(InputError, match="feature row per score"):
        disagreement_then_d_optimal([0.1, 0.2], phi, 1)
    with pytest.raises(InputError, match="NaN"):
        disagreement_then_d_optimal([0.1, np.nan, 0.3], phi, 1)


_tiny_committee, _cu = tiny_cu_committee, rattled_cu


def test_choose_batch_hybrid_is_the_array_criterion_on_the_models_features():
    from nnpot.active.features import (
        HYBRID_PREFILTER,
        choose_batch,
        max_force_deviation,
        structure_features,
    )

    model = _tiny_committee()
    pool = [_cu(s, a=3.55 + 0.02 * (s % 7)) for s in range(12)]
    labelled = [_cu(100), _cu(101, a=3.7)]
    sig = max_force_deviation(model, pool)
    phi = structure_features(model, pool, "last_layer")
    ref = structure_features(model, labelled, "last_layer")
    want = disagreement_then_d_optimal(sig, phi, 2, HYBRID_PREFILTER, prior=ref, ridge=1e-6)
    got = choose_batch("hybrid", model, pool, 2, labelled=labelled)
    assert got.tolist() == want.tolist()
    # given σ (the loop passes the watchdog's) it does not recompute them
    assert choose_batch("hybrid", model, pool, 2, sigmas=sig,
                        labelled=labelled).tolist() == want.tolist()
    # a burst of copies of the most uncertain frame: one of them, not the whole batch
    burst = [pool[int(np.argmax(sig))].copy() for _ in range(5)]
    idx = choose_batch("hybrid", model, pool + burst, 3, labelled=labelled)
    top = int(np.argmax(sig))
    assert sum(int(i) in (top, *range(12, 17)) for i in idx) == 1
    with pytest.raises(InputError, match="committee model"):
        choose_batch("hybrid", None, pool, 2, sigmas=sig)
