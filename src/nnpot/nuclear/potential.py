"""The nnpot NN potential: regulated pion exchange + intermediate range + contacts + net.

Every potential is a callable (channel, p_out [n1], p_in [n2]) -> V[L'idx, Lidx, n1, n2] in
MeV fm^3 (p in fm^-1; normalisation of :mod:`nnpot.nuclear.constants`), with

    V_{L'L}(p', p) = f(p') [ V_pi + V_mid + V_s ]_{L'L}(p', p) f(p),   f(p) = exp(-(p/Lambda)^(2n))

V_pi is OPE (LO), + TPE at NLO, + subleading TPE at N2LO (SFR cutoff, :mod:`~.tpe`); V_mid
(optional) is the per-channel Yukawa intermediate range of :mod:`~.midrange`. The short
range of block (L', L) has the threshold behaviour p'^L' p^L built in (x = p/p_s):

    V_s,{L'L}(p', p) = c_scale x'^L' x^L [ sum_{i+j<=d} C_ij x'^(2i) x^(2j) + a N(x'^2, x^2) ]

with dimensionless C_ij (c_scale = 100 MeV fm^3 makes natural values O(1)). C is symmetric
(C_ij = C_ji) in diagonal blocks, so V(p', p) = V(p, p'); the lower-left block of a coupled
channel is the transpose of the upper-right one, so the whole channel matrix is symmetric.
N is a small tanh MLP on (x'^2, x^2), symmetrised for diagonal blocks (N(a, b) + N(b, a))/2;
its inputs are squares, so V is analytic in p^2 and p'^2 (effective range expansion and the
deuteron's asymptotic normalisation rely on it: inputs (x', x) change A_S, see the tests).
Degrees d per block: ``contacts="full"`` gives S waves 2 (4 terms), P 1 (2 terms), other
blocks 0 (1 term), the S-D (E1) block 1 (3 terms); ``degrees`` overrides per L, per
off-diagonal block "L'L" or per wave (:func:`block_degree`); ``contacts="LO"``/``"NLO"``
select the Weinberg sets used by the order-by-order fits (:mod:`~.orders`), LO including
the 3P0, 3P2, 3D2 contacts of Nogga, Timmermans, van Kolck.
"""

from __future__ import annotations

import math

import torch

from nnpot.nuclear.channels import Channel, np_channels
from nnpot.nuclear.constants import HBARC
from nnpot.nuclear.ope import ope
from nnpot.nuclear.tpe import tpe

ORDERS = ("LO", "NLO", "N2LO")


def regulator(p: torch.Tensor, lam: float, n: int) -> torch.Tensor:
    """f(p) = exp(-(p/Lambda)^(2n)), p and Lambda in fm^-1."""
    return torch.exp(-((p / lam) ** (2 * n)))


