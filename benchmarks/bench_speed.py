"""Speed benchmark: energy + forces per atom for liquid water, nnpot against peers.

Systems: cubic water boxes at 1 g/cm³ made by tiling randomly oriented molecules on a
grid (n_side³ molecules, 3·n_side³ atoms), 6 Å cutoff for radial AND angular functions.
Every configuration runs in its own subprocess (clean peak-memory figure, ru_maxrss of the
whole process: Python + torch + neighbour list included) with ``--threads`` threads.

Measured (wall time, best of several repetitions, per atom, µs):
  nnpot ef     energy + forces through nnpot.atomistic.model.NNP.compute (default,
               factorised descriptor set; two hidden layers of 25), pair list given
  nnpot desc   descriptors + their backward (Σ G) only
  nnpot nl     the vesin neighbour list (not included in ef)
  nnpot G4     the same with n2p2's published water set (Morawietz et al., PNAS 113,
               8368 (2016); 27 functions for H, 30 for O, G4 angular, r_c = 12 Bohr);
               cosine cutoff here instead of n2p2's tanh³ (same cost)
  torchani     AEVComputer.like_2x (2 species, cell list) + per-element MLPs (2×25, CELU),
               energy + forces, float32; its default cutoffs (5.1/3.5 Å) and 6/5.99 Å
  dscribe      ACSF.create with the same G2/G5 parameters as nnpot's default set
               (descriptors only, no derivatives)
n2p2 (C++) is not installable from package registries; its figures in issue 4
(150–180 µs/atom on 2 threads, same kind of machine) are quoted, not measured here.

    python benchmarks/bench_speed.py [--quick] [--threads 2] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N2P2_REF_US = (150.0, 180.0)  # issue 4: n2p2 energy + forces, 2 threads, water, 6.35 Å

N2P2_WATER = """
# n2p2 RPBE-D3 water model symmetry functions (Morawietz et al. 2016), lengths in Bohr
cutoff_type 1 0.0
""" + "\n".join(
    [f"symfunction_short H 2 {e} {eta} 0.0 12.0" for eta in (0.001, 0.01, 0.03, 0.06)
     for e in ("H", "O")]
    + [f"symfunction_short H 2 O {eta} 0.9 12.0" for eta in (0.15, 0.3, 0.6, 1.5)]
    + [f"symfunction_short H 2 H {eta} 1.9 12.0" for eta in (0.15, 0.3, 0.6, 1.5)]
    + [f"symfunction_short O 2 {e} {eta} 0.0 12.0" for eta in (0.001, 0.01, 0.03, 0.06)
       for e in ("H", "O")]
    + [f"symfunction_short O 2 H {eta} 0.9 12.0" for eta in (0.15, 0.3, 0.6, 1.5)]
    + [f"symfunction_short O 2 O {eta} 4.0 12.0" for eta in (0.15, 0.3, 0.6, 1.5)]
    + [f"symfunction_short H 3 {a} {b} {eta} {lam} {z} 12.0" for a, b, eta, lam, z in (
        ("O", "O", 0.001, -1, 4), ("O", "O", 0.001, 1, 4), ("H", "O", 0.01, -1, 4),
        ("H", "O", 0.01, 1, 4), ("H", "O", 0.03, -1, 1), ("O", "O", 0.03, -1, 1),
        ("H", "O", 0.03, 1, 1), ("O", "O", 0.03, 1, 1), ("H", "O", 0.07, -1, 1),
        ("H", "O", 0.07, 1, 1), ("H", "O", 0.2, 1, 1))]
    + [f"symfunction_short O 3 {a} {b} {eta} {lam} {z} 12.0" for a, b, eta, lam, z in (
        ("H", "O", 0.001, -1, 4), ("O", "O", 0.001, -1, 4), ("H", "O", 0.001, 1, 4),
        ("O", "O", 0.001, 1, 4), ("H", "H", 0.01, -1, 4), ("H", "H", 0.01, 1, 4),
        ("H", "H", 0.03, -1, 1), ("H", "O", 0.03, -1, 1), ("O", "O", 0.03, -1, 1),
        ("H", "H", 0.03, 1, 1), ("H", "O", 0.03, 1, 1), ("O", "O", 0.03, 1, 1),
        ("H", "H", 0.07, -1, 1), ("H", "H", 0.07, 1, 1))])


def water_box(n_side: int, seed: int = 0, density: float = 1.0):
    """(numbers, positions [Å], cell [Å]) of n_side³ randomly oriented molecules."""
    import numpy as np
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    n_mol = n_side**3
    length = (n_mol * 18.015 / 0.602214076 / density) ** (1.0 / 3.0)  # Å, ρ in g/cm³
    a = length / n_side
    theta = np.radians(104.52)
    mol = np.array([[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0],
                    [0.9572 * np.cos(theta), 0.9572 * np.sin(theta), 0.0]])
    mol -= mol.mean(0)
    rot = Rotation.random(n_mol, random_state=rng).as_matrix()
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    centres = (grid + 0.5) * a + rng.uniform(-0.1, 0.1, (n_mol, 3))
    pos = np.einsum("mij,aj->mai", rot, mol) + centres[:, None, :]
    numbers = np.tile([8, 1, 1], n_mol)
    return numbers, pos.reshape(-1, 3), np.eye(3) * length


def _best(fn, reps: int) -> tuple[float, float]:
    """Best wall time and best process CPU time (s) over ``reps`` calls after a warm-up."""
    fn()
    wall = cpu = float("inf")
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker_nnpot(cfg: dict) -> dict:
    import numpy as np
    import torch

    from nnpot.atomistic.descriptors import default_spec, spec_from_n2p2
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.neighbors import make_batch, neighbor_pairs, pair_vectors

    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg["dtype"]]
    numbers, pos, cell = water_box(cfg["n_side"])
    n = len(numbers)
    if cfg.get("spec") == "n2p2":
        spec = spec_from_n2p2(["H", "O"], N2P2_WATER, length_unit="bohr")
    else:
        spec = default_spec(["H", "O"], cutoff=6.0)
    pbc = np.array([True] * 3)
    t = time.perf_counter()
    pairs = neighbor_pairs(pos, cell, pbc, spec.cutoff)
    t_nl = time.perf_counter() - t
    batch = make_batch([(numbers, pos, cell, pbc)], {1: 0, 8: 1}, spec.cutoff, dtype=dtype,
                       pairs=[pairs])
    del pairs
    model = NNP(spec, hidden=(25, 25)).to(dtype)
    reps = cfg.get("reps", 3)
    base = _rss_mb()
    t_ef, c_ef = _best(lambda: model.compute(batch, forces=True), reps)
    peak = _rss_mb()
    out = {"n_atoms": n, "pairs_per_atom": batch.i.shape[0] / n, "n_features":
           {e: len(spec.columns_for(e)) for e in spec.elements},
           "nl_us": 1e6 * t_nl / n, "ef_us": 1e6 * t_ef / n, "ef_cpu_us": 1e6 * c_ef / n,
           "peak_rss_mb": peak, "rss_before_eval_mb": base}
    if cfg.get("desc", True):
        def desc():
            p = batch.positions.detach().requires_grad_(True)
            rij = pair_vectors(p, batch.cell, batch.batch, batch.i, batch.j, batch.shifts)
            g = model.descriptor(batch.species, batch.i, batch.j, rij)
            torch.autograd.grad(g.sum(), p)
        t_d, c_d = _best(desc, reps)
        out["desc_us"], out["desc_cpu_us"] = 1e6 * t_d / n, 1e6 * c_d / n
    if cfg.get("check_f64") and dtype == torch.float32:
        f32 = model.compute(batch, forces=True).forces.double()
        m64 = model.to(torch.float64)
        f64 = m64.compute(batch.to(dtype=torch.float64), forces=True).forces
        out["f32_vs_f64_rel"] = float((f32 - f64).abs().max() / f64.abs().max())
    return out


def _worker_torchani(cfg: dict) -> dict:
    import numpy as np
    import torch

    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    import torchani

    numbers, pos, cell = water_box(cfg["n_side"])
    n = len(numbers)
    # TorchANI asserts angular cutoff < radial cutoff, hence 5.99 Å for "6 Å"
    kw = {} if cfg["cutoffs"] == "default" else {"radial_cutoff": 6.0, "angular_cutoff": 5.99}
    aev = torchani.AEVComputer.like_2x(num_species=2, neighborlist="cell_list", **kw)
    species = torch.tensor((numbers == 8).astype(np.int64))[None]
    nets = torch.nn.ModuleList(torch.nn.Sequential(
        torch.nn.Linear(aev.out_dim, 25), torch.nn.CELU(0.1), torch.nn.Linear(25, 25),
        torch.nn.CELU(0.1), torch.nn.Linear(25, 1)) for _ in range(2))
    cell_t = torch.tensor(cell, dtype=torch.float32)
    pbc = torch.tensor([True] * 3)
    masks = [species[0] == k for k in range(2)]

    def ef():
        c = torch.tensor(pos[None], dtype=torch.float32, requires_grad=True)
        a = aev(species, c, cell=cell_t, pbc=pbc)[0]
        e = sum(nets[k](a[m]).sum() for k, m in enumerate(masks))
        torch.autograd.grad(e, c)

    base = _rss_mb()
    t, c = _best(ef, cfg.get("reps", 2))
    return {"n_atoms": n, "ef_us": 1e6 * t / n, "ef_cpu_us": 1e6 * c / n,
            "peak_rss_mb": _rss_mb(), "rss_before_eval_mb": base, "aev_length": aev.out_dim}


def _worker_dscribe(cfg: dict) -> dict:
    from ase import Atoms
    from dscribe.descriptors import ACSF

    from nnpot.atomistic.descriptors import default_spec

    numbers, pos, cell = water_box(cfg["n_side"])
    atoms = Atoms(numbers=numbers, positions=pos, cell=cell, pbc=True)
    spec = default_spec(["H", "O"], cutoff=6.0)
    acsf = ACSF(r_cut=spec.cutoff, g2_params=[list(p) for p in spec.radial],
                g5_params=[[eta, z, lam] for _k, eta, z, lam, _rs in spec.angular],
                species=["H", "O"], periodic=True)
    base = _rss_mb()
    t, c = _best(lambda: acsf.create(atoms, n_jobs=1), cfg.get("reps", 1))
    return {"n_atoms": len(numbers), "desc_us": 1e6 * t / len(numbers),
            "desc_cpu_us": 1e6 * c / len(numbers), "peak_rss_mb": _rss_mb(),
            "rss_before_eval_mb": base}


def _worker_profile(cfg: dict) -> dict:
    """CPU time per atom (µs) of each stage of nnpot's energy + forces (1 thread here)."""
    import numpy as np
    import torch

    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.descriptors_moments import Layout, SlotSums, run_sums
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.neighbors import make_batch, pair_vectors

    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg["dtype"]]
    numbers, pos, cell = water_box(cfg["n_side"])
    n = len(numbers)
    b = make_batch([(numbers, pos, cell, np.array([True] * 3))], {1: 0, 8: 1}, 6.0,
                   dtype=dtype)
    model = NNP(default_spec(["H", "O"], cutoff=6.0), hidden=(25, 25)).to(dtype)
    plan = model.descriptor.plan
    rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts).detach()
    lay = Layout(b.species, b.i, b.j, n, 2)
    rad, dsq, mom = run_sums(rij, plan.kernel, lay)
    grads = [torch.rand_like(t) for t in (rad, dsq, mom)]
    rl = rij.clone().requires_grad_(True)
    dsq_l, mom_l = dsq.clone().requires_grad_(True), mom.clone().requires_grad_(True)
    g_l = torch.rand(n, plan.spec.n_features(), dtype=dtype, requires_grad=True)

    def pv():
        p = b.positions.detach().requires_grad_(True)
        r = pair_vectors(p, b.cell, b.batch, b.i, b.j, b.shifts)
        torch.autograd.grad(r, p, torch.ones_like(r))

    def slot_sums():
        out = SlotSums.apply(rl, plan.kernel, lay)
        torch.autograd.grad(out, rl, grads)

    def g5():
        torch.autograd.grad(plan._g5(rij, dsq_l, mom_l).sum(), (dsq_l, mom_l))

    def mlp():
        e, _ = model.atomic_outputs(b.species, model.scaled_inputs(b.species, g_l))
        torch.autograd.grad(e.sum(), g_l)

    stages = {"pair vectors r_ij (model's pair_vectors) + backward": pv,
              "slot layout (padding indices)": lambda: Layout(b.species, b.i, b.j, n, 2),
              "slot sums forward (radial, moments)": lambda: run_sums(rij, plan.kernel, lay),
              "slot sums forward + hand-written backward": slot_sums,
              "G5 contraction of moments, fwd + bwd": g5,
              "per-element MLPs 2x25, fwd + bwd": mlp,
              "total: NNP.compute energy + forces": lambda: model.compute(b, forces=True)}
    return {"n_atoms": n, "cpu_us_per_atom": {k: 1e6 * _best(f, 5)[1] / n
                                              for k, f in stages.items()}}


