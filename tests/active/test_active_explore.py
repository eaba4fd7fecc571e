"""Watchdog and walkers: pause exactly at the threshold, resume from the last trusted frame;
last-layer features are exactly the gradient of the per-atom energy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from nnpot.active.explore import Watchdog, run_walker
from nnpot.active.features import structure_features
from nnpot.atomistic.descriptors import default_spec
from nnpot.atomistic.model import NNP
from nnpot.atomistic.neighbors import make_batch
from nnpot.errors import InputError


class FakeCommittee(Calculator):
    """EMT forces, and a 'committee deviation' σ = c · (max displacement from ``ref``) in
    eV/Å, so σ grows as the trajectory leaves its start."""

    implemented_properties = ["energy", "forces", "max_force_deviation"]

    def __init__(self, ref, c=1.0):
        super().__init__()
        self.ref = np.array(ref)
        self.c = c

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = EMT()
        self.results["energy"] = a.get_potential_energy()
        self.results["forces"] = a.get_forces()
        disp = np.linalg.norm(self.atoms.positions - self.ref, axis=1).max()
        self.results["max_force_deviation"] = self.c * disp


def _cu():
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    a.rattle(0.02, seed=4)
    return a


def test_watchdog_decisions():
    dog = Watchdog(0.1, 0.5, max_candidates=2, candidate_stride=3)
    kinds = [dog(s, i).kind for i, s in enumerate([0.05, 0.1, 0.2, 0.3, 0.09, 0.2, 0.6])]
    assert kinds == ["trusted", "candidate", "skipped", "skipped", "trusted", "candidate",
                     "discard"]
    dog = Watchdog(0.1, 0.5)
    assert dog(0.0999, 1).pause is False and dog(0.1, 2).pause is True  # lower is included
    assert Watchdog(0.1, 0.5)(0.5, 3).kind == "discard"  # upper is excluded
    assert Watchdog(0.1, 0.5)(float("nan"), 3).kind == "discard"
    with pytest.raises(InputError):
        Watchdog(0.5, 0.1)


def test_walker_pauses_exactly_at_threshold_and_resumes_from_last_trusted():
    start = _cu()
    calc = FakeCommittee(start.positions, c=1.0)
    free = run_walker(start, calc, Watchdog(1e3, 1e4), steps=40, dt_fs=2.0,
                      temperature=600.0, ensemble="nve", seed=3)
    ref = np.array(free.sigmas)
    assert free.paused_at is None and free.steps_done == 40 and len(ref) == 41
    lower = 0.5 * (ref[20] + ref.max()) if ref[20] < ref.max() else ref[20]
    first = int(np.argmax(ref >= lower))
    assert 0 < first <= 40
    res = run_walker(start, calc, Watchdog(lower, 1e4), steps=40, dt_fs=2.0,
                     temperature=600.0, ensemble="nve", seed=3)
    assert res.paused_at == first and res.steps_done == first
    assert len(res.candidates) == 1 and res.candidates[0].info["step"] == first
    assert res.candidates[0].info["sigma"] == ref[first] >= lower
    trusted = res.last_trusted
    assert trusted.info["step"] == first - 1 and trusted.info["sigma"] < lower
    assert np.any(trusted.get_momenta())
    # resuming from the last trusted frame retraces the same trajectory (NVE)
    again = run_walker(trusted, calc, Watchdog(1e3, 1e4), steps=2, dt_fs=2.0,
                       temperature=600.0, ensemble="nve", seed=99)
    np.testing.assert_allclose(again.sigmas, ref[first - 1:first + 2], rtol=0, atol=1e-12)


def test_walker_collects_candidates_then_discards_above_upper():
    start = _cu()
    calc = FakeCommittee(start.positions, c=1.0)
    ref = np.array(run_walker(start, calc, Watchdog(1e3, 1e4), steps=60, dt_fs=2.0,
                              temperature=900.0, ensemble="nve", seed=5).sigmas)
    lower, upper = np.quantile(ref, 0.2), np.quantile(ref, 0.9)
    res = run_walker(start, calc, Watchdog(lower, upper, max_candidates=100,
                                           candidate_stride=4),
                     steps=60, dt_fs=2.0, temperature=900.0, ensemble="nve", seed=5)
    first_over = int(np.argmax(ref >= upper))
    assert res.paused_at == first_over and res.discarded[0].info["sigma"] >= upper
    steps = [a.info["step"] for a in res.candidates]
    assert steps and np.all(np.diff(steps) >= 4)
    assert all(lower <= a.info["sigma"] < upper for a in res.candidates)
    # Langevin with a temperature ramp runs and is reproducible by seed
    kw = dict(steps=10, dt_fs=2.0, temperature=100.0, temperature_end=800.0, seed=1)
    a = run_walker(start, calc, Watchdog(1e3, 1e4), **kw)
    b = run_walker(start, calc, Watchdog(1e3, 1e4), **kw)
    assert a.sigmas == b.sigmas


def test_last_layer_features_are_the_energy_gradient():
    torch.manual_seed(0)
    spec = default_spec(["Cu"], cutoff=4.0)
    model = NNP(spec, hidden=(6, 5), n_members=2, seed=1)
    with torch.no_grad():
        model.feature_mean.normal_(0.0, 0.3)
        model.feature_std.uniform_(0.5, 2.0)
        model.energy_scale.fill_(0.7)
    frames = [_cu(), bulk("Cu", "fcc", a=3.7, cubic=True)]
    phi = structure_features(model, frames, "last_layer")
    assert phi.shape == (2, 2 * 5)
    w_last = model.heads[0].weights[-1]
    for s, atoms in enumerate(frames):
        b = make_batch([(atoms.numbers, atoms.positions, np.asarray(atoms.cell[:]),
                         atoms.pbc)], {29: 0}, 4.0)
        e = model.compute(b, forces=False).energy[:, 0]
        for m in range(2):
            (g,) = torch.autograd.grad(e[m], w_last, retain_graph=True)
            expected = g[m, :, 0].numpy() / len(atoms) / 0.7
            np.testing.assert_allclose(phi[s, 5 * m:5 * (m + 1)], expected, atol=1e-12)
    desc = structure_features(model, frames, "descriptor")
    assert desc.shape == (2, spec.n_features())


class CollapsingCommittee(FakeCommittee):
    """Rejects structures displaced more than ``limit`` Å, as the nnpot calculator rejects
    atoms closer than 0.1 Å."""

    def __init__(self, ref, limit):
        super().__init__(ref)
        self.limit = limit

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from nnpot.errors import BadStructureError

        if np.linalg.norm(atoms.positions - self.ref, axis=1).max() > self.limit:
            raise BadStructureError("atoms 0 and 1 are closer than 0.1 Å")
        super().calculate(atoms, properties, system_changes)


def test_walker_survives_a_rejected_structure():
    start = _cu()
    ref = np.array(run_walker(start, FakeCommittee(start.positions), Watchdog(1e3, 1e4),
                              steps=30, dt_fs=2.0, temperature=900.0, ensemble="nve",
                              seed=5).sigmas)
    limit = float(np.quantile(ref, 0.5))
    res = run_walker(start, CollapsingCommittee(start.positions, limit), Watchdog(1e3, 1e4),
                     steps=30, dt_fs=2.0, temperature=900.0, ensemble="nve", seed=5)
    first = int(np.argmax(ref > limit))
    assert res.paused_at == first and res.discarded[0].info["sigma"] == np.inf
    assert res.last_trusted.info["step"] == first - 1
