"""Labelled structures: reading extxyz / ASE databases into frames, checks, and splits.

A :class:`Frame` is plain NumPy (eV, Å, eV/Å, eV/Å³). Labels are read from configurable
keys (defaults ``REF_energy`` in ``atoms.info``, ``REF_forces`` in ``atoms.arrays``,
``REF_stress`` in ``atoms.info`` as 6 Voigt or 9 components, ASE sign convention). Every
structure is checked at the boundary: finite coordinates, no atoms closer than 0.1 Å, a
non-degenerate cell along periodic directions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from nnpot.errors import (
    BadStructureError,
    EmptyDatasetError,
    MalformedFileError,
    MissingLabelError,
)

MIN_DISTANCE = 0.1  # Å: closer atoms are an input error, never a prediction


@dataclass
class LabelKeys:
    """Where labels live in an extxyz / ASE db record."""

    energy: str = "REF_energy"
    forces: str = "REF_forces"
    stress: str = "REF_stress"
    weight: str = "weight"


@dataclass
class Frame:
    """One labelled structure (NumPy arrays; labels ``None`` when absent)."""

    numbers: np.ndarray  # (n,) int
    positions: np.ndarray  # (n, 3) Å
    cell: np.ndarray  # (3, 3) Å, rows are lattice vectors
    pbc: np.ndarray  # (3,) bool
    energy: float | None = None  # eV
    forces: np.ndarray | None = None  # (n, 3) eV/Å
    stress: np.ndarray | None = None  # (6,) eV/Å³, Voigt xx yy zz yz xz xy, ASE sign
    weight: float = 1.0
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def symbols(self) -> list[str]:
        return [chemical_symbols[z] for z in self.numbers]

    def to_atoms(self) -> Atoms:
        """The structure as ASE Atoms (labels stored under the default REF_ keys)."""
        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell,
                      pbc=self.pbc)
        atoms.info.update(self.info)
        if self.energy is not None:
            atoms.info["REF_energy"] = float(self.energy)
        if self.forces is not None:
            atoms.arrays["REF_forces"] = np.array(self.forces)
        if self.stress is not None:
            atoms.info["REF_stress"] = np.array(self.stress)
        return atoms


def to_voigt(stress: np.ndarray) -> np.ndarray:
    """Convert a stress given as 6 Voigt, 9 or 3x3 components to Voigt (xx yy zz yz xz xy)."""
    s = np.asarray(stress, dtype=float).reshape(-1)
    if s.size == 6:
        return s
    if s.size == 9:
        m = s.reshape(3, 3)
        return np.array([m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]])
    raise MalformedFileError(f"stress has {s.size} components; expected 6 (Voigt) or 9")


def voigt_to_matrix(v: np.ndarray) -> np.ndarray:
    """Voigt (xx yy zz yz xz xy) to a symmetric 3x3 matrix."""
    xx, yy, zz, yz, xz, xy = v
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def check_coordinates(numbers, positions, cell, pbc, where: str = "structure") -> None:
    """Raise :class:`BadStructureError` for wrong shapes, non-finite coordinates or a
    degenerate cell along a periodic direction."""
    positions = np.asarray(positions, dtype=float)
    if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) != len(numbers):
        raise BadStructureError(f"{where}: positions must have shape (n_atoms, 3)")
    if len(numbers) == 0:
        raise BadStructureError(f"{where}: has no atoms")
    if not np.all(np.isfinite(positions)):
        bad = int(np.where(~np.isfinite(positions).all(axis=1))[0][0])
        raise BadStructureError(f"{where}: atom {bad} has NaN or infinite coordinates")
    cell = np.asarray(cell, dtype=float)
    if not np.all(np.isfinite(cell)):
        raise BadStructureError(f"{where}: the cell has NaN or infinite entries")
    pbc = np.asarray(pbc, dtype=bool)
    if pbc.any():
        lengths = np.linalg.norm(cell, axis=1)
        if np.any(lengths[pbc] < 1e-6) or abs(np.linalg.det(cell)) < 1e-6:
            raise BadStructureError(f"{where}: periodic but its cell is degenerate (volume 0)")


def check_overlaps(positions, cell, pairs, where: str = "structure") -> None:
    """Raise :class:`BadStructureError` if a pair of ``pairs = (i, j, shifts)`` (a
    neighbour list with any cutoff ≥ 0.1 Å) is closer than 0.1 Å."""
    i, j, s = pairs
    if len(i) == 0:
        return
    d = np.linalg.norm(positions[j] - positions[i] + s @ np.asarray(cell), axis=1)
    close = np.nonzero(d < MIN_DISTANCE)[0]
    if len(close):
        k = close[0]
        raise BadStructureError(
            f"{where}: atoms {int(i[k])} and {int(j[k])} are closer than {MIN_DISTANCE} Å "
            "(atoms on top of each other)"
        )


def check_structure(numbers, positions, cell, pbc, where: str = "structure") -> None:
    """:func:`check_coordinates` and :func:`check_overlaps` (neighbour search at 1 Å:
    a tiny cutoff would make vesin's cell list slow)."""
    from nnpot.atomistic.neighbors import neighbor_pairs

    check_coordinates(numbers, positions, cell, pbc, where)
    pairs = neighbor_pairs(positions, cell, pbc, 1.0)
    check_overlaps(np.asarray(positions, dtype=float), cell, pairs, where)


def _get_label(atoms: Atoms, key: str, kind: str):
    if kind == "forces":
        if key in atoms.arrays:
            return atoms.arrays[key]
    elif key in atoms.info:
        return atoms.info[key]
    # extxyz moves plain `energy`/`forces`/`stress` into a SinglePointCalculator
    calc_name = {"energy": "energy", "forces": "forces", "stress": "stress"}[kind]
    if atoms.calc is not None and key == calc_name and calc_name in atoms.calc.results:
        return atoms.calc.results[calc_name]
    return None


def frame_from_atoms(
    atoms: Atoms,
    keys: LabelKeys | None = None,
    require: Iterable[str] = (),
    where: str = "structure",
) -> Frame:
    """Build a :class:`Frame` from ASE Atoms, checking the structure and required labels.

    ``require`` names labels that must be present: any of ``"energy"``, ``"forces"``,
    ``"stress"``.
    """
    keys = keys or LabelKeys()
    numbers = atoms.get_atomic_numbers().astype(np.int64)
    positions = np.array(atoms.get_positions(), dtype=float)
    cell = np.array(atoms.get_cell()[:], dtype=float)
    pbc = np.array(atoms.get_pbc(), dtype=bool)
    check_structure(numbers, positions, cell, pbc, where)
    energy = _get_label(atoms, keys.energy, "energy")
    forces = _get_label(atoms, keys.forces, "forces")
    stress = _get_label(atoms, keys.stress, "stress")
    for name, key, value in (("energy", keys.energy, energy), ("forces", keys.forces, forces),
                             ("stress", keys.stress, stress)):
        if name in require and value is None:
            raise MissingLabelError(
                f"{where}: has no {name} label under the key {key!r} "
                f"(set the key with --{name}-key or in [data] of the config)"
            )
    if energy is not None:
        energy = float(energy)
        if not np.isfinite(energy):
            raise MalformedFileError(f"{where}: the energy label is not finite")
    if forces is not None:
        forces = np.array(forces, dtype=float)
        if forces.shape != positions.shape:
            raise MalformedFileError(f"{where}: forces have shape {forces.shape}, "
                                     f"expected {positions.shape}")
        if not np.all(np.isfinite(forces)):
            raise MalformedFileError(f"{where}: the forces label has NaN or infinite values")
    if stress is not None:
        stress = to_voigt(stress)
        if not np.all(np.isfinite(stress)):
            raise MalformedFileError(f"{where}: the stress label has NaN or infinite values")
    weight = float(atoms.info.get(keys.weight, 1.0))
    if not np.isfinite(weight) or weight < 0:
        raise MalformedFileError(f"{where}: weight {weight} must be finite and >= 0")
    info = {k: v for k, v in atoms.info.items()
            if isinstance(v, (str, int, float, bool)) and k not in
            (keys.energy, keys.stress, keys.weight)}
    return Frame(numbers, positions, cell, pbc, energy, forces, stress, weight, info)


def read_atoms(path: str | os.PathLike, index: str = ":") -> list[Atoms]:
    """Read ASE Atoms from an extxyz file (any suffix ASE reads) or an ASE database."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise MalformedFileError(f"data file {str(path)!r} does not exist")
    try:
        if path.suffix in (".db", ".sqlite"):
            import ase.db

            with ase.db.connect(str(path)) as db:
                out = []
                for row in db.select():
                    atoms = row.toatoms(add_additional_information=True)
                    extra = atoms.info.pop("key_value_pairs", {}) or {}
                    data = atoms.info.pop("data", {}) or {}
                    atoms.info.update(extra)
                    for k, v in data.items():
                        v = np.asarray(v)
                        if v.shape[:1] == (len(atoms),):
                            atoms.arrays[k] = v
                        else:
                            atoms.info[k] = v
                    out.append(atoms)
                return out
        fmt = "extxyz" if path.suffix in (".xyz", ".extxyz") else None
        images = ase.io.read(str(path), index=index, format=fmt)
    except Exception as exc:  # ASE raises many kinds of parse errors
        raise MalformedFileError(f"cannot read {str(path)!r}: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    return images if isinstance(images, list) else [images]


def read_frames(
    path: str | os.PathLike,
    keys: LabelKeys | None = None,
    require: Iterable[str] = ("energy",),
) -> list[Frame]:
    """Read labelled frames from extxyz or an ASE database; raise clear errors."""
    images = read_atoms(path)
    if not images:
        raise EmptyDatasetError(f"{str(path)!r} holds no structures")
    require = tuple(require)
    return [frame_from_atoms(a, keys, require, where=f"{Path(path).name} structure {k}")
            for k, a in enumerate(images)]


def elements_of(frames: Sequence[Frame]) -> list[str]:
    """Element symbols present in ``frames``, sorted by atomic number."""
    zs = sorted({int(z) for f in frames for z in f.numbers})
    return [chemical_symbols[z] for z in zs]


def check_elements(numbers: np.ndarray, elements: Sequence[str], where: str = "structure"):
    """Raise :class:`~nnpot.errors.UnknownElementError` for elements outside ``elements``."""
    from nnpot.errors import UnknownElementError

    known = {atomic_numbers[e] for e in elements}
    unknown = sorted({int(z) for z in numbers} - known)
    if unknown:
        names = ", ".join(chemical_symbols[z] for z in unknown)
        raise UnknownElementError(
            f"{where}: contains {names}, which the model does not know "
            f"(it was trained on {', '.join(elements)})"
        )


def split_indices(
    n: int, valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reproducible random split of ``range(n)`` into train / validation / test indices.

    With very small ``n`` every split still gets at least one structure when its fraction
    is positive and ``n >= 3``.
    """
    if n == 0:
        raise EmptyDatasetError("the data set holds no structures")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    n_valid = int(round(valid_fraction * n))
    if n >= 3:
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
        n_valid = max(n_valid, 1 if valid_fraction > 0 else 0)
    if n - n_test - n_valid < 1:
        raise EmptyDatasetError(f"{n} structures are too few for the requested splits")
    test = np.sort(perm[:n_test])
    valid = np.sort(perm[n_test:n_test + n_valid])
    train = np.sort(perm[n_test + n_valid:])
    return train, valid, test
