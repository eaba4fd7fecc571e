"""Neighbour lists (vesin) and batches of structures as flat tensors.

The pair list is computed once in NumPy by vesin; the pair vectors are rebuilt in torch,

    r_ij = r_j - r_i + S_ij · h,            (h: cell, rows are lattice vectors)

so autograd through ``positions`` gives forces and through a strain ``ε`` applied to both
positions and cell, ``r -> r (1 + ε)``, gives the stress ``σ = (1/V) ∂E/∂ε`` (ASE's sign).
Pairs form a *full* list (both directions), sorted by the centre ``i``; cells smaller than
the cutoff are handled by vesin's periodic images (an atom may neighbour itself).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import vesin

from nnpot import ckernels


def neighbor_pairs(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list within ``cutoff`` (Å): centre ``i``, neighbour ``j``, integer
    cell shifts ``S`` (n_pairs, 3), sorted by ``i`` (stable)."""
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    box = np.asarray(cell, dtype=np.float64) if pbc.any() else np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, s = nl.compute(points=positions, box=box, periodic=[bool(p) for p in pbc],
                         quantities="ijS")
    order = np.argsort(i, kind="stable")
    return (i[order].astype(np.int64), j[order].astype(np.int64),
            s[order].astype(np.int64))


class Batch(NamedTuple):
    """Structures as flat tensors (atoms of all structures concatenated).

    species: (N,) index into the model's elements; positions (N, 3) Å; cell (B, 3, 3) Å;
    pbc (B, 3); batch (N,) structure of each atom; n_atoms (B,); i, j (P,) global atom
    indices of each pair (sorted by i); shifts (P, 3) integer cell shifts (as float).
    """

    species: torch.Tensor
    positions: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    batch: torch.Tensor
    n_atoms: torch.Tensor
    i: torch.Tensor
    j: torch.Tensor
    shifts: torch.Tensor

    @property
    def n_structures(self) -> int:
        return int(self.cell.shape[0])

    def to(self, device=None, dtype=None) -> Batch:
        out = []
        for t in self:
            if t.is_floating_point():
                out.append(t.to(device=device, dtype=dtype))
            else:
                out.append(t.to(device=device))
        return Batch(*out)


def make_batch(
    structures: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    species_of: dict[int, int],
    cutoff: float,
    dtype: torch.dtype = torch.float64,
    pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> Batch:
    """Collate structures ``(numbers, positions, cell, pbc)`` into a :class:`Batch`.

    ``species_of`` maps atomic number -> species index. ``pairs`` may give precomputed
    ``(i, j, shifts)`` per structure (local indices); otherwise vesin computes them.
    """
    species, pos, cells, pbcs, bidx, nat, ii, jj, ss = ([] for _ in range(9))
    offset = 0
    for b, (numbers, positions, cell, pbc) in enumerate(structures):
        n = len(numbers)
        species.append(np.array([species_of[int(z)] for z in numbers], dtype=np.int64))
        pos.append(np.asarray(positions, dtype=np.float64))
        cells.append(np.asarray(cell, dtype=np.float64))
        pbcs.append(np.asarray(pbc, dtype=bool))
        bidx.append(np.full(n, b, dtype=np.int64))
        nat.append(n)
        i, j, s = pairs[b] if pairs is not None else neighbor_pairs(positions, cell, pbc,
                                                                    cutoff)
        ii.append(i + offset)
        jj.append(j + offset)
        ss.append(s)
        offset += n
    return Batch(
        species=torch.from_numpy(np.concatenate(species)),
        positions=torch.from_numpy(np.concatenate(pos)).to(dtype),
        cell=torch.from_numpy(np.stack(cells)).to(dtype),
        pbc=torch.from_numpy(np.stack(pbcs)),
        batch=torch.from_numpy(np.concatenate(bidx)),
        n_atoms=torch.tensor(nat, dtype=torch.int64),
        i=torch.from_numpy(np.concatenate(ii)),
        j=torch.from_numpy(np.concatenate(jj)),
        shifts=torch.from_numpy(np.concatenate(ss)).to(dtype),
    )


def _pair_vectors_c(positions, cell, batch, i, j, shifts):
    """The C kernel's r_ij, or None where it does not apply (gradients wanted, not on a
    CPU, other dtypes, no compiler / ``NNPOT_NO_CKERNELS``)."""
    if (positions.device.type != "cpu" or positions.dtype not in _PAIR_FN
            or (torch.is_grad_enabled() and (positions.requires_grad or cell.requires_grad))
            or shifts.dtype != positions.dtype or cell.dtype != positions.dtype
            or any(t.dtype != torch.int64 for t in (batch, i, j))):
        return None
    vp, i64 = ctypes.c_void_p, ctypes.c_int64
    fn = ckernels.function("pairs", _PAIR_FN[positions.dtype],
                           [vp] * 6 + [i64, vp, ctypes.c_int], restype=None)
    if fn is None:
        return None
    args = [t.contiguous() for t in (positions, cell, batch, i, j, shifts)]
    out = ckernels.empty((i.shape[0], 3), positions.dtype)  # 134 MB at 66k waters f64
    fn(*(ckernels.ptr(t) for t in args), ctypes.c_int64(i.shape[0]), ckernels.ptr(out),
       ctypes.c_int(torch.get_num_threads()))
    return out


_PAIR_FN = {torch.float64: "pair_vectors_f64", torch.float32: "pair_vectors_f32"}


def pair_vectors(
    positions: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, i: torch.Tensor,
    j: torch.Tensor, shifts: torch.Tensor,
) -> torch.Tensor:
    """r_ij = r_j − r_i + S_ij·h_b (Å), differentiable in positions and cell.

    When no gradient is needed (forces from the descriptor pullback) on a CPU, one fused C
    pass (:mod:`nnpot.ckernels`, ``_csrc/pairs.c``) replaces the five array passes
    of the torch expression: at 66k water atoms 4.6 -> ~1 µs per atom in float64."""
    fused = _pair_vectors_c(positions, cell, batch, i, j, shifts)
    if fused is not None:
        return fused
    if cell.shape[0] == 1:  # one structure (MD, calculators): no per-pair cell gather
        shift_vec = shifts @ cell[0]
    else:
        shift_vec = torch.einsum("pk,pkl->pl", shifts, cell[batch[i]])
    return positions.index_select(0, j) - positions.index_select(0, i) + shift_vec


def strained(
    positions: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, strain: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a (B, 3, 3) strain ε: r -> r (1 + ε), h -> h (1 + ε), per structure."""
    pos = positions + torch.einsum("nk,nkl->nl", positions, strain[batch])
    cel = cell + torch.bmm(cell, strain)
    return pos, cel
