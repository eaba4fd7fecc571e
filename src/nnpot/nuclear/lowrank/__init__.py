"""Low-rank (separable) forms of a partial-wave NN potential and their closed-form LS solve.

Conventions of :mod:`nnpot.nuclear.constants`: |p L> with <p|p'> = delta(p - p')/p^2, V in
MeV fm^3, momenta in fm^-1, energies in MeV, e(k) = (hbar c)^2 k^2/(2 mu). A potential is
a block function ``potential(p_out, p_in) -> V`` of shape (nL, nL, n_out, n_in) (nL = 1
uncoupled, 2 for a coupled block ordered L = J-1, J+1); (k, w) a quadrature mesh of
[0, inf) (:mod:`nnpot.nuclear.mesh`).

A rank-R separable potential is

    V_R(p', p) = sum_ab g_a(p') Lambda_ab g_b(p),
    g_a^L(p)   = sum_{L', i} V_{LL'}(p, q_i) c_{L'i,a},

with form factors evaluated at any p by Nystrom extension through V itself on nodes q_i
(the mesh, plus on-shell points for EST). Three constructions:

* ``svd_lowrank``: eigen-decomposition (= signed SVD) of the symmetrised mesh matrix
  A = D V D, D = diag(sqrt(w_j) k_j); keep the R eigenvalues of largest |lambda|:
  V_R = sum_a lambda_a g_a g_a^T, where D g_a are the unit eigenvectors.
* ``weinberg_lowrank``: at an energy E < 0 the Weinberg states G0(E) V psi_nu = eta_nu psi_nu
  (G0 = 1/(E - H0), real) are V-orthogonal and complete, V = sum_nu V|psi_nu><psi_nu|V /
  <psi_nu|V|psi_nu>; keep the R largest |eta_nu|. At the deuteron pole E = -B_d the bound
  state is the eta = 1 state, so the rank-1 term reproduces B_d exactly (same mesh).
* ``est_lowrank``: Ernst, Shakin, Thaler, Phys. Rev. C 8, 46 (1973):
  V_EST = sum_ij V|psi_i> (M^-1)_ij <psi_j|V, M_ij = <psi_i|V|psi_j>, with psi_i the
  Weinberg states (the bound state at a pole) for energies E < 0, and the standing-wave
  (K-matrix) solutions for E > 0 (V psi_i = K(., p_i), one per incoming L). Since
  V_EST psi_i = V psi_i, the K-matrix (on and half off shell) is exact at each chosen energy.
* ``optimised_lowrank``: the EST form with c and Lambda optimised (L-BFGS through the
  closed-form solve below) on the phase shifts over a dense energy grid, a bound-state
  pole kept exact (:mod:`nnpot.nuclear.lowrank.optimised`).

Closed-form LS (principal value by subtraction, as in :mod:`nnpot.nuclear.scattering`):

    K(p', p0) = sum_ab g_a(p') tau_ab g_b(p0),  tau = (1 - Lambda Gs)^-1 Lambda,
    Gs_ab = sum_{L,j} g_a^L(k_j) D_j g_b^L(k_j) + sum_L g_a^L(p0) D_0 g_b^L(p0),
    D_j = (2 mu/(hbar c)^2) w_j k_j^2/(p0^2 - k_j^2),
    D_0 = -(2 mu/(hbar c)^2) p0^2 sum_j w_j/(p0^2 - k_j^2),

an R x R solve per energy instead of an (nL (N+1))^2 one. Bound states of V_R: the
energies E < 0 where Lambda Gs(E) (with D_j -> w_j k_j^2/(E - e_j)) has eigenvalue 1.
"""

from nnpot.nuclear.lowrank._common import TWO_MU, BlockPotential, block_matrix
from nnpot.nuclear.lowrank.full import (
                                        augmented_system,
                                        bound_state_energy,
                                        full_onshell_k,
                                        max_phase_deviation,
                                        phase_shifts_deg,
                                        solve_augmented,
                                        solve_refined,
)
from nnpot.nuclear.lowrank.optimised import check_grid, grow, optimised_lowrank
from nnpot.nuclear.lowrank.report import est_greedy, est_states, rank_report, smallest_rank_report
from nnpot.nuclear.lowrank.separable import (
                                        SeparablePotential,
                                        est_lowrank,
                                        separable_bound_state_energy,
                                        separable_bound_states,
                                        separable_onshell_k,
                                        svd_lowrank,
                                        weinberg_lowrank,
                                        weinberg_states,
)

__all__ = ["BlockPotential", "SeparablePotential", "svd_lowrank", "weinberg_lowrank",
           "est_lowrank", "full_onshell_k", "separable_onshell_k", "bound_state_energy",
           "separable_bound_state_energy", "separable_bound_states", "block_matrix",
           "phase_shifts_deg",
           "max_phase_deviation", "solve_refined", "augmented_system",
           "solve_augmented", "rank_report", "est_states", "est_greedy",
           "TWO_MU", "weinberg_states", "optimised_lowrank", "check_grid",
           "grow", "smallest_rank_report"]
