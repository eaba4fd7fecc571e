"""The C triplet kernel (triplets_c, _csrc/triplets.c) equals the torch reference path of
descriptors_triplets: feature values and pair-vector gradients (float64 to 1e-12, float32
to 1e-5), on a periodic water box and on a sparse molecule (centres with 0 and 1
neighbours, three elements), for G4 / G5, λ = ±1, ζ = 1, 2, 3, 4, 6, 1.5 (different C
branches), r_s ≠ 0 and both cutoff functions; forces from a model on the C path are −∇E by
finite differences; double backward (create_graph) falls back to torch and equals the
torch path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnpot import ckernels
from nnpot.atomistic import triplets_c
from nnpot.atomistic.descriptors import DescriptorSpec
from nnpot.atomistic.descriptors_triplets import triplet_features, triplet_vjp
from nnpot.atomistic.model import NNP
from nnpot.atomistic.neighbors import make_batch, neighbor_pairs, pair_vectors
from nnpot.testing import water_box

torch.set_num_threads(1)

pytestmark = pytest.mark.skipif(ckernels.load("triplets") is None,
                                reason="no C compiler: the triplet C kernel is not built")

ANGULAR = (  # mixed G4 / G5 (every triplet kept), λ = ±1, ζ = 1, 2, 3, 4, 6, 1.5, r_s ≠ 0
    ("G4", 0.05, 1.0, -1.0, 0.0), ("G4", 0.1, 2.0, 1.0, 0.3), ("G4", 0.02, 4.0, -1.0, 0.0),
    ("G5", 0.1, 1.5, -1.0, 0.0), ("G5", 0.3, 4.0, 1.0, 0.9), ("G4", 0.2, 1.5, 1.0, 0.0),
    ("G4", 0.05, 6.0, 1.0, 0.0), ("G5", 0.1, 3.0, -1.0, 0.2),
)
G4_ONLY = tuple(p for p in ANGULAR if p[0] == "G4")  # r_jk ≥ r_c triplets dropped


def sparse_molecule():
    """H-C-O-H chain plus a far H (0 neighbours) and an H with one neighbour (O pair)."""
    pos = np.array([[0.0, 0.0, 0.0], [1.1, 0.1, 0.0], [2.3, -0.3, 0.2], [3.0, 0.5, -0.1],
                    [1.3, 1.2, 0.4], [20.0, 0.0, 0.0], [30.0, 0.0, 0.0], [30.9, 0.4, 0.0]])
    return np.array([1, 6, 8, 1, 1, 1, 8, 1]), pos, np.zeros((3, 3))


CASES = {
    "water-cosine": (water_box, ("H", "O"), {1: 0, 8: 1}, 3.5, "cosine", ANGULAR),
    "water-poly-g4": (water_box, ("H", "O"), {1: 0, 8: 1}, 3.0, "polynomial", G4_ONLY),
    "molecule-3el": (sparse_molecule, ("H", "C", "O"), {1: 0, 6: 1, 8: 2}, 2.6, "cosine",
                     ANGULAR),
}


def setup(case, dtype):
    make, elements, species_of, rc, kind, angular = CASES[case]
    numbers, pos, cell = make()
    pbc = np.array([cell.any()] * 3)
    spec = DescriptorSpec(elements=elements, cutoff=rc, cutoff_function=kind,
                          radial=((0.5, 0.0),), angular=angular)
    b = make_batch([(numbers, pos, cell, pbc)], species_of, rc, dtype=dtype)
    rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
    return spec, b, rij.detach()


def run(spec, b, rij, cot_seed=1, sparse=False, **kw):
    """Features and the gradient of Σ cot·features (cot random; with ``sparse`` about half
    of the (centre, element pair, function) entries are zero, as for n2p2 sets)."""
    r = rij.clone().requires_grad_(True)
    out = triplet_features(spec, list(spec.angular), b.species, b.i, b.j, r,
                           b.species.shape[0])
    gen = torch.Generator().manual_seed(cot_seed)
    cot = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    if sparse:
        cot = cot * (torch.rand(out.shape, generator=gen, dtype=torch.float64) < 0.5)
    cot = cot.to(rij.dtype)
    (g,) = torch.autograd.grad(out, r, cot, **kw)
    return out.detach(), g


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture
def count_c(monkeypatch):
    """Counts the calls that the C path actually served (forward, backward)."""
    calls = {"forward": 0, "backward": 0}
    for name in calls:
        orig = getattr(triplets_c, name)

        def spy(*args, _orig=orig, _name=name):
            res = _orig(*args)
            calls[_name] += res is not None
            return res

        monkeypatch.setattr(triplets_c, name, spy)
    return calls


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_c_equals_torch_float64(case, sparse, monkeypatch, count_c):
    spec, b, rij = setup(case, torch.float64)
    out_c, g_c = run(spec, b, rij, sparse=sparse)
    assert count_c == {"forward": 1, "backward": 1}
    monkeypatch.setenv("NNPOT_NO_CKERNELS", "1")
    out_t, g_t = run(spec, b, rij, sparse=sparse)
    assert count_c == {"forward": 1, "backward": 1}  # the second run was torch
    assert out_t.abs().max() > 0.1 and g_t.abs().max() > 0.1  # not vacuous
    assert rel(out_c, out_t) < 1e-12
    assert rel(g_c, g_t) < 1e-12


@pytest.mark.parametrize("case", sorted(CASES))
def test_c_float32_close_to_float64(case):
    spec, b, rij = setup(case, torch.float64)
    out_64, g_64 = run(spec, b, rij)
    out_32, g_32 = run(spec, b, rij.float())
    assert out_32.dtype == g_32.dtype == torch.float32
    assert rel(out_32, out_64) < 1e-5
    assert rel(g_32, g_64) < 1e-5


def test_sparse_centres_have_zero_rows_and_gradients():
    """Centres with 0 or 1 neighbours have no triplets: zero features, zero pair gradients."""
    spec, b, rij = setup("molecule-3el", torch.float64)
    out, g = run(spec, b, rij)
    counts = torch.bincount(b.i, minlength=b.species.shape[0])
    assert set(counts.tolist()) >= {0, 1}
    few = counts < 2
    assert out[few].abs().max() == 0 and out[~few].abs().max() > 0
    assert g[few[b.i]].abs().max() == 0


def test_thread_count_changes_nothing():
    spec, b, rij = setup("water-cosine", torch.float64)
    out1, g1 = run(spec, b, rij)
    torch.set_num_threads(2)
    try:
        out2, g2 = run(spec, b, rij)
    finally:
        torch.set_num_threads(1)
    assert torch.equal(out1, out2) and torch.equal(g1, g2)


def test_double_backward_falls_back_and_equals_torch(monkeypatch, count_c):
    """∂/∂r of (u · ∂(c·G)/∂r) through create_graph: torch backward, same as no C at all."""
    spec, b, rij = setup("water-cosine", torch.float64)
    u = torch.randn(rij.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def second():
        r = rij.clone().requires_grad_(True)
        _, g = run(spec, b, r, create_graph=True)
        return g, torch.autograd.grad((g * u).sum(), r)[0]

    g_c, h_c = second()
    assert count_c["backward"] == 0 and count_c["forward"] >= 1
    monkeypatch.setenv("NNPOT_NO_CKERNELS", "1")
    g_t, h_t = second()
    assert h_t.abs().max() > 0.1
    assert rel(g_c, g_t) < 1e-12 and rel(h_c, h_t) < 1e-12


def test_model_forces_are_minus_energy_gradient(count_c):
    """NNP on the C path (float64): F = −∂E/∂x by central differences (h = 1e-5 Å)."""
    numbers, pos, cell = water_box(n_side=2, seed=4)
    pbc = np.array([True] * 3)
    spec = DescriptorSpec(elements=("H", "O"), cutoff=3.5, radial=((0.5, 0.0), (2.0, 1.0)),
                          angular=G4_ONLY)
    model = NNP(spec, hidden=(8,), seed=2)
    species_of = {1: 0, 8: 1}

    def compute(p, forces):
        pairs = neighbor_pairs(p, cell, pbc, spec.cutoff)
        b = make_batch([(numbers, p, cell, pbc)], species_of, spec.cutoff, pairs=[pairs])
        return model.compute(b, forces=forces)

    f = compute(pos, True).forces.detach().numpy()
    assert count_c["backward"] >= 1
    h = 1e-5
    for a, c in [(0, 0), (1, 1), (5, 2), (20, 0)]:
        e = []
        for s in (1, -1):
            p = pos.copy()
            p[a, c] += s * h
            e.append(float(compute(p, False).energy.detach().sum()))
        fd = -(e[0] - e[1]) / (2 * h)
        assert abs(fd - f[a, c]) < 1e-6 * max(1.0, abs(f[a, c]))
    assert np.abs(f).max() > 1e-3


@pytest.mark.parametrize("no_c", ["0", "1"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_many_cotangents_at_once(dtype, no_c, count_c, monkeypatch):
    """triplet_vjp with K cotangents (one C call; batched autograd without C) equals K
    separate backward passes."""
    monkeypatch.setenv("NNPOT_NO_CKERNELS", no_c)
    spec, b, rij = setup("molecule-3el", dtype)
    r = rij.clone().requires_grad_(True)
    out = triplet_features(spec, list(spec.angular), b.species, b.i, b.j, r,
                           b.species.shape[0])
    gen = torch.Generator().manual_seed(7)
    cot = torch.randn(3, *out.shape, generator=gen, dtype=torch.float64).to(dtype)
    cot[1, ::2] = 0  # some centres without cotangent in one member
    many = triplet_vjp(out, r, cot)
    assert count_c["backward"] == (1 if no_c == "0" else 0)
    one = torch.stack([torch.autograd.grad(out, r, c, retain_graph=True)[0] for c in cot])
    assert many.shape == (3, *rij.shape)
    assert rel(many, one) < (1e-12 if dtype == torch.float64 else 1e-6)
