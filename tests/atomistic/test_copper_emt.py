"""Fitting EMT copper (shipped data set) reaches the issue's accuracy; NVE MD conserves energy.

The one real training run in the test suite (about a minute on one core): test-set force
RMSE ≤ 0.05 eV/Å and energy RMSE ≤ 2 meV/atom, then 1 ps of NVE MD of 500 atoms at
dt = 1 fs with the trained model drifts by at most 1 meV/atom.
"""

from __future__ import annotations

import pytest
from ase.build import bulk

from nnpot.atomistic.calculator import NNPCalculator
from nnpot.atomistic.md import run_md
from nnpot.atomistic.workflow import fit
from nnpot.config import FitConfig, parse_config
from nnpot.data import path as data_path


@pytest.mark.slow
def test_fit_emt_copper_and_nve_drift(tmp_path):
    cfg = parse_config(FitConfig, {
        "model": {"cutoff": 5.0, "hidden": [16, 16]},
        "training": {"epochs": 60, "batch_size": 4, "lr": 0.01, "lr_final": 0.0005,
                     "seed": 0}})
    res = fit(cfg, tmp_path / "cu.nnp", data=str(data_path("cu_emt")), progress=False)
    test = res.metrics["test"]
    assert test["n_structures"] >= 20
    assert test["forces_rmse_mev_ang"] <= 50.0
    assert test["energy_rmse_mev_atom"] <= 2.0

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((5, 5, 5))
    assert len(atoms) == 500
    atoms.calc = NNPCalculator(res.model, check=False)
    md = run_md(atoms, steps=1000, dt_fs=1.0, temperature=300.0, ensemble="nve", seed=1)
    assert md.steps_done == 1000
    assert 100 < max(md.temperature) < 400  # it really moved
    assert md.drift_mev_per_atom(len(atoms)) <= 1.0
