"""D-optimal design with a block of feature rows per candidate (per-atom information)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from support_select import logdet_pd

from nnpot.active.select import d_optimal, d_optimal_blocks, information_prior
from nnpot.errors import InputError


def _info(blocks, subset, a0):
    return a0 + sum((blocks[j].T @ blocks[j] for j in subset), np.zeros_like(a0))


def _slow_greedy(blocks, k, a0):
    """Each step tries every candidate with an explicit log det of the information."""
    chosen = []
    for _ in range(k):
        vals = [(-np.inf if j in chosen else logdet_pd(_info(blocks, [*chosen, j], a0)))
                for j in range(len(blocks))]
        chosen.append(int(np.argmax(vals)))
    return chosen


def _blocks(rng, n, d, sizes=(1, 4)):
    return [rng.normal(size=(int(rng.integers(*sizes, endpoint=True)), d))
            * rng.uniform(0.2, 2.0) for _ in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_blocks_match_slow_greedy_and_submodular_bound(seed):
    rng = np.random.default_rng(seed)
    n, d, k = 8, 4, 3
    blocks = _blocks(rng, n, d)
    for prior in (1e-1, rng.normal(size=(3, d))):
        a0 = information_prior(d, prior, ridge=1e-8)
        idx, gains = d_optimal_blocks(blocks, k, prior=prior, ridge=1e-8, return_gains=True)
        assert idx.tolist() == _slow_greedy(blocks, k, a0)
        gain_total = logdet_pd(_info(blocks, idx, a0)) - logdet_pd(a0)
        assert gains.sum() == pytest.approx(gain_total, rel=1e-8)
        best = max(logdet_pd(_info(blocks, s, a0)) - logdet_pd(a0)
                   for s in itertools.combinations(range(n), k))
        assert (1 - 1 / np.e) * best - 1e-12 <= gain_total <= best + 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_one_row_per_candidate_is_plain_d_optimal(seed):
    rng = np.random.default_rng(50 + seed)
    phi = rng.normal(size=(12, 5))
    idx, gains = d_optimal_blocks(list(phi[:, None, :]), 4, prior=0.3, return_gains=True)
    ref, ref_gains = d_optimal(phi, 4, prior=0.3, return_gains=True)
    assert idx.tolist() == ref.tolist()
    np.testing.assert_allclose(gains, ref_gains, rtol=1e-10)


def test_blocks_pick_at_most_one_of_identical_structures():
    rng = np.random.default_rng(2)
    big = rng.normal(scale=2.0, size=(5, 3))  # the most informative structure
    blocks = [rng.normal(scale=0.3, size=(5, 3)) for _ in range(4)] + [big.copy()] * 6
    idx = d_optimal_blocks(blocks, 6, prior=1e-3)
    assert sum(int(j) >= 4 for j in idx) == 1 and 4 in idx
    assert len(idx) == 5  # 4 distinct others + one copy; the pool is then exhausted


def test_blocks_bad_inputs():
    with pytest.raises(InputError, match="same number of columns"):
        d_optimal_blocks([np.ones((2, 3)), np.ones((2, 4))], 1)
    with pytest.raises(InputError, match="NaN"):
        d_optimal_blocks([np.full((2, 3), np.nan)], 1)
    assert d_optimal_blocks([], 3).tolist() == []


def _tiny_committee():
    import torch

    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP

    torch.manual_seed(0)
    model = NNP(default_spec(["Cu", "Ni"], cutoff=4.0), hidden=(6, 5), n_members=3, seed=1)
    with torch.no_grad():
        model.feature_mean.normal_(0.0, 0.3)
        model.feature_std.uniform_(0.5, 2.0)
    return model


def _alloy(seed, a=3.6, n_ni=2):
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat((2, 1, 1))
    atoms.numbers[np.random.default_rng(seed).choice(len(atoms), n_ni, replace=False)] = 28
    atoms.rattle(0.05, seed=seed)
    return atoms


def test_atom_features_average_to_structure_features_and_follow_the_atoms():
    from nnpot.active.features import atom_features, structure_features

    model = _tiny_committee()
    structures = [_alloy(s, a=3.55 + 0.03 * s, n_ni=s % 3) for s in range(5)]
    per_atom = atom_features(model, structures, chunk=2)  # chunking must not matter
    mean = np.array([p.mean(axis=0) for p in per_atom])
    np.testing.assert_allclose(mean, structure_features(model, structures), atol=1e-12)
    width = model.n_members * 5  # M·H per element, blocks in model.elements order
    first = 28 if model.elements[0] == "Ni" else 29
    for a, p in zip(structures, per_atom, strict=True):
        assert p.shape == (len(a), 2 * width)
        mine = a.numbers == first
        assert np.all(p[mine, width:] == 0) and np.all(p[~mine, :width] == 0)
        assert np.all(np.abs(p[mine, :width]).sum(axis=1) > 0)
    # permuting the atoms permutes the rows
    a = structures[2]
    perm = np.random.default_rng(0).permutation(len(a))
    np.testing.assert_allclose(atom_features(model, [a[perm]])[0], per_atom[2][perm],
                               atol=1e-12)


def test_choose_batch_d_optimal_atoms():
    from nnpot.active.features import atom_features, choose_batch

    model = _tiny_committee()
    pool = [_alloy(s, a=3.5 + 0.02 * s, n_ni=s % 3) for s in range(10)]
    labelled = [_alloy(20), _alloy(21, a=3.7)]
    ref = np.concatenate(atom_features(model, labelled))
    want = d_optimal_blocks(atom_features(model, pool), 3, prior=ref, ridge=1e-6)
    got = choose_batch("d_optimal_atoms", model, pool, 3, labelled=labelled)
    assert got.tolist() == want.tolist()
    # a structure already labelled carries no new information: its copy is not picked
    # before a new one
    pool2 = [labelled[0].copy(), _alloy(30, a=3.8)]
    assert choose_batch("d_optimal_atoms", model, pool2, 1, labelled=labelled).tolist() == [1]
