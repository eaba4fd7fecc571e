"""Oracles: labels in eV, eV/Å, eV/Å³ agree with finite differences; failures are records."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.units import Hartree

from nnpot.active.oracle import (
    EMTOracle,
    FlakyOracle,
    LabelRecord,
    Oracle,
    PySCFOracle,
    XTBOracle,
    structure_hash,
)
from nnpot.errors import InputError


def _fd_forces(oracle, atoms, h=1e-4, indices=None):
    """Five-point finite differences −∂E/∂x [eV/Å] of the oracle's energy (error O(h⁴))."""
    f = np.zeros((len(atoms), 3))
    for i in range(len(atoms)) if indices is None else indices:
        for c in range(3):
            e = {}
            for k in (-2, -1, 1, 2):
                x = atoms.copy()
                x.positions[i, c] += k * h
                e[k] = oracle.label(x).energy
            f[i, c] = -(-e[2] + 8 * e[1] - 8 * e[-1] + e[-2]) / (12 * h)
    return f


def _fd_stress(oracle, atoms, h=1e-5):
    """σ_ab = (1/V) ∂E/∂ε_ab [eV/Å³] by central differences, Voigt order."""
    out = []
    for a, b in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]:
        e = []
        for s in (h, -h):
            eps = np.eye(3)
            eps[a, b] += s / (2 if a != b else 1)
            eps[b, a] += s / 2 if a != b else 0
            x = atoms.copy()
            x.set_cell(atoms.cell.array @ eps, scale_atoms=True)
            e.append(oracle.label(x).energy)
        out.append((e[0] - e[1]) / (2 * h) / atoms.get_volume())
    return np.array(out)


def _cu(seed=0, a=3.6):
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


# -- structure hash ---------------------------------------------------------------------
def test_structure_hash_is_deterministic_and_sensitive():
    a = _cu()
    h = structure_hash(a)
    assert h == structure_hash(a.copy()) and len(h) == 32
    b = a.copy()
    b.positions[0, 0] += 1e-5  # above the 1e-6 Å rounding
    assert structure_hash(b) != h
    c = a.copy()
    c.positions += 1e-9  # below it (positions are not near a rounding edge here)
    assert structure_hash(c) == h
    d = a.copy()
    d.pbc = [True, True, False]
    assert structure_hash(d) != h
    e = a.copy()
    e.set_cell(a.cell.array * 1.001)
    assert structure_hash(e) != h
    m = molecule("H2O")
    m2 = m.copy()
    m2.numbers = m.numbers[[1, 0, 2]]
    assert structure_hash(m2) != structure_hash(m)
    z = Atoms("H", positions=[[0.0, 0.0, 0.0]])
    zn = Atoms("H", positions=[[-0.0, -0.0, -0.0]])
    assert structure_hash(z) == structure_hash(zn)


def test_record_json_round_trip():
    rec = EMTOracle().label(_cu())
    back = LabelRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back.structure_hash == rec.structure_hash and back.energy == rec.energy
    np.testing.assert_array_equal(back.forces, rec.forces)
    np.testing.assert_array_equal(back.stress, rec.stress)


# -- EMT --------------------------------------------------------------------------------
def test_emt_forces_and_stress_equal_finite_differences():
    oracle = EMTOracle()
    atoms = _cu(seed=1)
    rec = oracle.label(atoms)
    assert rec.ok and rec.reason is None and rec.oracle == "emt"
    assert rec.structure_hash == structure_hash(atoms) and rec.wall_time >= 0
    assert rec.forces.shape == (4, 3) and rec.stress.shape == (6,)
    np.testing.assert_allclose(rec.forces, _fd_forces(oracle, atoms), atol=1e-6)
    np.testing.assert_allclose(rec.stress, _fd_stress(oracle, atoms), atol=1e-7)
    assert isinstance(oracle, Oracle)


def test_emt_molecule_has_no_stress_and_atoms_untouched():
    m = molecule("CO")
    m.center(vacuum=4.0)
    before = m.positions.copy()
    rec = EMTOracle().label(m)
    assert rec.ok and rec.stress is None and m.calc is None
    np.testing.assert_array_equal(m.positions, before)


# -- failures become records ---------------------------------------------------------------
def test_failures_are_records_not_exceptions():
    u = Atoms("U2", positions=[[0, 0, 0], [0, 0, 2.5]])
    rec = EMTOracle().label(u)  # EMT has no uranium parameters
    assert not rec.ok and rec.energy is None and "NotImplementedError" in rec.reason
    assert rec.structure_hash == structure_hash(u)
    rec = EMTOracle().label(None)  # not even a structure
    assert not rec.ok and rec.reason
    periodic = _cu()
    rec = PySCFOracle().label(periodic)
    assert not rec.ok and "molecules only" in rec.reason
    slab = _cu()
    slab.pbc = [True, True, False]
    rec = XTBOracle().label(slab)
    assert not rec.ok and "partial pbc" in rec.reason


