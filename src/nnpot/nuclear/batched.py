"""Batched dense solves on the CPU that avoid a failing multi-threaded batched LU.

The torch 2.13 CPU build (MKL 2024.2) returns garbage pivots from a *batched* LU of float64
or float32 matrices larger than ~150 × 150 when more than one thread runs (found on a
2-core AMD EPYC: ``RuntimeError: Pivots given to lu_solve must all be greater or equal to
1`` or, worse, silently wrong solutions; a single matrix, smaller matrices and one thread
are fine, and so is a batched ``lu_solve`` given good pivots). Coupled LS systems on
meshes of ~80 points and more are that large. These wrappers factorise such batches one
matrix at a time and are ``torch.linalg``'s own functions everywhere else
(``tests/nuclear/test_nuc_batched.py``).
"""

from __future__ import annotations

import torch

#: matrices up to this size go through torch's batched LU as they are
SAFE_SIZE = 128


def _per_matrix(a: torch.Tensor) -> bool:
    return (a.device.type == "cpu" and a.dim() > 2 and a.shape[-1] > SAFE_SIZE
            and torch.get_num_threads() > 1 and a.shape[:-2].numel() > 1)


def solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.linalg.solve(a, b)`` for a (*, n, n) and b (*, n, k) (batch dims broadcast);
    differentiable (per-matrix solves where the batched LU is unsafe)."""
    if not _per_matrix(a) or b.dim() != a.dim():
        return torch.linalg.solve(a, b)
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    n, k = a.shape[-1], b.shape[-1]
    a2 = a.expand(*batch, n, n).reshape(-1, n, n)
    b2 = b.expand(*batch, n, k).reshape(-1, n, k)
    x = torch.stack([torch.linalg.solve(a2[i], b2[i]) for i in range(a2.shape[0])])
    return x.reshape(*batch, n, k)


def lu_factor(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.lu_factor(a)`` (LU, pivots), per matrix where the batched LU is unsafe
    (the batched ``torch.linalg.lu_solve`` with these pivots is fine)."""
    if not _per_matrix(a):
        return torch.linalg.lu_factor(a)
    flat = a.reshape(-1, *a.shape[-2:])
    parts = [torch.linalg.lu_factor(flat[i]) for i in range(flat.shape[0])]
    lu = torch.stack([p[0] for p in parts]).reshape(a.shape)
    piv = torch.stack([p[1] for p in parts]).reshape(*a.shape[:-2], a.shape[-1])
    return lu, piv
