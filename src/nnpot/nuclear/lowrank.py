"""Low-rank (separable) forms of a partial-wave NN potential and their closed-form LS solve.

Conventions of :mod:`nnpot.nuclear.constants`: |p L> with <p|p'> = delta(p - p')/p^2, V in
MeV fm^3, momenta in fm^-1, energies in MeV, e(k) = (hbar c)^2 k^2/(2 mu). A potential is
a block function ``potential(p_out, p_in) -> V`` of shape (nL, nL, n_out, n_in) (nL = 1
uncoupled, 2 for a coupled block ordered L = J-1, J+1); (k, w) a quadrature mesh of
[0, inf) (:mod:`nnpot.nuclear.mesh`).

A rank-R separable potential is

    V_R(p', p) = sum_ab g_a(p') Lambda_ab g_b(p),
    g_a^L(p)   = sum_{L', i} V_{LL'}(p, q_i) c_{L'i,a},

with form factors evaluated at any p by Nystrom extension through V itself on nodes q_i
(the mesh, plus on-shell points for EST). Three constructions:

* ``svd_lowrank``: eigen-decomposition (= signed SVD) of the symmetrised mesh matrix
  A = D V D, D = diag(sqrt(w_j) k_j); keep the R eigenvalues of largest |lambda|:
  V_R = sum_a lambda_a g_a g_a^T, where D g_a are the unit eigenvectors.
* ``weinberg_lowrank``: at an energy E < 0 the Weinberg states G0(E) V psi_nu = eta_nu psi_nu
  (G0 = 1/(E - H0), real) are V-orthogonal and complete, V = sum_nu V|psi_nu><psi_nu|V /
  <psi_nu|V|psi_nu>; keep the R largest |eta_nu|. At the deuteron pole E = -B_d the bound
  state is the eta = 1 state, so the rank-1 term reproduces B_d exactly (same mesh).
* ``est_lowrank``: Ernst, Shakin, Thaler, Phys. Rev. C 8, 46 (1973):
  V_EST = sum_ij V|psi_i> (M^-1)_ij <psi_j|V, M_ij = <psi_i|V|psi_j>, with psi_i the
  Weinberg states (the bound state at a pole) for energies E < 0, and the standing-wave
  (K-matrix) solutions for E > 0 (V psi_i = K(., p_i), one per incoming L). Since
  V_EST psi_i = V psi_i, the K-matrix (on and half off shell) is exact at each chosen energy.

Closed-form LS (principal value by subtraction, as in :mod:`nnpot.nuclear.scattering`):

    K(p', p0) = sum_ab g_a(p') tau_ab g_b(p0),  tau = (1 - Lambda Gs)^-1 Lambda,
    Gs_ab = sum_{L,j} g_a^L(k_j) D_j g_b^L(k_j) + sum_L g_a^L(p0) D_0 g_b^L(p0),
    D_j = (2 mu/(hbar c)^2) w_j k_j^2/(p0^2 - k_j^2),
    D_0 = -(2 mu/(hbar c)^2) p0^2 sum_j w_j/(p0^2 - k_j^2),

an R x R solve per energy instead of an (nL (N+1))^2 one. Bound states of V_R: the
energies E < 0 where Lambda Gs(E) (with D_j -> w_j k_j^2/(E - e_j)) has eigenvalue 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from nnpot.errors import InputError
from nnpot.nuclear.constants import HBARC, MU_NP

__all__ = ["BlockPotential", "SeparablePotential", "svd_lowrank", "weinberg_lowrank",
           "est_lowrank", "full_onshell_k", "separable_onshell_k", "bound_state_energy",
           "separable_bound_state_energy", "separable_bound_states", "block_matrix",
           "phase_shifts_deg",
           "max_phase_deviation", "solve_refined", "augmented_system",
           "solve_augmented", "rank_report", "est_states", "est_greedy",
           "TWO_MU"]

#: (p_out [n1], p_in [n2]) -> V (nL, nL, n1, n2) [MeV fm^3]
BlockPotential = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

TWO_MU = 2.0 * MU_NP / HBARC**2  #: 2 mu/(hbar c)^2 [MeV^-1 fm^-2]


def _as64(x, like: torch.Tensor | None = None) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64,
                           device=like.device if like is not None else None)


def block_matrix(potential: BlockPotential, p_out, p_in) -> torch.Tensor:
    """V as one matrix (nL n_out, nL n_in), row/column blocks ordered by L [MeV fm^3].

    Evaluated without autograd (the low-rank forms are post-processing of a fitted V).
    """
    with torch.no_grad():
        v = potential(_as64(p_out).reshape(-1), _as64(p_in).reshape(-1))
    if v.dim() != 4 or v.shape[0] != v.shape[1] or v.shape[0] not in (1, 2):
        raise InputError(f"potential returned shape {tuple(v.shape)}; expected (nL, nL, n, m)"
                         " with nL = 1 or 2")
    if not bool(torch.isfinite(v).all()):
        raise InputError("potential returned NaN or infinite values")
    nl = v.shape[0]
    return v.permute(0, 2, 1, 3).reshape(nl * v.shape[2], nl * v.shape[3])


def _mesh(k, w) -> tuple[torch.Tensor, torch.Tensor]:
    k = _as64(k).reshape(-1)
    w = _as64(w, k).reshape(-1)
    if k.numel() == 0 or k.shape != w.shape:
        raise InputError("mesh points and weights must be non-empty and of equal length")
    if not bool(torch.isfinite(k).all() and torch.isfinite(w).all()) or \
            bool((k <= 0).any()) or bool((w <= 0).any()):
        raise InputError("mesh points (fm^-1) and weights must be positive and finite")
    return k, w


def _check_rank(rank, limit: int) -> int:
    if int(rank) != rank or rank < 1:
        raise InputError(f"rank must be a positive integer, got {rank}")
    if rank > limit:
        raise InputError(f"rank {rank} exceeds the {limit} mesh degrees of freedom")
    return int(rank)


@dataclass
class SeparablePotential:
    """V_R(p', p) = sum_ab g_a(p') Lambda_ab g_b(p); g(p) = V(p, nodes) @ coef (see module)."""

    potential: BlockPotential
    k: torch.Tensor  #: quadrature mesh [fm^-1]
    w: torch.Tensor
    nodes: torch.Tensor  #: Nystrom nodes [fm^-1] (the mesh, plus on-shell points for EST)
    coef: torch.Tensor  #: (nL len(nodes), R)
    lam: torch.Tensor  #: Lambda (R, R)
    nl: int
    method: str = ""

    @property
    def rank(self) -> int:
        return int(self.lam.shape[0])

    def form_factors(self, p) -> torch.Tensor:
        """g_a^L(p), shape (nL, len(p), R)."""
        p = _as64(p, self.k).reshape(-1)
        vb = block_matrix(self.potential, p, self.nodes)
        return (vb @ self.coef).reshape(self.nl, p.numel(), self.rank)

    def __call__(self, p_out, p_in) -> torch.Tensor:
        """V_R(p_out, p_in) as (nL, nL, n_out, n_in) [MeV fm^3]: a block potential itself."""
        go, gi = self.form_factors(p_out), self.form_factors(p_in)
        return torch.einsum("xir,rs,yjs->xyij", go, self.lam, gi)


def svd_lowrank(potential: BlockPotential, k, w, rank: int) -> SeparablePotential:
    """Rank-R truncation of the eigen-decomposition of A = D V D (largest |lambda|).

    Eigenvalues below 1e-12 max|lambda| are never kept (the rank is capped at the
    numerical rank of A). At full rank V_R = V on the mesh; off the mesh (on-shell points)
    V_R is the Nystrom interpolation of V, which differs from V at the 1e-6 level.
    """
    k, w = _mesh(k, w)
    v = block_matrix(potential, k, k)
    nl = v.shape[0] // k.numel()
    rank = _check_rank(rank, v.shape[0])
    d = (torch.sqrt(w) * k).repeat(nl)
    a = d[:, None] * v * d[None, :]
    lam, u = torch.linalg.eigh(0.5 * (a + a.T))
    order = torch.argsort(lam.abs(), descending=True)
    numerical = int((lam.abs() > 1e-12 * lam.abs().max()).sum())
    order = order[: min(rank, numerical)]  # a rank above the numerical rank adds nothing
    lam, u = lam[order], u[:, order]
    # g_a(k_j) = u_ja/d_j; Nystrom: g_a(p) = (1/lam_a) sum_j V(p, k_j) d_j^2 g_a(k_j)
    coef = d[:, None] * u / lam[None, :]
    return SeparablePotential(potential, k, w, k, coef, torch.diag(lam), nl, "svd")


def weinberg_states(potential: BlockPotential, k, w, energy: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weinberg eigenvalues eta and states psi(k_j) (nL N, nL N).

    G0(E) V psi = eta psi at ``energy`` [MeV] < 0, from the symmetric form
    S V S phi = -eta phi with S = diag(sqrt(w_j) k_j sqrt(-G0(k_j))). Ordered by
    descending |eta|, except that a bound state (eta = 1 within 1e-6, i.e. E is a pole)
    comes first: a repulsive core has large negative eta that would otherwise lead.
    """
    k, w = _mesh(k, w)
    if not (math.isfinite(energy) and energy < 0):
        raise InputError(f"Weinberg states need an energy below 0 MeV, got {energy}")
    v = block_matrix(potential, k, k)
    nl = v.shape[0] // k.numel()
    g0 = 1.0 / (energy - (k * k / TWO_MU).repeat(nl))
    s = torch.sqrt(w).repeat(nl) * k.repeat(nl) * torch.sqrt(-g0)
    m = s[:, None] * v * s[None, :]
    mu, phi = torch.linalg.eigh(0.5 * (m + m.T))
    eta = -mu
    key = eta.abs() + 1e3 * ((eta - 1.0).abs() < 1e-6)
    order = torch.argsort(key, descending=True)
    psi = phi[:, order] * (torch.sqrt(-g0) / (torch.sqrt(w).repeat(nl) * k.repeat(nl)))[:, None]
    return eta[order], psi


