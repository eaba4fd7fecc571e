"""The fused committee-network kernel (nnpot.atomistic.mlp_c) equals autograd through the
same networks: atomic energies, aleatoric variances and every member's ∂E_m/∂G, for silu
and tanh, float32 and float64, hidden widths around the kernel's register tile, per-centre
column subsets, an element without atoms, and saturated activations (|a| > 60)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nnpot.atomistic import mlp_c
from nnpot.atomistic.descriptors import default_spec
from nnpot.atomistic.model import NNP

torch.set_num_threads(1)


def model(activation: str, dtype, hidden=(9, 5), columns=False, aleatoric=True,
          weight_scale=0.7) -> NNP:
    spec = default_spec(["H", "O"], cutoff=4.0, n_radial=3)
    if columns:  # n2p2-like: each element its own subset of columns
        f = spec.n_features()
        spec = dataclasses.replace(spec, centre_columns={"H": [0, 2, 3, f - 1],
                                                         "O": list(range(1, f, 2))})
    m = NNP(spec, hidden=hidden, activation=activation, n_members=3, seed=1,
            aleatoric=aleatoric).to(dtype)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in m.heads.parameters():  # O(1) weights: nonlinear regime
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * weight_scale)
        m.feature_mean.copy_(torch.randn(m.feature_mean.shape, generator=gen) * 0.3)
        m.feature_std.copy_(torch.rand(m.feature_std.shape, generator=gen) + 0.5)
        m.energy_scale.fill_(1.7)
        m.e_ref.copy_(torch.tensor([-13.6, -432.1]))
    return m


def both_routes(m: NNP, species, g, monkeypatch):
    fast = m._member_gradients(species, g)
    with monkeypatch.context() as mp:
        mp.setattr(mlp_c, "usable", lambda head, ref: False)
        slow = m._member_gradients(species, g)
    return fast, slow


def check(fast, slow, tol):
    for a, b in zip(fast, slow, strict=True):
        if b is None:
            assert a is None
            continue
        assert a.shape == b.shape
        scale = b.detach().abs().max().clamp_min(1.0)
        assert float((a - b.detach()).abs().max() / scale) < tol


def skip_unless_built(m, dtype):
    if not mlp_c.usable(m.heads[0], torch.zeros(1, dtype=dtype)):
        pytest.skip("the C network kernel is not built here")


@pytest.mark.parametrize("activation", ["silu", "tanh"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("hidden", [(9, 5), (8,), (3, 17, 2)])
def test_kernel_equals_autograd(activation, dtype, tol, hidden, monkeypatch):
    m = model(activation, dtype, hidden)
    skip_unless_built(m, dtype)
    gen = torch.Generator().manual_seed(2)
    species = torch.tensor([0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1])
    g = torch.rand(len(species), m.spec.n_features(), generator=gen,
                   dtype=torch.float64).to(dtype) * 3
    fast, slow = both_routes(m, species, g, monkeypatch)
    check(fast, slow, tol)
    # the gradient is a real one: ∂E_1/∂G of atom 4 (its largest feature component) by
    # central differences of that atom's energy (f64)
    if dtype == torch.float64:
        h, a = 1e-6, 4
        f = int(fast[2][1, a].abs().argmax())
        gp, gm = g.clone(), g.clone()
        gp[a, f] += h
        gm[a, f] -= h
        ep = m._member_gradients(species, gp)[0][1, a]
        em = m._member_gradients(species, gm)[0][1, a]
        fd = float((ep - em) / (2 * h))
        assert abs(fd - float(fast[2][1, a, f])) < 1e-6 * abs(fd) + 1e-8


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_column_subsets_and_missing_element(dtype, tol, monkeypatch):
    m = model("silu", dtype, columns=True, aleatoric=False)
    skip_unless_built(m, dtype)
    gen = torch.Generator().manual_seed(3)
    g = torch.rand(11, m.spec.n_features(), generator=gen, dtype=torch.float64).to(dtype)
    for species in (torch.tensor([0, 1] * 5 + [1]), torch.zeros(11, dtype=torch.int64)):
        fast, slow = both_routes(m, species, g, monkeypatch)
        check(fast, slow, tol)
        # columns an element does not use get exactly zero gradient
        unused = sorted(set(range(g.shape[1])) - set(m.columns(0).tolist()))
        assert torch.all(fast[2][:, species == 0][:, :, unused] == 0)


@pytest.mark.parametrize("activation", ["silu", "tanh"])
def test_saturated_activations(activation, monkeypatch):
    """Pre-activations far beyond |a| = 60 (where exp(-|a|) underflows the kernel's
    clamp): outputs and gradients stay finite and equal to autograd's."""
    m = model(activation, torch.float64, weight_scale=40.0)
    skip_unless_built(m, torch.float64)
    gen = torch.Generator().manual_seed(4)
    species = torch.tensor([0, 1, 1, 0, 0, 1, 0, 0, 1])
    g = torch.rand(9, m.spec.n_features(), generator=gen, dtype=torch.float64) * 5
    fast, slow = both_routes(m, species, g, monkeypatch)
    assert all(torch.isfinite(t).all() for t in fast if t is not None)
    check(fast, slow, 1e-12)
