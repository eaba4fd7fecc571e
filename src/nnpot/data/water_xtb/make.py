"""Make the liquid-water data set labelled with GFN2-xTB (tblite).

Run:  OMP_NUM_THREADS=1 python -m nnpot.data.water_xtb.make
      (or OMP_NUM_THREADS=1 python src/nnpot/data/water_xtb/make.py)

Writes ``water_xtb.extxyz`` next to this file. Two stages:

1. Sampling (cheap): a flexible TIP3P-like force field (``sampler.py``) whose intramolecular
   bond/angle terms are fitted here to the GFN2-xTB monomer, run with ASE's Langevin
   thermostat. Periodic cubic boxes of 32 and 64 molecules at 0.97–1.03 g/cm³ and
   300–400 K; water clusters of 2–20 molecules cut from the liquid and re-equilibrated
   without periodicity; thermally distorted monomers. During sampling the H mass is raised
   to SAMPLER_H_MASS amu so that a 1 fs step is stable: a classical canonical ensemble's
   configurations do not depend on the masses, only the dynamics (decorrelation speed) does.
2. Labelling (the cost): one GFN2-xTB single point per structure with
   ``tblite.ase.TBLite(method="GFN2-xTB", verbosity=0)`` (a fresh calculator per structure,
   so no SCF guess is carried between structures), giving REF_energy (eV, total xTB
   energy), REF_forces (eV/Å) and, for periodic boxes, REF_stress (eV/Å³, Voigt, ASE sign).

``config_type`` is one of liquid_32, liquid_64, cluster, monomer.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import molecule
from ase.md.langevin import Langevin
from ase.optimize import BFGS, FIRE
from scipy.spatial.transform import Rotation

if __package__ in (None, ""):  # run as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from nnpot.data._write import label, write_extxyz_atomic  # noqa: E402
from nnpot.data.water_xtb.sampler import FlexibleWater  # noqa: E402

# ---- settings ---------------------------------------------------------------------------
SEED = 20261125
OUT = Path(__file__).resolve().parent / "water_xtb.extxyz"
TBLITE_SETTINGS = {"method": "GFN2-xTB", "verbosity": 0}  # accuracy 1.0, T_el 300 K: defaults
WATER_MASS_AMU = 18.015
DENSITIES = (0.97, 1.00, 1.03)  # g/cm³
TEMPERATURES = (300.0, 330.0, 360.0, 400.0)  # K
FRAMES_PER_TRAJ_32 = 12  # 12 trajectories (4 T × 3 densities) of 32 molecules
FRAMES_PER_TRAJ_64 = 5  # 4 trajectories (4 T, densities cycled) of 64 molecules
N_CLUSTERS = 60
CLUSTER_SIZES = (2, 20)  # molecules, inclusive, drawn uniformly
CLUSTER_TEMPERATURES = (250.0, 350.0)  # K, drawn uniformly
CLUSTER_STEPS = 1000  # non-periodic re-equilibration of each cut cluster (1 ps)
N_MONOMERS = 8
MONOMER_TEMPERATURES = (300.0, 600.0)  # K, evenly spaced
SAMPLER_H_MASS = 4.0  # amu, sampling only
SAMPLER_DT_FS = 1.0
SAMPLER_FRICTION = 0.01  # 1/fs
EQUIL_STEPS = 2000  # 2 ps before the first frame of a trajectory
STRIDE = 500  # 0.5 ps between frames
RC_32, RC_64, RC_WIDTH = 4.9, 6.2, 1.0  # Å, molecule-based cutoff of the sampler (< L/2)
MIN_OO_INSERT = 2.6  # Å, random insertion of the initial boxes
# -----------------------------------------------------------------------------------------


def tblite_calc():
    from tblite.ase import TBLite

    return TBLite(**TBLITE_SETTINGS)


def xtb_monomer_parameters() -> tuple[float, float, float, float]:
    """GFN2-xTB monomer: r₀ (Å), θ₀ (rad), k_r (eV/Å²), k_θ (eV/rad²).

    r₀, θ₀ from a BFGS relaxation; k_r, k_θ from central second differences of the energy
    along one bond length (h = 0.005 Å) and the angle (h = 1°), others fixed.
    """
    w = molecule("H2O")
    w.calc = tblite_calc()
    BFGS(w, logfile=None).run(fmax=1e-4, steps=200)
    r0 = float(np.mean([w.get_distance(0, 1), w.get_distance(0, 2)]))
    th0 = float(np.radians(w.get_angle(1, 0, 2)))

    def energy(r1: float, r2: float, th: float) -> float:
        a = Atoms("OH2", positions=[[0, 0, 0], [r1, 0, 0], [r2 * np.cos(th), r2 * np.sin(th), 0]])
        a.calc = tblite_calc()
        return a.get_potential_energy()

    e0 = energy(r0, r0, th0)
    h = 0.005
    kr = (energy(r0 + h, r0, th0) - 2 * e0 + energy(r0 - h, r0, th0)) / h**2
    ht = np.radians(1.0)
    kth = (energy(r0, r0, th0 + ht) - 2 * e0 + energy(r0, r0, th0 - ht)) / ht**2
    return r0, th0, float(kr), float(kth)


def monomer(intra) -> np.ndarray:
    """Monomer at the sampler's equilibrium geometry (O at the origin), shape (3, 3)."""
    r0, th0 = intra[0], intra[1]
    return np.array([[0.0, 0.0, 0.0], [r0, 0.0, 0.0], [r0 * np.cos(th0), r0 * np.sin(th0), 0.0]])


