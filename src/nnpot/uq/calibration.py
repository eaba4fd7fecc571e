"""Calibration metrics for Gaussian predictive uncertainties, and recalibration.

Conventions for every function here: ``err = prediction − reference`` (signed; only |err|
matters for the metrics) and ``sigma > 0`` is the predicted standard deviation of the same
quantity, in the same units (eV, eV/Å, MeV, degrees, ...). Inputs of any shape are
flattened; numpy arrays and torch tensors are accepted (tensors are detached).

The predictive distribution is read as ``reference ~ N(prediction, σ²)``, so the central
interval at level ``p`` is ``|err| ≤ z_p σ`` with ``z_p = Φ⁻¹((1 + p)/2) = √2 erf⁻¹(p)``
(``z_0.68 ≈ 0.994``, ``z_0.95 ≈ 1.960``).

* coverage(p): fraction of samples inside the level-p interval; calibrated ⇔ coverage(p) = p.
* miscalibration area: ``∫₀¹ |coverage(p) − p| dp`` (Tran et al., "Methods for comparing
  uncertainty quantifications for material property predictions", Mach. Learn.: Sci.
  Technol. 1, 025006 (2020); uncertainty-toolbox's definition with central intervals).
  0 is perfect, 0.5 the worst possible.
* NLL: mean of ``½ log(2πσ²) + err²/(2σ²)``.
* ENCE (Levi, Gispan, Giladi, Fetaya, "Evaluating and calibrating uncertainty prediction
  in regression tasks", Sensors 22, 5540 (2022)): sort by σ, split into B equal-count bins,
  ``ENCE = (1/B) Σ_b |RMV_b − RMSE_b| / RMV_b`` with ``RMV_b = sqrt(mean σ²)`` and
  ``RMSE_b = sqrt(mean err²)`` in bin b. Dimensionless, 0 is perfect.
* Spearman rank correlation of |err| with σ (does σ rank the errors?).

Recalibration (:class:`ScalarRecalibration`, :class:`IsotonicRecalibration`) lives in
:mod:`nnpot.uq.recalibration` and is re-exported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats

from nnpot.uq._common import UQInputError, err_sigma, is_tensor, torch
from nnpot.uq.recalibration import IsotonicRecalibration, ScalarRecalibration

__all__ = [
    "IsotonicRecalibration",
    "ScalarRecalibration",
    "calibration_report",
    "combine",
    "coverage",
    "coverage_curve",
    "ence",
    "gaussian_nll_np",
    "miscalibration_area",
    "spearman_error_sigma",
    "z_of_level",
]


def z_of_level(level: Any) -> Any:
    """Half-width in σ of the central Gaussian interval with probability ``level``:
    ``z = Φ⁻¹((1 + level)/2) = √2 erf⁻¹(level)``; ``level`` in [0, 1] (1 gives inf)."""
    lv = np.asarray(level, dtype=np.float64)
    if np.any((lv < 0.0) | (lv > 1.0)):
        raise UQInputError(f"level must lie in [0, 1], got {level}.")
    return np.sqrt(2.0) * special.erfinv(lv)


def coverage(err: Any, sigma: Any, level: float) -> float:
    """Observed fraction of samples with ``|err| ≤ z_level σ`` (0..1); calibrated ⇒ ≈ level."""
    e, s = err_sigma(err, sigma)
    if not 0.0 < float(level) < 1.0:
        raise UQInputError(f"level must lie strictly between 0 and 1, got {level}.")
    return float(np.mean(np.abs(e) <= z_of_level(level) * s))


def _multipliers(p: np.ndarray, recalibration: Any = None) -> np.ndarray:
    """Half-widths of the level-p intervals in units of σ: ``z_p``, or the recalibrated
    ``recalibration.half_width(1, p)`` (0 at p = 0, inf at p = 1)."""
    if recalibration is None:
        return z_of_level(p)
    m = np.where(p <= 0.0, 0.0, np.inf)
    inner = (p > 0.0) & (p < 1.0)
    m[inner] = np.asarray(recalibration.half_width(1.0, p[inner]), dtype=np.float64)
    return m


def coverage_curve(
    err: Any, sigma: Any, n_levels: int = 100, recalibration: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Expected levels ``p_j = j/n_levels`` (j = 0..n_levels) and observed coverages.

    The observed coverage at ``p`` is the fraction of ``|err|/σ ≤ z_p``; at ``p = 1`` it is 1.
    This is the curve of the calibration plot (expected on x, observed on y). With a
    fitted ``recalibration`` (:class:`ScalarRecalibration` or
    :class:`IsotonicRecalibration`) the level-p interval is its ``half_width(σ, p)``
    (``z_p s σ`` or ``m(p) σ``) instead of ``z_p σ``.
    """
    e, s = err_sigma(err, sigma)
    if int(n_levels) < 2:
        raise UQInputError(f"n_levels must be at least 2, got {n_levels}.")
    p = np.linspace(0.0, 1.0, int(n_levels) + 1)
    r = np.sort(np.abs(e) / s)
    obs = np.searchsorted(r, _multipliers(p, recalibration), side="right") / r.size
    return p, obs


