"""The A = 3 Jacobi NCSM Hamiltonian: basis, kinetic energy, NN interaction, radii.

Basis: all (1,2)-antisymmetric Jacobi states of :mod:`jacobi` with e = 0 .. nmax quanta
(e of the parity asked for), and the physical (antisymmetric) states spanned by the cfp
columns C_e of each e block. In the physical space

    H = C^T [ T_int + 3 V_12 (+ 3 W_3) ] C,

since <A| sum_{i<j} V_ij |A> = 3 <A|V_12|A> for antisymmetric |A>. T_int = T(xi1) + T(xi2)
is the intrinsic kinetic energy (each term the tridiagonal matrix of :func:`nnpot.nuclear.ho.
ho_kinetic` in hbar omega); V_12 acts on the pair coordinate r = sqrt(2) xi1 with the NN
HO matrix elements of oscillator length b_rel = sqrt(2) b = hbar c/sqrt(mu hbar omega),
mu = m/2, diagonal in the spectator labels and in (s, j, t) (charge-independent NN force:
the np T = 1 matrix elements are used for nn and pp too -- the isospin-averaged
approximation; T = 3/2 admixtures are neglected). H is never stored densely: ``matvec``
applies C, the sparse non-antisymmetrised H, and C^T.

Radii (point nucleons, xi2 = -sqrt(2/3) (r3 - (r1 + r2)/2)): (r3 - R_cm)^2 = (2/3) xi2^2, so
r_m^2 = (2/3) <xi2^2>, and r_p^2 = (3/Z) <P_p(3) (2/3) xi2^2> with the proton projector
of nucleon 3 diagonal in the pair isospin: P_p(3) = 0 (t = 0), 2/3 (t = 1) for 3H (MT = -1/2).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from nnpot.errors import InputError
from nnpot.nuclear.threebody.jacobi import HALF, JacobiState, cfp, jacobi_basis

__all__ = ["TritonBasis", "build_basis", "TwoBodyME", "assemble", "JacobiHamiltonian",
           "xi2_squared"]

#: key (s, j, t) -> {(l', l): matrix [n', n] in MeV} with 2n + l <= nmax
TwoBodyME = Mapping[tuple[int, int, int], Mapping[tuple[int, int], np.ndarray]]


@dataclass
class TritonBasis:
    """Jacobi basis up to ``nmax`` quanta for total J, T and parity (+1 / -1)."""

    nmax: int
    big_j: float
    big_t: float
    parity: int
    es: list[int]
    states: list[JacobiState]
    offsets: dict[int, tuple[int, int]]
    cfps: dict[int, np.ndarray]
    index: dict[JacobiState, int] = field(repr=False)

    @property
    def dim(self) -> int:
        """Number of (1,2)-antisymmetric states."""
        return len(self.states)

    @property
    def dim_physical(self) -> int:
        """Number of fully antisymmetric states."""
        return sum(c.shape[1] for c in self.cfps.values())

    def antisym_offsets(self) -> dict[int, tuple[int, int]]:
        out, pos = {}, 0
        for e in self.es:
            a = self.cfps[e].shape[1]
            out[e] = (pos, pos + a)
            pos += a
        return out


def build_basis(nmax: int, big_j: float = HALF, big_t: float = HALF,
                parity: int = 1) -> TritonBasis:
    """Basis of all e <= nmax with (-1)^e = parity; cfp computed per e block."""
    if int(nmax) != nmax or nmax < 0:
        raise InputError(f"N_max must be a non-negative integer, got {nmax}")
    if parity not in (1, -1):
        raise InputError(f"parity must be +1 or -1, got {parity}")
    e0 = 0 if parity == 1 else 1
    es = [e for e in range(e0, int(nmax) + 1, 2) if jacobi_basis(e, big_j, big_t)]
    if not es:
        raise InputError(f"no three-nucleon states with J={big_j}, T={big_t}, parity "
                         f"{parity:+d} up to N_max={nmax}")
    states, offsets, cfps = [], {}, {}
    for e in es:
        b = jacobi_basis(e, big_j, big_t)
        offsets[e] = (len(states), len(states) + len(b))
        states.extend(b)
        cfps[e] = cfp(e, big_j, big_t)
    index = {s: i for i, s in enumerate(states)}
    return TritonBasis(int(nmax), big_j, big_t, parity, es, states, offsets, cfps, index)


def _kinetic_coo(basis: TritonBasis, hw: float, oscillator: bool = False):
    """Rows, cols, values of T_int = T(xi1) + T(xi2) [MeV] (upper and lower).

    ``oscillator=True`` gives T_int + U_int = hw (e + 3) instead (diagonal; OLS mode).
    """
    rows, cols, vals = [], [], []
    for i, st in enumerate(basis.states):
        rows.append(i)
        cols.append(i)
        if oscillator:
            vals.append(hw * (st.e + 3.0))
            continue
        vals.append(0.5 * hw * (st.e + 3.0))
        up1 = st._replace(n=st.n + 1)
        k = basis.index.get(up1)
        if k is not None:
            v = 0.5 * hw * math.sqrt((st.n + 1) * (st.n + st.l + 1.5))
            rows += [i, k]
            cols += [k, i]
            vals += [v, v]
        up2 = st._replace(N=st.N + 1)
        k = basis.index.get(up2)
        if k is not None:
            v = 0.5 * hw * math.sqrt((st.N + 1) * (st.N + st.lam + 1.5))
            rows += [i, k]
            cols += [k, i]
            vals += [v, v]
    return rows, cols, vals


def _pair_coo(basis: TritonBasis, me: TwoBodyME, factor: float):
    """Rows, cols, values of factor * V_12 from two-body HO matrix elements [MeV]."""
    groups: dict[tuple, list[tuple[int, int, int]]] = {}
    for i, st in enumerate(basis.states):
        key = (st.s, st.j, st.t, st.N, st.lam, st.j3)
        groups.setdefault(key, []).append((i, st.n, st.l))
    rows, cols, vals = [], [], []
    for key, members in groups.items():
        blocks = me.get(key[:3])
        if not blocks:
            continue
        for i, n1, l1 in members:
            for k, n2, l2 in members:
                m = blocks.get((l1, l2))
                if m is None:
                    continue
                if n1 >= m.shape[0] or n2 >= m.shape[1]:
                    raise InputError(
                        f"two-body matrix elements for channel (s, j, t) = {key[:3]} cover "
                        f"too few oscillator states for N_max = {basis.nmax}")
                v = m[n1, n2]
                if v != 0.0:
                    rows.append(i)
                    cols.append(k)
                    vals.append(factor * v)
    return rows, cols, vals


def assemble(basis: TritonBasis, hw: float, me: TwoBodyME | None,
             extra: sp.spmatrix | None = None, oscillator: bool = False) -> sp.csr_matrix:
    """Sparse T_int + 3 V_12 (+ extra) on the (1,2)-antisymmetric basis [MeV].

    With ``oscillator=True`` the one-body part is T_int + U_int = hw (e + 3) (for OLS
    effective interactions, which contain -U_rel/... see :mod:`effective`).
    """
    r1, c1, v1 = _kinetic_coo(basis, hw, oscillator)
    rows, cols, vals = list(r1), list(c1), list(v1)
    if me:
        r2, c2, v2 = _pair_coo(basis, me, 3.0)
        rows += r2
        cols += c2
        vals += v2
    h = sp.coo_matrix((vals, (rows, cols)), shape=(basis.dim, basis.dim)).tocsr()
    if extra is not None:
        h = h + extra
    return h


def xi2_squared(basis: TritonBasis, weights: Callable[[JacobiState], float] | None = None
                ) -> sp.csr_matrix:
    """Operator w(state) * xi2^2 in units of b^2 (w diagonal in the pair labels)."""
    rows, cols, vals = [], [], []
    for i, st in enumerate(basis.states):
        w = 1.0 if weights is None else weights(st)
        if w == 0.0:
            continue
        rows.append(i)
        cols.append(i)
        vals.append(w * (2 * st.N + st.lam + 1.5))
        k = basis.index.get(st._replace(N=st.N + 1))
        if k is not None:
            v = -w * math.sqrt((st.N + 1) * (st.N + st.lam + 1.5))
            rows += [i, k]
            cols += [k, i]
            vals += [v, v]
    return sp.coo_matrix((vals, (rows, cols)), shape=(basis.dim, basis.dim)).tocsr()


class JacobiHamiltonian:
    """H = C^T H_sparse C on the physical states, applied matrix-free (torch).

    ``dtype``/``device`` choose the arithmetic of :meth:`matvec` (float64 default);
    float32 halves memory and time, see :mod:`nnpot.nuclear.threebody.lanczos`.
    """

    def __init__(self, basis: TritonBasis, h: sp.spmatrix, dtype=torch.float64,
                 device: str | torch.device = "cpu") -> None:
        self.basis = basis
        self.h_scipy = h.tocsr()
        self.dtype = dtype
        self.device = torch.device(device)
        self._setup()

    def _setup(self) -> None:
        h = self.h_scipy
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            self.h = torch.sparse_csr_tensor(
                torch.as_tensor(h.indptr, dtype=torch.int64),
                torch.as_tensor(h.indices, dtype=torch.int64),
                torch.as_tensor(h.data, dtype=self.dtype), size=h.shape, device=self.device,
                check_invariants=False)
        self.blocks = [torch.as_tensor(self.basis.cfps[e], dtype=self.dtype, device=self.device)
                       for e in self.basis.es]
        self.sizes = [b.shape[1] for b in self.blocks]
        self.dim = sum(self.sizes)

    def to(self, dtype=None, device=None) -> JacobiHamiltonian:
        """A copy with another dtype / device (the sparse H is rebuilt from float64)."""
        return JacobiHamiltonian(self.basis, self.h_scipy, dtype or self.dtype,
                                 device or self.device)

    def expand(self, x: torch.Tensor) -> torch.Tensor:
        """C x: physical-state amplitudes -> (1,2)-antisymmetric Jacobi amplitudes."""
        parts = torch.split(x, self.sizes, dim=0)
        return torch.cat([b @ p for b, p in zip(self.blocks, parts, strict=True)], dim=0)

    def contract(self, y: torch.Tensor) -> torch.Tensor:
        """C^T y."""
        sizes = [b.shape[0] for b in self.blocks]
        parts = torch.split(y, sizes, dim=0)
        return torch.cat([b.T @ p for b, p in zip(self.blocks, parts, strict=True)], dim=0)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """H x for x of shape (dim,) or (dim, k) [MeV]."""
        squeeze = x.dim() == 1
        if squeeze:
            x = x[:, None]
        y = self.contract(self.h @ self.expand(x))
        return y[:, 0] if squeeze else y

    def expectation(self, op: sp.spmatrix, x: np.ndarray) -> float:
        """<x| C^T op C |x> / <x|x> for a sparse operator on the Jacobi basis (float64)."""
        blocks = [self.basis.cfps[e] for e in self.basis.es]
        parts = np.split(np.asarray(x, dtype=float), np.cumsum(self.sizes)[:-1])
        u = np.concatenate([b @ p for b, p in zip(blocks, parts, strict=True)])
        return float(u @ (op @ u) / (x @ x))
