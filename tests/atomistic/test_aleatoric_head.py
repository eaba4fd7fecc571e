"""The heteroscedastic (aleatoric) head learns injected, geometry-dependent label noise.

Synthetic set: 8-atom EMT copper cells, lattice parameter a = 3.61 Å (1 + s) with
s ~ U(−3 %, 3 %), atoms rattled by 0.05 Å. Expanded cells (s > 0) get Gaussian noise of
σ_true = 0.1 eV added to their energy label; compressed cells keep exact EMT energies. The
forces are exact everywhere, so they pin the mean and the energy noise is pure aleatoric
noise that the head can attribute from the descriptors (the volume). A head trained by
Gaussian NLL after an MSE warm-up must predict σ_E ≈ σ_true on expanded cells and a much
smaller σ (the fit error only) on compressed ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from scipy.stats import spearmanr

from nnpot.atomistic.data import Frame
from nnpot.atomistic.train import prepare, train
from nnpot.atomistic.workflow import build_model, build_uq, evaluate, predict_frames
from nnpot.config import FitConfig, parse_config

SIGMA_TRUE = 0.1  # eV per structure, on the expanded half
EPOCHS = 60
WARMUP = 0.3


def cu_frames(n: int, seed: int) -> tuple[list[Frame], np.ndarray]:
    """``n`` labelled cells and the true energy-noise σ of each (eV)."""
    rng = np.random.default_rng(seed)
    frames, sig = [], []
    for _ in range(n):
        s = rng.uniform(-0.03, 0.03)
        a = bulk("Cu", "fcc", a=3.61 * (1 + s), cubic=True).repeat((2, 1, 1))
        a.rattle(0.05, seed=int(rng.integers(1 << 30)))
        a.calc = EMT()
        sn = SIGMA_TRUE if s > 0 else 0.0
        e = a.get_potential_energy() + sn * rng.standard_normal()
        frames.append(Frame(a.numbers.astype(np.int64), a.positions.copy(),
                            np.array(a.cell[:]), a.pbc.copy(), e, a.get_forces()))
        sig.append(sn)
    return frames, np.array(sig)


def trained(tmp_path, beta_nll=None, committee=1):
    torch.manual_seed(0)
    from nnpot.atomistic.statistics import fit_statistics

    tr, _ = cu_frames(64, 0)
    va, _ = cu_frames(16, 1)
    cfg = parse_config(FitConfig, {
        "model": {"cutoff": 4.5, "hidden": [12, 12], "aleatoric": True,
                  "committee": committee},
        "training": {"epochs": EPOCHS, "batch_size": 8, "lr": 0.01, "lr_final": 0.001,
                     "aleatoric_warmup": WARMUP, "beta_nll": beta_nll, "patience": 15}})
    model = build_model(cfg, ["Cu"])
    ptr, pva = prepare(model, tr), prepare(model, va)
    fit_statistics(model, ptr, tr)
    log: list[dict] = []
    state = train(model, ptr, pva, cfg.training, tmp_path, progress=False, log=log.append)
    return model, state, log, ptr, va


@pytest.fixture(scope="module")
def nll_model(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("alea"))


@pytest.fixture(scope="module")
def test_set():
    return cu_frames(80, 2)


def head_sigma(model, frames) -> np.ndarray:
    return np.array([p["energy_aleatoric_std"] for p in predict_frames(model, frames)])


def test_head_recovers_injected_noise(nll_model, test_set):
    model, *_ = nll_model
    frames, sig_true = test_set
    s = head_sigma(model, frames)
    noisy, clean = s[sig_true > 0], s[sig_true == 0]
    # the data-rich noisy half: σ within ±25 % of the truth
    assert abs(noisy.mean() / SIGMA_TRUE - 1) < 0.25
    # the clean half only carries the fit error: much smaller σ
    assert clean.mean() < 0.5 * noisy.mean()
    assert spearmanr(s, sig_true)[0] > 0.7


def test_selection_keeps_an_nll_trained_head(nll_model):
    """The best state is chosen among NLL epochs by the validation NLL (an epoch of the
    MSE warm-up would carry an untrained head), and no early stop cuts the warm-up."""
    _, state, log, *_ = nll_model
    start = int(WARMUP * EPOCHS)
    assert state["best_epoch"] > start
    nll = [r["valid_energy_nll"] for r in log]
    assert np.isfinite(nll).all()
    # selection is by the validation loss (energy NLL + the force term), so the chosen
    # epoch's energy NLL is the best one up to what the force term can tip
    assert log[state["best_epoch"] - 1]["valid_energy_nll"] <= min(nll[start:]) + 0.01
    # NLL training lowered the validation NLL below its value at the end of the warm-up
    assert min(nll[start:]) < nll[start - 1] - 0.5


def test_calibration_through_evaluate(nll_model, test_set):
    """The head's σ, recalibrated on the validation split, covers ~68 % of test errors;
    a single model has no committee force σ, so only energies are reported."""
    model, _, _, ptr, va = nll_model
    frames, _ = test_set
    header = {"uq": build_uq(model, ptr, va)}
    assert 0.5 < header["uq"]["energy"]["scale"] < 2.0  # NLL-trained σ is near calibrated
    assert "forces" not in header["uq"]
    cal = evaluate(model, frames, header=header)["calibration"]
    assert set(cal) == {"energy_raw", "energy_recalibrated"}
    raw = cal["energy_raw"]
    assert 0.55 < raw["coverage_68"] < 0.82 and 0.85 < raw["coverage_95"] <= 1.0
    assert raw["spearman"] > 0.3  # σ ranks the test errors


def test_beta_nll_and_committee_head(tmp_path, test_set):
    """β-NLL (β = 0.5) with a two-member committee: the head still separates the noisy
    half, and the combined σ² = σ_committee² + σ_aleatoric² is at least the head's."""
    model, state, *_ = trained(tmp_path, beta_nll=0.5, committee=2)
    frames, sig_true = test_set
    preds = predict_frames(model, frames)
    s = np.array([p["energy_aleatoric_std"] for p in preds])
    assert s[sig_true > 0].mean() > 2 * s[sig_true == 0].mean()
    assert abs(s[sig_true > 0].mean() / SIGMA_TRUE - 1) < 0.35
    assert all(p["energy_std"] > 0 for p in preds)