def random_box(n: int, density: float, intra, rng: np.random.Generator) -> Atoms:
    """``n`` randomly oriented molecules inserted at random, O–O ≥ MIN_OO_INSERT (MIC)."""
    L = (n * WATER_MASS_AMU / (units.mol * 1e-24) / density) ** (1.0 / 3.0)
    sites: list[np.ndarray] = []
    while len(sites) < n:
        s = rng.uniform(0.0, L, 3)
        if all(np.linalg.norm((s - o) - L * np.round((s - o) / L)) >= MIN_OO_INSERT for o in sites):
            sites.append(s)
    w = monomer(intra)
    w = w - w.mean(axis=0)
    pos = [Rotation.random(random_state=int(rng.integers(2**31))).apply(w) + s for s in sites]
    return Atoms("OHH" * n, positions=np.concatenate(pos), cell=[L, L, L], pbc=True)


def run_sampler(atoms: Atoms, temperature: float, intra, rc: float, rng: np.random.Generator,
                equil: int, n_frames: int, stride: int) -> list[Atoms]:
    """Sampler frames: ``equil`` steps, then ``n_frames``, ``stride`` apart."""
    atoms = atoms.copy()
    masses = atoms.get_masses()
    masses[atoms.numbers == 1] = SAMPLER_H_MASS
    atoms.set_masses(masses)
    atoms.calc = FlexibleWater(intra, rc=rc, width=RC_WIDTH)
    FIRE(atoms, logfile=None).run(fmax=0.5, steps=200)  # remove insertion clashes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dyn = Langevin(atoms, SAMPLER_DT_FS * units.fs, temperature_K=temperature,
                       friction=SAMPLER_FRICTION / units.fs, fixcm=False, rng=rng)
    dyn.run(equil)
    frames = [atoms.copy()]
    for _ in range(n_frames - 1):
        dyn.run(stride)
        frames.append(atoms.copy())
    return [whole_molecules(f) for f in frames]


def whole_molecules(atoms: Atoms) -> Atoms:
    """Plain copy with each O wrapped into the cell and its H atoms moved with it."""
    out = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    if out.pbc.all():
        R = out.positions.reshape(-1, 3, 3)
        L = out.cell.lengths()
        R -= (L * np.floor(R[:, :1] / L))
        out.positions = R.reshape(-1, 3)
    return out


def cut_cluster(frame: Atoms, n: int, rng: np.random.Generator) -> Atoms:
    """The ``n`` molecules nearest (O–O, MIC) to a random molecule, made whole, non-periodic."""
    R = frame.positions.reshape(-1, 3, 3)
    L = frame.cell.lengths()
    c = int(rng.integers(len(R)))
    d = R[:, 0] - R[c, 0]
    shift = -L * np.round(d / L)
    dist = np.linalg.norm(d + shift, axis=1)
    pick = np.argsort(dist, kind="stable")[:n]
    pos = (R[pick] + shift[pick, None, :] - R[c, 0]).reshape(-1, 3)
    return Atoms("OHH" * n, positions=pos, pbc=False)


