"""A = 3 bound state (3H, J^pi = 1/2+, T = 1/2) in the Jacobi NCSM: energies, radii, N_max scans.

``solve_triton`` builds the antisymmetrised basis up to N_max, the Hamiltonian
H = T_int + 3 V_12 (+ 3 W_3) of :mod:`hamiltonian`, and finds its ground state by Lanczos
(:mod:`lanczos`). The NN interaction enters through two-body HO matrix elements
(:mod:`interaction`), bare or as the OLS effective interaction (``ols=True``; then the
one-body part is hw (e + 3), see :mod:`effective`). The three-nucleon contact
(:mod:`contact`) is added with strength c_E. Point-nucleon radii of 3H (Z = 1):

    r_p^2 = 2 b^2 <P_p(3) xi2^2>,  P_p(3) = 2/3 (t = 1), 0 (t = 0);  r_m^2 = (2/3) b^2 <xi2^2>,

with b = sqrt(hbar^2/(m hbar omega)) and xi2 in units of b (bare operators, also with OLS).
Energies in MeV, lengths in fm.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from nnpot.errors import InputError
from nnpot.nuclear.threebody.contact import contact_operator
from nnpot.nuclear.threebody.contact_d import cd_operator
from nnpot.nuclear.threebody.extrapolate import Extrapolation, extrapolate_exponential
from nnpot.nuclear.threebody.hamiltonian import (
    JacobiHamiltonian,
    assemble,
    build_basis,
    xi2_squared,
)
from nnpot.nuclear.threebody.interaction import effective_me
from nnpot.nuclear.threebody.lanczos import ground_state

__all__ = ["TritonResult", "solve_triton", "triton_scan", "fit_contact", "bracketed_root",
           "three_body_operator", "B_3H"]

B_3H = 8.4818  #: 3H binding energy [MeV] (AME2020, 8.481798 MeV): the 3NF fit target


@dataclass
class TritonResult:
    """One NCSM ground state: energy [MeV], radii [fm], sizes and solver statistics."""

    nmax: int
    hw: float
    energy: float
    r_p: float
    r_m: float
    dim_jacobi: int
    dim_physical: int
    iterations: int
    residual: float
    seconds_build: float
    seconds_solve: float
    precision: str
    ols: bool
    c_e: float
    c_d: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def three_body_operator(basis, b: float, c_e: float = 0.0, c_d: float = 0.0,
                        contact: tuple[float, int] = (500.0, 2)):
    """c_E W_E + c_D W_D [MeV] on ``basis`` (Jacobi length ``b`` [fm], regulator
    ``contact`` = (Lambda [MeV], n)), or None when both vanish (:mod:`contact`,
    :mod:`contact_d`)."""
    ops = []
    if c_e:
        ops.append(contact_operator(basis, b, c_e, contact[0], contact[1]))
    if c_d:
        ops.append(cd_operator(basis, b, c_d, contact[0], contact[1]))
    return sum(ops[1:], ops[0]) if ops else None


def solve_triton(me: dict, nmax: int, hw: float, hbar2_m: float, ols: bool = False,
                 c_e: float = 0.0, contact: tuple[float, int] = (500.0, 2),
                 precision: str = "float64", device: str | torch.device = "cpu",
                 tol: float = 1e-9, return_vector: bool = False, c_d: float = 0.0):
    """Ground state of 3H at ``nmax`` quanta and ``hw`` [MeV] from two-body HO matrix elements.

    ``me``: {(s, j, t): {(l', l): M}} covering >= nmax quanta (for ``ols=True`` already the
    effective interaction for this nmax). ``c_e``, ``c_d``: strengths of the 3NF contact
    and one-pion-exchange-contact terms (dimensionless, see :mod:`contact`,
    :mod:`contact_d`), regulator ``contact`` = (Lambda [MeV], n).
    """
    if hw <= 0 or hbar2_m <= 0:
        raise InputError(f"hbar omega and hbar^2/m must be positive, got {hw}, {hbar2_m}")
    t0 = time.perf_counter()
    basis = build_basis(nmax)
    b = math.sqrt(hbar2_m / hw)
    extra = three_body_operator(basis, b, c_e, c_d, contact)
    h = assemble(basis, hw, me, extra=extra, oscillator=ols)
    ham = JacobiHamiltonian(basis, h, device=device)
    t1 = time.perf_counter()
    res = ground_state(ham, precision=precision, tol=tol)
    t2 = time.perf_counter()
    x = res.vector.detach().to(torch.float64).cpu().numpy()
    w_p = xi2_squared(basis, lambda st: 2.0 / 3.0 if st.t == 1 else 0.0)
    w_m = xi2_squared(basis)
    rp = math.sqrt(2.0 * b * b * ham.expectation(w_p, x))
    rm = math.sqrt(2.0 / 3.0 * b * b * ham.expectation(w_m, x))
    out = TritonResult(int(nmax), float(hw), float(res.energy), rp, rm, basis.dim,
                       basis.dim_physical, res.iterations, res.residual, t1 - t0, t2 - t1,
                       precision, bool(ols), float(c_e), float(c_d))
    return (out, res.vector, ham) if return_vector else out


def triton_scan(bare_me: dict, nmax_list: Sequence[int], hw: float, hbar2_m: float,
                ols: bool = False, nbig: int | None = None, c_e: float = 0.0,
                contact: tuple[float, int] = (500.0, 2), precision: str = "float64",
                window: int = 3, log: Callable[[dict], None] | None = None,
                c_d: float = 0.0) -> tuple[list[TritonResult], Extrapolation | None]:
    """Energies for each N_max and the exponential extrapolation (if >= ``window`` points).

    ``bare_me`` covers max(nmax_list) quanta (bare) or ``nbig`` quanta (OLS).
    """
    results = []
    for nmax in nmax_list:
        me = effective_me(bare_me, nmax, nbig, hw) if ols else bare_me
        r = solve_triton(me, nmax, hw, hbar2_m, ols=ols, c_e=c_e, contact=contact,
                         precision=precision, c_d=c_d)
        results.append(r)
        if log:
            log(r.as_dict())
    ext = None
    if len(results) >= window:
        ext = extrapolate_exponential([r.nmax for r in results], [r.energy for r in results],
                                      window=window)
    return results, ext


def bracketed_root(f: Callable[[float], float], bracket: tuple[float, float],
                   max_abs: float, tol: float, what: str) -> float:
    """Root of ``f`` by Brent's method; when ``bracket`` holds no sign change it is widened
    by factors of 4 up to ``max_abs``, then InputError (``what`` names the quantity)."""
    import scipy.optimize

    lo, hi = bracket
    flo, fhi = f(lo), f(hi)
    while np.sign(flo) == np.sign(fhi) and max(abs(lo), abs(hi)) * 4.0 <= max_abs:
        lo, hi = 4.0 * lo, 4.0 * hi
        flo, fhi = f(lo), f(hi)
    if np.sign(flo) == np.sign(fhi):
        raise InputError(f"no {what} in [{lo}, {hi}] (f = {flo:.3f}, {fhi:.3f} MeV at the "
                         "ends)")
    return float(scipy.optimize.brentq(f, lo, hi, xtol=tol))


def fit_contact(me, nmax, hw: float, hbar2_m: float, target: float,
                ols: bool = False, contact: tuple[float, int] = (500.0, 2),
                bracket: tuple[float, float] = (-5.0, 5.0), tol: float = 1e-6,
                nbig: int | None = None, max_abs: float = 1e4, c_d: float = 0.0) -> float:
    """c_E such that the 3H energy equals ``target`` [MeV] (at fixed ``c_d``).

    ``nmax`` an int: the energy at that N_max. A list of >= 3 N_max: the exponentially
    extrapolated energy (:mod:`extrapolate`). ``me`` are matrix elements valid for every
    N_max (bare), or bare ones up to ``nbig`` quanta when ``ols`` (converted per N_max).
    H(c_E) = H_NN + c_D W_D + c_E W_E is linear in c_E; the root is found with Brent's
    method. When ``bracket`` holds no root it is widened by factors of 4 up to |c_E| =
    ``max_abs`` (a potential whose wave function has little weight where the regulated
    contact acts needs an unnaturally large c_E; the caller should report that, not hide
    it). :func:`nnpot.nuclear.threebody.fit3n.cd_ce_line` scans c_D.
    """
    nlist = [int(nmax)] if np.isscalar(nmax) else sorted(int(n) for n in nmax)
    if len(nlist) == 2:
        raise InputError("give one N_max or at least three (for the extrapolation)")
    b = math.sqrt(hbar2_m / hw)
    systems = []
    for n in nlist:
        basis = build_basis(n)
        m = effective_me(me, n, nbig, hw) if (ols and nbig is not None) else me
        systems.append((basis, assemble(basis, hw, m, oscillator=ols,
                                        extra=three_body_operator(basis, b, 0.0, c_d,
                                                                  contact)),
                        contact_operator(basis, b, 1.0, contact[0], contact[1])))
    start: dict = {}

    def energy(c: float) -> float:
        es = []
        for i, (basis, h_nn, w) in enumerate(systems):
            r = ground_state(JacobiHamiltonian(basis, h_nn + c * w), tol=1e-10,
                             v0=start.get(i))
            start[i] = r.vector  # warm start for the next c
            es.append(r.energy)
        e = es[0] if len(es) == 1 else extrapolate_exponential(nlist, es).e_inf
        return e - target

    return bracketed_root(energy, bracket, max_abs, tol,
                          f"c_E that gives E = {target} MeV at c_D = {c_d}")
