"""Model files round-trip bit-identically; bad input gets one clear error; writes are whole."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from support_atomistic import attach, random_model, water_molecules

from nnpot.atomistic.calculator import load_calculator
from nnpot.atomistic.data import read_frames
from nnpot.atomistic.modelfile import load_model, save_model
from nnpot.config import FitConfig, load_config
from nnpot.errors import (
    BadStructureError,
    ConfigError,
    EmptyDatasetError,
    FormatVersionError,
    MalformedFileError,
    MissingLabelError,
    UnknownElementError,
)
from nnpot.io import HEADER_KEY, load_model_file


def test_save_load_bit_identical(tmp_path):
    model = random_model(["H", "O"], n_members=2, seed=3)
    path = tmp_path / "m.nnp"
    save_model(path, model, {"training": {"note": "test"}})
    calc = load_calculator(path)
    mol = water_molecules()
    attach(model, mol)
    e0, f0 = mol.get_potential_energy(), mol.get_forces()
    mol.calc = calc
    assert mol.get_potential_energy() == e0  # bit-identical, not approx
    assert np.array_equal(mol.get_forces(), f0)
    assert calc.header["training"]["note"] == "test"


def test_newer_format_and_wrong_kind_are_clear_errors(tmp_path):
    from safetensors.torch import save_file

    model = random_model(["H", "O"])
    path = tmp_path / "m.nnp"
    save_model(path, model)
    tensors, header = load_model_file(path)
    header["format_version"] = 99
    newer = tmp_path / "newer.nnp"
    save_file(tensors, str(newer), metadata={HEADER_KEY: json.dumps(header)})
    with pytest.raises(FormatVersionError, match="newer"):
        load_model(newer)
    header["format_version"] = 1
    header["kind"] = "nuclear"
    other = tmp_path / "nuclear.nnp"
    save_file(tensors, str(other), metadata={HEADER_KEY: json.dumps(header)})
    with pytest.raises(FormatVersionError, match="nuclear"):
        load_model(other)
    junk = tmp_path / "junk.nnp"
    junk.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(MalformedFileError):
        load_model(junk)
    pickle_file = tmp_path / "p.nnp"
    torch.save({"a": torch.zeros(2)}, pickle_file)  # a pickle is refused, never unpickled
    with pytest.raises(MalformedFileError):
        load_model(pickle_file)


def test_bad_structures_raise(tmp_path):
    model = random_model(["H", "O"])
    nacl = Atoms("NaCl", positions=[[0, 0, 0], [2.5, 0, 0]])
    with pytest.raises(UnknownElementError, match="Na, Cl"):
        attach(model, nacl).get_potential_energy()
    mol = molecule("H2O")
    mol.positions[1, 0] = np.nan
    with pytest.raises(BadStructureError, match="NaN"):
        attach(model, mol).get_potential_energy()
    mol = molecule("H2O")
    mol.positions[2] = mol.positions[1] + 0.05
    with pytest.raises(BadStructureError, match="closer than 0.1"):
        attach(model, mol).get_potential_energy()


def write(path, text):
    path.write_text(text)
    return path


def test_bad_data_files(tmp_path):
    good = molecule("H2O")
    good.info["REF_energy"] = -1.0
    good.arrays["REF_forces"] = np.zeros((3, 3))
    import ase.io

    ase.io.write(tmp_path / "ok.extxyz", [good])
    assert len(read_frames(tmp_path / "ok.extxyz")) == 1
    with pytest.raises(MissingLabelError, match="'DFT_energy'"):
        from nnpot.atomistic.data import LabelKeys

        read_frames(tmp_path / "ok.extxyz", LabelKeys(energy="DFT_energy"))
    with pytest.raises(EmptyDatasetError):
        read_frames(write(tmp_path / "empty.extxyz", ""))
    with pytest.raises(MalformedFileError):
        read_frames(write(tmp_path / "bad.extxyz", "3\nLattice=\"1 0 0\" \nH 0 0\n"))
    with pytest.raises(MalformedFileError, match="does not exist"):
        read_frames(tmp_path / "missing.extxyz")


def test_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(FitConfig, write(tmp_path / "a.toml", "[training\nepochs = 3"))
    with pytest.raises(ConfigError, match="unknown key 'training.epoch'"):
        load_config(FitConfig, write(tmp_path / "b.toml", "[training]\nepoch = 3\n"))
    with pytest.raises(ConfigError, match="training.lr"):
        load_config(FitConfig, write(tmp_path / "c.toml", "[training]\nlr = -1\n"))


def test_cli_errors_are_one_line_exit_2(tmp_path):
    import ase.io

    mol = molecule("H2O")
    mol.info["REF_energy"] = -1.0
    ase.io.write(tmp_path / "nof.extxyz", [mol])
    cmd = [sys.executable, "-m", "nnpot.cli", "fit", "--data", str(tmp_path / "nof.extxyz"),
           "--out", str(tmp_path / "m.nnp")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "forces" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "m.nnp").exists()  # nothing written half
