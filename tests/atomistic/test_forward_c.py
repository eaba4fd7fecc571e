"""The C slot-sum and G5 kernels (forward_c) equal the torch slot sums (descriptors_moments,
the reference), FastPlan._g5 and the descriptors built on them, in float64 and float32, on
a periodic water box, a molecule with isolated atoms, atoms without any neighbour and four
elements with some absent around some centres; 1 thread = 2 threads; model energies and
forces are the same with and without C kernels, forces are −∇E by finite differences on
the C path, and the torch path runs whenever a gradient is wanted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnpot.atomistic import forward_c
from nnpot.atomistic.descriptors import DescriptorSpec, SymmetryFunctions, default_spec
from nnpot.atomistic.descriptors_moments import Layout, run_sums_torch
from nnpot.atomistic.neighbors import make_batch, pair_vectors
from nnpot.testing import fd_forces_of, scrambled_model, water_box

torch.set_num_threads(1)

needs_c = pytest.mark.skipif(forward_c.library() is None,
                             reason="C kernels unavailable (no compiler or disabled)")

HO = {1: 0, 8: 1}
HCNO = {1: 0, 6: 1, 7: 2, 8: 3}
SPECS = {
    "default": lambda els: default_spec(els, cutoff=4.0, n_radial=4),
    # polynomial cutoff, η = 0 radial, ζ up to 4, a G4 (triplet route, not in the slot sums)
    "mixed": lambda els: DescriptorSpec(
        elements=tuple(els), cutoff=3.5, cutoff_function="polynomial",
        radial=((0.5, 0.0), (1.3, 1.2), (0.0, 0.0)),
        angular=(("G5", 0.1, 1.0, 1.0, 0.0), ("G5", 0.2, 4.0, -1.0, 0.5),
                 ("G4", 0.1, 2.0, 1.0, 0.3), ("G5", 0.3, 3.0, 1.0, 0.9))),
    "radial-only": lambda els: DescriptorSpec(elements=tuple(els), cutoff=3.5,
                                              radial=((0.5, 0.0), (1.3, 1.2))),
    "zeta-8": lambda els: default_spec(els, cutoff=3.5, n_radial=2, zetas=(8,)),
}


def cluster(seed=1):
    """16 atoms of H, C, O at least 1 Å apart in a 5 Å cube, an H 3 Å outside it and an N
    3 Å beyond that H (so N is absent around most centres, and N sees only that H)."""
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < 16:
        p = rng.uniform(0, 5, 3)
        if all(np.linalg.norm(p - q) > 1.0 for q in pos):
            pos.append(p)
    pos += [np.array([-3.0, 2.5, 2.5]), np.array([-6.0, 2.5, 2.5])]
    return np.array([1, 6, 8, 1] * 4 + [1, 7]), np.array(pos)


def systems(dtype=torch.float64):
    """name -> (batch, elements, cutoff of the pair list)."""
    numbers, pos, cell = water_box(jitter=0.2)
    mol = (np.array([8, 1, 1, 1, 8]),
           np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0], [12.0, 0, 0], [0, -13.0, 0]]),
           np.zeros((3, 3)))
    lone = (np.array([1, 8]), np.array([[0.0, 0, 0], [9.0, 0, 0]]), np.zeros((3, 3)))
    cn, cp = cluster()
    off = np.zeros(3, bool)
    return {"water-box": (make_batch([(numbers, pos, cell, np.ones(3, bool))], HO, 4.0,
                                     dtype=dtype), ["H", "O"]),
            "molecule": (make_batch([(*mol, off)], HO, 4.0, dtype=dtype), ["H", "O"]),
            "no-neighbours": (make_batch([(*lone, off)], HO, 4.0, dtype=dtype), ["H", "O"]),
            "four-elements": (make_batch([(cn, cp, np.zeros((3, 3)), off)], HCNO, 4.0,
                                         dtype=dtype), ["H", "C", "N", "O"])}


def rel(a, b):
    scale = float(b.abs().max()) if b.numel() else 0.0
    return float((a - b).abs().max()) / scale if scale > 0 else float((a - b).abs().sum())


def inputs(system, spec, dtype):
    b, els = systems(dtype)[system]
    sf = SymmetryFunctions(SPECS[spec](els))
    rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts).detach()
    return b, sf, rij, len(els)


@needs_c
@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("system", ["water-box", "molecule", "no-neighbours", "four-elements"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_c_slot_sums_equal_torch(spec, system, dtype, tol):
    b, sf, rij, E = inputs(system, spec, dtype)
    n, kern = b.species.shape[0], sf.plan.kernel
    out = forward_c.slot_sums(rij, kern, b.species, b.i, b.j, n, E)
    ref = run_sums_torch(rij, kern, Layout(b.species, b.i, b.j, n, E))
    counts = torch.zeros(n, E, dtype=torch.int64).index_put_(
        (b.i, b.species[b.j]), torch.ones_like(b.i), accumulate=True)
    if system == "no-neighbours":
        assert b.i.numel() == 0
    if system == "four-elements":  # some centres lack a present element, N has one pair
        assert bool((counts == 0).any()) and bool((counts.sum(0) > 0).all())
        assert int(counts[b.species == 2].sum()) == 1
    for o, r in zip(out, ref, strict=True):
        assert o.dtype == dtype and o.shape == r.shape
        assert rel(o, r) < tol
    rad = out[0]
    if system != "no-neighbours":
        assert float(rad.abs().max()) > 0.1
    # a centre without neighbours of element E inside the cutoff (the pair list may hold
    # pairs up to 4 Å, beyond the 3.5 Å of some specs) has exactly zero sums for E
    inside = (rij.norm(dim=1) < sf.spec.cutoff).to(torch.int64)
    near = torch.zeros(n, E, dtype=torch.int64).index_put_(
        (b.i, b.species[b.j]), inside, accumulate=True)
    assert float(rad[near == 0].abs().sum()) == 0.0
    if sf.plan.kernel.n_chan:
        assert float(out[2][near == 0].abs().sum()) == 0.0


@needs_c
@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_descriptors_through_c_equal_torch(spec, dtype, tol, monkeypatch):
    """Full features with no graph (C slot sums and C G5 contraction) equal the torch
    path's (NNPOT_NO_C_FORWARD=1), and the C kernels really ran."""
    calls = {"slot_sums": 0, "g5": 0}

    def spy(name):
        real = getattr(forward_c, name)

        def wrapped(*args):
            calls[name] += 1
            return real(*args)
        return wrapped

    for name in calls:
        monkeypatch.setattr(forward_c, name, spy(name))
    for system in ("water-box", "four-elements"):
        b, sf, rij, _ = inputs(system, spec, dtype)
        with torch.no_grad():
            fast = sf(b.species, b.i, b.j, rij)
        seen = dict(calls)
        assert seen["slot_sums"] > 0 and (seen["g5"] > 0) == bool(sf.plan.fact)
        monkeypatch.setenv("NNPOT_NO_C_FORWARD", "1")
        assert not forward_c.usable(rij)
        ref = sf(b.species, b.i, b.j, rij)
        monkeypatch.delenv("NNPOT_NO_C_FORWARD")
        assert calls == seen
        assert float(ref.abs().max()) > 0.1 and rel(fast, ref) < tol


