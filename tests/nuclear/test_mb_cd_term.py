"""c_D (one-pion-exchange--contact) 3NF in the Jacobi NCSM: symmetry, linearity, and an
independent plane-wave evaluation with explicit Pauli matrices and FFTs."""

import math

import numpy as np
import pytest
import scipy.fft
from scipy.special import eval_genlaguerre, gammaln, sph_harm_y, spherical_jn

from nnpot.errors import InputError
from nnpot.nuclear.ho import HBARC
from nnpot.nuclear.threebody.angmom import clebsch_gordan
from nnpot.nuclear.threebody.contact import F_PI, LAMBDA_CHI, contact_operator
from nnpot.nuclear.threebody.contact_d import G_A, M_PI, cd_operator, pion_partial_wave
from nnpot.nuclear.threebody.hamiltonian import JacobiHamiltonian, assemble, build_basis
from nnpot.nuclear.threebody.interaction import local_me
from nnpot.nuclear.threebody.lanczos import ground_state
from nnpot.nuclear.threebody.models import HBAR2_M_BENCHMARK as H2M
from nnpot.nuclear.threebody.models import minnesota_r

HALF = 0.5


def _physical(basis) -> np.ndarray:
    """Block-diagonal cfp matrix C (Jacobi amplitudes = C x)."""
    c = np.zeros((basis.dim, basis.dim_physical))
    pos = 0
    for e in basis.es:
        lo, hi = basis.offsets[e]
        blk = basis.cfps[e]
        c[lo:hi, pos:pos + blk.shape[1]] = blk
        pos += blk.shape[1]
    return c


# ---------------------------------------------------------------- independent oracle ----
def _ho_r(n: int, l: int, r: np.ndarray, b: float) -> np.ndarray:
    """R_nl(r), positive at the origin, from scipy's Laguerre polynomials (not nnpot.ho)."""
    x = r / b
    norm = math.exp(0.5 * (math.log(2.0) + gammaln(n + 1) - gammaln(n + l + 1.5)))
    return norm * b**-1.5 * x**l * np.exp(-0.5 * x * x) * eval_genlaguerre(n, l + 0.5, x * x)


def _pauli():
    s = [np.array([[0, 1], [1, 0]], complex), np.array([[0, -1j], [1j, 0]]),
         np.array([[1, 0], [0, -1]], complex)]
    one = np.eye(2)
    ops = {}
    for k in (1, 2, 3):
        ops[k] = [np.kron(np.kron(m if k == 1 else one, m if k == 2 else one),
                          m if k == 3 else one) for m in s]
    return ops