WORKERS = {"nnpot": _worker_nnpot, "torchani": _worker_torchani, "dscribe": _worker_dscribe,
           "profile": _worker_profile}


def _spawn(cfg: dict, threads: int, timeout: float = 1800.0) -> dict:
    # passive OpenMP waiting: on a shared, oversubscribed machine spinning threads make
    # 2-thread runs 10-50x slower; on an idle machine it costs little
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TORCHANI_NO_WARN_EXTENSIONS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg),
           "--threads", str(threads)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**cfg, "error": f"timeout after {timeout:.0f} s"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**cfg, "error": f"exit {res.returncode}: {tail[0][:200]}"}
    return {**cfg, **json.loads(lines[-1])}


def _plan(quick: bool) -> list[dict]:
    if quick:
        sides = [5, 7, 10]
        runs = [{"engine": "nnpot", "n_side": s, "dtype": d} for s in sides
                for d in ("float32", "float64")]
        runs += [{"engine": "nnpot", "n_side": 5, "dtype": "float64", "spec": "n2p2",
                  "reps": 1, "desc": False},
                 {"engine": "torchani", "n_side": 7, "cutoffs": "default"},
                 {"engine": "torchani", "n_side": 5, "cutoffs": "6A", "reps": 1},
                 {"engine": "dscribe", "n_side": 5},
                 {"engine": "profile", "n_side": 10, "dtype": "float32", "threads": 1}]
        runs[2]["check_f64"] = True
        return runs
    sides = [3, 5, 7, 10, 15, 22, 28, 32]  # 81 ... 98,304 atoms
    runs = [{"engine": "nnpot", "n_side": s, "dtype": d} for s in sides
            for d in ("float32", "float64")]
    runs[4]["check_f64"] = True  # 1,029 atoms float32
    runs += [{"engine": "nnpot", "n_side": 7, "dtype": d, "spec": "n2p2", "reps": 1,
              "desc": False} for d in ("float32", "float64")]
    runs += [{"engine": "torchani", "n_side": s, "cutoffs": "default"} for s in (7, 10)]
    runs += [{"engine": "torchani", "n_side": s, "cutoffs": "6A", "reps": 1} for s in (5, 6)]
    runs += [{"engine": "nnpot", "n_side": s, "dtype": "float32", "desc": False}
             for s in (6,)]
    runs += [{"engine": "dscribe", "n_side": 7}]
    runs += [{"engine": "profile", "n_side": 10, "dtype": d, "threads": 1}
             for d in ("float32", "float64")]
    return runs


