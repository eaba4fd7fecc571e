"""Optimised rank-R separable potentials: EST as the start, phase shifts as the target.

Conventions of :mod:`nnpot.nuclear.lowrank` (MeV, fm^-1, V in MeV fm^3, E_cm = T_lab/2).
The rank-R form keeps the Nystrom structure of :class:`SeparablePotential`,

    V_R(p', p) = g(p') Lambda g(p)^T,   g^L(p) = sum_{L', i} V_{LL'}(p, q_i) c_{L'i, .},

so it is evaluated at any momentum exactly as the EST / SVD / Weinberg forms are. Starting
from the greedy EST form (Ernst, Shakin, Thaler, PRC 8, 46 (1973); fitting separable forms
to phase shifts is in the spirit of Haidenbauer & Plessas, PRC 30, 1822 (1984)), the
coefficients c (nL n_nodes x R) and the symmetric Lambda (R x R) are optimised so that the
closed-form K-matrix

    K(p0) = g(p0) tau g(p0)^T,  tau = (1 - Lambda Gs(p0))^-1 Lambda

(module :mod:`nnpot.nuclear.lowrank`) reproduces the full solution's phase shifts
delta_i(T) [rad] (1 per uncoupled channel; delta-, delta+, epsilon (Stapp) for a coupled
one) on :func:`tlab_grid`. First the least-squares loss

    L = ( mean_{T, i} (delta_R,i(T) - delta_i(T))^2 )^(1/2)   (differences mod pi)

is minimised, then :data:`LAWSON_STAGES` weighted ones, L = (sum u_n d_n^2)^(1/2) with
Lawson's update u_n <- u_n |d_n| / sum(...) between stages, which moves the fit towards
the minimax (max |d|) solution. Each stage is L-BFGS (strong Wolfe line search), with
torch autograd through the R x R solve, float64, deterministic. The parameters are
well-conditioned changes: the start is first re-gauged (V_R unchanged) so that the
form factors are orthonormal on the mesh, D g0 = Q (QR), D = diag(sqrt(w_j) k_j),
Lambda0 -> T Lambda0 T^T; then c = c0 + W S^-1 X with D V(mesh, nodes) = U S W^T (singular
values above :data:`SV_CUT` times the largest), i.e. X is the change of D g on the mesh in
an orthonormal basis, and Lambda = Lambda0 + (Y + Y^T)/2. (Optimising the raw Nystrom
coefficients of the EST form fails: its nearly dependent form factors with large Lambda
make the loss rough on the 1e-8 scale.)

The deuteron pole (``e_pole`` [MeV] < 0) is kept exact by construction: with
Gp = Gs(e_pole) = sum_{L,j} g^L(k_j)^T w_j k_j^2 g^L(k_j)/(e_pole - e_j) (negative definite,
Gp = -C C^T) the eigenvalues eta of Lambda Gp are those of S = -C^T Lambda C; the one
nearest 1 (eigenvector v) is moved to 1 exactly by Lambda -> Lambda - (1 - eta) C^-T v v^T C^-1
(symmetric, the other eigenvalues unchanged), inside the differentiable forward pass.
The best iterate (by the max deviation on the training grid, the start included) is
returned, so the result is never worse than its start there.
"""

from __future__ import annotations

import math

import torch

from nnpot.errors import InputError
from nnpot.nuclear.lowrank._common import (
    TWO_MU,
    BlockPotential,
    _mesh,
    _propagator,
    block_matrix,
)
from nnpot.nuclear.lowrank.full import full_onshell_k, phase_shifts_deg
from nnpot.nuclear.lowrank.separable import SeparablePotential

#: number of Lawson-weighted stages after the least-squares one
LAWSON_STAGES = 8
#: singular values of D V(mesh, nodes) below SV_CUT times the largest are not varied
SV_CUT = 1e-10


