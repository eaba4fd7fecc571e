"""The C pullback kernel (pullback_c) equals the torch pullback (descriptors_vjp, the
reference) for K = 1, 3, 8 cotangents in float64 and float32, on a periodic water box and
on a molecule with isolated atoms; committee forces and stress through it equal each
member's own autograd forces and stress; forces are −∇E by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnpot.atomistic import pullback_c
from nnpot.atomistic.descriptors import DescriptorSpec, SymmetryFunctions, default_spec
from nnpot.atomistic.neighbors import make_batch, pair_vectors
from nnpot.testing import fd_forces_of, scrambled_model, water_box

torch.set_num_threads(1)

needs_c = pytest.mark.skipif(pullback_c.library() is None,
                             reason="C kernels unavailable (no compiler or disabled)")

MIXED = DescriptorSpec(  # radial with η = 0, factorised G5 (ζ up to 4), a G4 (triplets)
    elements=("H", "O"), cutoff=3.5, cutoff_function="polynomial",
    radial=((0.5, 0.0), (1.3, 1.2), (0.0, 0.0)),
    angular=(("G5", 0.1, 1.0, 1.0, 0.0), ("G5", 0.2, 4.0, -1.0, 0.5),
             ("G4", 0.1, 2.0, 1.0, 0.3), ("G5", 0.3, 3.0, 1.0, 0.9)))


def systems(dtype=torch.float64):
    """Periodic water box; water + far-away H and O (centres without neighbours)."""
    numbers, pos, cell = water_box(jitter=0.2)
    mol = (np.array([8, 1, 1, 1, 8]),
           np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0], [12.0, 0, 0], [0, -13.0, 0]]),
           np.zeros((3, 3)))
    return {"water-box": make_batch([(numbers, pos, cell, np.ones(3, bool))], {1: 0, 8: 1},
                                    4.0, dtype=dtype),
            "molecule": make_batch([(*mol, np.zeros(3, bool))], {1: 0, 8: 1}, 4.0,
                                   dtype=dtype)}


SPECS = {"default": lambda: default_spec(["H", "O"], cutoff=4.0, n_radial=4),
         "mixed": lambda: MIXED,
         "radial-only": lambda: DescriptorSpec(elements=("H", "O"), cutoff=3.5,
                                               radial=((0.5, 0.0), (1.3, 1.2))),
         "zeta-8": lambda: default_spec(["H", "O"], cutoff=3.5, n_radial=2, zetas=(8,))}


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@needs_c
@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("system", ["water-box", "molecule"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_c_kernel_equals_torch_pullback(spec, system, dtype, tol):
    b = systems(dtype)[system]
    sf = SymmetryFunctions(SPECS[spec]())
    rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
    pb = sf.pullback(b.species, b.i, b.j, rij)
    n = b.species.shape[0]
    lonely = torch.bincount(b.i, minlength=n) == 0
    assert lonely.any() == (system == "molecule")
    for k in (1, 3, 8):
        gen = torch.Generator().manual_seed(k)
        cot = torch.randn(k, *pb.features.shape, generator=gen, dtype=torch.float64).to(dtype)
        grad, vir = pb.atoms(cot)
        ref_grad, ref_vir = pb.atoms_torch(cot)
        assert grad.dtype == dtype and grad.shape == (k, n, 3) and vir.shape == (k, n, 3, 3)
        assert float(ref_grad.abs().max()) > 0.1  # not vacuous
        assert rel(grad, ref_grad) < tol and rel(vir, ref_vir) < tol
        assert rel(pb.pairs(cot), pb.pairs_torch(cot)) < tol
        g_none, v_none = pb.atoms(cot, virial=False)
        assert v_none is None and torch.equal(g_none, grad)
        # isolated atoms: no gradient, no virial
        assert float(grad[:, lonely].abs().sum()) == 0.0
        assert float(vir[:, lonely].abs().sum()) == 0.0


@needs_c
def test_threads_agree():
    b = systems()["water-box"]
    sf = SymmetryFunctions(SPECS["default"]())
    rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
    pb = sf.pullback(b.species, b.i, b.j, rij)
    cot = torch.randn(8, *pb.features.shape, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(1))
    one = pb.atoms(cot)
    torch.set_num_threads(2)
    try:
        two = pb.atoms(cot)
    finally:
        torch.set_num_threads(1)
    for a, r in zip(two, one, strict=True):
        assert rel(a, r) < 1e-13


def committee(spec):
    return scrambled_model(spec, n_members=3)


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_member_forces_and_stress_equal_autograd(spec):
    """NNP.compute(member_forces=True) (one pullback, the C kernel where built) equals one
    autograd backward per member (create_graph=True never takes the pullback)."""
    model = committee(SPECS[spec]())
    numbers, pos, cell = water_box(jitter=0.2)
    mol = systems()["molecule"]
    b = make_batch([(numbers, pos, cell, np.ones(3, bool))], {1: 0, 8: 1}, 4.0)
    for batch in (b, mol):
        fast = model.compute(batch, stress=True, member_forces=True)
        slow = model.compute(batch, stress=True, member_forces=True, create_graph=True)
        assert float(slow.member_forces.detach().std(0).max()) > 1e-3  # members differ
        assert rel(fast.member_forces, slow.member_forces.detach()) < 1e-11
        torch.testing.assert_close(fast.member_stress, slow.member_stress.detach(),
                                   rtol=1e-10, atol=1e-13, equal_nan=True)


def test_member_forces_are_minus_energy_gradient():
    """Central differences of member 1's energy (h = 1e-5 Å) match its force."""
    model = committee(SPECS["default"]())
    numbers, pos, cell = water_box(jitter=0.2)
    rng = np.random.default_rng(3)
    f = model.compute(make_batch([(numbers, pos, cell, np.ones(3, bool))], {1: 0, 8: 1},
                                 4.0), member_forces=True).member_forces[1]
    picked = rng.choice(len(numbers), 4, replace=False)
    fd = fd_forces_of(lambda p: model.compute(make_batch(
        [(numbers, p, cell, np.ones(3, bool))], {1: 0, 8: 1}, 4.0), forces=False
    ).energy[1, 0].detach(), pos, 1e-5, picked)
    assert np.abs(fd[picked] - f.detach().numpy()[picked]).max() < 1e-6 * max(
        1.0, float(f.abs().max()))
