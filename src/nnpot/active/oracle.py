"""Labelling oracles: reference energies, forces and stress for single structures.

An oracle is anything with a ``name``, a ``settings()`` dict (JSON, kept as provenance)
and ``label(atoms) -> LabelRecord``. ``label`` never raises for a failed calculation:
an exception, an unconverged SCF, a non-finite number or a timeout becomes a record with
``ok=False`` and the reason as text, so a loop can store it and move on.

Units of every record: energy in eV, forces in eV/Å (shape ``(n_atoms, 3)``), stress in
eV/Å³ with ASE's sign convention and Voigt order ``(xx, yy, zz, yz, xz, xy)`` (``None``
where the method gives no stress, e.g. molecules), wall time in seconds.

Oracles here:

- :class:`EMTOracle` — ASE's effective-medium theory (Jacobsen, Stoltze, Nørskov 1996):
  cheap, metals (Cu, Ag, Au, Ni, Pd, Pt, Al) plus a toy H/C/N/O parametrisation.
- :class:`XTBOracle` — GFN2-xTB (Bannwarth, Ehlert, Grimme 2019) through tblite; molecules
  and 3-D periodic cells (stress for periodic cells).
- :class:`PySCFOracle` — Kohn–Sham DFT (or Hartree–Fock) for molecules through PySCF;
  energies in Hartree and analytic gradients in Hartree/Bohr are converted with
  ``ase.units`` (1 Ha = 27.211… eV, 1 Bohr = 0.529177… Å): F = −∇E · Ha/Bohr.
- :class:`FlakyOracle` — wraps another oracle and fails on a deterministic fraction of
  structures (by structure hash): fault injection for tests.

Oracles hold only plain settings, so they pickle and run in worker processes
(see :func:`nnpot.active.execute.label_many`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from ase import Atoms

from nnpot.errors import InputError, OracleError

__all__ = [
    "EMTOracle",
    "FlakyOracle",
    "LabelRecord",
    "Oracle",
    "OracleTimeout",
    "PySCFOracle",
    "XTBOracle",
    "structure_hash",
]

HASH_DECIMALS = 6


def structure_hash(atoms: Atoms, decimals: int = HASH_DECIMALS) -> str:
    """Deterministic SHA-256 hex digest of a structure (first 32 hex characters).

    Hashed: atomic numbers, positions [Å] and cell [Å] rounded to ``decimals`` decimals
    (as integers ``rint(x · 10^decimals)``, so ``-0.0`` and ``0.0`` agree), and the pbc flags.
    Two structures with the same hash get the same label; the store never labels a hash
    twice. Positions are not wrapped into the cell.
    """
    scale = 10.0**decimals
    h = hashlib.sha256()
    h.update(b"nnpot-structure-v1")
    h.update(np.asarray(atoms.numbers, dtype="<i8").tobytes())
    h.update(np.rint(np.asarray(atoms.positions, dtype=float) * scale).astype("<i8").tobytes())
    h.update(np.rint(np.asarray(atoms.cell.array, dtype=float) * scale).astype("<i8").tobytes())
    h.update(np.asarray(atoms.pbc, dtype=np.uint8).tobytes())
    return h.hexdigest()[:32]


@dataclass
class LabelRecord:
    """The outcome of labelling one structure.

    ``energy`` [eV], ``forces`` [eV/Å] ``(n, 3)``, ``stress`` [eV/Å³] Voigt ``(6,)`` or
    ``None``; ``ok`` is ``False`` for a failure, with ``reason`` saying why; ``wall_time``
    [s] of the last attempt; ``attempts`` counts tries (set by ``label_many``).
    """

    structure_hash: str
    ok: bool
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    reason: str | None = None
    wall_time: float = 0.0
    oracle: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (arrays become nested lists)."""
        d = asdict(self)
        for key in ("forces", "stress"):
            if d[key] is not None:
                d[key] = np.asarray(d[key]).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelRecord:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        for key in ("forces", "stress"):
            if d.get(key) is not None:
                d[key] = np.asarray(d[key], dtype=float)
        return cls(**d)


@runtime_checkable
class Oracle(Protocol):
    """What the active-learning loop needs from a reference method."""

    name: str

    def settings(self) -> dict[str, Any]:
        """Settings as a JSON-serialisable dict (stored with every label)."""
        ...

    def label(self, atoms: Atoms) -> LabelRecord:
        """Label one structure; failures are returned as ``ok=False``, never raised."""
        ...


class OracleTimeout(Exception):
    """Raised inside a worker when a structure exceeds its time limit (becomes ok=False)."""