def _rows(results: list[dict]) -> list[dict]:
    def find(**kw):
        for r in results:
            if all(r.get(k) == v for k, v in kw.items()) and "error" not in r:
                return r
        return None

    rows = []
    for r in results:
        if r["engine"] == "profile":
            continue
        name = r["engine"] + (" G4 (n2p2 set)" if r.get("spec") == "n2p2" else "")
        if r["engine"] == "torchani":
            name += f" ({r['cutoffs']} cutoffs)"
        default_dtype = "float64" if r["engine"] == "dscribe" else "float32"
        row = {"case": name, "dtype": r.get("dtype", default_dtype),
               "N": r.get("n_atoms", 3 * r["n_side"] ** 3)}
        if "error" in r:
            row["error"] = r["error"]
            rows.append(row)
            continue
        row["E+F us/atom"] = r.get("ef_us")
        row["E+F cpu us/atom"] = r.get("ef_cpu_us")
        row["desc+bwd us/atom"] = r.get("desc_us")
        row["nl us/atom"] = r.get("nl_us")
        row["peak MB"] = r.get("peak_rss_mb")
        if r["engine"] == "torchani":
            mine = find(engine="nnpot", n_side=r["n_side"], dtype="float32", spec=None)
            if mine:
                row["torchani/nnpot"] = r["ef_us"] / mine["ef_us"]
                row["torchani/nnpot cpu"] = r["ef_cpu_us"] / mine["ef_cpu_us"]
        if r["engine"] == "dscribe":
            mine = find(engine="nnpot", n_side=r["n_side"], dtype="float64", spec=None)
            if mine and mine.get("desc_us"):
                row["dscribe/nnpot(desc)"] = r["desc_us"] / mine["desc_us"]
                row["dscribe/nnpot(desc) cpu"] = r["desc_cpu_us"] / mine["desc_cpu_us"]
        if r["engine"] == "nnpot" and r.get("ef_us"):
            row["n2p2/nnpot"] = sum(N2P2_REF_US) / 2 / r["ef_us"]  # quoted n2p2 figure
        rows.append({k: v for k, v in row.items() if v is not None})
    return rows


