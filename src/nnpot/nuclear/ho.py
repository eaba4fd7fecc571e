"""Harmonic-oscillator (HO) radial functions and HO-basis matrix elements of NN potentials.

Conventions (shared with :mod:`nnpot.nuclear.constants`): partial-wave momentum states
|p l> with <p|p'> = delta(p - p')/p^2 and *no* i^l phase (Erkelenz-Alzetta-Holinde, as in
:mod:`nnpot.nuclear.channels`), potentials V_{l'l}(p', p) in MeV fm^3; momenta in fm^-1,
lengths in fm, energies in MeV.

Oscillator length of the relative motion of two nucleons of reduced mass mu [MeV]:

    b = hbar c / sqrt(mu c^2 hbar omega)   [fm]     (mu = m/2 for the NN pair).

Radial functions, normalised as int_0^inf dr r^2 R_nl(r)^2 = 1 and positive at r -> 0:

    R_nl(r)  = N_nl b^(-3/2) x^l exp(-x^2/2) L_n^{l+1/2}(x^2),  x = r/b,
    N_nl^2   = 2 n! / Gamma(n + l + 3/2).

Their momentum-space partners in the no-i^l convention, <p l|n l> = sqrt(2/pi) int dr r^2
j_l(p r) R_nl(r), are (the Hankel transform of an HO function is (-1)^n times itself):

    phi_nl(p) = (-1)^n N_nl b^(3/2) y^l exp(-y^2/2) L_n^{l+1/2}(y^2),  y = p b.

Matrix elements in the basis |n l>, n = 0 .. (nmax - l)//2 (all states with 2n + l <= nmax):

    <n' l'|V|n l> = int dp' p'^2 int dp p^2 phi_n'l'(p') V_{l'l}(p', p) phi_nl(p)   [MeV]
                  = int dr r^2 R_n'l'(r) V(r) R_nl(r)                  (local V, l' = l).

Relative kinetic energy T = (hbar c)^2 p^2/(2 mu) in this basis (hbar omega units):

    <n l|T|n l> = hw/2 (2n + l + 3/2),  <n+1 l|T|n l> = hw/2 sqrt((n+1)(n + l + 3/2)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from scipy.special import gammaln, roots_legendre

from nnpot.errors import InputError

__all__ = ["oscillator_length", "ho_radial_r", "ho_radial_p", "n_states", "ho_mesh",
           "ho_matrix_momentum", "ho_matrix_local", "ho_matrix_local_block", "ho_kinetic",
           "ho_channel_hamiltonian", "HBARC"]

HBARC = 197.3269804  #: MeV fm (CODATA 2018; same value as nnpot.nuclear.constants)


@lru_cache(maxsize=32)
def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (scipy's O(n) algorithm, cached)."""
    x, w = roots_legendre(int(n))
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive finite number, got {value}")
    return value


def oscillator_length(hw: float, mass: float) -> float:
    """b = hbar c / sqrt(mass * hbar omega) [fm] for ``hw`` [MeV] and ``mass`` [MeV]."""
    return HBARC / math.sqrt(_check_positive("mass", mass) * _check_positive("hbar omega", hw))


def _norm(n: int, l: int) -> float:
    return math.exp(0.5 * (math.log(2.0) + gammaln(n + 1) - gammaln(n + l + 1.5)))