def miscalibration_area(
    err: Any, sigma: Any, n_levels: int = 100, recalibration: Any = None
) -> float:
    """``∫₀¹ |coverage(p) − p| dp`` by the trapezoidal rule on ``n_levels`` intervals
    (intervals of ``recalibration`` when given, see :func:`coverage_curve`)."""
    p, obs = coverage_curve(err, sigma, n_levels, recalibration)
    d = np.abs(obs - p)
    return float(np.sum(0.5 * (d[1:] + d[:-1]) * np.diff(p)))


def gaussian_nll_np(err: Any, sigma: Any) -> float:
    """Mean Gaussian negative log-likelihood ``½ log(2πσ²) + err²/(2σ²)`` (natural log)."""
    e, s = err_sigma(err, sigma)
    return float(np.mean(0.5 * np.log(2.0 * np.pi * s**2) + 0.5 * (e / s) ** 2))


def ence(err: Any, sigma: Any, n_bins: int = 10) -> float:
    """Expected normalised calibration error of Levi et al. (2022), equal-count σ bins."""
    e, s = err_sigma(err, sigma)
    n_bins = int(n_bins)
    if n_bins < 1 or e.size < n_bins:
        raise UQInputError(
            f"ence needs 1 <= n_bins <= number of samples, got n_bins={n_bins}, n={e.size}."
        )
    order = np.argsort(s, kind="stable")
    total = 0.0
    for idx in np.array_split(order, n_bins):
        rmv = np.sqrt(np.mean(s[idx] ** 2))
        rmse = np.sqrt(np.mean(e[idx] ** 2))
        total += abs(rmv - rmse) / rmv
    return float(total / n_bins)


def spearman_error_sigma(err: Any, sigma: Any) -> float:
    """Spearman rank correlation of |err| with σ (−1..1; NaN when either is constant)."""
    e, s = err_sigma(err, sigma)
    if e.size < 2 or np.all(s == s[0]) or np.all(np.abs(e) == abs(e[0])):
        return float("nan")
    return float(stats.spearmanr(np.abs(e), s)[0])


def calibration_report(
    err: Any, sigma: Any, n_bins: int = 10, n_levels: int = 100, recalibration: Any = None
) -> dict:
    """All metrics in one JSON-ready dict (floats; units of err where dimensional).

    Keys: ``n``, ``rmse``, ``mae``, ``rms_sigma``, ``coverage_68``, ``coverage_95``
    (observed coverage of the 68 % and 95 % central intervals), ``miscalibration_area``,
    ``nll``, ``ence`` (``n_bins`` reduced to n when there are fewer samples), ``spearman``.

    With a fitted ``recalibration`` and the raw σ: coverages and the area use its
    intervals ``half_width(σ, p)`` (an isotonic map's level-dependent multipliers), the
    other σ metrics its Gaussian-equivalent ``σ' = recalibration(σ)``. For a scalar
    factor this equals ``calibration_report(err, s σ)``.
    """
    e, s = err_sigma(err, sigma)
    cov = {}
    for level in (0.68, 0.95):
        half = (z_of_level(level) * s if recalibration is None
                else np.asarray(recalibration.half_width(s, level), dtype=np.float64))
        cov[level] = float(np.mean(np.abs(e) <= half))
    area = miscalibration_area(e, s, n_levels, recalibration)
    if recalibration is not None:
        s = np.asarray(recalibration(s), dtype=np.float64)
    return {
        "n": int(e.size),
        "rmse": float(np.sqrt(np.mean(e**2))),
        "mae": float(np.mean(np.abs(e))),
        "rms_sigma": float(np.sqrt(np.mean(s**2))),
        "coverage_68": cov[0.68],
        "coverage_95": cov[0.95],
        "miscalibration_area": area,
        "nll": gaussian_nll_np(e, s),
        "ence": ence(e, s, min(int(n_bins), e.size)),
        "spearman": spearman_error_sigma(e, s),
    }


def combine(sigma_epistemic: Any, sigma_aleatoric: Any) -> Any:
    """Total predictive σ of independent parts: ``sqrt(σ_epi² + σ_alea²)`` (same units).

    Torch in, torch out (differentiable); numpy otherwise. Broadcasts.
    """
    if is_tensor(sigma_epistemic) or is_tensor(sigma_aleatoric):
        a = torch.as_tensor(sigma_epistemic)
        b = torch.as_tensor(sigma_aleatoric)
        return torch.sqrt(a**2 + b**2)
    a = np.asarray(sigma_epistemic, dtype=np.float64)
    b = np.asarray(sigma_aleatoric, dtype=np.float64)
    return np.sqrt(a**2 + b**2)
