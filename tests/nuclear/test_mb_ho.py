"""HO radial functions, HO-basis matrix elements of NN potentials, and the HO file format."""

import math

import numpy as np
import pytest
import torch
from scipy.special import eval_genlaguerre, gammaln, spherical_jn

from nnpot.errors import InputError, MalformedFileError
from nnpot.nuclear.constants import MU_NP
from nnpot.nuclear.export import read_ho_file, write_ho_file
from nnpot.nuclear.ho import (
    gauss_legendre,
    ho_channel_hamiltonian,
    ho_matrix_local,
    ho_matrix_momentum,
    ho_mesh,
    ho_radial_p,
    ho_radial_r,
    ho_table,
    oscillator_length,
)
from nnpot.nuclear.lowrank import TWO_MU, bound_state_energy
from nnpot.nuclear.mesh import two_part_mesh


def test_ho_table_matches_laguerre_and_is_orthonormal_to_high_n():
    x = np.linspace(0, 7, 60)
    for l in (0, 3):
        ref = np.array([math.exp(0.5 * (math.log(2) + gammaln(n + 1) - gammaln(n + l + 1.5)))
                        * x**l * np.exp(-x * x / 2) * eval_genlaguerre(n, l + 0.5, x * x)
                        for n in range(15)])
        assert np.abs(ho_table(l, 14, x) - ref).max() < 1e-12
    xg, wg = gauss_legendre(2000)
    xx, ww = 25.0 * (xg + 1) / 2, 25.0 * wg / 2
    for l in (0, 5):
        t = ho_table(l, 120, xx)
        assert np.abs((t * ww * xx * xx) @ t.T - np.eye(121)).max() < 1e-11


def test_momentum_functions_are_hankel_transforms_with_sign_minus_one_to_n():
    """<p l|n l> = sqrt(2/pi) int dr r^2 j_l(p r) R_nl(r) (no i^l): (-1)^n times itself."""
    r = np.linspace(0, 40, 40001)
    for n, l, b in [(0, 0, 1.7), (1, 0, 1.7), (2, 1, 1.2), (3, 2, 2.0)]:
        p = np.array([0.3, 0.9, 1.7])
        num = [math.sqrt(2 / math.pi) * np.trapezoid(r * r * spherical_jn(l, q * r)
                                                     * ho_radial_r(n, l, r, b), r) for q in p]
        assert np.abs(np.array(num) - ho_radial_p(n, l, p, b)).max() < 1e-10


def _gaussian_swave(p_out, p_in, l, v0=-120.0, kappa=0.8):
    """V_l(p', p) = (2/pi) int r^2 j_l(p' r) V0 exp(-kappa r^2) j_l(p r) dr (quadrature)."""
    x, w = gauss_legendre(600)
    r, wr = 6.0 * (x + 1), 6.0 * w
    f = v0 * np.exp(-kappa * r * r) * wr * r * r * 2 / math.pi
    jo = spherical_jn(l, np.outer(p_out, r))
    ji = spherical_jn(l, np.outer(p_in, r))
    return (jo * f) @ ji.T


@pytest.mark.parametrize("l", [0, 2])
def test_momentum_route_equals_coordinate_route_for_a_local_potential(l):
    b, nmax = 1.9, 12
    k, w = ho_mesh(nmax, b, 160)
    m_p = ho_matrix_momentum(k, w, _gaussian_swave(k, k, l), l, l, nmax, b)
    m_r = ho_matrix_local(lambda r: -120.0 * np.exp(-0.8 * r * r), l, nmax, b)
    assert np.abs(m_p - m_r).max() < 1e-9
    assert np.abs(m_p - m_p.T).max() < 1e-12


def _coupled_separable(p_out, p_in, lam=-150.0, beta=1.2, t=0.6):
    """Rank-one coupled S-D separable potential (nL = 2) [MeV fm^3]."""
    def g(p):
        p = torch.as_tensor(p, dtype=torch.float64)
        e = torch.exp(-p * p / beta**2)
        return torch.stack([e, t * (p / beta) ** 2 * e])
    go, gi = g(p_out), g(p_in)
    return lam * go[:, None, :, None] * gi[None, :, None, :]


@pytest.mark.parametrize("hw", [10.0, 20.0])
def test_bound_state_from_ho_diagonalisation_converges_to_momentum_space(hw):
    k, w = two_part_mesh(80, 40, 1.0, 3.0)
    exact = bound_state_energy(_coupled_separable, k, w)
    assert -30.0 < exact < -1.0
    b = math.sqrt(2.0 / (TWO_MU * hw))  # relative oscillator length with the np mu
    assert b == pytest.approx(oscillator_length(hw, MU_NP), rel=1e-12)
    errors = []
    for nmax in (8, 16, 24, 32, 40):
        q, wq = ho_mesh(nmax, b, 200)
        v = _coupled_separable(q, q).numpy()
        blocks = {(lo, li): ho_matrix_momentum(q, wq, v[a, c], lo, li, nmax, b)
                  for a, lo in enumerate((0, 2)) for c, li in enumerate((0, 2))}
        h = ho_channel_hamiltonian(blocks, (0, 2), nmax, hw)
        assert np.abs(h - h.T).max() < 1e-10
        errors.append(np.linalg.eigvalsh(h)[0] - exact)
    assert all(e > -1e-9 for e in errors)  # variational
    assert all(e2 < e1 for e1, e2 in zip(errors, errors[1:], strict=False))  # monotonic
    assert errors[-1] < 1e-3  # MeV: within 1 keV at N_max = 40


def test_ho_file_round_trip_and_header(tmp_path):
    rng = np.random.default_rng(1)
    nmax, hw, h2m = 6, 20.0, 41.47
    me = {}
    for key, ls in {(0, 0, 1): (0,), (1, 1, 0): (0, 2)}.items():
        me[key] = {}
        for lo in ls:
            for li in ls:
                a = rng.normal(size=((nmax - lo) // 2 + 1, (nmax - li) // 2 + 1))
                me[key][(lo, li)] = a
        if len(ls) == 2:
            me[key][(2, 0)] = me[key][(0, 2)].T.copy()
    path = tmp_path / "v.ho"
    write_ho_file(path, me, hw, nmax, h2m, meta={"source": "test"})
    back, head = read_ho_file(path)
    assert float(head["hbar_omega"]) == hw and int(head["nmax"]) == nmax
    assert float(head["b_rel"]) == pytest.approx(math.sqrt(2 * h2m / hw), rel=1e-11)
    assert head["source"] == "test"
    for key in me:
        for blk in me[key]:
            assert np.array_equal(back[key][blk], me[key][blk])
    text = path.read_text()
    assert "convention" in text and "MeV" in text


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(InputError):
        oscillator_length(-1.0, 938.0)
    with pytest.raises(InputError):
        ho_matrix_momentum(np.ones(3), np.ones(3), np.ones((2, 2)), 0, 0, 4, 1.0)
    with pytest.raises(InputError):
        ho_matrix_momentum(np.ones(2), np.ones(2), np.full((2, 2), np.nan), 0, 0, 4, 1.0)
    bad = tmp_path / "bad.ho"
    bad.write_text("hello\n")
    with pytest.raises(MalformedFileError):
        read_ho_file(bad)
    bad.write_text("# nnpot-ho-relative 1\n# hbar_omega = 20\n# nmax = 2\n"
                   "# hbar2_over_m = 41.47\n0 0 1 0 0 0\n")
    with pytest.raises(MalformedFileError):
        read_ho_file(bad)
    with pytest.raises(MalformedFileError):
        read_ho_file(tmp_path / "missing.ho")