def _oracle_expectation(basis, u, b, lam_mev=500.0, n_reg=2, n=40, dq=0.2) -> float:
    """<u| V_D |u> [MeV] for Jacobi amplitudes u of an antisymmetric state, by brute force.

    V_D = 3 x (pion on nucleon 3) = 3 (2 pi)^-6 S_D sum_{i=1,2} tau_i.tau_3 (sigma_3.Q)
    (sigma_i.Q)/(Q^2 + m^2) with the regulator f(p, q) f(p', q'). Spin (x) isospin is the
    explicit 8 x 8 product space (M_J = 1/2, M_T = -1/2); rho-space HO functions of
    xi2 = -sqrt(2/3) rho are Fourier transformed by FFT onto a Cartesian q grid; the pion
    convolution is a lattice sum (Parseval on a zero-padded grid); the p integral is a
    numerical Hankel transform of R_n0(xi1) times the regulator.
    """
    lam = lam_mev / HBARC
    m_pi = M_PI / HBARC
    s_d = -G_A * HBARC**6 / (8.0 * F_PI**4 * LAMBDA_CHI)
    # q grid and conjugate rho grid (centred, n even)
    k = np.arange(n) - n // 2
    qg = k * dq
    drho = 2.0 * math.pi / (n * dq)
    rg = k * drho
    rx, ry, rz = np.meshgrid(rg, rg, rg, indexing="ij")
    qx, qy, qz = np.meshgrid(qg, qg, qg, indexing="ij")
    qabs = np.sqrt(qx**2 + qy**2 + qz**2)
    # xi2 = -sqrt(2/3) rho; psi(rho) = (2/3)^(3/4) R(|xi2|) Y(xi2^)
    xi = -math.sqrt(2.0 / 3.0) * np.stack([rx, ry, rz])
    xr = np.sqrt((xi**2).sum(0))
    theta = np.arccos(np.clip(np.where(xr > 0, xi[2] / np.where(xr > 0, xr, 1), 1.0), -1, 1))
    phi = np.arctan2(xi[1], xi[0])

    def q_function(big_n, lm, mu):
        psi = (2.0 / 3.0) ** 0.75 * _ho_r(big_n, lm, xr, b) * sph_harm_y(lm, mu, theta, phi)
        f = scipy.fft.fftshift(scipy.fft.fftn(scipy.fft.ifftshift(psi), workers=1))
        return f * drho**3 / (2.0 * math.pi) ** 1.5

    # p part: phi_n0(p) = sqrt(2/pi) int r^2 j0(p r) R_n0(r) with R_n0(r) from xi1 = r/sqrt2
    rr, wr = np.polynomial.legendre.leggauss(400)
    rmax = 14.0 * math.sqrt(2.0) * b
    rr, wr = 0.5 * rmax * (rr + 1), 0.5 * rmax * wr
    pp, wp = np.polynomial.legendre.leggauss(300)
    pmax = lam * 40.0 ** (0.5 / n_reg)
    pp, wp = 0.5 * pmax * (pp + 1), 0.5 * pmax * wp
    jmat = spherical_jn(0, pp[:, None] * rr[None, :])
    qvals = np.unique(np.round(qabs, 12))
    inv = np.searchsorted(qvals, np.round(qabs, 12))
    freg = np.exp(-(((pp[:, None] ** 2 + 0.75 * qvals[None, :] ** 2) / lam**2) ** n_reg))

    def p_integral(nn):
        rn0 = 2.0**-0.75 * _ho_r(nn, 0, rr / math.sqrt(2.0), b)
        phin = math.sqrt(2.0 / math.pi) * jmat @ (wr * rr * rr * rn0)
        return math.sqrt(4.0 * math.pi) * ((wp * pp * pp * phin) @ freg)[inv]

    # spin-isospin product states, index 4 i1 + 2 i2 + i3 (i = 0 for +1/2)
    ms = (HALF, -HALF)
    amp = np.zeros((64,) + qx.shape, complex)  # spin (8) x isospin (8)
    cache = {}
    for a, st in enumerate(basis.states):
        if st.l != 0 or abs(u[a]) < 1e-15:
            continue
        for i1, m1 in enumerate(ms):
            for i2, m2 in enumerate(ms):
                for i3, m3 in enumerate(ms):
                    msp = m1 + m2
                    for mu in range(-st.lam, st.lam + 1):
                        c = (clebsch_gordan(HALF, m1, HALF, m2, st.s, msp)
                             * clebsch_gordan(st.lam, mu, HALF, m3, st.j3, mu + m3)
                             * clebsch_gordan(st.s, msp, st.j3, mu + m3, basis.big_j,
                                              basis.big_j))
                        if c == 0.0:
                            continue
                        for t1, a1 in enumerate(ms):
                            for t2, a2 in enumerate(ms):
                                for t3, a3 in enumerate(ms):
                                    ci = (clebsch_gordan(HALF, a1, HALF, a2, st.t, a1 + a2)
                                          * clebsch_gordan(st.t, a1 + a2, HALF, a3,
                                                           basis.big_t, -HALF))
                                    if ci == 0.0:
                                        continue
                                    key = (st.n, st.N, st.lam, mu)
                                    if key not in cache:
                                        cache[key] = (p_integral(st.n)
                                                      * q_function(st.N, st.lam, mu))
                                    idx = (4 * i1 + 2 * i2 + i3) * 8 + 4 * t1 + 2 * t2 + t3
                                    amp[idx] += u[a] * c * ci * cache[key]
    keep = np.where(np.abs(amp).reshape(64, -1).max(1) > 0)[0]
    # spin-isospin operators S_ab = sum_{i=1,2} sigma_3a sigma_ib tau_i.tau_3
    pauli = _pauli()
    tdot = {i: sum(pauli[i][c] @ pauli[3][c] for c in range(3)).real
            for i in (1, 2)}
    # zero-padded FFTs; K_ab(Q) = Q_a Q_b/(Q^2 + m^2) on the difference lattice (wrapped)
    size = 2 * n
    d = np.fft.fftfreq(size, 1.0 / size) * dq
    dx, dy, dz = np.meshgrid(d, d, d, indexing="ij")
    comps = (dx, dy, dz)
    den = dx**2 + dy**2 + dz**2 + m_pi**2
    fa = np.stack([scipy.fft.fftn(amp[c], s=(size,) * 3, workers=1).ravel() for c in keep])
    total = 0.0
    for ia in range(3):
        for ib in range(3):
            kab = scipy.fft.fftn(comps[ia] * comps[ib] / den, workers=1).ravel()
            gram = (fa.conj() * kab[None, :]) @ fa.T  # sum_k conj(FA_c) K FA_d
            op = sum(np.kron(pauli[3][ia] @ pauli[i][ib], tdot[i]) for i in (1, 2))
            total += np.sum(op[np.ix_(keep, keep)] * gram).real
    total *= dq**6 / size**3
    return 3.0 * s_d * total / (2.0 * math.pi) ** 6


