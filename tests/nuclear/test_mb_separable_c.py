"""The C kernel of the closed-form separable LS solve equals the torch path."""

import pytest
import torch

from nnpot import ckernels
from nnpot.errors import InputError
from nnpot.nuclear.channels import get_channel
from nnpot.nuclear.lowrank import TWO_MU, est_lowrank, separable_onshell_k, svd_lowrank
from nnpot.nuclear.lowrank import separable as sep_mod
from nnpot.nuclear.lowrank.report import tlab_grid
from nnpot.nuclear.mesh import default_mesh
from nnpot.nuclear.potential import NuclearPotential

pytestmark = pytest.mark.skipif(ckernels.load("separable") is None, reason="no C compiler")


def _forms():
    pot = NuclearPotential(pion={"order": "LO"})
    k, w = default_mesh(24)
    out = []
    for name, rank in (("1S0", 5), ("3S1-3D1", 6)):
        ch = get_channel(name)
        v = lambda a, b, ch=ch: pot(ch, a, b)
        out.append(svd_lowrank(v, k, w, rank))
        out.append(est_lowrank(v, k, w, [20.0, 80.0, 200.0] if name == "1S0"
                               else [-2.2, 30.0, 150.0]))
    return out


def _torch_k(sep, p0, g_on, monkeypatch):
    with monkeypatch.context() as m:
        m.setenv("NNPOT_NO_CKERNELS", "1")
        return separable_onshell_k(sep, p0, g_on)


@pytest.mark.parametrize("inverse", [True, False])
@pytest.mark.parametrize("idx", range(4))
def test_c_equals_torch(idx, inverse, monkeypatch):
    """Both kernel branches: (Lambda^-1 - Gs) x = g (Lambda well conditioned) and
    (1 - Lambda Gs) x = Lambda g (forced here by hiding Lambda^-1)."""
    sep = _forms()[idx]
    if not inverse:
        monkeypatch.setattr(sep_mod, "_lam_inverse", lambda s: None)
    else:
        assert sep_mod._lam_inverse(sep) is not None
    p0 = torch.sqrt(0.5 * tlab_grid(300.0, 60) * TWO_MU)
    g_on = sep.form_factors(p0)
    ref = _torch_k(sep, p0, g_on, monkeypatch)
    calls = []
    real = sep_mod._onshell_k_c
    monkeypatch.setattr(sep_mod, "_onshell_k_c", lambda *a: calls.append(1) or real(*a))
    got = separable_onshell_k(sep, p0, g_on)
    assert calls and real(sep, p0, g_on, sep._g_outer_packed) is not None  # the C path served it
    scale = ref.abs().max()
    assert float((got - ref).abs().max() / scale) < 1e-11


def test_singular_lambda_has_no_inverse():
    sep = _forms()[0]
    sep.lam = sep.lam.clone()
    sep.lam[-1] = 0.0
    sep.lam[:, -1] = 0.0  # rank-deficient Lambda: the kernel must not use an inverse
    assert sep_mod._lam_inverse(sep) is None


def test_mesh_point_collision_and_gradients(monkeypatch):
    sep = _forms()[0]
    p_bad = sep.k[3:4].clone()
    with pytest.raises(InputError, match="coincides with a mesh point"):
        separable_onshell_k(sep, p_bad)
    # gradients wanted: the torch path runs (the C kernel is not differentiable)
    p0 = torch.sqrt(0.5 * tlab_grid(300.0, 10) * TWO_MU)
    g_on = sep.form_factors(p0).detach().requires_grad_(True)
    assert sep_mod._onshell_k_c(sep, p0, g_on, sep._g_outer_packed) is None
    kk = separable_onshell_k(sep, p0, g_on)
    (grad,) = torch.autograd.grad(kk.sum(), g_on)
    assert torch.isfinite(grad).all()