def _phases_rad(kon: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
    return torch.deg2rad(phase_shifts_deg(kon, p0))


def _pole_fix(lam: torch.Tensor, g_mesh: torch.Tensor, k, w, e_pole: float) -> torch.Tensor:
    """Lambda with an eigenvalue of Lambda Gs(e_pole) exactly 1 (module docstring)."""
    den = w * k * k / (e_pole - k * k / TWO_MU)  # < 0
    gp = torch.einsum("xjr,j,xjs->rs", g_mesh, den, g_mesh)
    c = torch.linalg.cholesky(-0.5 * (gp + gp.T))
    s = -c.T @ lam @ c
    eta, vec = torch.linalg.eigh(0.5 * (s + s.T))
    m = int(torch.argmin((eta - 1.0).abs()))
    u = torch.linalg.solve_triangular(c.T, vec[:, m:m + 1], upper=True)  # C^-T v
    return lam - (1.0 - eta[m]) * (u @ u.T)


def optimised_lowrank(potential: BlockPotential, k, w, rank: int, tlab_max: float = 300.0,
                      e_pole: float | None = None, n_energies: int = 300,
                      init: SeparablePotential | None = None, iterations: int = 400,
                      warm: SeparablePotential | None = None) -> SeparablePotential:
    """Rank-R separable form optimised on the phase shifts up to ``tlab_max`` [MeV].

    ``potential``: block potential (nL, nL, n_out, n_in) [MeV fm^3]; (k, w) the mesh
    [fm^-1]. Training energies: :func:`tlab_grid` (``tlab_max``, ``n_energies``).
    ``e_pole`` [MeV] < 0: a bound state kept exact (the deuteron in 3S1-3D1); the start is
    then an EST form containing the pole. ``init``: the starting form (default
    :func:`est_greedy` with the same rank, ``tlab_max`` and pole); its rank and nodes are
    kept. ``warm``: a lower-rank optimised form of the same potential and mesh to grow
    from (:func:`grow`: its columns plus the last ones of the start, with a zero Lambda
    block, so the start reproduces ``warm`` and the result is never worse than it on the
    training grid). ``iterations``: L-BFGS iterations of the least-squares stage (each Lawson stage
    gets ``iterations // LAWSON_STAGES``). Returns a
    :class:`SeparablePotential` (method "opt") with symmetric Lambda.
    """
    from nnpot.nuclear.lowrank.report import est_greedy, tlab_grid

    k, w = _mesh(k, w)
    if not (math.isfinite(tlab_max) and tlab_max > 0):
        raise InputError(f"tlab_max must be a positive energy in MeV, got {tlab_max}")
    if e_pole is not None and not (math.isfinite(e_pole) and e_pole < 0):
        raise InputError(f"the pole energy must be below 0 MeV, got {e_pole}")
    if int(iterations) != iterations or iterations < 0:
        raise InputError(f"iterations must be a non-negative integer, got {iterations}")
    sep0 = init if init is not None else est_greedy(potential, k, w, rank, tlab_max, e_pole)
    if warm is not None:
        sep0 = grow(warm, sep0)
    nl, n = sep0.nl, k.numel()
    tl = tlab_grid(tlab_max, n_energies)
    p0 = torch.sqrt(0.5 * tl * TWO_MU)
    ref = _phases_rad(full_onshell_k(potential, k, w, p0), p0)
    vm = block_matrix(potential, k, sep0.nodes)  # (nL N, nL nn)
    vo = block_matrix(potential, p0, sep0.nodes)  # (nL B, nL nn)
    prop = _propagator(k, w, p0)  # (B, N + 1)
    dk = (torch.sqrt(w) * k).repeat(nl)
    # orthonormal directions for D g on the mesh: D vm = U S W^T, c = c0 + W S^-1 X
    _, sv, wt = torch.linalg.svd(dk[:, None] * vm, full_matrices=False)
    keep = sv > SV_CUT * sv[0]
    basis = wt[keep].T / sv[keep]
    # gauge: unit D-norm form factors, Lambda -> N Lambda N
    lam0 = 0.5 * (sep0.lam + sep0.lam.T)
    r = sep0.rank
    _, tri = torch.linalg.qr(dk[:, None] * (vm @ sep0.coef))  # D g0 = Q T
    coef0 = torch.linalg.solve_triangular(tri, sep0.coef, upper=True, left=False)
    lam0 = tri @ lam0 @ tri.T
    # zero rows (a grown start): distinct tiny diagonal entries, since degenerate (zero)
    # eigenvalues of -C^T Lambda C would make the pole fix's eigh gradient NaN
    free = (lam0 == 0).all(dim=1)
    if bool(free.any()):
        tiny = 1e-9 * lam0.abs().max() * torch.linspace(1.0, 2.0, r, dtype=k.dtype,
                                                         device=k.device)
        lam0 = lam0 + torch.diag(tiny * free)
    r = lam0.shape[0]
    eye = torch.eye(r, dtype=k.dtype, device=k.device)

    def build(x: torch.Tensor, y: torch.Tensor):
        coef = coef0 + basis @ x
        lam = lam0 + 0.5 * (y + y.T)
        g_mesh = (vm @ coef).reshape(nl, n, r)
        if e_pole is not None:
            lam = _pole_fix(lam, g_mesh, k, w, e_pole)
        return coef, lam, g_mesh

    def deviations(x, y) -> torch.Tensor:
        try:
            return _deviations(x, y)
        except torch.linalg.LinAlgError:  # a line-search trial far off: reject it
            return torch.full_like(ref, math.nan)

    def _deviations(x, y) -> torch.Tensor:
        coef, lam, g_mesh = build(x, y)
        g_on = (vo @ coef).reshape(nl, p0.numel(), r)
        gs = torch.einsum("xjr,bj,xjs->brs", g_mesh, prop[:, :n], g_mesh) \
            + prop[:, n, None, None] * torch.einsum("xbr,xbs->brs", g_on, g_on)
        tau = torch.linalg.solve(eye - lam @ gs, lam.expand(p0.numel(), -1, -1))
        kon = torch.einsum("xbr,brs,ybs->bxy", g_on, tau, g_on)
        d = _phases_rad(kon, p0) - ref
        return torch.remainder(d + 0.5 * math.pi, math.pi) - 0.5 * math.pi

    x = torch.zeros((basis.shape[1], r), dtype=k.dtype, device=k.device, requires_grad=True)
    y = torch.zeros(lam0.shape, dtype=k.dtype, device=k.device, requires_grad=True)
    best = {"max": math.inf, "x": x.detach().clone(), "y": y.detach().clone()}

    def record(d: torch.Tensor) -> None:
        dmax = float(d.detach().abs().max())
        if math.isfinite(dmax) and dmax < best["max"]:
            best.update(max=dmax, x=x.detach().clone(), y=y.detach().clone())

    with torch.no_grad():
        record(deviations(x, y))
    u = None  # Lawson weights (None: uniform)
    for stage in range(1 + LAWSON_STAGES if iterations else 0):
        opt = torch.optim.LBFGS([x, y], lr=1.0, history_size=50,
                                max_iter=int(iterations) if stage == 0 else
                                max(1, int(iterations) // LAWSON_STAGES),
                                tolerance_grad=1e-14, tolerance_change=1e-16,
                                line_search_fn="strong_wolfe")

        def closure(u=u):
            x.grad, y.grad = None, None
            d = deviations(x, y)
            if not bool(torch.isfinite(d).all()):
                return torch.full((), math.inf, dtype=d.dtype)
            record(d)
            loss = (d * d).mean() if u is None else (u * d * d).sum()
            loss = torch.sqrt(loss)
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():  # Lawson: u <- u |d| (normalised), from the stage's end point
            d = deviations(x, y).abs()
            if not bool(torch.isfinite(d).all()):
                break
            u = (d / d.numel()) if u is None else u * d
            u = u / u.sum()
    with torch.no_grad():
        coef, lam, _ = build(best["x"], best["y"])
    return SeparablePotential(potential, k, w, sep0.nodes, coef.detach(),
                              (0.5 * (lam + lam.T)).detach(), nl, "opt")


def grow(small: SeparablePotential, big: SeparablePotential) -> SeparablePotential:
    """Rank-R form equal to ``small`` (rank r < R) with the last R - r form factors of
    ``big`` added under a zero Lambda block: V_R = V_small exactly. Both must share the
    potential and mesh; the nodes become the union of theirs."""
    if small.nl != big.nl or small.rank >= big.rank or not torch.equal(small.k, big.k):
        raise InputError("grow needs a lower-rank form on the same mesh and channel")
    nodes = torch.unique(torch.cat([small.nodes, big.nodes]))
    nn, r, nl = nodes.numel(), big.rank, big.nl
    coef = torch.zeros(nl * nn, r, dtype=big.coef.dtype, device=big.coef.device)
    for sep, cols in ((small, slice(0, small.rank)), (big, slice(small.rank, r))):
        idx = torch.searchsorted(nodes, sep.nodes)
        m = sep.nodes.numel()
        for li in range(nl):
            coef[li * nn + idx, cols] = sep.coef[li * m:(li + 1) * m, cols]
    lam = torch.zeros(r, r, dtype=big.lam.dtype, device=big.lam.device)
    lam[:small.rank, :small.rank] = small.lam
    return SeparablePotential(big.potential, big.k, big.w, nodes, coef, lam, nl, "grow")


def check_grid(tlab_max: float, n: int) -> torch.Tensor:
    """Lab energies [MeV] between those of :func:`tlab_grid` (``tlab_max``, ``n``): the
    midpoints of its evenly spaced part and of its low geometric part, for checking an
    optimised form away from the energies it was fitted on."""
    from nnpot.nuclear.lowrank.report import tlab_grid

    t = tlab_grid(tlab_max, n)
    return 0.5 * (t[1:] + t[:-1])


__all__ = ["optimised_lowrank", "grow", "check_grid", "LAWSON_STAGES", "SV_CUT"]
