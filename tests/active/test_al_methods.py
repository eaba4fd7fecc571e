"""Every batch-selection method of nnpot.active.features can be chosen in the loop's config,
and the loop loads the committee exactly for the methods that use its features."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from nnpot.active.features import METHODS
from nnpot.active.loop import MODEL_METHODS
from nnpot.active.settings import SelectConfig


def test_config_accepts_every_selection_method_and_nothing_else():
    allowed = set(typing.get_args(SelectConfig.model_fields["method"].annotation))
    assert allowed == set(METHODS)
    for m in METHODS:
        assert SelectConfig(method=m).method == m
    with pytest.raises(ValidationError):
        SelectConfig(method="max_entropy")


def test_model_is_loaded_for_feature_based_methods_only():
    assert set(MODEL_METHODS) == set(METHODS) - {"disagreement", "random"}
