"""ckernels.empty (large kernel outputs from their own huge-page mappings): same shape,
dtype and values as torch.empty would hold once written, 2 MiB-aligned, freed with the
tensor; energies, forces and committee member forces are bit-identical whether every output
takes the mapped path (threshold 0) or none does; the C pullback refuses a pair list whose
neighbour indices fall outside the structure."""

from __future__ import annotations

import mmap

import numpy as np
import pytest
import torch

from nnpot import ckernels
from nnpot.atomistic import pullback_c
from nnpot.atomistic.descriptors import default_spec
from nnpot.atomistic.neighbors import make_batch, pair_vectors
from nnpot.errors import InputError
from nnpot.testing import scrambled_model, water_box

torch.set_num_threads(1)
mapped = pytest.mark.skipif(not hasattr(mmap, "MADV_HUGEPAGE"), reason="no MADV_HUGEPAGE")


@mapped
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.int64])
def test_empty_mapped_block(monkeypatch, dtype):
    monkeypatch.setattr(ckernels, "HUGE_MIN_BYTES", 0)
    t = ckernels.empty((37, 5, 3), dtype)
    assert t.shape == (37, 5, 3) and t.dtype == dtype and t.is_contiguous()
    assert t.data_ptr() % (2 << 20) == 0  # huge-page aligned
    t.copy_(torch.arange(t.numel()).reshape(t.shape).to(dtype))
    assert torch.equal(t.flatten(), torch.arange(t.numel()).to(dtype))


def test_empty_small_and_gpu_requests_are_plain():
    t = ckernels.empty((4, 3), torch.float64)
    assert t.shape == (4, 3) and t.dtype == torch.float64
    if torch.cuda.is_available():
        assert ckernels.empty((1 << 22,), torch.float32, "cuda").is_cuda


def _run(model, batch, members):
    out = model.compute(batch, forces=True, member_forces=members)
    return [t.detach().clone() for t in (out.energy, out.forces)
            + ((out.member_forces,) if members else ())]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("members", [1, 4])
def test_mapped_outputs_change_nothing(monkeypatch, dtype, members):
    numbers, pos, cell = water_box(3, jitter=0.2)
    batch = make_batch([(numbers, pos, cell, np.array([True] * 3))], {1: 0, 8: 1}, 4.0,
                       dtype=dtype)
    model = scrambled_model(default_spec(["H", "O"], cutoff=4.0, n_radial=4),
                            n_members=members).to(dtype)
    plain = _run(model, batch, members > 1)
    monkeypatch.setattr(ckernels, "HUGE_MIN_BYTES", 0)  # every kernel output mapped
    for a, b in zip(plain, _run(model, batch, members > 1), strict=True):
        assert torch.equal(a, b)


def test_pullback_refuses_out_of_range_neighbours():
    numbers, pos, cell = water_box(2)
    batch = make_batch([(numbers, pos, cell, np.array([True] * 3))], {1: 0, 8: 1}, 4.0)
    model = scrambled_model(default_spec(["H", "O"], cutoff=4.0, n_radial=4), n_members=1)
    rij = pair_vectors(batch.positions, batch.cell, batch.batch, batch.i, batch.j,
                       batch.shifts).detach()
    pb = model.descriptor.pullback(batch.species, batch.i, batch.j, rij)
    if not pullback_c.usable(rij):
        pytest.skip("C pullback unavailable")
    pb.j = batch.j.clone()
    pb.j[5] = len(numbers)  # one past the last atom (the kernel's inputs are built lazily)
    with pytest.raises(InputError, match="outside"):
        pullback_c.atoms(pb, torch.ones(1, len(numbers), pb.features.shape[1],
                                        dtype=rij.dtype), virial=False)
