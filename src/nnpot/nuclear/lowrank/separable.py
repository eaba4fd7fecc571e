"""Separable (rank-R) potentials: SVD, Weinberg, EST; closed-form LS and bound states.
Conventions and formulas: :mod:`nnpot.nuclear.lowrank`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from nnpot.errors import InputError
from nnpot.nuclear.lowrank._common import (
    TWO_MU,
    BlockPotential,
    _as64,
    _check_rank,
    _mesh,
    _propagator,
    block_matrix,
)


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


def _c_kernel():
    """The ``separable_onshell`` function of ``_csrc/separable.c`` (ctypes), or None."""
    import ctypes

    from nnpot import ckernels

    vp, i64 = ctypes.c_void_p, ctypes.c_int64
    return ckernels.function("separable", "separable_onshell",
                             [vp, vp, i64, vp, i64, vp, vp, vp, vp, i64, i64, ctypes.c_double,
                              vp, ctypes.c_int])


def _lam_inverse(sep) -> torch.Tensor | None:
    """Lambda^-1 (cached on ``sep``) when Lambda is well conditioned (cond < 1e8), else None:
    then the kernel solves (Lambda^-1 - Gs) x = g_on and skips the R^3 product Lambda Gs."""
    cached = getattr(sep, "_lam_inv", False)
    if cached is not False and getattr(sep, "_lam_inv_of", None) is sep.lam:
        return cached
    lam = sep.lam.detach()
    inv = None
    if torch.isfinite(lam).all() and float(torch.linalg.cond(lam)) < 1e8:
        inv = torch.linalg.inv(lam).contiguous()
        inv = 0.5 * (inv + inv.T).contiguous()  # Lambda is symmetric
    sep._lam_inv, sep._lam_inv_of = inv, sep.lam
    return inv


def _onshell_k_c(sep, p0, g_on, packed):
    """:func:`separable_onshell_k` by the C kernel ``_csrc/separable.c`` (one pass per energy:
    propagator, Gs, R x R elimination, K), or None where it does not apply: not on a CPU,
    not float64, gradients wanted, no compiler / ``NNPOT_NO_CKERNELS``, R > 64 or nL > 2."""
    ts = (sep.k, sep.w, p0, packed, g_on, sep.lam)
    if any(t.device.type != "cpu" or t.dtype != torch.float64
                                  for t in ts) or (
            torch.is_grad_enabled() and any(t.requires_grad for t in ts)):
        return None
    fn = _c_kernel()
    if fn is None:
        return None
    nl, nb, r = g_on.shape
    args = [t.detach().contiguous() for t in ts]
    laminv = _lam_inverse(sep)
    out = torch.empty(nb, nl, nl, dtype=torch.float64)
    status = fn(*(a.data_ptr() for a in args[:2]), args[0].numel(), args[2].data_ptr(), nb,
                args[3].data_ptr(), args[4].data_ptr(), args[5].data_ptr(),
                None if laminv is None else laminv.data_ptr(), r, nl, TWO_MU,
                out.data_ptr(), torch.get_num_threads())
    if status == 1:
        raise InputError("an on-shell momentum coincides with a mesh point; shift the energy")
    return out if status == 0 else None  # 2: sizes beyond the kernel, 3: singular -> torch


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
    n, r = sep.k.numel(), sep.rank
    packed = getattr(sep, "_g_outer_packed", None)  # (R(R+1)/2, N): O_j[u, v], u <= v
    if packed is None:
        iu = torch.triu_indices(r, r)
        gm = g_mesh.detach()  # the C kernel's input only (it runs without gradients)
        packed = torch.einsum("xju,xjv->uvj", gm, gm)[iu[0], iu[1]].contiguous()
        sep._g_outer_packed = packed
    fast = _onshell_k_c(sep, p0, g_on, packed)
    if fast is not None:
        return fast
    outer = getattr(sep, "_g_outer", None)  # (N, R^2): sum_L g_a^L(k_j) g_b^L(k_j)
    if outer is None:
        outer = torch.einsum("xjr,xjs->jrs", g_mesh, g_mesh).reshape(n, r * r)
        sep._g_outer = outer
    d = _propagator(sep.k, sep.w, p0)  # (B, N + 1)
    # Gs for all energies as one (B, N) @ (N, R^2) product, plus the on-shell term
    gs = (d[:, :n] @ outer).view(-1, r, r) \
        + d[:, n, None, None] * torch.einsum("xbr,xbs->brs", g_on, g_on)
    eye = torch.eye(r, dtype=p0.dtype, device=p0.device)
    # K = g_on^T (1 - Lambda Gs)^-1 Lambda g_on: solve for the nL columns Lambda g_on only
    x = torch.linalg.solve(eye - sep.lam @ gs, sep.lam @ g_on.permute(1, 2, 0))  # (B, R, nL)
    return torch.einsum("xbr,bry->bxy", g_on, x)


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


