"""The fused C pair-vector kernel equals the torch expression (and is only used without
gradients), for one and for several structures with different cells."""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from nnpot import ckernels
from nnpot.atomistic import neighbors
from nnpot.atomistic.neighbors import make_batch, pair_vectors


def _batch(dtype):
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    cu.rattle(0.05, seed=1)
    tri = bulk("Cu", "fcc", a=3.6)  # primitive (non-orthogonal) cell
    mol = molecule("H2O")
    structs = [(a.numbers, a.positions, np.asarray(a.cell), a.pbc) for a in (cu, tri, mol)]
    return make_batch(structs, {1: 0, 8: 1, 29: 2}, 4.0, dtype=dtype)


def _torch_path(b):
    shift = torch.einsum("pk,pkl->pl", b.shifts, b.cell[b.batch[b.i]])
    return b.positions[b.j] - b.positions[b.i] + shift


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_equals_torch_expression(dtype):
    if ckernels.load("pairs") is None:
        pytest.skip("no C compiler here")
    b = _batch(dtype)
    with torch.no_grad():
        fused = neighbors._pair_vectors_c(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
        api = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
    assert fused is not None and fused.dtype == dtype
    ref = _torch_path(b)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(fused, ref, atol=tol, rtol=0)
    assert torch.equal(api, fused)
    # periodic images really are in there (shifts not all zero), else the test is weak
    assert bool((b.shifts != 0).any())


def test_not_used_when_gradients_are_wanted():
    b = _batch(torch.float64)
    pos = b.positions.clone().requires_grad_(True)
    assert neighbors._pair_vectors_c(pos, b.cell, b.batch, b.i, b.j, b.shifts) is None
    r = pair_vectors(pos, b.cell, b.batch, b.i, b.j, b.shifts)
    assert r.requires_grad  # autograd path: forces by backward still work
    (g,) = torch.autograd.grad(r.sum(), pos)
    assert torch.isfinite(g).all()


def test_one_thread_equals_two():
    if ckernels.load("pairs") is None:
        pytest.skip("no C compiler here")
    b = _batch(torch.float64)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = neighbors._pair_vectors_c(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
        torch.set_num_threads(2)
        two = neighbors._pair_vectors_c(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(one, two)
