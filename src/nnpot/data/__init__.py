"""Small data sets shipped with nnpot, each made by the script next to it (see its README.md).

``path(name)`` gives the file of a shipped data set:

    path("cu_emt")            copper, ASE EMT labels: cu_emt/cu_emt.extxyz
    path("water_xtb")         water, GFN2-xTB labels: water_xtb/water_xtb.extxyz
    path("rare_gas/Ar")       Ar₂ at 3–5 Å + isolated atom: rare_gas/Ar_train.extxyz
    path("rare_gas/Ar_test")  Ar₂ at 7–12 Å: rare_gas/Ar_test.extxyz (also He, Ne, Kr, Xe)

Every shipped file is also reachable by its path relative to this folder without the
suffix (``"rare_gas/Ar_train"``, ``"nuclear/pwa93_np"``) or with it (``"cu_emt/cu_emt.extxyz"``).
"""

from __future__ import annotations

from pathlib import Path

from nnpot.errors import InputError

__all__ = ["available", "path"]

_ROOT = Path(__file__).resolve().parent
_SKIP_SUFFIXES = {".py", ".pyc", ".md", ".tmp"}


def _index() -> dict[str, Path]:
    """Map every accepted name to its file (scanned afresh: scripts may add files)."""
    names: dict[str, Path] = {}
    stems: dict[str, list[Path]] = {}
    for f in sorted(_ROOT.rglob("*")):
        if (not f.is_file() or f.suffix in _SKIP_SUFFIXES or f.name.startswith(".")
                or "__pycache__" in f.parts):
            continue
        rel = f.relative_to(_ROOT)
        names[rel.as_posix()] = f
        stems.setdefault(rel.with_suffix("").as_posix(), []).append(f)
    for stem, files in stems.items():
        if len(files) == 1:  # a stem is a name only where it is unambiguous
            names[stem] = files[0]
    aliases: dict[str, Path] = {}
    for stem, files in stems.items():
        if len(files) != 1:
            continue
        parts = stem.split("/")
        if len(parts) == 2 and parts[0] == parts[1]:  # cu_emt/cu_emt -> cu_emt
            aliases[parts[0]] = files[0]
        if len(parts) == 2 and parts[1].endswith("_train"):  # rare_gas/Ar_train -> rare_gas/Ar
            aliases[f"{parts[0]}/{parts[1][: -len('_train')]}"] = files[0]
    for k, v in aliases.items():
        names.setdefault(k, v)
    return names


def available() -> list[str]:
    """Names accepted by :func:`path` (short names first, then file stems)."""
    return sorted(_index(), key=lambda n: ("." in n, n.count("/"), n))


def path(name: str) -> Path:
    """Path of the shipped data file called ``name`` (e.g. ``"water_xtb"``, ``"rare_gas/Ar"``).

    Raises :class:`nnpot.errors.InputError` naming the available data sets if ``name`` is
    unknown.
    """
    index = _index()
    key = str(name).strip().strip("/")
    if key in index:
        return index[key]
    short = [n for n in available()
             if "." not in n and not (n.count("/") == 1 and len(set(n.split("/"))) == 1)]
    raise InputError(
        f"Unknown shipped data set {name!r}; available: {', '.join(short)}."
    )
