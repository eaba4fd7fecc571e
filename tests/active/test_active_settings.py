"""Loop pieces without training: config validation, trust thresholds, stable split, stops."""

from __future__ import annotations

import math

import pytest

from nnpot.active.loop import ActiveLearning, make_oracle
from nnpot.active.oracle import EMTOracle, FlakyOracle, XTBOracle
from nnpot.active.retrain import split_by_hash, thresholds
from nnpot.active.settings import ActiveConfig, TrustConfig
from nnpot.config import parse_config
from nnpot.errors import ConfigError


def test_config_validation_names_the_problem():
    with pytest.raises(ConfigError, match="unknown key 'explore.stepz'"):
        parse_config(ActiveConfig, {"explore": {"stepz": 3}})
    with pytest.raises(ConfigError, match="committee"):
        parse_config(ActiveConfig, {"model": {"committee": 1}})
    with pytest.raises(ConfigError, match="upper trust threshold"):
        parse_config(ActiveConfig, {"trust": {"lower": 0.5, "upper": 0.2}})
    with pytest.raises(ConfigError, match="temperature_end"):
        parse_config(ActiveConfig, {"explore": {"temperatures": [300.0, 600.0],
                                                "temperature_end": [900.0]}})
    cfg = parse_config(ActiveConfig, {"oracle": {"kind": "xtb", "settings": {"accuracy": 0.5},
                                                 "fail_fraction": 0.1}})
    oracle = make_oracle(cfg)
    assert isinstance(oracle, FlakyOracle) and isinstance(oracle.inner, XTBOracle)
    assert oracle.inner.accuracy == 0.5
    assert isinstance(make_oracle(ActiveConfig()), EMTOracle)
    with pytest.raises(ConfigError, match="settings do not fit"):
        make_oracle(parse_config(ActiveConfig, {"oracle": {"settings": {"xc": "PBE"}}}))


def test_thresholds_absolute_and_calibrated():
    header = {"metrics": {"valid": {"forces_rmse_mev_ang": 100.0}},
              "uq": {"forces": {"kind": "scalar", "scale": 2.0}}}
    assert thresholds(TrustConfig(lower=0.1, upper=0.4), header) == (0.1, 0.4)
    lo, hi = thresholds(TrustConfig(mode="calibrated", lower_factor=2, upper_factor=8), header)
    e = math.sqrt(3) * 0.1 / 2.0  # deviation at which the calibrated error is the RMSE
    assert lo == pytest.approx(2 * e) and hi == pytest.approx(8 * e)
    # without a validation error the absolute thresholds are used
    assert thresholds(TrustConfig(mode="calibrated"), {}) == (0.1, 0.5)


def test_hash_split_is_stable_as_data_grow():
    hashes = [f"{i:032x}" for i in range(200)]
    tr, va = split_by_hash(hashes[:100], 0.2, seed=3)
    tr2, va2 = split_by_hash(hashes, 0.2, seed=3)
    assert set(va) == {i for i in va2 if i < 100} and set(tr) == {i for i in tr2 if i < 100}
    assert 0.1 < len(va2) / 200 < 0.3 and not set(tr2) & set(va2)
    _, few = split_by_hash(hashes[:5], 0.01, seed=3)
    assert len(few) == 2  # at least two validation structures when there are enough


def test_stop_reasons(tmp_path):
    cfg = parse_config(ActiveConfig, {"loop": {"max_iterations": 5, "max_labels": 10,
                                               "quiet_steps": 100, "max_wall_s": 3600}})
    run = ActiveLearning(cfg, tmp_path / "run", echo=None)
    run.state.iteration = 2
    assert run._stop_reason() is None
    run.state.counters["quiet_steps"] = 100
    assert run._stop_reason() == "no trigger in 100 MD steps"
    run.state.counters["quiet_steps"] = 0
    run.state.counters["elapsed_s"] = 3600.0
    assert run._stop_reason() == "wall time reached"
    run.state.counters["elapsed_s"] = 0.0
    run.state.iteration = 5
    assert run._stop_reason() == "max_iterations reached"
