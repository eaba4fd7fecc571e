"""Candidate pools and test sets of the active-learning benchmark (``bench_active.py``).

Copper (ASE EMT): a balanced pool of short Langevin runs per condition
(:func:`copper_pool`) and a skewed MD-campaign pool (:func:`copper_pool_skewed`); the
test set is the shipped cu_emt data. Water (GFN2-xTB): short trajectories of small
clusters (:func:`water_pool`), a skewed pool dominated by one 6-molecule cluster run
(:func:`water_pool_skewed`) and a campaign pool dominated by one water-dimer run
(:func:`water_pool_campaign`). :data:`POOL_SETTINGS` says which system has which pools;
:func:`pool_and_test` samples and labels a pool with the oracle (in a worker process of
the benchmark). Units: Å, eV, K, s.
"""

from __future__ import annotations

import time

import numpy as np

# pool settings of each system (the test set is the same for all of a system's settings)
POOL_SETTINGS = {"copper_emt": ("balanced", "skewed"),
                 "water_xtb": ("balanced", "skewed", "campaign")}


def _md_frames(atoms, calc, temperature: float, rng, equil: int, n: int, stride: int,
               dt_fs: float = 2.0):
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    atoms = atoms.copy()
    atoms.calc = calc
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, dt_fs * units.fs, temperature_K=temperature,
                   friction=0.02 / units.fs, rng=rng, fixcm=False)
    dyn.run(equil)
    out = []
    for _ in range(n):
        dyn.run(stride)
        a = atoms.copy()
        a.calc = None
        a.set_momenta(None)
        out.append(a)
    return out


def _copper_cells():
    """(kind, Atoms) of the four copper conditions: 32-atom fcc bulk, its 31-atom vacancy
    cell, and periodic 36-atom (111) and (100) slabs with 6 Å of vacuum."""
    from ase.build import bulk, fcc100, fcc111

    a0 = 3.5898  # Å, EMT's zero-pressure fcc lattice constant (cu_emt README)
    cell = bulk("Cu", "fcc", a=a0, cubic=True).repeat(2)
    vac = cell.copy()
    del vac[0]
    slabs = [fcc111("Cu", (3, 3, 4), a=a0, vacuum=6.0),
             fcc100("Cu", (3, 3, 4), a=a0, vacuum=6.0)]
    for sl in slabs:
        sl.pbc = True
    return list(zip(("bulk", "vacancy", "surface_111", "surface_100"), (cell, vac, *slabs),
                    strict=True))


def copper_pool(seed: int = 11, frames: int = 40, stride: int = 10):
    """EMT MD frames: bulk, vacancy, (111) and (100) slabs at 300–1200 K (unlabelled)."""
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    pool = []
    for kind, atoms in _copper_cells():
        for temp in (300.0, 600.0, 900.0, 1200.0):
            for a in _md_frames(atoms, EMT(), temp, rng, equil=200, n=frames, stride=stride):
                a.info.update(config_type=kind, temperature=temp)
                pool.append(a)
    return pool


def copper_pool_skewed(seed: int = 13, main: int = 480, burst: int = 8, stride: int = 5):
    """An MD campaign's pool: one long 300 K bulk run and short bursts of everything else.

    480 frames (80 %) of one trajectory of the 32-atom cell at 300 K, 10 fs apart (4.8 ps,
    strongly correlated neighbours); 8 consecutive frames (80 fs, also 10 fs apart) of each
    of the 15 other conditions of :func:`copper_pool` (bulk at 600–1200 K; vacancy, (111)
    and (100) slabs at 300–1200 K): 120 frames (20 %), 1.3 % each. Unlabelled.
    """
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    pool = []
    for kind, atoms in _copper_cells():
        for temp in (300.0, 600.0, 900.0, 1200.0):
            n = main if (kind, temp) == ("bulk", 300.0) else burst
            for a in _md_frames(atoms, EMT(), temp, rng, equil=200, n=n, stride=stride):
                a.info.update(config_type=kind, temperature=temp)
                pool.append(a)
    return pool


def pool_composition(pool) -> dict:
    """Frames per ``config_type@temperature`` (K)."""
    out: dict[str, int] = {}
    for a in pool:
        key = f"{a.info['config_type']}@{a.info['temperature']:.0f}"
        out[key] = out.get(key, 0) + 1
    return out


