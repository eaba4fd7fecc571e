"""Make the copper data set labelled with ASE's EMT (effective-medium theory).

Run:  OMP_NUM_THREADS=1 python -m nnpot.data.cu_emt.make   (or python src/nnpot/data/cu_emt/make.py)

Writes ``cu_emt.extxyz`` next to this file: every structure carries REF_energy (eV),
REF_forces (eV/Å), REF_stress (Voigt xx yy zz yz xz xy, eV/Å³, ASE sign) and ``config_type``:

  bulk_strain          32-atom fcc cell (2×2×2 conventional) at isotropic strains ±4 %,
                       perfect and rattled
  bulk_shear           32-atom cell under random symmetric strains (normal ±2 %, shear ±4 %),
                       rattled
  bulk_md              Langevin MD snapshots at 300/600/900/1200 K: 108-atom cells at a₀ and
                       32-atom cells at random strains (isotropic ±3 %, shear ±3 %)
  vacancy              107 atoms: relaxed, plus MD snapshots at 300 and 900 K
  interstitial         109 atoms, ⟨100⟩ split dumbbell: relaxed, plus MD at 300 and 900 K
  surface_111          5-layer 3×3 (111) slab, 12 Å vacuum: relaxed + MD 300/600/900 K
  surface_100          5-layer 3×3 (100) slab, 12 Å vacuum: relaxed + MD 300/600/900 K
  primitive            1-atom primitive fcc cell (|a_i| ≈ 2.54 Å < a 6 Å cutoff), random strains
  triclinic_supercell  3×3×3 primitive cells (27 atoms, 60° rhombohedral cell), strained, MD
  sheared_supercell    the 32-atom cell written with a tilted cell (a₃ → a₃ + a₁), MD

All cells are periodic in three directions (slabs: vacuum along z). MD: Langevin, time step
MD_DT_FS, friction MD_FRICTION, MD_EQUIL_STEPS before the first snapshot and MD_STRIDE
steps between snapshots. Everything is seeded by SEED.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk, fcc100, fcc111
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.optimize import BFGS
from scipy.optimize import brentq

if __package__ in (None, ""):  # run as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from nnpot.data._write import label, write_extxyz_atomic  # noqa: E402

try:  # ASE >= 3.29
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as _mb

    def thermalize_momenta(atoms, temperature_K, *, rng=None):
        _mb(atoms, temperature_K=temperature_K, rng=rng)

# ---- settings ---------------------------------------------------------------------------
SEED = 20261125
OUT = Path(__file__).resolve().parent / "cu_emt.extxyz"
ISO_STRAINS = np.linspace(-0.04, 0.04, 9)  # bulk_strain
RATTLE = 0.05  # Å, Gaussian σ of the rattles
N_SHEAR = 20  # bulk_shear structures
TEMPERATURES = (300.0, 600.0, 900.0, 1200.0)  # K, bulk MD
N_MD_108 = 10  # snapshots per temperature, 108-atom cell
N_MD_32 = 12  # strained 32-atom cells per temperature (one snapshot each)
DEFECT_TEMPERATURES = (300.0, 900.0)
N_DEFECT_MD = 5  # snapshots per temperature per defect
SURFACE_TEMPERATURES = (300.0, 600.0, 900.0)
N_SURFACE_MD = 6
VACUUM = 6.0  # Å on each side of the slabs
N_PRIMITIVE = 12
N_TRICLINIC = 12
N_SHEARED = 10
MD_DT_FS = 2.0
MD_FRICTION = 0.02  # 1/fs
MD_EQUIL_STEPS = 500  # 1 ps
MD_STRIDE = 100  # 0.2 ps between snapshots
SHORT_EQUIL_STEPS = 250  # for the one-snapshot strained cells
# -----------------------------------------------------------------------------------------


def lattice_constant() -> float:
    """EMT's zero-pressure fcc lattice constant of Cu (Å), from the root of the stress."""

    def s(a: float) -> float:
        at = bulk("Cu", "fcc", a=a, cubic=True)
        at.calc = EMT()
        return at.get_stress()[0]

    return brentq(s, 3.5, 3.7, xtol=1e-10)


def labelled(atoms: Atoms, config_type: str, **info) -> Atoms:
    """EMT energy, forces and stress of ``atoms`` attached as REF_ labels."""
    atoms = atoms.copy()
    atoms.wrap()
    atoms.calc = EMT()
    return label(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(),
                 config_type=config_type, **info)


def strain(atoms: Atoms, eps: np.ndarray) -> Atoms:
    """Apply the symmetric strain ``eps`` (3×3) to cell and positions."""
    out = atoms.copy()
    out.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
    return out


def random_strain(rng: np.random.Generator, normal: float, shear: float) -> np.ndarray:
    """Symmetric strain with uniform diagonal in ±normal and off-diagonal in ±shear."""
    eps = np.diag(rng.uniform(-normal, normal, 3))
    for i, j in ((0, 1), (0, 2), (1, 2)):
        eps[i, j] = eps[j, i] = rng.uniform(-shear, shear)
    return eps


def rattled(atoms: Atoms, rng: np.random.Generator, sigma: float = RATTLE) -> Atoms:
    out = atoms.copy()
    out.positions += rng.normal(0.0, sigma, out.positions.shape)
    return out


