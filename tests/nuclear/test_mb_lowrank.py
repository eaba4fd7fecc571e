"""Low-rank separable potentials: SVD, Weinberg and EST expansions, closed-form LS."""

import math

import pytest
import torch

from nnpot.errors import InputError
from nnpot.nuclear.lowrank import (
    TWO_MU,
    bound_state_energy,
    est_lowrank,
    full_onshell_k,
    max_phase_deviation,
    phase_shifts_deg,
    separable_bound_state_energy,
    separable_onshell_k,
    svd_lowrank,
    weinberg_lowrank,
)
from nnpot.nuclear.mesh import default_mesh
from nnpot.nuclear.threebody.models import malfliet_tjon_swave, yamaguchi

MT3 = malfliet_tjon_swave("MT-III")


def coupled(p_out, p_in):
    """MT-III in 3S1, a soft repulsive 3D1 and a smooth S-D coupling (not separable)."""
    p_out = torch.as_tensor(p_out, dtype=torch.float64)
    p_in = torch.as_tensor(p_in, dtype=torch.float64)
    g = lambda p: torch.exp(-p * p / 1.5)
    h = lambda p: (p * p / 1.5) * torch.exp(-p * p / 1.5)
    v00 = MT3(p_out, p_in)[0, 0]
    v22 = 40.0 * h(p_out)[:, None] * h(p_in)[None, :]
    v02 = -60.0 * g(p_out)[:, None] * h(p_in)[None, :]
    v20 = -60.0 * h(p_out)[:, None] * g(p_in)[None, :]
    return torch.stack([torch.stack([v00, v02]), torch.stack([v20, v22])])


@pytest.fixture(scope="module")
def mesh():
    return default_mesh(40)


def _p0(tlab_max=300.0, n=12):
    tl = torch.linspace(1.0, tlab_max, n, dtype=torch.float64)
    return torch.sqrt(tl / 2.0 * TWO_MU)  # E_cm = T_lab/2


def test_rank_one_svd_of_yamaguchi_is_exact(mesh):
    k, w = mesh
    pot = yamaguchi(-8.0, 1.4)
    sep = svd_lowrank(pot, k, w, 1)
    p0 = _p0()
    assert torch.allclose(separable_onshell_k(sep, p0), full_onshell_k(pot, k, w, p0),
                          rtol=1e-10, atol=0)
    assert sep(k[:5], k[:7]).shape == (1, 1, 5, 7)


def test_closed_form_equals_full_solve_of_the_separable_potential(mesh):
    k, w = mesh
    p0 = _p0()
    for sep in (svd_lowrank(coupled, k, w, 6), est_lowrank(coupled, k, w, [(-2.0, 1), 50.0])):
        assert torch.allclose(separable_onshell_k(sep, p0), full_onshell_k(sep, k, w, p0),
                              rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("pot", [MT3, coupled])
def test_rank_convergence_to_the_full_solution(mesh, pot):
    k, w = mesh
    p0 = _p0()
    full = phase_shifts_deg(full_onshell_k(pot, k, w, p0), p0)
    nl = pot(k[:1], k[:1]).shape[0]
    dev = []
    for rank in (2, 6, 12, 24, nl * k.numel()):
        sep = svd_lowrank(pot, k, w, rank)
        dev.append(max_phase_deviation(phase_shifts_deg(separable_onshell_k(sep, p0), p0), full))
    assert dev[-1] < 1e-5  # full rank: V on the mesh, Nystrom-interpolated on shell
    assert dev[3] < dev[0]
    assert min(dev[:-1]) > 1e-6  # truncation really truncates
    # EST with more energies is more accurate away from them
    e_d = bound_state_energy(pot, k, w)
    est_dev = []
    for grid in ([100.0], [20.0, 100.0, 200.0], [5.0, 25.0, 60.0, 100.0, 150.0, 220.0]):
        sep = est_lowrank(pot, k, w, [(e_d, 1)] + [e for e in grid])
        est_dev.append(max_phase_deviation(phase_shifts_deg(separable_onshell_k(sep, p0), p0),
                                           full))
    assert est_dev[2] < est_dev[0]


@pytest.mark.parametrize("pot", [MT3, coupled])
def test_rank_one_weinberg_at_the_pole_reproduces_the_bound_state(mesh, pot):
    k, w = mesh
    e_d = bound_state_energy(pot, k, w)
    assert -5.0 < e_d < -0.5
    sep = weinberg_lowrank(pot, k, w, 1, e_d)
    assert sep.rank == 1
    assert separable_bound_state_energy(sep) == pytest.approx(e_d, abs=1e-9)
    # the rank-1 SVD term (dominated by the repulsive core) does not bind
    with pytest.raises(InputError):
        separable_bound_state_energy(svd_lowrank(pot, k, w, 1))


def test_est_is_exact_at_the_chosen_energies(mesh):
    k, w = mesh
    e_d = bound_state_energy(coupled, k, w)
    energies = [30.0, 100.0, 200.0]  # CM energies [MeV], not too close to the pole
    sep = est_lowrank(coupled, k, w, [(e_d, 1)] + energies)
    assert sep.rank == 1 + 2 * len(energies)
    p = torch.sqrt(torch.tensor(energies, dtype=torch.float64) * TWO_MU)
    assert torch.allclose(separable_onshell_k(sep, p), full_onshell_k(coupled, k, w, p),
                          rtol=1e-9, atol=1e-9)
    assert separable_bound_state_energy(sep) == pytest.approx(e_d, abs=1e-9)


def test_bad_inputs(mesh):
    k, w = mesh
    with pytest.raises(InputError):
        svd_lowrank(MT3, k, w, 0)
    with pytest.raises(InputError):
        svd_lowrank(MT3, k, w, k.numel() + 1)
    with pytest.raises(InputError):
        weinberg_lowrank(MT3, k, w, 1, 5.0)
    with pytest.raises(InputError):
        svd_lowrank(MT3, -k, w, 1)
    with pytest.raises(InputError):
        svd_lowrank(lambda a, b: torch.full((1, 1, a.numel(), b.numel()), math.nan), k, w, 1)
