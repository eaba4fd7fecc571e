"""Out-of-domain detection on descriptor vectors, independent of any committee.

Committee members of a local model can agree and all be wrong — e.g. for an atom with no
neighbour inside the cutoff (an all-zero descriptor row) or for a compressed structure
whose descriptors lie beyond everything seen in training. :class:`DescriptorDomain` checks
each row against the training distribution of its group (``groups`` = element index, so
each element has its own domain):

1. scaling: ``z_f = (x_f − μ_f) / s_f`` with the training mean μ and standard deviation s
   (floored at ``min_scale·(1 + |μ_f|)`` so constant features stay usable);
2. range check: ``e = max_f max(0, (x_f − max_f^train)/s_f, (min_f^train − x_f)/s_f)``,
   the largest excursion beyond the training range, in training standard deviations;
3. Mahalanobis distance ``d = sqrt(zᵀ C⁻¹ z)`` with the Ledoit–Wolf shrinkage covariance
   ``C = (1 − α) S + α (tr S / F) I`` of the scaled training rows (O. Ledoit, M. Wolf,
   "A well-conditioned estimator for large-dimensional covariance matrices", J. Multivar.
   Anal. 88, 365 (2004)), which stays invertible with few rows or collinear descriptors.

The per-row score is dimensionless, ``score = max(d / t_g, e / range_tol)``, where the
group threshold ``t_g = margin · quantile_q(d over the training rows of g)``
(:meth:`DescriptorDomain.calibrate_threshold` re-sets it from held-out in-distribution
rows). ``score > 1`` means out of domain. Rows of a group never seen in training get
``score = inf``. Descriptor units are whatever the descriptors carry; nothing is rescaled
except by the training statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnpot.uq._common import UQInputError, as_array, is_tensor

__all__ = ["DescriptorDomain", "ledoit_wolf", "per_structure"]

_FORMAT = "nnpot.uq.DescriptorDomain"
_VERSION = 1


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


def _groups(groups: Any, n: int) -> np.ndarray:
    if groups is None:
        return np.zeros(n, dtype=np.int64)
    g = np.asarray(groups.detach().cpu().numpy() if is_tensor(groups) else groups)
    if g.shape != (n,):
        raise UQInputError(f"groups must have shape [{n}] to match the features, got {g.shape}.")
    if g.size and not np.issubdtype(g.dtype, np.integer):
        raise UQInputError("groups must be integers (e.g. element indices).")
    return g.astype(np.int64)


class DescriptorDomain:
    """Per-group training domain of descriptor rows: range check + shrunk Mahalanobis.

    Args:
        quantile: quantile of the training Mahalanobis distances that sets the threshold.
        margin: factor (≥ 1) on that quantile, so held-out in-distribution rows pass.
        range_tol: allowed excursion beyond the training range, in training std units.
        min_scale: relative floor of the per-feature scale.
    """

    def __init__(
        self,
        quantile: float = 0.999,
        margin: float = 1.2,
        range_tol: float = 1.0,
        min_scale: float = 1e-8,
    ) -> None:
        if not 0.0 < quantile <= 1.0:
            raise UQInputError(f"quantile must lie in (0, 1], got {quantile}.")
        if not margin > 0.0 or not range_tol > 0.0 or not min_scale > 0.0:
            raise UQInputError("margin, range_tol and min_scale must be positive.")
        self.quantile = float(quantile)
        self.margin = float(margin)
        self.range_tol = float(range_tol)
        self.min_scale = float(min_scale)
        self.n_features: int | None = None
        self.stats: dict[int, dict[str, np.ndarray]] = {}

    # -- fitting ------------------------------------------------------------------------
    def fit(self, features: Any, groups: Any = None) -> DescriptorDomain:
        """Learn each group's domain from training rows ``features[n, F]`` (finite)."""
        x = as_array(features, "features", ndim=2)
        g = _groups(groups, x.shape[0])
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise UQInputError(f"features must have at least one row and column, got {x.shape}.")
        self.n_features = int(x.shape[1])
        self.stats = {}
        for key in np.unique(g):
            xg = x[g == key]
            if xg.shape[0] < 2:
                raise UQInputError(
                    f"group {int(key)} has {xg.shape[0]} training row; need at least 2."
                )
            mean = xg.mean(axis=0)
            scale = np.maximum(xg.std(axis=0), self.min_scale * (1.0 + np.abs(mean)))
            z = (xg - mean) / scale
            cov, alpha = ledoit_wolf(z)
            cov = cov + 1e-10 * max(np.trace(cov) / cov.shape[0], 1e-300) * np.eye(cov.shape[0])
            st = {
                "mean": mean,
                "scale": scale,
                "lo": xg.min(axis=0),
                "hi": xg.max(axis=0),
                "precision": np.linalg.inv(cov),
                "shrinkage": np.asarray(alpha),
                "threshold": np.asarray(1.0),
                "n_train": np.asarray(xg.shape[0]),
            }
            self.stats[int(key)] = st
            d = self._mahalanobis_group(xg, st)
            st["threshold"] = np.asarray(self._threshold(d))
        return self

    def _threshold(self, d: np.ndarray) -> float:
        t = self.margin * float(np.quantile(d, self.quantile))
        return max(t, 1e-12)

    def calibrate_threshold(self, features: Any, groups: Any = None) -> DescriptorDomain:
        """Re-set each group's threshold from held-out in-distribution rows (same rule)."""
        x, g = self._check_input(features, groups)
        for key, st in self.stats.items():
            sel = g == key
            if np.any(sel):
                st["threshold"] = np.asarray(self._threshold(self._mahalanobis_group(x[sel], st)))
        return self

    # -- scoring ------------------------------------------------------------------------
    def _check_input(self, features: Any, groups: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.n_features is None:
            raise UQInputError("DescriptorDomain is not fitted; call fit(features, groups) first.")
        x = as_array(features, "features", ndim=2)
        if x.shape[1] != self.n_features:
            raise UQInputError(
                f"features have {x.shape[1]} columns but the domain was fitted on "
                f"{self.n_features}."
            )
        return x, _groups(groups, x.shape[0])

    @staticmethod
    def _mahalanobis_group(x: np.ndarray, st: dict) -> np.ndarray:
        z = (x - st["mean"]) / st["scale"]
        q = np.einsum("ij,jk,ik->i", z, st["precision"], z)
        return np.sqrt(np.maximum(q, 0.0))

    @staticmethod
    def _excess_group(x: np.ndarray, st: dict) -> np.ndarray:
        above = (x - st["hi"]) / st["scale"]
        below = (st["lo"] - x) / st["scale"]
        return np.maximum(np.maximum(above, below).max(axis=1), 0.0)

    def _per_group(self, features: Any, groups: Any, fn) -> np.ndarray:
        x, g = self._check_input(features, groups)
        out = np.full(x.shape[0], np.inf)
        for key in np.unique(g):
            st = self.stats.get(int(key))
            if st is not None:
                sel = g == key
                out[sel] = fn(x[sel], st)
        return out

    def mahalanobis(self, features: Any, groups: Any = None) -> np.ndarray:
        """Shrunk Mahalanobis distance of each row in its group's scaled space (inf: unknown
        group)."""
        return self._per_group(features, groups, self._mahalanobis_group)

    def range_excess(self, features: Any, groups: Any = None) -> np.ndarray:
        """Largest excursion of each row beyond its group's training range, in training std
        units (0 inside the range; inf: unknown group)."""
        return self._per_group(features, groups, self._excess_group)

    def score(self, features: Any, groups: Any = None) -> np.ndarray:
        """Dimensionless distance ``max(d/t_g, e/range_tol)`` per row; > 1 is out of domain."""

        def fn(x: np.ndarray, st: dict) -> np.ndarray:
            d = self._mahalanobis_group(x, st) / float(st["threshold"])
            return np.maximum(d, self._excess_group(x, st) / self.range_tol)

        return self._per_group(features, groups, fn)

    def flag(self, features: Any, groups: Any = None) -> np.ndarray:
        """Boolean per row: out of the training domain (``score > 1``)."""
        return self.score(features, groups) > 1.0

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-serialisable state (plain lists and floats) for model-file headers."""
        if self.n_features is None:
            raise UQInputError("DescriptorDomain is not fitted; nothing to serialise.")
        groups = {}
        for key, st in self.stats.items():
            groups[str(key)] = {k: np.asarray(v).tolist() for k, v in st.items()}
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "quantile": self.quantile,
            "margin": self.margin,
            "range_tol": self.range_tol,
            "min_scale": self.min_scale,
            "n_features": self.n_features,
            "groups": groups,
        }

    @classmethod
    def from_dict(cls, d: dict) -> DescriptorDomain:
        """Rebuild from :meth:`to_dict` output."""
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise UQInputError(f"not a serialised DescriptorDomain (expected format {_FORMAT}).")
        if int(d.get("version", 0)) > _VERSION:
            raise UQInputError(
                f"DescriptorDomain state has version {d.get('version')}, newer than this "
                f"nnpot understands ({_VERSION}); upgrade nnpot."
            )
        obj = cls(d["quantile"], d["margin"], d["range_tol"], d["min_scale"])
        obj.n_features = int(d["n_features"])
        obj.stats = {
            int(k): {name: np.asarray(v, dtype=np.float64) for name, v in st.items()}
            for k, st in d["groups"].items()
        }
        return obj


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
