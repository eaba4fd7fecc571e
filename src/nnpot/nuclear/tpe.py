"""Two-pion exchange (TPE) at NLO and N2LO of chiral EFT, dimensional regularisation.

Non-polynomial parts of the leading and subleading TPE (Kaiser, Brockmann, Weise,
NPA 625, 758 (1997); Epelbaum, Gloeckle, Meissner, NPA 747, 362 (2005), Eqs. (2.13-2.15)),
q in MeV, potentials in MeV^-2 (tensor parts in MeV^-4), without the 1/M corrections:

    V = V_C + tau1.tau2 W_C + (V_S + tau1.tau2 W_S) s1.s2 + (V_T + tau1.tau2 W_T) s1.q s2.q

NLO:  W_C = -L(q) / (384 pi^2 f^4) [4 m^2 (5 g^4 - 4 g^2 - 1) + q^2 (23 g^4 - 10 g^2 - 1)
             + 48 g^4 m^4 / w^2],
      V_T = -V_S / q^2 = -3 g^4 L(q) / (64 pi^2 f^4),
N2LO: V_C = -3 g^2 / (16 pi f^4) [2 m^2 (2 c1 - c3) - c3 q^2] (2 m^2 + q^2) A(q),
      W_T = -W_S / q^2 = -g^2 c4 w^2 A(q) / (32 pi f^4),

with w = sqrt(4 m^2 + q^2), L(q) = (w/q) ln((w + q)/(2m)), A(q) = arctan(q/(2m))/(2q),
or, with spectral-function regularisation at cutoff L~ (Epelbaum, Gloeckle, Meissner,
EPJA 19, 125 (2004)), s = sqrt(L~^2 - 4 m^2),
L(q) = w/(2q) ln[(L~^2 w^2 + q^2 s^2 + 2 L~ q w s) / (4 m^2 (L~^2 + q^2))],
A(q) = arctan[q (L~ - 2m) / (q^2 + 2 L~ m)] / (2q);
g = g_A, f = f_pi, m the isospin-averaged pion mass, and c_i in MeV^-1
(constants and citations in :mod:`nnpot.nuclear.constants`).
"""

from __future__ import annotations

import math

import torch

from nnpot.nuclear.channels import Channel
from nnpot.nuclear.constants import C1_GEV, C3_GEV, C4_GEV, F_PI, G_A, M_PI
from nnpot.nuclear.ope import isospin_factor, project


def loop_l(q: torch.Tensor, m: float = M_PI, sfr: float | None = None) -> torch.Tensor:
    """L(q) (-> 1 as q -> 0), q in MeV; DR form, or the SFR form for cutoff ``sfr`` [MeV]."""
    q = torch.clamp(q, min=1e-6)
    w = torch.sqrt(4 * m**2 + q**2)
    if sfr is None:
        return w / q * torch.log((w + q) / (2 * m))
    s = math.sqrt(sfr**2 - 4 * m**2)
    arg = (sfr**2 * w**2 + q**2 * s**2 + 2 * sfr * q * w * s) / (4 * m**2 * (sfr**2 + q**2))
    return w / (2 * q) * torch.log(arg)


def loop_a(q: torch.Tensor, m: float = M_PI, sfr: float | None = None) -> torch.Tensor:
    """A(q) [MeV^-1] (-> 1/(4m) as q -> 0 in DR), q in MeV; DR or SFR (cutoff ``sfr``)."""
    q = torch.clamp(q, min=1e-6)
    if sfr is None:
        return torch.atan(q / (2 * m)) / (2 * q)
    return torch.atan(q * (sfr - 2 * m) / (q**2 + 2 * sfr * m)) / (2 * q)


def tpe_functions(order: str, t: int, sfr: float | None = None):
    """(v_c, v_s, v_t): functions of q [MeV] for the TPE of ``order`` ("NLO" or "N2LO",
    N2LO includes NLO) in isospin T; None if there is nothing to add."""
    if order not in ("NLO", "N2LO"):
        raise ValueError(f"TPE order must be NLO or N2LO, got {order!r}")
    g, f, m = G_A, F_PI, M_PI
    tau = isospin_factor(t)
    c1, c3, c4 = C1_GEV * 1e-3, C3_GEV * 1e-3, C4_GEV * 1e-3
    n2lo = order == "N2LO"

    def v_c(q):
        w2 = 4 * m**2 + q**2
        wc = -loop_l(q, m, sfr) / (384 * math.pi**2 * f**4) * (
            4 * m**2 * (5 * g**4 - 4 * g**2 - 1)
            + q**2 * (23 * g**4 - 10 * g**2 - 1)
            + 48 * g**4 * m**4 / w2
        )
        out = tau * wc
        if n2lo:
            vc = -3 * g**2 / (16 * math.pi * f**4) * (
                2 * m**2 * (2 * c1 - c3) - c3 * q**2
            ) * (2 * m**2 + q**2) * loop_a(q, m, sfr)
            out = out + vc
        return out

    def v_t(q):
        out = -3 * g**4 * loop_l(q, m, sfr) / (64 * math.pi**2 * f**4)
        if n2lo:
            wt = -(g**2) * c4 * (4 * m**2 + q**2) * loop_a(q, m, sfr) / (32 * math.pi * f**4)
            out = out + tau * wt
        return out

    def v_s(q):
        return -(q**2) * v_t(q)

    return v_c, v_s, v_t


def tpe(channel: Channel, p1: torch.Tensor, p2: torch.Tensor, order: str = "N2LO",
        sfr: float | None = None, nz: int = 48) -> torch.Tensor:
    """TPE in ``channel`` (nL, nL, n1, n2) [MeV fm^3], p in fm^-1 (SFR cutoff ``sfr`` MeV)."""
    v_c, v_s, v_t = tpe_functions(order, channel.t, sfr)
    return project(channel, p1, p2, v_c=v_c, v_s=v_s, v_t=v_t, nz=nz)
