"""Committee and out-of-domain flags on a trained (tiny) copper model."""

from __future__ import annotations

import subprocess
import sys

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from nnpot.atomistic.calculator import load_calculator
from nnpot.atomistic.workflow import fit
from nnpot.config import FitConfig, parse_config


def labelled(atoms):
    atoms.calc = EMT()
    atoms.info["REF_energy"] = atoms.get_potential_energy()
    atoms.arrays["REF_forces"] = atoms.get_forces()
    atoms.calc = None
    return atoms


@pytest.fixture(scope="module")
def committee_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uq")
    rng = np.random.default_rng(0)
    images = []
    for k in range(40):
        a = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.015, 0.015)), cubic=True)
        a = a.repeat((2, 1, 1))
        a.rattle(0.06, seed=k)
        images.append(labelled(a))
    ase.io.write(tmp / "cu.extxyz", images)
    cfg = parse_config(FitConfig, {
        "model": {"cutoff": 4.5, "hidden": [12, 12], "committee": 4},
        "training": {"epochs": 40, "batch_size": 4, "lr": 0.01, "lr_final": 0.001},
        "data": {"valid_fraction": 0.2, "test_fraction": 0.2}})
    res = fit(cfg, tmp / "cu.nnp", data=str(tmp / "cu.extxyz"), progress=False)
    return tmp, res


def test_committee_outputs_and_recalibration(committee_model):
    tmp, res = committee_model
    uq = res.header["uq"]
    assert {"energy", "forces", "domain"} <= set(uq)
    assert 0.1 < uq["forces"]["scale"] < 20  # a sane recalibration factor
    test = res.metrics["test"]
    cal = test["calibration"]["forces_recalibrated"]
    assert 0.5 < cal["coverage_68"] < 0.9


def test_ood_flag_isolated_atom_and_compression_not_heldout(committee_model):
    tmp, res = committee_model
    calc = load_calculator(tmp / "cu.nnp")
    held = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    held.rattle(0.05, seed=999)
    held.calc = calc
    held.get_potential_energy()
    assert not held.calc.results["ood"]
    lone = Atoms("Cu", positions=[[0, 0, 0]])  # no neighbour inside the cutoff
    lone.calc = calc
    lone.get_potential_energy()
    assert lone.calc.results["ood"]
    squeezed = bulk("Cu", "fcc", a=3.61 * 0.85, cubic=True).repeat((2, 1, 1))
    squeezed.calc = calc
    squeezed.get_potential_energy()
    assert squeezed.calc.results["ood_atoms"].all()


def test_predict_cli_writes_std(committee_model, tmp_path):
    tmp, _ = committee_model
    out = tmp_path / "pred.extxyz"
    r = subprocess.run([sys.executable, "-m", "nnpot.cli", "predict", str(tmp / "cu.nnp"),
                        str(tmp / "cu.extxyz"), "--out", str(out)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    images = ase.io.read(out, ":")
    a = images[0]
    assert a.info["energy_std"] > 0 and a.info["max_force_deviation"] > 0
    np.testing.assert_allclose(a.info["max_force_deviation"], a.arrays["forces_std"].max())
    assert a.get_forces().shape == (len(a), 3)
