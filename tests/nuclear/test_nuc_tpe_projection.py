"""Two-pion exchange: partial-wave projection, normalisation, isospin and loop functions.

The OPE test (test_nuc_ope.py) only exercises the tensor weights of
:func:`nnpot.nuclear.ope.project`; TPE also uses its central (1) and spin-spin
(sigma1.sigma2) weights and the isospin factor tau1.tau2. Here they are checked
(1) analytically: a central V(q) projects to 2 pi N int dz P_L(z) V(q) (N = (hbar c)^3 /
(2 pi)^3), times 1 (S = 1) or -3 (S = 0) for sigma1.sigma2, (2) against an independent 4D
angular quadrature of the full spin-operator form, and (3) physically: in Born
approximation, delta_L = -pi mu p V_LL(p, p) / (hbar c)^2, the N2LO TPE (dimensional
regularisation) moves OPE towards PWA93 in peripheral F/G waves of both isospins, the
classic result of Kaiser, Brockmann, Weise, NPA 625, 758 (1997). A wrong sign, isospin
factor or MeV^-2 -> MeV fm^3 conversion of W_C, V_C, W_T fails (3). Units: MeV, fm, fm^-1.
"""

import math

import numpy as np
import pytest
import torch
from scipy.special import eval_legendre, sph_harm_y

from nnpot.nuclear import ope, tpe
from nnpot.nuclear.channels import clebsch_gordan, get_channel
from nnpot.nuclear.constants import HBARC, M_PI, MU_NP, p_cm
from nnpot.nuclear.data import pwa93_np

torch.set_num_threads(1)
T64 = torch.float64


def _t(x):
    return torch.tensor([x], dtype=T64)


@pytest.mark.parametrize("name", ["1S0", "3P1", "1D2", "3F3", "3S1-3D1"])
def test_central_and_spin_spin_weights_against_legendre_integral(name):
    """V_C(q) = g/(q^2 + M^2): V_LL = 2 pi N int dz P_L(z) V_C(q); sigma1.sigma2 adds the
    factor 2 S (S + 1) - 3; off-diagonal (L' != L) blocks vanish for both."""
    ch = get_channel(name)
    pp, p, mass, g = 0.6, 1.1, 400.0, 2.0e-5
    vc = lambda q: g / (q**2 + mass**2)  # noqa: E731
    z, w = np.polynomial.legendre.leggauss(200)
    q2 = (pp**2 + p**2 - 2 * pp * p * z) * HBARC**2
    got_c = ope.project(ch, _t(pp), _t(p), v_c=vc)[:, :, 0, 0].numpy()
    got_s = ope.project(ch, _t(pp), _t(p), v_s=vc)[:, :, 0, 0].numpy()
    sfac = 2.0 * ch.s * (ch.s + 1) - 3.0
    for a, la in enumerate(ch.ls):
        for b, lb in enumerate(ch.ls):
            ref = 0.0
            if la == lb:
                ref = 2 * math.pi * ope.NORM * float(np.sum(w * eval_legendre(la, z)
                                                            * g / (q2 + mass**2)))
            assert got_c[a, b] == pytest.approx(ref, rel=1e-10, abs=1e-14)
            assert got_s[a, b] == pytest.approx(sfac * ref, rel=1e-10, abs=1e-14)


def _brute_force(channel, pp, p, vc, vs, vt, n=12):
    """<p'(L'S)J M=J|V|p(LS)J M=J> of V_C + V_S s1.s2 + V_T s1.q s2.q by a 4D angular
    quadrature in the product spin basis (no rotational-invariance reduction) [MeV fm^3]."""
    ct, wt = np.polynomial.legendre.leggauss(n)
    ph = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    th, phi = np.meshgrid(np.arccos(ct), ph, indexing="ij")
    w = (wt[:, None] * (np.pi / n) * np.ones_like(phi)).ravel()
    th, phi = th.ravel(), phi.ravel()
    u = np.stack([np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi), np.cos(th)], -1)
    pauli = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]),
             np.array([[1, 0], [0, -1]])]
    s1 = np.array([np.kron(s, np.eye(2)) for s in pauli])
    s2 = np.array([np.kron(np.eye(2), s) for s in pauli])
    ss = sum(s1[i] @ s2[i] for i in range(3))
    s, j = channel.s, channel.j
    half = (0.5, -0.5)

    def spin(ms):
        return np.array([clebsch_gordan(0.5, m1, 0.5, m2, s, ms) for m1 in half for m2 in half])

    def ylm(l, m):
        return sph_harm_y(l, m, th, phi)

    qv = (pp * u[:, None, :] - p * u[None, :, :]) * HBARC
    q = torch.tensor(np.sqrt((qv**2).sum(-1)))
    c, sv, tv = (f(q).numpy()[..., None, None] for f in (vc, vs, vt))
    op = (c * np.eye(4) + sv * ss
          + tv * (np.einsum("abx,xij->abij", qv, s1) @ np.einsum("abx,xij->abij", qv, s2)))
    mss = [0] if s == 0 else [1, 0, -1]
    out = np.zeros((len(channel.ls), len(channel.ls)))
    for ia, lp in enumerate(channel.ls):
        for ib, l in enumerate(channel.ls):
            tot = 0.0
            for msp in mss:
                for ms in mss:
                    c1 = clebsch_gordan(lp, j - msp, s, msp, j, j) if abs(j - msp) <= lp else 0
                    c2 = clebsch_gordan(l, j - ms, s, ms, j, j) if abs(j - ms) <= l else 0
                    if c1 == 0 or c2 == 0:
                        continue
                    me = np.einsum("i,abij,j->ab", spin(msp), op, spin(ms))
                    tot += c1 * c2 * np.einsum("a,a,ab,b,b->", w, np.conj(ylm(lp, j - msp)),
                                               me, ylm(l, j - ms), w)
            out[ia, ib] = np.real(tot) * ope.NORM
    return out