@needs_c
@pytest.mark.parametrize("spec", ["default", "mixed", "zeta-8"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_c_g5_equals_torch(spec, dtype, tol):
    """The C contraction of the moments into G5 columns equals FastPlan._g5 in torch (ten
    element pairs for four elements; a centre lacking an element gets its exact zeros)."""
    b, sf, rij, E = inputs("four-elements", spec, dtype)
    n, plan = b.species.shape[0], sf.plan
    _, dsq, mom = run_sums_torch(rij, plan.kernel, Layout(b.species, b.i, b.j, n, E))
    fast = forward_c.g5(plan, dsq, mom)
    ref = plan._g5(rij, dsq.clone().requires_grad_(True), mom).detach()  # graph: torch
    assert fast.shape == ref.shape == (n, E * (E + 1) // 2, len(plan.fact))
    assert float(ref.abs().max()) > 1e-3 and rel(fast, ref) < tol
    counts = torch.zeros(n, E, dtype=torch.int64).index_put_(
        (b.i, b.species[b.j]), torch.ones_like(b.i), accumulate=True)
    pa, pb = (torch.tensor([p[k] for p in plan.pairs]) for k in (0, 1))
    lack = (counts[:, pa] == 0) | (counts[:, pb] == 0)  # [n, pair]
    assert bool(lack.any()) and float(fast[lack].abs().sum()) == 0.0


@needs_c
def test_threads_agree():
    """Each centre is done by one thread in a fixed order: identical on 1 and 2 threads."""
    b, sf, rij, E = inputs("water-box", "default", torch.float64)
    args = (rij, sf.plan.kernel, b.species, b.i, b.j, b.species.shape[0], E)
    one = forward_c.slot_sums(*args)
    torch.set_num_threads(2)
    try:
        two = forward_c.slot_sums(*args)
    finally:
        torch.set_num_threads(1)
    for a, r in zip(two, one, strict=True):
        assert torch.equal(a, r)
    g1 = forward_c.g5(sf.plan, one[1], one[2])
    torch.set_num_threads(2)
    try:
        g2 = forward_c.g5(sf.plan, one[1], one[2])
    finally:
        torch.set_num_threads(1)
    assert torch.equal(g1, g2)


@needs_c
def test_bad_pair_lists_fall_back():
    """Pairs not sorted by centre, or an index out of range: None (the torch path runs)."""
    b, sf, rij, E = inputs("water-box", "default", torch.float64)
    n, kern = b.species.shape[0], sf.plan.kernel
    assert forward_c.slot_sums(rij, kern, b.species, b.i, b.j, n, E) is not None
    flip = torch.arange(b.i.shape[0] - 1, -1, -1)
    assert forward_c.slot_sums(rij[flip], kern, b.species, b.i[flip], b.j[flip], n, E) is None
    j_bad = b.j.clone()
    j_bad[5] = n
    assert forward_c.slot_sums(rij, kern, b.species, b.i, j_bad, n, E) is None
    sp_bad = b.species.clone()
    sp_bad[0] = E
    assert forward_c.slot_sums(rij, kern, sp_bad, b.i, b.j, n, E) is None
    i_bad = b.i.clone()
    i_bad[-1] = n
    assert forward_c.slot_sums(rij, kern, b.species, i_bad, b.j, n, E) is None


def tiny_model(spec):
    return scrambled_model(spec, n_members=2)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-11), (torch.float32, 2e-5)])
