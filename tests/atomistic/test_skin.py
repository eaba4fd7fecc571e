"""Verlet lists with a skin: the same pairs as fresh vesin lists while atoms move less
than skin/2, and a calculator whose energies, forces, stress and committee spreads equal
the plain calculator's to rounding along an MD run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.md.verlet import VelocityVerlet
from support_atomistic import random_model

from nnpot.atomistic.calculator import NNPCalculator
from nnpot.atomistic.neighbors import neighbor_pairs
from nnpot.atomistic.skin import SkinCalculator, VerletPairs
from nnpot.errors import InputError

torch.set_num_threads(1)


def pair_set(i, j, s):
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, s.tolist()), strict=True))


def water_box(seed=0):
    rng = np.random.default_rng(seed)
    cell = np.array([[6.2, 0.0, 0.0], [0.4, 6.0, 0.0], [-0.3, 0.5, 6.4]])
    mol = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    grid = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = np.concatenate([mol + (g + 0.25) @ cell / 2 + rng.normal(0, 0.05, 3)
                          for g in grid])
    return Atoms("OH2" * len(grid), positions=pos, cell=cell, pbc=True)


@pytest.mark.parametrize("periodic", [True, False])
def test_same_pairs_as_fresh_lists_along_a_random_walk(periodic):
    rng = np.random.default_rng(1)
    atoms = water_box()
    if not periodic:
        atoms.pbc = False
    pos, cell, pbc = atoms.positions.copy(), np.array(atoms.cell), atoms.pbc
    vl = VerletPairs(3.5, skin=0.6)
    for _ in range(40):
        pos += rng.normal(0, 0.03, pos.shape)
        got = vl(pos, cell, pbc)
        ref = neighbor_pairs(pos, cell, pbc, 3.5)
        assert len(ref[0]) > 0
        assert pair_set(*got) == pair_set(*ref)
        assert np.all(np.diff(got[0]) >= 0)  # sorted by centre
    assert 1 < vl.builds < 20  # reused between builds, rebuilt when needed
    vl0 = VerletPairs(3.5, skin=0.0)
    for _ in range(3):
        pos += 0.01
        vl0(pos, cell, pbc)
    assert vl0.builds == 3


def test_cell_change_forces_a_rebuild():
    atoms = water_box()
    vl = VerletPairs(3.5, skin=1.0)
    vl(atoms.positions, np.array(atoms.cell), atoms.pbc)
    cell = np.array(atoms.cell) * 1.01
    got = vl(atoms.positions, cell, atoms.pbc)
    assert vl.builds == 2
    assert pair_set(*got) == pair_set(*neighbor_pairs(atoms.positions, cell, atoms.pbc, 3.5))


def test_bad_skin_raises():
    with pytest.raises(InputError):
        VerletPairs(5.0, skin=-1.0)
    with pytest.raises(InputError):
        VerletPairs(float("nan"))


@pytest.mark.parametrize("members", [1, 3])
def test_calculator_equals_fresh_lists_along_md(members):
    model = random_model(["H", "O"], cutoff=3.5, n_members=members, seed=2)
    with torch.no_grad():  # gentle forces: a stable short NVE run
        for h in model.heads:
            h.weights[-1].mul_(0.05)
    atoms = water_box()
    atoms.set_momenta(np.random.default_rng(3).normal(0, 1.0, (len(atoms), 3)))
    atoms.calc = SkinCalculator(model, skin=0.8)
    ref = NNPCalculator(model)
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    for _ in range(25):
        dyn.run(1)
        probe = atoms.copy()
        probe.calc = ref
        assert atoms.get_potential_energy() == pytest.approx(probe.get_potential_energy(),
                                                             rel=1e-12, abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), probe.get_forces(), atol=1e-10)
        np.testing.assert_allclose(atoms.get_stress(), probe.get_stress(), atol=1e-10)
        for key in ("energy_std", "max_force_deviation"):
            assert atoms.calc.results[key] == pytest.approx(ref.results[key], abs=1e-10)
    assert np.abs(atoms.get_forces()).max() > 1e-3
    assert atoms.calc.verlet.builds < 25
