"""Partial-wave projection of spin-operator potentials and one-pion exchange (OPE).

Plane-wave potentials of the form (q = p' - p, q in MeV, V-tilde in MeV^-2)

    V(q) = V_C(q) + V_S(q) sigma1.sigma2 + V_T(q) sigma1.q sigma2.q

(isospin factors already applied for the channel's T) are projected onto |p (L S) J>
states by the one-dimensional formula that follows from rotational invariance
(Golak et al., EPJA 43, 241 (2010)): with p-hat = z and p'-hat = (sin t, 0, cos t),

    V^{JS}_{L'L}(p', p) = 8 pi^2/(2J+1) (2 pi)^-3 (hbar c)^3 int_{-1}^{1} dz
        sum_{M, ms'} C(L' M-ms', S ms' | J M) Y*_{L' M-ms'}(t, 0) C(L 0, S M | J M)
        sqrt((2L+1)/(4 pi)) <S ms'| V(p', p, z) |S M>         [MeV fm^3]

(p, p' in fm^-1). The factor (2 pi)^-3 is the plane-wave normalisation
<p'|V|p> = (2 pi)^-3 V-tilde(q); (hbar c)^3 converts MeV^-2 to MeV fm^3. States carry no
i^L factors. The z integral uses Gauss-Legendre points.

OPE for np with charge-dependent pion masses (Machleidt, PRC 63, 024001 (2001)):
V_np = -V_pi(m_pi0) + (-1)^(T+1) 2 V_pi(m_pi+-), V_pi(m) = -(g_A^2 / (4 f_pi^2))
sigma1.q sigma2.q / (q^2 + m^2), so that tau1.tau2 -> 1 (T = 1) or -3 (T = 0) for equal
masses. g_A = 1.29, f_pi = 92.4 MeV (see :mod:`nnpot.nuclear.constants`).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
from scipy.special import sph_harm_y

from nnpot.nuclear.channels import Channel, clebsch_gordan
from nnpot.nuclear.constants import F_PI, G_A, HBARC, M_PI0, M_PIC
from nnpot.nuclear.mesh import gauss_legendre

NORM = HBARC**3 / (2.0 * math.pi) ** 3  # (2 pi)^-3 (hbar c)^3 [MeV^3 fm^3]


@cache
def spin_matrices() -> dict[str, np.ndarray]:
    """Spin operators in the coupled basis |S ms> = (|0 0>, |1 1>, |1 0>, |1 -1>), 4x4.

    Keys: "ss" (sigma1.sigma2) and "ab" for sigma1_a sigma2_b with a, b in x, y, z.
    """
    sx = np.array([[0, 1], [1, 0]], dtype=complex)
    sy = np.array([[0, -1j], [1j, 0]], dtype=complex)
    sz = np.array([[1, 0], [0, -1]], dtype=complex)
    sig = {"x": sx, "y": sy, "z": sz}
    # product basis |m1 m2> with m = +1/2 (index 0), -1/2 (index 1)
    half = (0.5, -0.5)
    u = np.zeros((4, 4))
    coupled = [(0, 0), (1, 1), (1, 0), (1, -1)]
    for row, (s, ms) in enumerate(coupled):
        for i1, m1 in enumerate(half):
            for i2, m2 in enumerate(half):
                u[row, 2 * i1 + i2] = clebsch_gordan(0.5, m1, 0.5, m2, s, ms)
    out = {}
    for a in "xyz":
        for b in "xyz":
            out[a + b] = u @ np.kron(sig[a], sig[b]) @ u.T
    out["ss"] = out["xx"] + out["yy"] + out["zz"]
    return out


@cache
def angular_weights(channel: Channel, nz: int = 48) -> dict[str, torch.Tensor]:
    """Weights c_X[L'idx, Lidx, z] (z-quadrature weights included) for X in
    "c" (identity), "ss" (sigma1.sigma2), "xx", "zz", "xz" (sigma1_a sigma2_b + swap,
    for the tensor sigma1.q sigma2.q with q = (q_x, 0, q_z))."""
    z, wz = (x.numpy() for x in gauss_legendre(nz))
    theta = np.arccos(z)
    s, j = channel.s, channel.j
    sm = spin_matrices()
    ops = {
        "c": np.eye(4),
        "ss": sm["ss"],
        "xx": sm["xx"],
        "zz": sm["zz"],
        "xz": sm["xz"] + sm["zx"],
    }
    idx = [0] if s == 0 else [1, 2, 3]
    mss = [0] if s == 0 else [1, 0, -1]
    nl = len(channel.ls)
    out = {key: np.zeros((nl, nl, nz)) for key in ops}
    pref = 8.0 * math.pi**2 / (2 * j + 1)
    for a, lp in enumerate(channel.ls):
        for b, l in enumerate(channel.ls):
            for mi, m in enumerate(mss):  # ms = M (since m_L = 0 for p-hat = z)
                cg_in = clebsch_gordan(l, 0, s, m, j, m) * math.sqrt((2 * l + 1) / (4 * math.pi))
                if cg_in == 0.0:
                    continue
                for mpi, mp in enumerate(mss):
                    mlp = m - mp
                    if abs(mlp) > lp:
                        continue
                    cg_out = clebsch_gordan(lp, mlp, s, mp, j, m)
                    if cg_out == 0.0:
                        continue
                    y = np.conj(sph_harm_y(lp, mlp, theta, 0.0))
                    f = pref * cg_out * cg_in * y * wz
                    for key, op in ops.items():
                        me = op[idx[mpi], idx[mi]]
                        out[key][a, b] += np.real(f * me)
    return {key: torch.tensor(v, dtype=torch.float64) for key, v in out.items()}


def project(channel: Channel, p1: torch.Tensor, p2: torch.Tensor, v_c=None, v_s=None, v_t=None,
            nz: int = 48) -> torch.Tensor:
    """Project V_C + V_S s1.s2 + V_T s1.q s2.q onto the channel: (nL, nL, n1, n2) [MeV fm^3].

    ``v_c``, ``v_s``, ``v_t`` map q [MeV] to MeV^-2 (V_T: MeV^-4); isospin included.
    """
    wts = angular_weights(channel, nz)
    z, _ = gauss_legendre(nz)
    z = z.to(p1)
    pp, p = p1[:, None, None] * HBARC, p2[None, :, None] * HBARC  # MeV
    qx = pp * torch.sqrt(1.0 - z**2)  # (n1, 1, nz)
    qz = pp * z - p
    q = torch.sqrt(qx**2 + qz**2)
    total = 0.0
    if v_c is not None:
        total = total + torch.einsum("abz,ijz->abij", wts["c"].to(p1), v_c(q))
    if v_s is not None:
        total = total + torch.einsum("abz,ijz->abij", wts["ss"].to(p1), v_s(q))
    if v_t is not None:
        vt = v_t(q)
        total = total + torch.einsum("abz,ijz->abij", wts["xx"].to(p1), vt * qx**2)
        total = total + torch.einsum("abz,ijz->abij", wts["zz"].to(p1), vt * qz**2)
        total = total + torch.einsum("abz,ijz->abij", wts["xz"].to(p1), vt * qx * qz)
    return NORM * total


def isospin_factor(t: int) -> float:
    """tau1.tau2 = 2 T (T + 1) - 3."""
    return 2.0 * t * (t + 1) - 3.0


def ope_tensor_strength(t: int):
    """V_T(q) [MeV^-4] of np OPE in isospin T (charge-dependent pion masses)."""
    g = G_A**2 / (4.0 * F_PI**2)
    sign = 1.0 if t == 1 else -1.0

    def v_t(q: torch.Tensor) -> torch.Tensor:
        vpi = lambda m: -g / (q**2 + m**2)
        return -vpi(M_PI0) + sign * 2.0 * vpi(M_PIC)

    return v_t


def ope(channel: Channel, p1: torch.Tensor, p2: torch.Tensor, nz: int = 48) -> torch.Tensor:
    """Unregulated np one-pion exchange in ``channel``: (nL, nL, n1, n2) [MeV fm^3]."""
    return project(channel, p1, p2, v_t=ope_tensor_strength(channel.t), nz=nz)