def test_model_same_with_and_without_c_kernels(dtype, tol, monkeypatch):
    """Energies, forces and stress of NNP.compute equal with C kernels (C forward + C
    pullback), with the C forward alone switched off, and with none (NNPOT_NO_CKERNELS=1)."""
    b, els = systems(dtype)["water-box"]
    model = tiny_model(SPECS["mixed"](els)).to(dtype)
    outs = []
    for env in ({}, {"NNPOT_NO_C_FORWARD": "1"}, {"NNPOT_NO_CKERNELS": "1"}):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        o = model.compute(b, forces=True, stress=True)
        outs.append((o.energy.detach(), o.forces.detach(), o.stress.detach()))
        for k in env:
            monkeypatch.delenv(k)
    assert float(outs[0][1].abs().max()) > 0.1
    for other in outs[1:]:
        for a, r in zip(outs[0], other, strict=True):
            assert rel(a, r) < tol


@needs_c
def test_forces_are_minus_energy_gradient_on_c_path(monkeypatch):
    """Central differences (h = 1e-5 Å) of the energy, itself computed through the C slot
    sums (forces=False: no graph), match the forces of the C pullback path; the padded
    layout is never built on this path."""
    calls = []
    real = forward_c.slot_sums

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(forward_c, "slot_sums", spy)
    numbers, pos, cell = water_box(jitter=0.2)
    model = tiny_model(SPECS["default"](["H", "O"]))
    pbc = np.ones(3, bool)
    b = make_batch([(numbers, pos, cell, pbc)], HO, 4.0)
    f = model.compute(b, forces=True).forces
    pb = model.descriptor.pullback(b.species, b.i, b.j, pair_vectors(
        b.positions, b.cell, b.batch, b.i, b.j, b.shifts))
    pb.atoms(torch.ones(1, *pb.features.shape, dtype=torch.float64))
    assert pb.layout._chunks is None  # C forward and C pullback: no padded slots
    n_calls = len(calls)
    picked = np.random.default_rng(3).choice(len(numbers), 4, replace=False)
    fd = fd_forces_of(lambda p: model.compute(make_batch([(numbers, p, cell, pbc)], HO, 4.0),
                                              forces=False).energy.detach().mean(),
                      pos, 1e-5, picked)
    assert np.abs(fd[picked] - f.detach().numpy()[picked]).max() < 1e-6 * max(
        1.0, float(f.abs().max()))
    assert len(calls) == n_calls + 24  # every energy came through the C kernel


def test_gradients_wanted_take_torch_path(monkeypatch):
    """With a graph wanted (rij requiring grad, create_graph training) the C kernel is never
    called, and double backward through the torch slot sums still works."""
    def boom(*args):
        raise AssertionError("C slot sums called although a gradient is wanted")

    monkeypatch.setattr(forward_c, "slot_sums", boom)
    monkeypatch.setattr(forward_c, "g5", boom)
    b, els = systems()["water-box"]
    model = tiny_model(SPECS["default"](els))
    out = model.compute(b, forces=True, create_graph=True)
    loss = (out.forces**2).sum()
    (gw,) = torch.autograd.grad(loss, [model.heads[0].weights[0]])  # through the forces
    assert bool(torch.isfinite(gw).all()) and float(gw.abs().max()) > 0
    rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts).requires_grad_(True)
    g = model.descriptor(b.species, b.i, b.j, rij)
    assert g.requires_grad
    (d,) = torch.autograd.grad(g.sum(), rij)
    assert float(d.abs().max()) > 0
    assert forward_c.wanted(rij.detach()) == (forward_c.library() is not None)
    assert not forward_c.wanted(rij)
    with torch.no_grad():
        assert forward_c.wanted(rij) == (forward_c.library() is not None)
