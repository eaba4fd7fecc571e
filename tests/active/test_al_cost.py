"""Cost-aware D-optimal selection: information gain per unit label cost."""

import itertools

import numpy as np
import pytest
from ase import Atoms
from pydantic import ValidationError

from nnpot.active.features import choose_batch, label_cost
from nnpot.active.select import d_optimal, d_optimal_blocks
from nnpot.active.settings import SelectConfig
from nnpot.errors import InputError


def _logdet_gain(phi, prior, idx):
    a0 = prior * np.eye(phi.shape[1])
    a = a0 + phi[list(idx)].T @ phi[list(idx)]
    return np.linalg.slogdet(a)[1] - np.linalg.slogdet(a0)[1]


def test_uniform_cost_is_the_plain_greedy():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(30, 5))
    plain = d_optimal(phi, 6, prior=0.5)
    assert np.array_equal(d_optimal(phi, 6, prior=0.5, cost=np.full(30, 7.0)), plain)
    blocks = [rng.normal(size=(int(m), 4)) for m in rng.integers(1, 5, size=12)]
    assert np.array_equal(d_optimal_blocks(blocks, 4, cost=np.ones(12)),
                          d_optimal_blocks(blocks, 4))


def test_cost_benefit_rule_against_hand_computed_ratios():
    """Each pick maximises gain / cost given the earlier picks (checked by recomputing the
    log det gain of every candidate from scratch)."""
    rng = np.random.default_rng(1)
    phi = rng.normal(size=(12, 3))
    cost = rng.uniform(0.5, 5.0, size=12)
    picks = d_optimal(phi, 4, prior=1.0, cost=cost)
    chosen: list[int] = []
    for p in picks:
        base = _logdet_gain(phi, 1.0, chosen)
        ratios = [(_logdet_gain(phi, 1.0, chosen + [j]) - base) / cost[j]
                  if j not in chosen else -np.inf for j in range(12)]
        assert p == int(np.argmax(ratios))
        chosen.append(int(p))


def test_cost_shifts_the_choice_to_cheap_equally_informative_candidates():
    """Two copies of each direction, one cheap and one expensive: with costs the cheap
    copies are taken; per unit cost the selection is at least as informative."""
    base = np.eye(3)
    phi = np.vstack([base, 1.05 * base])  # the expensive copies carry slightly more
    cost = np.array([1.0, 1.0, 1.0, 10.0, 10.0, 10.0])
    assert set(d_optimal(phi, 3, prior=1.0).tolist()) == {3, 4, 5}
    cheap = d_optimal(phi, 3, prior=1.0, cost=cost)
    assert set(cheap.tolist()) == {0, 1, 2}
    best = max((_logdet_gain(phi, 1.0, c) / cost[list(c)].sum(), c)
               for c in itertools.combinations(range(6), 3))
    assert set(best[1]) == set(cheap.tolist())


def test_bad_costs_and_methods_are_refused():
    phi = np.eye(4)
    with pytest.raises(InputError, match="one label cost per candidate"):
        d_optimal(phi, 2, cost=[1.0, 2.0])
    with pytest.raises(InputError, match="finite and > 0"):
        d_optimal(phi, 2, cost=[1.0, 0.0, 1.0, 1.0])
    pool = [Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])] * 3
    with pytest.raises(InputError, match="not to 'disagreement'"):
        choose_batch("disagreement", None, pool, 1, sigmas=[1.0, 2.0, 3.0], cost=[1, 1, 1])
    with pytest.raises(InputError, match="unknown label cost"):
        label_cost(pool, "seconds")
    assert label_cost(pool, "uniform") is None
    assert np.allclose(label_cost(pool, "atoms", 3.0), 27.0)
    with pytest.raises(ValidationError, match="applies to d_optimal"):
        SelectConfig(method="random", cost="atoms")
    assert SelectConfig(method="hybrid", cost="atoms", cost_exponent=3.0).cost == "atoms"