def copper_test(quick: bool):
    import ase.io

    from nnpot.data import path

    keep = ("bulk_md", "vacancy", "surface_111", "surface_100")
    frames = [a for a in ase.io.read(path("cu_emt"), ":") if a.info["config_type"] in keep]
    return frames[::2] if quick else frames


def _cluster_frames(n: int, temp: float, frames: int, stride: int, intra, rng):
    """Connected frames of one Langevin trajectory of an n-molecule cluster (flexible
    sampling force field, 0.5 ps equilibration, ``stride`` fs apart), tagged."""
    from ase import Atoms

    from nnpot.data.water_xtb.make import connected, random_box, run_sampler

    box = random_box(n, 1.0, intra, rng)
    cluster = Atoms(box.numbers, positions=box.positions, pbc=False)
    out = []
    for a in run_sampler(cluster, temp, intra, np.inf, rng, 500, frames, stride):
        if connected(a):
            a.info.update(config_type=f"cluster_{n}", temperature=temp)
            out.append(a)
    return out


def water_pool(seed: int = 12, trajectories: int = 32, frames: int = 12,
               sizes=(2, 12), temperatures=(250.0, 450.0)):
    """Water clusters (2–12 molecules) from MD with the flexible sampling force field."""
    from nnpot.data.water_xtb.make import xtb_monomer_parameters

    intra = xtb_monomer_parameters()
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(trajectories):
        n = int(rng.integers(sizes[0], sizes[1] + 1))
        temp = float(rng.uniform(*temperatures))
        pool += _cluster_frames(n, temp, frames, 40, intra, rng)
    return pool


def water_pool_skewed(seed: int = 14, main: int = 320, burst: int = 8, stride: int = 10):
    """An MD campaign's pool of water clusters: one long run and short bursts of the rest.

    ``main`` frames (80 %) of one trajectory of a 6-molecule cluster at 300 K, ``stride`` fs
    apart (10 fs: 3.2 ps, strongly correlated neighbours; an O-H stretch period is ~9 fs,
    a libration ~50-100 fs); ``burst`` consecutive frames, also 10 fs apart, of each of 10
    other conditions: 2, 4, 8, 10 and 12 molecules at 250 and at 450 K (20 %, 2 % each).
    Sampled with the flexible force field of :mod:`nnpot.data.water_xtb` (1 fs steps, 0.5 ps
    equilibration), unlabelled; frames whose O-O graph falls apart are dropped.
    """
    from nnpot.data.water_xtb.make import xtb_monomer_parameters

    intra = xtb_monomer_parameters()
    rng = np.random.default_rng(seed)
    runs = [(6, 300.0, main)] + [(n, t, burst) for n in (2, 4, 8, 10, 12)
                                 for t in (250.0, 450.0)]
    pool = []
    for n, temp, frames in runs:
        pool += _cluster_frames(n, temp, frames, stride, intra, rng)
    return pool


def water_pool_campaign(seed: int = 15, main: int = 384, burst: int = 8, stride: int = 10):
    """A campaign that starts from the water dimer: one long dimer run, bursts of the rest.

    ``main`` frames (80 %) of one trajectory of the water dimer at 300 K, ``stride`` fs apart
    (10 fs: 3.84 ps): every atom there has at most one hydrogen-bond partner, so the run is
    narrow in *local* environments (4 Å), as copper's 300 K bulk run is against surfaces and
    vacancies. ``burst`` consecutive frames, also 10 fs apart, of each of 12 other
    conditions (20 %): clusters of 4, 6, 8, 10 and 12 molecules at 250 and 450 K (double
    donors/acceptors, 3-4 coordinated molecules) and the monomer at 300 and 600 K. Sampled
    as :func:`water_pool_skewed` (flexible force field, 1 fs steps, 0.5 ps equilibration),
    unlabelled; frames whose O-O graph is not connected (3.6 Å) are dropped, which removes
    the dimer's excursions to a stretched, non-bonded contact (with the defaults 121 of its
    384 frames, and the 4-molecule burst at 450 K: 351 frames, 75 % dimer).
    """
    from nnpot.data.water_xtb.make import xtb_monomer_parameters

    intra = xtb_monomer_parameters()
    rng = np.random.default_rng(seed)
    runs = ([(2, 300.0, main)] + [(n, t, burst) for n in (4, 6, 8, 10, 12)
                                  for t in (250.0, 450.0)]
            + [(1, t, burst) for t in (300.0, 600.0)])
    pool = []
    for n, temp, frames in runs:
        got = _cluster_frames(n, temp, frames, stride, intra, rng)
        for a in got:
            a.info["config_type"] = {1: "monomer", 2: "dimer"}.get(n, f"cluster_{n}")
        pool += got
    return pool


