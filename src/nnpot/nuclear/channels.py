"""Partial-wave channels of the np system and Clebsch-Gordan coefficients.

States |p (L S) J T> (see :mod:`nnpot.nuclear.constants` for the normalisation). A channel
is a fixed (S, J, T) with one orbital L (uncoupled, e.g. "1S0", "3P1") or the two
L = J -/+ 1 of a coupled block (e.g. "3S1-3D1", with Stapp mixing angle "E1").
Antisymmetry fixes the isospin: (-1)^(L + S + T) = -1. Names follow the PWA tables:
spectroscopic 2S+1 L J with L in S, P, D, F, G, H, I. States carry no i^L phase factors
(the convention of Erkelenz, Alzetta, Holinde, NPA 176, 413 (1971) and of PWA93's Stapp
phases); with i^L factors the off-diagonal blocks V_{J-1,J+1} change sign, and so would
the mixing angles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from nnpot.errors import InputError

L_LETTERS = "SPDFGHIK"


class UnknownChannelError(InputError):
    """A partial-wave name is not an np channel with J <= J_max."""


@dataclass(frozen=True)
class Channel:
    """One np partial-wave channel (uncoupled or a coupled block).

    ``ls`` are the orbital momenta (one, or (J-1, J+1)); ``waves`` are the PWA table names
    of its observables: (name,) or (delta_minus, delta_plus, mixing angle).
    """

    s: int
    j: int
    t: int
    ls: tuple[int, ...]

    @property
    def coupled(self) -> bool:
        return len(self.ls) == 2

    @property
    def waves(self) -> tuple[str, ...]:
        w = tuple(wave_name(self.s, L, self.j) for L in self.ls)
        return w + (f"E{self.j}",) if self.coupled else w

    @property
    def name(self) -> str:
        return "-".join(wave_name(self.s, L, self.j) for L in self.ls)

    def __str__(self) -> str:
        return self.name


def wave_name(s: int, l: int, j: int) -> str:
    """Spectroscopic name "2S+1 L J", e.g. wave_name(1, 0, 1) == "3S1"."""
    return f"{2 * s + 1}{L_LETTERS[l]}{j}"


def isospin(l: int, s: int) -> int:
    """Two-nucleon isospin fixed by antisymmetry, (-1)^(L+S+T) = -1."""
    return 1 if (l + s) % 2 == 0 else 0


@cache
def np_channels(jmax: int = 4) -> tuple[Channel, ...]:
    """All np channels with J <= jmax, ordered by J (uncoupled before coupled)."""
    out = []
    for j in range(jmax + 1):
        out.append(Channel(0, j, isospin(j, 0), (j,)))  # singlet L = J
        if j == 0:
            out.append(Channel(1, 0, isospin(1, 1), (1,)))  # 3P0
            continue
        out.append(Channel(1, j, isospin(j, 1), (j,)))  # triplet L = J
        out.append(Channel(1, j, isospin(j - 1, 1), (j - 1, j + 1)))  # coupled
    return tuple(out)


def all_waves(jmax: int = 4) -> tuple[str, ...]:
    """Names of every phase shift and mixing angle of the np channels with J <= jmax."""
    return tuple(w for c in np_channels(jmax) for w in c.waves)


def get_channel(name: str, jmax: int = 4) -> Channel:
    """The channel called ``name``: a channel name ("3S1-3D1") or any of its waves
    ("3S1", "3D1", "E1"). Raises :class:`UnknownChannelError` otherwise."""
    key = str(name).strip().upper().replace("EPS", "E")
    for c in np_channels(jmax):
        if key == c.name.upper() or key in (w.upper() for w in c.waves):
            return c
    raise UnknownChannelError(
        f"unknown np partial wave {name!r}; known (J <= {jmax}): {', '.join(all_waves(jmax))}"
    )


def clebsch_gordan(j1: float, m1: float, j2: float, m2: float, j: float, m: float) -> float:
    """<j1 m1 j2 m2 | j m> by Racah's formula (Condon-Shortley phases)."""
    if abs(m1 + m2 - m) > 1e-9 or not (abs(j1 - j2) <= j <= j1 + j2):
        return 0.0
    if abs(m1) > j1 or abs(m2) > j2 or abs(m) > j:
        return 0.0
    f = math.factorial

    def i(x: float) -> int:
        return int(round(x))

    pre = math.sqrt(
        (2 * j + 1)
        * f(i(j1 + j2 - j))
        * f(i(j1 - j2 + j))
        * f(i(-j1 + j2 + j))
        / f(i(j1 + j2 + j + 1))
    )
    pre *= math.sqrt(
        f(i(j + m)) * f(i(j - m)) * f(i(j1 - m1)) * f(i(j1 + m1)) * f(i(j2 - m2)) * f(i(j2 + m2))
    )
    total = 0.0
    for k in range(0, i(j1 + j2 - j) + 1):
        args = (j1 + j2 - j - k, j1 - m1 - k, j2 + m2 - k, j - j2 + m1 + k, j - j1 - m2 + k)
        if min(args) < -1e-9:
            continue
        den = f(k)
        for a in args:
            den *= f(i(a))
        total += (-1) ** k / den
    return pre * total
