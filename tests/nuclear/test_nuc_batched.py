"""Batched solves that avoid the multi-threaded batched-LU failure of the CPU build
(nnpot.nuclear.batched): with 2 threads they agree with one matrix at a time, and the full
LS solve of a coupled channel on a 96-point mesh equals the one-thread result."""

import numpy as np
import pytest
import torch

from nnpot.nuclear import batched


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def _system(batch, n, k, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*batch, n, n, generator=g, dtype=dtype) + n * torch.eye(n, dtype=dtype)
    b = torch.randn(*batch, n, k, generator=g, dtype=dtype)
    return a, b


@pytest.mark.parametrize("batch", [(6,), (2, 3)])
def test_solve_matches_numpy_per_matrix(two_threads, batch):
    a, b = _system(batch, 200, 2)
    x = batched.solve(a, b)
    ref = np.linalg.solve(a.numpy(), b.numpy())
    assert np.abs(x.numpy() - ref).max() < 1e-12
    # broadcast right-hand side and float32
    x1 = batched.solve(a, b[..., :1, :, :] if len(batch) > 1 else b[:1])
    assert x1.shape == x.shape
    a32, b32 = a.float(), b.float()
    r32 = (a32 @ batched.solve(a32, b32) - b32).abs().max()
    assert float(r32) < 1e-3


def test_lu_factor_and_gradients(two_threads):
    a, b = _system((4,), 160, 3, seed=1)
    lu, piv = batched.lu_factor(a)
    assert int(piv.min()) >= 1 and int(piv.max()) <= 160
    x = torch.linalg.lu_solve(lu, piv, b)
    assert float((a @ x - b).abs().max()) < 1e-10
    a.requires_grad_(True)
    (ga,) = torch.autograd.grad(batched.solve(a, b).sum(), a)
    (ref,) = torch.autograd.grad(sum(torch.linalg.solve(a[i], b[i]).sum() for i in range(4)), a)
    assert torch.allclose(ga, ref, atol=1e-12)


def test_coupled_ls_on_a_fine_mesh_is_thread_independent(two_threads):
    from nnpot.nuclear.channels import get_channel
    from nnpot.nuclear.lowrank import TWO_MU, full_onshell_k
    from nnpot.nuclear.mesh import default_mesh
    from nnpot.nuclear.potential import NuclearPotential

    pot = NuclearPotential(pion={"order": "LO"})
    ch = get_channel("3S1-3D1")
    k, w = default_mesh(96)  # M = 194: above the batched-LU limit
    p0 = torch.sqrt(0.5 * torch.linspace(5.0, 300.0, 12, dtype=torch.float64) * TWO_MU)
    two = full_onshell_k(lambda x, y: pot(ch, x, y), k, w, p0)
    torch.set_num_threads(1)
    one = full_onshell_k(lambda x, y: pot(ch, x, y), k, w, p0)
    assert torch.allclose(two, one, rtol=1e-10, atol=1e-14)