def weinberg_lowrank(potential: BlockPotential, k, w, rank: int, energy: float
                     ) -> SeparablePotential:
    """Rank-R Weinberg expansion at ``energy`` [MeV] < 0 (the R largest |eta|)."""
    if not (math.isfinite(energy) and energy < 0):
        raise InputError(f"the Weinberg expansion needs an energy below 0 MeV, got {energy}")
    return est_lowrank(potential, k, w, [(energy, rank)])


def _standing_wave(potential, k, w, p0: torch.Tensor, nl: int):
    """Coefficients c on nodes (k, p0) with K(., p0) = V(., nodes) c; shape (nL (N+1), nL)."""
    n = k.numel()
    nodes = torch.cat([k, p0.reshape(1)])
    v = block_matrix(potential, nodes, nodes)
    d = _propagator(k, w, p0.reshape(1))[0].repeat(nl)
    on = [(i + 1) * (n + 1) - 1 for i in range(nl)]
    eye = torch.eye(v.shape[0], dtype=v.dtype, device=v.device)
    kcol = torch.linalg.solve(eye - v * d[None, :], v[:, on])
    c = d[:, None] * kcol
    c[on, range(nl)] += 1.0
    return c


def _propagator(k: torch.Tensor, w: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
    """D on (k_1..k_N, p0) for each p0: shape (B, N + 1) [MeV^-1 fm^-3]."""
    den = p0[:, None] ** 2 - k[None, :] ** 2
    if bool((den == 0).any()):
        raise InputError("an on-shell momentum coincides with a mesh point; shift the energy")
    d = TWO_MU * w * k * k / den
    d0 = -TWO_MU * p0**2 * (w / den).sum(-1)
    return torch.cat([d, d0[:, None]], dim=1)


def est_lowrank(potential: BlockPotential, k, w,
                energies: Sequence[float | tuple[float, int]]) -> SeparablePotential:
    """EST separable potential exact at the given energies [MeV].

    Each entry is an energy (E > 0: the nL standing waves; E < 0: one Weinberg state, the
    bound state if E is a pole) or (E, m) with m Weinberg states at E < 0. Rank = total
    number of states. Energies close to each other (or a low energy next to the pole) make
    the states nearly dependent: M is then ill-conditioned and exactness degrades to
    cond(M) x 1e-16.
    """
    k, w = _mesh(k, w)
    n = k.numel()
    nl = block_matrix(potential, k[:1], k[:1]).shape[0]
    on_shell = [float(e[0] if isinstance(e, tuple) else e) for e in energies]
    pos = [e for e in on_shell if e > 0]
    p_on = torch.sqrt(_as64(pos, k) * TWO_MU) if pos else k[:0]
    nodes = torch.cat([k, p_on])
    nn = nodes.numel()
    blocks, kinds = [], []  # coefficient columns on (nL nn) nodes; psi description
    dw = (w * k * k).repeat(nl)
    ip = 0
    for entry in energies:
        e, m = (entry if isinstance(entry, tuple) else (entry, 1))
        e = float(e)
        if not math.isfinite(e) or e == 0:
            raise InputError(f"EST energies must be finite and non-zero (MeV), got {e}")
        if e < 0:
            _check_rank(m, nl * n)
            _, psi = weinberg_states(potential, k, w, e)
            psi = psi[:, :m]
            c = torch.zeros(nl * nn, m, dtype=k.dtype, device=k.device)
            for li in range(nl):
                c[li * nn: li * nn + n] = dw[li * n:(li + 1) * n, None] * psi[li * n:(li + 1) * n]
            blocks.append(c)
            kinds += [("bound", psi[:, a]) for a in range(m)]
        else:
            p0 = p_on[ip]
            cs = _standing_wave(potential, k, w, p0, nl)  # on nodes (k, p0) per L block
            c = torch.zeros(nl * nn, nl, dtype=k.dtype, device=k.device)
            for li in range(nl):
                c[li * nn: li * nn + n] = cs[li * (n + 1): li * (n + 1) + n]
                c[li * nn + n + ip] = cs[li * (n + 1) + n]
            blocks.append(c)
            kinds += [("wave", (ip, e, li)) for li in range(nl)]
            ip += 1
    coef = torch.cat(blocks, dim=1)
    rank = coef.shape[1]
    _check_rank(rank, nl * n)
    sep = SeparablePotential(potential, k, w, nodes, coef,
                             torch.eye(rank, dtype=k.dtype, device=k.device), nl, "est")
    g_mesh = sep.form_factors(k)  # (nL, N, R)
    g_on = sep.form_factors(p_on) if pos else None  # (nL, P, R)
    m_mat = torch.zeros(rank, rank, dtype=k.dtype, device=k.device)
    for a, (kind, info) in enumerate(kinds):
        if kind == "bound":
            psi = info.reshape(nl, n)
            m_mat[a] = torch.einsum("xj,j,xjr->r", psi, w * k * k, g_mesh)
        else:
            ipa, e, la = info
            d = _propagator(k, w, p_on[ipa].reshape(1))[0]
            m_mat[a] = g_on[la, ipa] + torch.einsum("xj,j,xjr->r", g_mesh[:, :, a], d[:n],
                                                    g_mesh) \
                + d[n] * torch.einsum("x,xr->r", g_on[:, ipa, a], g_on[:, ipa])
    sep.lam = torch.linalg.inv(m_mat)
    sep.method = "weinberg" if not pos else "est"
    return sep


def separable_onshell_k(sep: SeparablePotential, p0, g_on: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """On-shell K (B, nL, nL) [MeV fm^3] of a separable potential, closed form (module doc).

    ``g_on`` (nL, B, R): form factors at p0, if already tabulated (else computed).
    """
    p0 = _as64(p0, sep.k).reshape(-1)
    if g_on is None:
        g_on = sep.form_factors(p0)
    g_mesh = getattr(sep, "_g_mesh", None)
    if g_mesh is None:
        g_mesh = sep.form_factors(sep.k)
        sep._g_mesh = g_mesh
    n = sep.k.numel()
    d = _propagator(sep.k, sep.w, p0)  # (B, N + 1)
    gs = torch.einsum("xjr,bj,xjs->brs", g_mesh, d[:, :n], g_mesh) \
        + d[:, n, None, None] * torch.einsum("xbr,xbs->brs", g_on, g_on)
    eye = torch.eye(sep.rank, dtype=p0.dtype, device=p0.device)
    tau = torch.linalg.solve(eye - sep.lam @ gs, sep.lam.expand(p0.numel(), -1, -1))
    return torch.einsum("xbr,brs,ybs->bxy", g_on, tau, g_on)


def solve_refined(a: torch.Tensor, b: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    """Solve a x = b (float64 in/out) with a float32 LU and float64 iterative refinement.

    x_0 = LU32^-1 b; x_{i+1} = x_i + LU32^-1 (b - a x_i) with the residual in float64.
    Converges to float64 accuracy when cond(a) << 1e7 (each step gains ~7 digits).
    """
    lu, piv = torch.linalg.lu_factor(a.to(torch.float32))
    x = torch.linalg.lu_solve(lu, piv, b.to(torch.float32)).to(torch.float64)
    for _ in range(iterations):
        r = b - a @ x
        x = x + torch.linalg.lu_solve(lu, piv, r.to(torch.float32)).to(torch.float64)
    return x


def augmented_system(potential: BlockPotential, k, w, p0):
    """(A, rhs, on) of the full LS: A = 1 - V D on (k_1..k_N, p0) per energy, batched.

    A (B, M, M), rhs = V[:, :, on] (B, M, nL), M = nL (N + 1); K_on = solve(A, rhs)[on].
    """
    k, w = _mesh(k, w)
    p0 = _as64(p0, k).reshape(-1)
    n = k.numel()
    nodes = torch.cat([k, p0])
    with torch.no_grad():
        vq = potential(nodes, nodes)  # one evaluation on the union grid
    nl = vq.shape[0]
    idx = torch.cat([torch.arange(n).expand(p0.numel(), n),
                     (n + torch.arange(p0.numel()))[:, None]], dim=1)  # (B, N+1)
    v = vq[:, :, idx[:, :, None], idx[:, None, :]]  # (nL, nL, B, N+1, N+1)
    v = v.permute(2, 0, 3, 1, 4).reshape(p0.numel(), nl * (n + 1), nl * (n + 1))
    d = _propagator(k, w, p0).repeat(1, nl)  # (B, nL (N+1))
    eye = torch.eye(v.shape[-1], dtype=v.dtype, device=v.device)
    on = [(i + 1) * (n + 1) - 1 for i in range(nl)]
    return eye - v * d[:, None, :], v[:, :, on], on


def solve_augmented(a: torch.Tensor, rhs: torch.Tensor, on, precision: str = "float64"
                    ) -> torch.Tensor:
    """On-shell K (B, nL, nL) from :func:`augmented_system` in the given precision."""
    if precision == "float64":
        kcol = torch.linalg.solve(a, rhs)
    elif precision == "float32":
        kcol = torch.linalg.solve(a.to(torch.float32), rhs.to(torch.float32)).to(torch.float64)
    elif precision == "mixed":
        kcol = solve_refined(a, rhs)
    else:
        raise InputError(f"precision must be float64, float32 or mixed, got {precision!r}")
    return kcol[:, on, :]


def full_onshell_k(potential: BlockPotential, k, w, p0, precision: str = "float64"
                   ) -> torch.Tensor:
    """On-shell K (B, nL, nL) [MeV fm^3] by the full LS solve on (k_1..k_N, p0).

    ``precision``: "float64" (default), "float32" (LU and solve in float32) or "mixed"
    (float32 LU + float64 iterative refinement, :func:`solve_refined`).
    """
    return solve_augmented(*augmented_system(potential, k, w, p0), precision=precision)


def bound_state_energy(potential: BlockPotential, k, w) -> float:
    """Lowest eigenvalue [MeV] of H0 + V on the mesh (the bound state, if < 0)."""
    k, w = _mesh(k, w)
    v = block_matrix(potential, k, k)
    nl = v.shape[0] // k.numel()
    s = (torch.sqrt(w) * k).repeat(nl)
    h = torch.diag((k * k / TWO_MU).repeat(nl)) + s[:, None] * v * s[None, :]
    return float(torch.linalg.eigvalsh(0.5 * (h + h.T))[0])


def separable_bound_states(sep: SeparablePotential, e_min: float = -1000.0) -> list[float]:
    """All bound states [MeV] of V_R above ``e_min``, deepest first (closed form, R x R).

    E is a bound state when Lambda Gs(E), Gs_ab = sum_{L,j} g_a w_j k_j^2 g_b/(E - e_j), has
    eigenvalue 1. Each eigenvalue rises monotonically from 0 (E -> -inf) as E -> 0-, so the
    m-th largest crosses 1 at the m-th deepest bound state; each crossing is found by Brent.
    EST/Weinberg forms may carry spurious deep states besides the physical ones.
    """
    g = getattr(sep, "_g_mesh", None)
    if g is None:
        g = sep.form_factors(sep.k)
        sep._g_mesh = g
    gn = g.detach().cpu().numpy()
    ekn = (sep.k * sep.k / TWO_MU).cpu().numpy()
    wkn = (sep.w * sep.k * sep.k).cpu().numpy()
    lam = sep.lam.detach().cpu().numpy()

    def etas(logb: float) -> np.ndarray:
        gs = np.einsum("xjr,j,xjs->rs", gn, wkn / (-math.exp(logb) - ekn), gn)
        return np.sort(np.linalg.eigvals(lam @ gs).real)[::-1]

    lo, hi = math.log(-e_min), math.log(1e-9)
    n_hi, n_lo = int((etas(hi) > 1).sum()), int((etas(lo) > 1).sum())
    out = []
    for m in range(n_lo, n_hi):
        f = lambda x, m=m: float(etas(x)[m]) - 1.0
        out.append(-math.exp(scipy.optimize.brentq(f, hi, lo, xtol=1e-15, rtol=1e-15,
                                                   maxiter=200)))
    return sorted(out)


def separable_bound_state_energy(sep: SeparablePotential, e_min: float = -1000.0) -> float:
    """The shallowest bound state [MeV] of V_R (the deuteron in 3S1-3D1); see
    :func:`separable_bound_states`. Raises :class:`InputError` if there is none."""
    states = separable_bound_states(sep, e_min)
    if not states:
        raise InputError("the separable potential has no bound state")
    return states[-1]


def phase_shifts_deg(kon: torch.Tensor, p0) -> torch.Tensor:
    """Phase shifts [deg] from on-shell K (B, nL, nL): (B, 1) or (B, 3) = (d-, d+, eps).

    Uses :func:`nnpot.nuclear.scattering.uncoupled_phase` / ``coupled_phases`` (Stapp bar
    phases, no Levinson branch choice: compare them modulo 180 deg).
    """
    from nnpot.nuclear.scattering import coupled_phases, uncoupled_phase

    p0 = _as64(p0, kon).reshape(-1)
    if kon.shape[-1] == 1:
        return torch.rad2deg(uncoupled_phase(kon[:, 0, 0], p0))[:, None]
    dm, dp, eps = coupled_phases(kon, p0)
    return torch.rad2deg(torch.stack([dm, dp, eps], dim=-1))


def max_phase_deviation(a_deg: torch.Tensor, b_deg: torch.Tensor) -> float:
    """max |a - b| [deg] with differences taken modulo 180 deg (phase-shift branches)."""
    d = torch.remainder(a_deg.detach() - b_deg.detach() + 90.0, 180.0) - 90.0
    return float(d.abs().max())


def est_states(rank: int, nl: int, tlab_max: float, e_pole: float | None = None) -> list:
    """EST state list of total rank ``rank``: the pole (if given), standing waves at
    n = (rank - poles)//nL CM energies E_i = T_i/2 with T_i = T_max ((i + 1/2)/n)^1.5
    (denser at low energy), and leftover ranks as extra Weinberg states at the pole (or at
    -10 MeV when there is no pole)."""
    n_pole = 1 if e_pole is not None else 0
    n_e = max(0, (rank - n_pole) // nl)
    extra = rank - n_pole - nl * n_e
    grid = [0.5 * tlab_max * ((i + 0.5) / n_e) ** 1.5 for i in range(n_e)]
    states: list = []
    if e_pole is not None:
        states.append((e_pole, 1 + extra))
    elif extra:
        states.append((-10.0, extra))
    return states + grid


def est_greedy(potential: BlockPotential, k, w, rank: int, tlab_max: float = 300.0,
               e_pole: float | None = None, n_candidates: int = 40) -> SeparablePotential:
    """EST of total rank ``rank`` with energies chosen greedily.

    Start from the pole (if given) or the lowest candidate; then repeatedly add the
    candidate CM energy (T_lab/2, T_lab on a grid up to ``tlab_max`` [MeV]) where the
    current separable phase shifts deviate most from the full ones. Leftover rank (odd
    rank in a coupled channel) becomes extra Weinberg states at the pole (or -10 MeV).
    """
    k, w = _mesh(k, w)
    nl = block_matrix(potential, k[:1], k[:1]).shape[0]
    rank = _check_rank(rank, nl * k.numel())
    tl = torch.linspace(tlab_max / n_candidates, tlab_max, n_candidates, dtype=torch.float64)
    p_c = torch.sqrt(0.5 * tl * TWO_MU)
    ref = phase_shifts_deg(full_onshell_k(potential, k, w, p_c), p_c)
    n_pole = 1 if e_pole is not None else 0
    n_e = (rank - n_pole) // nl
    extra = rank - n_pole - nl * n_e
    head: list = []
    if e_pole is not None:
        head.append((e_pole, 1 + extra))
    elif extra:
        head.append((-10.0, extra))
    chosen: list[float] = []
    if not head and n_e:
        chosen.append(float(0.5 * tl[0]))
    while len(chosen) < n_e:
        sep = est_lowrank(potential, k, w, head + chosen)
        ph = phase_shifts_deg(separable_onshell_k(sep, p_c), p_c)
        err = (torch.remainder(ph - ref + 90.0, 180.0) - 90.0).abs().amax(dim=1)
        for c in chosen:  # never pick an energy twice
            err[(0.5 * tl - c).abs() < 1e-9] = -1.0
        chosen.append(float(0.5 * tl[int(torch.argmax(err))]))
    return est_lowrank(potential, k, w, head + sorted(chosen))


def rank_report(potential: BlockPotential, k, w, rank: int, method: str = "est",
                tlab_max: float = 300.0, n_energies: int = 30,
                deuteron: bool = False, repeats: int = 5) -> dict:
    """Rank-R separable form of one channel against the full potential.

    Phase shifts on ``n_energies`` lab energies up to ``tlab_max`` [MeV] (E_cm = T_lab/2),
    max deviation [deg] (mod 180); with ``deuteron`` the bound state [MeV] of both.
    ``method``: "svd"; "weinberg" (at the deuteron pole if ``deuteron``, else -2.2 MeV);
    "est" (:func:`est_greedy`: the pole if ``deuteron``, standing waves at energies
    chosen where the error is largest). Timings (best of ``repeats``) compare the
    closed-form separable solve with the full LS solve on the same energies, both given
    V and the form factors (linear algebra only).
    """
    import time

    k, w = _mesh(k, w)
    tl = torch.linspace(tlab_max / n_energies, tlab_max, n_energies, dtype=torch.float64)
    p0 = torch.sqrt(0.5 * tl * TWO_MU)
    e_full = bound_state_energy(potential, k, w) if deuteron else None
    if method == "svd":
        sep = svd_lowrank(potential, k, w, rank)
    elif method == "weinberg":
        sep = weinberg_lowrank(potential, k, w, rank, e_full if deuteron else -2.2)
    elif method == "est":
        sep = est_greedy(potential, k, w, rank, tlab_max, e_full)
    else:
        raise InputError(f"unknown low-rank method {method!r}; use svd, weinberg or est")
    a, rhs, on = augmented_system(potential, k, w, p0)
    g_on = sep.form_factors(p0)
    separable_onshell_k(sep, p0[:1], g_on[:, :1])  # warm the mesh form factors
    t_full, t_sep = math.inf, math.inf
    for _ in range(repeats):  # linear algebra only: V and g are evaluated beforehand
        t0 = time.perf_counter()
        kf = solve_augmented(a, rhs, on)
        t_full = min(t_full, time.perf_counter() - t0)
        t0 = time.perf_counter()
        ks = separable_onshell_k(sep, p0, g_on)
        t_sep = min(t_sep, time.perf_counter() - t0)
    dev = max_phase_deviation(phase_shifts_deg(ks, p0), phase_shifts_deg(kf, p0))
    out = {"method": sep.method or method, "rank": sep.rank, "max_dphase_deg": dev,
           "tlab_max_mev": tlab_max, "n_energies": n_energies,
           "seconds_full_solve": t_full, "seconds_separable_solve": t_sep}
    if deuteron:
        out["e_d_full_mev"] = e_full
        try:
            states_sep = separable_bound_states(sep)
            out["e_d_separable_mev"] = states_sep[-1] if states_sep else None
            out["spurious_bound_states"] = len(states_sep) - 1 if states_sep else 0
        except InputError:
            out["e_d_separable_mev"] = None
    return out