def connected(atoms: Atoms, cutoff: float = 3.6) -> bool:
    """True if the O–O graph with edges shorter than ``cutoff`` (Å) is connected."""
    O = atoms.positions[::3]
    if len(O) == 1:
        return True
    adj = np.linalg.norm(O[:, None] - O[None], axis=-1) < cutoff
    seen = {0}
    todo = [0]
    while todo:
        i = todo.pop()
        for j in np.nonzero(adj[i])[0]:
            if j not in seen:
                seen.add(int(j))
                todo.append(int(j))
    return len(seen) == len(O)


def sample(intra, rng: np.random.Generator) -> list[tuple[str, Atoms]]:
    out: list[tuple[str, Atoms]] = []
    liquid32: list[Atoms] = []
    for T in TEMPERATURES:
        for rho in DENSITIES:
            box = random_box(32, rho, intra, rng)
            frames = run_sampler(box, T, intra, RC_32, rng, EQUIL_STEPS, FRAMES_PER_TRAJ_32, STRIDE)
            liquid32 += frames
            out += [("liquid_32", f) for f in frames]
    for k, T in enumerate(TEMPERATURES):
        box = random_box(64, DENSITIES[k % len(DENSITIES)], intra, rng)
        frames = run_sampler(box, T, intra, RC_64, rng, EQUIL_STEPS, FRAMES_PER_TRAJ_64, STRIDE)
        out += [("liquid_64", f) for f in frames]
    made = 0
    while made < N_CLUSTERS:
        n = int(rng.integers(CLUSTER_SIZES[0], CLUSTER_SIZES[1] + 1))
        T = float(rng.uniform(*CLUSTER_TEMPERATURES))
        seed_frame = liquid32[int(rng.integers(len(liquid32)))]
        cl = run_sampler(cut_cluster(seed_frame, n, rng), T, intra, np.inf, rng,
                         CLUSTER_STEPS, 1, STRIDE)[0]
        if connected(cl):  # drop the rare cluster that lost a molecule
            out.append(("cluster", cl))
            made += 1
    for T in np.linspace(*MONOMER_TEMPERATURES, N_MONOMERS):
        w = Atoms("OHH", positions=monomer(intra), pbc=False)
        out.append(("monomer", run_sampler(w, float(T), intra, np.inf, rng, 1000, 1, STRIDE)[0]))
    return out


def label_xtb(kind: str, atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = tblite_calc()
    stress = atoms.get_stress() if atoms.pbc.all() else None
    return label(atoms, atoms.get_potential_energy(), atoms.get_forces(), stress,
                 config_type=kind)


def main() -> int:
    t0 = time.perf_counter()
    c0 = time.process_time()
    rng = np.random.default_rng(SEED)
    intra = xtb_monomer_parameters()
    print(f"xTB monomer: r0 = {intra[0]:.4f} Å, theta0 = {np.degrees(intra[1]):.2f} deg, "
          f"k_r = {intra[2]:.2f} eV/Å², k_theta = {intra[3]:.3f} eV/rad²", flush=True)
    structures = sample(intra, rng)
    t1 = time.perf_counter()
    print(f"sampled {len(structures)} structures in {t1 - t0:.1f} s", flush=True)
    frames = []
    times: dict[str, list[float]] = {}
    for i, (kind, atoms) in enumerate(structures):
        ts = time.process_time()
        frames.append(label_xtb(kind, atoms))
        times.setdefault(kind, []).append(time.process_time() - ts)
        if (i + 1) % 20 == 0:
            print(f"  labelled {i + 1}/{len(structures)} ({time.perf_counter() - t1:.0f} s)",
                  flush=True)
    write_extxyz_atomic(OUT, frames)
    t2 = time.perf_counter()
    for kind, ts in times.items():
        sizes = [len(f) for f in frames if f.info["config_type"] == kind]
        print(f"{kind:10s} {len(ts):4d} structures, {min(sizes)}–{max(sizes)} atoms, "
              f"xTB {np.mean(ts):.2f} s CPU each, {np.sum(ts):.0f} s CPU total")
    p = [-np.mean(f.info["REF_stress"][:3]) / units.GPa for f in frames if "REF_stress" in f.info]
    print(f"xTB pressure of the periodic boxes: mean {np.mean(p):.2f} GPa, "
          f"range {np.min(p):.2f}..{np.max(p):.2f} GPa")
    print(f"total {len(frames)} structures, {sum(len(f) for f in frames)} atoms, "
          f"{OUT.stat().st_size / 1e6:.2f} MB; sampling {t1 - t0:.0f} s, labelling "
          f"{t2 - t1:.0f} s, wall time {t2 - t0:.0f} s, CPU time {time.process_time() - c0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
