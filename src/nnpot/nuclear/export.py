"""HO-basis matrix elements of a fitted NN potential: model adapter, file writer and reader.

File format ("nnpot-ho-relative", version 1), plain text, one matrix element per line:

    # nnpot-ho-relative 1
    # key = value                (header: hbar_omega, nmax, hbar2_over_m, b_rel, ...)
    # columns: S J T Lp Np L N V_MeV
    0 0 1 0 0 0 0 -1.234567890123456e+01
    ...

Conventions (also written into every header): relative coordinate r = r1 - r2, reduced
mass mu = m/2, oscillator length b_rel = hbar c/sqrt(mu c^2 hbar omega) [fm]; radial
functions R_nl(r) = N_nl b^-3/2 x^l exp(-x^2/2) L_n^{l+1/2}(x^2), x = r/b_rel, positive at
the origin; momentum-space partial waves without i^l (so tensor blocks have the
coordinate-space sign); matrix elements <Np Lp| V^{S J T} |N L> in MeV for all
2N + L <= nmax, both triangles written (the blocks are symmetric). For np the T = 1
matrix elements are those of the np potential.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from nnpot.errors import InputError, MalformedFileError
from nnpot.io import atomic_write_text
from nnpot.nuclear.ho import HBARC

__all__ = ["model_channel_potential", "write_ho_file", "read_ho_file", "FORMAT", "CONVENTIONS"]

FORMAT = "nnpot-ho-relative"
VERSION = 1
CONVENTIONS = [
    "relative coordinate r = r1 - r2, reduced mass mu = m/2",
    "b_rel = hbar c / sqrt(mu c^2 hbar omega) [fm]",
    "R_nl(r) = N_nl b^-3/2 x^l exp(-x^2/2) L_n^{l+1/2}(x^2), x = r/b_rel, R_nl > 0 at r -> 0",
    "momentum space: <p l|n l> = (-1)^n R_nl(p; 1/b_rel) up to b^3, no i^l factors",
    "matrix elements <Np Lp|V^{S J T}|N L> in MeV, all 2N + L <= nmax, both triangles",
    "units: MeV (V, hbar_omega), fm (b_rel), MeV fm^2 (hbar2_over_m)",
]


def model_channel_potential(model, member: int = 0, jmax: int | None = None
                            ) -> Callable[[int, int, int, tuple[int, ...]], Callable | None]:
    """Adapter: a fitted :class:`~nnpot.nuclear.modelfile.NuclearModel` -> ``f(s, j, t, ls)``.

    ``f`` returns a block potential (p_out, p_in) -> (nL, nL, n, m) [MeV fm^3] of committee
    ``member`` for the np channel with those quantum numbers, or None beyond the model's
    J_max (V = 0 there). Works with any object that has ``members[k](channel, p1, p2)``.

    Phase convention: the model's partial waves are projections on momentum-space
    spherical harmonics Y_L(p-hat) (:mod:`nnpot.nuclear.ope`), whose coordinate-space
    partners are i^L j_L(p r) Y_L(r-hat) (see :func:`nnpot.nuclear.deuteron.r_space`). The HO
    functions of :mod:`nnpot.nuclear.ho` are real in coordinate space (states without i^L),
    so the adapter multiplies the L' = L -/+ 2 blocks by i^(L - L') = -1. Diagonal blocks,
    phase shifts and energies are unchanged; the tensor force then has its coordinate-space
    sign, which the three-body recoupling (HO brackets) needs.
    """
    from nnpot.nuclear.channels import np_channels

    if not 0 <= member < len(model.members):
        raise InputError(f"committee member {member} does not exist (model has "
                         f"{len(model.members)})")
    jm = jmax
    if jm is None:
        jm = int(model.header.get("config", {}).get("short", {}).get("jmax", 4)) \
            if hasattr(model, "header") else 4
    table = {(c.s, c.j, c.t, tuple(c.ls)): c for c in np_channels(jm)}
    pot = model.members[member]

    def channel(s: int, j: int, t: int, ls: tuple[int, ...]):
        ch = table.get((s, j, t, tuple(ls)))
        if ch is None:
            return None

        def block(p_out, p_in):
            with torch.no_grad():
                v = pot(ch, torch.as_tensor(p_out, dtype=torch.float64),
                        torch.as_tensor(p_in, dtype=torch.float64))
            if v.shape[0] == 2:  # i^(L - L') = -1 off the diagonal: to real states
                v = v.clone()
                v[0, 1] = -v[0, 1]
                v[1, 0] = -v[1, 0]
            return v

        return block

    return channel


def write_ho_file(path: str | os.PathLike, me: dict, hw: float, nmax: int,
                  hbar2_m: float, meta: dict | None = None) -> None:
    """Write HO matrix elements ``me[(S, J, T)][(Lp, L)][Np, N]`` [MeV] (atomically)."""
    b_rel = math.sqrt(2.0 * hbar2_m / hw)
    mu = HBARC**2 / (2.0 * hbar2_m)
    lines = [f"# {FORMAT} {VERSION}"]
    head = {"hbar_omega": f"{hw:.10g}", "nmax": str(int(nmax)),
            "hbar2_over_m": f"{hbar2_m:.10g}", "b_rel": f"{b_rel:.12g}",
            "mu": f"{mu:.10g}", "channels": str(len(me))}
    for k, v in (meta or {}).items():
        head[str(k)] = str(v).replace("\n", " ")
    lines += [f"# {k} = {v}" for k, v in head.items()]
    lines += [f"# convention: {c}" for c in CONVENTIONS]
    lines.append("# columns: S J T Lp Np L N V_MeV")
    for (s, j, t) in sorted(me):
        for (lp, l) in sorted(me[(s, j, t)]):
            m = np.asarray(me[(s, j, t)][(lp, l)])
            npmax = (nmax - lp) // 2
            nmx = (nmax - l) // 2
            for a in range(npmax + 1):
                for c in range(nmx + 1):
                    lines.append(f"{s} {j} {t} {lp} {a} {l} {c} {m[a, c]:.16e}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def check_format_line(path, line: str, comment: str, fmt: str, version: int) -> None:
    """Raise MalformedFileError unless ``line`` reads ``<comment> <fmt> <v>`` with an integer
    v <= ``version`` (the first line of the text files written here)."""
    first = line.split()
    if first[:2] != [comment, fmt]:
        raise MalformedFileError(f"{str(path)!r} is not an {fmt} file")
    if len(first) < 3 or not first[2].isdigit() or int(first[2]) > version:
        raise MalformedFileError(f"{str(path)!r} has an unknown {fmt} version")


def read_ho_file(path: str | os.PathLike) -> tuple[dict, dict]:
    """Read a file of :func:`write_ho_file`: (me, header); header values as strings."""
    path = Path(path)
    if not path.is_file():
        raise MalformedFileError(f"HO matrix-element file {str(path)!r} does not exist")
    header: dict[str, str] = {}
    rows = []
    with open(path, encoding="utf-8") as fh:
        check_format_line(path, fh.readline(), "#", FORMAT, VERSION)
        for lineno, line in enumerate(fh, start=2):
            if line.startswith("#"):
                if " = " in line:
                    k, v = line[1:].split(" = ", 1)
                    header[k.strip()] = v.strip()
                continue
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 8:
                raise MalformedFileError(f"{str(path)!r} line {lineno}: expected 8 columns")
            try:
                rows.append((*(int(x) for x in parts[:7]), float(parts[7])))
            except ValueError:
                raise MalformedFileError(f"{str(path)!r} line {lineno}: not numbers") from None
    for key in ("hbar_omega", "nmax", "hbar2_over_m"):
        if key not in header:
            raise MalformedFileError(f"{str(path)!r} lacks the header entry {key!r}")
    nmax = int(header["nmax"])
    me: dict = {}
    for s, j, t, lp, a, l, c, v in rows:
        if 2 * a + lp > nmax or 2 * c + l > nmax:
            raise MalformedFileError(f"{str(path)!r}: state beyond nmax = {nmax}")
        blk = me.setdefault((s, j, t), {})
        if (lp, l) not in blk:
            blk[(lp, l)] = np.zeros(((nmax - lp) // 2 + 1, (nmax - l) // 2 + 1))
        blk[(lp, l)][a, c] = v
    return me, header
