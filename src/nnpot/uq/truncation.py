"""EFT truncation errors: the pointwise Bayesian convergence model of BUQEYE.

An observable computed order by order in an EFT with expansion parameter ``0 < Q < 1`` is
written (Furnstahl, Klco, Phillips, Wesolowski, Phys. Rev. C 92, 024005 (2015), Sec. II;
Melendez et al., Phys. Rev. C 96, 024003 (2017), Sec. II)

    y_k = y_ref Σ_{n ∈ orders, n ≤ k} c_n Q^n,

where ``orders`` are the orders *present* (chiral EFT: 0, 2, 3, 4, ... since c_1 = 0 by
symmetry), ``y_ref`` sets the scale (same units as y) and the dimensionless coefficients
are read off the order-by-order differences,

    c_{n_0} = y_{n_0} / (y_ref Q^{n_0}),     c_{n_i} = (y_{n_i} − y_{n_{i−1}}) / (y_ref Q^{n_i}).

Model (Melendez et al. 2019, Phys. Rev. C 100, 044001, Sec. II–III, pointwise limit):
the coefficients are iid ``c_n | c̄² ~ N(0, c̄²)`` with the conjugate prior
``c̄² ~ χ⁻²(ν₀, τ₀²)`` (scaled inverse-χ²). Pooling ``N`` coefficients gives

    c̄² | c ~ χ⁻²(ν, τ²),   ν = ν₀ + N,   ν τ² = ν₀ τ₀² + Σ c_n².

The truncation error ``δy_k = y_ref Σ_{n ≥ m} c_n Q^n`` (``m`` = first omitted order,
``k + 1`` unless the expansion skips it) is, given c̄², Gaussian with variance
``y_ref² c̄² Q^{2m} / (1 − Q²)`` (geometric sum of ``Q^{2n}``, n ≥ m). Integrating c̄² over its
posterior gives a Student-t with ν degrees of freedom and scale

    s = |y_ref| τ Q^m / sqrt(1 − Q²),

so the central credible interval at level p has half-width ``t_ν⁻¹((1+p)/2) · s`` and the
standard deviation (for χ² fits, added in quadrature to data errors) is ``s sqrt(ν/(ν−2))``
(ν > 2). The correlated (Gaussian-process) version is :class:`nnpot.uq.truncation_gp.TruncationGP`.

Units: y and y_ref share units (MeV, degrees, fm, ...); c, Q, c̄, τ are dimensionless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from nnpot.uq._common import UQInputError, as_array, is_tensor, torch

__all__ = ["TruncationModel", "extract_coefficients", "truncation_band"]


def _check_orders(orders: Sequence[int], n: int) -> list[int]:
    o = [int(v) for v in orders]
    if len(o) != n:
        raise UQInputError(f"orders has {len(o)} entries but there are {n} predictions.")
    if o and (o[0] < 0 or any(b <= a for a, b in zip(o, o[1:], strict=False))):
        raise UQInputError(f"orders must be non-negative and strictly increasing, got {o}.")
    return o


def _check_q(Q: Any, upper: bool = True) -> np.ndarray:
    q = as_array(Q, "Q")
    if np.any(q <= 0.0) or (upper and np.any(q >= 1.0)):
        raise UQInputError("the expansion parameter Q must lie strictly between 0 and 1.")
    return q


def extract_coefficients(predictions: Any, y_ref: Any, Q: Any, orders: Sequence[int]) -> Any:
    """Dimensionless EFT coefficients from order-by-order predictions.

    Args:
        predictions: ``[n_orders, ...]`` cumulative predictions y at each order present
            (units of y); numpy or torch (torch stays differentiable).
        y_ref: reference scale (units of y, nonzero), broadcastable to ``predictions[0]``.
        Q: expansion parameter in (0, 1), broadcastable to ``predictions[0]``.
        orders: the orders present, strictly increasing (chiral EFT: ``(0, 2, 3, ...)``).

    Returns:
        ``c[n_orders, ...]`` with ``c_{n_i} = (y_i − y_{i−1}) / (y_ref Q^{n_i})`` (y_{−1} = 0).
    """
    n = int(predictions.shape[0]) if hasattr(predictions, "shape") else len(predictions)
    o = _check_orders(orders, n)
    if n == 0:
        raise UQInputError("predictions is empty; need at least one order.")
    if is_tensor(predictions):
        y = predictions
        ref, q = (
            torch.as_tensor(v, dtype=y.dtype, device=y.device) for v in (y_ref, Q)
        )
    else:
        y = as_array(predictions, "predictions")
        ref = as_array(y_ref, "y_ref")
        q = as_array(Q, "Q")
    if np.any(as_array(Q, "Q") <= 0.0):
        raise UQInputError("the expansion parameter Q must be positive.")
    if np.any(as_array(y_ref, "y_ref") == 0.0):
        raise UQInputError("y_ref must be nonzero everywhere.")
    rows = []
    for i, order in enumerate(o):
        dy = y[i] - y[i - 1] if i > 0 else y[i]
        rows.append(dy / (ref * q**order))
    if is_tensor(predictions):
        return torch.stack(rows)
    return np.stack(rows)


class TruncationModel:
    """Pointwise BUQEYE model: iid ``c_n ~ N(0, c̄²)``, ``c̄² ~ χ⁻²(ν₀, τ₀²)``.

    Args:
        nu0: prior degrees of freedom (≥ 0; 0 is the improper scale-invariant limit).
        tau0: prior scale of c̄ (> 0). The defaults (1, 1) encode naturalness, c̄ ≈ 1,
            worth one pseudo-coefficient.
    """

    def __init__(self, nu0: float = 1.0, tau0: float = 1.0) -> None:
        if not nu0 >= 0.0 or not tau0 > 0.0:
            raise UQInputError(f"need nu0 >= 0 and tau0 > 0, got nu0={nu0}, tau0={tau0}.")
        self.nu0 = float(nu0)
        self.tau0 = float(tau0)
        self.n_coefficients = 0
        self.sum_c2 = 0.0

    # posterior hyperparameters (prior ones before fit)
    @property
    def nu(self) -> float:
        """Posterior degrees of freedom ``ν = ν₀ + N``."""
        return self.nu0 + self.n_coefficients

    @property
    def tau2(self) -> float:
        """Posterior scale ``τ² = (ν₀ τ₀² + Σ c²) / ν``."""
        if self.nu <= 0:
            raise UQInputError("no coefficients and nu0 = 0: the posterior is undefined.")
        return (self.nu0 * self.tau0**2 + self.sum_c2) / self.nu

    @property
    def cbar(self) -> float:
        """Point estimate of c̄: the posterior scale τ (dimensionless)."""
        return float(np.sqrt(self.tau2))

    def fit(
        self, c: Any, orders: Sequence[int] | None = None, exclude_orders: Sequence[int] = ()
    ) -> TruncationModel:
        """Pool coefficients ``c[n_orders, ...]`` (all observables, iid) into the posterior.

        ``orders`` labels the rows (default 0..n_orders−1); rows whose order is in
        ``exclude_orders`` are left out — exclude 0 when ``y_ref`` is the LO prediction,
        which makes ``c_0 = 1`` by construction. Replaces any previous fit.
        """
        a = as_array(c, "c")
        if a.ndim == 0 or a.shape[0] == 0:
            raise UQInputError("c must have a leading order axis with at least one order.")
        o = _check_orders(range(a.shape[0]) if orders is None else orders, a.shape[0])
        keep = [i for i, order in enumerate(o) if order not in set(exclude_orders)]
        vals = a[keep].ravel() if keep else np.zeros(0)
        self.n_coefficients = int(vals.size)
        self.sum_c2 = float(np.sum(vals**2))
        if self.nu <= 0:
            raise UQInputError("no coefficients left after exclusion and nu0 = 0.")
        return self

    def cbar2_posterior(self):
        """Posterior of c̄² as a frozen scipy distribution: ``χ⁻²(ν, τ²)`` =
        ``invgamma(a=ν/2, scale=ν τ²/2)``."""
        return stats.invgamma(a=0.5 * self.nu, scale=0.5 * self.nu * self.tau2)

    def cbar_interval(self, level: float = 0.68) -> tuple[float, float]:
        """Equal-tailed credible interval of c̄ (square roots of c̄²'s interval)."""
        lo, hi = self.cbar2_posterior().interval(level)
        return float(np.sqrt(lo)), float(np.sqrt(hi))

    def scale(self, y_ref: Any, Q: Any, k: int, next_order: int | None = None) -> np.ndarray:
        """Student-t scale ``|y_ref| τ Q^m / sqrt(1 − Q²)``, m = ``next_order`` or k + 1
        (units of y_ref)."""
        q = _check_q(Q)
        m = int(k) + 1 if next_order is None else int(next_order)
        if m <= int(k):
            raise UQInputError(f"next_order ({m}) must exceed the highest order k ({k}).")
        ref = np.abs(as_array(y_ref, "y_ref"))
        return ref * np.sqrt(self.tau2) * q**m / np.sqrt(1.0 - q**2)

    def band(
        self, y_ref: Any, Q: Any, k: int, level: float = 0.68, next_order: int | None = None
    ) -> np.ndarray:
        """Half-width of the central ``level`` credible interval of the order-k truncation
        error: ``t_ν⁻¹((1 + level)/2) · |y_ref| τ Q^m / sqrt(1 − Q²)`` (units of y_ref)."""
        if not 0.0 < float(level) < 1.0:
            raise UQInputError(f"level must lie strictly between 0 and 1, got {level}.")
        return stats.t.ppf(0.5 * (1.0 + level), self.nu) * self.scale(y_ref, Q, k, next_order)

    def std(self, y_ref: Any, Q: Any, k: int, next_order: int | None = None) -> np.ndarray:
        """Standard deviation of the order-k truncation error, ``s sqrt(ν/(ν − 2))`` (units of
        y_ref): the σ to add in quadrature to data errors in a χ². Needs ν > 2."""
        if self.nu <= 2.0:
            raise UQInputError(
                f"the truncation-error variance needs nu > 2 (have {self.nu}); pool more "
                f"coefficients or use a stronger prior."
            )
        return self.scale(y_ref, Q, k, next_order) * np.sqrt(self.nu / (self.nu - 2.0))

    def to_dict(self) -> dict:
        return {
            "kind": "buqeye_pointwise",
            "nu0": self.nu0,
            "tau0": self.tau0,
            "n_coefficients": self.n_coefficients,
            "sum_c2": self.sum_c2,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TruncationModel:
        if d.get("kind") != "buqeye_pointwise":
            raise UQInputError("not a serialised TruncationModel (kind 'buqeye_pointwise').")
        obj = cls(d["nu0"], d["tau0"])
        obj.n_coefficients = int(d["n_coefficients"])
        obj.sum_c2 = float(d["sum_c2"])
        return obj


def truncation_band(
    predictions: Any,
    y_ref: Any,
    Q: Any,
    orders: Sequence[int],
    level: float = 0.68,
    nu0: float = 1.0,
    tau0: float = 1.0,
    exclude_orders: Sequence[int] = (),
    next_order: int | None = None,
) -> dict:
    """Coefficients, c̄ posterior and truncation bands in one call (numpy out).

    Args:
        predictions: ``[n_orders, ...]`` cumulative predictions at the orders present
            (units of y; torch tensors are detached).
        y_ref, Q, orders: as in :func:`extract_coefficients`; ``Q`` in (0, 1).
        level: credibility of the central interval.
        nu0, tau0: prior of c̄² (:class:`TruncationModel`).
        exclude_orders: orders left out of the c̄² posterior (e.g. ``(0,)`` if y_ref = y_LO).
        next_order: first omitted order after the highest one (default ``orders[-1] + 1``;
            pass 2 for chiral LO alone, where c_1 = 0).

    The band at the highest order uses all coefficients; the per-order bands use only the
    coefficients up to that order (what was known then). The first omitted order after
    ``orders[i]`` is ``orders[i+1]`` (so chiral LO, orders (0, 2, ...), gets Q²), and
    ``next_order`` after the last.

    Returns a dict with
        ``half_width``, ``std``: arrays shaped like ``predictions[0]`` (units of y) for the
            highest order (``std`` raises if ν ≤ 2);
        ``cbar``, ``nu``, ``tau2``: posterior from all (non-excluded) coefficients;
        ``coefficients``: ``c[n_orders, ...]``;
        ``half_width_per_order``, ``std_per_order``: ``[n_orders, ...]`` (NaN where the
            posterior at that order is undefined or has ν ≤ 2), ``cbar_per_order``;
        ``orders``, ``level``.
    """
    y = as_array(predictions, "predictions")
    o = _check_orders(orders, y.shape[0] if y.ndim else 0)
    _check_q(Q)
    c = extract_coefficients(y, y_ref, Q, o)
    shape = np.broadcast_shapes(y.shape[1:], np.shape(as_array(y_ref, "y_ref")), np.shape(Q))
    hw = np.full((len(o),) + shape, np.nan)
    sd = np.full((len(o),) + shape, np.nan)
    cb = np.full(len(o), np.nan)
    last_next = o[-1] + 1 if next_order is None else int(next_order)
    for i, order in enumerate(o):
        nxt = o[i + 1] if i + 1 < len(o) else last_next
        if nu0 == 0.0 and all(v in set(exclude_orders) for v in o[: i + 1]):
            continue
        m = TruncationModel(nu0, tau0).fit(c[: i + 1], o[: i + 1], exclude_orders)
        cb[i] = m.cbar
        hw[i] = np.broadcast_to(m.band(y_ref, Q, order, level, nxt), shape)
        if m.nu > 2.0:
            sd[i] = np.broadcast_to(m.std(y_ref, Q, order, nxt), shape)
    model = TruncationModel(nu0, tau0).fit(c, o, exclude_orders)
    return {
        "half_width": np.broadcast_to(model.band(y_ref, Q, o[-1], level, last_next), shape).copy(),
        "std": np.broadcast_to(model.std(y_ref, Q, o[-1], last_next), shape).copy(),
        "cbar": model.cbar,
        "nu": model.nu,
        "tau2": model.tau2,
        "coefficients": c,
        "half_width_per_order": hw,
        "std_per_order": sd,
        "cbar_per_order": cb,
        "orders": o,
        "level": float(level),
    }
