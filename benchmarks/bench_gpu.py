"""GPU benchmark (issues 4 and 9: "the same benchmark runs on a GPU when one is available and
reports it separately; CPU remains the reference").

    python benchmarks/bench_gpu.py [OUT_DIR] [--device cuda|cpu] [--quick]

Atomistic: energy + forces per atom for liquid water (default descriptor set at 6 Å, two
hidden layers of 25, as in bench_speed.py) from 3,000 to 192,000 atoms in float32 and
float64, peak device memory, a committee of 8 with per-member forces against one model,
TorchANI on the same device (6 / 5.99 Å and default cutoffs) as the same-run peer, and
agreement of the device's float64 energies/forces with the CPU's. Nuclear: Lanczos ground
state of the Jacobi-NCSM triton Hamiltonian and coupled-channel Lippmann-Schwinger solves
in float64 / float32 / mixed precision on the device against the host CPU.

Each section is guarded: a failure is recorded in the JSON and the next section runs. The
JSON (``bench_gpu.json``) is rewritten after every section, so a run cut off by a time
limit keeps what it measured. Times are wall-clock with device synchronisation, best of
``reps`` after warm-up.
"""

# ruff: noqa: B023 - every closure below is timed inside its own loop iteration
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from speed_workers import water_box  # noqa: E402

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn, device, reps: int = 5, warm: int = 2) -> float:
    for _ in range(warm):
        fn()
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def _peak_reset(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _water_batch(n_side: int, dtype, device):
    from nnpot.atomistic.neighbors import make_batch, neighbor_pairs

    numbers, pos, cell = water_box(n_side)
    pbc = np.ones(3, bool)
    pairs = neighbor_pairs(pos, cell, pbc, 6.0)
    b = make_batch([(numbers, pos, cell, pbc)], {1: 0, 8: 1}, 6.0, dtype=dtype, pairs=[pairs])
    return b.to(device=device), len(numbers)


def atomistic_scaling(device, quick: bool) -> list[dict]:
    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP

    spec = default_spec(["H", "O"], cutoff=6.0, n_radial=8)
    sides = (5, 10) if quick else (10, 20, 28, 40)
    rows = []
    for n_side in sides:
        for name, dtype in DTYPES.items():
            torch.manual_seed(0)
            model = NNP(spec, hidden=(25, 25)).to(device=device, dtype=dtype)
            batch, n = _water_batch(n_side, dtype, device)
            _peak_reset(device)
            t = _best(lambda m=model, b=batch: m.compute(b, forces=True), device,
                      reps=3 if n > 50_000 else 5)
            rows.append({"n_atoms": n, "dtype": name, "ef_us": 1e6 * t / n,
                         "peak_mb": _peak_mb(device)})
            print(json.dumps(rows[-1]), flush=True)
            del batch, model
    return rows


def committee(device, quick: bool) -> list[dict]:
    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP

    spec = default_spec(["H", "O"], cutoff=6.0, n_radial=8)
    rows = []
    for n_side in ((5,) if quick else (10, 28)):
        for name, dtype in DTYPES.items():
            torch.manual_seed(0)
            one = NNP(spec, hidden=(25, 25)).to(device=device, dtype=dtype)
            comm = NNP(spec, hidden=(25, 25), n_members=8).to(device=device, dtype=dtype)
            batch, n = _water_batch(n_side, dtype, device)
            t1 = _best(lambda: one.compute(batch, forces=True), device)
            t8 = _best(lambda: comm.compute(batch, forces=True, member_forces=True), device)
            rows.append({"n_atoms": n, "dtype": name, "one_us": 1e6 * t1 / n,
                         "committee8_us": 1e6 * t8 / n, "ratio": t8 / t1})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def profile(device, quick: bool) -> dict:
    """torch.profiler table of one E + F evaluation (float32 water), and the share of the
    wall time the device is busy (sum of device kernel time / wall time)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP

    spec = default_spec(["H", "O"], cutoff=6.0, n_radial=8)
    torch.manual_seed(0)
    model = NNP(spec, hidden=(25, 25)).to(device=device, dtype=torch.float32)
    batch, n = _water_batch(5 if quick else 28, torch.float32, device)
    for _ in range(2):
        model.compute(batch, forces=True)
    _sync(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    t = time.perf_counter()
    with torch_profile(activities=acts) as prof:
        model.compute(batch, forces=True)
        _sync(device)
    wall = time.perf_counter() - t
    ev = prof.key_averages()
    busy = sum(getattr(e, "self_device_time_total", 0.0) for e in ev) / 1e6
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    try:
        table = ev.table(sort_by=key, row_limit=20)
    except Exception:  # noqa: BLE001 - older/newer profiler key names
        table = ev.table(sort_by="self_cpu_time_total", row_limit=20)
    print(table, flush=True)
    return {"n_atoms": n, "wall_s_profiled": wall, "device_busy_s": busy,
            "n_events": sum(e.count for e in ev), "table": table}


def agreement(device) -> dict:
    """Device float64 vs CPU float64, device float32 vs device float64 (375 atoms)."""
    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP

    spec = default_spec(["H", "O"], cutoff=6.0, n_radial=8)
    torch.manual_seed(0)
    model = NNP(spec, hidden=(25, 25)).double()
    b_cpu, _ = _water_batch(5, torch.float64, torch.device("cpu"))
    ref = model.compute(b_cpu, forces=True)
    dev = model.to(device)
    out = dev.compute(b_cpu.to(device=device), forces=True)
    f32 = model.to(device=device, dtype=torch.float32).compute(
        b_cpu.to(device=device, dtype=torch.float32), forces=True)
    fmax = float(ref.forces.abs().max())
    return {"n_atoms": int(b_cpu.positions.shape[0]),
            "energy_abs_diff_f64": float((out.energy.detach().cpu()
                                          - ref.energy.detach()).abs().max()),
            "forces_max_rel_diff_f64": float((out.forces.cpu() - ref.forces).abs().max()) / fmax,
            "forces_max_rel_diff_f32": float((f32.forces.double().cpu() - ref.forces).abs().max())
            / fmax}


def torchani_peer(device, quick: bool) -> list[dict]:
    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    import torchani

    rows = []
    cases = [("6A", 6)] if quick else [("6A", 6), ("6A", 10), ("6A", 20), ("default", 10),
                                          ("default", 28)]
    for cut, n_side in cases:
        numbers, pos, cell = water_box(n_side)
        n = len(numbers)
        kw = {} if cut == "default" else {"radial_cutoff": 6.0, "angular_cutoff": 5.99}
        aev = torchani.AEVComputer.like_2x(num_species=2, neighborlist="cell_list", **kw)
        aev = aev.to(device)
        species = torch.tensor((numbers == 8).astype(np.int64), device=device)[None]
        nets = torch.nn.ModuleList(torch.nn.Sequential(
            torch.nn.Linear(aev.out_dim, 25), torch.nn.CELU(0.1), torch.nn.Linear(25, 25),
            torch.nn.CELU(0.1), torch.nn.Linear(25, 1)) for _ in range(2)).to(device)
        cell_t = torch.tensor(cell, dtype=torch.float32, device=device)
        pbc = torch.tensor([True] * 3, device=device)
        masks = [species[0] == k for k in range(2)]
        pos_t = torch.tensor(pos[None], dtype=torch.float32, device=device)

        def ef():
            c = pos_t.clone().requires_grad_(True)
            a = aev(species, c, cell=cell_t, pbc=pbc)[0]
            e = sum(nets[k](a[m]).sum() for k, m in enumerate(masks))
            torch.autograd.grad(e, c)

        _peak_reset(device)
        try:
            t = _best(ef, device, reps=3, warm=1)
            rows.append({"cutoffs": cut, "n_atoms": n, "ef_us": 1e6 * t / n,
                         "peak_mb": _peak_mb(device)})
        except torch.OutOfMemoryError as exc:
            rows.append({"cutoffs": cut, "n_atoms": n, "error": f"out of memory: {exc}"[:200]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def nuclear(device, quick: bool) -> list[dict]:
    """Lanczos NCSM (MT-I/III s-wave, N_max 40) and coupled-channel LS solves, host CPU vs
    device, float64 / float32 / mixed."""
    from bench_manybody import _mt_me, coupled_test_potential

    from nnpot.nuclear.lowrank import TWO_MU, full_onshell_k, max_phase_deviation, phase_shifts_deg
    from nnpot.nuclear.mesh import default_mesh
    from nnpot.nuclear.threebody.hamiltonian import JacobiHamiltonian, assemble, build_basis
    from nnpot.nuclear.threebody.interaction import effective_me
    from nnpot.nuclear.threebody.lanczos import ground_state

    rows = []
    cpu = torch.device("cpu")
    n = 24 if quick else 40
    basis = build_basis(n)
    for variant in ("MT-I/III s-wave",):  # the basis is the same for every interaction
        bare = _mt_me(variant, 40.0, 600)
        h = assemble(basis, 40.0, effective_me(bare, n, 600, 40.0), oscillator=True)
        ham = JacobiHamiltonian(basis, h)
        ref = None  # CPU float64 energy of this variant
        for where in (cpu, device):
            hd = ham.to(device=where)
            for prec in ("float64", "float32", "mixed"):
                ground_state(hd, prec)  # warm-up (kernels, sparse setup)
                _sync(where)
                t = time.perf_counter()
                r = ground_state(hd, prec)
                _sync(where)
                sec = time.perf_counter() - t
                ref = r.energy if ref is None else ref
                rows.append({"what": f"Lanczos {variant} N_max={n} dim={ham.dim}",
                             "device": where.type, "precision": prec, "seconds": sec,
                             "iterations": r.iterations, "energy": r.energy,
                             "abs_error_kev": abs(r.energy - ref) * 1e3})
                print(json.dumps(rows[-1]), flush=True)
    coupled = coupled_test_potential()  # as bench_manybody.mixed_precision

    for nmesh in ((48,) if quick else (96, 192, 384)):
        k, w = default_mesh(nmesh)
        p0 = torch.sqrt(0.5 * torch.linspace(1.0, 300.0, 300, dtype=torch.float64) * TWO_MU)
        kref = full_onshell_k(coupled, k, w, p0)
        phref = phase_shifts_deg(kref, p0)
        for where in (cpu, device):
            kd, wd, pd = k.to(where), w.to(where), p0.to(where)
            for prec in ("float64", "float32", "mixed"):
                t = _best(lambda: full_onshell_k(coupled, kd, wd, pd, precision=prec), where,
                          reps=3, warm=1)
                kk = full_onshell_k(coupled, kd, wd, pd, precision=prec).cpu()
                rows.append({"what": f"LS coupled, mesh {nmesh}, 300 energies",
                             "device": where.type, "precision": prec, "seconds": t,
                             "max_dphase_deg": max_phase_deviation(phase_shifts_deg(kk, p0),
                                                                   phref)})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main(out_dir="benchmarks/results", device: str | None = None, quick: bool = False) -> dict:
    if device is None and not torch.cuda.is_available():  # make bench on a CPU machine
        print("no GPU here: skipped (bench_speed.py is the CPU reference)")
        return {"name": "gpu", "skipped": "no GPU", "table": []}
    dev = torch.device(device or "cuda")
    res: dict = {"name": "gpu", "device": dev.type, "quick": quick,
                 "torch": torch.__version__, "cpu_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        res["gpu"] = {"name": p.name, "memory_gb": p.total_memory / 1e9,
                      "multiprocessors": p.multi_processor_count}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = [("agreement", lambda: agreement(dev)),
                ("scaling", lambda: atomistic_scaling(dev, quick)),
                ("committee", lambda: committee(dev, quick)),
                ("torchani", lambda: torchani_peer(dev, quick)),
                ("nuclear", lambda: nuclear(dev, quick)),
                ("profile", lambda: profile(dev, quick))]
    only = os.environ.get("NNPOT_GPU_SECTIONS")
    for name, fn in sections:
        if only and name not in only.split(","):
            continue
        t = time.perf_counter()
        try:
            res[name] = fn()
        except Exception as exc:  # noqa: BLE001 - recorded, the next section runs
            res[name] = {"error": f"{type(exc).__name__}: {exc}",
                         "traceback": traceback.format_exc()[-3000:]}
            print(res[name]["traceback"], flush=True)
        res[f"{name}_seconds"] = time.perf_counter() - t
        (out / "bench_gpu.json").write_text(json.dumps(res, indent=2, default=float))
        print(f"== {name} done in {res[f'{name}_seconds']:.1f} s", flush=True)
    res["table"] = _table(res)
    (out / "bench_gpu.json").write_text(json.dumps(res, indent=2, default=float))
    return res


def _table(res: dict) -> list[dict]:
    """Rows for benchmarks/run.py: E + F per atom and the same-device TorchANI ratios."""
    rows = []
    scaling = res.get("scaling") if isinstance(res.get("scaling"), list) else []
    ani = res.get("torchani") if isinstance(res.get("torchani"), list) else []
    for r in scaling:
        row = {"what": f"nnpot E+F {r['dtype']} on {res['device']}", "n_atoms": r["n_atoms"],
               "us_per_atom": r["ef_us"], "peak_mb": r["peak_mb"]}
        peer = [a for a in ani if a.get("cutoffs") == "6A" and a["n_atoms"] == r["n_atoms"]
                and "ef_us" in a]
        if peer and r["dtype"] == "float32":
            row["TorchANI_6A/nnpot"] = peer[0]["ef_us"] / r["ef_us"]
        rows.append(row)
    for c in res.get("committee", []) if isinstance(res.get("committee"), list) else []:
        rows.append({"what": f"committee of 8 / one model, {c['dtype']}",
                     "n_atoms": c["n_atoms"], "us_per_atom": c["committee8_us"],
                     "ratio": c["ratio"]})
    for a in ani:
        rows.append({"what": f"TorchANI {a['cutoffs']} cutoffs E+F float32",
                     "n_atoms": a["n_atoms"], "us_per_atom": a.get("ef_us"),
                     "peak_mb": a.get("peak_mb")})
    return rows


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dev_arg = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--device=")), None)
    main(args[0] if args else "benchmarks/results", dev_arg, quick="--quick" in sys.argv)
