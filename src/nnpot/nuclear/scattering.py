"""Lippmann-Schwinger solver for the on-shell K-matrix, phase shifts and mixing angles.

Units: momenta p in fm^-1, potentials in MeV fm^3 (normalisation <p|p'> = delta(p-p')/p^2),
energies in MeV; phase shifts are returned in radians (degrees only in files and plots).

Equation (principal value by subtraction; Haftel & Tabakin, NPA 158, 1 (1970)):

    K(p', p0) = V(p', p0) + (2 mu/(hbar c)^2) [ sum_i w_i k_i^2 V(p', k_i) K(k_i, p0)/(p0^2 - k_i^2)
                                              - p0^2 V(p', p0) K(p0, p0) sum_i w_i/(p0^2 - k_i^2) ]

which uses PV int_0^inf dk / (p0^2 - k^2) = 0; the mesh (k_i, w_i) covers [0, inf).
On the augmented mesh (k_1..k_N, p0) this is the linear system (1 - V D) K = V, solved
for the on-shell column(s), batched over channels and energies, differentiable.

Phase shifts: with rho = pi mu p0 / (hbar c)^2 and R = -rho K (dimensionless),
uncoupled tan(delta) = R; coupled S = (1 + iR)(1 - iR)^-1 (with the off-diagonal sign
flipped, S_12 -> -S_12, because Stapp's convention refers to states with i^L factors,
i^(L-L') = -1 for L' = L +/- 2, and our momentum states carry none) is written in the Stapp
("bar") form S = [[cos2e exp(2i d-), i sin2e exp(i(d- + d+))], [..., cos2e exp(2i d+)]]:
d-/+ = arg(S_11/22)/2, and sin 2e = Re(-i S_12 exp(-i(d- + d+))) is evaluated *after*
d- has been put on its branch: moving d- by pi flips the sign of e (the "mixing-angle
sign vs 3S1 branch" pitfall). 3S1 is put on the Levinson branch (starting at 180 deg
because of the deuteron) by choosing the branch nearest to the effective-range curve
delta_ref = atan2(p, -1/a_t + r_t p^2/2), which lies in (0, pi).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from nnpot.nuclear import batched
from nnpot.nuclear.channels import Channel
from nnpot.nuclear.constants import EXPERIMENT, HBARC, MU_NP

#: A potential: (channel, p_out [n1], p_in [n2]) -> V[L'_idx, L_idx, n1, n2] in MeV fm^3.
PotentialFn = Callable[[Channel, torch.Tensor, torch.Tensor], torch.Tensor]

TWO_MU = 2.0 * MU_NP / HBARC**2  #: 2 mu / (hbar c)^2 [MeV^-1 fm^-2]


def augmented_potential(
    potential: PotentialFn, channel: Channel, k: torch.Tensor, p0: torch.Tensor
) -> torch.Tensor:
    """V on the augmented meshes, shape (B, nL*(N+1), nL*(N+1)) [MeV fm^3].

    One evaluation on the union grid (k_1..k_N, p0_1..p0_B); energy b uses the points
    (k_1..k_N, p0_b). Blocks are ordered by L (row block L', column block L).
    """
    n, b = k.shape[0], p0.shape[0]
    q = torch.cat([k, p0])
    vq = potential(channel, q, q)  # (nL, nL, N+B, N+B)
    return gather_augmented(vq, n, b)


def gather_augmented(vq: torch.Tensor, n: int, b: int) -> torch.Tensor:
    """Pick the (N+1)x(N+1) augmented blocks of each energy from V on the union grid."""
    nl = vq.shape[-4]
    base = torch.arange(n, device=vq.device)
    idx = torch.cat(
        [base.expand(b, n), (n + torch.arange(b, device=vq.device))[:, None]], dim=1
    )  # (B, N+1)
    v = vq[..., idx[:, :, None], idx[:, None, :]]  # (..., nL, nL, B, N+1, N+1)
    v = v.movedim(-3, -5)  # (..., B, nL, nL, N+1, N+1)
    v = v.transpose(-3, -2)  # (..., B, nL, N+1, nL, N+1)
    shape = v.shape[:-4] + (nl * (n + 1), nl * (n + 1))
    return v.reshape(shape)


def propagator(k: torch.Tensor, w: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
    """Diagonal D (B, N+1) of the PV-subtracted LS kernel [MeV^-1 fm^-3]."""
    denom = p0[:, None] ** 2 - k[None, :] ** 2  # (B, N)
    d = TWO_MU * w * k**2 / denom
    d_sub = -TWO_MU * p0**2 * (w / denom).sum(-1)
    return torch.cat([d, d_sub[:, None]], dim=1)


def onshell_k(v_aug: torch.Tensor, k: torch.Tensor, w: torch.Tensor, p0: torch.Tensor,
              nl: int) -> torch.Tensor:
    """On-shell K-matrix (..., B, nL, nL) [MeV fm^3] from augmented V (..., B, M, M)."""
    n = k.shape[0]
    d = propagator(k, w, p0).repeat(1, nl)  # (B, nL*(N+1))
    m = v_aug.shape[-1]
    eye = torch.eye(m, dtype=v_aug.dtype, device=v_aug.device)
    a = eye - v_aug * d[..., None, :]
    on = [(i + 1) * (n + 1) - 1 for i in range(nl)]  # indices of p0 in each L block
    rhs = v_aug[..., :, on]  # (..., B, M, nL)
    kcol = batched.solve(a, rhs)
    return kcol[..., on, :]


def full_k(v_aug: torch.Tensor, k: torch.Tensor, w: torch.Tensor, p0: torch.Tensor,
           nl: int) -> torch.Tensor:
    """The whole K-matrix on the augmented mesh (..., B, M, M) (slow; for tests)."""
    d = propagator(k, w, p0).repeat(1, nl)
    m = v_aug.shape[-1]
    eye = torch.eye(m, dtype=v_aug.dtype, device=v_aug.device)
    return batched.solve(eye - v_aug * d[..., None, :], v_aug)


def rho(p0: torch.Tensor) -> torch.Tensor:
    """rho = pi mu p0 / (hbar c)^2 [MeV^-1 fm^-3], so that R = -rho K is dimensionless."""
    return math.pi * MU_NP * p0 / HBARC**2


def levinson_reference(p0: torch.Tensor, a: float | None = None, r: float | None = None):
    """Reference curve atan2(p, -1/a + r p^2/2) in (0, pi) for the bound 3S1 branch [rad]."""
    a = EXPERIMENT["a_3S1"] if a is None else a
    r = EXPERIMENT["r_3S1"] if r is None else r
    return torch.atan2(p0, -1.0 / a + 0.5 * r * p0**2)


def uncoupled_phase(kon: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
    """delta = atan(-rho K) in (-pi/2, pi/2) [rad]; kon (..., B) [MeV fm^3]."""
    return torch.atan(-rho(p0) * kon)


def coupled_phases(
    kon: torch.Tensor, p0: torch.Tensor, minus_ref: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stapp bar phases (delta_minus, delta_plus, epsilon) [rad] from K (..., B, 2, 2).

    ``minus_ref`` (B,) [rad], if given, selects the branch of delta_minus nearest to it
    (Levinson branch for 3S1); epsilon is computed after that choice.
    """
    r = -rho(p0)[..., None, None] * kon
    a, b, c = r[..., 0, 0], r[..., 0, 1], r[..., 1, 1]
    one = torch.ones_like(a)
    z = lambda re, im: torch.complex(re, im)
    det = z(one - a * c + b * b, -(a + c))  # (1 - ia)(1 - ic) + b^2
    # S = (1 + iR) adj(1 - iR) / det, adj(1 - iR) = [[1 - ic, ib], [ib, 1 - ia]]
    #   S11 = (1 + ia)(1 - ic) + (ib)(ib) = 1 + ac - b^2 + i(a - c)
    #   S22 = (1 + ic)(1 - ia) - b^2      = 1 + ac - b^2 + i(c - a)
    #   S12 = (1 + ia)(ib) + (ib)(1 - ia) = 2ib
    s11 = z(one + a * c - b * b, a - c) / det
    s22 = z(one + a * c - b * b, c - a) / det
    # Stapp's parametrisation refers to states with the standard i^L factors; ours carry
    # none, so S_{L'L} differs by i^(L - L') = -1 off the diagonal (sign of epsilon).
    s12 = z(torch.zeros_like(b), -2.0 * b) / det
    dm = 0.5 * torch.angle(s11)
    dp = 0.5 * torch.angle(s22)
    if minus_ref is not None:
        dm = dm + math.pi * torch.round((minus_ref - dm) / math.pi).detach()
    phase = torch.exp(z(torch.zeros_like(dm), -(dm + dp)))
    sin2e = (s12 * phase * z(torch.zeros_like(dm), -one)).real
    eps = 0.5 * torch.asin(torch.clamp(sin2e, -1.0, 1.0))
    return dm, dp, eps


def phase_shifts(
    potential: PotentialFn,
    channels: Sequence[Channel],
    p0: torch.Tensor,
    mesh: tuple[torch.Tensor, torch.Tensor],
    levinson: bool = True,
) -> dict[str, torch.Tensor]:
    """Phase shifts and mixing angles [rad] at CM momenta ``p0`` [fm^-1] per wave name.

    Channels with the same number of L's are stacked and solved in one batched call.
    With ``levinson`` the 3S1 phase is put on the bound-state (Levinson) branch.
    """
    k, w = mesh
    p0 = torch.as_tensor(p0, dtype=k.dtype, device=k.device).reshape(-1)
    out: dict[str, torch.Tensor] = {}
    for nl in (1, 2):
        group = [c for c in channels if len(c.ls) == nl]
        if not group:
            continue
        v = torch.stack([augmented_potential(potential, c, k, p0) for c in group])
        kon = onshell_k(v, k, w, p0, nl)  # (C, B, nL, nL)
        for ci, c in enumerate(group):
            if nl == 1:
                out[c.waves[0]] = uncoupled_phase(kon[ci, :, 0, 0], p0)
            else:
                ref = levinson_reference(p0) if (levinson and c.waves[0] == "3S1") else None
                dm, dp, eps = coupled_phases(kon[ci], p0, ref)
                out[c.waves[0]], out[c.waves[1]], out[c.waves[2]] = dm, dp, eps
    return out
