"""Exploration: MD with a committee calculator under an uncertainty watchdog.

The watchdog reads the committee's maximum atomic force deviation (eV/Å, DP-GEN's
trigger; Zhang et al., Comput. Phys. Commun. 253, 107206 (2020))

    σ_max = max_i sqrt( mean_m |F_m,i − F̄_i|² )

after every MD step and applies a two-threshold trust interval [lower, upper):

- σ_max < lower — trusted: the frame becomes the walker's *last trusted frame*;
- lower ≤ σ_max < upper — a candidate for labelling; after ``max_candidates`` candidates
  (at least ``candidate_stride`` steps apart) the walker pauses;
- σ_max ≥ upper — the trajectory has left the region where the model means anything:
  the frame is recorded as discarded and the walker pauses at once (so is a frame the
  calculator rejects, e.g. atoms closer than 0.1 Å: σ_max = ∞).

A paused walker resumes (next iteration, with the retrained committee) from its last
trusted frame, positions and momenta. Times: ``dt_fs`` in fs, friction in 1/fs,
temperatures in K.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from nnpot.errors import BadStructureError, InputError

try:  # ASE >= 3.29
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

__all__ = ["Decision", "Watchdog", "WalkerResult", "run_walker"]

TRUSTED, CANDIDATE, SKIPPED, DISCARD = "trusted", "candidate", "skipped", "discard"


@dataclass
class Decision:
    """What the watchdog made of one step: ``kind`` (trusted / candidate / skipped — in the
    interval but within ``candidate_stride`` of the last candidate / discard), whether
    the walker pauses, the step and σ_max (eV/Å)."""

    kind: str
    pause: bool
    step: int
    sigma: float


class Watchdog:
    """Two-threshold trust interval on σ_max (eV/Å); see the module docstring."""

    def __init__(self, lower: float, upper: float, max_candidates: int = 1,
                 candidate_stride: int = 1) -> None:
        if not (0 < lower < upper) or not np.isfinite(upper):
            raise InputError(f"need 0 < lower < upper for the trust interval, got "
                             f"lower={lower}, upper={upper} eV/Å")
        if max_candidates < 1 or candidate_stride < 1:
            raise InputError("max_candidates and candidate_stride must be >= 1")
        self.lower = float(lower)
        self.upper = float(upper)
        self.max_candidates = int(max_candidates)
        self.candidate_stride = int(candidate_stride)
        self.n_candidates = 0
        self.last_candidate_step: int | None = None

    def __call__(self, sigma: float, step: int) -> Decision:
        """Classify step ``step`` with deviation ``sigma`` (NaN counts as above upper)."""
        sigma = float(sigma)
        if not np.isfinite(sigma) or sigma >= self.upper:
            return Decision(DISCARD, True, step, sigma)
        if sigma < self.lower:
            return Decision(TRUSTED, False, step, sigma)
        if (self.last_candidate_step is not None
                and step - self.last_candidate_step < self.candidate_stride):
            return Decision(SKIPPED, False, step, sigma)  # in the interval, too close
        self.n_candidates += 1
        self.last_candidate_step = step
        return Decision(CANDIDATE, self.n_candidates >= self.max_candidates, step, sigma)


@dataclass
class WalkerResult:
    """One MD segment: candidate frames (with ``info['sigma']``, ``info['step']``),
    discarded frames, the last trusted frame (with momenta) to resume from, the step at
    which the walker paused (None if it ran all steps), and σ_max per step."""

    candidates: list[Atoms] = field(default_factory=list)
    discarded: list[Atoms] = field(default_factory=list)
    last_trusted: Atoms | None = None
    paused_at: int | None = None
    steps_done: int = 0
    sigmas: list[float] = field(default_factory=list)


def _snapshot(atoms: Atoms, sigma: float, step: int) -> Atoms:
    snap = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell,
                 pbc=atoms.pbc, momenta=atoms.get_momenta())
    snap.info["sigma"] = float(sigma)
    snap.info["step"] = int(step)
    return snap


def run_walker(
    atoms: Atoms, calc, watchdog: Watchdog, steps: int, dt_fs: float = 1.0,
    temperature: float = 300.0, temperature_end: float | None = None,
    ensemble: str = "langevin", friction: float = 0.02, seed: int = 0,
    init_velocities: bool | None = None,
) -> WalkerResult:
    """Run up to ``steps`` MD steps of ``atoms`` (copied) with ``calc`` under ``watchdog``.

    ``calc`` must put ``max_force_deviation`` (eV/Å) in its results (an nnpot committee
    calculator does). Velocities are drawn from Maxwell–Boltzmann at ``temperature`` when
    ``init_velocities`` (default: when ``atoms`` carries no momenta). Langevin targets
    ``temperature`` ramped linearly to ``temperature_end`` over the segment. The
    starting frame is checked too: a start outside the trust interval pauses at step 0.
    """
    if steps < 0 or dt_fs <= 0 or temperature < 0:
        raise InputError("steps must be >= 0, dt > 0 fs and temperature >= 0 K")
    if ensemble not in ("langevin", "nve"):
        raise InputError(f"unknown ensemble {ensemble!r}; use 'langevin' or 'nve'")
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.calc = calc
    if init_velocities is None:
        init_velocities = not np.any(atoms.get_momenta())
    if init_velocities:
        thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
        Stationary(atoms)
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    else:
        dyn = Langevin(atoms, timestep=dt_fs * units.fs, temperature_K=temperature,
                       friction=friction / units.fs, rng=rng, fixcm=False)
    res = WalkerResult()

    def check(step: int) -> bool:
        try:
            atoms.get_potential_energy()
            sigma = float(atoms.calc.results["max_force_deviation"])
        except BadStructureError:  # atoms collapsed onto each other: far outside trust
            sigma = float("inf")
        res.sigmas.append(sigma)
        d = watchdog(sigma, step)
        if d.kind == TRUSTED:
            res.last_trusted = _snapshot(atoms, sigma, step)
        elif d.kind == CANDIDATE:
            res.candidates.append(_snapshot(atoms, sigma, step))
        elif d.kind == DISCARD:
            res.discarded.append(_snapshot(atoms, sigma, step))
        if d.pause:
            res.paused_at = step
        return d.pause

    if check(0):
        return res
    for step in range(1, steps + 1):
        if ensemble == "langevin" and temperature_end is not None:
            frac = step / max(steps, 1)
            dyn.set_temperature(temperature_K=temperature + frac * (temperature_end
                                                                    - temperature))
        try:
            dyn.run(1)
        except BadStructureError:  # the step itself produced an unphysical structure
            pass  # check() below classifies it as discarded and pauses
        res.steps_done = step
        if check(step):
            break
    return res
