"""The active-learning loop: failures recorded, kill -9 / resume gives the same data set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk

from nnpot.active.loop import ActiveLearning
from nnpot.active.oracle import EMTOracle, FlakyOracle
from nnpot.active.settings import ActiveConfig
from nnpot.active.store import RunState, Store
from nnpot.cli import main
from nnpot.config import load_config

CONFIG = """
seed = {seed}
[data]
initial = "{initial}"
[oracle]
kind = "emt"
max_retries = 1
fail_fraction = {fail}
delay_s = {delay}
[executor]
kind = "thread"
workers = 1
[explore]
walkers = 2
steps = 40
dt_fs = 2.0
temperatures = [300.0, 900.0]
max_candidates = 3
candidate_stride = 4
[trust]
mode = "absolute"
lower = 0.02
upper = 2.0
[select]
method = "d_optimal"
batch_size = 3
[loop]
max_iterations = {iters}
max_labels = {budget}
retrain_epochs = 15
[model]
committee = 3
cutoff = 4.0
hidden = [8]
[training]
epochs = 25
batch_size = 4
patience = 100
lr = 0.01
"""


@pytest.fixture
def make_config(tmp_path):
    frames = []
    for s in range(8):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
        a.rattle(0.03, seed=s)
        frames.append(a)
    initial = tmp_path / "initial.extxyz"
    ase.io.write(initial, frames)

    def make(name, seed=1, fail=0.0, delay=0.0, iters=2, budget=1000):
        path = tmp_path / f"{name}.toml"
        path.write_text(CONFIG.format(seed=seed, initial=initial, fail=fail, delay=delay,
                                      iters=iters, budget=budget))
        return path

    return make


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _dataset(run_dir):
    return [(a.info["structure_hash"], a.info["REF_energy"], a.arrays["REF_forces"].tobytes())
            for a in Store(run_dir / "store.db").labelled_atoms()]


def test_failing_oracle_loop_finishes_records_failures_and_cli_plots(make_config, tmp_path,
                                                                     one_thread, capsys):
    cfg_path = make_config("flaky", fail=0.35, budget=5)
    run_dir = tmp_path / "flaky.active"
    assert main(["active", str(cfg_path), "--out", str(run_dir), "--quiet"]) == 0
    assert "labelled" in capsys.readouterr().out
    state = RunState.load(run_dir / "state.json")
    assert state.phase == "done" and state.iteration == 2
    store = Store(run_dir / "store.db")
    cfg = load_config(ActiveConfig, run_dir / "config.resolved.toml")
    flaky = FlakyOracle(EMTOracle(), cfg.oracle.fail_fraction, seed=cfg.seed)
    failures = store.failures()
    assert failures and all(f["reason"] == "OracleError: injected failure" and
                            f["attempts"] == 1 + cfg.oracle.max_retries for f in failures)
    labelled = store.labelled_atoms()
    for a in labelled:
        assert not flaky.fails(a)
        assert a.info["REF_energy"] == EMTOracle().label(a).energy
        assert store.get(a.info["structure_hash"]).attempts == 1
    for f in failures:
        assert flaky.fails(store.atoms(f["hash"]))
    hashes = store.hashes()
    assert len(hashes) == len(set(hashes))
    history = [json.loads(ln) for ln in (run_dir / "iterations.jsonl").read_text().split("\n")
               if ln]
    assert [h["iteration"] for h in history] == [0, 1]
    assert history[-1]["labelled"] == len(labelled) and history[-1]["failed"] == len(failures)
    # the label budget (5) caps what iteration 1 may ask for: 5 minus what iteration 0 got
    assert len(labelled) <= 5
    asked = [r for r in store.rows(iteration=1) if r.status in ("labelled", "failed")]
    assert 0 < len(asked) <= 5 - history[0]["labelled"]
    assert (run_dir / "active.png").stat().st_size > 0
    assert (run_dir / "models" / "iter_001.nnp").exists()
    # a finished run resumes to nothing; a second start in the same folder is refused
    assert main(["active", "--resume", str(run_dir), "--quiet"]) == 0
    assert _dataset(run_dir) == [(a.info["structure_hash"], a.info["REF_energy"],
                                  a.arrays["REF_forces"].tobytes()) for a in labelled]
    assert main(["active", str(cfg_path), "--out", str(run_dir), "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err


ORDER = ["start", "explore", "select", "label", "train", "done"]


def _wait_phase(proc, state_path, phase, iteration, limit_s=120.0):
    """Poll the run state until it reaches (iteration, phase); the state or None."""
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < limit_s:
        try:
            st = RunState.load(state_path)
            if (st.iteration, ORDER.index(st.phase)) >= (iteration, ORDER.index(phase)):
                return st
        except Exception:  # noqa: BLE001 - not written yet
            pass
        time.sleep(0.01)
    return None


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_data_set(make_config, tmp_path, one_thread):
    cfg_path = make_config("kill", delay=0.2)
    ref_dir = tmp_path / "ref"
    ActiveLearning(load_config(ActiveConfig, cfg_path), ref_dir, echo=None).run()
    reference = _dataset(ref_dir)
    assert len(reference) > 8  # the run went past the initial structures

    run_dir = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rng = np.random.default_rng(0)
    cmd = [sys.executable, "-m", "nnpot.cli", "active", "--quiet", "--threads", "1"]
    first = True
    seen = []
    # kill while labels are in flight (iteration 0 and 1), and during training
    for phase, it in (("label", 0), ("train", 0), ("label", 1)):
        args = [str(cfg_path), "--out", str(run_dir)] if first else ["--resume", str(run_dir)]
        proc = subprocess.Popen(cmd + args, env=env, stdout=subprocess.DEVNULL)
        first = False
        st = _wait_phase(proc, run_dir / "state.json", phase, it)
        assert st is not None, "the run ended or stalled before the kill point"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        st = RunState.load(run_dir / "state.json")
        data = _dataset(run_dir)
        print(f"killed at iteration {st.iteration} phase {st.phase}: {len(data)} labelled")
        hashes = [h for h, _, _ in data]
        assert len(hashes) == len(set(hashes))  # never labelled twice
        assert set(hashes) >= set(seen)  # nothing labelled is lost
        seen = hashes
    ActiveLearning.resume(run_dir, echo=None).run()  # the last resume, in this process
    assert _dataset(run_dir) == reference
    assert RunState.load(run_dir / "state.json").phase == "done"
    hashes = Store(run_dir / "store.db").hashes()
    assert len(hashes) == len(set(hashes))
