"""Physical long-range tails added to the short-range network: damped pairwise dispersion.

    E_disp = − Σ_{i<j} S(r_ij) [ f_6(r_ij) C6_ij / r_ij⁶ + f_8(r_ij) C8_ij / r_ij⁸ ]   (eV)

summed over all pairs (periodic images included) within the tail's own ``cutoff`` (Å,
default 20) by a vesin half neighbour list; the C8 term only with ``c8 = true``. Damping:

* Tang–Toennies (K. T. Tang, J. P. Toennies, J. Chem. Phys. 80, 3726 (1984)):
  f_n(r) = 1 − e^{−x} Σ_{k=0}^{n} x^k/k! = P(n+1, x), x = b_ij r (regularised incomplete
  gamma function), so f_n ~ x^{n+1}/(n+1)! and the term stays finite as r → 0;
* Becke–Johnson (A. D. Becke, E. R. Johnson, J. Chem. Phys. 123, 154101 (2005)):
  f_n(r) = r^n / (r^n + R0_ij^n), i.e. the term is −C_n/(r^n + R0^n).

S(r) switches the tail off smoothly (C², zero value, slope and curvature at the cutoff):
S = 1 − 10x³ + 15x⁴ − 6x⁵ with x = (r − r_on)/(r_c − r_on) on [r_on, r_c], r_on = 0.8 r_c.
Energies are interaction energies: E → 0 as all distances → ∞ (isolated atoms are 0 eV).

Coefficients come from :mod:`nnpot.atomistic.c6_table` (cited there) or a number. With
``c6 = "learn"`` every committee member m has per-element log-scales θ_{m,e,n} (n = 6, 8)
and C_n,ij = C⁰_n,ij exp((θ_{m,i,n} + θ_{m,j,n})/2): positive, and trained jointly with the
networks as an anchored ensemble (Pearce et al., AISTATS 2020): member m starts at its own
prior draw θ⁰_m ~ N(0, σ²) around the table (σ = :data:`PRIOR_WIDTH`, ~20 % in C6), is held
there for the first :data:`WARMUP` of the epochs while its network fits the rest, and is
then pulled towards θ⁰_m by a weak prior term (:meth:`DispersionTail.penalty`). Where the
data determine the coefficients the members converge on them; where they do not (e.g. a
dimer fitted entirely inside the network's cutoff), the members keep the prior's spread,
and the committee shows that C6 is not known rather than agreeing on an arbitrary value.
Between the two (data beyond the network's cutoff over a short range of r pin one
combination of C6 and C8), the members agree where the data are and fan out away from them.

Since damping does not depend on θ, the tail is linear in the scales: E_m = Σ_k s_mk B_k
with per-structure *basis* terms B_k (one per element pair type and order), which training
precomputes once (:meth:`DispersionTail.frame_basis`). Forces and stress come from autograd
through :func:`~nnpot.atomistic.neighbors.pair_vectors`. The pair sum is direct: its cost
and memory grow as N·ρ·r_c³ (about 3·10³ pairs per atom at 20 Å in a liquid).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnpot.atomistic.c6_table import pair_table
from nnpot.atomistic.neighbors import pair_vectors, strained
from nnpot.errors import ConfigError

DAMPINGS = ("tang-toennies", "becke-johnson")
SWITCH_ON = 0.8  # r_on / r_c
#: prior width of learned log-coefficients: ~20 % (1σ), the typical accuracy of London /
#: Slater–Kirkwood-type C6 estimates (e.g. DFT-D2's, Grimme 2006) for atoms in molecules
PRIOR_WIDTH = 0.2
#: default weight of that prior against the mean training loss (see DispersionTail.penalty):
#: 2 ν² for a label noise ν in units of the label spread. Reference data from an electronic-
#: structure code or an analytic potential are fitted to ~1 % of their spread, ν ≈ 0.007;
#: a weight of 0.01 (ν = 7 %) let the prior beat data that do pin the coefficients (argon
#: dimer, members 0.3–0.5 meV off at the window edge where only the tail acts)
PRIOR_WEIGHT = 1e-4
#: the weight files written before ``prior_weight`` was stored were trained with
LEGACY_PRIOR_WEIGHT = 0.01
#: fraction of the training epochs during which learned coefficients are held at their draws
WARMUP = 0.3


def half_pairs(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float):
    """Half neighbour list (each pair once, periodic images included): i, j, integer shifts
    S (n_pairs, 3), so that r_ij = r_j − r_i + S·h; distances < ``cutoff`` (Å)."""
    import vesin

    pbc = np.asarray(pbc, dtype=bool)
    box = np.asarray(cell, dtype=np.float64) if pbc.any() else np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=False)
    i, j, s = nl.compute(points=np.ascontiguousarray(positions, dtype=np.float64), box=box,
                         periodic=[bool(p) for p in pbc], quantities="ijS")
    return i.astype(np.int64), j.astype(np.int64), s.astype(np.int64)


def switch(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """C² switching function: 1 below 0.8·cutoff, 0 at and beyond ``cutoff`` (Å)."""
    r_on = SWITCH_ON * cutoff
    x = ((r - r_on) / (cutoff - r_on)).clamp(0.0, 1.0)
    return 1 - x**3 * (10 - 15 * x + 6 * x**2)


def damping(kind: str, n: int, r: torch.Tensor, b: torch.Tensor, r0: torch.Tensor):
    """Damping f_n(r) (dimensionless) for order ``n``; ``b`` in Å⁻¹, ``r0`` in Å."""
    if kind == "tang-toennies":
        return torch.special.gammainc(torch.full_like(r, n + 1.0), b * r)
    rn = r**n
    return rn / (rn + r0**n)


class DispersionTail(nn.Module):
    """Damped −C6/r⁶ (− C8/r⁸) pair tail; see the module docstring for the math.

    Args:
        elements: element symbols in the model's order.
        c6, c8: (n, n) pair coefficients (eV·Å⁶, eV·Å⁸); ``c8`` None disables the C8 term.
        b, r0: (n, n) damping parameters: Tang–Toennies exponent (Å⁻¹), Becke–Johnson
            radius (Å).
        damping: "tang-toennies" or "becke-johnson".
        cutoff: pair-sum cutoff (Å); the tail is switched off smoothly at it.
        learn: learn per-element scales of the coefficients (one set per committee member).
        init_spread: standard deviation of the members' initial log-scales (learn only).
        n_members, seed: committee size and seed of the initial log-scales.
        prior_weight: weight of the anchored prior (learn only; :meth:`penalty`).
        c6_mode: how the coefficients were chosen ("table", "learn" or the number), kept
            in :meth:`to_dict`.
    """

    def __init__(self, elements, c6, c8=None, b=None, r0=None, damping: str = "tang-toennies",
                 cutoff: float = 20.0, learn: bool = False, init_spread: float = 0.0,
                 n_members: int = 1, seed: int = 0, c6_mode="table",
                 prior_weight: float = PRIOR_WEIGHT):
        super().__init__()
        if damping not in DAMPINGS:
            raise ConfigError(f"[model.dispersion] damping = {damping!r}: choose one of "
                              f"{', '.join(DAMPINGS)}")
        if not cutoff > 0:
            raise ConfigError(f"[model.dispersion] cutoff = {cutoff}: must be positive (Å)")
        self.elements = tuple(elements)
        n = len(self.elements)
        self.damping_kind = damping
        self.cutoff = float(cutoff)
        self.learn = bool(learn)
        self.init_spread = float(init_spread)
        if not prior_weight > 0:
            raise ConfigError(f"[model.dispersion] prior_weight = {prior_weight}: must be "
                              "positive")
        self.prior_weight = float(prior_weight)
        self.seed = int(seed)
        self.c6_mode = c6_mode
        self.orders = (6, 8) if c8 is not None else (6,)
        coef = [torch.as_tensor(np.asarray(c6), dtype=torch.float64)]
        if c8 is not None:
            coef.append(torch.as_tensor(np.asarray(c8), dtype=torch.float64))
        self.register_buffer("coef0", torch.stack(coef))  # (orders, n, n)
        ones = np.ones((n, n))
        for name, v in (("b", b), ("r0", r0)):
            v = np.broadcast_to(np.asarray(ones if v is None else v, dtype=np.float64), (n, n))
            self.register_buffer(name, torch.tensor(np.array(v)))
        # term k = (order o, pair type a <= b)
        types = [(a, c) for a in range(n) for c in range(a, n)]
        self.types = types
        type_of = torch.zeros(n, n, dtype=torch.int64)
        for t, (a, c) in enumerate(types):
            type_of[a, c] = type_of[c, a] = t
        self.register_buffer("type_of", type_of)
        self.n_members = 1
        self.log_scale = None
        self.set_members(n_members)

    # --- committee and coefficients ---------------------------------------------------
    def set_members(self, n_members: int, seed: int | None = None) -> DispersionTail:
        """Give a learned tail one set of log-scales per committee member, drawn from the
        prior N(0, init_spread²) with ``seed`` (idempotent for the same size and seed)."""
        n_members = int(n_members)
        seed = self.seed if seed is None else int(seed)
        if not self.learn or (self.log_scale is not None and self.n_members == n_members
                              and self.seed == seed):
            self.n_members = n_members if self.learn else 1
            return self
        self.n_members, self.seed = n_members, seed
        gen = torch.Generator().manual_seed(seed + 7919)
        theta = torch.randn(n_members, len(self.orders), len(self.elements), generator=gen,
                            dtype=torch.float64) * self.init_spread
        self.log_scale = nn.Parameter(theta)
        self.register_buffer("anchor", theta.clone())
        return self

    def on_epoch(self, epoch: int, n_epochs: int) -> None:
        """Training hook: learned coefficients stay at their initial draws for the first
        :data:`WARMUP` of the epochs, so the network first fits what the prior tail leaves
        (a cold network would otherwise push C6 towards whatever offsets its own early
        errors, a drift the flat loss never undoes), then both are refined together."""
        if self.log_scale is not None:
            self.log_scale.requires_grad_(epoch >= int(WARMUP * n_epochs))

    def penalty(self, n_train: int) -> torch.Tensor | None:
        """Prior term per member (M,) for the mean training loss, or None.

        Anchored ensembling (T. Pearce et al., AISTATS 2020): member m is pulled towards
        its own prior draw θ⁰_m by w |θ_m − θ⁰_m|² / (2 σ² N_train) (σ = ``init_spread``,
        w = ``prior_weight``, default :data:`PRIOR_WEIGHT`), so its stationary point is
        the MAP of that draw for a Gaussian likelihood of noise √(w/2) times the label
        spread (the training loss is a mean in units of the label spread). Where the data
        constrain the coefficients they win; where they do not, each member returns to its
        draw, so the committee keeps the prior's spread instead of collapsing onto one
        arbitrary value.
        """
        if self.log_scale is None or self.init_spread <= 0:
            return None
        d = self.log_scale - self.anchor
        return self.prior_weight * (d**2).sum((1, 2)) / (2 * self.init_spread**2
                                                     * max(int(n_train), 1))

    @property
    def n_terms(self) -> int:
        return len(self.orders) * len(self.types)

    def scales(self) -> torch.Tensor:
        """(M, K) multipliers of the basis terms (M = 1 unless learned)."""
        if self.log_scale is None:
            return torch.ones(1, self.n_terms, dtype=self.coef0.dtype, device=self.coef0.device)
        a = torch.tensor([t[0] for t in self.types], device=self.coef0.device)
        c = torch.tensor([t[1] for t in self.types], device=self.coef0.device)
        th = self.log_scale  # (M, orders, n)
        return torch.exp(0.5 * (th[:, :, a] + th[:, :, c])).reshape(th.shape[0], -1)

    def coefficients(self, order: int = 6) -> torch.Tensor:
        """Current pair coefficients (M, n, n): C6 in eV·Å⁶ (order 6) or C8 in eV·Å⁸."""
        o = self.orders.index(order)
        c0 = self.coef0[o]
        if self.log_scale is None:
            return c0.unsqueeze(0)
        th = self.log_scale[:, o]
        return c0 * torch.exp(0.5 * (th[:, :, None] + th[:, None, :]))

    # --- evaluation --------------------------------------------------------------------
    def pair_list(self, batch, positions):
        """Half pair list of every structure within the tail cutoff: global i, j, shifts."""
        pos = positions.detach().cpu().numpy()
        cells = batch.cell.detach().cpu().numpy()
        pbcs = batch.pbc.cpu().numpy()
        owner = batch.batch.cpu().numpy()
        ii, jj, ss = [], [], []
        for s in range(batch.n_structures):
            idx = np.nonzero(owner == s)[0]
            i, j, sh = half_pairs(pos[idx], cells[s], pbcs[s], self.cutoff)
            ii.append(idx[i])
            jj.append(idx[j])
            ss.append(sh)
        dev = positions.device
        return (torch.as_tensor(np.concatenate(ii), device=dev),
                torch.as_tensor(np.concatenate(jj), device=dev),
                torch.as_tensor(np.concatenate(ss), device=dev, dtype=positions.dtype))

    def basis(self, batch, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Basis energies (K, B) in eV at unit scales (differentiable in positions, cell).

        Row k = o·T + t holds −Σ_{pairs of type t} S f_n C⁰_n / r^n for order n = orders[o].
        """
        i, j, shifts = self.pair_list(batch, positions)
        rij = pair_vectors(positions, cell, batch.batch, i, j, shifts)
        r = torch.linalg.norm(rij, dim=1)
        si, sj = batch.species[i], batch.species[j]
        t = self.type_of[si, sj]
        sw = switch(r, self.cutoff)
        owner = batch.batch[i]
        n_t, n_b = len(self.types), batch.n_structures
        out = positions.new_zeros(len(self.orders) * n_t * n_b)
        for o, n in enumerate(self.orders):
            c = self.coef0[o][si, sj]
            f = damping(self.damping_kind, n, r, self.b[si, sj], self.r0[si, sj])
            e = -sw * f * c / r**n
            out = out.index_add(0, (o * n_t + t) * n_b + owner, e)
        return out.reshape(len(self.orders) * n_t, n_b)

    def forward(self, batch, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Tail energy (eV): (B,) for fixed coefficients, (M, B) per member when learned."""
        e = self.scales() @ self.basis(batch, positions, cell)
        return e[0] if self.log_scale is None else e

    # --- training support --------------------------------------------------------------
    def _frame_batch(self, frame):
        from ase.data import atomic_numbers

        from nnpot.atomistic.neighbors import Batch

        species_of = {atomic_numbers[e]: k for k, e in enumerate(self.elements)}
        n = len(frame.numbers)
        z = torch.zeros(0, dtype=torch.int64)
        return Batch(torch.tensor([species_of[int(x)] for x in frame.numbers]),
                     torch.as_tensor(np.asarray(frame.positions, dtype=np.float64)),
                     torch.as_tensor(np.asarray(frame.cell, dtype=np.float64))[None],
                     torch.as_tensor(np.asarray(frame.pbc, dtype=bool))[None],
                     torch.zeros(n, dtype=torch.int64), torch.tensor([n]), z, z,
                     torch.zeros(0, 3, dtype=torch.float64))

    def frame_basis(self, frame, dtype=torch.float64):
        """Per-term energy (K,) eV, forces (K, n, 3) eV/Å and stress (K, 3, 3) eV/Å³ (None
        unless fully periodic) of one :class:`~nnpot.atomistic.data.Frame` at unit scales."""
        b = self._frame_batch(frame)
        pos0 = b.positions.clone().requires_grad_(True)
        periodic = bool(np.all(frame.pbc))
        eps = torch.zeros(1, 3, 3, dtype=torch.float64, requires_grad=True)
        pos, cell = strained(pos0, b.cell, b.batch, eps)
        e = self.basis(b, pos, cell)[:, 0]
        forces, stress = [], []
        vol = abs(float(np.linalg.det(frame.cell))) if periodic else 1.0
        for k in range(len(e)):
            if e[k].requires_grad:
                gp, ge = torch.autograd.grad(e[k], (pos0, eps), retain_graph=True,
                                             allow_unused=True)
            else:
                gp = ge = None
            forces.append(-gp if gp is not None else torch.zeros_like(pos0))
            ge = ge[0] if ge is not None else torch.zeros(3, 3, dtype=torch.float64)
            stress.append(0.5 * (ge + ge.T) / vol)
        f = torch.stack(forces).detach().to(dtype)
        s = torch.stack(stress).detach().to(dtype) if periodic else None
        return e.detach().to(dtype), f, s

    def frame_terms(self, frame, basis=None):
        """Energy (eV, float), forces (n, 3) eV/Å and stress (3, 3) eV/Å³ or None of one
        frame at the current coefficients (committee mean when learned); ``basis`` may give
        the frame's precomputed :meth:`frame_basis`."""
        e, f, s = basis if basis is not None else self.frame_basis(frame)
        e, f, s = e.double(), f.double(), None if s is None else s.double()
        w = self.scales().detach().double().mean(0)
        return (float(w @ e), torch.einsum("k,knc->nc", w, f).numpy(),
                None if s is None else torch.einsum("k,kab->ab", w, s).numpy())

    def prepared_terms(self, items, n_members: int):
        """Tail energy (M, B), forces [(M, n_s, 3)] and stress (M, B, 3, 3) of prepared
        structures from their precomputed ``tail_basis`` (differentiable in the scales)."""
        w = self.scales()
        w = w.expand(n_members, -1) if w.shape[0] == 1 else w
        e = torch.stack([p.tail_basis[0] for p in items], 1).to(w.dtype)
        forces = [torch.einsum("mk,knc->mnc", w, p.tail_basis[1].to(w.dtype)) for p in items]
        zero = torch.zeros(self.n_terms, 3, 3, dtype=w.dtype, device=w.device)
        s = torch.stack([zero if p.tail_basis[2] is None else p.tail_basis[2].to(w.dtype)
                         for p in items], 1)
        return w @ e, forces, torch.einsum("mk,kbxy->mbxy", w, s)

    # --- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON description (coefficients in eV·Å⁶ / eV·Å⁸, lengths in Å / Å⁻¹)."""
        d = {"kind": "dispersion", "elements": list(self.elements),
             "c6_mode": self.c6_mode, "damping": self.damping_kind, "cutoff": self.cutoff,
             "c8": len(self.orders) > 1, "learn": self.learn, "init_spread": self.init_spread,
             "prior_weight": self.prior_weight, "n_members": self.n_members, "seed": self.seed,
             "c6_initial": self.coef0[0].tolist(),
             "c8_initial": self.coef0[1].tolist() if len(self.orders) > 1 else None,
             "b": self.b.tolist(), "r0": self.r0.tolist()}
        if self.learn:
            d["c6_members"] = self.coefficients(6).detach().tolist()  # informative only
        return d


def tail_from_dict(d: dict) -> DispersionTail:
    """Rebuild a tail from :meth:`DispersionTail.to_dict` (learned scales come from the
    model's tensors)."""
    if d.get("kind") != "dispersion":
        raise ConfigError(f"unknown tail kind {d.get('kind')!r} in the model file")
    return DispersionTail(d["elements"], np.array(d["c6_initial"]),
                          None if d.get("c8_initial") is None else np.array(d["c8_initial"]),
                          np.array(d["b"]), np.array(d["r0"]), d["damping"], d["cutoff"],
                          d["learn"], d.get("init_spread", 0.0), d.get("n_members", 1),
                          d.get("seed", 0), d.get("c6_mode", "table"),
                          d.get("prior_weight", LEGACY_PRIOR_WEIGHT))


def tail_from_config(cfg, elements, n_members: int = 1, seed: int = 0,
                     init_spread: float | None = None) -> DispersionTail:
    """Build the tail of ``[model.dispersion]`` (``nnpot.config.DispersionConfig``) for
    ``elements``: ``c6`` = "table" | "learn" | number (eV·Å⁶, every element). Learned
    coefficients start from prior draws of width ``init_spread`` (default
    :data:`PRIOR_WIDTH`) around the table."""
    if init_spread is None:
        init_spread = PRIOR_WIDTH if cfg.c6 == "learn" else 0.0
    table = pair_table(list(elements), cfg.c6)
    return DispersionTail(elements, table.c6, table.c8 if cfg.c8 else None, table.b, table.r0,
                          cfg.damping, cfg.cutoff, learn=cfg.c6 == "learn",
                          init_spread=init_spread, n_members=n_members, seed=seed,
                          c6_mode=cfg.c6, prior_weight=cfg.prior_weight)
