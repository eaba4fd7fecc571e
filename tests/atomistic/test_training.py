"""Training: learning works, a killed run resumes to the same model, labels are respected."""

from __future__ import annotations

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
from ase.calculators.emt import EMT

from nnpot.io import load_model_file


def emt_copper(path, n=24, seed=0):
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.02, 0.02)), cubic=True)
        a = a.repeat((2, 1, 1))
        a.rattle(0.1, seed=int(rng.integers(1 << 30)))
        a.calc = EMT()
        a.info["REF_energy"] = a.get_potential_energy()
        a.arrays["REF_forces"] = a.get_forces()
        a.info["REF_stress"] = a.get_stress()
        a.calc = None
        images.append(a)
    ase.io.write(path, images, format="extxyz")
    return path


CONFIG = """
[model]
cutoff = 4.5
hidden = [10, 10]
committee = 2
[training]
epochs = {epochs}
batch_size = 4
lr = 0.01
lr_final = 0.001
stress_weight = 0.1
patience = 1000
"""


def fit_cmd(tmp_path, data, out, epochs):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG.format(epochs=epochs))
    return [sys.executable, "-m", "nnpot.cli", "fit", "--data", str(data), "--out", str(out),
            "--config", str(cfg), "--quiet", "--run-dir", str(out) + ".run"]


def test_killed_fit_resumes_to_identical_model(tmp_path):
    data = emt_copper(tmp_path / "cu.extxyz")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = tmp_path / "ref.nnp"
    subprocess.run(fit_cmd(tmp_path, data, ref, 40), check=True, env=env, timeout=300,
                   capture_output=True)
    out = tmp_path / "killed.nnp"
    proc = subprocess.Popen(fit_cmd(tmp_path, data, out, 40), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed.nnp.run" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be killed"
    r = subprocess.run(fit_cmd(tmp_path, data, out, 40), env=env, timeout=300,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = metrics.read_text().splitlines()
    assert [int(__import__("json").loads(ln)["epoch"]) for ln in lines] == list(range(1, 41))
    t_ref, h_ref = load_model_file(ref)
    t_res, _ = load_model_file(out)
    for k in t_ref:
        torch.testing.assert_close(t_res[k], t_ref[k], rtol=0, atol=0)


def test_fit_learns_emt_copper(tmp_path):
    """Tiny model, tiny data: the test-set errors fall far below the label spread."""
    from nnpot.atomistic.workflow import fit
    from nnpot.config import FitConfig, parse_config

    data = emt_copper(tmp_path / "cu.extxyz", n=30, seed=1)
    cfg = parse_config(FitConfig, {"model": {"cutoff": 4.5, "hidden": [16, 16]},
                                   "training": {"epochs": 60, "batch_size": 4, "lr": 0.01,
                                                "lr_final": 0.001}})
    res = fit(cfg, tmp_path / "cu.nnp", data=str(data), progress=False)
    frames = ase.io.read(data, ":")
    f_spread = np.sqrt(np.mean(np.concatenate([a.arrays["REF_forces"].ravel()
                                               for a in frames]) ** 2))
    e_pa = np.array([a.info["REF_energy"] / len(a) for a in frames])
    test = res.metrics["test"]
    assert test["forces_rmse_mev_ang"] / 1000 < 0.35 * f_spread
    assert test["energy_rmse_mev_atom"] / 1000 < 0.35 * e_pa.std()
    assert (tmp_path / "cu.nnp.run" / "config.resolved.toml").exists()


@pytest.mark.parametrize("weights", [(1.0, 0.0)])
def test_energy_only_fit_needs_no_forces(tmp_path, weights):
    from nnpot.atomistic.workflow import fit
    from nnpot.config import FitConfig, parse_config

    data = emt_copper(tmp_path / "cu.extxyz", n=12, seed=2)
    images = ase.io.read(data, ":")
    for a in images:
        del a.arrays["REF_forces"]
    ase.io.write(tmp_path / "e.extxyz", images)
    cfg = parse_config(FitConfig, {"model": {"cutoff": 4.0, "hidden": [6]},
                                   "training": {"epochs": 3, "energy_weight": weights[0],
                                                "forces_weight": weights[1]}})
    res = fit(cfg, tmp_path / "e.nnp", data=str(tmp_path / "e.extxyz"), progress=False)
    assert "forces_rmse_mev_ang" not in res.metrics["test"]


def test_feature_scaling_floor_keeps_barely_reached_shells_from_exploding():
    """A shell the training data barely reach (std 1e-7) is scaled by at least 1 % of the
    median std, not by 1/1e-7; constant features get 1; the others are untouched."""
    import torch

    from nnpot.atomistic.statistics import STD_FLOOR, std_with_floor

    std = torch.tensor([1e-7, 0.05, 0.1, 0.2, 0.0, 3.0], dtype=torch.float64)
    out = std_with_floor(std)
    med = float(torch.tensor([1e-7, 0.05, 0.1, 0.2, 3.0]).median())
    assert float(out[0]) == pytest.approx(STD_FLOOR * med)
    assert out[4] == 1.0 and torch.equal(out[[1, 2, 3, 5]], std[[1, 2, 3, 5]])
    # a new environment reaching the shell (value 0.05 above the mean) stays O(10)
    assert 0.05 / float(out[0]) < 100 < 0.05 / 1e-7
    assert torch.equal(std_with_floor(torch.zeros(3, dtype=torch.float64)),
                       torch.ones(3, dtype=torch.float64))
