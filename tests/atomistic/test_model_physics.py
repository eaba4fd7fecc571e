"""Physics of the model: invariances, forces/stress = derivatives, extensivity, smoothness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from support_atomistic import attach, random_model, triclinic_cuo, water_molecules

from nnpot.atomistic.data import frame_from_atoms
from nnpot.atomistic.neighbors import make_batch
from nnpot.atomistic.train import predict_prepared, prepare
from nnpot.testing import fd_forces, fd_stress, random_rotation


@pytest.fixture
def cuo_model():
    return random_model(["O", "Cu"])


@pytest.fixture
def water_model():
    return random_model(["H", "O"], cutoff=4.0)


def energy(model, atoms):
    attach(model, atoms)
    return atoms.get_potential_energy()


def test_rotation_translation_permutation_invariance(cuo_model, water_model):
    rng = np.random.default_rng(1)
    mol = water_molecules()
    e0 = energy(water_model, mol.copy())
    rot = mol.copy()
    rot.positions = rot.positions @ random_rotation(rng).T + rng.normal(size=3) * 5
    assert energy(water_model, rot) == pytest.approx(e0, rel=1e-10)
    perm = mol[[3, 4, 5, 0, 2, 1]]  # swap molecules and the two H of the first
    assert energy(water_model, perm) == pytest.approx(e0, rel=1e-10)
    # periodic: rotate positions and cell together, translate, permute like atoms
    cry = triclinic_cuo()
    e1 = energy(cuo_model, cry.copy())
    r = random_rotation(rng)
    rc = cry.copy()
    rc.set_cell(cry.cell[:] @ r.T)
    rc.positions = cry.positions @ r.T + 0.37
    assert energy(cuo_model, rc) == pytest.approx(e1, rel=1e-10)
    order = [2, 0, 3, 1, 5, 4]
    assert energy(cuo_model, cry[order]) == pytest.approx(e1, rel=1e-10)


def test_forces_equal_finite_differences_molecule(water_model):
    mol = attach(water_model, water_molecules())
    f = mol.get_forces()
    assert np.abs(f).max() > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(f, fd_forces(mol, 1e-4), atol=1e-6)


def test_forces_and_stress_finite_differences_triclinic(cuo_model):
    cry = attach(cuo_model, triclinic_cuo())
    f = cry.get_forces()
    np.testing.assert_allclose(f, fd_forces(cry, 1e-4), atol=1e-6)
    s = cry.get_stress()
    assert np.abs(s).max() > 1e-4
    np.testing.assert_allclose(s, fd_stress(cry, 1e-5), atol=1e-7)
    # a triclinic cell smaller than the cutoff (4 Å): primitive fcc Cu, a = 2.55 Å
    prim = bulk("Cu", "fcc", a=3.6) * (1, 1, 1)
    prim.rattle(0.05, seed=3)
    m = random_model(["Cu"], cutoff=4.0)
    attach(m, prim)
    np.testing.assert_allclose(prim.get_stress(), fd_stress(prim, 1e-5), atol=1e-7)
    np.testing.assert_allclose(prim.get_forces(), fd_forces(prim, 1e-4), atol=1e-6)


def test_extensivity_and_small_cells(cuo_model):
    cry = triclinic_cuo()
    e1 = energy(cuo_model, cry.copy())
    e8 = energy(cuo_model, cry.repeat((2, 2, 2)))
    assert e8 == pytest.approx(8 * e1, rel=1e-10)
    m = random_model(["Cu"], cutoff=5.0)
    prim = bulk("Cu", "fcc", a=3.6)  # 1 atom, cell vectors 2.55 Å < cutoff
    sup = prim.repeat((3, 2, 2))
    assert energy(m, sup) / len(sup) == pytest.approx(energy(m, prim), rel=1e-10)


def test_smooth_across_cutoff():
    m = random_model(["Cu"], cutoff=4.0)
    d = np.linspace(3.99, 4.01, 41)
    es, fs = [], []
    for x in d:
        a = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [2.5 + x, 0.0, 0.0]])
        attach(m, a)
        es.append(a.get_potential_energy())
        fs.append(a.get_forces()[2, 0])
    es, fs = np.array(es), np.array(fs)
    assert np.max(np.abs(np.diff(es))) < 1e-6  # no jump when the third atom leaves
    assert np.max(np.abs(np.diff(fs))) < 1e-3
    assert abs(fs[-1]) < 1e-12 and abs(fs[0]) < 1e-3


def test_jacobian_training_path_equals_autograd(cuo_model):
    """The precomputed-Jacobian path used in training gives the calculator's E, F, σ."""
    model = random_model(["O", "Cu"], n_members=3, seed=4)
    atoms = [triclinic_cuo(s) for s in range(3)]
    frames = []
    for a in atoms:
        a.info["REF_energy"] = 0.0
        frames.append(frame_from_atoms(a))
    prep = prepare(model, frames)
    e, f, s, _ = predict_prepared(model, prep, create_graph=False)
    b = make_batch([(fr.numbers, fr.positions, fr.cell, fr.pbc) for fr in frames],
                   {8: 0, 29: 1}, model.spec.cutoff)
    out = model.compute(b, forces=True, stress=True, member_forces=True)
    torch.testing.assert_close(out.energy.detach(), e.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.member_forces[:, :6].detach(), f[0].detach(), atol=1e-11,
                               rtol=1e-9)
    torch.testing.assert_close(out.member_stress.detach(), s.detach(), atol=1e-11, rtol=1e-9)


def test_committee_calculator_spreads():
    m = random_model(["H", "O"], n_members=4, seed=7)
    mol = attach(m, water_molecules())
    mol.get_forces()
    res = mol.calc.results
    assert res["energy_std"] > 0
    assert res["forces_std"].shape == (6,)
    assert res["max_force_deviation"] == pytest.approx(res["forces_std"].max())
