"""Slow, obviously correct reference constructions (test oracles for the fast code).

Everything here evaluates wave functions at points and projects by least squares; nothing
uses HO brackets, 6j/9j recoupling or ladder-operator algebra. Coordinates are normalised
(oscillator length 1). Used only by the test suite and for debugging; cost grows quickly
with the number of quanta, keep E <= 4 or so.

Normalised Jacobi coordinates for three equal masses (Navratil, Kamuntavicius, Barrett,
Phys. Rev. C 61, 044001 (2000)):

    xi1 = (r1 - r2) / sqrt(2),   xi2 = sqrt(2/3) ((r1 + r2)/2 - r3).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import eval_genlaguerre, gammaln, sph_harm_y

from nnpot.nuclear.threebody.angmom import clebsch_gordan

__all__ = ["ho_radial", "ho_state", "coupled_pair", "jacobi_from_positions",
           "three_body_wavefunction", "permutation_matrix_by_projection"]


def ho_radial(n: int, l: int, r: np.ndarray) -> np.ndarray:
    """R_nl(r) = N r^l exp(-r^2/2) L_n^{l+1/2}(r^2), positive at the origin, b = 1."""
    lognorm = 0.5 * (math.log(2.0) + gammaln(n + 1) - gammaln(n + l + 1.5))
    return np.exp(lognorm) * r**l * np.exp(-0.5 * r**2) * eval_genlaguerre(n, l + 0.5, r**2)


def ho_state(n: int, l: int, m: int, x: np.ndarray) -> np.ndarray:
    """<x|n l m> for points x[..., 3] (complex, Condon-Shortley Y_lm)."""
    r = np.linalg.norm(x, axis=-1)
    theta = np.arccos(np.clip(x[..., 2] / np.where(r > 0, r, 1.0), -1.0, 1.0))
    phi = np.arctan2(x[..., 1], x[..., 0])
    return ho_radial(n, l, r) * sph_harm_y(l, m, theta, phi)


def coupled_pair(n1, l1, n2, l2, big_l, big_m, x1, x2) -> np.ndarray:
    """<x1 x2 | (n1 l1)(n2 l2) L M> at points x1[..., 3], x2[..., 3]."""
    out = np.zeros(x1.shape[:-1], dtype=complex)
    for m1 in range(-l1, l1 + 1):
        m2 = big_m - m1
        if abs(m2) > l2:
            continue
        c = clebsch_gordan(l1, m1, l2, m2, big_l, big_m)
        if c:
            out += c * ho_state(n1, l1, m1, x1) * ho_state(n2, l2, m2, x2)
    return out


def jacobi_from_positions(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Jacobi vectors (xi1, xi2) from positions r[..., 3 particles, 3]."""
    xi1 = (r[..., 0, :] - r[..., 1, :]) / math.sqrt(2.0)
    xi2 = math.sqrt(2.0 / 3.0) * (0.5 * (r[..., 0, :] + r[..., 1, :]) - r[..., 2, :])
    return xi1, xi2


def _spin_states(s12: float, s: float, ms: float) -> np.ndarray:
    """|((1/2 1/2) s12, 1/2) s ms> as a vector over the 8 product states (m1, m2, m3)."""
    vec = np.zeros(8)
    halves = (0.5, -0.5)
    for i1, m1 in enumerate(halves):
        for i2, m2 in enumerate(halves):
            for i3, m3 in enumerate(halves):
                c = (clebsch_gordan(0.5, m1, 0.5, m2, s12, m1 + m2)
                     * clebsch_gordan(s12, m1 + m2, 0.5, m3, s, ms))
                vec[4 * i1 + 2 * i2 + i3] = c
    return vec


def three_body_wavefunction(state, big_j: float, big_m: float, big_t: float, mt: float,
                            r: np.ndarray) -> np.ndarray:
    """Psi(r1, r2, r3) of a Jacobi state as an array [..., 8 spins, 8 isospins].

    ``state`` = (n, l, s, j, t, N, lam, j3): |[(n l, s) j, (N lam, 1/2) j3] J M> x
    |(t, 1/2) T MT>, with xi1 carrying (n l) and xi2 carrying (N lam).
    """
    n, l, s, j, t, nn, lam, j3 = state
    xi1, xi2 = jacobi_from_positions(r)
    spin_out = np.zeros(r.shape[:-2] + (8,), dtype=complex)
    for mj in np.arange(-j, j + 1):
        mj3 = big_m - mj
        if abs(mj3) > j3 + 1e-9:
            continue
        c1 = clebsch_gordan(j, mj, j3, mj3, big_j, big_m)
        if not c1:
            continue
        for ml in range(-l, l + 1):
            ms = mj - ml
            if abs(ms) > s + 1e-9:
                continue
            c2 = clebsch_gordan(l, ml, s, ms, j, mj)
            if not c2:
                continue
            for mlam in range(-lam, lam + 1):
                m3 = mj3 - mlam
                if abs(m3) > 0.5 + 1e-9:
                    continue
                c3 = clebsch_gordan(lam, mlam, 0.5, m3, j3, mj3)
                if not c3:
                    continue
                space = ho_state(n, l, ml, xi1) * ho_state(nn, lam, mlam, xi2)
                # spin: pair (s, ms) with particle 3 (m3): product vector
                vec = np.zeros(8)
                halves = (0.5, -0.5)
                for i1, m1 in enumerate(halves):
                    for i2, m2 in enumerate(halves):
                        if abs(m1 + m2 - ms) > 1e-9:
                            continue
                        i3 = 0 if m3 > 0 else 1
                        vec[4 * i1 + 2 * i2 + i3] = clebsch_gordan(0.5, m1, 0.5, m2, s, ms)
                spin_out += (c1 * c2 * c3) * space[..., None] * vec
    iso = _spin_states(t, big_t, mt)
    return spin_out[..., :, None] * iso


