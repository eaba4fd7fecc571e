"""Symmetry functions: fast == slow reference, dscribe agreement, smoothness, invariances,
spec serialisation, the n2p2 parser and bad-input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list

from nnpot.atomistic.descriptors import (
    DescriptorSpec,
    SymmetryFunctions,
    cutoff_function,
    default_spec,
    reference_features,
    spec_from_n2p2,
)
from nnpot.errors import InputError

torch.set_num_threads(1)

MIXED = dict(
    elements=("H", "O"),
    radial=((0.5, 0.0), (1.3, 1.2), (0.0, 0.0)),
    angular=(
        ("G5", 0.1, 1.0, 1.0, 0.0),
        ("G5", 0.2, 4.0, -1.0, 0.5),
        ("G4", 0.1, 2.0, 1.0, 0.3),
        ("G4", 0.05, 1.0, -1.0, 0.0),
        ("G5", 0.1, 1.5, -1.0, 0.0),  # non-integer zeta: triplet path
        ("G5", 0.3, 3.0, 1.0, 0.9),
    ),
)


def pair_list(atoms, cutoff, dtype=torch.float64):
    """Full, centre-sorted pair list with differentiable r_ij = r_j - r_i + S·cell."""
    i, j, S = neighbor_list("ijS", atoms, cutoff)
    order = np.argsort(i, kind="stable")
    i, j, S = i[order], j[order], S[order]
    pos = torch.tensor(atoms.positions, dtype=dtype, requires_grad=True)
    cell = torch.tensor(np.array(atoms.cell), dtype=dtype)
    rij = pos[j] - pos[i] + torch.tensor(S, dtype=dtype) @ cell
    species = torch.tensor([0 if s == "H" else 1 for s in atoms.get_chemical_symbols()])
    return species, torch.tensor(i), torch.tensor(j), rij, pos


def random_molecule(seed, n=8, box=4.0):
    rng = np.random.default_rng(seed)
    while True:
        pos = rng.uniform(0, box, (n, 3))
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(n)
        if d.min() > 0.7:
            break
    return Atoms("H" * (n // 2) + "O" * (n - n // 2), positions=pos)


def small_triclinic_cell(seed):
    """Three atoms in a triclinic cell smaller than the cutoff: self images, repeated j."""
    rng = np.random.default_rng(seed)
    cell = np.array([[2.6, 0.0, 0.0], [0.7, 2.4, 0.0], [0.3, -0.5, 2.8]])
    frac = np.array([[0.0, 0.0, 0.0], [0.45, 0.1, 0.3], [0.2, 0.6, 0.7]])
    frac += rng.uniform(-0.05, 0.05, frac.shape)
    return Atoms("HOH", scaled_positions=frac, cell=cell, pbc=True)


def both(spec, atoms, dtype=torch.float64):
    species, i, j, rij, pos = pair_list(atoms, spec.cutoff, dtype)
    fast = SymmetryFunctions(spec)(species, i, j, rij)
    ref = reference_features(spec, species, i, j, rij)
    return fast, ref, pos


def close(a, b, tol):
    """max |a - b| <= tol · max(1, max |b|), detached."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


