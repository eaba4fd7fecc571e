"""Committee forces from one descriptor pullback (NNP.compute(member_forces=True)) equal
the autograd path (one backward per member): energies, per-member and mean forces,
per-member and mean stress, with a learned dispersion tail, the aleatoric head, and a
batch of a periodic and a molecular structure."""

from __future__ import annotations

import numpy as np
import torch

from nnpot.atomistic.descriptors import default_spec
from nnpot.atomistic.model import NNP
from nnpot.atomistic.neighbors import make_batch
from nnpot.atomistic.tails import DispersionTail

torch.set_num_threads(1)


def committee(tail: bool, aleatoric: bool) -> NNP:
    disp = None
    if tail:
        disp = DispersionTail(["O", "Ar"], np.array([[10.0, 20.0], [20.0, 40.0]]),
                              cutoff=8.0, learn=True, init_spread=0.3)
    model = NNP(default_spec(["O", "Ar"], cutoff=4.0, n_radial=4), hidden=(6, 6),
                n_members=4, seed=3, aleatoric=aleatoric, tail=disp)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in model.heads.parameters():  # O(1) weights: every feature matters
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        model.feature_std.fill_(2.0)
        model.feature_mean.fill_(0.3)
    return model


def batch():
    rng = np.random.default_rng(4)
    cell = np.array([[5.1, 0.0, 0.0], [0.6, 4.9, 0.0], [-0.4, 0.5, 5.3]])
    while True:
        frac = rng.uniform(0, 1, (5, 3))
        pos = frac @ cell
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(5)
        if d.min() > 1.6:
            break
    structures = [(np.array([8, 18, 18, 8, 18]), pos, cell, np.ones(3, bool)),
                  (np.array([18, 8, 8]), np.array([[0.0, 0, 0], [2.3, 0.4, 0], [0.5, 2.1, 0.3]]),
                   np.zeros((3, 3)), np.zeros(3, bool))]
    return make_batch(structures, {8: 0, 18: 1}, 4.0)


def check(model):
    b = batch()
    fast = model.compute(b, forces=True, stress=True, member_forces=True)
    slow = model.compute(b, forces=True, stress=True, member_forces=True, create_graph=True)
    assert float(slow.member_forces.detach().std(0).max()) > 1e-3  # members differ
    for name in ("energy", "energies", "forces", "member_forces", "log_var", "features"):
        a, r = getattr(fast, name), getattr(slow, name)
        if r is None:
            assert a is None
            continue
        torch.testing.assert_close(a.detach(), r.detach(), rtol=1e-10, atol=1e-12)
    for name in ("stress", "member_stress"):  # NaN rows (molecule) must match too
        torch.testing.assert_close(getattr(fast, name).detach(), getattr(slow, name).detach(),
                                   rtol=1e-10, atol=1e-12, equal_nan=True)
    assert torch.isfinite(fast.member_stress[:, 0]).all()
    assert torch.isnan(fast.member_stress[:, 1]).all()


def test_committee_pullback_equals_autograd_with_learned_tail_and_aleatoric_head():
    check(committee(tail=True, aleatoric=True))


def test_committee_pullback_equals_autograd_plain():
    check(committee(tail=False, aleatoric=False))


def test_committee_float32_agrees_with_float64():
    model = committee(tail=False, aleatoric=False)
    b = batch()
    f64 = model.compute(b, member_forces=True).member_forces
    f32 = model.to(torch.float32).compute(b.to(dtype=torch.float32),
                                          member_forces=True).member_forces
    assert f32.dtype == torch.float32
    rel = float((f32.double() - f64).abs().max() / f64.abs().max())
    assert rel < 1e-4


def test_per_element_columns_and_a_missing_element():
    """centre_columns (each element uses a subset of the columns) and a structure without
    one of the elements take the scatter path of ∂E/∂G; it must still equal autograd."""
    import dataclasses

    spec = default_spec(["O", "Ar"], cutoff=4.0, n_radial=4)
    nf = spec.n_features()
    spec = dataclasses.replace(spec, centre_columns={"O": list(range(0, nf, 2)),
                                                     "Ar": list(range(1, nf))})
    model = NNP(spec, hidden=(6, 6), n_members=3, seed=5)
    gen = torch.Generator().manual_seed(12)
    with torch.no_grad():
        for p in model.heads.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
    check(model)
    only_ar = make_batch([(np.array([18, 18, 18]), np.array([[0.0, 0, 0], [2.3, 0.4, 0],
                                                             [0.5, 2.1, 0.3]]),
                           np.zeros((3, 3)), np.zeros(3, bool))], {8: 0, 18: 1}, 4.0)
    full = committee(False, False)
    fast = full.compute(only_ar, member_forces=True)
    slow = full.compute(only_ar, member_forces=True, create_graph=True)
    torch.testing.assert_close(fast.member_forces, slow.member_forces.detach(), rtol=1e-10,
                               atol=1e-12)