def md_snapshots(atoms: Atoms, temperature: float, n: int, rng: np.random.Generator,
                 equil: int = MD_EQUIL_STEPS, stride: int = MD_STRIDE) -> list[Atoms]:
    """``n`` Langevin snapshots at ``temperature`` (K), after ``equil`` steps, ``stride`` apart."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature, rng=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dyn = Langevin(atoms, MD_DT_FS * units.fs, temperature_K=temperature,
                       friction=MD_FRICTION / units.fs, fixcm=False, rng=rng)
    dyn.run(equil)
    frames = [atoms.copy()]
    for _ in range(n - 1):
        dyn.run(stride)
        frames.append(atoms.copy())
    return frames


def relaxed(atoms: Atoms, fmax: float = 1e-3) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=500)
    return atoms


def build(a0: float, rng: np.random.Generator) -> list[Atoms]:
    frames: list[Atoms] = []
    cell32 = bulk("Cu", "fcc", a=a0, cubic=True).repeat((2, 2, 2))
    cell108 = bulk("Cu", "fcc", a=a0, cubic=True).repeat((3, 3, 3))

    # bulk_strain: isotropic strains, perfect and rattled
    for e in ISO_STRAINS:
        s = strain(cell32, e * np.eye(3))
        frames.append(labelled(s, "bulk_strain"))
        frames.append(labelled(rattled(s, rng), "bulk_strain"))

    # bulk_shear: random strain tensors, rattled
    for _ in range(N_SHEAR):
        frames.append(labelled(rattled(strain(cell32, random_strain(rng, 0.02, 0.04)), rng),
                               "bulk_shear"))

    # bulk_md: 108 atoms at a0, and strained 32-atom cells
    for T in TEMPERATURES:
        for f in md_snapshots(cell108, T, N_MD_108, rng):
            frames.append(labelled(f, "bulk_md"))
        for _ in range(N_MD_32):
            eps = rng.uniform(-0.03, 0.03) * np.eye(3) + random_strain(rng, 0.0, 0.03)
            f = md_snapshots(strain(cell32, eps), T, 1, rng, equil=SHORT_EQUIL_STEPS)[0]
            frames.append(labelled(f, "bulk_md"))

    # vacancy and <100> split-dumbbell interstitial in the 108-atom cell
    vac = cell108.copy()
    del vac[0]
    inter = cell108.copy()
    site = inter.positions[0].copy()
    inter.positions[0] = site + np.array([0.0, 0.0, 0.3 * a0])
    inter.append("Cu")
    inter.positions[-1] = site - np.array([0.0, 0.0, 0.3 * a0])
    for name, atoms in (("vacancy", vac), ("interstitial", inter)):
        r = relaxed(atoms)
        frames.append(labelled(r, name))
        for T in DEFECT_TEMPERATURES:
            for f in md_snapshots(r, T, N_DEFECT_MD, rng):
                frames.append(labelled(f, name))

    # surfaces: slabs with vacuum, periodic in all three directions
    for name, builder in (("surface_111", fcc111), ("surface_100", fcc100)):
        slab = builder("Cu", size=(3, 3, 5), a=a0, vacuum=VACUUM, periodic=False)
        slab.pbc = True
        r = relaxed(slab)
        frames.append(labelled(r, name))
        for T in SURFACE_TEMPERATURES:
            for f in md_snapshots(r, T, N_SURFACE_MD, rng):
                frames.append(labelled(f, name))

    # primitive cell: one atom, every cell vector ~2.54 Å
    prim = bulk("Cu", "fcc", a=a0)
    for _ in range(N_PRIMITIVE):
        frames.append(labelled(strain(prim, random_strain(rng, 0.04, 0.04)), "primitive"))

    # triclinic supercell of the primitive cell, strained, MD
    tri = prim.repeat((3, 3, 3))
    for k in range(N_TRICLINIC):
        T = TEMPERATURES[k % len(TEMPERATURES)]
        s = strain(tri, random_strain(rng, 0.03, 0.03))
        f = md_snapshots(s, T, 1, rng, equil=SHORT_EQUIL_STEPS)[0]
        frames.append(labelled(f, "triclinic_supercell"))

    # the 32-atom cell in a tilted (but equivalent) cell: a3 -> a3 + a1
    sheared = cell32.copy()
    c = sheared.cell[:].copy()
    c[2] = c[2] + c[0]
    sheared.set_cell(c, scale_atoms=False)
    sheared.wrap()
    for k in range(N_SHEARED):
        T = TEMPERATURES[k % len(TEMPERATURES)]
        f = md_snapshots(sheared, T, 1, rng, equil=SHORT_EQUIL_STEPS)[0]
        frames.append(labelled(f, "sheared_supercell"))
    return frames


def main() -> int:
    start = time.perf_counter()
    cpu = time.process_time()
    rng = np.random.default_rng(SEED)
    a0 = lattice_constant()
    frames = build(a0, rng)
    write_extxyz_atomic(OUT, frames)
    kinds: dict[str, list[int]] = {}
    for f in frames:
        kinds.setdefault(f.info["config_type"], []).append(len(f))
    print(f"EMT a0 = {a0:.6f} Å")
    for k, sizes in kinds.items():
        print(f"{k:20s} {len(sizes):4d} structures, {sum(sizes):6d} atoms")
    print(f"total {len(frames)} structures, {sum(len(f) for f in frames)} atoms, "
          f"{OUT.stat().st_size / 1e6:.2f} MB, wall time {time.perf_counter() - start:.1f} s, "
          f"CPU time {time.process_time() - cpu:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
