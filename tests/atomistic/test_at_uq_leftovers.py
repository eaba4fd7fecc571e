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
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from nnpot.atomistic.calculator import NNPCalculator
from nnpot.atomistic.data import Frame
from nnpot.atomistic.descriptors import default_spec
from nnpot.atomistic.model import NNP
from nnpot.atomistic.statistics import fit_statistics
from nnpot.atomistic.train import prepare
from nnpot.atomistic.workflow import build_uq, predict_frames

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


@pytest.fixture(scope="module")
def cu_domain():
    """Untrained single model with the training feature scaling; its domain is fitted on
    30 rattled 32-atom cells (±2 % strain) and calibrated on 10 validation cells."""
    torch.manual_seed(0)
    model = tiny_model(members=1, aleatoric=False)
    train, valid = cu_frames(30, 0, (2, 2, 2)), cu_frames(10, 1, (2, 2, 2))
    prep = prepare(model, train)
    fit_statistics(model, prep, train)
    return model, {"uq": build_uq(model, prep, valid)}


def test_structure_ood_flag_independent_of_size(cu_domain):
    """Held-out cells like the validation ones (same strain and rattle), from 32 to 500
    atoms, are not flagged as structures although a few of their atoms are (per-atom flags
    are kept; ``any`` would flag those structures)."""
    model, header = cu_domain
    frames = [f for rep, n in (((2, 2, 2), 10), ((3, 3, 3), 6), ((4, 4, 4), 3), ((5, 5, 5), 2))
              for f in cu_frames(n, 7, rep)]
    preds = predict_frames(model, frames, header=header)
    assert not any(p["ood"] for p in preds)
    assert sum(int(p["ood_atoms"].sum()) for p in preds) > 0
    assert all(0 < p["ood_structure_score"] <= 1 for p in preds)
    st = header["uq"]["domain"]["structure"]
    assert st["n_rows"] == 320 and st["calibration_flagged"] == 0.0


def test_structure_ood_flag_fires_for_isolated_atom_and_strain(cu_domain):
    model, header = cu_domain
    calc = NNPCalculator(model, header)
    lone = Atoms("Cu", positions=[[0, 0, 0]])  # no neighbour inside the cutoff
    assert calc.get_property("ood", lone) and calc.get_property("ood_structure_score") > 1
    for strain, rep in ((0.9, (2, 2, 2)), (0.9, (4, 4, 4)), (1.05, (4, 4, 4))):
        a = bulk("Cu", "fcc", a=3.61 * strain, cubic=True).repeat(rep)
        a.rattle(0.05, seed=3)
        calc.reset()
        assert calc.get_property("ood", a), (strain, rep)
        assert calc.results["ood_atoms"].mean() > 0.5
    # one displaced atom in an otherwise in-domain 256-atom cell
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((4, 4, 4))
    a.rattle(0.05, seed=4)
    a.positions[0] += [0.6, 0.6, 0.0]
    calc.reset()
    assert calc.get_property("ood", a)


def test_isotonic_recalibration_stored_and_applied(tmp_path):
    """``recalibration = "isotonic"``: the map fitted in build_uq is a JSON table in the
    header; after save/load the calculator's σ equals the map fitted directly on the same
    validation errors, and on that validation set the recalibrated 68 % intervals cover
    68 % of the errors (up to the discreteness of n samples)."""
    from nnpot.atomistic.calculator import load_calculator
    from nnpot.atomistic.modelfile import save_model
    from nnpot.atomistic.uncertainty import errors, sigmas
    from nnpot.atomistic.workflow import evaluate
    from nnpot.config import FitConfig, parse_config
    from nnpot.errors import InputError
    from nnpot.uq import IsotonicRecalibration

    assert parse_config(FitConfig, {"model": {"recalibration": "isotonic"}}).model \
        .recalibration == "isotonic"
    assert parse_config(FitConfig, {}).model.recalibration == "scalar"
    with pytest.raises(InputError):
        parse_config(FitConfig, {"model": {"recalibration": "beta"}})
    torch.manual_seed(0)
    model = tiny_model(members=2, aleatoric=True)
    train, valid = cu_frames(12, 0, (2, 1, 1)), cu_frames(30, 1, (2, 1, 1))
    prep = prepare(model, train)
    fit_statistics(model, prep, train)
    assert build_uq(model, prep, valid)["energy"]["kind"] == "scalar"  # the default
    uq = build_uq(model, prep, valid, recalibration="isotonic")
    assert uq["energy"]["kind"] == uq["forces"]["kind"] == "isotonic"
    save_model(tmp_path / "m.nnp", model, {"uq": uq})
    # the same map fitted directly
    preds = predict_frames(model, valid)
    (e_err, f_err), (e_sig, f_sig) = errors(preds, valid), sigmas(preds, valid)
    iso_e = IsotonicRecalibration().fit(e_err, e_sig, n_knots=min(99, len(e_err) - 1))
    iso_f = IsotonicRecalibration().fit(f_err, f_sig, n_knots=99)
    assert iso_e.multiplier(0.6827) != pytest.approx(1.0, abs=0.05)  # not a no-op here
    calc = load_calculator(tmp_path / "m.nnp")
    a = bulk("Cu", "fcc", a=3.65, cubic=True).repeat((2, 1, 1))
    a.rattle(0.05, seed=11)
    a.calc = calc
    a.get_potential_energy()
    r, n = calc.results, len(a)
    raw = np.hypot(r["energy_std"], r["energy_aleatoric_std"]) / n
    assert r["energy_sigma"] == pytest.approx(iso_e(raw) * n, rel=1e-10)
    np.testing.assert_allclose(r["forces_sigma"], iso_f(r["forces_std"] / np.sqrt(3)),
                               rtol=1e-10)
    # evaluation applies the stored intervals m(p) σ
    header = {"uq": calc.header["uq"]}
    cal = evaluate(model, valid, header=header)["calibration"]
    assert abs(cal["energy_recalibrated"]["coverage_68"] - 0.68) <= 1.5 / len(e_err)
    assert abs(cal["forces_recalibrated"]["coverage_95"] - 0.95) <= 0.01
    assert cal["forces_recalibrated"]["miscalibration_area"] < 0.01
