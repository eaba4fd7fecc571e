"""Extrapolation of NCSM energies to an infinite basis: E(N) = E_inf + a exp(-b N).

With three equidistant points (N - 2d, N - d, N) the fit is exact:
r = (E_N - E_{N-d})/(E_{N-d} - E_{N-2d}) = exp(-b d),
E_inf = E_N + (E_N - E_{N-d}) r/(1 - r). With more points a least-squares fit (scipy
curve_fit) of the last ``window`` points is used.

Uncertainty (MeV): the larger of (i) the change of E_inf when the window is moved one step
down in N (tests whether the sequence is already exponential) and (ii) 20 % of the distance
|E_inf - E_last| extrapolated over (a floor for sequences that look too perfect).
Sequences that are not monotonic and geometric (0 < r < 1) give sigma = inf with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.optimize

from nnpot.errors import InputError

__all__ = ["Extrapolation", "extrapolate_exponential"]


@dataclass
class Extrapolation:
    """E_inf, sigma [MeV], decay b [1/quanta], last energy and the points used."""

    e_inf: float
    sigma: float
    b: float
    e_last: float
    nmax: list[int]
    energies: list[float]
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _fit(n: np.ndarray, e: np.ndarray) -> tuple[float, float, float]:
    """(E_inf, a, b) of E = E_inf + a exp(-b N) through the points."""
    if n.size == 3 and np.allclose(np.diff(n), n[1] - n[0]):
        d1, d2 = e[1] - e[0], e[2] - e[1]
        if d1 == 0 or not (0 < d2 / d1 < 1):
            return math.nan, math.nan, math.nan
        r = d2 / d1
        b = -math.log(r) / (n[1] - n[0])
        e_inf = e[2] + d2 * r / (1 - r)
        a = (e[2] - e_inf) * math.exp(b * n[2])
        return e_inf, a, b
    e0, a0, b0 = _fit(n[-3:], e[-3:]) if n.size >= 3 else (math.nan,) * 3
    if not math.isfinite(e0):
        return math.nan, math.nan, math.nan
    nn = n - n[-1]
    try:
        popt, _ = scipy.optimize.curve_fit(
            lambda x, ei, a, b: ei + a * np.exp(-b * x), nn, e,
            p0=(e0, e[-1] - e0, b0), maxfev=20000)
    except RuntimeError:
        return math.nan, math.nan, math.nan
    ei, a, b = popt
    return float(ei), float(a * math.exp(b * n[-1])), float(b)


def extrapolate_exponential(nmax: Sequence[int], energies: Sequence[float],
                            window: int = 3) -> Extrapolation:
    """Fit the last ``window`` points of E(N_max) [MeV] and estimate the uncertainty."""
    n = np.asarray(nmax, dtype=float)
    e = np.asarray(energies, dtype=float)
    if n.shape != e.shape or n.size < window or window < 3:
        raise InputError(f"extrapolation needs at least {max(window, 3)} (N_max, E) pairs, "
                         f"got {n.size}")
    if not np.all(np.isfinite(e)) or np.any(np.diff(n) <= 0):
        raise InputError("N_max values must increase and energies must be finite")
    e_inf, _, b = _fit(n[-window:], e[-window:])
    if not math.isfinite(e_inf):
        return Extrapolation(float(e[-1]), math.inf, math.nan, float(e[-1]),
                             [int(x) for x in n], [float(x) for x in e],
                             "not converging geometrically: no extrapolation")
    shifts = []
    if n.size > window:
        e_prev, _, _ = _fit(n[-window - 1:-1], e[-window - 1:-1])
        if math.isfinite(e_prev):
            shifts.append(abs(e_inf - e_prev))
        else:
            shifts.append(math.inf)
    sigma = max(shifts + [0.2 * abs(e_inf - e[-1])])
    note = "" if n.size > window else "no window shift possible (only one window)"
    return Extrapolation(float(e_inf), float(sigma), float(b), float(e[-1]),
                         [int(x) for x in n], [float(x) for x in e], note)
