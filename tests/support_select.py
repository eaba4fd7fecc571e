"""Helpers shared by the batch-selection tests (information matrices)."""

from __future__ import annotations

import numpy as np


def logdet_pd(a) -> float:
    """log det of a matrix that must be positive definite (asserts a positive determinant)."""
    sign, val = np.linalg.slogdet(a)
    assert sign > 0
    return val