def raw_pool(system: str, pool_setting: str, quick: bool) -> list:
    """The unlabelled pool of one setting (``quick``: about half of it)."""
    if pool_setting not in POOL_SETTINGS.get(system, ()):
        raise ValueError(f"system {system!r} has no pool {pool_setting!r} "
                         f"(pools: {POOL_SETTINGS.get(system)})")
    if system == "copper_emt":
        if pool_setting == "skewed":
            return copper_pool_skewed(main=240 if quick else 480, burst=4 if quick else 8)
        return copper_pool(frames=20 if quick else 40)
    if pool_setting == "skewed":
        return water_pool_skewed(main=160 if quick else 320, burst=4 if quick else 8)
    if pool_setting == "campaign":
        return water_pool_campaign(main=192 if quick else 384, burst=4 if quick else 8)
    return water_pool(trajectories=16 if quick else 32)


def water_test(quick: bool):
    """The shipped set's clusters and monomers, else independent clusters labelled here."""
    import ase.io

    from nnpot.data import path
    from nnpot.errors import InputError

    try:
        frames = ase.io.read(path("water_xtb"), ":")
        test = [a for a in frames if a.info.get("config_type") in ("cluster", "monomer")]
        source = "shipped water_xtb (cluster + monomer frames)"
    except (InputError, FileNotFoundError):
        from nnpot.active import XTBOracle

        test, _ = label_pool(XTBOracle(), water_pool(seed=99, trajectories=12, frames=4,
                                                     sizes=(2, 16)))
        source = "made here: 12 independent cluster trajectories (2–16 molecules), 4 frames each"
    return (test[::2] if quick else test), source


def label_pool(oracle, pool):
    """Label every frame (one at a time, in this process); returns (labelled frames,
    oracle wall times in s)."""
    from concurrent.futures import ThreadPoolExecutor

    from nnpot.active import label_many, structure_hash

    with ThreadPoolExecutor(1) as ex:
        records = label_many(oracle, pool, executor=ex, timeout=120.0)
    out, times = [], []
    for a, rec in zip(pool, records, strict=True):
        times.append(rec.wall_time)
        if not rec.ok:
            continue
        a = a.copy()
        a.info["REF_energy"] = rec.energy
        a.arrays["REF_forces"] = rec.forces
        if rec.stress is not None:
            a.info["REF_stress"] = rec.stress
        a.info["structure_hash"] = structure_hash(a)
        a.info["oracle_s"] = float(rec.wall_time)  # cost accounting in bench_active
        out.append(a)
    return out, times


def pool_and_test(system: str, quick: bool, pool_setting: str = "balanced") -> dict:
    """Sample and label the pool, read (or make) the test set (runs in a worker)."""
    from nnpot.active import EMTOracle, XTBOracle

    t0 = time.perf_counter()
    raw = raw_pool(system, pool_setting, quick)
    if system == "copper_emt":
        oracle = EMTOracle()
        test, source = copper_test(quick), "shipped cu_emt (bulk_md, vacancy, surfaces)"
    else:
        oracle = XTBOracle()
        test, source = water_test(quick)
    t1 = time.perf_counter()
    pool, times = label_pool(oracle, raw)
    return {"pool": pool, "test": test, "info": {
        "pool_setting": pool_setting, "pool_size": len(pool), "pool_failed": len(raw) - len(pool),
        "pool_composition": pool_composition(pool),
        "pool_atoms": [int(min(map(len, pool))), int(max(map(len, pool)))],
        "test_size": len(test), "test_atoms": int(sum(map(len, test))), "test_source": source,
        "sampling_s": round(t1 - t0, 1), "labelling_wall_s": round(time.perf_counter() - t1, 1),
        "oracle": oracle.name, "oracle_settings": oracle.settings(),
        "oracle_s_per_structure": {"mean": float(np.mean(times)),
                                   "median": float(np.median(times)),
                                   "max": float(np.max(times))}}}
