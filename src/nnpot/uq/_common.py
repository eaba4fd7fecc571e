"""Shared helpers of :mod:`nnpot.uq`: input checks and array conversion.

``nnpot.uq`` imports nothing else of nnpot, so its bad-input error is a local
:class:`UQInputError` (a :class:`ValueError`; the CLI treats any ``ValueError`` raised for
user input the same way as ``nnpot.errors.InputError``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # torch is a hard dependency of nnpot, but keep the array code usable without it
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


class UQInputError(ValueError):
    """Bad input to an uncertainty routine (shape, sign, NaN, unfitted object, ...)."""


def is_tensor(x: Any) -> bool:
    """True for a ``torch.Tensor``."""
    return torch is not None and isinstance(x, torch.Tensor)


def as_array(x: Any, name: str, *, ndim: int | None = None) -> np.ndarray:
    """``x`` as a float64 numpy array (tensors are detached and moved to CPU), all finite."""
    if is_tensor(x):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise UQInputError(f"{name} must have {ndim} dimension(s), got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise UQInputError(f"{name} contains NaN or infinite values.")
    return a


def err_sigma(err: Any, sigma: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flattened (err, sigma) pair of equal length with sigma > 0 and at least one sample."""
    e = as_array(err, "err").ravel()
    s = as_array(sigma, "sigma").ravel()
    if e.shape != s.shape:
        raise UQInputError(
            f"err and sigma must have the same number of values, got {e.size} and {s.size}."
        )
    if e.size == 0:
        raise UQInputError("err and sigma are empty; need at least one prediction.")
    if np.any(s <= 0.0):
        raise UQInputError("sigma must be strictly positive everywhere.")
    return e, s
