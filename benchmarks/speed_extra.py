"""Speed-benchmark workers beyond energy + forces: committees, pair-Jacobian
precomputation, NVE molecular dynamics with and without neighbour-list reuse, and training
throughput against TorchANI on the shipped water set. Times are process CPU time."""

from __future__ import annotations

import os
import time

from speed_workers import _rss_mb, water_box


def _dtype(cfg):
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[cfg.get("dtype", "float64")]


def worker_committee(cfg: dict) -> dict:
    """One model (E + F) against a committee of M sharing one descriptor pass, per-member
    forces (``NNP.compute(member_forces=True)``); interleaved repetitions, best of each."""
    import numpy as np

    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.neighbors import make_batch

    dtype = _dtype(cfg)
    numbers, pos, cell = water_box(cfg["n_side"])
    n = len(numbers)
    b = make_batch([(numbers, pos, cell, np.ones(3, bool))], {1: 0, 8: 1}, 6.0, dtype=dtype)
    spec = default_spec(["H", "O"], cutoff=6.0)
    one = NNP(spec, hidden=(25, 25)).to(dtype)
    comm = NNP(spec, hidden=(25, 25), n_members=cfg.get("members", 8)).to(dtype)
    runs = {"one": lambda: one.compute(b, forces=True),
            "committee": lambda: comm.compute(b, forces=True, member_forces=True)}
    best = dict.fromkeys(runs, float("inf"))
    wall = dict.fromkeys(runs, float("inf"))
    for _ in range(cfg.get("reps", 4)):
        for k, fn in runs.items():
            c, t = time.process_time(), time.perf_counter()
            fn()
            best[k] = min(best[k], time.process_time() - c)
            wall[k] = min(wall[k], time.perf_counter() - t)
    return {"n_atoms": n, "one_cpu_us": 1e6 * best["one"] / n,
            "committee_cpu_us": 1e6 * best["committee"] / n,
            "committee/one": best["committee"] / best["one"],
            "one_us": 1e6 * wall["one"] / n, "committee_us": 1e6 * wall["committee"] / n,
            "committee/one wall": wall["committee"] / wall["one"], "peak_rss_mb": _rss_mb()}


def _water_frames(limit=None):
    import nnpot.data
    from nnpot.atomistic.data import read_frames

    frames = read_frames(nnpot.data.path("water_xtb"))
    return frames if limit is None else frames[:limit]


def worker_jacobian(cfg: dict) -> dict:
    """Pair-Jacobian precomputation of ``nnpot fit`` on the shipped water set: one backward
    per feature (generic path) against the descriptor's one-pass Jacobian."""
    import torch

    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP, descriptor_jacobian
    from nnpot.atomistic.neighbors import make_batch, pair_vectors

    class Generic(torch.nn.Module):  # hides .jacobian: one backward per feature
        def __init__(self, f):
            super().__init__()
            self.f = f

        def forward(self, *a):
            return self.f(*a)

    frames = _water_frames(cfg.get("limit"))
    model = NNP(default_spec(["H", "O"], cutoff=6.0))
    t_gen = t_dir = diff = 0.0
    for fr in frames:
        b = make_batch([(fr.numbers, fr.positions, fr.cell, fr.pbc)], {1: 0, 8: 1}, 6.0)
        rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
        c = time.process_time()
        _, j_gen = descriptor_jacobian(Generic(model.descriptor), b.species, b.i, b.j, rij)
        t_gen += time.process_time() - c
        c = time.process_time()
        _, j_dir = descriptor_jacobian(model.descriptor, b.species, b.i, b.j, rij)
        t_dir += time.process_time() - c
        if j_gen.numel():
            diff = max(diff, float((j_gen - j_dir).abs().max()))
    return {"n_structures": len(frames), "n_atoms": sum(len(f) for f in frames),
            "generic_cpu_s": t_gen, "direct_cpu_s": t_dir, "generic/direct": t_gen / t_dir,
            "max_abs_diff": diff}


def worker_md(cfg: dict) -> dict:
    """NVE velocity Verlet (0.5 fs) of a water box through an ASE calculator: fresh vesin
    lists every step (``NNPCalculator``) or lists reused with a skin (``SkinCalculator``)."""
    import numpy as np
    from ase import Atoms, units
    from ase.md.verlet import VelocityVerlet

    from nnpot.atomistic.calculator import NNPCalculator
    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.skin import SkinCalculator

    numbers, pos, cell = water_box(cfg["n_side"])
    model = NNP(default_spec(["H", "O"], cutoff=6.0), hidden=(25, 25)).to(_dtype(cfg))
    atoms = Atoms(numbers=numbers, positions=pos, cell=cell, pbc=True)
    v = np.random.default_rng(0).normal(size=(len(atoms), 3))
    atoms.set_velocities(v * np.sqrt(300 * units.kB / atoms.get_masses())[:, None])
    skin = cfg.get("skin")
    check = cfg.get("check", True)
    atoms.calc = (NNPCalculator(model, check=check) if skin is None else
                  SkinCalculator(model, check=check, skin=skin))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dyn.run(2)
    steps = cfg.get("steps", 40)
    c, w = time.process_time(), time.perf_counter()
    dyn.run(steps)
    cpu = (time.process_time() - c) / steps
    wall = (time.perf_counter() - w) / steps
    return {"n_atoms": len(atoms), "steps": steps, "cpu_ms_per_step": 1e3 * cpu,
            "wall_ms_per_step": 1e3 * wall, "ns_per_day_cpu": 0.5e-6 * 86400 / cpu,
            "ef_cpu_us": 1e6 * cpu / len(atoms), "list_builds":
            getattr(getattr(atoms.calc, "verlet", None), "builds", steps + 3),
            "peak_rss_mb": _rss_mb()}