class PionExchange:
    """Regulated pion exchange at ``order`` with a cache of evaluated grids (no parameters).

    lam_mev: nonlocal regulator cutoff [MeV]; n_reg: its power; sfr_mev: SFR cutoff [MeV].
    """

    def __init__(self, order: str = "N2LO", lam_mev: float = 600.0, n_reg: int = 4,
                 sfr_mev: float = 600.0, nz: int = 48):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order, self.lam_mev, self.n_reg, self.sfr_mev, self.nz = (
            order, float(lam_mev), int(n_reg), float(sfr_mev), int(nz))
        self.lam = self.lam_mev / HBARC
        self._cache: dict = {}

    def unregulated(self, channel: Channel, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        v = ope(channel, p1, p2, nz=self.nz)
        if self.order != "LO":
            v = v + tpe(channel, p1, p2, self.order, sfr=self.sfr_mev, nz=self.nz)
        return v

    def __call__(self, channel: Channel, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        key = (channel, p1.shape[0], p2.shape[0], float(p1.sum()), float(p2.sum()),
               float((p1**2).sum()), float((p2**3).sum()))
        hit = self._cache.get(key)
        if hit is not None and torch.equal(hit[0], p1) and torch.equal(hit[1], p2):
            return hit[2]
        with torch.no_grad():
            f1 = regulator(p1, self.lam, self.n_reg)
            f2 = regulator(p2, self.lam, self.n_reg)
            v = self.unregulated(channel, p1, p2) * f1[:, None] * f2[None, :]
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (p1.detach().clone(), p2.detach().clone(), v)
        return v

    def config(self) -> dict:
        return {"order": self.order, "lam_mev": self.lam_mev, "n_reg": self.n_reg,
                "sfr_mev": self.sfr_mev, "nz": self.nz}


#: Waves with a leading-order contact besides the S waves: the attractive singular tensor
#: waves of Nogga, Timmermans, van Kolck, PRC 72, 054006 (2005).
LO_TENSOR_WAVES = ("3P0", "3P2", "3D2")


def block_degree(lp: int, l: int, contacts: str = "full", degrees: dict | None = None,
                 wave: str | None = None) -> int:
    """Highest total power d of (x'^2, x^2) in block (L', L) (-1: no contact).

    ``degrees`` overrides the set; keys, most specific first: the block's wave name
    ``wave`` (a diagonal block's phase, e.g. "1P1", or a coupled channel's mixing angle,
    e.g. "E1"), then "L" for diagonal blocks ("0", "1", ...) or "L'L" for the upper-right
    block of a coupled channel ("02", "13", ...); missing keys fall back to ``contacts``.
    """
    if degrees is not None:
        for key in (wave, f"{lp}" if lp == l else f"{lp}{l}"):
            if key is not None and key in degrees:
                return int(degrees[key])
    if contacts == "LO":  # S waves + the attractive singular tensor waves (NTvK)
        return 0 if lp == l == 0 or (lp == l and wave in LO_TENSOR_WAVES) else -1
    if contacts == "NLO":
        if lp == l == 0:
            return 1
        return 0 if (lp == l == 1) or (lp, l) == (0, 2) else -1
    if contacts != "full":
        raise ValueError(f"contacts must be 'full', 'NLO' or 'LO', got {contacts!r}")
    if lp == l:
        return {0: 2, 1: 1}.get(l, 0)
    return 1 if (lp, l) == (0, 2) else 0


def contact_terms(lp: int, l: int, contacts: str = "full", degrees: dict | None = None,
                  wave: str | None = None) -> list[tuple[int, int]]:
    """Exponents (i, j) of x'^(2i) x^(2j) in block (L', L) (i <= j in diagonal blocks)."""
    d = block_degree(lp, l, contacts, degrees, wave)
    if lp == l:
        return [(i, j) for i in range(d + 1) for j in range(i, d + 1) if i + j <= d]
    return [(i, j) for i in range(d + 1) for j in range(d + 1) if i + j <= d]


def _blocks(channel: Channel) -> list[tuple[int, int, int, int]]:
    """(a, b, L', L) of the independent blocks (diagonal ones and the upper-right one)."""
    ls = channel.ls
    out = [(a, a, ls[a], ls[a]) for a in range(len(ls))]
    if len(ls) == 2:
        out.append((0, 1, ls[0], ls[1]))
    return out


def _block_wave(channel: Channel, lp: int, l: int) -> str:
    """The wave a block belongs to: its phase ("3D1") or the mixing angle ("E1")."""
    return channel.waves[channel.ls.index(l)] if lp == l else channel.waves[-1]


def _key(channel: Channel, lp: int, l: int) -> str:
    return f"{channel.name}_{lp}{l}".replace("-", "_")


class ShortRange(torch.nn.Module):
    """Contact polynomial + symmetric neural correction in every channel (see module doc).

    p_scale: x = p / p_scale [fm^-1]; hidden: MLP width (0 disables the network);
    layers: hidden layers of the MLP (1 or 2); contacts: "full", "NLO" or "LO" contact
    sets, ``degrees`` overrides per block (:func:`block_degree`); c_scale [MeV fm^3]: unit
    of the stored contact parameters and of the network output (V = c_scale * (...), so
    the parameters are O(1)); net_input: "p2" (network on (x'^2, x^2): V analytic in p^2)
    or "p" (on (x', x): odd powers of p, non-analytic at p = 0; kept only to show the
    pitfall that this changes the deuteron's asymptotic normalisation A_S).
    """

    def __init__(self, jmax: int = 4, p_scale: float = 2.0, hidden: int = 8,
                 contacts: str = "full", nn_scale: float = 1.0, seed: int = 0,
                 degrees: dict | None = None, c_scale: float = 100.0, layers: int = 1,
                 net_input: str = "p2"):
        super().__init__()
        if net_input not in ("p2", "p"):
            raise ValueError(f"net_input must be 'p2' or 'p', got {net_input!r}")
        if layers not in (1, 2):
            raise ValueError(f"layers must be 1 or 2, got {layers}")
        self.jmax, self.p_scale, self.hidden = int(jmax), float(p_scale), int(hidden)
        self.contacts, self.nn_scale, self.seed = contacts, float(nn_scale), int(seed)
        self.degrees = None if degrees is None else {str(k): int(v) for k, v in degrees.items()}
        self.c_scale, self.layers, self.net_input = float(c_scale), int(layers), net_input
        gen = torch.Generator().manual_seed(int(seed))
        self.coef = torch.nn.ParameterDict()
        self.nets = torch.nn.ModuleDict()
        for c in np_channels(self.jmax):
            for _, _, lp, l in _blocks(c):
                terms = self.terms(c, lp, l)
                if terms:
                    self.coef[_key(c, lp, l)] = torch.nn.Parameter(
                        torch.zeros(len(terms), dtype=torch.float64))
                if self.hidden > 0:
                    mods = [torch.nn.Linear(2, hidden), torch.nn.Tanh()]
                    if self.layers == 2:
                        mods += [torch.nn.Linear(hidden, hidden), torch.nn.Tanh()]
                    net = torch.nn.Sequential(*mods, torch.nn.Linear(hidden, 1)).double()
                    with torch.no_grad():
                        for m in net:
                            if isinstance(m, torch.nn.Linear):
                                m.weight.copy_(torch.randn(m.weight.shape, generator=gen,
                                                           dtype=torch.float64)
                                               / math.sqrt(m.in_features))
                                m.bias.zero_()
                        net[-1].weight.mul_(0.01)
                    self.nets[_key(c, lp, l)] = net

    def terms(self, channel: Channel, lp: int, l: int) -> list[tuple[int, int]]:
        """Contact exponents of block (L', L) of ``channel`` (:func:`contact_terms`)."""
        return contact_terms(lp, l, self.contacts, self.degrees, _block_wave(channel, lp, l))

    def net_block(self, key: str, x1: torch.Tensor, x2: torch.Tensor,
                  diagonal: bool) -> torch.Tensor:
        """Network part N(x'^2, x^2) (or N(x', x) for net_input "p") on the grid, symmetrised
        for diagonal blocks; dimensionless (times c_scale nn_scale in the potential)."""
        net = self.nets[key]
        if self.net_input == "p2":
            a, b = (x1**2)[:, None], (x2**2)[None, :]
        else:
            a, b = x1[:, None], x2[None, :]
        aa, bb = torch.broadcast_tensors(a, b)
        inp = torch.stack([aa, bb], dim=-1)
        out = net(inp)[..., 0]
        if diagonal:
            out = 0.5 * (out + net(inp.flip(-1))[..., 0])
        return out

    def block(self, channel: Channel, lp: int, l: int, p1: torch.Tensor,
              p2: torch.Tensor) -> torch.Tensor:
        """V_s of block (L', L) on (p1 x p2), without the regulator [MeV fm^3]."""
        key = _key(channel, lp, l)
        x1, x2 = p1 / self.p_scale, p2 / self.p_scale
        a, b = (x1**2)[:, None], (x2**2)[None, :]
        poly = torch.zeros(p1.shape[0], p2.shape[0], dtype=p1.dtype, device=p1.device)
        if key in self.coef:
            coef = self.coef[key]
            for t, (i, j) in enumerate(self.terms(channel, lp, l)):
                term = a**i * b**j
                if lp == l and i != j:
                    term = term + a**j * b**i
                poly = poly + coef[t] * term
        if key in self.nets:
            poly = poly + self.nn_scale * self.net_block(key, x1, x2, lp == l)
        return self.c_scale * x1[:, None] ** lp * x2[None, :] ** l * poly

    def forward(self, channel: Channel, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        nl = len(channel.ls)
        rows = [[None] * nl for _ in range(nl)]
        for a, b, lp, l in _blocks(channel):
            rows[a][b] = self.block(channel, lp, l, p1, p2)
            if a != b:
                rows[b][a] = self.block(channel, lp, l, p2, p1).transpose(0, 1)
        return torch.stack([torch.stack(r) for r in rows])

    def config(self) -> dict:
        return {"jmax": self.jmax, "p_scale": self.p_scale, "hidden": self.hidden,
                "contacts": self.contacts, "nn_scale": self.nn_scale, "seed": self.seed,
                "degrees": self.degrees, "c_scale": self.c_scale, "layers": self.layers,
                "net_input": self.net_input}


#: ShortRange arguments of model files written before they existed (format 1).
LEGACY_SHORT = {"c_scale": 1.0, "layers": 2, "net_input": "p2", "degrees": None}


class NuclearPotential(torch.nn.Module):
    """Full potential V = f (V_pi + V_mid + V_s) f; call as ``model(channel, p_out, p_in)``.

    ``mid`` (optional) configures the shared intermediate-range correction
    (:class:`nnpot.nuclear.midrange.MidRange`); None leaves it out.
    Returns (nL, nL, n1, n2) in MeV fm^3 for momenta in fm^-1. ``config()`` rebuilds it.
    """

    def __init__(self, pion: dict | None = None, short: dict | None = None,
                 mid: dict | None = None):
        super().__init__()
        from nnpot.nuclear.midrange import MidRange

        self.pion = PionExchange(**(pion or {}))
        self.short = ShortRange(**(short or {}))
        self.mid = None if mid is None else MidRange(**mid)

    def variable(self, channel: Channel, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        """The fitted part V_mid + V_s (unregulated) [MeV fm^3]."""
        v = self.short(channel, p1, p2)
        return v if self.mid is None else v + self.mid(channel, p1, p2)

    def forward(self, channel: Channel, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        f1 = regulator(p1, self.pion.lam, self.pion.n_reg)
        f2 = regulator(p2, self.pion.lam, self.pion.n_reg)
        vs = self.variable(channel, p1, p2) * f1[:, None] * f2[None, :]
        return self.pion(channel, p1, p2).to(vs) + vs

    def config(self) -> dict:
        out = {"pion": self.pion.config(), "short": self.short.config()}
        if self.mid is not None:
            out["mid"] = self.mid.config()
        return out
