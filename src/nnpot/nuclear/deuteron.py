"""Bound states (deuteron) and low-energy scattering parameters.

Units: MeV, fm, fm^-1; wave functions psi_L(k) in fm^(3/2) with
sum_L int dk k^2 psi_L(k)^2 = 1; r-space u(r), w(r) in fm^(-1/2) with int (u^2 + w^2) dr = 1.

Bound state: H = T + V on the mesh, symmetrised with sqrt(w_i) k_i, so that
H_ij = (hbar c)^2 k_i^2/(2 mu) delta_ij + sqrt(w_i) k_i V(k_i, k_j) k_j sqrt(w_j); its lowest
eigenvalue is E = -B (differentiable with torch.linalg.eigh). Off the mesh the wave function
follows from the Schroedinger equation (Nystroem interpolation):

    psi_L(k) = -(2 mu/(hbar c)^2) / (k^2 + gamma^2) sum_L' sum_j w_j k_j^2 V_LL'(k, k_j) psi_L'(k_j)

with gamma = sqrt(2 mu B)/(hbar c). Momentum states carry no i^L factors, so
u_L(r) = (-1)^(L/2) sqrt(2/pi) r int dk k^2 j_L(kr) psi_L(k) (the Fourier transform of a
state with angular part Y_LM brings (-i)^L). Then (Stapp/standard definitions)

    P_D = int w^2 dr,   r_d = (1/2) sqrt(int r^2 (u^2 + w^2) dr)  (matter radius),
    Q_d = (1/20) int r^2 w (sqrt(8) u - w) dr,
    u -> A_S exp(-gamma r),  w -> A_D exp(-gamma r) (1 + 3/(gamma r) + 3/(gamma r)^2),
    eta = A_D / A_S.

Effective range: p cot(delta) = -1/a + r p^2/2 + v p^4 fitted at a few small momenta.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.special import spherical_jn

from nnpot.nuclear.channels import Channel, get_channel
from nnpot.nuclear.constants import HBARC2_2MU
from nnpot.nuclear.mesh import gauss_legendre
from nnpot.nuclear.scattering import PotentialFn, phase_shifts

TWO_MU = 1.0 / HBARC2_2MU  # 2 mu / (hbar c)^2 [MeV^-1 fm^-2]


def hamiltonian(potential: PotentialFn, channel: Channel, mesh) -> torch.Tensor:
    """Symmetrised H (nL*N, nL*N) [MeV] on the mesh (see module docstring)."""
    k, w = mesh
    nl, n = len(channel.ls), k.shape[0]
    v = potential(channel, k, k)  # (nL, nL, N, N)
    s = torch.sqrt(w) * k
    h = v * s[:, None] * s[None, :]
    h = h.transpose(1, 2).reshape(nl * n, nl * n)
    t = (HBARC2_2MU * k**2).repeat(nl)
    return h + torch.diag(t)


def bound_state(potential: PotentialFn, channel: Channel, mesh):
    """Lowest eigenstate: (E [MeV], psi [nL, N] on the mesh [fm^(3/2)]).

    The sign of psi is fixed so that the first component's largest value is positive.
    """
    k, w = mesh
    nl, n = len(channel.ls), k.shape[0]
    evals, evecs = torch.linalg.eigh(hamiltonian(potential, channel, mesh))
    e, vec = evals[0], evecs[:, 0]
    psi = (vec.reshape(nl, n) / (torch.sqrt(w) * k)).detach()
    i = torch.argmax(psi[0].abs())
    psi = psi * torch.sign(psi[0, i])
    return e, psi


def interpolate_wave(potential: PotentialFn, channel: Channel, mesh, energy, psi, kk):
    """psi_L(kk) [fm^(3/2)] at arbitrary momenta ``kk`` by the Nystroem formula."""
    k, w = mesh
    g2 = -TWO_MU * float(energy)
    v = potential(channel, kk, k)  # (nL, nL, M, N)
    vpsi = torch.einsum("abmn,bn->am", v, psi * w * k**2)
    return -TWO_MU * vpsi / (kk**2 + g2)


@dataclass
class DeuteronProperties:
    """Deuteron observables: B_d [MeV], P_D [1], r_d [fm], Q_d [fm^2], A_S [fm^-1/2], eta."""

    B_d: float
    P_D: float
    r_d: float
    Q_d: float
    A_S: float
    eta: float

    def as_dict(self) -> dict:
        return asdict(self)


def r_space(potential: PotentialFn, channel: Channel, mesh, energy, psi, r: np.ndarray,
            n_fine: int = 600, k_max: float = 15.0):
    """u_L(r) [fm^(-1/2)] on the grid ``r`` [fm] from the momentum-space wave function."""
    # put half the points below 1.5 fm^-1 where the wave function lives
    k1, w1 = (x.numpy() for x in gauss_legendre(n_fine // 2, 0.0, 1.5))
    k2, w2 = (x.numpy() for x in gauss_legendre(n_fine - n_fine // 2, 1.5, k_max))
    kf, wf = np.concatenate([k1, k2]), np.concatenate([w1, w2])
    with torch.no_grad():
        ps = interpolate_wave(potential, channel, mesh, energy, psi,
                              torch.tensor(kf, dtype=torch.float64)).numpy()
    out = []
    for li, L in enumerate(channel.ls):
        jl = spherical_jn(L, np.outer(r, kf))
        u = math.sqrt(2.0 / math.pi) * r * (jl @ (wf * kf**2 * ps[li]))
        out.append(u * (-1.0) ** (L // 2))
    return np.array(out)


def deuteron_properties(potential: PotentialFn, mesh, r_max: float = 30.0,
                        n_r: int = 1200) -> DeuteronProperties:
    """Deuteron observables of ``potential`` in the 3S1-3D1 channel (see module docstring).

    Radial integrals run to ``r_max`` [fm] by Gauss-Legendre and are continued beyond with
    the asymptotic forms; A_S and A_D are read from the wave functions between 12 and 20 fm.
    """
    ch = get_channel("3S1-3D1")
    with torch.no_grad():
        e, psi = bound_state(potential, ch, mesh)
    e = float(e)
    if e >= 0:
        return DeuteronProperties(float("nan"), *([float("nan")] * 5))
    gamma = math.sqrt(-e * TWO_MU)
    r_t, w_t = (x.numpy() for x in gauss_legendre(n_r, 0.0, r_max))
    uw = r_space(potential, ch, mesh, e, psi, r_t)
    u, wd = uw[0], uw[1]
    # asymptotic normalisations from the tail
    rt = np.linspace(12.0, 20.0, 17)
    ut = r_space(potential, ch, mesh, e, psi, rt)
    a_s = float(np.mean(ut[0] * np.exp(gamma * rt)))
    x = gamma * rt
    a_d = float(np.mean(ut[1] * np.exp(x) / (1.0 + 3.0 / x + 3.0 / x**2)))
    norm = float(np.sum(w_t * (u**2 + wd**2)))
    p_d = float(np.sum(w_t * wd**2))
    r2 = float(np.sum(w_t * r_t**2 * (u**2 + wd**2)))
    q = float(np.sum(w_t * r_t**2 * wd * (math.sqrt(8.0) * u - wd))) / 20.0
    # tails beyond r_max from the asymptotic forms (S wave only; D tail is tiny)
    rr = np.linspace(r_max, r_max + 40.0, 4001)
    tail_s = a_s**2 * np.exp(-2 * gamma * rr)
    r2 += float(np.trapezoid(rr**2 * tail_s, rr))
    norm += float(np.trapezoid(tail_s, rr))
    return DeuteronProperties(
        B_d=-e, P_D=p_d / norm, r_d=0.5 * math.sqrt(r2 / norm), Q_d=q / norm,
        A_S=a_s / math.sqrt(norm), eta=a_d / a_s,
    )


def effective_range(potential: PotentialFn, wave: str, mesh,
                    p: tuple[float, ...] = (0.02, 0.04, 0.06, 0.08, 0.10)) -> tuple[float, float]:
    """Scattering length a and effective range r [fm] in "1S0" or "3S1".

    Fits p cot(delta) = -1/a + (r/2) p^2 + v p^4 at the small momenta ``p`` [fm^-1].
    """
    ch = get_channel(wave)
    pt = torch.tensor(p, dtype=torch.float64)
    with torch.no_grad():
        d = phase_shifts(potential, [ch], pt, mesh)[wave].numpy()
    y = np.asarray(p) / np.tan(d)
    x = np.asarray(p) ** 2
    c = np.polyfit(x, y, 2)
    return float(-1.0 / c[2]), float(2.0 * c[1])
