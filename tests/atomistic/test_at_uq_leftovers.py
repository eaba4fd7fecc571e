"""Leftovers of the uncertainty issue on atomistic models: the calculator's aleatoric σ,
the structure-level out-of-domain flag and the stored isotonic recalibration.

Models here are tiny and untrained (random weights with the training feature scaling):
the properties tested are bookkeeping and calibration identities that hold for any
weights, so no training is needed and the file stays fast.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from nnpot.atomistic.calculator import NNPCalculator
from nnpot.atomistic.data import Frame
from nnpot.atomistic.descriptors import default_spec
from nnpot.atomistic.model import NNP

CUTOFF = 4.0


def tiny_model(members: int = 2, aleatoric: bool = True) -> NNP:
    return NNP(default_spec(["Cu"], cutoff=CUTOFF), hidden=(6,), n_members=members,
               aleatoric=aleatoric, seed=3)


def cu_frames(n: int, seed: int, repeat=(1, 1, 1), strain: float = 0.02) -> list[Frame]:
    """EMT-labelled fcc Cu cells, lattice 3.61 Å (1 + U(−strain, strain)), rattled 0.05 Å."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-strain, strain)), cubic=True)
        a = a.repeat(repeat)
        a.rattle(0.05, seed=int(rng.integers(1 << 30)))
        a.calc = EMT()
        out.append(Frame(a.numbers.astype(np.int64), a.positions.copy(), np.array(a.cell[:]),
                         a.pbc.copy(), a.get_potential_energy(), a.get_forces()))
    return out


def test_calculator_aleatoric_std_is_a_property_without_warnings():
    """``energy_aleatoric_std`` is listed in ``implemented_properties`` (get_property works)
    and equals sqrt(mean over members of exp(log σ²)) of the model's head; computing it
    raises no torch warning (log σ² is detached before the conversion to float)."""
    torch.manual_seed(0)
    model = tiny_model()
    a = bulk("Cu", "fcc", a=3.61, cubic=True)
    a.rattle(0.05, seed=1)
    calc = NNPCalculator(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = calc.get_property("energy_aleatoric_std", a)
    assert "energy_aleatoric_std" in NNPCalculator.implemented_properties
    from nnpot.atomistic.neighbors import make_batch

    b = make_batch([(a.numbers, a.positions, np.array(a.cell[:]), a.pbc)], {29: 0}, CUTOFF,
                   torch.float64)
    out = model.compute(b, forces=False)
    expect = float(out.log_var[:, 0].detach().exp().mean().sqrt())
    assert s == pytest.approx(expect, rel=1e-12)
    assert s > 0
