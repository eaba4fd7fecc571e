"""A = 3 Jacobi basis: angular-momentum symbols, HO brackets, P23 and the antisymmetriser.

Every fast construction is checked against a slow one that only evaluates wave functions
(``nnpot.nuclear.threebody.reference``) or counts Slater determinants.
"""

import math

import numpy as np
import pytest
from sympy import Rational
from sympy.physics.wigner import wigner_6j as sym6j
from sympy.physics.wigner import wigner_9j as sym9j

from nnpot.nuclear.threebody.angmom import clebsch_gordan, wigner_6j, wigner_9j
from nnpot.nuclear.threebody.brackets import pair_basis, rotation_brackets, rotation_generator
from nnpot.nuclear.threebody.jacobi import antisymmetrizer, cfp, jacobi_basis, p23_matrix
from nnpot.nuclear.threebody.reference import (
    count_intrinsic_states,
    coupled_pair,
    permutation_matrix_by_projection,
)


def _sym(f, *js):
    try:
        return float(f(*[Rational(int(round(2 * j)), 2) for j in js]))
    except ValueError:  # sympy refuses non-triangular arguments; the symbol is zero
        return 0.0


def test_6j_9j_cg_against_sympy():
    rng = np.random.default_rng(3)
    for _ in range(60):
        js = rng.integers(0, 9, size=6) / 2
        assert wigner_6j(*js) == pytest.approx(_sym(sym6j, *js), abs=1e-14)
    # 9j symbols of the kind used in jj <-> LS recoupling (l s j; lam 1/2 J3; L S J)
    for l in range(0, 4):
        for lam in range(0, 4):
            for s in (0, 1):
                for j in range(abs(l - s), l + s + 1):
                    for j3 in (lam - 0.5, lam + 0.5):
                        if j3 < 0:
                            continue
                        for big_l in range(abs(l - lam), l + lam + 1):
                            for big_s in (0.5, 1.5):
                                args = (l, s, j, lam, 0.5, j3, big_l, big_s, 0.5)
                                assert wigner_9j(*args) == pytest.approx(_sym(sym9j, *args),
                                                                         abs=1e-14)
    assert clebsch_gordan(1, 0, 1, 0, 0, 0) == pytest.approx(-1 / math.sqrt(3), abs=1e-15)
    assert clebsch_gordan(0.5, 0.5, 0.5, -0.5, 1, 0) == pytest.approx(math.sqrt(0.5), abs=1e-15)


def test_rotation_generator_is_antisymmetric_and_brackets_orthogonal():
    for e in range(0, 9):
        for big_l in range(0, 4):
            g = rotation_generator(e, big_l)
            if g.size:
                assert np.abs(g + g.T).max() < 1e-13
                b = rotation_brackets(e, big_l, 0.3)
                assert np.abs(b @ b.T - np.eye(len(b))).max() < 1e-12


@pytest.mark.parametrize("phi", [0.7, -math.pi / 3])
def test_brackets_rotate_wave_functions(phi):
    """<row|U(phi)|col> equals the least-squares expansion of the rotated wave function."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    c, s = math.cos(phi), math.sin(phi)
    for e in range(0, 5):
        for big_l in range(0, 3):
            basis = pair_basis(e, big_l)
            if not basis:
                continue
            big_m = min(big_l, 1)
            f = np.stack([coupled_pair(*b, big_l, big_m, x1, x2) for b in basis], -1)
            g = np.stack([coupled_pair(*b, big_l, big_m, c * x1 - s * x2, s * x1 + c * x2)
                          for b in basis], -1)
            coef, *_ = np.linalg.lstsq(f, g, rcond=None)
            assert np.abs(f @ coef - g).max() < 1e-10  # the (e, L) block is closed
            assert np.abs(coef - rotation_brackets(e, big_l, phi)).max() < 1e-10


@pytest.mark.parametrize("big_j,big_t", [(0.5, 0.5), (1.5, 0.5), (0.5, 1.5)])
def test_p23_against_wave_function_oracle(big_j, big_t):
    for e in range(0, 3):
        anti = jacobi_basis(e, big_j, big_t)
        if not anti:
            continue
        full = jacobi_basis(e, big_j, big_t, pair_antisymmetric=False)
        ref = permutation_matrix_by_projection(full, big_j, big_t, npts=200)
        idx = [full.index(st) for st in anti]
        assert np.abs(p23_matrix(e, big_j, big_t) - ref[np.ix_(idx, idx)]).max() < 1e-10


def test_antisymmetriser_is_projector_with_physical_trace():
    counts = count_intrinsic_states(6)
    for big_j, big_t in [(0.5, 0.5), (1.5, 0.5), (2.5, 0.5), (0.5, 1.5), (1.5, 1.5)]:
        for e in range(0, 7):
            if not jacobi_basis(e, big_j, big_t):
                assert counts.get((e, big_j, big_t), 0) == 0
                continue
            a = antisymmetrizer(e, big_j, big_t)
            assert np.abs(a - a.T).max() < 1e-13
            assert np.abs(a @ a - a).max() < 1e-12
            assert round(np.trace(a)) == counts.get((e, big_j, big_t), 0)
            assert abs(np.trace(a) - round(np.trace(a))) < 1e-10


def test_pair_isospin_one_has_probability_one_half_in_every_physical_state():
    """In 3H (T = 1/2) sum_i P_p(i) = Z = 1 and antisymmetry give P(t = 1) = 1/2 exactly."""
    for e in (0, 2, 4, 6):
        c = cfp(e)
        t1 = np.array([st.t == 1 for st in jacobi_basis(e)])
        assert np.allclose((c[t1] ** 2).sum(axis=0), 0.5, atol=1e-12)
        assert np.abs(c.T @ c - np.eye(c.shape[1])).max() < 1e-12
