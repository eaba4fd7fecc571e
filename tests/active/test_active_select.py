"""Batch selection: greedy D-optimal against explicit determinants; farthest point; ties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from support_atomistic import rattled_cu, tiny_cu_committee
from support_select import logdet_pd

from nnpot.active.select import (
    d_optimal,
    farthest_point,
    information_prior,
    max_disagreement,
)
from nnpot.errors import InputError


def _greedy_bruteforce(phi, k, a0):
    """Slow reference: each step tries every candidate with an explicit log det."""
    chosen = []
    a = a0.copy()
    for _ in range(k):
        vals = [(-np.inf if i in chosen else logdet_pd(a + np.outer(p, p)))
                for i, p in enumerate(phi)]
        i = int(np.argmax(vals))
        chosen.append(i)
        a = a + np.outer(phi[i], phi[i])
    return chosen


def _value(phi, subset, a0):
    a = a0 + sum((np.outer(phi[i], phi[i]) for i in subset), np.zeros_like(a0))
    return logdet_pd(a) - logdet_pd(a0)


@pytest.mark.parametrize("seed", range(6))
def test_d_optimal_k1_is_the_exact_optimum(seed):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(15, 4)) * rng.uniform(0.1, 3.0, size=(15, 1))
    a0 = information_prior(4, 0.5)
    idx, gains = d_optimal(phi, 1, prior=0.5, return_gains=True)
    best = max(range(15), key=lambda i: _value(phi, [i], a0))
    assert idx.tolist() == [best]
    assert gains[0] == pytest.approx(_value(phi, [best], a0), rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [2, 3])
def test_d_optimal_matches_bruteforce_greedy_and_bound(seed, k):
    rng = np.random.default_rng(100 + seed)
    n, d = 9, 3
    phi = rng.normal(size=(n, d))
    train = rng.normal(size=(4, d))
    for prior in (1e-2, train):
        a0 = information_prior(d, prior, ridge=1e-8)
        idx, gains = d_optimal(phi, k, prior=prior, return_gains=True)
        assert idx.tolist() == _greedy_bruteforce(phi, k, a0)
        # the gains add up to the explicit log-det increase
        assert gains.sum() == pytest.approx(_value(phi, idx, a0), rel=1e-10)
        # greedy on a monotone submodular function: within (1 - 1/e) of the best subset
        best = max(_value(phi, s, a0) for s in itertools.combinations(range(n), k))
        assert _value(phi, idx, a0) >= (1 - 1 / np.e) * best - 1e-12
        assert _value(phi, idx, a0) <= best + 1e-12


def test_d_optimal_picks_at_most_one_of_ten_duplicates():
    rng = np.random.default_rng(3)
    dup = np.array([[3.0, 0.5, -1.0, 2.0]])  # the most informative candidate
    others = rng.normal(scale=0.3, size=(6, 4))
    phi = np.vstack([others[:3], np.repeat(dup, 10, axis=0), others[3:]])
    for k in (2, 5, 9):  # even when the batch exceeds the distinct candidates
        idx = d_optimal(phi, k, prior=1e-3)
        in_dups = [i for i in idx if 3 <= i < 13]
        assert len(in_dups) == 1 and in_dups[0] == 3  # first copy: lowest index wins
        assert len(set(idx.tolist())) == len(idx)
    assert len(d_optimal(phi, 20, prior=1e-3)) == 7  # 6 distinct others + 1 duplicate


def test_d_optimal_prefers_new_directions_over_known_ones():
    train = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]] * 5)
    phi = np.array([[1.5, 0.0, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 0.2]])
    idx = d_optimal(phi, 2, prior=train, ridge=1e-4)
    assert idx.tolist() == [1, 2]  # the x direction is already well determined


def test_d_optimal_tie_breaking_is_deterministic():
    phi = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert d_optimal(phi, 2, prior=1.0).tolist() == [0, 1]
    assert d_optimal(phi[::-1], 2, prior=1.0).tolist() == [0, 1]


def test_farthest_point_on_known_sets():
    # corners of a unit square, its centre, and a far point: the far point first
    pts = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5], [10, 10]], dtype=float)
    assert farthest_point(pts, 2).tolist() == [5, 0]
    # from a given start on a line: the other end, then the middle
    line = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    assert farthest_point(line, 3, start=0).tolist() == [0, 4, 2]
    # a reference set (the training data) already covers the left half
    ref = np.array([[0.0], [1.0]])
    assert farthest_point(line, 2, reference=ref).tolist() == [4, 2]
    # duplicates are never preferred; the pool is exhausted by distinct points
    dups = np.array([[0.0, 0.0]] * 5 + [[1.0, 0.0]])
    assert farthest_point(dups, 4, start=0).tolist() == [0, 5]


def test_farthest_point_tie_breaking_is_deterministic():
    sq = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert farthest_point(sq, 2).tolist() == [0, 2]
    assert farthest_point(sq, 4).tolist() == farthest_point(sq.copy(), 4).tolist()


def test_max_disagreement_order_and_ties():
    s = np.array([0.1, 0.5, 0.3, 0.5, 0.2])
    assert max_disagreement(s, 3).tolist() == [1, 3, 2]
    assert max_disagreement(s, 10).tolist() == [1, 3, 2, 4, 0]
    assert max_disagreement(s, 0).tolist() == []


def test_bad_inputs_raise_input_errors():
    with pytest.raises(InputError):
        max_disagreement([0.1, np.nan], 1)
    with pytest.raises(InputError):
        max_disagreement([0.1], -1)
    with pytest.raises(InputError):
        d_optimal(np.ones(3), 1)
    with pytest.raises(InputError):
        d_optimal(np.ones((3, 2)), 1, prior=0.0)
    with pytest.raises(InputError):
        d_optimal(np.ones((3, 2)), 1, prior=np.ones((4, 3)))
    with pytest.raises(InputError):
        farthest_point(np.ones((3, 2)), 1, start=5)


_tiny_committee, _cu = tiny_cu_committee, rattled_cu


def test_choose_batch_skips_what_is_labelled_and_matches_the_trigger():
    from nnpot.active.features import choose_batch, max_force_deviation
    from nnpot.atomistic.calculator import NNPCalculator

    model = _tiny_committee()
    known, new = _cu(1), _cu(2, a=3.75)
    pool = [known.copy(), known.copy(), new]
    # a structure already labelled (and its copies) carries no information: both
    # information-based criteria pick the new one
    for method in ("d_optimal", "farthest_point"):
        assert choose_batch(method, model, pool, 1, labelled=[known]).tolist() == [2]
    # disagreement: σ_max equals the calculator's trigger, the largest is picked first
    sig = max_force_deviation(model, pool)
    for a, s in zip(pool, sig, strict=True):
        a = a.copy()
        a.calc = NNPCalculator(model)
        a.get_potential_energy()
        assert s == pytest.approx(a.calc.results["max_force_deviation"], rel=1e-10)
    assert choose_batch("disagreement", model, pool, 1).tolist() == [int(np.argmax(sig))]
    assert choose_batch("disagreement", None, pool, 2, sigmas=[0.1, 0.3, 0.2]).tolist() == [1, 2]
    # random: reproducible by seed, distinct indices, never more than the pool
    r = choose_batch("random", None, list(range(10)), 4, seed=[3, 1])
    assert r.tolist() == choose_batch("random", None, list(range(10)), 4, seed=[3, 1]).tolist()
    assert len(set(r.tolist())) == 4 and r.max() < 10
    assert choose_batch("random", None, pool, 5).tolist() == [0, 1, 2]
    with pytest.raises(InputError, match="selection method"):
        choose_batch("uncertainty", model, pool, 1)
    with pytest.raises(InputError, match="committee model"):
        choose_batch("d_optimal", None, pool, 1)