def ho_table(l: int, nmax_n: int, x: np.ndarray) -> np.ndarray:
    """psi_n(x) = N_nl x^l exp(-x^2/2) L_n^{l+1/2}(x^2) for n = 0..nmax_n (length-1 units).

    Shape (nmax_n + 1, len(x)). Stable for n in the hundreds: the normalised three-term
    recurrence (from n L_n = (2n - 1 + a - y) L_{n-1} - (n - 1 + a) L_{n-2}, a = l + 1/2)

        psi_n = (2n - 1 + a - y)/sqrt(n (n + a)) psi_{n-1}
                - sqrt((n - 1)(n - 1 + a)/(n (n + a))) psi_{n-2}

    is run with a per-point logarithmic scale, so nothing overflows or underflows early.
    """
    x = np.asarray(x, dtype=float)
    y = x * x
    a = l + 0.5
    with np.errstate(divide="ignore"):
        logx = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), -np.inf)
    log0 = 0.5 * (math.log(2.0) - gammaln(a + 1.0)) - 0.5 * y
    log0 = log0 + (l * logx if l > 0 else 0.0)
    out = np.empty((nmax_n + 1, x.size))
    scale = log0.copy()
    prev = np.zeros_like(y)
    cur = np.ones_like(y)
    out[0] = 1.0
    logs = np.empty((nmax_n + 1, x.size))
    logs[0] = scale
    for n in range(1, nmax_n + 1):
        nxt = ((2 * n - 1 + a - y) * cur / math.sqrt(n * (n + a))
               - math.sqrt((n - 1) * (n - 1 + a) / (n * (n + a))) * prev)
        prev, cur = cur, nxt
        big = np.abs(cur) > 1e150
        if big.any():
            cur = np.where(big, cur * 1e-150, cur)
            prev = np.where(big, prev * 1e-150, prev)
            scale = scale + np.where(big, 150.0 * math.log(10.0), 0.0)
        out[n] = cur
        logs[n] = scale
    with np.errstate(under="ignore", over="ignore"):
        res = out * np.exp(np.minimum(logs, 700.0))
    res[~np.isfinite(logs)] = 0.0
    if l == 0:
        pass
    elif (x == 0).any():
        res[:, x == 0] = 0.0
    return res


def ho_radial_r(n: int, l: int, r: np.ndarray, b: float) -> np.ndarray:
    """R_nl(r) [fm^-3/2] at r [fm] for oscillator length b [fm]."""
    return b**-1.5 * ho_table(l, n, np.asarray(r, dtype=float) / b)[n]


def ho_radial_p(n: int, l: int, p: np.ndarray, b: float) -> np.ndarray:
    """phi_nl(p) = <p l|n l> [fm^3/2] at p [fm^-1] (no i^l; sign (-1)^n), length b [fm]."""
    return (-1) ** n * b**1.5 * ho_table(l, n, np.asarray(p, dtype=float) * b)[n]


