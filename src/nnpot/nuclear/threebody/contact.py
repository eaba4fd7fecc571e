"""Regulated three-nucleon contact force (c_E type) in the A = 3 Jacobi HO basis.

The N2LO contact term of chiral EFT (Epelbaum et al., Phys. Rev. C 66, 064001 (2002); van
Kolck, PRC 49, 2932 (1994)), here with a nonlocal regulator in the Jacobi momenta
p = (k1 - k2)/2, q = (2/3)(k3 - (k1 + k2)/2):

    <p q| V_E |p' q'> = (2 pi)^-6 (c_E/(F_pi^4 Lambda_chi)) (hbar c)^6 f(p, q) f(p', q')
                         x sum_{j<k} tau_j . tau_k,
    f(p, q) = exp(-[(p^2 + 3 q^2/4)/Lambda^2]^n),

for plane waves normalised to delta functions; without the regulator this is the local
c_E/(F_pi^4 Lambda_chi) (hbar c)^6 sum_{j<k} tau_j.tau_k delta(r_ij) delta(r_ik). p^2 + 3q^2/4 is
symmetric under all permutations, so V_E is. F_pi = 92.4 MeV, Lambda_chi = 700 MeV,
Lambda = 500 MeV, n = 2 by default (as in Navratil, Few-Body Syst. 41, 117 (2007)).

In antisymmetric states <V_E> = 3 <tau_1.tau_2 F>, and F = |g><g| is rank one in space with
only l = lam = 0 components: with r = r1 - r2 (conjugate p, HO length b_r = sqrt(2) b) and
rho = r3 - (r1 + r2)/2 (conjugate q, length b_rho = sqrt(3/2) b),

    <n 0, N 0|g> = 4 pi/(2 pi)^3 int dp p^2 int dq q^2 phi_n0(p; b_r) phi_N0(q; b_rho) f(p, q)

[fm^-3], with phi the momentum-space HO functions of :mod:`nnpot.nuclear.ho`; tau_1.tau_2 =
2 t(t + 1) - 3 (+1 for t = 1, -3 for t = 0). The operator is spin-independent, so it is
diagonal in the pair spin s (= j for l = 0).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from nnpot.nuclear.ho import HBARC, _phi_table, gauss_legendre
from nnpot.nuclear.threebody.hamiltonian import TritonBasis

__all__ = ["contact_overlaps", "contact_operator", "contact_strength", "F_PI", "LAMBDA_CHI"]

F_PI = 92.4  #: MeV
LAMBDA_CHI = 700.0  #: MeV


def contact_strength(c_e: float) -> float:
    """C = c_E (hbar c)^6/(F_pi^4 Lambda_chi) [MeV fm^6]."""
    return c_e * HBARC**6 / (F_PI**4 * LAMBDA_CHI)


def contact_overlaps(nmax: int, b: float, lam_mev: float = 500.0, n_reg: int = 2,
                     npoints: int = 160) -> np.ndarray:
    """<n 0, N 0|g> [fm^-3] for 2n + 2N <= nmax; shape (nmax//2 + 1, nmax//2 + 1).

    ``b`` is the Jacobi oscillator length [fm] (b = hbar c/sqrt(m hbar omega)).
    """
    lam = lam_mev / HBARC
    b_r, b_rho = math.sqrt(2.0) * b, math.sqrt(1.5) * b
    # regulator is < 1e-16 beyond (p^2 + 3 q^2/4) = Lambda^2 * 37^(1/n)
    kmax = lam * 37.0 ** (0.5 / n_reg)
    x, wq = gauss_legendre(npoints)
    p = 0.5 * kmax * (x + 1.0)
    wp = 0.5 * kmax * wq
    q = 0.5 * kmax * (2.0 / math.sqrt(3.0)) * (x + 1.0)
    wqq = 0.5 * kmax * (2.0 / math.sqrt(3.0)) * wq
    f = np.exp(-(((p[:, None] ** 2 + 0.75 * q[None, :] ** 2) / lam**2) ** n_reg))
    phi_p = _phi_table(0, nmax, p, b_r) * (wp * p * p)
    phi_q = _phi_table(0, nmax, q, b_rho) * (wqq * q * q)
    g = phi_p @ f @ phi_q.T
    return 4.0 * math.pi / (2.0 * math.pi) ** 3 * g


def contact_operator(basis: TritonBasis, b: float, c_e: float = 1.0, lam_mev: float = 500.0,
                     n_reg: int = 2) -> sp.csr_matrix:
    """3 W_3 = 3 C tau_1.tau_2 |g><g| on the (1,2)-antisymmetric Jacobi basis [MeV].

    Add it to the NN Hamiltonian (``assemble(..., extra=...)``); it is linear in c_E.
    """
    g = contact_overlaps(basis.nmax, b, lam_mev, n_reg)
    strength = 3.0 * contact_strength(c_e)
    rows, cols, vals = [], [], []
    groups: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for i, st in enumerate(basis.states):
        if st.l == 0 and st.lam == 0:
            groups.setdefault((st.s, st.t), []).append((i, g[st.n, st.N]))
    for (_, t), members in groups.items():
        tau = 2.0 * t * (t + 1) - 3.0
        for i, gi in members:
            for k, gk in members:
                rows.append(i)
                cols.append(k)
                vals.append(strength * tau * gi * gk)
    return sp.coo_matrix((vals, (rows, cols)), shape=(basis.dim, basis.dim)).tocsr()
