"""Speed benchmark: energy + forces per atom for liquid water, nnpot against peers, and
the costs around it (committees, pair-Jacobian precomputation, MD, training).

Systems: cubic water boxes at 1 g/cm³ made by tiling randomly oriented molecules on a
grid (n_side³ molecules, 3·n_side³ atoms), 6 Å cutoff for radial AND angular functions.
Every configuration runs in its own subprocess (clean peak-memory figure, ru_maxrss of the
whole process: Python + torch + neighbour list included) with ``--threads`` threads.
Workers: ``speed_workers.py`` (E + F, peers, profile), ``speed_extra.py`` (the rest).

Measured (best of several repetitions; process CPU time and wall time, µs per atom):
  nnpot ef     energy + forces through nnpot.atomistic.model.NNP.compute (default,
               factorised descriptor set; two hidden layers of 25), pair list given
  nnpot desc   descriptors + their backward (Σ G) only
  nnpot nl     the vesin neighbour list (not included in ef)
  nnpot G4     the same with n2p2's published water set (Morawietz et al., PNAS 113,
               8368 (2016); 27 functions for H, 30 for O, G4 angular, r_c = 12 Bohr)
  torchani     AEVComputer.like_2x (2 species, cell list) + per-element MLPs (2×25, CELU),
               energy + forces, float32; its default cutoffs (5.1/3.5 Å) and 6/5.99 Å
  dscribe      ACSF.create with the same G2/G5 parameters (descriptors only)
  committee    8 members sharing one descriptor pass, per-member forces, vs one model
  jacobian     pair-Jacobian precomputation of `nnpot fit` on the shipped water set:
               one pass vs one backward per feature
  md           NVE velocity Verlet, 0.5 fs, 3,000 atoms, ASE calculator, fresh vesin lists
               vs lists reused with a skin
  train        energy + force training epochs on the shipped water set, nnpot vs TorchANI
n2p2 (C++) is not installable from package registries; its figures in issue 4 (290–330
µs/atom on 1 thread, 150–180 on 2) are quoted, not measured here.

    python benchmarks/bench_speed.py [--quick] [--threads 1] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the worker modules sit next to this file

N2P2_REF_US = {1: (290.0, 330.0), 2: (150.0, 180.0)}  # issue 4: n2p2 E+F per atom, water


def _workers() -> dict:
    import speed_extra
    import speed_workers

    return {"nnpot": speed_workers._worker_nnpot, "torchani": speed_workers._worker_torchani,
            "dscribe": speed_workers._worker_dscribe,
            "profile": speed_workers._worker_profile, **speed_extra.WORKERS}


def wait_policy(threads: int) -> str:
    """OpenMP wait policy for ``threads`` worker threads, decided once before the first
    worker (later the benchmark's own workers load the machine): ACTIVE (spinning) when
    the machine has that many idle cores, else PASSIVE. ``$NNPOT_BENCH_OMP_WAIT`` forces
    one. On an oversubscribed machine spinning threads
    make 2-thread runs 10-50x slower; on an idle one PASSIVE makes them 2-3x slower (each
    small parallel region pays a wake-up: 3,000 water atoms, float32, 2 threads: 15.8
    µs/atom ACTIVE, 43.9 PASSIVE, 18.4 on one thread)."""
    if os.environ.get("NNPOT_BENCH_OMP_WAIT"):
        return os.environ["NNPOT_BENCH_OMP_WAIT"].upper()
    if threads <= 1:
        return "PASSIVE"
    return "ACTIVE" if idle_cores() >= threads - 0.5 else "PASSIVE"


def idle_cores(seconds: float = 2.0) -> float:
    """Idle cores now: the idle share of all CPU time in /proc/stat over ``seconds``, times
    the core count (the 1-minute load average lags: it still counts a job that ended a
    minute ago, which once made the benchmark pick PASSIVE on an idle machine)."""
    def snap():
        with open("/proc/stat") as f:
            vals = [float(v) for v in f.readline().split()[1:]]
        return vals[3] + vals[4], sum(vals)  # idle + iowait, total

    try:
        i0, t0 = snap()
        time.sleep(seconds)
        i1, t1 = snap()
        return (os.cpu_count() or 1) * (i1 - i0) / max(t1 - t0, 1e-9)
    except (OSError, ValueError, IndexError):
        return (os.cpu_count() or 1) - os.getloadavg()[0]


def _spawn(cfg: dict, threads: int, policy: str, timeout: float = 1800.0) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TORCHANI_NO_WARN_EXTENSIONS="1", OMP_WAIT_POLICY=policy)
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
    return {**cfg, **json.loads(lines[-1]), "omp_wait_policy": env["OMP_WAIT_POLICY"]}


def _plan(quick: bool) -> list[dict]:
    nn = [{"engine": "nnpot", "n_side": s, "dtype": d} for s in
          ((5, 7, 10) if quick else (3, 5, 7, 10, 15, 22, 28, 32))  # 375 ... 98,304 atoms
          for d in ("float32", "float64")]
    nn[2 if quick else 4]["check_f64"] = True  # 1,029 atoms float32
    runs = nn + [
        {"engine": "nnpot", "n_side": 7, "dtype": "float32", "spec": "n2p2", "reps": 1,
         "desc": False},
        # the grid `nnpot fit` builds by default ([model] n_radial = 24: 72 functions)
        *({"engine": "nnpot", "n_side": s, "dtype": d, "n_radial": 24, "desc": False}
          for s in ((10,) if quick else (10, 28)) for d in ("float32", "float64")),
        {"engine": "torchani", "n_side": 7, "cutoffs": "default"},
        {"engine": "torchani", "n_side": 5, "cutoffs": "6A", "reps": 1},
        {"engine": "dscribe", "n_side": 5 if quick else 7},
        {"engine": "committee", "n_side": 7 if quick else 10, "dtype": "float32"},
        {"engine": "jacobian", "limit": 24 if quick else None},
        {"engine": "md", "n_side": 10, "dtype": "float32", "steps": 10 if quick else 40},
        {"engine": "md", "n_side": 10, "dtype": "float32", "steps": 10 if quick else 40,
         "skin": 1.0},
        {"engine": "train_nnpot", "dtype": "float32", "limit": 48 if quick else None},
        {"engine": "train_torchani", "cutoffs": "default", "limit": 48 if quick else 232},
        {"engine": "train_torchani", "cutoffs": "6A", "limit": 8 if quick else 24},
        {"engine": "profile", "n_side": 10, "dtype": "float32"}]
    if not quick:
        runs += [{"engine": "nnpot", "n_side": 7, "dtype": "float64", "spec": "n2p2",
                  "reps": 1, "desc": False},
                 {"engine": "nnpot", "n_side": 6, "dtype": "float32", "desc": False},
                 {"engine": "torchani", "n_side": 10, "cutoffs": "default"},
                 {"engine": "torchani", "n_side": 6, "cutoffs": "6A", "reps": 1},
                 # ~8 GB: the 3,000-atom comparison at 6 Å (fits in 23 GB)
                 {"engine": "torchani", "n_side": 10, "cutoffs": "6A", "reps": 1},
                 {"engine": "committee", "n_side": 10, "dtype": "float64"},
                 {"engine": "md", "n_side": 10, "dtype": "float32", "steps": 40,
                  "skin": 1.0, "check": False},
                 {"engine": "md", "n_side": 10, "dtype": "float64", "steps": 40},
                 {"engine": "md", "n_side": 10, "dtype": "float64", "steps": 40, "skin": 1.0},
                 {"engine": "train_nnpot", "dtype": "float64"},
                 {"engine": "profile", "n_side": 10, "dtype": "float64"}]
    return runs


def _row(r: dict, find, threads: int) -> dict | None:
    """One table row: case, dtype, N, CPU and wall µs/atom, peak MB, a ratio, a note."""
    e = r["engine"]
    row = {"case": e, "dtype": r.get("dtype", "float64" if e == "dscribe" else "float32"),
           "N": r.get("n_atoms", 3 * r.get("n_side", 0) ** 3)}
    if "error" in r:
        return {**row, "note": "error: " + r["error"]}
    cpu, wall, ratio, vs, note = r.get("ef_cpu_us"), r.get("ef_us"), None, None, ""
    # ratios by CPU time on one thread (robust on a shared machine), by wall time on
    # several (their CPU time includes the spinning of idle OpenMP threads)
    key, how = ("ef_us", "wall") if threads > 1 else ("ef_cpu_us", "CPU")
    if e == "nnpot":
        if r.get("spec") == "n2p2":
            row["case"] = "nnpot G4 path (n2p2 water set)"
        elif r.get("n_radial"):
            row["case"] = f"nnpot, fit default ({r['n_radial']} radial shells)"
        lo, hi = N2P2_REF_US[threads if threads in N2P2_REF_US else 2]
        ratio, vs = (lo + hi) / 2 / r[key], f"n2p2 {threads}-thread (quoted) / nnpot, {how}"
    elif e == "torchani":
        row["case"] = f"torchani ({r['cutoffs']} cutoffs)"
        mine = find(engine="nnpot", n_side=r["n_side"], dtype="float32", spec=None,
                    n_radial=None)
        if mine:
            ratio, vs = r[key] / mine[key], f"torchani / nnpot f32, {how}"
    elif e == "dscribe":
        cpu, wall = r["desc_cpu_us"], r["desc_us"]
        mine = find(engine="nnpot", n_side=r["n_side"], dtype="float64", spec=None,
                    n_radial=None)
        row["case"] = "dscribe ACSF (descriptors only)"
        if mine and mine.get("desc_cpu_us"):  # dscribe runs on one thread (n_jobs=1)
            ratio, vs = wall / mine["desc_us"], "dscribe / nnpot descriptors+backward, wall"
    elif e == "committee":
        row["case"] = "nnpot committee of 8, per-member forces"
        cpu, wall = r["committee_cpu_us"], r.get("committee_us")
        if threads > 1 and "committee/one wall" in r:
            ratio, vs = r["committee/one wall"], "committee / one model, wall"
            note = f"one model {r['one_us']:.1f} µs/atom (wall)"
        else:
            ratio, vs = r["committee/one"], "committee / one model, CPU"
            note = f"one model {r['one_cpu_us']:.1f} µs/atom (CPU)"
    elif e == "jacobian":
        row["case"] = "nnpot pair-Jacobian precomputation (water set)"
        cpu = 1e6 * r["direct_cpu_s"] / r["n_atoms"]
        ratio, vs = r["generic/direct"], "one backward per feature / one pass"
        note = (f"{r['n_structures']} structures: {r['generic_cpu_s']:.1f} s -> "
                f"{r['direct_cpu_s']:.1f} s; max |ΔJ| {r['max_abs_diff']:.1e}")
    elif e == "md":
        kind = "fresh lists" if r.get("skin") is None else f"skin {r['skin']} Å"
        row["case"] = f"nnpot NVE MD 0.5 fs, {kind}" + ("" if r.get("check", True)
                                                        else ", no input checks")
        cpu, wall = r["ef_cpu_us"], 1e3 * r["wall_ms_per_step"] / r["n_atoms"]
        note = f"{r['ns_per_day_cpu']:.3f} ns/day (CPU time); {r['list_builds']} list builds"
    elif e.startswith("train"):
        row["case"] = ("nnpot" if e == "train_nnpot" else f"torchani ({r['cutoffs']} cutoffs)"
                       ) + " E+F training (water set)"
        row["N"] = r["n_structures"]
        note = f"{r['structures_per_s']:.1f} structures/s"
        if e == "train_nnpot":
            note += f"; descriptors+Jacobians once: {r['prepare_cpu_s']:.1f} s"
        else:
            mine = find(engine="train_nnpot", dtype="float32")
            if mine:
                ratio, vs = mine["structures_per_s"] / r["structures_per_s"], \
                    "nnpot f32 / torchani (structures/s)"
    else:
        return None
    row.update({"cpu us/atom": cpu, "wall us/atom": wall, "peak MB": r.get("peak_rss_mb"),
                "ratio": ratio, "ratio is": vs, "note": note})
    return {k: v for k, v in row.items() if v not in (None, "")}


def _rows(results: list[dict], threads: int) -> list[dict]:
    def find(**kw):
        for r in results:
            if all(r.get(k) == v for k, v in kw.items()) and "error" not in r:
                return r
        return None

    return [row for r in results if (row := _row(r, find, threads)) is not None]


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
                     and "spec" not in r and "n_radial" not in r and "error" not in r
                     and r.get("desc", True))
        if pts:
            n, t, c, m = zip(*pts, strict=True)
            ax1.loglog(n, c, mk + "-", color=col, label=f"nnpot {dt}, CPU time")
            ax1.loglog(n, t, mk + ":", color=col, alpha=0.4, label=f"nnpot {dt}, wall")
            ax2.loglog(n, m, mk + "-", color=col, label=f"nnpot {dt}")
    ax1.axhspan(*N2P2_REF_US[1], color="grey", alpha=0.3, label="n2p2, 1 thread (quoted)")
    ax1.set(xlabel="atoms", ylabel="energy + forces [µs/atom]", title="time per atom")
    ax2.set(xlabel="atoms", ylabel="peak RSS [MB]", title="peak memory (whole process)")
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(out_dir, quick: bool = False, threads: int | None = None) -> dict:
    """Run the speed benchmark; write ``speed.json`` and ``speed_scaling.png`` to out_dir.
    ``threads`` per worker: default $OMP_NUM_THREADS (``make bench``: THREADS), else 1."""
    threads = int(threads or os.environ.get("OMP_NUM_THREADS", 1))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    policy = wait_policy(threads)
    for cfg in _plan(quick):
        t = time.perf_counter()
        load0 = os.getloadavg()[0]
        res = _spawn(cfg, cfg.get("threads", threads), policy)
        res["wall_s"] = round(time.perf_counter() - t, 1)
        res["loadavg_1min"] = [load0, os.getloadavg()[0]]
        results.append(res)
        print(json.dumps(res), flush=True)
    rows = _rows(results, threads)
    load = os.getloadavg()
    summary = {"threads": threads, "omp_wait_policy": policy, "quick": quick,
               "loadavg_after": load,
               "n2p2_reference_us_per_atom": N2P2_REF_US, "results": results, "table": rows}
    (out_dir / "speed.json").write_text(json.dumps(summary, indent=1))
    _plot(results, out_dir / "speed_scaling.png")
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads or 1)
        cfg = json.loads(args.worker)
        print(json.dumps(_workers()[cfg["engine"]](cfg)), flush=True)
    else:
        res = main(args.out, quick=args.quick, threads=args.threads)
        for row in res["table"]:
            print(row)
