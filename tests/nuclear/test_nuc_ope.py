"""OPE/TPE partial waves: independent 4D projection, symmetry, sign-convention pitfalls."""

import math

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y
from sympy.physics.quantum.cg import CG

from nnpot.nuclear import mesh as M
from nnpot.nuclear import ope, tpe
from nnpot.nuclear import scattering as S
from nnpot.nuclear.channels import get_channel, np_channels
from nnpot.nuclear.constants import F_PI, G_A, HBARC, M_PI0, M_PIC, p_cm
from nnpot.nuclear.data import pwa93_np
from nnpot.nuclear.potential import NuclearPotential

torch.set_num_threads(1)


def brute_force_ope(channel, pp, p, n=14):
    """<p'(L'S)JM=J|V|p(LS)JM=J> by a 4D angular quadrature of the spin-operator form
    sigma1.q sigma2.q in the product spin basis (no rotational-invariance trick)."""
    ct, wt = np.polynomial.legendre.leggauss(n)
    ph = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    wph = 2 * np.pi / (2 * n)
    th, phi = np.meshgrid(np.arccos(ct), ph, indexing="ij")
    w = (wt[:, None] * wph * np.ones_like(phi)).ravel()
    th, phi = th.ravel(), phi.ravel()
    unit = np.stack([np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi), np.cos(th)], -1)
    sig = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.array([[1, 0], [0, -1]])]
    s1 = [np.kron(s, np.eye(2)) for s in sig]
    s2 = [np.kron(np.eye(2), s) for s in sig]
    half = [0.5, -0.5]
    s, j, t = channel.s, channel.j, channel.t
    g = G_A**2 / (4 * F_PI**2)
    sign = 1.0 if t == 1 else -1.0

    def spin_state(ms):
        v = np.zeros(4)
        for a, m1 in enumerate(half):
            for b, m2 in enumerate(half):
                v[2 * a + b] = float(CG(0.5, m1, 0.5, m2, s, ms).doit())
        return v

    def ylm(l, m, x):
        return sph_harm_y(l, m, np.arccos(x[:, 2]), np.arctan2(x[:, 1], x[:, 0]))

    out = np.zeros((len(channel.ls), len(channel.ls)))
    qv = (pp * unit[:, None, :] - p * unit[None, :, :]) * HBARC  # (n_out, n_in, 3) MeV
    q2 = (qv**2).sum(-1)
    vt = -(-g / (q2 + M_PI0**2)) + sign * 2 * (-g / (q2 + M_PIC**2))
    ops = np.einsum("abx,xij->abij", qv, np.array(s1)) @ np.einsum("abx,xij->abij", qv,
                                                                    np.array(s2))
    mss = [0] if s == 0 else [1, 0, -1]
    for ia, lp in enumerate(channel.ls):
        for ib, l in enumerate(channel.ls):
            tot = 0.0
            for msp in mss:
                for ms in mss:
                    c1 = float(CG(lp, j - msp, s, msp, j, j).doit()) if abs(j - msp) <= lp else 0
                    c2 = float(CG(l, j - ms, s, ms, j, j).doit()) if abs(j - ms) <= l else 0
                    if c1 == 0 or c2 == 0:
                        continue
                    me = np.einsum("i,abij,j->ab", spin_state(msp), ops, spin_state(ms))
                    yo = np.conj(ylm(lp, j - msp, unit))
                    yi = ylm(l, j - ms, unit)
                    tot += c1 * c2 * np.einsum("a,a,ab,b,b->", w, yo, vt * me, yi, w)
            out[ia, ib] = np.real(tot) * ope.NORM
    return out


@pytest.mark.parametrize("name", ["1S0", "3P0", "3P1", "3S1-3D1", "1D2", "3P2-3F2"])
def test_ope_against_independent_4d_projection(name):
    ch = get_channel(name)
    pp, p = 0.7, 1.3
    fast = ope.ope(ch, torch.tensor([pp], dtype=torch.float64),
                   torch.tensor([p], dtype=torch.float64))[:, :, 0, 0].numpy()
    ref = brute_force_ope(ch, pp, p)
    assert np.allclose(fast, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


def test_assembled_potential_symmetric_in_every_channel():
    torch.manual_seed(0)
    model = NuclearPotential(short={"hidden": 4, "seed": 3})
    with torch.no_grad():
        for prm in model.short.coef.values():
            prm.copy_(torch.randn_like(prm))
    k = torch.linspace(0.05, 4.0, 9, dtype=torch.float64)
    for ch in np_channels(4):
        v = model(ch, k, k)
        v = v.detach()
        vt = v.permute(1, 0, 3, 2)  # V_{LL'}(p, p')
        assert torch.allclose(v, vt, rtol=1e-12, atol=1e-12 * float(v.abs().max())), ch.name
        vn = tpe.tpe(ch, k, k, "N2LO", sfr=600.0)
        assert torch.allclose(vn, vn.permute(1, 0, 3, 2), atol=1e-10 * float(vn.abs().max()))


def _ope_regulated(ch, p1, p2, lam=600 / HBARC):
    f1, f2 = torch.exp(-((p1 / lam) ** 8)), torch.exp(-((p2 / lam) ** 8))
    return ope.ope(ch, p1, p2) * f1[:, None] * f2[None, :]


def test_il_convention_sign_of_peripheral_mixing_angles():
    """Peripheral mixing angles are OPE-dominated: E2 < 0, E3 > 0, E4 < 0 in PWA93. With our
    states (no i^L) the off-diagonal S-matrix sign must be flipped; without that flip the
    signs would all be wrong (the i^L pitfall)."""
    p0 = p_cm([50.0])
    m = M.default_mesh(48)
    chans = [get_channel(n) for n in ("E2", "E3", "E4")]
    d = S.phase_shifts(_ope_regulated, chans, p0, m)
    table = pwa93_np()
    for wave in ("E2", "E3", "E4"):
        ref = table.value(wave, 50.0)
        got = float(d[wave][0]) * 180 / math.pi
        assert np.sign(got) == np.sign(ref)
        assert got == pytest.approx(ref, rel=0.15)


def test_mixing_angle_sign_follows_3s1_branch():
    """Regulated OPE binds in 3S1; on the Levinson branch (3S1 near 180 deg at 1 MeV) E1 is
    positive as in PWA93, on the other branch the same S-matrix gives E1 < 0."""
    p0 = p_cm([1.0, 10.0])
    m = M.default_mesh(48)
    ch = [get_channel("3S1")]
    lev = S.phase_shifts(_ope_regulated, ch, p0, m, levinson=True)
    raw = S.phase_shifts(_ope_regulated, ch, p0, m, levinson=False)
    assert float(lev["3S1"][0]) > math.pi / 2
    assert torch.all(lev["E1"] > 0) and torch.all(raw["E1"] < 0)
    assert torch.allclose(lev["E1"], -raw["E1"])