def worker_train_nnpot(cfg: dict) -> dict:
    """Energy + force training on the shipped water set (nnpot's training path: descriptors
    and pair Jacobians precomputed once, then epochs of batch_loss + AdamW)."""
    import torch

    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.statistics import fit_statistics, label_scales
    from nnpot.atomistic.train import batch_loss, prepare
    from nnpot.config import TrainingConfig

    dtype = _dtype(cfg)
    frames = _water_frames(cfg.get("limit"))
    model = NNP(default_spec(["H", "O"], cutoff=6.0), hidden=(25, 25))
    c = time.process_time()
    prep = prepare(model, frames, dtype=dtype)
    t_prep = time.process_time() - c
    fit_statistics(model, prep, frames)
    model = model.to(dtype)
    tc = TrainingConfig(batch_size=cfg.get("batch_size", 8))
    scales = label_scales(prep, model)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr)
    counts = torch.ones(1, len(prep), dtype=torch.int64)
    best = float("inf")
    for _ in range(cfg.get("epochs", 2)):
        c = time.process_time()
        for s in range(0, len(prep), tc.batch_size):
            items = prep[s:s + tc.batch_size]
            loss = batch_loss(model, items, counts[:, s:s + tc.batch_size], tc, scales)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        best = min(best, time.process_time() - c)
    return {"n_structures": len(prep), "n_atoms": sum(len(f) for f in frames),
            "prepare_cpu_s": t_prep, "epoch_cpu_s": best,
            "structures_per_s": len(prep) / best, "peak_rss_mb": _rss_mb()}


def worker_train_torchani(cfg: dict) -> dict:
    """The same training step in TorchANI: AEVs (cell list; 6/5.99 Å or its defaults) and
    per-element MLPs 2×25, loss on energy per atom and forces (double backward through the
    AEVs), one structure at a time (cells differ), AdamW step per 8 structures."""
    import numpy as np
    import torch

    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    import torchani

    frames = _water_frames()[:cfg.get("limit", 32)]
    kw = {} if cfg["cutoffs"] == "default" else {"radial_cutoff": 6.0, "angular_cutoff": 5.99}
    aev = torchani.AEVComputer.like_2x(num_species=2, neighborlist="cell_list", **kw)
    nets = torch.nn.ModuleList(torch.nn.Sequential(
        torch.nn.Linear(aev.out_dim, 25), torch.nn.CELU(0.1), torch.nn.Linear(25, 25),
        torch.nn.CELU(0.1), torch.nn.Linear(25, 1)) for _ in range(2))
    opt = torch.optim.AdamW(nets.parameters(), lr=3e-3)
    data = []
    for fr in frames:
        sp = torch.tensor((np.asarray(fr.numbers) == 8).astype(np.int64))[None]
        pbc = bool(np.all(fr.pbc))
        data.append((sp, torch.tensor(fr.positions, dtype=torch.float32)[None],
                     torch.tensor(fr.cell, dtype=torch.float32) if pbc else None,
                     torch.tensor([True] * 3) if pbc else None,
                     float(fr.energy), torch.tensor(fr.forces, dtype=torch.float32)))

    def epoch():
        for s in range(0, len(data), 8):
            opt.zero_grad()
            for sp, x0, cell, pbc, e_ref, f_ref in data[s:s + 8]:
                x = x0.clone().requires_grad_(True)
                a = aev(sp, x, cell=cell, pbc=pbc)[0]
                e = sum(nets[k](a[sp[0] == k]).sum() for k in range(2))
                f = -torch.autograd.grad(e, x, create_graph=True)[0][0]
                n = x.shape[1]
                loss = ((e - e_ref) / n) ** 2 + ((f - f_ref) ** 2).mean()
                loss.backward()
            opt.step()

    epoch()  # warm-up
    c = time.process_time()
    epoch()
    t = time.process_time() - c
    return {"n_structures": len(data), "n_atoms": sum(len(f) for f in frames),
            "epoch_cpu_s": t, "structures_per_s": len(data) / t, "peak_rss_mb": _rss_mb()}


WORKERS = {"committee": worker_committee, "jacobian": worker_jacobian, "md": worker_md,
           "train_nnpot": worker_train_nnpot, "train_torchani": worker_train_torchani}
