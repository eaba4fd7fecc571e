"""The fitted-model path momentum space -> HO -> Jacobi NCSM, checked against coordinate space.

Fitted models reach the triton through ``export.model_channel_potential`` (partial waves
projected on Y_L(p-hat) by :func:`nnpot.nuclear.ope.project`, tensor blocks turned to the
real coordinate-space convention by i^(L - L') = -1) and ``interaction.momentum_me``. Here
potentials whose coordinate-space form is known in closed form are sent through exactly
that path (a stand-in model object) and compared with coordinate-space HO matrix elements
and triton energies; the HO brackets of the Jacobi basis use the coordinate-space convention.
Units: MeV, fm, fm^-1.
"""

import math

import numpy as np
import pytest
import torch

from nnpot.nuclear.export import model_channel_potential
from nnpot.nuclear.ho import HBARC, ho_channel_hamiltonian, ho_matrix_local_block
from nnpot.nuclear.ope import project
from nnpot.nuclear.threebody.extrapolate import extrapolate_exponential
from nnpot.nuclear.threebody.interaction import b_relative, momentum_me, relative_channels
from nnpot.nuclear.threebody.models import HBAR2_M_BENCHMARK as H2M
from nnpot.nuclear.threebody.triton import solve_triton

# Minnesota Gaussians V0 exp(-kappa r^2) [MeV, fm^-2] per pair spin, in even waves only
CENTRAL = {0: ((200.0, 1.487), (-91.85, 0.465)), 1: ((200.0, 1.487), (-178.0, 0.639))}
TENSOR_A, TENSOR_H0 = 0.5, 40.0  # V_T(r) = -(4/3) a^2 r^2 h0 exp(-a r^2) (T = 0) [fm^-2, MeV]


def _gauss_q(v0: float, kappa: float):
    """Fourier transform of v0 exp(-kappa r^2): v0 (pi/kappa)^(3/2) exp(-k^2/(4 kappa))."""
    return lambda k: v0 * (math.pi / kappa) ** 1.5 * torch.exp(-k * k / (4.0 * kappa))


def _s12(s: int, j: int, lo: int, li: int) -> float:
    """<(lo s) j|S12|(li s) j> (textbook values, real coordinate-space states)."""
    if s == 0:
        return 0.0
    if lo != li:
        return 6.0 * math.sqrt(j * (j + 1)) / (2 * j + 1)
    if lo == j:
        return 2.0
    return -2.0 * (j - 1) / (2 * j + 1) if lo == j - 1 else -2.0 * (j + 2) / (2 * j + 1)


def _tensor_sign(t: int) -> float:
    return 1.0 if t == 0 else -1.0 / 3.0  # OPE-like: tau1.tau2 = -3 (T = 0), 1 (T = 1)


def _v_r(s: int, j: int, t: int, lo: int, li: int):
    """Coordinate-space V_{lo li}(r) [MeV] of the test potential in channel (s, j, t):
    Minnesota central (even waves) + an OPE-like Gaussian tensor force (all waves)."""
    def v(r):
        out = np.zeros_like(r)
        if lo == li and lo % 2 == 0:
            for v0, kappa in CENTRAL[s]:
                out = out + v0 * np.exp(-kappa * r * r)
        vt = -(4.0 / 3.0) * TENSOR_A**2 * r * r * TENSOR_H0 * np.exp(-TENSOR_A * r * r)
        return out + _tensor_sign(t) * _s12(s, j, lo, li) * vt
    return v


class _StandIn:
    """A model-like object: ``members[0](channel, p_out, p_in)`` in the model convention."""

    header = {"config": {"short": {"jmax": 3}}}

    def __init__(self):
        # h(r) = TENSOR_H0 exp(-a r^2) <-> g(k) = TENSOR_H0 (pi/a)^(3/2) exp(-k^2/(4a)); the
        # operator -(s1.d)(s2.d) h - (s1.s2/3)(-lap h) is the pure tensor V_T(r) S12 above.
        g_t = _gauss_q(TENSOR_H0, TENSOR_A)
        cen = {s: [_gauss_q(v0, kappa) for v0, kappa in pars] for s, pars in CENTRAL.items()}

        def member(ch, p1, p2):
            fm = lambda q: q / HBARC  # noqa: E731  (project passes q in MeV)
            sign = _tensor_sign(ch.t)
            vc = project(ch, p1, p2, v_c=lambda q: sum(f(fm(q)) for f in cen[ch.s]) / HBARC**3)
            even = torch.tensor([1.0 - l % 2 for l in ch.ls], dtype=vc.dtype)
            vt = project(ch, p1, p2, v_t=lambda q: sign * g_t(fm(q)) / HBARC**5,
                         v_s=lambda q: -sign * fm(q) ** 2 * g_t(fm(q)) / (3.0 * HBARC**3))
            return vc * even[:, None, None, None] * even[None, :, None, None] + vt

        self.members = [member]


