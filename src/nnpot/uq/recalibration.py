"""Post-hoc recalibration of predicted standard deviations, fitted on a validation split.

Conventions as in :mod:`nnpot.uq.calibration`: ``err = prediction − reference``, ``σ > 0``
in the same units; the recalibrated σ' is in those units too.

* :class:`ScalarRecalibration`: ``σ' = s σ`` with ``s`` the maximum-likelihood factor of
  the Gaussian model ``err ~ N(0, s² σ²)``:
  ``∂/∂s Σ_i [log(s σ_i) + err_i²/(2 s² σ_i²)] = 0  ⇒  s² = (1/n) Σ_i (err_i/σ_i)²``.
  One number: it cannot explode out of distribution.
* :class:`IsotonicRecalibration`: the recalibration map of Kuleshov, Fenner, Ermon,
  "Accurate uncertainties for deep learning using calibrated regression", ICML 2018, for
  central intervals: with ``r = |err|/σ`` on the validation set, the nominal level p is
  observed with frequency ``R(p) = P̂(r ≤ z_p)`` (a monotone — isotonic — function of p,
  estimated by the validation set's empirical distribution). The recalibrated interval at
  level p is ``|err| ≤ m(p) σ`` with ``m(p)`` the empirical p-quantile of r (the nominal
  multiplier ``z_p`` moved through ``R⁻¹``). ``σ' = m(0.6827) σ`` is the
  Gaussian-equivalent σ (exactly σ for a calibrated model, since z_0.6827 = 1). Outside
  the fitted levels the multiplier follows the nominal ``z_p`` scaled by its ratio at the
  nearest fitted level.

Both are JSON-serialisable (``to_dict`` / ``from_dict``; :func:`recalibration_from_dict`
dispatches on ``"kind"``) so model files can store them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from nnpot.uq._common import UQInputError, err_sigma, is_tensor

__all__ = ["IsotonicRecalibration", "ScalarRecalibration", "recalibration_from_dict"]

ONE_SIGMA_LEVEL = float(special.erf(1.0 / np.sqrt(2.0)))  # 0.682689...


def _z(level: Any) -> Any:
    return np.sqrt(2.0) * special.erfinv(np.asarray(level, dtype=np.float64))


def _scale_sigma(sigma: Any, factor: Any) -> Any:
    if is_tensor(sigma):
        return sigma * float(factor)
    return np.asarray(sigma, dtype=np.float64) * factor


class ScalarRecalibration:
    """``σ' = s σ`` with ``s = sqrt(mean((err/σ)²))`` (maximum likelihood).

    Pass ``scale`` to build a fitted object directly; calling an unfitted one raises.
    """

    kind = "scalar"

    def __init__(self, scale: float | None = None) -> None:
        if scale is not None and not (np.isfinite(scale) and scale > 0):
            raise UQInputError(f"scale must be a positive finite number, got {scale}.")
        self.scale = None if scale is None else float(scale)

    def fit(self, err: Any, sigma: Any) -> ScalarRecalibration:
        """Fit ``s`` on validation errors (any units) and their predicted σ (same units)."""
        e, s = err_sigma(err, sigma)
        scale = float(np.sqrt(np.mean((e / s) ** 2)))
        if not scale > 0.0:
            raise UQInputError("all validation errors are zero; cannot fit a scale factor.")
        self.scale = scale
        return self

    def __call__(self, sigma: Any) -> Any:
        """Recalibrated σ' = s σ (numpy or torch, same units and shape as ``sigma``)."""
        if self.scale is None:
            raise UQInputError("ScalarRecalibration is not fitted; call fit(err, sigma) first.")
        return _scale_sigma(sigma, self.scale)

    def half_width(self, sigma: Any, level: float) -> Any:
        """Half-width of the recalibrated central interval at ``level``: ``z_level s σ``."""
        return _scale_sigma(self(sigma), _z(level))

    def to_dict(self) -> dict:
        if self.scale is None:
            raise UQInputError("ScalarRecalibration is not fitted; nothing to serialise.")
        return {"kind": self.kind, "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict) -> ScalarRecalibration:
        if d.get("kind") != cls.kind or "scale" not in d:
            raise UQInputError("not a scalar recalibration: expected kind='scalar' and 'scale'.")
        return cls(float(d["scale"]))

    def __repr__(self) -> str:
        return f"ScalarRecalibration(scale={self.scale})"


class IsotonicRecalibration:
    """Level-dependent interval multipliers ``m(p)`` from validation data (Kuleshov 2018)."""

    kind = "isotonic"

    def __init__(
        self, levels: Any | None = None, multipliers: Any | None = None
    ) -> None:
        self.levels: np.ndarray | None = None
        self.multipliers: np.ndarray | None = None
        if levels is not None or multipliers is not None:
            lv = np.asarray(levels, dtype=np.float64)
            m = np.asarray(multipliers, dtype=np.float64)
            if lv.ndim != 1 or lv.shape != m.shape or lv.size < 2:
                raise UQInputError("levels and multipliers must be 1-D of equal length >= 2.")
            if np.any(np.diff(lv) <= 0) or lv[0] <= 0 or lv[-1] >= 1:
                raise UQInputError("levels must increase strictly inside (0, 1).")
            if np.any(np.diff(m) < 0) or np.any(m <= 0) or not np.all(np.isfinite(m)):
                raise UQInputError("multipliers must be positive, finite and non-decreasing.")
            self.levels, self.multipliers = lv, m

    def fit(self, err: Any, sigma: Any, n_knots: int = 99) -> IsotonicRecalibration:
        """Fit on validation errors and σ: ``m(p_j)`` = empirical ``p_j``-quantile of |err|/σ
        at ``p_j = j/(n_knots+1)``, j = 1..n_knots."""
        e, s = err_sigma(err, sigma)
        if e.size < 10:
            raise UQInputError(f"isotonic recalibration needs at least 10 samples, got {e.size}.")
        n_knots = int(n_knots)
        if n_knots < 2:
            raise UQInputError(f"n_knots must be at least 2, got {n_knots}.")
        r = np.abs(e) / s
        lv = np.arange(1, n_knots + 1) / (n_knots + 1.0)
        m = np.quantile(r, lv)
        m = np.maximum.accumulate(np.maximum(m, 1e-12 * max(float(r.max()), 1e-300)))
        if not m[-1] > 0:
            raise UQInputError("all validation errors are zero; cannot recalibrate.")
        self.levels, self.multipliers = lv, m
        return self

    def _need_fit(self) -> None:
        if self.levels is None:
            raise UQInputError(
                "IsotonicRecalibration is not fitted; call fit(err, sigma) first."
            )

    def multiplier(self, level: Any) -> Any:
        """``m(p)``: recalibrated half-width of the level-p central interval, in units of σ."""
        self._need_fit()
        p = np.asarray(level, dtype=np.float64)
        if np.any((p <= 0.0) | (p >= 1.0)):
            raise UQInputError(f"level must lie strictly between 0 and 1, got {level}.")
        lv, m = self.levels, self.multipliers
        out = np.interp(p, lv, m)
        lo, hi = p < lv[0], p > lv[-1]
        out = np.where(lo, _z(p) * m[0] / _z(lv[0]), out)
        out = np.where(hi, _z(p) * m[-1] / _z(lv[-1]), out)
        return out if out.ndim else float(out)

    def half_width(self, sigma: Any, level: float) -> Any:
        """Half-width of the recalibrated central interval at ``level``: ``m(level) σ``."""
        return _scale_sigma(sigma, self.multiplier(level))

    def __call__(self, sigma: Any) -> Any:
        """Gaussian-equivalent recalibrated σ' = m(0.6827) σ (numpy or torch)."""
        return _scale_sigma(sigma, self.multiplier(ONE_SIGMA_LEVEL))

    def to_dict(self) -> dict:
        self._need_fit()
        return {
            "kind": self.kind,
            "levels": [float(x) for x in self.levels],
            "multipliers": [float(x) for x in self.multipliers],
        }

    @classmethod
    def from_dict(cls, d: dict) -> IsotonicRecalibration:
        if d.get("kind") != cls.kind or "levels" not in d or "multipliers" not in d:
            raise UQInputError(
                "not an isotonic recalibration: expected kind='isotonic', 'levels', "
                "'multipliers'."
            )
        return cls(d["levels"], d["multipliers"])


def recalibration_from_dict(d: dict) -> ScalarRecalibration | IsotonicRecalibration:
    """Rebuild a recalibration from :meth:`to_dict` output (dispatch on ``d["kind"]``)."""
    kinds = {"scalar": ScalarRecalibration, "isotonic": IsotonicRecalibration}
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in kinds:
        raise UQInputError(f"unknown recalibration kind {kind!r}; expected one of {list(kinds)}.")
    return kinds[kind].from_dict(d)
