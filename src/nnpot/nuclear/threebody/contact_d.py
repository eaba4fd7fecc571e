"""One-pion-exchange--contact three-nucleon force (c_D term) in the A = 3 Jacobi HO basis.

The N2LO chiral 3NF (Epelbaum, Nogga, Gloeckle, Kamada, Meissner, Witala, Phys. Rev. C 66,
064001 (2002); the same expression is written out in the public notes
github.com/hhurongzhe/Three-Body-Jacobi, docs/Theory.md) has, next to the c_E contact of
:mod:`contact`, the term

    V_D = -(g_A/(8 F_pi^2)) (c_D/(F_pi^2 Lambda_chi))
          x sum_{i != j != k} (sigma_j . q_j)(sigma_i . q_j)/(q_j^2 + m_pi^2) tau_i . tau_j,

a sum over the 6 orderings (i, j, k) of (1, 2, 3): the pion couples to nucleon j and to
the NN contact vertex of nucleons i and k; q_j = k_j' - k_j is the momentum transferred to
nucleon j (k_j initial, k_j' final). Plane waves are normalised to delta functions and,
exactly as for c_E, <k'|V|k> = (2 pi)^-6 delta(P' - P) V (hbar c)^6 in MeV when V is in
MeV^-5 (so (hbar c)^6/(F_pi^4 Lambda_chi) is the MeV fm^6 unit of :func:`contact.contact_
strength`). It is regulated as V_E is, with the nonlocal regulator of Epelbaum et al. (2002),

    f(p, q) = exp(-[(p^2 + 3 q^2/4)/Lambda^2]^n),   <p q|V_D|p' q'> -> f(p, q) V_D f(p', q'),

in the Jacobi momenta p = (k1 - k2)/2, q = (2/3)(k3 - (k1 + k2)/2) (conjugate to r = r1 - r2
and rho = r3 - (r1 + r2)/2). Constants: F_pi = 92.4 MeV, Lambda_chi = 700 MeV (as for
c_E), g_A = 1.29 and m_pi = (2 m_pi+ + m_pi0)/3 from :mod:`nnpot.nuclear.constants`;
defaults Lambda = 500 MeV, n = 2. (Navratil, Few-Body Syst. 41, 117 (2007) evaluates the
same N2LO 3NF in the Jacobi HO basis, but with a *local* regulator in the momentum
transfers; this module keeps the nonlocal regulator of :mod:`contact` so that c_D and c_E
share one regulator.)

Conventions, step by step:

* Which momentum is the pion's. For j = 3 in the CM frame, k3 = q, so q_3 = q' - q: the
  terms with the pion on nucleon 3 depend on q, q' only (besides the regulator), and the
  NN contact of (1, 2) is local, so in the pair coordinate only l = l' = 0 survives.
* Factor 3. V_D is symmetric under permutations, and in an antisymmetric state each
  choice of j gives the same expectation, so on the physical space V_D = 3 W_3 with
  W_3 = (j = 3 terms) = S_D sum_{i=1,2} (sigma_3.Q)(sigma_i.Q)/(Q^2 + m^2) tau_i.tau_3,
  Q = q' - q, S_D = -g_A c_D (hbar c)^6/(8 F_pi^4 Lambda_chi) [MeV fm^6].
* Factor 2. W_3 is symmetric under 1 <-> 2, and the basis states are odd under P12, so
  <a'|i = 1 term|a> = <a'|i = 2 term|a>: the operator built here is 6 x (i = 2, j = 3).
* Recoupling. With l = 0 a basis state is |[s12, (lam, s3) J3] J> |(t12, 1/2) T>; the
  (i = 2, j = 3) term acts on nucleons 2, 3 only, so the state is recoupled (explicit
  Clebsch-Gordan sums, M = J) to |[s1, (lam, (s2 s3) S) Jx] J> and |[t1, (t2 t3) t23] T>.
  There tau_2.tau_3 = 2 t23 (t23 + 1) - 3, and (sigma_2.Q)(sigma_3.Q)/(Q^2 + m^2) acts on
  |(lam S) Jx> like one-pion exchange on an NN partial wave (Jx = J -+ 1/2, so only
  lam <= J + 3/2 enters: lam <= 2 for the triton's J = 1/2).
* Partial waves. K^{S Jx}_{lam' lam}(q, q') = i^(lam' - lam) int dq^ dq'^ [Y_lam'(q^) chi_S]
  ^dagger_Jx O(q - q') [Y_lam(q'^) chi_S]_Jx, the factor i^(lam' - lam) from the Fourier
  transform <q|N lam mu> = (-i)^lam phi_N lam(q) Y_lam mu(q^) of the coordinate-space HO
  functions of :mod:`jacobi` (phi as in :mod:`nnpot.nuclear.ho`, which omits the i^l). By
  rotational invariance q'^ = z is fixed and the phi integral is exact; the polar integral
  is Gauss-Legendre. (xi2 = -sqrt(2/3) rho only gives (-1)^(lam + lam') = 1.)
* Radial part. u_n(q) = int dp p^2 phi_n0(p; b_r) f(p, q) (b_r = sqrt(2) b, the p-integral
  with the l = 0 harmonic gives sqrt(4 pi) per side), b_rho = sqrt(3/2) b, and

  <a'|V_D|a> = 6 S_D (4 pi/(2 pi)^6) <t'|tau_2.tau_3|t> sum_{S Jx} R' R
               int dq q^2 dq' q'^2 phi_N'lam'(q) u_n'(q) K^{S Jx}_{lam' lam}(q, q')
               phi_N lam(q') u_n(q')        [MeV].
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import scipy.sparse as sp
from scipy.special import sph_harm_y

from nnpot.nuclear.constants import G_A, M_PI
from nnpot.nuclear.ho import HBARC, _phi_table, gauss_legendre
from nnpot.nuclear.threebody.angmom import clebsch_gordan
from nnpot.nuclear.threebody.contact import F_PI, LAMBDA_CHI
from nnpot.nuclear.threebody.hamiltonian import TritonBasis

__all__ = ["cd_strength", "cd_operator", "regulated_p_overlaps", "pion_partial_wave",
           "spin_recoupling", "isospin_tau23", "G_A", "M_PI"]

HALF = 0.5


def cd_strength(c_d: float) -> float:
    """S_D = -g_A c_D (hbar c)^6/(8 F_pi^4 Lambda_chi) [MeV fm^6]."""
    return -G_A * c_d * HBARC**6 / (8.0 * F_PI**4 * LAMBDA_CHI)


def _kmax(lam: float, n_reg: int) -> float:
    """Momentum [fm^-1] beyond which f < e^-37 along one axis (as in :mod:`contact`)."""
    return lam * 37.0 ** (0.5 / n_reg)


def regulated_p_overlaps(nmax: int, b: float, q: np.ndarray, lam_mev: float = 500.0,
                         n_reg: int = 2, npoints: int = 160) -> np.ndarray:
    """u_n(q) = int dp p^2 phi_n0(p; sqrt(2) b) f(p, q) [fm^-3/2], shape (nmax//2 + 1, len q)."""
    lam = lam_mev / HBARC
    x, wq = gauss_legendre(npoints)
    kmax = _kmax(lam, n_reg)
    p = 0.5 * kmax * (x + 1.0)
    wp = 0.5 * kmax * wq
    f = np.exp(-(((p[:, None] ** 2 + 0.75 * np.asarray(q)[None, :] ** 2) / lam**2) ** n_reg))
    phi = _phi_table(0, nmax, p, math.sqrt(2.0) * b) * (wp * p * p)
    return phi @ f


@cache
def _spin_pair_matrices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sigma_2x sigma_3x, sigma_2z sigma_3z, sigma_2x sigma_3z + sigma_2z sigma_3x in |S mS>.

    Rows/columns ordered (S, mS) = (0, 0), (1, -1), (1, 0), (1, 1).
    """
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    sz = np.array([[1.0, 0.0], [0.0, -1.0]])
    ms = (HALF, -HALF)  # index 0 = up
    labels = [(0, 0), (1, -1), (1, 0), (1, 1)]
    u = np.zeros((4, 4))  # u[(m2, m3) product index, coupled index]
    for c, (big_s, m) in enumerate(labels):
        for i2, m2 in enumerate(ms):
            for i3, m3 in enumerate(ms):
                u[2 * i2 + i3, c] = clebsch_gordan(HALF, m2, HALF, m3, big_s, m)
    mats = (np.kron(sx, sx), np.kron(sz, sz), np.kron(sx, sz) + np.kron(sz, sx))
    return tuple(u.T @ m @ u for m in mats)


def _spin_index(big_s: int, m: int) -> int:
    return 0 if big_s == 0 else 2 + m


def pion_partial_wave(q: np.ndarray, qp: np.ndarray, big_s: int, jx: int, lam_out: int,
                      lam_in: int, m_pi_fm: float, nx: int = 128) -> np.ndarray:
    """K^{S Jx}_{lam_out lam_in}(q, q') of (sigma_2.Q)(sigma_3.Q)/(Q^2 + m^2), Q = q - q'.

    [dimensionless]; includes the Fourier phase i^(lam_out - lam_in) (see module docstring);
    shape (len q, len qp). Exact for the azimuth; ``nx`` Gauss-Legendre points in cos theta.
    """
    q = np.asarray(q, dtype=float)
    qp = np.asarray(qp, dtype=float)
    x, wx = gauss_legendre(nx)
    theta = np.arccos(x)
    sin = np.sqrt(1.0 - x * x)
    qx = q[:, None, None] * sin[None, None, :]
    qz = q[:, None, None] * x[None, None, :] - qp[None, :, None]
    den = qx * qx + qz * qz + m_pi_fm**2
    structures = (qx * qx / den, qz * qz / den, qx * qz / den)
    mats = _spin_pair_matrices()
    out = np.zeros((q.size, qp.size))
    ms_list = [0] if big_s == 0 else [-1, 0, 1]
    for k, t in enumerate(structures):
        c = np.zeros(nx)
        for m_in in ms_list:
            cg_in = clebsch_gordan(lam_in, 0, big_s, m_in, jx, m_in)
            if cg_in == 0.0:
                continue
            for m_out in ms_list:
                mu = m_in - m_out
                if abs(mu) > lam_out:
                    continue
                cg_out = clebsch_gordan(lam_out, mu, big_s, m_out, jx, m_in)
                o = mats[k][_spin_index(big_s, m_out), _spin_index(big_s, m_in)]
                if cg_out == 0.0 or o == 0.0:
                    continue
                y = sph_harm_y(lam_out, mu, theta, 0.0).real
                c += cg_in * cg_out * o * y
        if np.any(c):
            out += (t * wx[None, None, :]) @ c
    phase = (1j) ** (lam_out - lam_in)
    if abs(phase.imag) > 1e-12:
        raise ValueError("lam_out - lam_in must be even (parity)")
    pref = phase.real * 4.0 * math.pi / (2 * jx + 1) * 2.0 * math.pi * math.sqrt(
        (2 * lam_in + 1) / (4.0 * math.pi))
    return pref * out


@cache
def spin_recoupling(lam: int, s: int, j3: float, big_s: int, jx: int,
                    big_j: float = HALF) -> float:
    """<[s1, (lam, (s2 s3) S) Jx] J | [(s1 s2) s, (lam s3) J3] J> (explicit CG sums, M = J)."""
    halves = (HALF, -HALF)
    total = 0.0
    for m1 in halves:
        for m2 in halves:
            for m3 in halves:
                for ml in range(-lam, lam + 1):
                    a = (clebsch_gordan(HALF, m1, HALF, m2, s, m1 + m2)
                         * clebsch_gordan(lam, ml, HALF, m3, j3, ml + m3)
                         * clebsch_gordan(s, m1 + m2, j3, ml + m3, big_j, big_j))
                    if a == 0.0:
                        continue
                    total += a * (clebsch_gordan(HALF, m2, HALF, m3, big_s, m2 + m3)
                                  * clebsch_gordan(lam, ml, big_s, m2 + m3, jx, ml + m2 + m3)
                                  * clebsch_gordan(HALF, m1, jx, ml + m2 + m3, big_j, big_j))
    return total


@cache
def isospin_tau23(t_out: int, t_in: int, big_t: float = HALF) -> float:
    """<(t1 t2) t', t3; T| tau_2 . tau_3 |(t1 t2) t, t3; T> (recoupled by explicit CG sums)."""
    halves = (HALF, -HALF)

    def coeff(t12: int, t23: int) -> float:
        total = 0.0
        for m1 in halves:
            for m2 in halves:
                m3 = big_t - m1 - m2
                if abs(m3) != HALF:
                    continue
                total += (clebsch_gordan(HALF, m1, HALF, m2, t12, m1 + m2)
                          * clebsch_gordan(t12, m1 + m2, HALF, m3, big_t, big_t)
                          * clebsch_gordan(HALF, m2, HALF, m3, t23, m2 + m3)
                          * clebsch_gordan(HALF, m1, t23, m2 + m3, big_t, big_t))
        return total

    return sum(coeff(t_out, t23) * coeff(t_in, t23) * (2.0 * t23 * (t23 + 1) - 3.0)
               for t23 in (0, 1))


def cd_operator(basis: TritonBasis, b: float, c_d: float = 1.0, lam_mev: float = 500.0,
                n_reg: int = 2, nq: int = 96, nx: int = 128) -> sp.csr_matrix:
    """V_D = 3 W_3 on the (1,2)-antisymmetric Jacobi basis [MeV] (linear in c_D).

    ``b`` is the Jacobi oscillator length [fm] (b = hbar c/sqrt(m hbar omega)); ``nq`` and
    ``nx`` are the Gauss-Legendre points in |q| (on [0, q_max], q_max where the regulator is
    < e^-37) and in cos(q^, q'^). Add it to the Hamiltonian with ``assemble(..., extra=)``.
    """
    lam = lam_mev / HBARC
    m_pi = M_PI / HBARC
    qmax = _kmax(lam, n_reg) * 2.0 / math.sqrt(3.0)
    xq, wq = gauss_legendre(nq)
    q = 0.5 * qmax * (xq + 1.0)
    w = 0.5 * qmax * wq * q * q
    u = regulated_p_overlaps(basis.nmax, b, q, lam_mev, n_reg)
    b_rho = math.sqrt(1.5) * b
    # (lam, S) Jx with Jx = J -+ 1/2 (coupled with s1 = 1/2 to J), so lam <= J + 3/2
    jxs = [round(basis.big_j - HALF), round(basis.big_j + HALF)]
    lam_max = min(jxs[-1] + 1, basis.nmax)
    phi = {lm: _phi_table(lm, basis.nmax, q, b_rho) for lm in range(lam_max + 1)}
    members = [(i, st) for i, st in enumerate(basis.states) if st.l == 0 and st.lam <= lam_max]
    if not members:
        return sp.csr_matrix((basis.dim, basis.dim))
    idx = np.array([i for i, _ in members])
    # radial vectors g_i(q) = w q^2 phi_N lam(q) u_n(q)
    g = np.array([w * phi[st.lam][st.N] * u[st.n] for _, st in members])
    lams = np.array([st.lam for _, st in members])
    pref = 6.0 * cd_strength(c_d) * 4.0 * math.pi / (2.0 * math.pi) ** 6
    block = np.zeros((len(members), len(members)))
    for jx in jxs:
        for big_s in (0, 1):
            ls = [lm for lm in range(abs(jx - big_s), jx + big_s + 1) if lm <= lam_max]
            for lo in ls:
                for li in ls:
                    if (lo - li) % 2:
                        continue
                    ro = np.array([spin_recoupling(st.lam, st.s, st.j3, big_s, jx, basis.big_j)
                                   if st.lam == lo else 0.0 for _, st in members])
                    ri = np.array([spin_recoupling(st.lam, st.s, st.j3, big_s, jx, basis.big_j)
                                   if st.lam == li else 0.0 for _, st in members])
                    if not (ro.any() and ri.any()):
                        continue
                    kern = pion_partial_wave(q, q, big_s, jx, lo, li, m_pi, nx)
                    so, si = lams == lo, lams == li
                    sub = (g[so] @ kern @ g[si].T) * np.outer(ro[so], ri[si])
                    block[np.ix_(so, si)] += sub
    iso = np.array([[isospin_tau23(a.t, c.t, basis.big_t) for _, c in members]
                    for _, a in members])
    block *= pref * iso
    rows = np.repeat(idx, len(idx))
    cols = np.tile(idx, len(idx))
    keep = block.ravel() != 0.0
    return sp.coo_matrix((block.ravel()[keep], (rows[keep], cols[keep])),
                         shape=(basis.dim, basis.dim)).tocsr()