def _coordinate_me(nmax: int, hw: float, jmax: int = 3) -> dict:
    b = b_relative(hw, H2M)
    out = {}
    for s, j, t, ls in relative_channels(nmax):
        if j > jmax:
            continue
        out[(s, j, t)] = {(lo, li): ho_matrix_local_block(_v_r(s, j, t, lo, li), lo, li, nmax, b)
                          for lo in ls for li in ls}
    return out


@pytest.fixture(scope="module")
def tensor_me():
    nmax, hw = 12, 28.0
    mom = momentum_me(model_channel_potential(_StandIn(), 0), nmax, hw, H2M, npoints=200,
                      pmax=9.0)
    return nmax, hw, mom, _coordinate_me(nmax, hw)


def test_model_path_matrix_elements_equal_coordinate_space_incl_tensor(tensor_me):
    """All channels J <= 3 (S, P, D, F waves, T = 0 and 1, the coupled tensor blocks with
    their sign): momentum path == coordinate-space quadrature."""
    _, _, mom, crd = tensor_me
    assert set(mom) == set(crd)
    worst = 0.0
    for key, blocks in crd.items():
        assert set(mom[key]) == set(blocks)
        for lk, m in blocks.items():
            worst = max(worst, float(np.abs(mom[key][lk] - m).max()))
    assert worst < 1e-6
    # the tensor blocks are not negligible and carry the S12 sign: 3S1-3D1 <0 0|V|0 2> < 0
    sd = crd[(1, 1, 0)][(0, 2)]
    assert sd[0, 0] < -1.0


def test_triton_from_model_path_equals_coordinate_space_and_feels_the_tensor_sign(tensor_me):
    """Same 3H energy from both routes; flipping the L' = L +- 2 blocks (the other phase
    convention) changes it by far more than the tolerance, so the check has teeth."""
    nmax, hw, mom, crd = tensor_me
    e_mom = solve_triton(mom, nmax, hw, H2M).energy
    e_crd = solve_triton(crd, nmax, hw, H2M).energy
    assert e_mom == pytest.approx(e_crd, abs=1e-6)
    flipped = {k: {lk: (m if lk[0] == lk[1] else -m) for lk, m in b.items()}
               for k, b in mom.items()}
    e_flip = solve_triton(flipped, nmax, hw, H2M).energy
    assert abs(e_flip - e_mom) > 0.05
    e_d = np.linalg.eigvalsh(ho_channel_hamiltonian(mom[(1, 1, 0)], (0, 2), nmax, hw))[0]
    assert e_mom < e_d < 0.0  # a bound deuteron and a three-body state below it


class _MinnesotaStandIn:
    """Minnesota (u = 1: even waves only) in momentum space through ``ope.project``."""

    header = {"config": {"short": {"jmax": 4}}}

    def __init__(self):
        cen = {s: [_gauss_q(v0, kappa) for v0, kappa in pars] for s, pars in CENTRAL.items()}

        def member(ch, p1, p2):
            v = project(ch, p1, p2,
                        v_c=lambda q: sum(f(q / HBARC) for f in cen[ch.s]) / HBARC**3)
            mask = torch.tensor([1.0 if l % 2 == 0 else 0.0 for l in ch.ls], dtype=v.dtype)
            return v * mask[:, None, None, None] * mask[None, :, None, None]

        self.members = [member]


def test_minnesota_triton_through_the_model_path_matches_the_published_value():
    """E(3H) = -8.38 MeV (Varga & Suzuki, PRC 52, 2885 (1995)) via the fitted-model route."""
    hw, nlist = 30.0, [16, 20, 24, 28]
    me = momentum_me(model_channel_potential(_MinnesotaStandIn(), 0), nlist[-1], hw, H2M,
                     pmax=8.0)
    energies = [solve_triton(me, n, hw, H2M).energy for n in nlist]
    ext = extrapolate_exponential(nlist, energies)
    assert ext.e_inf == pytest.approx(-8.38, abs=0.01)


def test_contact_fit_widens_its_bracket_for_a_weak_contact():
    """A target that needs c_E far outside the first bracket is still found (the shipped
    model needs |c_E| >> 1: its wave function has almost no weight where the regulated
    contact acts); beyond ``max_abs`` a clear error remains."""
    from nnpot.errors import InputError
    from nnpot.nuclear.threebody.interaction import local_me
    from nnpot.nuclear.threebody.models import minnesota_r
    from nnpot.nuclear.threebody.triton import fit_contact

    hw, nmax = 30.0, 6
    me = local_me(lambda s, j, t, l: minnesota_r(s) if l % 2 == 0 else None, nmax, hw, H2M)
    target = solve_triton(me, nmax, hw, H2M, c_e=-37.0).energy
    assert abs(target - solve_triton(me, nmax, hw, H2M).energy) > 1.0
    assert fit_contact(me, nmax, hw, H2M, target) == pytest.approx(-37.0, abs=1e-4)
    with pytest.raises(InputError):
        fit_contact(me, nmax, hw, H2M, target, max_abs=20.0)
