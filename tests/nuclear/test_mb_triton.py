"""A = 3 Jacobi NCSM: exact harmonic limit, published benchmarks, Lanczos, 3NF, extrapolation."""

import math

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from nnpot.errors import InputError
from nnpot.nuclear.ho import HBARC
from nnpot.nuclear.threebody.contact import contact_operator, contact_overlaps
from nnpot.nuclear.threebody.extrapolate import extrapolate_exponential
from nnpot.nuclear.threebody.hamiltonian import JacobiHamiltonian, assemble, build_basis
from nnpot.nuclear.threebody.interaction import local_me
from nnpot.nuclear.threebody.lanczos import ground_state
from nnpot.nuclear.threebody.models import HBAR2_M_BENCHMARK as H2M
from nnpot.nuclear.threebody.models import malfliet_tjon_r, minnesota_r
from nnpot.nuclear.threebody.triton import fit_contact, solve_triton, triton_scan


def test_harmonic_pair_force_gives_the_exact_oscillator_spectrum():
    """V_ij = m w0^2 r_ij^2/6 makes H two Jacobi oscillators of frequency w0: the physical
    J = 1/2+ levels are hw0 (e + 3) with the antisymmetric-state counts 1, 4, 10, ..."""
    hw, hw0, nmax = 20.0, 17.0, 14
    vr = lambda r: hw0**2 * r * r / (6.0 * H2M)
    me = local_me(lambda s, j, t, l: vr, nmax, hw, H2M)
    basis = build_basis(nmax)
    ham = JacobiHamiltonian(basis, assemble(basis, hw, me))
    dense = ham.matvec(torch.eye(ham.dim, dtype=torch.float64)).numpy()
    assert np.abs(dense - dense.T).max() < 1e-10
    ev = np.linalg.eigvalsh(dense)
    assert ev[0] == pytest.approx(3 * hw0, abs=1e-6)
    assert np.allclose(ev[1:5], 5 * hw0, atol=1e-3)
    assert ev[5] > 5 * hw0 + 0.5 * hw0


def test_minnesota_triton_against_stochastic_variational_benchmark():
    """Minnesota (u = 1): E(3H) = -8.38 MeV, Varga & Suzuki, PRC 52, 2885 (1995)."""
    me = local_me(lambda s, j, t, l: minnesota_r(s) if l % 2 == 0 else None, 28, 30.0, H2M)
    res, ext = triton_scan(me, [16, 20, 24, 28], 30.0, H2M)
    energies = [r.energy for r in res]
    assert all(b < a for a, b in zip(energies, energies[1:], strict=False))  # variational
    assert ext.e_inf == pytest.approx(-8.38, abs=0.01)
    assert ext.sigma < 0.01
    assert 1.4 < res[-1].r_p < 2.0 and 1.4 < res[-1].r_m < 2.0


@pytest.mark.slow
def test_malfliet_tjon_s_wave_triton_against_faddeev_benchmark():
    """MT-I/III, s-wave NN force, hbar^2/m = 41.47 MeV fm^2: E(3H) = -8.535 MeV (Faddeev;
    Friar et al., PRC 42, 1838 (1990)). OLS effective interaction (NKB 2000), extrapolated."""
    mt1, mt3 = malfliet_tjon_r("MT-I"), malfliet_tjon_r("MT-III")
    hw, nbig = 40.0, 600
    bare = local_me(lambda s, j, t, l: None if l else (mt1 if s == 0 else mt3), nbig, hw, H2M,
                    lmax=0)
    res, ext = triton_scan(bare, [24, 28, 32], hw, H2M, ols=True, nbig=nbig)
    assert ext.e_inf == pytest.approx(-8.535, abs=0.020)
    assert abs(ext.e_inf - res[-1].energy) < 0.03


