"""Lanczos ground states in float64, float32 and mixed precision (device-agnostic torch).

``lanczos`` is the textbook algorithm with full re-orthogonalisation (twice, classical
Gram-Schmidt), so it is robust for the few hundred iterations a ground state needs:
v_{j+1} beta_j = H v_j - alpha_j v_j - beta_{j-1} v_{j-1}, Ritz values from the tridiagonal
T_j, convergence when the residual |beta_j y_j[-1]| of the lowest Ritz pair is below
``tol`` (MeV). The vectors live on the operator's device, in the dtype of the start vector.

Mixed precision (``ground_state(..., precision="mixed")``): the Lanczos run uses the
float32 operator (matrix-vector products and vectors in float32: half the memory traffic)
to a residual of ~1e-4 MeV; the energy is then the float64 Rayleigh quotient
E = <x|H|x>/<x|x> of the float32 Ritz vector x, evaluated with the float64 operator (one
float64 product, float64 accumulation). Its error is second order in the vector error,
|E - E_0| <= |r|^2/gap with the float64 residual r = H x - E x (reported).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["lanczos", "LanczosResult", "ground_state"]


@dataclass
class LanczosResult:
    """Lowest eigenvalue [MeV], its vector, iterations and the final residual [MeV]."""

    energy: float
    vector: torch.Tensor
    iterations: int
    residual: float
    seconds: float = 0.0
    matvecs: int = 0


def lanczos(matvec: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor,
            tol: float = 1e-9, max_iter: int = 400, check_every: int = 5) -> LanczosResult:
    """Lowest eigenpair of a symmetric operator by Lanczos with full re-orthogonalisation."""
    t0 = time.perf_counter()
    dim = v0.shape[0]
    max_iter = min(max_iter, dim)
    basis = torch.zeros(max_iter + 1, dim, dtype=v0.dtype, device=v0.device)
    alpha = torch.zeros(max_iter, dtype=torch.float64)
    beta = torch.zeros(max_iter, dtype=torch.float64)
    basis[0] = v0 / torch.linalg.norm(v0)
    theta, y, res = float("nan"), None, float("inf")
    m = 0
    for j in range(max_iter):
        w = matvec(basis[j])
        a = torch.dot(basis[j], w)
        w = w - a * basis[j]
        if j > 0:
            w = w - beta[j - 1].to(w.dtype) * basis[j - 1]
        for _ in range(2):  # full re-orthogonalisation
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        b = torch.linalg.norm(w)
        alpha[j] = float(a)
        beta[j] = float(b)
        m = j + 1
        if (m % check_every == 0) or m == max_iter or float(b) < 1e-300:
            t = torch.diag(alpha[:m]) + torch.diag(beta[: m - 1], 1) + torch.diag(beta[: m - 1], -1)
            ev, evec = torch.linalg.eigh(t)
            theta, y = float(ev[0]), evec[:, 0]
            res = abs(float(beta[m - 1]) * float(y[-1]))
            if res < tol or float(b) < 1e-300:
                break
        if float(b) == 0.0:
            break
        basis[j + 1] = w / b
    if y is None or y.shape[0] != m:
        t = torch.diag(alpha[:m]) + torch.diag(beta[: m - 1], 1) + torch.diag(beta[: m - 1], -1)
        ev, evec = torch.linalg.eigh(t)
        theta, y = float(ev[0]), evec[:, 0]
        res = abs(float(beta[m - 1]) * float(y[-1]))
    vec = basis[:m].T @ y.to(basis.dtype).to(basis.device)
    vec = vec / torch.linalg.norm(vec)
    return LanczosResult(theta, vec, m, res, time.perf_counter() - t0, m)


def ground_state(hamiltonian, precision: str = "float64", tol: float = 1e-9,
                 tol32: float = 1e-4, max_iter: int = 400, seed: int = 0,
                 v0: torch.Tensor | None = None) -> LanczosResult:
    """Ground state of a :class:`~nnpot.nuclear.threebody.hamiltonian.JacobiHamiltonian`.

    ``precision``: "float64" (residual target ``tol`` MeV), "float32" (float32 throughout;
    residual target ``tol32`` MeV) or "mixed" (float32 Lanczos, float64 Rayleigh quotient;
    the returned residual is the float64 one).
    The start vector is fixed by ``seed`` (deterministic) unless ``v0`` is given.
    """
    if precision not in ("float64", "float32", "mixed"):
        raise ValueError(f"precision must be float64, float32 or mixed, got {precision!r}")
    h64 = hamiltonian if hamiltonian.dtype == torch.float64 else \
        hamiltonian.to(dtype=torch.float64)
    if v0 is None:
        gen = torch.Generator().manual_seed(seed)
        v0 = torch.rand(h64.dim, generator=gen, dtype=torch.float64) + 0.5
    v0 = v0.to(h64.device)
    if precision == "float64":
        return lanczos(h64.matvec, v0.to(torch.float64), tol=tol, max_iter=max_iter)
    h32 = h64.to(dtype=torch.float32)
    r32 = lanczos(h32.matvec, v0.to(torch.float32), tol=tol32, max_iter=max_iter)
    if precision == "float32":
        return r32
    t0 = time.perf_counter()
    x = r32.vector.to(torch.float64)
    hx = h64.matvec(x)
    energy = float(torch.dot(x, hx) / torch.dot(x, x))
    res = float(torch.linalg.norm(hx - energy * x) / torch.linalg.norm(x))
    return LanczosResult(energy, x, r32.iterations, res,
                         r32.seconds + (time.perf_counter() - t0), r32.matvecs + 1)