@pytest.mark.parametrize("cutoff_kind", ["cosine", "polynomial"])
@pytest.mark.parametrize("system", ["molecule", "periodic"])
def test_fast_equals_reference_values_and_gradients(cutoff_kind, system):
    spec = DescriptorSpec(cutoff=3.2 if system == "molecule" else 2.8,
                          cutoff_function=cutoff_kind, **MIXED)
    atoms = random_molecule(3) if system == "molecule" else small_triclinic_cell(4)
    fast, ref, pos = both(spec, atoms)
    assert fast.shape == (len(atoms), spec.n_features())
    assert ref.abs().max() > 0.1  # the comparison is not vacuous
    assert close(fast, ref, 1e-10)
    w = torch.randn(fast.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hessian = system == "molecule"  # the reference's double backward is slow: molecule only
    g_plain, = torch.autograd.grad((fast * w).sum(), pos, retain_graph=True)  # MD path
    g_fast, = torch.autograd.grad((fast * w).sum(), pos, retain_graph=True, create_graph=True)
    g_ref, = torch.autograd.grad((ref * w).sum(), pos, retain_graph=hessian,
                                 create_graph=hessian)
    assert g_ref.abs().max() > 0.1
    assert close(g_plain, g_ref, 1e-10)
    assert close(g_fast, g_ref, 1e-10)
    if not hessian:
        return
    # second derivatives (force training differentiates the forces again)
    v = torch.randn(pos.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    h_fast, = torch.autograd.grad((g_fast * v).sum(), pos, retain_graph=True)
    h_ref, = torch.autograd.grad((g_ref * v).sum(), pos)
    assert close(h_fast, h_ref, 1e-10)


@pytest.mark.parametrize("zetas", [(1,), (2,), (1, 2, 3, 5)])
def test_factorised_route_all_degrees_three_elements(zetas):
    """Moment degrees L = 1, 2, 5 (top/low monomial bookkeeping) and three elements."""
    spec = default_spec(["H", "C", "O"], cutoff=3.5, n_radial=2, zetas=zetas,
                        angular_etas=(0.3,))
    rng = np.random.default_rng(9)
    while True:
        pos = rng.uniform(0, 3.5, (7, 3))
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(7)
        if d.min() > 0.8:
            break
    atoms = Atoms("HCOHCOH", positions=pos)
    i, j, S = neighbor_list("ijS", atoms, spec.cutoff)
    order = np.argsort(i, kind="stable")
    p = torch.tensor(pos, requires_grad=True)
    ii, jj = torch.tensor(i[order]), torch.tensor(j[order])
    rij = p[jj] - p[ii]
    species = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    fast = SymmetryFunctions(spec)(species, ii, jj, rij)
    ref = reference_features(spec, species, ii, jj, rij)
    assert close(fast, ref, 1e-10)
    g_fast, = torch.autograd.grad(fast.sum(), p, retain_graph=True)
    g_ref, = torch.autograd.grad(ref.sum(), p)
    assert close(g_fast, g_ref, 1e-10)


def test_batched_jacobian_matches_one_backward_per_feature():
    """is_grads_batched (vmap over the hand-written backwards) = one backward per feature."""
    spec = DescriptorSpec(cutoff=3.2, **MIXED)
    species, i, j, rij, _ = pair_list(random_molecule(3), spec.cutoff)
    rij = rij.detach().requires_grad_(True)
    g = SymmetryFunctions(spec)(species, i, j, rij)
    n, nf = g.shape
    eye = torch.eye(nf, dtype=g.dtype).unsqueeze(1).expand(nf, n, nf)
    loop = torch.stack([torch.autograd.grad(g, rij, grad_outputs=eye[f], retain_graph=True)[0]
                        for f in range(nf)])
    batched, = torch.autograd.grad(g, rij, grad_outputs=eye, is_grads_batched=True)
    assert loop.abs().max() > 0.1
    assert close(batched, loop, 1e-12)


def test_periodic_cell_has_self_images_and_repeated_neighbours():
    atoms = small_triclinic_cell(4)
    _, i, j, _, _ = pair_list(atoms, 2.8)
    assert bool((i == j).any())  # an atom sees its own periodic image
    keys = list(zip(i.tolist(), j.tolist(), strict=True))
    assert len(set(keys)) < len(keys)  # one j appears with several shifts


def test_default_spec_is_factorisable_n2p2_sized_and_matches_reference():
    spec = default_spec(["O", "H"])
    assert spec.elements == ("H", "O")
    assert all(a[0] == "G5" and a[2] == int(a[2]) for a in spec.angular)
    assert 27 <= spec.n_features() <= 45
    plan = SymmetryFunctions(spec).plan
    assert plan.trip == []  # everything on the factorised route
    fast, ref, _ = both(spec, random_molecule(5, n=6, box=3.5))
    assert close(fast, ref, 1e-10)


def test_agrees_with_dscribe_acsf():
    from dscribe.descriptors import ACSF

    rc = 5.0
    g2 = [[0.5, 0.0], [1.0, 1.2], [0.2, 2.5]]
    g4 = [[0.3, 2.0, 1.0], [0.1, 1.0, -1.0], [0.05, 4.0, -1.0]]
    g5 = [[0.3, 2.0, 1.0], [0.02, 1.0, -1.0]]
    acsf = ACSF(r_cut=rc, g2_params=g2, g4_params=g4, g5_params=g5, species=["H", "O"])
    spec = DescriptorSpec(elements=("H", "O"), cutoff=rc, radial=tuple(map(tuple, g2)),
                          angular=tuple(("G4", e, z, lam, 0.0) for e, z, lam in g4)
                          + tuple(("G5", e, z, lam, 0.0) for e, z, lam in g5))
    for atoms in (random_molecule(7, n=7), small_triclinic_cell(2)):
        ours = SymmetryFunctions(spec)(*pair_list(atoms, rc)[:4]).detach().numpy()
        theirs = acsf.create(atoms) if not atoms.pbc.any() else ACSF(
            r_cut=rc, g2_params=g2, g4_params=g4, g5_params=g5, species=["H", "O"],
            periodic=True).create(atoms)
        # dscribe: per species [G1, G2...], then per species pair [G4..., G5...]
        n_rad = len(g2)
        keep = [c for c in range(theirs.shape[1]) if c not in (0, n_rad + 1)]
        np.testing.assert_allclose(ours, theirs[:, keep], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["cosine", "polynomial"])
def test_cutoff_function_smooth(kind):
    rc = 4.0
    r = torch.tensor([rc - 1e-4, rc, rc + 0.3, 0.0], dtype=torch.float64, requires_grad=True)
    f = cutoff_function(r, rc, kind)
    df, = torch.autograd.grad(f.sum(), r, create_graph=True)
    assert f[0] < 1e-8 and f[1] == 0 and f[2] == 0 and f[3] == 1
    assert abs(df[0]) < 1e-3 and abs(df[1]) < 1e-12 and df[2] == 0
    if kind == "polynomial":  # C2: second derivative vanishes too
        d2f, = torch.autograd.grad(df[0], r)
        assert abs(d2f[0]) < 1e-2


def test_features_and_forces_continuous_as_neighbour_crosses_cutoff():
    spec = DescriptorSpec(cutoff=3.0, **MIXED)
    out = []
    for x in (3.0 - 1e-5, 3.0 + 1e-5):  # atom 2 moves across the cutoff of atom 0
        atoms = Atoms("HOH", positions=[[0, 0, 0], [0.0, 1.0, 0.0], [x, 0.0, 0.0]])
        species, i, j, rij, pos = pair_list(atoms, spec.cutoff)
        g = SymmetryFunctions(spec)(species, i, j, rij)
        grad, = torch.autograd.grad(g.sum(), pos)
        out.append((g.detach(), grad))
    assert torch.allclose(out[0][0], out[1][0], atol=1e-8)
    assert torch.allclose(out[0][1], out[1][1], atol=1e-3)
    # r_jk crosses the cutoff while r_ij, r_ik stay inside (G4's third cutoff factor)
    out = []
    for a in (3.0 / math.sqrt(2) - 1e-6, 3.0 / math.sqrt(2) + 1e-6):
        atoms = Atoms("OHH", positions=[[0, 0, 0], [a, 0, 0], [0, a, 0]])
        species, i, j, rij, pos = pair_list(atoms, spec.cutoff)
        g = SymmetryFunctions(spec)(species, i, j, rij)
        grad, = torch.autograd.grad(g.sum(), pos)
        out.append((g.detach(), grad))
    assert torch.allclose(out[0][0], out[1][0], atol=1e-8)
    assert torch.allclose(out[0][1], out[1][1], atol=1e-3)


def test_invariances():
    spec = DescriptorSpec(cutoff=3.5, **MIXED)
    atoms = random_molecule(11, n=9)
    base = SymmetryFunctions(spec)(*pair_list(atoms, spec.cutoff)[:4]).detach()
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    moved = atoms.copy()
    moved.positions = atoms.positions @ q.T + np.array([1.3, -2.2, 0.7])
    rot = SymmetryFunctions(spec)(*pair_list(moved, spec.cutoff)[:4]).detach()
    assert torch.allclose(rot, base, rtol=1e-10, atol=1e-12)
    perm = np.array([2, 0, 3, 1, 6, 4, 8, 5, 7])  # H among H (0-3), O among O (4-8)
    assert (np.array(atoms.get_chemical_symbols())[perm] == atoms.get_chemical_symbols()).all()
    shuffled = atoms[perm]
    per = SymmetryFunctions(spec)(*pair_list(shuffled, spec.cutoff)[:4]).detach()
    assert torch.allclose(per, base[perm], rtol=1e-10, atol=1e-12)


def test_batch_of_disjoint_structures_and_isolated_atoms():
    spec = DescriptorSpec(cutoff=3.0, **MIXED)
    a, b = random_molecule(1, n=6), small_triclinic_cell(3)
    sa, ia, ja, ra, _ = pair_list(a, 3.0)
    sb, ib, jb, rb, _ = pair_list(b, 3.0)
    sf = SymmetryFunctions(spec)
    n = len(a)
    batch = sf(torch.cat([sa, sb]), torch.cat([ia, ib + n]), torch.cat([ja, jb + n]),
               torch.cat([ra, rb]))
    assert torch.allclose(batch, torch.cat([sf(sa, ia, ja, ra), sf(sb, ib, jb, rb)]))
    lone = Atoms("HO", positions=[[0, 0, 0], [10, 0, 0]])  # no neighbours at all
    out = sf(*pair_list(lone, 3.0)[:4])
    assert out.shape == (2, spec.n_features()) and bool((out == 0).all())


def test_float32_follows_dtype_and_agrees():
    spec = default_spec(["H", "O"], cutoff=4.0)
    atoms = random_molecule(2, n=8)
    f64 = SymmetryFunctions(spec)(*pair_list(atoms, 4.0, torch.float64)[:4])
    f32 = SymmetryFunctions(spec)(*pair_list(atoms, 4.0, torch.float32)[:4])
    assert f32.dtype == torch.float32
    assert torch.allclose(f32.double(), f64, rtol=1e-4, atol=1e-5)


def test_spec_round_trip_names_and_columns():
    spec = DescriptorSpec(cutoff=3.2, cutoff_function="polynomial", **MIXED,
                          centre_columns={"H": [0, 1, 2], "O": [3, 5]})
    again = DescriptorSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.to_dict() == spec.to_dict()
    assert len(spec.feature_names()) == spec.n_features() == 2 * 3 + 3 * 6
    assert len(set(spec.feature_names())) == spec.n_features()
    assert spec.columns_for("O") == [3, 5]
    d = default_spec(["H"])
    assert d.columns_for("H") == list(range(d.n_features()))
    assert DescriptorSpec.from_dict(d.to_dict()) == d


N2P2 = """
# water-like sample, lengths in Bohr
cutoff_type 1 0.0
symfunction_short H 2 H 0.001 0.0 12.0
symfunction_short H 2 O 0.001 0.0 12.0
symfunction_short O 2 H 0.010 0.0 12.0
symfunction_short O 2 O 0.001 0.0 12.0
symfunction_short H 3 O H 0.07 1.0 1.0 12.0
symfunction_short O 3 H H 0.07 -1.0 4.0 12.0  0.5
symfunction_short O 9 H O 0.02 1.0 2.0 12.0
"""


def test_n2p2_parser():
    spec = spec_from_n2p2(["O", "H"], N2P2, length_unit="bohr")
    bohr = 0.52917721
    assert spec.elements == ("H", "O") and spec.cutoff_function == "cosine"
    assert spec.cutoff == pytest.approx(12.0 * bohr, rel=1e-6)
    assert [p[0] for p in spec.radial] == pytest.approx([0.001 / bohr**2, 0.01 / bohr**2])
    assert spec.angular[0][:4] == ("G4", pytest.approx(0.07 / bohr**2), 1.0, 1.0)
    assert spec.angular[1][2:] == (4.0, -1.0, pytest.approx(0.5 * bohr))
    assert spec.angular[2][0] == "G5"
    names = spec.feature_names()
    h_names = [names[c] for c in spec.columns_for("H")]
    o_names = [names[c] for c in spec.columns_for("O")]
    assert len(h_names) == 3 and len(o_names) == 4
    assert any(n.startswith("G4[H-O]") for n in h_names)
    assert any(n.startswith("G4[H-H]") and "lambda=-1" in n for n in o_names)
    assert any(n.startswith("G5[H-O]") for n in o_names)
    assert DescriptorSpec.from_dict(spec.to_dict()) == spec
    poly = spec_from_n2p2(["H", "O"], N2P2.replace("cutoff_type 1", "cutoff_type 6"))
    assert poly.cutoff_function == "polynomial" and poly.cutoff == 12.0


@pytest.mark.parametrize("text", [
    "symfunction_short H 2 H 0.1 0.0 6.0\nsymfunction_short H 2 H 0.1 0.0 5.0",  # 2 cutoffs
    "symfunction_short H 2 C 0.1 0.0 6.0",  # element not in list
    "symfunction_short H 12 H 0.1 0.0 6.0",  # unsupported type
    "symfunction_short H 2 H 0.1",  # truncated
    "cutoff_type 2 0.0\nsymfunction_short H 2 H 0.1 0.0 6.0",  # tanh cutoff
    "# nothing here",
])
def test_n2p2_parser_rejects_bad_text(text):
    with pytest.raises(InputError):
        spec_from_n2p2(["H", "O"], text)


@pytest.mark.parametrize("kwargs", [
    dict(elements=("H", "Xx"), cutoff=5.0, radial=((1.0, 0.0),)),  # unknown element
    dict(elements=("O", "H"), cutoff=5.0, radial=((1.0, 0.0),)),  # not sorted by Z
    dict(elements=("H",), cutoff=-1.0, radial=((1.0, 0.0),)),  # negative cutoff
    dict(elements=("H",), cutoff=float("nan"), radial=((1.0, 0.0),)),
    dict(elements=("H",), cutoff=5.0, angular=(("G5", 0.1, 1.0, 0.5, 0.0),)),  # lambda
    dict(elements=("H",), cutoff=5.0, angular=(("G3", 0.1, 1.0, 1.0, 0.0),)),  # kind
    dict(elements=("H",), cutoff=5.0, angular=(("G4", 0.1, 0.5, 1.0, 0.0),)),  # zeta < 1
    dict(elements=("H",), cutoff=5.0, radial=((-1.0, 0.0),)),  # negative eta
    dict(elements=("H",), cutoff=5.0),  # no functions
    dict(elements=("H",), cutoff=5.0, cutoff_function="tanh", radial=((1.0, 0.0),)),
    dict(elements=("H",), cutoff=5.0, radial=((1.0, 0.0),), centre_columns={"H": [3]}),
    dict(elements=("H",), cutoff=5.0, radial=((1.0, 0.0),), centre_columns={"O": [0]}),
])
def test_bad_spec_raises_input_error(kwargs):
    with pytest.raises(InputError):
        DescriptorSpec(**kwargs)


def test_bad_from_dict_and_columns_for():
    d = default_spec(["H"]).to_dict()
    with pytest.raises(InputError):
        DescriptorSpec.from_dict({**d, "bogus": 1})
    with pytest.raises(InputError):
        DescriptorSpec.from_dict({**d, "spec_version": 99})
    with pytest.raises(InputError):
        default_spec(["H"]).columns_for("O")