def test_flaky_oracle_fails_deterministic_fraction():
    frames = [_cu(seed=s) for s in range(200)]
    flaky = FlakyOracle(EMTOracle(), fail_fraction=0.3, seed=7)
    fails = np.array([flaky.fails(a) for a in frames])
    assert 0.2 < fails.mean() < 0.4  # binomial(200, 0.3): sd 0.032
    assert all(flaky.fails(a) == f for a, f in zip(frames[:20], fails[:20], strict=True))
    other = FlakyOracle(EMTOracle(), fail_fraction=0.3, seed=8)
    assert [other.fails(a) for a in frames] != list(fails)
    bad = frames[int(np.argmax(fails))]
    good = frames[int(np.argmin(fails))]
    rec = flaky.label(bad)
    assert not rec.ok and "injected failure" in rec.reason
    assert flaky.label(good).energy == EMTOracle().label(good).energy
    nan = FlakyOracle(EMTOracle(), 1.0, mode="nan").label(good)
    assert not nan.ok and "non-finite" in nan.reason
    with pytest.raises(InputError):
        FlakyOracle(EMTOracle(), 1.5)
    with pytest.raises(InputError):
        FlakyOracle(EMTOracle(), 0.5, mode="explode")


def test_oracles_pickle_with_their_settings():
    for oracle in [EMTOracle(), XTBOracle(accuracy=0.5), PySCFOracle(xc="B3LYP"),
                   FlakyOracle(EMTOracle(), 0.2, seed=3)]:
        back = pickle.loads(pickle.dumps(oracle))
        assert back.settings() == oracle.settings() and back.name == oracle.name
        json.dumps(oracle.settings())
    with pytest.raises(InputError):
        XTBOracle(method="GFN9-xTB")


# -- GFN2-xTB (tblite) ------------------------------------------------------------------------
def test_xtb_molecule_forces_equal_finite_differences():
    oracle = XTBOracle(accuracy=0.01)
    m = molecule("H2O")
    m.rattle(0.02, seed=3)
    rec = oracle.label(m)
    assert rec.ok and rec.stress is None and rec.settings["method"] == "GFN2-xTB"
    assert -140.0 < rec.energy < -135.0  # GFN2 water: −5.07 Eh ≈ −138 eV (sanity, eV scale)
    np.testing.assert_allclose(rec.forces, _fd_forces(oracle, m, h=1e-4), atol=5e-6)
    np.testing.assert_allclose(rec.forces.sum(axis=0), 0.0, atol=1e-8)


def test_xtb_periodic_stress_equals_strain_derivative():
    oracle = XTBOracle(accuracy=0.01)
    box = molecule("H2O")
    box.set_cell([4.5, 4.7, 4.9])
    box.center()
    box.pbc = True
    rec = oracle.label(box)
    assert rec.ok and rec.stress.shape == (6,)
    np.testing.assert_allclose(rec.stress, _fd_stress(oracle, box, h=1e-4), atol=1e-8)


def test_xtb_unconverged_scf_is_a_failure():
    m = molecule("H2O")
    rec = XTBOracle(max_iterations=2).label(m)
    assert not rec.ok and "not converged" in rec.reason.lower()


# -- DFT (PySCF) ------------------------------------------------------------------------------
def test_pyscf_h2_hartree_fock_energy_and_forces():
    # H2 at R = 1.4 bohr, RHF/STO-3G: E = −1.117 Eh (Szabo & Ostlund, Modern Quantum
    # Chemistry, sec. 3.5); checks the Hartree -> eV conversion.
    r = 1.4 * 0.52917721
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, r]])
    oracle = PySCFOracle(xc="HF", basis="sto-3g")
    rec = oracle.label(h2)
    assert rec.ok
    assert abs(rec.energy / Hartree - (-1.1167)) < 1e-4
    fd = _fd_forces(oracle, h2, h=1e-3, indices=[1])
    np.testing.assert_allclose(rec.forces[1], fd[1], atol=1e-7)
    np.testing.assert_allclose(rec.forces[0], -rec.forces[1], atol=1e-9)


def test_pyscf_dft_forces_equal_finite_differences_and_failures():
    h2 = Atoms("H2", positions=[[0, 0, 0], [0.1, 0.05, 0.8]])
    oracle = PySCFOracle(xc="PBE", basis="def2-SVP", threads=1)
    rec = oracle.label(h2)
    assert rec.ok and rec.settings["xc"] == "PBE"
    # PBE's bond is ~0.75 Å; at 0.81 Å the force pulls the atoms together
    bond = h2.positions[1] - h2.positions[0]
    assert rec.forces[1] @ bond < 0
    fd = _fd_forces(oracle, h2, h=1e-3, indices=[1])
    np.testing.assert_allclose(rec.forces[1], fd[1], atol=2e-5)
    bad = PySCFOracle(xc="PBE", basis="def2-SVP", max_cycle=1).label(h2)
    assert not bad.ok and "SCF not converged" in bad.reason
    oh = Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]])  # radical: spin 1 by parity
    rec = PySCFOracle(xc="PBE", basis="sto-3g").label(oh)
    assert rec.ok and np.isfinite(rec.forces).all()