def test_oracle_spin_isospin_algebra():
    """tau_1.tau_2 built from the 8 x 8 Pauli products has eigenvalues 1 (x3) and -3."""
    p = _pauli()
    t12 = sum(p[1][c] @ p[2][c] for c in range(3)).real
    assert sorted(np.round(np.linalg.eigvalsh(t12), 10)) == [-3] * 2 + [1] * 6


# ------------------------------------------------------------------------- the tests ----
HW = 20.0
B = HBARC / math.sqrt(938.918 * HW)  # Jacobi oscillator length [fm]


@pytest.mark.parametrize("nmax", [0, 2])
def test_cd_expectation_matches_independent_plane_wave_evaluation(nmax):
    """<x|C^T V_D C|x> of random physical states (and one mixed element, by polarisation)
    equals the brute-force plane-wave value to 1e-6 relative; at N_max = 2 the lam = 0-2
    (tensor) couplings and their Fourier phase i^(lam' - lam) enter."""
    basis = build_basis(nmax)
    c = _physical(basis)
    w = cd_operator(basis, B)
    rng = np.random.default_rng(7 + nmax)
    x = rng.normal(size=c.shape[1])
    u = c @ (x / np.linalg.norm(x))
    ref = _oracle_expectation(basis, u, B)
    assert abs(ref) > 1e-3
    assert u @ (w @ u) == pytest.approx(ref, rel=1e-6)
    if nmax == 2:
        v = c @ rng.normal(size=c.shape[1])
        mixed = (_oracle_expectation(basis, u + v, B) - _oracle_expectation(basis, u - v, B)) / 4
        assert u @ (w @ v) == pytest.approx(mixed, rel=1e-6, abs=1e-8 * abs(ref))


def test_cd_expectation_for_j_3_2_odd_parity_matches_the_oracle():
    """Same check for J^pi = 3/2- at N_max = 3 (Jx = 1, 2, lam up to 3)."""
    basis = build_basis(3, 1.5, 0.5, -1)
    c = _physical(basis)
    x = np.random.default_rng(3).normal(size=c.shape[1])
    u = c @ (x / np.linalg.norm(x))
    ref = _oracle_expectation(basis, u, B)
    assert abs(ref) > 1e-3
    assert u @ (cd_operator(basis, B) @ u) == pytest.approx(ref, rel=1e-6)


def test_cd_term_vanishes_for_three_neutrons_and_is_p23_symmetric_on_physical_states():
    """T = 3/2: the pair in the contact has t = 1, hence s = 0 (l = 0), and V_D vanishes on
    antisymmetric states (as in neutron matter; Hebeler & Schwenk, PRC 82, 014314 (2010)).
    Physical states are P23-odd, so each of the three pion assignments j gives the same
    expectation: the factor 3 of V_D = 3 W_3."""
    from nnpot.nuclear.threebody.jacobi import p23_matrix

    for par, nmax in ((1, 4), (-1, 5)):
        basis = build_basis(nmax, 0.5, 1.5, par)
        c = _physical(basis)
        w = cd_operator(basis, B)
        assert np.abs(c.T @ (w @ c)).max() < 1e-12 * max(abs(w).max(), 1.0)
    basis = build_basis(6)
    for e in basis.es:
        cf = basis.cfps[e]
        assert np.allclose(cf.T @ p23_matrix(e) @ cf, -np.eye(cf.shape[1]), atol=1e-10)