class BaseOracle:
    """Common ``label`` logic: timing, validation of results, failures as records.

    Subclasses set ``name`` and implement ``_compute(atoms) -> (energy [eV], forces
    [eV/Å] (n, 3), stress [eV/Å³] Voigt (6,) or None)``; they may raise anything.
    """

    name = "base"

    def settings(self) -> dict[str, Any]:
        return {}

    def _compute(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _failure(self, h: str, reason: str, t0: float) -> LabelRecord:
        return LabelRecord(
            structure_hash=h, ok=False, reason=reason, wall_time=time.perf_counter() - t0,
            oracle=self.name, settings=self.settings(),
        )

    def label(self, atoms: Atoms) -> LabelRecord:
        """Label ``atoms`` (not modified): energy [eV], forces [eV/Å], stress [eV/Å³]."""
        t0 = time.perf_counter()
        h = ""
        try:
            h = structure_hash(atoms)
            energy, forces, stress = self._compute(atoms.copy())
            energy = float(energy)
            forces = np.array(forces, dtype=float).reshape(len(atoms), 3)
            if stress is not None:
                stress = np.array(stress, dtype=float)
                if stress.shape == (3, 3):
                    stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
                stress = stress.reshape(6)
            finite = np.isfinite(energy) and np.isfinite(forces).all()
            if stress is not None:
                finite = finite and bool(np.isfinite(stress).all())
            if not finite:
                return self._failure(h, "non-finite energy, forces or stress", t0)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a record
            return self._failure(h, f"{type(exc).__name__}: {exc}".strip(), t0)
        return LabelRecord(
            structure_hash=h, ok=True, energy=energy, forces=forces, stress=stress,
            wall_time=time.perf_counter() - t0, oracle=self.name, settings=self.settings(),
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"


def _periodic(atoms: Atoms) -> bool:
    return bool(np.all(atoms.pbc))


class EMTOracle(BaseOracle):
    """ASE's EMT calculator. Stress [eV/Å³] only for fully periodic cells."""

    name = "emt"

    def settings(self) -> dict[str, Any]:
        return {"method": "EMT"}

    def _compute(self, atoms):
        from ase.calculators.emt import EMT

        atoms.calc = EMT()
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=True) if _periodic(atoms) else None
        return energy, forces, stress


class XTBOracle(BaseOracle):
    """GFN2-xTB (or GFN1-xTB) through tblite's ASE calculator.

    Molecules (no pbc) and 3-D periodic cells (stress [eV/Å³] computed); partially periodic
    cells are rejected. ``accuracy`` scales the SCF thresholds (tblite convention, smaller
    is tighter); ``electronic_temperature`` in K; ``charge`` in e; ``multiplicity`` 2S+1.
    An unconverged SCF becomes a failed record.
    """

    name = "xtb"

    def __init__(
        self,
        method: str = "GFN2-xTB",
        accuracy: float = 1.0,
        electronic_temperature: float = 300.0,
        max_iterations: int = 250,
        charge: float | None = None,
        multiplicity: int | None = None,
    ) -> None:
        if method not in ("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB"):
            raise InputError(f"unknown xTB method {method!r}; use 'GFN2-xTB' or 'GFN1-xTB'")
        self.method = method
        self.accuracy = float(accuracy)
        self.electronic_temperature = float(electronic_temperature)
        self.max_iterations = int(max_iterations)
        self.charge = charge
        self.multiplicity = multiplicity

    def settings(self) -> dict[str, Any]:
        return {
            "method": self.method, "accuracy": self.accuracy,
            "electronic_temperature": self.electronic_temperature,
            "max_iterations": self.max_iterations, "charge": self.charge,
            "multiplicity": self.multiplicity,
        }

    def _compute(self, atoms):
        from tblite.ase import TBLite

        if atoms.pbc.any() and not atoms.pbc.all():
            raise OracleError("tblite handles molecules or 3-D periodic cells, not partial pbc")
        atoms.calc = TBLite(
            method=self.method, accuracy=self.accuracy,
            electronic_temperature=self.electronic_temperature,
            max_iterations=self.max_iterations, charge=self.charge,
            multiplicity=self.multiplicity, verbosity=0,
        )
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=True) if _periodic(atoms) else None
        return energy, forces, stress


