"""Batched pullbacks of the symmetry functions (descriptors_vjp) equal autograd: pair
Jacobians, K products per pair, position gradients and strain derivatives (virials), for
the factorised route, the triplet route, several chunks and the uncached path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list

from nnpot.atomistic import descriptors_moments
from nnpot.atomistic.descriptors import DescriptorSpec, SymmetryFunctions, default_spec

torch.set_num_threads(1)

MIXED = dict(  # factorised G5, G4 and non-integer-ζ G5 (triplet route) together
    elements=("H", "O"),
    radial=((0.5, 0.0), (1.3, 1.2), (0.0, 0.0)),
    angular=(("G5", 0.1, 1.0, 1.0, 0.0), ("G5", 0.2, 4.0, -1.0, 0.5),
             ("G4", 0.1, 2.0, 1.0, 0.3), ("G4", 0.05, 1.0, -1.0, 0.0),
             ("G5", 0.1, 1.5, -1.0, 0.0), ("G5", 0.3, 3.0, 1.0, 0.9)),
)


def pair_list(atoms, cutoff):
    """Full, centre-sorted pair list with r_ij = r_j - r_i + S·cell, differentiable."""
    i, j, S = neighbor_list("ijS", atoms, cutoff)
    order = np.argsort(i, kind="stable")
    i, j, S = i[order], j[order], S[order]
    pos = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
    cell = torch.tensor(np.array(atoms.cell), dtype=torch.float64)
    rij = pos[j] - pos[i] + torch.tensor(S, dtype=torch.float64) @ cell
    species = torch.tensor([0 if s == "H" else 1 for s in atoms.get_chemical_symbols()])
    return species, torch.tensor(i), torch.tensor(j), rij, pos


def random_molecule(seed, n=8, box=4.0):
    rng = np.random.default_rng(seed)
    while True:
        pos = rng.uniform(0, box, (n, 3))
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(n)
        if d.min() > 0.7:
            return Atoms("H" * (n // 2) + "O" * (n - n // 2), positions=pos)


def small_triclinic_cell(seed):
    """Three atoms in a triclinic cell smaller than the cutoff (self images, repeated j)."""
    rng = np.random.default_rng(seed)
    cell = np.array([[2.6, 0.0, 0.0], [0.7, 2.4, 0.0], [0.3, -0.5, 2.8]])
    frac = np.array([[0.0, 0.0, 0.0], [0.45, 0.1, 0.3], [0.2, 0.6, 0.7]])
    frac += rng.uniform(-0.05, 0.05, frac.shape)
    return Atoms("HOH", scaled_positions=frac, cell=cell, pbc=True)


def three_elements(seed=9):
    rng = np.random.default_rng(seed)
    while True:
        pos = rng.uniform(0, 3.5, (7, 3))
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(7)
        if d.min() > 0.8:
            return Atoms("HCOHCOH", positions=pos)


CASES = {
    "mixed-molecule": (lambda: DescriptorSpec(cutoff=3.2, **MIXED), lambda: random_molecule(3)),
    "mixed-periodic": (lambda: DescriptorSpec(cutoff=2.8, cutoff_function="polynomial", **MIXED),
                       lambda: small_triclinic_cell(4)),
    "factorised-periodic": (lambda: default_spec(["H", "O"], cutoff=3.4, n_radial=3),
                            lambda: small_triclinic_cell(2)),
    "three-elements": (lambda: default_spec(["H", "C", "O"], cutoff=3.5, n_radial=2,
                                            zetas=(1, 2, 3, 5), angular_etas=(0.3,)),
                       three_elements),
}


def setup(case):
    spec_fn, atoms_fn = CASES[case]
    spec, atoms = spec_fn(), atoms_fn()
    species, i, j, rij, pos = pair_list(atoms, spec.cutoff)
    if len(spec.elements) == 3:
        species = torch.tensor([{"H": 0, "C": 1, "O": 2}[s] for s in
                                atoms.get_chemical_symbols()])
    return SymmetryFunctions(spec), species, i, j, rij, pos


def autograd_jacobian(sf, species, i, j, rij):
    r = rij.detach().requires_grad_(True)
    g = sf(species, i, j, r)
    rows = [torch.autograd.grad(g[:, f].sum(), r, retain_graph=True)[0]
            for f in range(g.shape[1])]
    return g.detach(), torch.stack(rows, 1)


def close(a, b, tol):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_jacobian_equals_one_backward_per_feature(case):
    sf, species, i, j, rij, _ = setup(case)
    g_ref, jac_ref = autograd_jacobian(sf, species, i, j, rij)
    g, jac = sf.jacobian(species, i, j, rij)
    assert jac.shape == (len(i), g.shape[1], 3)
    assert jac_ref.abs().max() > 0.1  # not vacuous
    assert close(g, g_ref, 1e-12)
    assert close(jac, jac_ref, 1e-10)


@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_products_equal_autograd(case):
    """pairs(c) = Σ c·∂G/∂r_p; atoms(c) = ∂(Σ c·G)/∂positions and the per-centre virial
    sums to ∂(Σ c·G)/∂ε for the strain r -> r (1 + ε)."""
    sf, species, i, j, rij, pos = setup(case)
    pb = sf.pullback(species, i, j, rij)
    gen = torch.Generator().manual_seed(5)
    cot = torch.randn(3, *pb.features.shape, dtype=torch.float64, generator=gen)
    eps = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    r = rij.detach().requires_grad_(True)
    g = sf(species, i, j, r + r @ eps)
    ref_pairs, ref_eps = [], []
    for k in range(3):
        gr, ge = torch.autograd.grad((g * cot[k]).sum(), (r, eps), retain_graph=True)
        ref_pairs.append(gr)
        ref_eps.append(ge)
    g_pos = sf(species, i, j, rij)
    ref_pos = torch.stack([torch.autograd.grad((g_pos * cot[k]).sum(), pos,
                                               retain_graph=True)[0] for k in range(3)])
    grad, vir = pb.atoms(cot)
    assert close(pb.pairs(cot), torch.stack(ref_pairs, 1), 1e-10)
    assert close(grad, ref_pos, 1e-10)
    assert close(vir.sum(1), torch.stack(ref_eps), 1e-10)
    assert ref_pos.abs().max() > 0.1


def test_many_chunks_agree(monkeypatch):
    """Chunk boundaries change nothing."""
    sf, species, i, j, rij, _ = setup("three-elements")
    cot = torch.randn(2, len(species), sf.spec.n_features(), dtype=torch.float64,
                      generator=torch.Generator().manual_seed(2))
    one = sf.pullback(species, i, j, rij)
    ref = (one.jacobian(), *one.atoms(cot))
    monkeypatch.setattr(descriptors_moments, "CHUNK_SLOTS", 16)
    many = sf.pullback(species, i, j, rij)
    assert len(many.layout.chunks) > 2
    for a, b in zip((many.jacobian(), *many.atoms(cot)), ref, strict=True):
        assert close(a, b, 1e-12)


def test_atoms_without_neighbours():
    spec = default_spec(["H", "O"], cutoff=2.0, n_radial=2)
    atoms = Atoms("HO", positions=[[0, 0, 0], [5.0, 0, 0]])
    sf = SymmetryFunctions(spec)
    species, i, j, rij, _ = pair_list(atoms, spec.cutoff)
    g, jac = sf.jacobian(species, i, j, rij)
    assert jac.shape == (0, spec.n_features(), 3)
    assert float(g.abs().max()) == 0.0
    grad, vir = sf.pullback(species, i, j, rij).atoms(torch.ones(2, 2, spec.n_features(),
                                                                  dtype=torch.float64))
    assert grad.shape == (2, 2, 3) and float(grad.abs().max()) == 0.0
    assert vir.shape == (2, 2, 3, 3)


def test_g5_in_blocks_of_centres_changes_nothing(monkeypatch):
    from nnpot.atomistic import descriptors_fast

    sf, species, i, j, rij, pos = setup("three-elements")
    g = sf(species, i, j, rij)
    (grad,) = torch.autograd.grad(g.square().sum(), pos, retain_graph=True)
    monkeypatch.setattr(descriptors_fast, "G5_CENTRES", 2)
    g2 = sf(species, i, j, rij)
    (grad2,) = torch.autograd.grad(g2.square().sum(), pos)
    assert close(g2, g, 1e-13) and close(grad2, grad, 1e-12)
