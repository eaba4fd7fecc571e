"""Phase-shift tables (PWA93 np and the Granada error estimates), degrees vs T_lab in MeV.

Tables are CSV in long format, ``tlab_mev,wave,delta_deg`` (the error table adds
``err_deg,source``); waves are PWA names ("1S0", "3S1", "E1", ...; Stapp bar phases,
3S1 on the Levinson branch starting at 180 deg). Shipped copies live in
``nnpot/data/nuclear`` (see SOURCES.md there). Malformed files raise
:class:`~nnpot.errors.MalformedFileError` naming the file and line.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from nnpot.errors import MalformedFileError
from nnpot.nuclear.channels import get_channel


@dataclass(frozen=True)
class PhaseTable:
    """Phase shifts per wave: ``data[wave] = (tlab [MeV], delta [deg], err [deg] or None)``."""

    data: dict
    source: str

    def waves(self) -> list[str]:
        return list(self.data)

    def energies(self, wave: str) -> np.ndarray:
        return self.data[wave][0]

    def value(self, wave: str, tlab: float) -> float:
        t, d, _ = self.data[wave]
        idx = np.nonzero(np.isclose(t, tlab))[0]
        if len(idx) == 0:
            raise KeyError(f"{self.source} has no {wave} value at {tlab} MeV")
        return float(d[idx[0]])


def _open_text(path: str | os.PathLike | None, default: str) -> tuple[str, str]:
    if path is None:
        res = resources.files("nnpot").joinpath(f"data/nuclear/{default}")
        return res.read_text("utf-8"), default
    p = Path(path)
    if not p.is_file():
        raise MalformedFileError(f"phase-shift table {str(p)!r} does not exist")
    try:
        return p.read_text("utf-8"), str(p)
    except UnicodeDecodeError:
        raise MalformedFileError(f"phase-shift table {str(p)!r} is not UTF-8 text") from None


def read_phase_table(
    path: str | os.PathLike | None = None,
    default: str = "pwa93_np.csv",
    source_filter: str | None = None,
) -> PhaseTable:
    """Read a long-format phase-shift CSV (shipped PWA93 np table when ``path`` is None).

    Columns ``tlab_mev, wave, delta_deg`` and optionally ``err_deg`` and ``source``
    (rows of other sources are skipped when ``source_filter`` is given). Every wave must
    be a known np partial wave; energies must be positive; values finite; no duplicates.
    """
    text, name = _open_text(path, default)
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise MalformedFileError(f"phase-shift table {name!r} is empty") from None
    need = ["tlab_mev", "wave", "delta_deg"]
    if header[:3] != need:
        raise MalformedFileError(
            f"phase-shift table {name!r} must start with columns {','.join(need)}, "
            f"found {','.join(header)}"
        )
    has_err = "err_deg" in header
    i_err = header.index("err_deg") if has_err else None
    i_src = header.index("source") if "source" in header else None
    rows: dict[str, list] = {}
    seen = set()
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise MalformedFileError(
                f"{name!r} line {lineno}: expected {len(header)} columns, found {len(row)}"
            )
        if i_src is not None and source_filter is not None and row[i_src].strip() != source_filter:
            continue
        try:
            t = float(row[0])
            d = float(row[2])
            e = float(row[i_err]) if has_err else None
        except ValueError:
            raise MalformedFileError(f"{name!r} line {lineno}: not a number in {row!r}") from None
        wave = row[1].strip().upper()
        get_channel(wave)  # raises UnknownChannelError for an unknown wave
        if not (math.isfinite(t) and math.isfinite(d)) or (e is not None and not math.isfinite(e)):
            raise MalformedFileError(f"{name!r} line {lineno}: non-finite value in {row!r}")
        if t <= 0:
            raise MalformedFileError(f"{name!r} line {lineno}: T_lab must be positive, got {t}")
        if e is not None and e < 0:
            raise MalformedFileError(f"{name!r} line {lineno}: negative error {e}")
        if (wave, t) in seen:
            raise MalformedFileError(f"{name!r} line {lineno}: duplicate entry {wave} at {t} MeV")
        seen.add((wave, t))
        rows.setdefault(wave, []).append((t, d, e))
    if not rows:
        raise MalformedFileError(f"phase-shift table {name!r} has no data rows")
    data = {}
    for wave, vals in rows.items():
        vals.sort()
        t = np.array([v[0] for v in vals])
        d = np.array([v[1] for v in vals])
        e = np.array([v[2] for v in vals]) if has_err else None
        data[wave] = (t, d, e)
    return PhaseTable(data=data, source=name)


def pwa93_np() -> PhaseTable:
    """The shipped PWA93 np table (22 waves, J <= 4, 1-350 MeV)."""
    return read_phase_table(None, "pwa93_np.csv")


def pwa93_with_errors() -> PhaseTable:
    """PWA93 np values with errors sigma = sqrt(sigma_stat^2 + (PWA93 - Granada)^2) [deg].

    sigma_stat is the Granada delta-shell np statistical error (``granada_ds_np`` in
    ``pwa93_errors.csv``); the difference between the two analyses is added in quadrature
    as a systematic term (single-analysis errors underestimate the spread between
    analyses, see SOURCES.md).
    """
    pwa = pwa93_np()
    gra = read_phase_table(None, "pwa93_errors.csv", source_filter="granada_ds_np")
    data = {}
    for wave, (t, d, _) in pwa.data.items():
        tg, dg, eg = gra.data[wave]
        err = np.empty_like(d)
        for i, ti in enumerate(t):
            j = np.nonzero(np.isclose(tg, ti))[0]
            if len(j) == 0:
                raise MalformedFileError(f"Granada table has no {wave} error at {ti} MeV")
            err[i] = math.hypot(eg[j[0]], d[i] - dg[j[0]])
        data[wave] = (t, d, err)
    return PhaseTable(data=data, source="PWA93 np (+ Granada errors)")