class PySCFOracle(BaseOracle):
    """Kohn–Sham DFT (any libxc functional PySCF knows, e.g. ``"PBE"``, ``"B3LYP"``) or
    Hartree–Fock (``xc="HF"``) for molecules through PySCF.

    ``spin`` is 2S (number of unpaired electrons); ``None`` picks 0 or 1 by electron-count
    parity; open shells use unrestricted KS/HF. ``conv_tol`` [Hartree] and ``max_cycle``
    control the SCF; an unconverged SCF is a failed record. ``grid_level`` is PySCF's DFT
    grid level; ``density_fit`` uses the RI approximation; ``threads`` sets PySCF's OpenMP
    threads in the process that runs the calculation. Energies are converted from Hartree
    to eV and gradients from Hartree/Bohr to forces in eV/Å. Periodic structures fail.
    """

    name = "pyscf"

    def __init__(
        self,
        xc: str = "PBE",
        basis: str = "def2-SVP",
        charge: int = 0,
        spin: int | None = None,
        conv_tol: float = 1e-9,
        max_cycle: int = 100,
        grid_level: int = 3,
        density_fit: bool = False,
        threads: int | None = None,
        max_memory_mb: int = 2000,
    ) -> None:
        self.xc = str(xc)
        self.basis = str(basis)
        self.charge = int(charge)
        self.spin = spin
        self.conv_tol = float(conv_tol)
        self.max_cycle = int(max_cycle)
        self.grid_level = int(grid_level)
        self.density_fit = bool(density_fit)
        self.threads = threads
        self.max_memory_mb = int(max_memory_mb)

    def settings(self) -> dict[str, Any]:
        return {
            "xc": self.xc, "basis": self.basis, "charge": self.charge, "spin": self.spin,
            "conv_tol": self.conv_tol, "max_cycle": self.max_cycle,
            "grid_level": self.grid_level, "density_fit": self.density_fit,
            "threads": self.threads, "max_memory_mb": self.max_memory_mb,
        }

    def _compute(self, atoms):
        from ase.units import Bohr, Hartree
        from pyscf import dft, gto, lib, scf

        if atoms.pbc.any():
            raise OracleError("PySCFOracle labels molecules only (the structure has pbc)")
        if self.threads:
            lib.num_threads(int(self.threads))
        n_electrons = int(atoms.numbers.sum()) - self.charge
        spin = (n_electrons % 2) if self.spin is None else int(self.spin)
        mol = gto.M(
            atom=[(int(z), tuple(p)) for z, p in zip(atoms.numbers, atoms.positions, strict=True)],
            unit="Angstrom", basis=self.basis, charge=self.charge, spin=spin, verbose=0,
            max_memory=self.max_memory_mb,
        )
        if self.xc.upper() == "HF":
            mf = scf.RHF(mol) if spin == 0 else scf.UHF(mol)
        else:
            mf = dft.RKS(mol) if spin == 0 else dft.UKS(mol)
            mf.xc = self.xc
            mf.grids.level = self.grid_level
        if self.density_fit:
            mf = mf.density_fit()
        mf.conv_tol = self.conv_tol
        mf.max_cycle = self.max_cycle
        mf.verbose = 0
        energy = mf.kernel()
        if not mf.converged:
            raise OracleError(f"SCF not converged in {self.max_cycle} cycles")
        grad = mf.nuc_grad_method()
        grad.verbose = 0
        gradient = np.asarray(grad.kernel())  # Hartree/Bohr
        return energy * Hartree, -gradient * (Hartree / Bohr), None


_FLAKY_MODES = ("error", "nan", "hang", "stuck", "crash")


class FlakyOracle(BaseOracle):
    """Fault injection: fails on a deterministic fraction of structures.

    A structure fails when ``u < fail_fraction``, with ``u ∈ [0, 1)`` from a hash of
    ``(seed, structure_hash)`` — so the same structure fails on every attempt and the
    fraction over many structures is ``fail_fraction``. ``mode``: ``"error"`` raises,
    ``"nan"`` returns non-finite forces, ``"hang"`` sleeps ``hang_s`` seconds (a timeout
    test), ``"stuck"`` blocks SIGALRM in its thread first and then sleeps (a compiled call
    that cannot be interrupted; use it only in worker processes), ``"crash"`` kills its own
    process (a segfaulting code; only in worker processes). Other structures get
    ``inner``'s labels. ``delay_s`` [s] makes every call slower (labels stay in flight).
    """

    def __init__(
        self, inner: Oracle, fail_fraction: float, seed: int = 0, mode: str = "error",
        hang_s: float = 60.0, delay_s: float = 0.0,
    ) -> None:
        if not 0.0 <= fail_fraction <= 1.0:
            raise InputError(f"fail_fraction must be in [0, 1], got {fail_fraction}")
        if mode not in _FLAKY_MODES:
            raise InputError(f"unknown FlakyOracle mode {mode!r}; use one of {_FLAKY_MODES}")
        self.inner = inner
        self.fail_fraction = float(fail_fraction)
        self.seed = int(seed)
        self.mode = mode
        self.hang_s = float(hang_s)
        self.delay_s = float(delay_s)
        self.name = f"flaky-{inner.name}"

    def settings(self) -> dict[str, Any]:
        return {
            "inner": self.inner.name, "inner_settings": self.inner.settings(),
            "fail_fraction": self.fail_fraction, "seed": self.seed, "mode": self.mode,
            "delay_s": self.delay_s,
        }

    def fails(self, atoms: Atoms) -> bool:
        """Whether this structure is one of the injected failures."""
        digest = hashlib.sha256(f"{self.seed}:{structure_hash(atoms)}".encode()).digest()
        u = int.from_bytes(digest[:8], "little") / 2.0**64
        return u < self.fail_fraction

    def _compute(self, atoms):
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        if self.fails(atoms):
            if self.mode == "error":
                raise OracleError("injected failure")
            if self.mode == "crash":
                os._exit(13)
            if self.mode == "stuck" and hasattr(signal, "pthread_sigmask"):
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            if self.mode in ("hang", "stuck"):
                time.sleep(self.hang_s)
                raise OracleError("injected hang ended without a timeout")
            return 0.0, np.full((len(atoms), 3), np.nan), None
        rec = self.inner.label(atoms)
        if not rec.ok:
            raise OracleError(rec.reason or "inner oracle failed")
        return rec.energy, rec.forces, rec.stress
