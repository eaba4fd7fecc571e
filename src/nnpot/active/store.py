"""Persistent state of an active-learning run: an ASE database and a small JSON file.

:class:`Store` keeps every structure the loop has seen in one ASE SQLite database, one
row per structure hash (:func:`nnpot.active.oracle.structure_hash`), with its status

- ``"candidate"`` — selected for labelling, no label yet;
- ``"labelled"`` — the oracle's energy [eV], forces [eV/Å] and stress [eV/Å³, Voigt]
  are stored as the row's ``energy``/``forces``/``stress`` columns;
- ``"failed"`` — the oracle failed (``reason`` says why, ``attempts`` how often);
- ``"discarded"`` — dropped by a decision of the loop (e.g. above the trust interval),

and provenance as key-value pairs: ``iteration``, ``trigger`` (the value that made it a
candidate, e.g. max force deviation in eV/Å), ``oracle``, ``wall_time`` [s],
``attempts``, ``source``; the oracle's settings JSON is in the row's ``data``. Each
call is one SQLite transaction, so a process killed at any moment leaves the database
readable and each row either before or after the call. A hash that is labelled is never
labelled again (:class:`DuplicateLabelError`).

:class:`RunState` is the loop's position (iteration, phase, RNG state, paths), written
atomically (temp file + fsync + rename) with :func:`nnpot.io.atomic_write_json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ase.db
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from nnpot.active.oracle import LabelRecord, structure_hash
from nnpot.errors import MalformedFileError
from nnpot.io import atomic_write_json

__all__ = ["STATUSES", "DuplicateLabelError", "RunState", "Store"]

STATUSES = ("candidate", "labelled", "failed", "discarded")


class DuplicateLabelError(RuntimeError):
    """An attempt to label a structure hash that already has a label."""


def _clean(atoms: Atoms) -> Atoms:
    """A copy with only what defines the structure (no calculator, info, extra arrays)."""
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell,
                 pbc=atoms.pbc)


class Store:
    """Structures, labels, failures and decisions of an active-learning run.

    ``path``: an ``.db`` SQLite file (created if missing). Query by structure hash with
    :meth:`get` / :meth:`status`; training data come from :meth:`labelled_atoms`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite's own locking and transactions; ASE's lock *file* would outlive a killed
        # process and block every later run
        self.db = ase.db.connect(str(self.path), type="db", append=True, use_lock_file=False)
        # (default rollback journal, not WAL: WAL does not work on network file systems)

    # -- queries -------------------------------------------------------------------------
    def get(self, h: str):
        """The ``ase.db`` row of hash ``h``, or ``None``."""
        rows = list(self.db.select(hash=h))
        return rows[0] if rows else None

    def status(self, h: str) -> str | None:
        """``"candidate"``, ``"labelled"``, ``"failed"``, ``"discarded"`` or ``None``."""
        row = self.get(h)
        return None if row is None else row.status

    def __contains__(self, h: str) -> bool:
        return self.db.count(hash=h) > 0

    def __len__(self) -> int:
        return self.db.count()

    def rows(self, status: str | None = None, iteration: int | None = None) -> list:
        """Rows in insertion order, optionally filtered by status and iteration."""
        query: dict[str, Any] = {}
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}; use one of {STATUSES}")
            query["status"] = status
        if iteration is not None:
            query["iteration"] = int(iteration)
        return sorted(self.db.select(**query), key=lambda r: r.id)

    def hashes(self, status: str | None = None) -> list[str]:
        """Structure hashes in insertion order (optionally of one status)."""
        return [r.hash for r in self.rows(status)]

    def counts(self) -> dict[str, int]:
        """Number of rows per status."""
        return {s: self.db.count(status=s) for s in STATUSES}

    def candidates(self) -> list[tuple[str, Atoms]]:
        """``(hash, atoms)`` of rows still waiting for a label (resume after a kill)."""
        return [(r.hash, _clean(r.toatoms())) for r in self.rows("candidate")]

    def atoms(self, h: str) -> Atoms:
        """The structure of hash ``h`` (no labels attached)."""
        row = self.get(h)
        if row is None:
            raise KeyError(h)
        return _clean(row.toatoms())

    def labelled_atoms(
        self, energy_key: str = "REF_energy", forces_key: str = "REF_forces",
        stress_key: str = "REF_stress",
    ) -> list[Atoms]:
        """Labelled structures in insertion order, labels set like the extxyz convention.

        ``info[energy_key]`` [eV], ``arrays[forces_key]`` [eV/Å] (n, 3) and, where the
        oracle gave one, ``info[stress_key]`` [eV/Å³] Voigt (6,); ``info["structure_hash"]``
        and ``info["iteration"]`` for provenance. No calculator is attached.
        """
        out = []
        for row in self.rows("labelled"):
            atoms = _clean(row.toatoms())
            atoms.info[energy_key] = float(row.energy)
            atoms.arrays[forces_key] = np.array(row.forces, dtype=float)
            if row.get("stress") is not None:
                atoms.info[stress_key] = np.array(row.stress, dtype=float)
            atoms.info["structure_hash"] = row.hash
            atoms.info["iteration"] = int(row.iteration)
            out.append(atoms)
        return out

    def failures(self) -> list[dict[str, Any]]:
        """Failed structures: hash, reason, attempts, iteration, oracle."""
        return [
            {"hash": r.hash, "reason": r.get("reason"), "attempts": r.get("attempts"),
             "iteration": r.iteration, "oracle": r.get("oracle")}
            for r in self.rows("failed")
        ]

    # -- writes --------------------------------------------------------------------------
    def add_candidate(
        self, atoms: Atoms, iteration: int, trigger: float | None = None,
        source: str = "md", h: str | None = None,
    ) -> tuple[str, bool]:
        """Add ``atoms`` as a candidate; returns ``(hash, added)``.

        A hash already in the store (any status) is not added again (``added=False``).
        ``trigger``: the value that made it a candidate (e.g. eV/Å); ``source``: where it
        came from (``"md"``, ``"initial"``, ...).
        """
        h = h or structure_hash(atoms)
        if h in self:
            return h, False
        kvp: dict[str, Any] = {"hash": h, "status": "candidate", "iteration": int(iteration),
                               "attempts": 0, "source": str(source)}
        if trigger is not None:
            kvp["trigger"] = float(trigger)
        self.db.write(_clean(atoms), key_value_pairs=kvp)
        return h, True

    def add_discarded(
        self, atoms: Atoms, iteration: int, reason: str, trigger: float | None = None,
        source: str = "md", h: str | None = None,
    ) -> tuple[str, bool]:
        """Record a structure the loop decided not to label, in one transaction.

        Returns ``(hash, added)``; a hash already in the store is left as it is.
        """
        h = h or structure_hash(atoms)
        if h in self:
            return h, False
        kvp: dict[str, Any] = {"hash": h, "status": "discarded", "iteration": int(iteration),
                               "attempts": 0, "source": str(source), "reason": str(reason)}
        if trigger is not None and np.isfinite(trigger):
            kvp["trigger"] = float(trigger)
        self.db.write(_clean(atoms), key_value_pairs=kvp)
        return h, True

    def record_label(
        self, record: LabelRecord, atoms: Atoms | None = None, iteration: int | None = None,
        trigger: float | None = None,
    ) -> str:
        """Store an oracle's result (label or failure) for ``record.structure_hash``.

        Updates the candidate row in one transaction (``atoms`` needed only for a hash not
        yet in the store). Returns the new status. Raises :class:`DuplicateLabelError` if
        the hash is already labelled.
        """
        with self.db:  # one transaction
            return self._record_label(record, atoms, iteration, trigger)

    def _record_label(self, record, atoms, iteration, trigger) -> str:
        h = record.structure_hash
        row = self.get(h)
        if row is not None and row.status == "labelled":
            raise DuplicateLabelError(f"structure {h} is already labelled")
        if row is None:
            if atoms is None:
                raise KeyError(f"structure {h} is not in the store; pass its atoms")
            if structure_hash(atoms) != h:
                raise ValueError(f"atoms do not match the record's structure hash {h}")
            self.add_candidate(atoms, iteration if iteration is not None else -1, trigger,
                               source="direct", h=h)
            row = self.get(h)
        status = "labelled" if record.ok else "failed"
        kvp: dict[str, Any] = {
            "status": status, "oracle": record.oracle, "wall_time": float(record.wall_time),
            "attempts": int(row.get("attempts", 0)) + int(record.attempts),
        }
        if iteration is not None:
            kvp["iteration"] = int(iteration)
        if trigger is not None:
            kvp["trigger"] = float(trigger)
        data = {"oracle_settings": json.dumps(record.settings, sort_keys=True)}
        if record.ok:
            labelled = _clean(row.toatoms())
            labelled.calc = SinglePointCalculator(
                labelled, energy=record.energy, forces=record.forces, stress=record.stress
            )
            self.db.update(row.id, atoms=labelled, delete_keys=["reason"], data=data, **kvp)
        else:
            kvp["reason"] = str(record.reason or "unknown failure")
            self.db.update(row.id, data=data, **kvp)
        return status

    def discard(self, h: str, reason: str, iteration: int | None = None) -> None:
        """Mark a candidate (not a labelled row) as ``"discarded"`` with a reason."""
        row = self.get(h)
        if row is None:
            raise KeyError(h)
        if row.status == "labelled":
            raise DuplicateLabelError(f"structure {h} is labelled; it cannot be discarded")
        kvp: dict[str, Any] = {"status": "discarded", "reason": str(reason)}
        if iteration is not None:
            kvp["iteration"] = int(iteration)
        self.db.update(row.id, **kvp)


PHASES = ("start", "explore", "select", "label", "train", "done")


@dataclass
class RunState:
    """Where an active-learning run is: enough to resume after a kill.

    ``iteration`` (0-based), ``phase`` (one of :data:`PHASES`), ``rng_state`` (a numpy
    ``BitGenerator.state`` dict, JSON-safe), ``paths`` (name → path, e.g. the current
    committee), ``counters`` and ``extra`` for anything else JSON-serialisable.
    """

    iteration: int = 0
    phase: str = "start"
    rng_state: dict[str, Any] | None = None
    paths: dict[str, str] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = 1

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise MalformedFileError(f"unknown run phase {self.phase!r}; one of {PHASES}")

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as JSON, atomically."""
        atomic_write_json(path, _jsonable(asdict(self)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunState:
        """Read a state written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MalformedFileError(f"run state {str(path)!r} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedFileError(f"run state {str(path)!r} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("schema_version") != 1:
            raise MalformedFileError(f"run state {str(path)!r} has an unknown schema")
        try:
            return cls(**data)
        except TypeError as exc:
            raise MalformedFileError(f"run state {str(path)!r} is malformed: {exc}") from None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
