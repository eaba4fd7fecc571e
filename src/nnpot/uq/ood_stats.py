"""Row statistics for :mod:`nnpot.uq.ood`: shrinkage covariance and per-structure maxima.

Array functions only (numpy or torch in, numpy out); no units of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnpot.uq._common import UQInputError, is_tensor

__all__ = ["index_array", "ledoit_wolf", "per_structure"]


def ledoit_wolf(z: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit–Wolf shrinkage covariance of centred rows ``z[n, F]`` and its intensity α.

    ``S = zᵀz/n``, ``μ = tr S / F``, ``δ² = ‖S − μI‖²_F``,
    ``β² = min(δ², (1/n²) Σ_i ‖z_i z_iᵀ − S‖²_F)``, ``α = β²/δ²``,
    ``C = (1 − α) S + α μ I``. Uses ``Σ_i ‖z_i z_iᵀ − S‖² = Σ_i ‖z_i‖⁴ − n ‖S‖²``.
    """
    n, f = z.shape
    s = z.T @ z / n
    mu = np.trace(s) / f
    delta2 = float(np.sum((s - mu * np.eye(f)) ** 2))
    if delta2 <= 0.0:
        return mu * np.eye(f), 1.0
    b2 = float(np.sum(np.sum(z**2, axis=1) ** 2) - n * np.sum(s**2)) / n**2
    alpha = min(max(b2, 0.0), delta2) / delta2
    return (1.0 - alpha) * s + alpha * mu * np.eye(f), alpha


def index_array(structure_index: Any) -> np.ndarray:
    """``structure_index`` (numpy or torch) as a 1-D int64 array of non-negative values."""
    idx = np.asarray(
        structure_index.detach().cpu().numpy() if is_tensor(structure_index) else structure_index
    )
    if idx.ndim != 1 or (idx.size and (not np.issubdtype(idx.dtype, np.integer) or
                                       idx.min() < 0)):
        raise UQInputError("structure_index must be a 1-D array of non-negative integers.")
    return idx.astype(np.int64)


def per_structure(
    values: Any, structure_index: Any, n_structures: int | None = None
) -> np.ndarray:
    """Maximum of per-row ``values`` (scores, deviations or boolean flags) per structure.

    Args:
        values: ``[n_rows]`` floats or booleans (numpy or torch).
        structure_index: ``[n_rows]`` integer structure of each row, ``>= 0``.
        n_structures: number of structures (default ``max(structure_index) + 1``).

    Returns:
        ``[n_structures]``: the max per structure (``any`` for booleans); a structure
        without rows gets 0 (False).
    """
    v = values.detach().cpu().numpy() if is_tensor(values) else np.asarray(values)
    idx = np.asarray(
        structure_index.detach().cpu().numpy() if is_tensor(structure_index) else structure_index
    )
    if v.shape != idx.shape or v.ndim != 1:
        raise UQInputError("values and structure_index must be 1-D arrays of the same length.")
    if idx.size and (not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0):
        raise UQInputError("structure_index must hold non-negative integers.")
    n = int(idx.max()) + 1 if n_structures is None and idx.size else int(n_structures or 0)
    if idx.size and idx.max() >= n:
        raise UQInputError("structure_index must be smaller than n_structures.")
    if v.dtype == bool:
        out = np.zeros(n, dtype=bool)
        np.logical_or.at(out, idx, v)
        return out
    out = np.full(n, -np.inf)
    np.maximum.at(out, idx, v.astype(np.float64))
    out[np.bincount(idx, minlength=n) == 0] = 0.0
    return out
