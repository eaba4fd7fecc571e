"""Antisymmetrised Jacobi-coordinate HO basis for three nucleons.

Basis (Navratil, Kamuntavicius, Barrett, Phys. Rev. C 61, 044001 (2000), "NKB"): normalised
Jacobi coordinates xi1 = (r1 - r2)/sqrt(2), xi2 = sqrt(2/3) ((r1 + r2)/2 - r3), one HO
length b = hbar c / sqrt(m c^2 hbar omega) for both, and states

    |a> = |[(n l, s) j, (N lam, 1/2) J3] J M> x |(t, 1/2) T MT>,

antisymmetric in particles 1, 2: (-1)^(l + s + t) = -1. Total quanta e = 2n + l + 2N + lam;
parity (-1)^(l + lam).

Antisymmetriser. On the (1,2)-antisymmetric space the three-body antisymmetriser is
A = (1 - 2 P23)/3 (since <a|P13|b> = <a|P23|b> there). P23 factorises into space, spin and
isospin: in the LS-coupled basis |[(n l)(N lam) L, (s 1/2) S] J> it is
B^L x X^S x Y^T, where B^L = U(-pi/3) D (D = (-1)^lam reflects xi2, U the rotation of
:mod:`brackets`; (P23 f)(xi1, xi2) = f(xi1/2 + sqrt(3)/2 xi2, sqrt(3)/2 xi1 - xi2/2)) and
X^S, Y^T are the 3x... spin/isospin exchange matrices, computed here from explicit
Clebsch-Gordan vectors. jj <-> LS uses the 9j symbol,
<[(l lam) L, (s 1/2) S] J | [(l s) j, (lam 1/2) J3] J> = j^ J3^ L^ S^ {l s j; lam 1/2 J3; L S J}.

A is a projector whose eigenvalue-1 eigenvectors (the coefficients of fractional
parentage, "cfp") span the physical states; it conserves e, J and T, so it is built and
diagonalised block by block in e.
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np
import scipy.linalg

from nnpot.nuclear.threebody.angmom import clebsch_gordan, hat, wigner_9j
from nnpot.nuclear.threebody.brackets import pair_basis, rotation_brackets

__all__ = ["JacobiState", "jacobi_basis", "p23_matrix", "antisymmetrizer", "cfp",
           "exchange_matrix"]

HALF = 0.5


class JacobiState(NamedTuple):
    """|[(n l, s) j, (N lam, 1/2) J3] J> |(t, 1/2) T> (J and T fixed by the block)."""

    n: int
    l: int
    s: int
    j: int
    t: int
    N: int
    lam: int
    j3: float

    @property
    def e(self) -> int:
        return 2 * self.n + self.l + 2 * self.N + self.lam


@cache
def jacobi_basis(e: int, big_j: float = HALF, big_t: float = HALF,
                 pair_antisymmetric: bool = True) -> tuple[JacobiState, ...]:
    """All (1,2)-antisymmetric Jacobi states with e quanta, total J and T (any parity).

    ``pair_antisymmetric=False`` also lists the (1,2)-symmetric states (for test oracles).
    """
    out = []
    for e1 in range(e + 1):
        e2 = e - e1
        for l in range(e1 % 2, e1 + 1, 2):
            n = (e1 - l) // 2
            for lam in range(e2 % 2, e2 + 1, 2):
                big_n = (e2 - lam) // 2
                for j3 in (lam - HALF, lam + HALF):
                    if j3 < 0:
                        continue
                    for s in (0, 1):
                        for j in range(abs(l - s), l + s + 1):
                            if not abs(j - j3) <= big_j <= j + j3:
                                continue
                            for t in (0, 1):
                                if pair_antisymmetric and (l + s + t) % 2 == 0:
                                    continue
                                if not abs(t - HALF) <= big_t <= t + HALF:
                                    continue
                                out.append(JacobiState(n, l, s, j, t, big_n, lam, j3))
    return tuple(out)


@cache
def exchange_matrix(big_s: float) -> np.ndarray:
    """<(s' , 1/2) S | P23 | (s, 1/2) S> for spins (or isospins) 1/2, rows/cols s = 0, 1.

    Built from explicit product-state vectors (8 components), so it needs no recoupling
    formula. Entries for s with no coupling to S are zero.
    """
    halves = (HALF, -HALF)

    def vec(s12: int) -> np.ndarray:
        v = np.zeros((2, 2, 2))
        ms_tot = big_s
        for i1, m1 in enumerate(halves):
            for i2, m2 in enumerate(halves):
                for i3, m3 in enumerate(halves):
                    v[i1, i2, i3] = (clebsch_gordan(HALF, m1, HALF, m2, s12, m1 + m2)
                                     * clebsch_gordan(s12, m1 + m2, HALF, m3, big_s, ms_tot))
        return v

    x = np.zeros((2, 2))
    for s1 in (0, 1):
        for s2 in (0, 1):
            v1, v2 = vec(s1), vec(s2)
            x[s1, s2] = np.sum(v1 * v2.transpose(0, 2, 1))  # P23 swaps particles 2 and 3
    return x


def _ls_components(st: JacobiState, big_j: float) -> list[tuple[int, float, float]]:
    """[(L, S, <LS|jj>)] for a jj-coupled state."""
    out = []
    for big_l in range(abs(st.l - st.lam), st.l + st.lam + 1):
        for big_s in (HALF, 1.5):
            if not (abs(st.s - HALF) <= big_s <= st.s + HALF):
                continue
            if not abs(big_l - big_s) <= big_j <= big_l + big_s:
                continue
            c = (hat(st.j) * hat(st.j3) * hat(big_l) * hat(big_s)
                 * wigner_9j(st.l, st.s, st.j, st.lam, HALF, st.j3, big_l, big_s, big_j))
            if c:
                out.append((big_l, big_s, c))
    return out


@cache
def p23_matrix(e: int, big_j: float = HALF, big_t: float = HALF) -> np.ndarray:
    """<a'| P23 |a> in ``jacobi_basis(e, J, T)`` (real, symmetric)."""
    basis = jacobi_basis(e, big_j, big_t)
    dim = len(basis)
    # U[a, (L, S, spatial index)] : jj -> LS transformation, spatial index in pair_basis(e, L)
    comps = [_ls_components(st, big_j) for st in basis]
    ls_keys = sorted({(big_l, big_s) for c in comps for (big_l, big_s, _) in c})
    y = exchange_matrix(big_t)
    p = np.zeros((dim, dim))
    for big_l, big_s in ls_keys:
        space = pair_basis(e, big_l)
        index = {sp: i for i, sp in enumerate(space)}
        b = rotation_brackets(e, big_l, -math.pi / 3.0)
        refl = np.array([(-1) ** sp[3] for sp in space], dtype=float)
        bd = b * refl[None, :]  # U(-pi/3) D
        x = exchange_matrix(big_s)
        # rows of U for this (L, S): coefficient, spatial index, s, t per jj state
        rows, coefs, sidx, spins, isos = [], [], [], [], []
        for a, (st, comp) in enumerate(zip(basis, comps, strict=True)):
            for big_l2, big_s2, c in comp:
                if big_l2 == big_l and big_s2 == big_s:
                    rows.append(a)
                    coefs.append(c)
                    sidx.append(index[(st.n, st.l, st.N, st.lam)])
                    spins.append(st.s)
                    isos.append(st.t)
        if not rows:
            continue
        rows = np.array(rows)
        coefs = np.array(coefs)
        sidx = np.array(sidx)
        spins = np.array(spins)
        isos = np.array(isos)
        block = (bd[np.ix_(sidx, sidx)] * x[np.ix_(spins, spins)] * y[np.ix_(isos, isos)]
                 * np.outer(coefs, coefs))
        np.add.at(p, (rows[:, None], rows[None, :]), block)
    return p


def antisymmetrizer(e: int, big_j: float = HALF, big_t: float = HALF) -> np.ndarray:
    """A = (1 - 2 P23)/3 on the (1,2)-antisymmetric states with e quanta (a projector)."""
    p = p23_matrix(e, big_j, big_t)
    return (np.eye(p.shape[0]) - 2.0 * p) / 3.0


@cache
def cfp(e: int, big_j: float = HALF, big_t: float = HALF) -> np.ndarray:
    """Coefficients of fractional parentage: columns = orthonormal physical states.

    Shape (dim jacobi_basis(e), number of antisymmetric states); the eigenvectors of A with
    eigenvalue 1 (eigenvalues are 0 or 1 to rounding; anything else raises).
    """
    a = antisymmetrizer(e, big_j, big_t)
    if a.shape[0] == 0:
        return np.zeros((0, 0))
    w, v = scipy.linalg.eigh(a)
    if np.abs(w * (1.0 - w)).max() > 1e-8:
        raise RuntimeError(f"antisymmetriser at e = {e} is not a projector")
    return np.ascontiguousarray(v[:, w > 0.5])