def _plot(results: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for dt, mk, col in (("float32", "o", "C0"), ("float64", "s", "C1")):
        pts = sorted((r["n_atoms"], r["ef_us"], r["ef_cpu_us"], r["peak_rss_mb"])
                     for r in results if r["engine"] == "nnpot" and r.get("dtype") == dt
                     and "spec" not in r and "error" not in r and r.get("desc", True))
        if pts:
            n, t, c, m = zip(*pts, strict=True)
            ax1.loglog(n, c, mk + "-", color=col, label=f"nnpot {dt}, CPU time")
            ax1.loglog(n, t, mk + ":", color=col, alpha=0.4, label=f"nnpot {dt}, wall")
            ax2.loglog(n, m, mk + "-", color=col, label=f"nnpot {dt}")
    ax1.axhspan(*N2P2_REF_US, color="grey", alpha=0.3, label="n2p2, 2 threads (quoted)")
    ax1.set(xlabel="atoms", ylabel="energy + forces [µs/atom]", title="time per atom")
    ax2.set(xlabel="atoms", ylabel="peak RSS [MB]", title="peak memory (whole process)")
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(out_dir, quick: bool = False, threads: int = 2) -> dict:
    """Run the speed benchmark; write ``speed.json`` and ``speed_scaling.png`` to out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for cfg in _plan(quick):
        t = time.perf_counter()
        load0 = os.getloadavg()[0]
        res = _spawn(cfg, cfg.get("threads", threads))
        res["wall_s"] = round(time.perf_counter() - t, 1)
        res["loadavg_1min"] = [load0, os.getloadavg()[0]]
        results.append(res)
        print(json.dumps(res), flush=True)
    rows = _rows(results)
    load = os.getloadavg()
    summary = {"threads": threads, "quick": quick, "loadavg_after": load,
               "n2p2_reference_us_per_atom": N2P2_REF_US, "results": results, "table": rows}
    (out_dir / "speed.json").write_text(json.dumps(summary, indent=1))
    _plot(results, out_dir / "speed_scaling.png")
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        cfg = json.loads(args.worker)
        print(json.dumps(WORKERS[cfg["engine"]](cfg)), flush=True)
    else:
        res = main(args.out, quick=args.quick, threads=args.threads)
        for row in res["table"]:
            print(row)
