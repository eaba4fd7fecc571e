"""EFT truncation errors correlated across an input (energy, angle, ...): BUQEYE's GP model.

Melendez, Furnstahl, Phillips, Pratola, Wesolowski, "Quantifying correlated truncation
errors in effective field theory", Phys. Rev. C 100, 044001 (2019), Secs. III–IV and
App. A: each coefficient curve is a draw from a Gaussian process,

    c_n(x) | c̄², ℓ ~ GP(0, c̄² r(x, x')),    r(x, x') = exp(−(x − x')² / (2ℓ²)),

independently for each order n (and each observable), with the same conjugate prior
``c̄² ~ χ⁻²(ν₀, τ₀²)`` as the pointwise model (:mod:`nnpot.uq.truncation`). For curves
``c_j`` sampled at ``n_x`` points with correlation matrix ``R`` (+ a small nugget on the
diagonal for numerical stability), the posterior is ``χ⁻²(ν, τ²)`` with

    ν = ν₀ + n_curves n_x,    ν τ² = ν₀ τ₀² + Σ_j c_jᵀ R⁻¹ c_j,

and the length scale ℓ maximises the marginal likelihood with c̄² integrated out:

    log p(c | ℓ) = −(n_curves/2) log|R| − (N/2) log 2π + log Γ(ν/2) − log Γ(ν₀/2)
                   + (ν₀/2) log(ν₀τ₀²/2) − (ν/2) log((ν₀τ₀² + Σ_j c_jᵀR⁻¹c_j)/2)

(N = n_curves n_x; for ν₀ = 0 the prior terms are dropped). The truncation error
``δy_k(x) = y_ref(x) Σ_{n≥m} c_n(x) Q(x)^n`` is then a multivariate Student-t with ν
degrees of freedom and scale matrix

    K(x, x') = τ² y_ref(x) y_ref(x') (Q(x) Q(x'))^m / (1 − Q(x) Q(x')) r(x, x'),

whose covariance ``ν/(ν − 2) K`` is what a correlated χ² should add to the data
covariance. Units: x in whatever the input is (MeV, degrees, fm⁻¹; ℓ in the same units);
y_ref and the band in units of y.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import linalg, optimize, special, stats

from nnpot.uq._common import UQInputError, as_array
from nnpot.uq.truncation import _check_orders, _check_q

__all__ = ["TruncationGP"]


class TruncationGP:
    """Correlated BUQEYE truncation model (squared-exponential kernel over one input).

    Args:
        nu0, tau0: conjugate prior of c̄² (as :class:`~nnpot.uq.truncation.TruncationModel`).
        length_scale: fixed ℓ (units of x); ``None`` fits it by maximum marginal likelihood.
        nugget: relative jitter added to the diagonal of the correlation matrix.
        bounds: search interval for ℓ (default: smallest spacing/2 to 10× the x span).
    """

    def __init__(
        self,
        nu0: float = 1.0,
        tau0: float = 1.0,
        length_scale: float | None = None,
        nugget: float = 1e-8,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        if not nu0 >= 0.0 or not tau0 > 0.0:
            raise UQInputError(f"need nu0 >= 0 and tau0 > 0, got nu0={nu0}, tau0={tau0}.")
        if length_scale is not None and not length_scale > 0.0:
            raise UQInputError(f"length_scale must be positive, got {length_scale}.")
        self.nu0, self.tau0 = float(nu0), float(tau0)
        self.length_scale = None if length_scale is None else float(length_scale)
        self._fixed = length_scale is not None
        self.nugget = float(nugget)
        self.bounds = bounds
        self.n_coefficients = 0
        self.quad = 0.0

    # -- kernel -------------------------------------------------------------------------
    def correlation(self, xa: Any, xb: Any, length_scale: float | None = None) -> np.ndarray:
        """``r(x_a, x_b) = exp(−(x_a − x_b)²/(2ℓ²))`` as an ``[len(xa), len(xb)]`` matrix."""
        ell = self.length_scale if length_scale is None else length_scale
        if ell is None:
            raise UQInputError("TruncationGP has no length scale yet; fit it or pass one.")
        a = as_array(xa, "x").ravel()
        b = as_array(xb, "x").ravel()
        return np.exp(-0.5 * ((a[:, None] - b[None, :]) / ell) ** 2)

    def _chol(self, x: np.ndarray, ell: float) -> np.ndarray:
        r = self.correlation(x, x, ell) + self.nugget * np.eye(x.size)
        return linalg.cholesky(r, lower=True)

    def log_marginal_likelihood(self, length_scale: float, x: Any, curves: Any) -> float:
        """``log p(c | ℓ)`` (formula in the module docstring) for ``curves[n_curves, n_x]``."""
        xv = as_array(x, "x", ndim=1)
        cv = as_array(curves, "curves", ndim=2)
        chol = self._chol(xv, float(length_scale))
        w = linalg.solve_triangular(chol, cv.T, lower=True)
        quad = float(np.sum(w**2))
        n_c, n_x = cv.shape
        big_n = n_c * n_x
        logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
        nu = self.nu0 + big_n
        out = -0.5 * n_c * logdet - 0.5 * big_n * np.log(2.0 * np.pi)
        if self.nu0 > 0.0:
            a0 = self.nu0 * self.tau0**2
            out += special.gammaln(0.5 * nu) - special.gammaln(0.5 * self.nu0)
            out += 0.5 * self.nu0 * np.log(0.5 * a0) - 0.5 * nu * np.log(0.5 * (a0 + quad))
        else:
            out += special.gammaln(0.5 * nu) - 0.5 * nu * np.log(0.5 * quad)
        return float(out)

    # -- fit ----------------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        c: Any,
        orders: Sequence[int] | None = None,
        exclude_orders: Sequence[int] = (),
    ) -> TruncationGP:
        """Fit ℓ (unless fixed) and the c̄² posterior to coefficient curves.

        Args:
            x: ``[n_x]`` input points, distinct (units of the input).
            c: ``[n_orders, ..., n_x]`` coefficients (:func:`~nnpot.uq.truncation.
                extract_coefficients` of predictions shaped like that); every curve along
                the last axis is an independent draw.
            orders, exclude_orders: as in :meth:`TruncationModel.fit`.
        """
        xv = as_array(x, "x", ndim=1)
        cv = as_array(c, "c")
        if cv.ndim < 2 or cv.shape[-1] != xv.size:
            raise UQInputError(
                f"c must be [n_orders, ..., n_x] with n_x = {xv.size}, got shape {cv.shape}."
            )
        if xv.size < 2 or np.unique(xv).size != xv.size:
            raise UQInputError("x needs at least two distinct points and no duplicates.")
        o = _check_orders(range(cv.shape[0]) if orders is None else orders, cv.shape[0])
        keep = [i for i, order in enumerate(o) if order not in set(exclude_orders)]
        if not keep:
            raise UQInputError("no coefficient orders left after exclusion.")
        curves = cv[keep].reshape(-1, xv.size)
        if not self._fixed:
            xs = np.sort(xv)
            lo, hi = self.bounds or (0.5 * float(np.min(np.diff(xs))), 10.0 * (xs[-1] - xs[0]))
            grid = np.linspace(np.log(lo), np.log(hi), 41)
            vals = [-self.log_marginal_likelihood(np.exp(g), xv, curves) for g in grid]
            i = int(np.argmin(vals))
            a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
            res = optimize.minimize_scalar(
                lambda g: -self.log_marginal_likelihood(np.exp(g), xv, curves),
                bounds=(a, b),
                method="bounded",
            )
            self.length_scale = float(np.exp(res.x if res.fun <= vals[i] else grid[i]))
        chol = self._chol(xv, self.length_scale)
        self.quad = float(np.sum(linalg.solve_triangular(chol, curves.T, lower=True) ** 2))
        self.n_coefficients = int(curves.size)
        return self

    @property
    def nu(self) -> float:
        """Posterior degrees of freedom ``ν₀ + n_curves n_x``."""
        return self.nu0 + self.n_coefficients

    @property
    def tau2(self) -> float:
        """Posterior scale ``(ν₀τ₀² + Σ cᵀR⁻¹c)/ν``."""
        if self.nu <= 0:
            raise UQInputError("TruncationGP posterior is undefined: fit it first.")
        return (self.nu0 * self.tau0**2 + self.quad) / self.nu

    @property
    def cbar(self) -> float:
        """Point estimate of c̄ (posterior scale τ)."""
        return float(np.sqrt(self.tau2))

    def cbar2_posterior(self):
        """Posterior of c̄², ``invgamma(a=ν/2, scale=ν τ²/2)`` (frozen scipy distribution)."""
        return stats.invgamma(a=0.5 * self.nu, scale=0.5 * self.nu * self.tau2)

    # -- truncation error -----------------------------------------------------------------
    def scale_matrix(
        self, x: Any, y_ref: Any, Q: Any, k: int, next_order: int | None = None
    ) -> np.ndarray:
        """Student-t scale matrix ``K(x, x')`` of δy_k at the points x (units of y²)."""
        xv = as_array(x, "x", ndim=1)
        q = np.broadcast_to(_check_q(Q), xv.shape)
        ref = np.broadcast_to(as_array(y_ref, "y_ref"), xv.shape)
        m = int(k) + 1 if next_order is None else int(next_order)
        if m <= int(k):
            raise UQInputError(f"next_order ({m}) must exceed the highest order k ({k}).")
        qq = np.outer(q, q)
        return self.tau2 * np.outer(ref, ref) * qq**m / (1.0 - qq) * self.correlation(xv, xv)

    def cov(self, x: Any, y_ref: Any, Q: Any, k: int, next_order: int | None = None) -> np.ndarray:
        """Covariance ``ν/(ν−2) K`` of the order-k truncation error at x (units of y²);
        add it to the data covariance in a correlated χ². Needs ν > 2."""
        if self.nu <= 2.0:
            raise UQInputError(f"the truncation-error covariance needs nu > 2 (have {self.nu}).")
        return self.nu / (self.nu - 2.0) * self.scale_matrix(x, y_ref, Q, k, next_order)

    def band(
        self,
        x: Any,
        y_ref: Any,
        Q: Any,
        k: int,
        level: float = 0.68,
        next_order: int | None = None,
    ) -> np.ndarray:
        """Pointwise half-width ``t_ν⁻¹((1+level)/2) sqrt(K(x, x))`` (units of y)."""
        if not 0.0 < float(level) < 1.0:
            raise UQInputError(f"level must lie strictly between 0 and 1, got {level}.")
        diag = np.diag(self.scale_matrix(x, y_ref, Q, k, next_order))
        return stats.t.ppf(0.5 * (1.0 + level), self.nu) * np.sqrt(diag)

    def std(self, x: Any, y_ref: Any, Q: Any, k: int, next_order: int | None = None) -> np.ndarray:
        """Pointwise standard deviation ``sqrt(diag cov)`` (units of y)."""
        return np.sqrt(np.diag(self.cov(x, y_ref, Q, k, next_order)))

    def to_dict(self) -> dict:
        return {
            "kind": "buqeye_gp",
            "nu0": self.nu0,
            "tau0": self.tau0,
            "length_scale": self.length_scale,
            "nugget": self.nugget,
            "n_coefficients": self.n_coefficients,
            "quad": self.quad,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TruncationGP:
        if d.get("kind") != "buqeye_gp":
            raise UQInputError("not a serialised TruncationGP (kind 'buqeye_gp').")
        obj = cls(d["nu0"], d["tau0"], d["length_scale"], d["nugget"])
        obj.n_coefficients = int(d["n_coefficients"])
        obj.quad = float(d["quad"])
        return obj
