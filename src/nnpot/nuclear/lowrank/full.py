"""Full (not separable) LS solves in float64 / float32 / mixed precision, bound states,
phase shifts in degrees. Conventions: :mod:`nnpot.nuclear.lowrank`."""

from __future__ import annotations

import torch

from nnpot.errors import InputError
from nnpot.nuclear import batched
from nnpot.nuclear.lowrank._common import (
    TWO_MU,
    BlockPotential,
    _as64,
    _mesh,
    _propagator,
    block_matrix,
)


def solve_refined(a: torch.Tensor, b: torch.Tensor, iterations: int = 8,
                  tol: float = 1e-12) -> torch.Tensor:
    """Solve a x = b (float64 in/out, batched over leading dims) with a float32 LU and
    float64 iterative refinement.

    x_0 = LU32^-1 b; x_{i+1} = x_i + LU32^-1 (b - a x_i) with the residual in float64. Each
    step gains ~-log10(cond(a) eps_32) digits, so it converges to float64 accuracy when
    cond(a) << 1e7. It stops when every system's correction is below ``tol`` relative to its
    solution; systems that do not get there in ``iterations`` steps (ill-conditioned: an
    on-shell momentum next to a mesh node makes A = 1 - V D nearly singular) are solved
    again in float64, so the result is never worse than a float64 solve.
    """
    lu, piv = batched.lu_factor(a.to(torch.float32))
    x = torch.linalg.lu_solve(lu, piv, b.to(torch.float32)).to(torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    for _ in range(iterations):
        r = b - a @ x
        dx = torch.linalg.lu_solve(lu, piv, r.to(torch.float32)).to(torch.float64)
        x = x + dx
        rel = dx.abs().amax(dim=(-2, -1)) / x.abs().amax(dim=(-2, -1)).clamp_min(tiny)
        converged = rel < tol
        if bool(converged.all()):
            return x
    bad = ~converged
    if x.dim() == 2:
        return batched.solve(a, b)
    x[bad] = batched.solve(a[bad], b[bad])
    return x


def augmented_system(potential: BlockPotential, k, w, p0):
    """(A, rhs, on) of the full LS: A = 1 - V D on (k_1..k_N, p0) per energy, batched.

    A (B, M, M), rhs = V[:, :, on] (B, M, nL), M = nL (N + 1); K_on = solve(A, rhs)[on].
    """
    v, on = augmented_potential(potential, k, w, p0)
    return assemble_augmented(v, k, w, p0), v[:, :, on], on


def augmented_potential(potential: BlockPotential, k, w, p0):
    """(V, on): V (B, M, M) [MeV fm^3] on the grid (k_1..k_N, p0) of each energy, partial
    waves in blocks of N + 1, and the on-shell indices ``on`` (one per partial wave)."""
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
    return v, [(i + 1) * (n + 1) - 1 for i in range(nl)]


def assemble_augmented(v: torch.Tensor, k, w, p0) -> torch.Tensor:
    """A = 1 - V D (B, M, M) from :func:`augmented_potential`'s V: the propagator D on the
    mesh and the on-shell point of each energy (the LS work that depends on the energy)."""
    k, w = _mesh(k, w)
    p0 = _as64(p0, k).reshape(-1)
    nl = v.shape[-1] // (k.numel() + 1)
    d = _propagator(k, w, p0).repeat(1, nl)  # (B, nL (N+1))
    eye = torch.eye(v.shape[-1], dtype=v.dtype, device=v.device)
    return eye - v * d[:, None, :]


def solve_augmented(a: torch.Tensor, rhs: torch.Tensor, on, precision: str = "float64"
                    ) -> torch.Tensor:
    """On-shell K (B, nL, nL) from :func:`augmented_system` in the given precision."""
    if precision == "float64":
        kcol = batched.solve(a, rhs)
    elif precision == "float32":
        kcol = batched.solve(a.to(torch.float32), rhs.to(torch.float32)).to(torch.float64)
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