@pytest.mark.parametrize("name,order", [("1S0", "N2LO"), ("3S1-3D1", "N2LO"), ("1P1", "NLO"),
                                        ("3P2-3F2", "N2LO"), ("3D2", "NLO")])
def test_tpe_against_independent_4d_projection(name, order):
    ch = get_channel(name)
    vc, vs, vt = tpe.tpe_functions(order, ch.t, sfr=600.0)
    ref = _brute_force(ch, 0.7, 1.3, vc, vs, vt)
    got = tpe.tpe(ch, _t(0.7), _t(1.3), order, sfr=600.0)[:, :, 0, 0].numpy()
    assert np.abs(ref).max() > 0.05  # MeV fm^3: a non-trivial comparison
    assert np.allclose(got, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())


def test_loop_functions_limits():
    """DR: L(q -> 0) = 1, A(q -> 0) = 1/(4 m); SFR tends to DR as the cutoff grows and
    cuts the long-range part down for a finite one (|V_SFR| < |V_DR| at large q)."""
    q0 = torch.tensor([1e-3], dtype=T64)
    assert float(tpe.loop_l(q0)) == pytest.approx(1.0, rel=1e-6)
    assert float(tpe.loop_a(q0)) == pytest.approx(1 / (4 * M_PI), rel=1e-6)
    q = torch.tensor([50.0, 300.0, 800.0], dtype=T64)
    for fn in (tpe.loop_l, tpe.loop_a):
        assert torch.allclose(fn(q, sfr=1e7), fn(q), rtol=1e-4)
        assert torch.all(fn(q, sfr=600.0) < fn(q))


DEG = 180.0 / math.pi


def _born(name, wave, tlab, order):
    """Born phase [deg] of OPE (+ TPE of ``order``, DR) in ``wave`` at ``tlab`` [MeV]."""
    ch = get_channel(name)
    p = p_cm([tlab]).to(T64)
    i = ch.waves.index(wave)
    v = ope.ope(ch, p, p)
    if order != "LO":
        v = v + tpe.tpe(ch, p, p, order)
    return float(-math.pi * MU_NP * p * v[i, i, 0, 0] / HBARC**2) * DEG


@pytest.mark.parametrize("wave,name,t,frac", [("3F4", "3F4", 1, 0.2), ("1G4", "1G4", 1, 0.5),
                                              ("3F3", "3F3", 1, 0.6), ("1F3", "1F3", 0, 0.9)])
def test_n2lo_tpe_improves_peripheral_born_phases(wave, name, t, frac):
    """At T_lab = 100, 150 MeV the N2LO TPE shrinks the OPE deviation from PWA93 to below
    ``frac`` of it (3F4: 0.375 -> 0.95 deg vs 0.99 at 150 MeV), and within 15 % of PWA93 in
    3F4 and 1G4; the waves' isospins make both tau1.tau2 = 1 and -3 act."""
    assert get_channel(name).t == t
    table = pwa93_np()
    for tlab in (100.0, 150.0):
        ref = table.value(wave, tlab)
        d_lo = _born(name, wave, tlab, "LO") - ref
        d_n2lo = _born(name, wave, tlab, "N2LO") - ref
        assert abs(d_n2lo) < frac * abs(d_lo), (wave, tlab, d_lo, d_n2lo)
        if wave in ("3F4", "1G4"):
            assert abs(d_n2lo) < 0.15 * abs(ref)