def n_states(l: int, nmax: int) -> int:
    """Number of radial states n = 0.. with 2n + l <= nmax."""
    return max(0, (nmax - l) // 2 + 1)


def ho_mesh(nmax: int, b: float, npoints: int = 160,
            pmax: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre mesh on [0, pmax] [fm^-1] that resolves HO functions up to nmax quanta.

    Default pmax = (sqrt(2 nmax + 3) + 7)/b: the largest classical turning point plus
    a margin where exp(-y^2/2) is below 1e-11.
    """
    if pmax is None:
        pmax = (math.sqrt(2.0 * nmax + 3.0) + 7.0) / b
    x, w = gauss_legendre(int(npoints))
    return 0.5 * pmax * (x + 1.0), 0.5 * pmax * w


def _phi_table(l: int, nmax: int, p: np.ndarray, b: float) -> np.ndarray:
    """phi_nl(p) for n = 0..(nmax - l)//2, shape (n, len(p))."""
    nn = n_states(l, nmax)
    sign = (-1.0) ** np.arange(nn)
    return sign[:, None] * b**1.5 * ho_table(l, nn - 1, np.asarray(p, dtype=float) * b)


def ho_matrix_momentum(k: np.ndarray, w: np.ndarray, v: np.ndarray, l_out: int, l_in: int,
                       nmax: int, b: float) -> np.ndarray:
    """<n' l_out|V|n l_in> [MeV] from V(k_i, k_j) [MeV fm^3] on a mesh (k [fm^-1], w).

    Rows n' = 0..(nmax - l_out)//2, columns n = 0..(nmax - l_in)//2. The mesh must resolve
    both the potential and the HO functions (see :func:`ho_mesh`).
    """
    k = np.asarray(k, dtype=float)
    w = np.asarray(w, dtype=float)
    v = np.asarray(v, dtype=float)
    if v.shape != (k.size, k.size):
        raise InputError(f"potential matrix has shape {v.shape}, expected ({k.size}, {k.size})")
    if not np.isfinite(v).all():
        raise InputError("potential matrix contains NaN or infinite values")
    fo = _phi_table(l_out, nmax, k, b) * (w * k * k)
    fi = _phi_table(l_in, nmax, k, b) * (w * k * k)
    return fo @ v @ fi.T


def ho_matrix_local(vr: Callable[[np.ndarray], np.ndarray], l: int, nmax: int, b: float,
                    npoints: int | None = None) -> np.ndarray:
    """<n' l|V|n l> [MeV] of a local central potential V(r) [MeV] (r in fm).

    Gauss-Legendre on [0, r_max] with r_max = b (sqrt(2 nmax + 3) + 7); V(r) may be
    Yukawa-singular (1/r) at the origin: the r^2 measure makes the integrand finite.
    """
    return ho_matrix_local_block(vr, l, l, nmax, b, npoints)


def ho_matrix_local_block(vr: Callable[[np.ndarray], np.ndarray], l_out: int, l_in: int,
                          nmax: int, b: float, npoints: int | None = None) -> np.ndarray:
    """<n' l_out|V|n l_in> [MeV] of a local radial function V(r) [MeV] coupling l_in to l_out.

    = int dr r^2 R_n'l_out(r) V(r) R_n l_in(r), the real coordinate-space convention of this
    module (for a tensor force V(r) = V_T(r) <l_out|S12|l_in>). Same quadrature as
    :func:`ho_matrix_local`; rows n' = 0..(nmax - l_out)//2, columns n = 0..(nmax - l_in)//2.
    """
    rmax = b * (math.sqrt(2.0 * nmax + 3.0) + 7.0)
    npoints = max(400, 8 * nmax) if npoints is None else int(npoints)
    x, wq = gauss_legendre(npoints)
    r = 0.5 * rmax * (x + 1.0)
    wr = 0.5 * rmax * wq * r * r
    fo = b**-1.5 * ho_table(l_out, n_states(l_out, nmax) - 1, r / b)
    fi = b**-1.5 * ho_table(l_in, n_states(l_in, nmax) - 1, r / b)
    return (fo * (wr * vr(r))) @ fi.T


def ho_kinetic(l: int, nmax: int, hw: float) -> np.ndarray:
    """<n' l|T|n l> [MeV] of the kinetic energy of an oscillator coordinate (tridiagonal)."""
    nn = n_states(l, nmax)
    n = np.arange(nn)
    t = np.diag(0.5 * hw * (2 * n + l + 1.5))
    off = 0.5 * hw * np.sqrt((n[:-1] + 1) * (n[:-1] + l + 1.5))
    return t + np.diag(off, 1) + np.diag(off, -1)


def ho_channel_hamiltonian(blocks: dict[tuple[int, int], np.ndarray], ls: Sequence[int],
                           nmax: int, hw: float) -> np.ndarray:
    """T + V for one (coupled) channel in the HO basis [MeV].

    ``blocks[(l', l)]`` = <n' l'|V|n l>; ``ls`` the orbital momenta (one, or J-1, J+1).
    Rows/columns ordered by l block then n.
    """
    sizes = [n_states(l, nmax) for l in ls]
    off = np.concatenate([[0], np.cumsum(sizes)])
    h = np.zeros((off[-1], off[-1]))
    for a, la in enumerate(ls):
        h[off[a]:off[a + 1], off[a]:off[a + 1]] += ho_kinetic(la, nmax, hw)
        for c, lc in enumerate(ls):
            h[off[a]:off[a + 1], off[c]:off[c + 1]] += blocks[(la, lc)]
    return h
