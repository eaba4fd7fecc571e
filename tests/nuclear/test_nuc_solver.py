"""LS solver against the analytic Yamaguchi potential; K symmetry; gradients; mesh convergence."""

import math

import pytest
import torch

from nnpot.nuclear import deuteron as D
from nnpot.nuclear import mesh as M
from nnpot.nuclear import scattering as S
from nnpot.nuclear.channels import get_channel
from nnpot.nuclear.constants import HBARC2_2MU

torch.set_num_threads(1)
BETA, GAMMA = 1.4488, 0.2316  # fm^-1 (deuteron-like Yamaguchi)
LAM = HBARC2_2MU * 4 * BETA * (BETA + GAMMA) ** 2 / math.pi  # binds at E = -hbar^2 gamma^2/2mu


def yamaguchi(lam=LAM, beta=BETA):
    def v(ch, p1, p2):
        g1, g2 = 1 / (p1**2 + beta**2), 1 / (p2**2 + beta**2)
        return (-lam * g1[:, None] * g2[None, :])[None, None]

    return v


def yamaguchi_delta(p, lam=LAM, beta=BETA):
    """Analytic: K = g(p)^2 / (-1/lam - (2mu/hbar^2) I(p)),
    I(p) = PV int dk k^2 g(k)^2/(p^2-k^2) = -pi (beta^2 - p^2) / (4 beta (beta^2 + p^2)^2)."""
    i = -math.pi * (beta**2 - p**2) / (4 * beta * (beta**2 + p**2) ** 2)
    k = (1 / (p**2 + beta**2)) ** 2 / (-1 / lam - i / HBARC2_2MU)
    return torch.atan(-S.rho(p) * k)


P0 = torch.tensor([0.02, 0.3, 0.7, 1.2, 2.0], dtype=torch.float64)


def test_yamaguchi_phase_shifts_and_bound_state_analytic():
    ch = get_channel("1S0")
    m = M.default_mesh(64)
    d = S.phase_shifts(yamaguchi(), [ch], P0, m)["1S0"]
    assert torch.allclose(d, yamaguchi_delta(P0), atol=1e-6 * math.pi / 180, rtol=0)
    e, psi = D.bound_state(yamaguchi(), ch, m)
    assert abs(float(e) + HBARC2_2MU * GAMMA**2) < 1e-6


def test_yamaguchi_wave_function_observables():
    """u(r) = A (exp(-gamma r) - exp(-beta r)): A_S = A and r_d analytic; a single S wave in
    the deuteron channel (the D wave decoupled) gives P_D = 0, Q_d = 0, eta = 0."""
    base = yamaguchi()

    def v(ch, p1, p2):
        out = torch.zeros(2, 2, p1.shape[0], p2.shape[0], dtype=torch.float64)
        out[0, 0] = base(ch, p1, p2)[0, 0]
        return out

    props = D.deuteron_properties(v, M.default_mesh(64))
    g, b = GAMMA, BETA
    a2 = 1 / (1 / (2 * g) + 1 / (2 * b) - 2 / (g + b))
    r2 = a2 * (2 / (2 * g) ** 3 + 2 / (2 * b) ** 3 - 4 / (g + b) ** 3)
    assert props.B_d == pytest.approx(HBARC2_2MU * g**2, abs=1e-6)
    assert props.A_S == pytest.approx(math.sqrt(a2), rel=1e-4)
    assert props.r_d == pytest.approx(0.5 * math.sqrt(r2), rel=1e-4)
    assert abs(props.P_D) < 1e-12 and abs(props.Q_d) < 1e-12


def test_mesh_convergence_is_monotone_to_analytic():
    ch = get_channel("1S0")
    errs = []
    for n in (8, 16, 32):
        d = S.phase_shifts(yamaguchi(), [ch], P0, M.mapped_mesh(n, 1.0))["1S0"]
        errs.append(float((d - yamaguchi_delta(P0)).abs().max()))
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-8


def _coupled_test_potential(ch, p1, p2):
    """A non-separable symmetric coupled-channel potential (smooth, regulated)."""
    f1, f2 = torch.exp(-((p1 / 2.5) ** 4)), torch.exp(-((p2 / 2.5) ** 4))
    a, b = p1[:, None], p2[None, :]
    v00 = -300.0 / (1 + (a - b) ** 2) * f1[:, None] * f2[None, :]
    v02 = 40.0 * b**2 / (1 + a**2 + b**2) * f1[:, None] * f2[None, :]
    v20 = 40.0 * a**2 / (1 + a**2 + b**2) * f1[:, None] * f2[None, :]
    v22 = -50.0 * a**2 * b**2 / (1 + a**2 * b**2) * f1[:, None] * f2[None, :]
    return torch.stack([torch.stack([v00, v02]), torch.stack([v20, v22])])


def test_k_matrix_symmetric_on_and_off_shell():
    ch = get_channel("3S1-3D1")
    k, w = M.default_mesh(24)
    v = S.augmented_potential(_coupled_test_potential, ch, k, P0)
    kf = S.full_k(v, k, w, P0, 2)
    assert torch.allclose(kf, kf.transpose(-1, -2), rtol=1e-9, atol=1e-9 * kf.abs().max())
    kon = S.onshell_k(v, k, w, P0, 2)
    assert torch.allclose(kon[..., 0, 1], kon[..., 1, 0], rtol=1e-10)


def test_gradients_equal_finite_differences():
    ch = get_channel("3S1-3D1")
    m = M.default_mesh(20)
    p0 = torch.tensor([0.4, 1.1], dtype=torch.float64)
    s = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)

    def obs(scale):
        pot = lambda c, a, b: scale * _coupled_test_potential(c, a, b)
        d = S.phase_shifts(pot, [ch], p0, m, levinson=False)
        return (d["3S1"] + 2 * d["3D1"] + 3 * d["E1"]).sum()

    obs(s).backward()
    h = 1e-6
    one = torch.tensor(1.0, dtype=torch.float64)
    fd = (obs(one + h) - obs(one - h)) / (2 * h)
    assert float(s.grad) == pytest.approx(float(fd), rel=1e-6)


def test_stapp_phases_rebuild_s_matrix_from_k():
    """The bar phases rebuild S = (1 + iR)(1 - iR)^-1, R = -rho K, with S_12 -> -S_12."""
    ch = get_channel("3S1-3D1")
    k, w = M.default_mesh(24)
    v = S.augmented_potential(_coupled_test_potential, ch, k, P0)
    r = -S.rho(P0)[:, None, None] * S.onshell_k(v, k, w, P0, 2)
    eye = torch.eye(2, dtype=torch.complex128)
    smat = (eye + 1j * r) @ torch.linalg.inv(eye - 1j * r)
    d = S.phase_shifts(_coupled_test_potential, [ch], P0, (k, w), levinson=False)
    dm, dp, e = d["3S1"], d["3D1"], d["E1"]
    assert torch.allclose(torch.cos(2 * e) * torch.exp(2j * dm), smat[:, 0, 0], atol=1e-10)
    assert torch.allclose(torch.cos(2 * e) * torch.exp(2j * dp), smat[:, 1, 1], atol=1e-10)
    assert torch.allclose(1j * torch.sin(2 * e) * torch.exp(1j * (dm + dp)), -smat[:, 0, 1],
                          atol=1e-10)
