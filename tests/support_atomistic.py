"""Helpers for atomistic tests: tiny random (untrained, non-trivial) models, structures."""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule

from nnpot.atomistic.calculator import NNPCalculator
from nnpot.atomistic.descriptors import default_spec
from nnpot.atomistic.model import NNP


def random_model(elements, cutoff=4.0, n_members=1, seed=0, aleatoric=False) -> NNP:
    torch.manual_seed(seed)
    model = NNP(default_spec(elements, cutoff=cutoff), hidden=(8, 8), n_members=n_members,
                seed=seed, aleatoric=aleatoric)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():  # O(1) weights so every feature matters
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        model.feature_std.fill_(2.0)
        model.energy_scale.fill_(0.3)
        model.e_ref.copy_(torch.linspace(-1.0, -3.0, len(elements), dtype=torch.float64))
    return model


def triclinic_cuo(seed=0) -> Atoms:
    rng = np.random.default_rng(seed)
    cell = np.array([[3.6, 0.0, 0.0], [0.9, 3.4, 0.0], [0.5, 0.7, 3.8]])
    frac = rng.random((6, 3))
    atoms = Atoms("Cu4O2", scaled_positions=frac, cell=cell, pbc=True)
    # push apart atoms that came out too close
    while True:
        d = atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, 10)
        if d.min() > 1.5:
            return atoms
        atoms.rattle(0.3, seed=int(rng.integers(1 << 30)))


def water_molecules() -> Atoms:
    a = molecule("H2O")
    b = molecule("H2O")
    b.rotate(70, "x")
    b.translate([2.6, 0.3, 0.4])
    return a + b


def attach(model, atoms):
    atoms.calc = NNPCalculator(model)
    return atoms



def tiny_cu_committee() -> NNP:
    """An untrained 3-member Cu committee (4 Å cutoff, 6-5 networks) with non-trivial
    feature scaling, for selection tests."""
    torch.manual_seed(0)
    model = NNP(default_spec(["Cu"], cutoff=4.0), hidden=(6, 5), n_members=3, seed=1)
    with torch.no_grad():
        model.feature_mean.normal_(0.0, 0.3)
        model.feature_std.uniform_(0.5, 2.0)
    return model


def rattled_cu(rattle_seed, a=3.61) -> Atoms:
    """A 2x1x1 cubic fcc Cu cell (8 atoms) rattled by 0.05 Å."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=rattle_seed)
    return atoms
