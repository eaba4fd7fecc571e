"""Molecular dynamics with ASE integrators, a JSON-lines log and an optional watchdog.

Times: ``dt_fs`` and ``friction`` in fs / fs⁻¹ at this API (converted to ASE units
inside); temperatures in K; energies in eV. The trajectory is written as extxyz frames
(``energy`` in info, ``forces`` in arrays) every ``interval`` steps.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary

try:  # ASE >= 3.27 renamed MaxwellBoltzmannDistribution
    from ase.md.velocitydistribution import thermalize_momenta as thermalize
except ImportError:  # pragma: no cover
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize
from ase.md.verlet import VelocityVerlet

from nnpot.errors import InputError


@dataclass
class MDResult:
    """Summary of a run: per logged step time (fs), potential/kinetic/total energy (eV),
    temperature (K); ``stopped_by`` is set when the watchdog paused the run."""

    time_fs: list = field(default_factory=list)
    epot: list = field(default_factory=list)
    ekin: list = field(default_factory=list)
    etot: list = field(default_factory=list)
    temperature: list = field(default_factory=list)
    steps_done: int = 0
    stopped_by: dict | None = None
    wall_s: float = 0.0

    def drift_mev_per_atom(self, n_atoms: int) -> float:
        """Max |E_tot(t) − E_tot(0)| per atom over the run (meV/atom)."""
        if not self.etot:
            return 0.0
        e = np.asarray(self.etot)
        return float(1000 * np.max(np.abs(e - e[0])) / n_atoms)


def run_md(atoms: Atoms, steps: int, dt_fs: float, temperature: float,
           ensemble: str = "nve", friction: float = 0.01, traj: str | os.PathLike | None = None,
           log: str | os.PathLike | None = None, interval: int = 10, seed: int = 0,
           init_velocities: bool = True,
           watchdog: Callable[[Atoms, int], dict | None] | None = None,
           progress: bool = False) -> MDResult:
    """Run ``steps`` of MD on ``atoms`` (which must carry a calculator).

    ``ensemble``: "nve" (velocity Verlet) or "langevin" (NVT, ``friction`` in 1/fs).
    ``watchdog(atoms, step)`` is called after every step; a non-None return stops the run
    and is stored in ``MDResult.stopped_by`` (the active-learning trigger).
    """
    if atoms.calc is None:
        raise InputError("the structure has no calculator attached")
    if steps < 0 or dt_fs <= 0 or temperature < 0:
        raise InputError("steps must be >= 0, dt > 0 fs and temperature >= 0 K")
    if ensemble not in ("nve", "langevin"):
        raise InputError(f"unknown ensemble {ensemble!r}; use 'nve' or 'langevin'")
    rng = np.random.default_rng(seed)
    if init_velocities:
        thermalize(atoms, temperature_K=temperature, rng=rng)
        Stationary(atoms)
    dt = dt_fs * units.fs
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt)
    else:
        dyn = Langevin(atoms, timestep=dt, temperature_K=temperature,
                       friction=friction / units.fs, rng=rng)
    res = MDResult()
    n = len(atoms)
    traj_path = Path(traj) if traj else None
    tmp_traj = None
    if traj_path:
        traj_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_traj = traj_path.with_name(f".{traj_path.name}.partial")
        if tmp_traj.exists():
            tmp_traj.unlink()
    log_fh = open(log, "w") if log else None  # noqa: SIM115
    t0 = time.perf_counter()

    def record(step: int):
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        temp = ekin / (1.5 * units.kB * n)
        res.time_fs.append(step * dt_fs)
        res.epot.append(float(epot))
        res.ekin.append(float(ekin))
        res.etot.append(float(epot + ekin))
        res.temperature.append(float(temp))
        if log_fh:
            rec = {"step": step, "time_fs": step * dt_fs, "epot_ev": epot, "ekin_ev": ekin,
                   "etot_ev": epot + ekin, "temperature_k": temp,
                   "wall_s": round(time.perf_counter() - t0, 3)}
            std = atoms.calc.results.get("max_force_deviation")
            if std is not None:
                rec["max_force_deviation"] = std
            log_fh.write(json.dumps(rec) + "\n")
            log_fh.flush()
        if tmp_traj is not None and step % interval == 0:
            snap = atoms.copy()
            snap.calc = None
            snap.info["energy"] = float(epot)
            snap.info["step"] = step
            snap.arrays["forces"] = atoms.get_forces().copy()
            from ase.io import write

            write(str(tmp_traj), snap, format="extxyz", append=True)

    from tqdm.auto import tqdm

    record(0)
    bar = tqdm(total=steps, disable=not progress, desc="md", unit="step", leave=False)
    try:
        for step in range(1, steps + 1):
            dyn.run(1)
            res.steps_done = step
            record(step)
            bar.update(1)
            if watchdog is not None:
                hit = watchdog(atoms, step)
                if hit is not None:
                    res.stopped_by = dict(hit, step=step)
                    break
    finally:
        bar.close()
        if log_fh:
            log_fh.close()
        if tmp_traj is not None and tmp_traj.exists():
            os.replace(tmp_traj, traj_path)
    res.wall_s = time.perf_counter() - t0
    return res
