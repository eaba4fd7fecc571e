"""label_many: any Executor, input order, bounded retries, timeouts, crashes, dask."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from ase.build import bulk, molecule

from nnpot.active.execute import label_many
from nnpot.active.oracle import BaseOracle, EMTOracle, FlakyOracle, structure_hash
from nnpot.errors import InputError, OracleError


def _frames(n, seed0=0):
    out = []
    for s in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.rattle(0.05, seed=seed0 + s)
        out.append(a)
    return out


class CountingOracle(BaseOracle):
    """EMT that counts its calls per structure; fails the first ``transient`` calls of
    each structure and always on structures whose hash FlakyOracle(p, seed) picks."""

    name = "counting"

    def __init__(self, fail_fraction=0.0, transient=0):
        self.calls = Counter()
        self.lock = threading.Lock()
        self.flaky = FlakyOracle(EMTOracle(), fail_fraction, seed=1)
        self.transient = transient

    def _compute(self, atoms):
        h = structure_hash(atoms)
        with self.lock:
            self.calls[h] += 1
            n = self.calls[h]
        if n <= self.transient or self.flaky.fails(atoms):
            raise OracleError(f"call {n} failed")
        rec = EMTOracle().label(atoms)
        return rec.energy, rec.forces, rec.stress


def test_process_pool_results_in_input_order_equal_serial_labels():
    mol = molecule("CO")
    mol.center(vacuum=3.0)
    frames = _frames(5) + [mol]
    got = []
    records = label_many(EMTOracle(), frames, max_workers=2,
                         on_result=lambda i, r: got.append(i))
    assert sorted(got) == list(range(6))
    for atoms, rec in zip(frames, records, strict=True):
        ref = EMTOracle().label(atoms)
        assert rec.ok and rec.attempts == 1
        assert rec.structure_hash == structure_hash(atoms)
        assert rec.energy == ref.energy
        np.testing.assert_array_equal(rec.forces, ref.forces)
    assert records[-1].stress is None and records[0].stress.shape == (6,)
    assert label_many(EMTOracle(), []) == []


@pytest.mark.parametrize("max_retries", [0, 2])
def test_failures_are_retried_at_most_max_retries_times(max_retries):
    oracle = CountingOracle(fail_fraction=0.4)
    frames = _frames(12)
    with ThreadPoolExecutor(2) as ex:
        records = label_many(oracle, frames, executor=ex, max_retries=max_retries)
    n_bad = 0
    for atoms, rec in zip(frames, records, strict=True):
        h = structure_hash(atoms)
        if oracle.flaky.fails(atoms):
            n_bad += 1
            assert not rec.ok and "failed" in rec.reason
            assert rec.attempts == oracle.calls[h] == 1 + max_retries
        else:
            assert rec.ok and rec.attempts == oracle.calls[h] == 1
    assert 0 < n_bad < 12


def test_transient_failures_succeed_on_retry():
    oracle = CountingOracle(transient=1)
    with ThreadPoolExecutor(2) as ex:
        records = label_many(oracle, _frames(4), executor=ex, max_retries=1)
    assert all(r.ok and r.attempts == 2 for r in records)
    with ThreadPoolExecutor(2) as ex:
        records = label_many(CountingOracle(transient=1), _frames(4), executor=ex,
                             max_retries=0)
    assert not any(r.ok for r in records)


def test_timeout_in_worker_processes():
    frames = _frames(6)
    oracle = FlakyOracle(EMTOracle(), 0.5, seed=0, mode="hang", hang_s=60.0)
    records = label_many(oracle, frames, timeout=1.0, max_retries=1, max_workers=2)
    hung = [oracle.fails(a) for a in frames]
    assert 0 < sum(hung) < 6
    for rec, h in zip(records, hung, strict=True):
        if h:
            assert not rec.ok and rec.reason == "timed out after 1 s" and rec.attempts == 2
        else:
            assert rec.ok and rec.attempts == 1


def test_uninterruptible_hang_and_crashing_worker_only_charge_the_culprit():
    frames = _frames(6)
    stuck = FlakyOracle(EMTOracle(), 0.5, seed=0, mode="stuck", hang_s=60.0)
    records = label_many(stuck, frames, timeout=0.5, timeout_grace=0.5, max_retries=0,
                         max_workers=2)
    for atoms, rec in zip(frames, records, strict=True):
        if stuck.fails(atoms):
            assert not rec.ok and "not interruptible" in rec.reason
        else:
            assert rec.ok, rec.reason
    crash = FlakyOracle(EMTOracle(), 0.5, seed=0, mode="crash")
    records = label_many(crash, frames, max_retries=1, max_workers=2)
    for atoms, rec in zip(frames, records, strict=True):
        if crash.fails(atoms):
            assert not rec.ok and "worker process died" in rec.reason and rec.attempts == 2
        else:
            assert rec.ok and rec.attempts == 1, rec.reason


def test_unpicklable_oracle_is_a_clear_error_for_process_pools():
    oracle = EMTOracle()
    oracle.hook = lambda x: x  # lambdas do not pickle
    with pytest.raises(InputError, match="cannot be pickled"):
        label_many(oracle, _frames(1))
    with ThreadPoolExecutor(1) as ex:
        assert label_many(oracle, _frames(1), executor=ex)[0].ok
    with pytest.raises(InputError):
        label_many(EMTOracle(), _frames(1), max_retries=-1)


def test_dask_local_cluster_end_to_end():
    distributed = pytest.importorskip("dask.distributed")
    frames = _frames(6, seed0=50)
    oracle = FlakyOracle(EMTOracle(), 0.5, seed=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            ex = client.get_executor(pure=False)
            records = label_many(oracle, frames, executor=ex, max_retries=1)
    for atoms, rec in zip(frames, records, strict=True):
        assert rec.structure_hash == structure_hash(atoms)
        if oracle.fails(atoms):
            assert not rec.ok and rec.attempts == 2 and "injected" in rec.reason
        else:
            assert rec.ok and rec.energy == EMTOracle().label(atoms).energy
    assert 0 < sum(oracle.fails(a) for a in frames) < 6
