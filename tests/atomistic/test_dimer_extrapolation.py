"""Issue 6: rare-gas dimers fitted at 0.8–1.33 Rₑ must follow the London law at 1.86–3.19 Rₑ.

Runs ``examples/dimer_extrapolation.py`` (quick settings: 4 members, 8×8 networks, 700
epochs) for argon and neon and checks the issue's criteria against the Tang–Toennies
reference: log–log slope, E(10 Å·Rₑ/Rₑ(Ar)) ratio, training RMSE, the short-range model's
exact zero and out-of-domain flag, and what the learned C6's committee says.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dimer_extrapolation.py"


def _example():
    spec = importlib.util.spec_from_file_location("dimer_extrapolation_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module", params=["Ar", "Ne"])
def run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"dimer_{request.param}")
    return _example().main(out, gas=request.param, quick=True)


def test_tabulated_c6_follows_the_reference(run):
    ref, rec = run["reference"], run["models"]["tabulated C6"]
    assert abs(rec["slope"] - ref["slope"]) <= 0.25
    assert 0.85 <= rec["e10_ratio"] <= 1.15
    assert 0.85 <= rec["e_mid_ratio"] <= 1.15
    assert rec["c6_mean"] == pytest.approx(ref["c6"], rel=1e-12) and rec["c6_std"] == 0.0


def test_learned_c6_follows_the_reference_and_its_spread_grows_with_r(run):
    ref, rec = run["reference"], run["models"]["learned C6"]
    assert abs(rec["slope"] - ref["slope"]) <= 0.25
    assert 0.7 <= rec["e10_ratio"] <= 1.5
    members = np.array(rec["c6_members"])
    assert len(set(members.round(9))) == len(members)
    # the dimers beyond the network's cutoff (1.27–1.33 Rₑ) see the tail alone: they narrow
    # C6 down from the prior (members move towards the data) but, over so short a stretch
    # of r, pin only a combination of C6 and C8: the members spread along it (C6 up, C8
    # down), so C6 keeps a real spread
    assert rec["c6_moved_rel"] > 0.1
    assert 0.02 * ref["c6"] < rec["c6_std"] < 0.6 * rec["c6_prior_std"]
    assert abs(rec["c6_mean"] / ref["c6"] - 1) < 2 * rec["c6_std"] / ref["c6"] + 0.05
    assert rec["c6_c8_corr"] < -0.8
    # agreeing at the data and fanning out beyond: σ/|E| grows with r across the test window
    # (it cannot in absolute terms, |E| falls like r⁻⁶)
    rel = np.array(rec["rel_spread_model"])
    assert np.all(np.diff(rel) > 0) and rel[-1] > 1.5 * rel[0] and rel[0] > 0.005


def test_short_range_model_is_zero_beyond_cutoff_and_flagged(run):
    rec = run["models"]["short-range"]
    assert rec["slope"] is None  # nothing to fit: E ≡ 0
    assert rec["test_max_abs_mev"] < 1e-9 and rec["max_spread_mev"] < 1e-9
    assert rec["ood_flagged"] == len(rec["spread_mev"]) == 26
    assert abs(rec["e10_ratio"]) < 1e-9


def test_training_accuracy_and_outputs(run):
    for rec in run["models"].values():
        assert rec["train_rmse_mev"] < 0.1
    assert Path(run["plot"]).stat().st_size > 10_000
    ref = run["reference"]
    assert ref["test_window"][0] > 1.6 * ref["r_e"]  # the test points lie beyond the cutoff
