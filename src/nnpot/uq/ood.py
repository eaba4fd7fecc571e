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

Structure level. ``any(row flagged)`` has a false-positive rate ``1 − (1 − ε)^N`` for a
structure of N in-domain rows with per-row rate ε, which grows with N (a third to a half
of the 1024-row in-distribution structures of the synthetic test in
``tests/uq/test_uq_leftovers.py``). So :meth:`DescriptorDomain.calibrate_structures` fits
the upper tail of the per-row score on held-out in-distribution rows (validation atoms)
as a power law (generalised Pareto with positive shape; the descriptor scores' tails are
heavier than exponential, so exponential or Gaussian extrapolation under-estimates them):
``P(score > x) ≈ p₀ (x/u)^(−1/ξ)`` for ``x > u``, with ``u`` the ``1 − p₀`` quantile and ξ
from Hill's estimator (B. M. Hill, "A simple general approach to inference about the tail
of a distribution", Ann. Stat. 3, 1163 (1975)) over the k rows above u, raised by one
standard error: ``ξ = mean(ln(score/u) | score > u) · (1 + 1/√k)`` (few validation rows
make ξ noisy, and the threshold depends on it exponentially). Treating a structure's
rows as independent (conservative: neighbouring atoms are correlated, which lowers the
maximum), the maximum of N rows exceeds ``T_N`` with probability ``rate`` when the per-row
exceedance is ``g_N = 1 − (1 − rate)^{1/N}``: ``T_N = u (p₀/g_N)^ξ``, floored at 1 so a
structure is only flagged by a single row when that row is flagged. A structure whose
rows are all moderately shifted (a strained crystal) can have a maximum below ``T_N``, so
the number K of rows with score > 1 is tested too: flagged when K exceeds ``K_N``, the
``1 − rate`` quantile of Binomial(N, ε) with the held-out per-row rate
``ε = (k + 1)/(n + 1)`` (k of n held-out rows above 1). The structure score is
``max(max_i score_i / T_N, K/(K_N + ½))``; ``> 1`` means the structure is out of domain;
an uncalibrated domain uses ``T_N = 1`` (``any``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from nnpot.uq._common import UQInputError, as_array, is_tensor
from nnpot.uq.ood_stats import index_array, ledoit_wolf, per_structure

__all__ = ["DescriptorDomain", "ledoit_wolf", "per_structure"]

_FORMAT = "nnpot.uq.DescriptorDomain"
_VERSION = 1


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
        self.structure: dict[str, float] | None = None

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

    def calibrate_structures(
        self,
        features: Any,
        groups: Any = None,
        structure_index: Any = None,
        rate: float = 0.01,
        tail_fraction: float = 0.1,
    ) -> DescriptorDomain:
        """Fit the structure-level threshold ``T_N`` (module docstring) on held-out
        in-distribution rows, so that about ``rate`` of in-distribution structures of any
        size N are flagged.

        Args:
            features, groups: ``[n, F]`` held-out rows and their group (element) index;
                rows of unknown groups (infinite score) are ignored.
            structure_index: ``[n]`` structure of each row (only for the diagnostic
                ``structure["calibration_flagged"]``: the fraction of these structures
                flagged after calibration); None treats every row as its own structure.
            rate: target fraction of flagged in-distribution structures, in (0, 1).
            tail_fraction: fraction ``p₀`` of rows that defines the fitted tail, in (0, 1).
        """
        if not 0.0 < rate < 1.0 or not 0.0 < tail_fraction < 1.0:
            raise UQInputError(
                f"rate and tail_fraction must lie in (0, 1), got {rate} and {tail_fraction}."
            )
        score = self.score(features, groups)
        ok = np.isfinite(score)
        y = score[ok]
        if y.size * tail_fraction < 2:
            raise UQInputError(
                f"{y.size} held-out rows are too few to fit the score tail with "
                f"tail_fraction={tail_fraction}; need at least {int(np.ceil(2 / tail_fraction))}."
            )
        u = float(np.quantile(y, 1.0 - tail_fraction))
        top = y[y > u]
        xi = 0.0
        if top.size and u > 0:
            xi = float(np.mean(np.log(top / u)) * (1.0 + 1.0 / np.sqrt(top.size)))
        self.structure = {
            "rate": float(rate),
            "u": u,
            "p0": float(top.size / y.size),
            "xi": xi,
            "row_rate": float((np.sum(y > 1.0) + 1.0) / (y.size + 1.0)),
            "n_rows": int(y.size),
        }
        idx = (np.arange(score.size) if structure_index is None
               else index_array(structure_index))
        if idx.shape != score.shape:
            raise UQInputError("structure_index must have one entry per feature row.")
        sel = idx[ok]
        if sel.size:
            _, sel = np.unique(sel, return_inverse=True)
            flags = self.structure_scores(score[ok], sel) > 1.0
            self.structure["calibration_flagged"] = float(flags.mean())
            self.structure["n_structures"] = int(flags.size)
        return self

    def structure_threshold(self, n_rows: Any) -> Any:
        """``T_N`` (dimensionless, ≥ 1) for structures of ``n_rows`` rows (int or array);
        1 for a domain without :meth:`calibrate_structures`."""
        n = np.asarray(n_rows, dtype=np.float64)
        st = self.structure
        if st is None:
            out = np.ones_like(n)
        else:
            if np.any(n < 1):
                raise UQInputError("structures must have at least one row.")
            g = -np.expm1(np.log1p(-st["rate"]) / n)
            out = np.maximum(st["u"] * np.maximum(st["p0"] / g, 1.0) ** st["xi"], 1.0)
        return out if out.ndim else float(out)

    def count_limit(self, n_rows: Any) -> Any:
        """``K_N``: the most flagged rows (score > 1) an in-distribution structure of N rows
        has with probability ≥ 1 − rate, the binomial quantile with the held-out per-row
        rate ``ε = (k + 1)/(n + 1)``; 0 for a domain without :meth:`calibrate_structures`."""
        n = np.asarray(n_rows, dtype=np.float64)
        st = self.structure
        out = (np.zeros_like(n) if st is None else
               stats.binom.ppf(1.0 - st["rate"], n, st["row_rate"]).astype(np.float64))
        return out if out.ndim else float(out)

    def structure_scores(
        self, row_scores: Any, structure_index: Any = None, n_structures: int | None = None
    ) -> np.ndarray:
        """Structure scores from per-row :meth:`score` values (dimensionless; > 1: out of
        domain): ``max(max_i score_i / T_N, K/(K_N + ½))`` with K the number of rows with
        score > 1 (module docstring); a structure without rows gets 0. ``structure_index``
        None means all rows belong to one structure."""
        v = np.asarray(row_scores, dtype=np.float64).ravel()
        idx = np.zeros(v.size, np.int64) if structure_index is None else index_array(
            structure_index)
        if idx.shape != v.shape:
            raise UQInputError("structure_index must have one entry per row.")
        n_s = int(idx.max()) + 1 if n_structures is None and idx.size else int(n_structures or 0)
        if idx.size and idx.max() >= n_s:
            raise UQInputError("structure_index must be smaller than n_structures.")
        counts = np.bincount(idx, minlength=n_s)
        n = np.maximum(counts, 1)
        ratio = per_structure(v, idx, n_s) / self.structure_threshold(n)
        if self.structure is not None:
            k = np.bincount(idx, weights=(v > 1.0).astype(np.float64), minlength=n_s)
            ratio = np.maximum(ratio, k / (self.count_limit(n) + 0.5))
        return np.where(counts > 0, ratio, 0.0)

    def structure_score(
        self, features: Any, groups: Any, structure_index: Any, n_structures: int | None = None
    ) -> np.ndarray:
        """:meth:`structure_scores` of the rows ``features`` (with their ``groups``)."""
        return self.structure_scores(self.score(features, groups), structure_index,
                                     n_structures)

    def flag_structures(
        self, features: Any, groups: Any, structure_index: Any, n_structures: int | None = None
    ) -> np.ndarray:
        """Boolean per structure: out of the training domain (``structure_score > 1``)."""
        return self.structure_score(features, groups, structure_index, n_structures) > 1.0

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
        out = {
            "format": _FORMAT,
            "version": _VERSION,
            "quantile": self.quantile,
            "margin": self.margin,
            "range_tol": self.range_tol,
            "min_scale": self.min_scale,
            "n_features": self.n_features,
            "groups": groups,
        }
        if self.structure is not None:  # optional: older readers ignore it and use any()
            out["structure"] = dict(self.structure)
        return out

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
        if d.get("structure") is not None:
            obj.structure = {k: float(v) for k, v in d["structure"].items()}
        return obj
