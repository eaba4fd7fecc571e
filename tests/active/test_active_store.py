"""Store (ASE SQLite) and RunState: provenance, no double labels, survives kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from ase.build import bulk, molecule

from nnpot.active.oracle import EMTOracle, FlakyOracle, structure_hash
from nnpot.active.store import DuplicateLabelError, RunState, Store
from nnpot.errors import MalformedFileError


def _cu(seed):
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.rattle(0.05, seed=seed)
    return a


def test_store_candidates_labels_failures_and_provenance(tmp_path):
    store = Store(tmp_path / "run.db")
    oracle = FlakyOracle(EMTOracle(), 0.5, seed=0)
    frames = [_cu(s) for s in range(6)]
    for i, a in enumerate(frames):
        h, added = store.add_candidate(a, iteration=1, trigger=0.1 * i)
        assert added and h == structure_hash(a)
        assert store.add_candidate(a, iteration=2) == (h, False)  # never twice
    assert store.counts()["candidate"] == 6 and len(store) == 6
    assert [h for h, _ in store.candidates()] == [structure_hash(a) for a in frames]
    for a in frames:
        rec = oracle.label(a)
        rec.attempts = 2 if not rec.ok else 1
        store.record_label(rec, iteration=1)
    counts = store.counts()
    n_bad = sum(oracle.fails(a) for a in frames)
    assert counts == {"candidate": 0, "labelled": 6 - n_bad, "failed": n_bad, "discarded": 0}
    assert 0 < n_bad < 6
    labelled = store.labelled_atoms()
    for atoms in labelled:
        ref = EMTOracle().label(atoms)
        assert atoms.info["REF_energy"] == ref.energy
        np.testing.assert_array_equal(atoms.arrays["REF_forces"], ref.forces)
        np.testing.assert_array_equal(atoms.info["REF_stress"], ref.stress)
        assert atoms.calc is None and atoms.info["iteration"] == 1
        assert structure_hash(atoms) == atoms.info["structure_hash"]
    row = store.get(labelled[0].info["structure_hash"])
    assert row.oracle == oracle.name and row.wall_time >= 0 and row.attempts == 1
    assert json.loads(row.data["oracle_settings"]) == oracle.settings()
    assert row.trigger == pytest.approx(0.1 * [structure_hash(a) for a in frames].index(row.hash))
    fails = store.failures()
    assert len(fails) == n_bad and all(f["reason"] == "OracleError: injected failure"
                                       and f["attempts"] == 2 for f in fails)
    with pytest.raises(DuplicateLabelError):
        store.record_label(EMTOracle().label(labelled[0]))
    # a molecule labelled directly (no candidate row): atoms are needed, no stress
    m = molecule("CO")
    m.center(vacuum=3.0)
    assert store.record_label(EMTOracle().label(m), atoms=m, iteration=3) == "labelled"
    assert "REF_stress" not in store.labelled_atoms()[-1].info
    # a discarded candidate stays, with its reason, and is not added again
    far = _cu(99)
    h, _ = store.add_candidate(far, iteration=4, trigger=9.9)
    store.discard(h, "above the trust interval", iteration=4)
    assert store.status(h) == "discarded" and store.get(h).reason == "above the trust interval"
    assert store.add_candidate(far, iteration=5) == (h, False)
    # reopening gives the same content
    again = Store(tmp_path / "run.db")
    assert again.counts() == store.counts() and again.hashes() == store.hashes()


def test_run_state_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(5)
    rng.normal(size=3)
    state = RunState(iteration=3, phase="label", rng_state=rng.bit_generator.state,
                     paths={"model": "models/iter3"}, counters={"labels": 12})
    state.save(tmp_path / "state.json")
    back = RunState.load(tmp_path / "state.json")
    assert back == RunState(**json.loads((tmp_path / "state.json").read_text()))
    restored = np.random.default_rng()
    restored.bit_generator.state = back.rng_state
    np.testing.assert_array_equal(restored.normal(size=4), rng.normal(size=4))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(MalformedFileError):
        RunState.load(tmp_path / "bad.json")
    with pytest.raises(MalformedFileError):
        RunState.load(tmp_path / "missing.json")
    with pytest.raises(MalformedFileError):
        RunState(phase="dancing")


WRITER = textwrap.dedent(
    """
    import sys
    from ase.build import bulk
    from nnpot.active.oracle import EMTOracle, structure_hash
    from nnpot.active.store import RunState, Store

    folder, n = sys.argv[1], int(sys.argv[2])
    store = Store(folder + "/run.db")
    oracle = EMTOracle()
    print("ready", flush=True)
    for i in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.rattle(0.05, seed=i)
        h = structure_hash(a)
        if store.status(h) == "labelled":
            continue
        store.add_candidate(a, iteration=i, trigger=float(i))
        store.record_label(oracle.label(a), iteration=i)
        RunState(iteration=i, phase="label",
                 counters={"labelled": store.counts()["labelled"]}).save(folder + "/state.json")
    print("done", flush=True)
    """
)


def _check_consistent(folder, n):
    store = Store(folder / "run.db")
    rows = store.rows()
    hashes = [r.hash for r in rows]
    assert len(hashes) == len(set(hashes))
    expected = {}
    for i in range(n):
        a = _cu(i)
        expected[structure_hash(a)] = a
    for r in rows:
        assert r.hash in expected and r.status in ("candidate", "labelled")
        if r.status == "labelled":
            assert r.forces.shape == (4, 3) and np.isfinite(r.energy)
            assert r.energy == EMTOracle().label(expected[r.hash]).energy
    n_labelled = store.counts()["labelled"]
    if (folder / "state.json").exists():  # the state is written after the database
        state = RunState.load(folder / "state.json")
        assert state.counters["labelled"] <= n_labelled
    return n_labelled


def _wait_for_progress(proc, state_path, target, limit_s=60.0):
    """Poll the run state until ``target`` structures are labelled (or the child ends)."""
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < limit_s:
        try:
            if RunState.load(state_path).counters["labelled"] >= target:
                return
        except MalformedFileError:
            pass  # not written yet (an atomic write is never seen half-done)
        time.sleep(0.005)


def test_killed_writer_leaves_db_and_state_consistent(tmp_path):
    n = 16
    rng = np.random.default_rng(0)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    progress = []
    for target in (2, 7, 12):
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(n)],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout.readline().strip() == "ready"
        _wait_for_progress(proc, tmp_path / "state.json", target)
        time.sleep(float(rng.uniform(0.0, 0.05)))  # a random moment within the next writes
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        progress.append(_check_consistent(tmp_path, n))
    # nothing labelled is ever lost, and each kill happened before the end
    assert progress == sorted(progress) and progress[-1] < n
    out = subprocess.run([sys.executable, str(script), str(tmp_path), str(n)],
                         capture_output=True, text=True, env=env, check=True, timeout=120)
    assert out.stdout.split() == ["ready", "done"]
    assert _check_consistent(tmp_path, n) == n
    assert Store(tmp_path / "run.db").counts()["candidate"] == 0
    assert not (tmp_path / "run.db.lock").exists()