def test_lanczos_precisions_agree_with_scipy():
    me = local_me(lambda s, j, t, l: minnesota_r(s) if l % 2 == 0 else None, 16, 25.0, H2M)
    basis = build_basis(16)
    ham = JacobiHamiltonian(basis, assemble(basis, 25.0, me))
    op = LinearOperator((ham.dim, ham.dim), dtype=float,
                        matvec=lambda x: ham.matvec(torch.as_tensor(x)).numpy())
    ref = eigsh(op, k=1, which="SA", tol=1e-12)[0][0]
    r64 = ground_state(ham, "float64", tol=1e-10)
    rmix = ground_state(ham, "mixed", tol=1e-10)
    r32 = ground_state(ham, "float32")
    assert r64.energy == pytest.approx(ref, abs=1e-8)
    assert rmix.energy == pytest.approx(ref, abs=1e-7)  # second order in the vector error
    assert r32.energy == pytest.approx(ref, abs=1e-3)  # float32 alone: within 1 keV
    assert r32.vector.dtype == torch.float32
    x = r64.vector.numpy()
    assert np.linalg.norm(op.matvec(x) - ref * x) < 1e-6


def test_contact_overlaps_match_the_gaussian_closed_form():
    """n = 1 regulator f = exp(-(p^2 + 3q^2/4)/Lam^2) factorises: <00,00|g> is analytic."""
    b, lam_mev = 1.6, 450.0
    lam = lam_mev / HBARC
    g = contact_overlaps(4, b, lam_mev, n_reg=1)

    def one(bo, c):  # int dp p^2 phi_00(p; bo) exp(-c p^2)
        norm = math.sqrt(4.0 / math.sqrt(math.pi)) * bo**1.5
        return norm * math.sqrt(math.pi) / 4.0 * (bo * bo / 2.0 + c) ** -1.5

    ref = 4 * math.pi / (2 * math.pi) ** 3 * one(math.sqrt(2) * b, 1 / lam**2) \
        * one(math.sqrt(1.5) * b, 0.75 / lam**2)
    assert g[0, 0] == pytest.approx(ref, rel=1e-10)


def test_contact_force_is_linear_and_fits_a_target_energy():
    hw, nmax = 28.0, 12
    me = local_me(lambda s, j, t, l: minnesota_r(s) if l % 2 == 0 else None, nmax, hw, H2M)
    basis = build_basis(nmax)
    b = math.sqrt(H2M / hw)
    w = contact_operator(basis, b, 1.0)
    assert abs(w - w.T).max() < 1e-12
    h = assemble(basis, hw, me)
    e0 = ground_state(JacobiHamiltonian(basis, h)).energy
    r = ground_state(JacobiHamiltonian(basis, h), tol=1e-11)
    x = r.vector.numpy()
    slope = JacobiHamiltonian(basis, h).expectation(w, x)  # Hellmann-Feynman dE/dc_E
    eps = 1e-4
    ep = ground_state(JacobiHamiltonian(basis, h + eps * w), tol=1e-11).energy
    em = ground_state(JacobiHamiltonian(basis, h - eps * w), tol=1e-11).energy
    assert (ep - em) / (2 * eps) == pytest.approx(slope, rel=1e-5)
    target = e0 - 0.3
    c = fit_contact(me, nmax, hw, H2M, target)
    assert solve_triton(me, nmax, hw, H2M, c_e=c).energy == pytest.approx(target, abs=1e-5)
    assert c * slope < 0  # more binding needs the sign that lowers the energy


def test_exponential_extrapolation():
    n = np.array([10, 14, 18, 22])
    e = -8.0 + 2.0 * np.exp(-0.2 * n)
    ext = extrapolate_exponential(n, e)
    assert ext.e_inf == pytest.approx(-8.0, abs=1e-12)
    assert ext.b == pytest.approx(0.2, rel=1e-10)
    assert ext.sigma < 0.25 * abs(e[-1] + 8.0)
    noisy = extrapolate_exponential(n, e + np.array([0, 0.01, -0.01, 0.002]))
    assert noisy.sigma > ext.sigma
    wrong = extrapolate_exponential([4, 8, 12], [-1.0, -2.0, -1.5])
    assert math.isinf(wrong.sigma)
    with pytest.raises(InputError):
        extrapolate_exponential([4, 8], [-1.0, -2.0])