def test_cd_operator_is_hermitian_linear_and_acts_on_l0_lam_le_2_only():
    basis = build_basis(8)
    w1 = cd_operator(basis, B, 1.0)
    w = cd_operator(basis, B, -2.5)
    assert abs(w1 - w1.T).max() < 1e-12 * abs(w1).max()
    assert abs(w + 2.5 * w1).max() < 1e-12 * abs(w1).max()
    assert cd_operator(basis, B, 0.0).nnz == 0
    touched = set(w1.tocoo().row)
    assert touched and all(basis.states[i].l == 0 and basis.states[i].lam <= 2 for i in touched)
    assert any(basis.states[i].lam == 2 for i in touched)
    c = _physical(basis)
    phys = c.T @ (w1 @ c)
    assert np.abs(phys - phys.T).max() < 1e-12 * np.abs(phys).max()
    # parity-odd basis: lam = 1 only
    odd = build_basis(5, parity=-1)
    wo = cd_operator(odd, B)
    assert abs(wo - wo.T).max() < 1e-12 * abs(wo).max()
    assert all(odd.states[i].lam == 1 for i in set(wo.tocoo().row))


def test_pion_partial_waves_are_symmetric_and_match_the_central_part():
    """K^{SJ}_{lam' lam}(q, q') = K^{SJ}_{lam lam'}(q', q); on the spin singlet
    (sigma_2.Q)(sigma_3.Q) = -Q^2, so K^{00}_{00}(q, q') = -2 pi int dx Q^2/(Q^2 + m^2)."""
    q = np.linspace(0.05, 4.0, 9)
    m = M_PI / HBARC
    for s, jx, lo, li in [(1, 1, 0, 2), (1, 1, 2, 2), (1, 0, 1, 1), (0, 1, 1, 1)]:
        a = pion_partial_wave(q, q, s, jx, lo, li, m)
        bt = pion_partial_wave(q, q, s, jx, li, lo, m)
        assert np.allclose(a, bt.T, rtol=1e-12, atol=1e-14)
    x, wx = np.polynomial.legendre.leggauss(400)
    qq = q[:, None, None] ** 2 + q[None, :, None] ** 2 - 2 * q[:, None, None] * q[None, :, None] * x
    ref = -2.0 * math.pi * (qq / (qq + m * m)) @ wx
    assert np.allclose(pion_partial_wave(q, q, 0, 0, 0, 0, m), ref, rtol=1e-10)


def test_cd_zero_changes_nothing_and_c_e_is_untouched():
    """With c_D = 0 the c_D-c_E line reproduces fit_contact; contact.py's operator is as
    before (its tests live in test_mb_triton.py)."""
    from nnpot.nuclear.threebody.fit3n import cd_ce_line
    from nnpot.nuclear.threebody.triton import fit_contact, solve_triton

    hw, nmax = 30.0, 8
    me = local_me(lambda s, j, t, l: minnesota_r(s) if l % 2 == 0 else None, nmax, hw, H2M)
    target = -8.0
    ref = fit_contact(me, nmax, hw, H2M, target)
    line = cd_ce_line(me, nmax, hw, H2M, [0.0, 1.0], target=target)
    assert line[0].c_e == pytest.approx(ref, abs=1e-5)
    # fit_contact at fixed c_D (what `nnpot nuclear triton --c-d 1 --fit-c-e` runs) is the
    # same point of the line, and solve_triton with both terms lands on the target
    at_1 = fit_contact(me, nmax, hw, H2M, target, c_d=1.0)
    assert at_1 == pytest.approx(line[1].c_e, abs=1e-5)
    both = solve_triton(me, nmax, hw, H2M, c_e=at_1, c_d=1.0)
    assert both.energy == pytest.approx(target, abs=1e-5) and both.c_d == 1.0
    with pytest.raises(InputError):
        cd_ce_line(me, [4, 6], hw, H2M, [0.0])
    assert line[0].v_d == 0.0
    for pt in line:
        assert pt.energy == pytest.approx(target, abs=1e-5)
        assert pt.fitted_energy == pytest.approx(target, abs=1e-5)
        assert 1.0 < pt.r_p < 2.5 and 1.0 < pt.r_m < 2.5
    # the line is a line: the c_D term's energy shift is compensated by c_E
    assert line[1].c_e != pytest.approx(line[0].c_e, abs=1e-3)
    basis = build_basis(nmax)
    b = math.sqrt(H2M / hw)
    h = assemble(basis, hw, me, extra=contact_operator(basis, b, ref))
    h0 = assemble(basis, hw, me, extra=contact_operator(basis, b, ref) + cd_operator(basis, b, 0))
    assert abs(h - h0).max() == 0.0
    e = ground_state(JacobiHamiltonian(basis, h), tol=1e-10).energy
    assert e == pytest.approx(target, abs=1e-5)
