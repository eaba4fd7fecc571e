"""Atomic extxyz writing for the data-set scripts (no torch import, so scripts start fast)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import ase.io
from ase import Atoms


def write_extxyz_atomic(path: str | os.PathLike, frames: Sequence[Atoms]) -> Path:
    """Write ``frames`` to ``path`` as extxyz: a temp file in the same folder, fsync, rename.

    A reader never sees a half-written file; an interrupted script leaves the old file.
    Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ase.io.write(tmp, list(frames), format="extxyz")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; shipped files are world-readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def label(atoms: Atoms, energy: float, forces, stress=None, **info) -> Atoms:
    """Return a calculator-free copy of ``atoms`` with REF_ labels attached.

    ``energy`` in eV -> ``info["REF_energy"]``; ``forces`` (N, 3) in eV/Å ->
    ``arrays["REF_forces"]``; ``stress`` (6,) Voigt xx yy zz yz xz xy in eV/Å³, ASE sign
    convention -> ``info["REF_stress"]``; extra keyword arguments go into ``info``.
    """
    import numpy as np

    out = atoms.copy()
    out.calc = None
    out.constraints = []
    for key in list(out.arrays):
        if key not in ("numbers", "positions"):
            del out.arrays[key]
    out.info = {}
    out.info.update(info)
    out.info["REF_energy"] = float(energy)
    out.arrays["REF_forces"] = np.asarray(forces, dtype=float).reshape(len(out), 3).copy()
    if stress is not None:
        out.info["REF_stress"] = np.asarray(stress, dtype=float).reshape(6).copy()
    return out