def _permute_spin_index(perm: tuple[int, int, int]) -> np.ndarray:
    """Index map of the 8 product states under relabelling of the particles."""
    idx = np.zeros(8, dtype=int)
    for k in range(8):
        bits = [(k >> 2) & 1, (k >> 1) & 1, k & 1]
        new = [bits[perm[0]], bits[perm[1]], bits[perm[2]]]
        idx[k] = 4 * new[0] + 2 * new[1] + new[2]
    return idx


def permutation_matrix_by_projection(states, big_j, big_t, perm=(0, 2, 1), npts=400,
                                     seed=0) -> np.ndarray:
    """<a| P |b> for a permutation of particles, by least squares over random points.

    (P Psi)(r1, r2, r3; s1 s2 s3) = Psi(r_perm; s_perm). ``states`` must span a space
    closed under P (all states of given total quanta, J, T). Returns (n_states, n_states).
    """
    rng = np.random.default_rng(seed)
    r = rng.normal(scale=0.9, size=(npts, 3, 3))
    rp = r[:, list(perm), :]
    idx = _permute_spin_index(perm)
    big_m, mt = big_j, big_t  # stretched projections
    basis = np.stack([three_body_wavefunction(s, big_j, big_m, big_t, mt, r).reshape(npts, -1)
                      for s in states], axis=-1)  # (npts, 64, n)
    moved = []
    for s in states:
        psi = three_body_wavefunction(s, big_j, big_m, big_t, mt, rp)  # (npts, 8, 8)
        moved.append(psi[:, idx][:, :, idx].reshape(npts, -1))
    moved = np.stack(moved, axis=-1)
    a = basis.reshape(-1, len(states))
    b = moved.reshape(-1, len(states))
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    resid = np.abs(a @ coef - b).max()
    if resid > 1e-8 * max(1.0, np.abs(b).max()):
        raise RuntimeError(f"states do not span a P-invariant space (residual {resid:.2e})")
    return coef.real


def count_intrinsic_states(emax: int) -> dict[tuple[int, float, float], int]:
    """Number of antisymmetric intrinsic 3-nucleon states per (e, J, T), by m-scheme counting.

    Independent of Jacobi coordinates: Slater determinants of three nucleons in the
    single-particle HO basis |n l j m, m_t> are counted by total quanta Q, M_J and M_T;
    J/T multiplicities follow from differences of M counts; the centre-of-mass excitations
    (k quanta, l_cm = k, k-2, ...) are peeled off recursively in Q.
    """
    sp = []
    for e in range(emax + 1):
        for l in range(e % 2, e + 1, 2):
            for two_j in (2 * l - 1, 2 * l + 1):
                if two_j < 0:
                    continue
                for two_m in range(-two_j, two_j + 1, 2):
                    for two_mt in (-1, 1):
                        sp.append((e, two_m, two_mt))
    # DP over single-particle states: (k particles, Q, 2M, 2MT) -> count
    dp: dict[tuple[int, int, int, int], int] = {(0, 0, 0, 0): 1}
    for e, two_m, two_mt in sp:
        new = dict(dp)
        for (k, q, m, mt), c in dp.items():
            if k < 3 and q + e <= emax:
                key = (k + 1, q + e, m + two_m, mt + two_mt)
                new[key] = new.get(key, 0) + c
        dp = new

    def n_m(q: int, two_m: int, two_mt: int) -> int:
        return dp.get((3, q, two_m, two_mt), 0)

    lab: dict[tuple[int, int, int], int] = {}
    for q in range(emax + 1):
        for two_j in range(1, 2 * (3 * emax + 3) + 2, 2):
            for two_t in (1, 3):
                val = (n_m(q, two_j, two_t) - n_m(q, two_j + 2, two_t)
                       - n_m(q, two_j, two_t + 2) + n_m(q, two_j + 2, two_t + 2))
                if val:
                    lab[(q, two_j, two_t)] = val
    intr: dict[tuple[int, int, int], int] = {}
    for q in range(emax + 1):
        for (qq, two_j, two_t), val in lab.items():
            if qq != q:
                continue
            rest = val
            for k in range(1, q + 1):
                for l_cm in range(k % 2, k + 1, 2):
                    for (q2, two_j2, two_t2), c in intr.items():
                        if q2 == q - k and two_t2 == two_t and \
                                abs(2 * l_cm - two_j2) <= two_j <= 2 * l_cm + two_j2:
                            rest -= c
            if rest:
                intr[(q, two_j, two_t)] = rest
    return {(q, tj / 2, tt / 2): c for (q, tj, tt), c in intr.items()}
