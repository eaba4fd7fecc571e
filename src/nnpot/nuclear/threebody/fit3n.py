"""The c_D - c_E line of the N2LO three-nucleon force fixed by the triton binding energy.

For each c_D in a list, c_E is fitted so that the 3H ground-state energy of

    H(c_D, c_E) = T_int + 3 V_12 + c_D W_D + c_E W_E

(W_D = :func:`contact_d.cd_operator` and W_E = :func:`contact.contact_operator` at unit
strength, the same nonlocal regulator f(p, q) for both) equals ``target`` (default
-B(3H) = -8.4818 MeV). H is linear in (c_D, c_E), so each point is one Brent root search in
c_E (as :func:`triton.fit_contact`), with the Lanczos ground state warm-started from the
previous c_E. With one N_max the energy at that N_max is fitted; with >= 3 the exponentially
extrapolated one (:mod:`extrapolate`). Along the line the ground state at the largest N_max
gives E, the point-proton and point-nucleon radii r_p, r_m [fm] (operators of
:mod:`triton`) and the 3NF expectation values <V_D>, <V_E> [MeV].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from nnpot.errors import InputError
from nnpot.nuclear.threebody.contact import contact_operator
from nnpot.nuclear.threebody.contact_d import cd_operator
from nnpot.nuclear.threebody.extrapolate import extrapolate_exponential
from nnpot.nuclear.threebody.hamiltonian import (
    JacobiHamiltonian,
    assemble,
    build_basis,
    xi2_squared,
)
from nnpot.nuclear.threebody.interaction import effective_me
from nnpot.nuclear.threebody.lanczos import ground_state
from nnpot.nuclear.threebody.triton import B_3H, bracketed_root

__all__ = ["CdCePoint", "cd_ce_line"]

@dataclass
class CdCePoint:
    """One point of the c_D - c_E line (energies MeV, radii fm, LECs dimensionless)."""

    c_d: float
    c_e: float
    nmax: int
    energy: float
    fitted_energy: float
    r_p: float
    r_m: float
    v_d: float
    v_e: float

    def as_dict(self) -> dict:
        return asdict(self)


def cd_ce_line(me, nmax, hw: float, hbar2_m: float, c_d_values: Sequence[float],
               target: float = -B_3H, ols: bool = False, nbig: int | None = None,
               regulator: tuple[float, int] = (500.0, 2),
               bracket: tuple[float, float] = (-5.0, 5.0), tol: float = 1e-6,
               max_abs: float = 1e4) -> list[CdCePoint]:
    """c_E(c_D) with E(3H) = ``target`` [MeV] for each c_D, plus E, r_p, r_m along the line.

    ``me``: two-body HO matrix elements {(s, j, t): {(l', l): M}} [MeV] valid for every
    N_max (bare), or bare ones up to ``nbig`` quanta when ``ols``. ``nmax``: one N_max or
    >= 3 of them (extrapolated energy fitted). ``hw`` [MeV], ``hbar2_m`` [MeV fm^2];
    ``regulator`` = (Lambda [MeV], n). The bracket in c_E is widened by factors of 4 up to
    |c_E| = ``max_abs`` when it holds no root; no root raises InputError.
    """
    nlist = [int(nmax)] if np.isscalar(nmax) else sorted(int(n) for n in nmax)
    if len(nlist) == 2:
        raise InputError("give one N_max or at least three (for the extrapolation)")
    if not len(c_d_values):
        raise InputError("give at least one c_D value")
    if hw <= 0 or hbar2_m <= 0:
        raise InputError(f"hbar omega and hbar^2/m must be positive, got {hw}, {hbar2_m}")
    b = math.sqrt(hbar2_m / hw)
    lam, n_reg = regulator
    systems = []
    for n in nlist:
        basis = build_basis(n)
        m = effective_me(me, n, nbig, hw) if (ols and nbig is not None) else me
        systems.append((basis, assemble(basis, hw, m, oscillator=ols),
                        cd_operator(basis, b, 1.0, lam, n_reg),
                        contact_operator(basis, b, 1.0, lam, n_reg)))
    start: dict = {}

    def solve(i: int, c_d: float, c_e: float):
        basis, h_nn, w_d, w_e = systems[i]
        ham = JacobiHamiltonian(basis, h_nn + c_d * w_d + c_e * w_e)
        r = ground_state(ham, tol=1e-10, v0=start.get(i))
        start[i] = r.vector
        return r, ham

    def energy(c_e: float, c_d: float) -> float:
        es = [solve(i, c_d, c_e)[0].energy for i in range(len(systems))]
        e = es[0] if len(es) == 1 else extrapolate_exponential(nlist, es).e_inf
        return e - target

    out = []
    for c_d in c_d_values:
        c_d = float(c_d)
        c_e = bracketed_root(lambda c, c_d=c_d: energy(c, c_d), bracket, max_abs, tol,
                             f"c_E that gives E = {target} MeV at c_D = {c_d}")
        fitted = energy(c_e, c_d) + target
        res, ham = solve(len(systems) - 1, c_d, c_e)
        basis, _, w_d, w_e = systems[-1]
        x = res.vector.detach().cpu().numpy().astype(float)
        w_p = xi2_squared(basis, lambda st: 2.0 / 3.0 if st.t == 1 else 0.0)
        rp = math.sqrt(2.0 * b * b * ham.expectation(w_p, x))
        rm = math.sqrt(2.0 / 3.0 * b * b * ham.expectation(xi2_squared(basis), x))
        out.append(CdCePoint(c_d, c_e, nlist[-1], float(res.energy), float(fitted), rp, rm,
                             c_d * ham.expectation(w_d, x), c_e * ham.expectation(w_e, x)))
    return out
