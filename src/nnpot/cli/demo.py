"""`nnpot demo`: train on the shipped water set, run MD of >1,000 molecules, write a report.

What `make demo` runs. Every step prints what it did and how long it took; the report
folder gets the model, plots (parity, learning curve, energy conservation, O–O RDF) and
``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="train on shipped water data, run MD, write a report")
    p.add_argument("--out", default="demo-report", help="report folder (default demo-report)")
    p.add_argument("--train-time", type=float, default=200.0,
                   help="training budget in seconds (default 200)")
    p.add_argument("--md-steps", type=int, default=100)
    p.add_argument("--data", help="water data to train on (default: the shipped GFN2-xTB set)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _largest_periodic(frames):
    periodic = [f for f in frames if f.pbc.all()]
    return max(periodic, key=len) if periodic else None


def water_section(args, out: Path, summary: dict) -> None:
    import numpy as np

    from nnpot.atomistic.analysis import rdf
    from nnpot.atomistic.calculator import NNPCalculator
    from nnpot.atomistic.md import run_md
    from nnpot.atomistic.workflow import fit, predict_frames
    from nnpot.config import FitConfig
    from nnpot.data import path as data_path
    from nnpot.plotting.atomistic import energy_conservation, learning_curve, parity
    from nnpot.plotting.atomistic import rdf as plot_rdf

    data = Path(args.data) if args.data else data_path("water_xtb")
    print(f"[1/6] training a BP potential on {data.name} (GFN2-xTB water, shipped) "
          f"for at most {args.train_time:.0f} s ...", flush=True)
    cfg = FitConfig()
    cfg.training.epochs = 2000
    cfg.training.patience = 2000
    cfg.training.max_time = args.train_time
    cfg.training.batch_size = 4
    cfg.training.lr = 5e-3
    cfg.training.lr_final = 2e-4
    cfg.training.forces_weight = 2.0
    model_path = out / "water.nnp"
    res = fit(cfg, model_path, data=str(data), run_dir=out / "fit-run",
              progress=not args.quiet)
    test = res.metrics["test"]
    print(f"      {res.wall_s:.0f} s; test set ({test['n_structures']} structures): energy "
          f"RMSE {test['energy_rmse_mev_atom']:.2f} meV/atom, force RMSE "
          f"{test['forces_rmse_mev_ang']:.1f} meV/Å", flush=True)
    summary["water_fit"] = {"wall_s": round(res.wall_s, 1), "test": test,
                            "valid": res.metrics["valid"], "model": str(model_path)}
    learning_curve(res.run_dir / "metrics.jsonl", out / "learning_curve.png")
    from nnpot.atomistic.data import read_frames

    frames = read_frames(data)
    test_frames = [frames[k] for k in res.splits["test"]]
    parity(test_frames, predict_frames(res.model, test_frames), out / "parity.png",
           "water (GFN2-xTB), test set")

    box = _largest_periodic(frames).to_atoms()
    n_mol = len(box) // 3
    reps = 1
    while n_mol * reps < 1000:
        reps *= 2
    rep = {1: (1, 1, 1), 2: (2, 1, 1), 4: (2, 2, 1), 8: (2, 2, 2), 16: (2, 2, 4),
           32: (2, 4, 4), 64: (4, 4, 4)}[reps]
    atoms = box.repeat(rep)
    atoms.calc = NNPCalculator(res.model, check=False)
    print(f"[2/6] NVE MD of {len(atoms) // 3} water molecules ({len(atoms)} atoms), "
          f"{args.md_steps} steps of 0.5 fs ...", flush=True)
    md = run_md(atoms, args.md_steps, 0.5, 300.0, "nve", traj=out / "md.extxyz",
                log=out / "md.log.jsonl", interval=10, progress=not args.quiet)
    drift = md.drift_mev_per_atom(len(atoms))
    print(f"      {md.wall_s:.0f} s ({1000 * md.wall_s / max(md.steps_done, 1):.0f} ms/step, "
          f"{1e6 * md.wall_s / max(md.steps_done, 1) / len(atoms):.0f} µs/atom/step); "
          f"max |E_tot − E_tot(0)| = {drift:.3f} meV/atom; final T = "
          f"{md.temperature[-1]:.0f} K", flush=True)
    energy_conservation(md, len(atoms), out / "energy_conservation.png",
                        f"NVE MD, {len(atoms) // 3} water molecules")
    from ase.io import read

    traj = read(str(out / "md.extxyz"), index=":")
    r, g = rdf(traj, "O", "O", r_max=6.0)
    r0, g0 = rdf([f.to_atoms() for f in frames if f.pbc.all()], "O", "O", r_max=6.0)
    plot_rdf(r, g, out / "rdf_OO.png", "O–O", reference=(r0, g0))
    summary["water_md"] = {"n_atoms": len(atoms), "steps": md.steps_done,
                           "wall_s": round(md.wall_s, 1), "drift_mev_atom": drift,
                           "final_temperature_k": md.temperature[-1],
                           "rdf_OO_first_peak_A": float(r[int(np.argmax(g))])}


def nuclear_section(out: Path, summary: dict) -> None:
    """Show the shipped neural np potential: deuteron, phase shifts with bands, plots."""
    import warnings

    from nnpot.nuclear.modelfile import load_model, shipped_model_path
    from nnpot.nuclear.predict import deuteron_table, phase_table
    from nnpot.plotting.nuclear import plot_phase_shifts

    model = load_model(shipped_model_path())
    d = deuteron_table(model)
    m, e = d["model"], d["experiment"]
    print(f"      deuteron: B_d = {m['B_d']:.6f} MeV (exp. {e.get('B_d', float('nan')):.6f}), "
          f"A_S = {m['A_S']:.4f} fm^-1/2 (exp. {e.get('A_S', float('nan')):.4f}), "
          f"eta = {m['eta']:.4f}, r_d = {m['r_d']:.4f} fm, Q_d = {m['Q_d']:.4f} fm²",
          flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tab = phase_table(model, [10.0, 50.0, 100.0, 200.0], ["1S0", "3P0", "3S1", "E1"])
    for w, v in tab["waves"].items():
        cells = "  ".join(f"{x:8.3f}±{s:.3f}" for x, s in
                          zip(v["deg"], v["committee_std_deg"], strict=True))
        print(f"      {w:4s} (10, 50, 100, 200 MeV): {cells} deg", flush=True)
    paths = plot_phase_shifts(model, out / "nuclear")
    summary["nuclear"] = {"deuteron": d, "phases": tab, "plots": [str(p) for p in paths]}


def dimer_section(out: Path, summary: dict) -> None:
    """Ar₂ trained at 3–5 Å, predicted at 7–12 Å: short-range NNP vs NNP + C6 tails
    (the example script of the repository, quick settings)."""
    import runpy

    script = Path(__file__).resolve().parents[3] / "examples" / "dimer_extrapolation.py"
    if not script.is_file():  # an installed package has no examples folder
        print("      (skipped: examples/dimer_extrapolation.py is not next to this install)")
        return
    res = runpy.run_path(str(script))["main"](out / "dimer", gas="Ar", quick=True)
    summary["dimer"] = {k: res[k] for k in ("reference", "plot", "wall_s")}
    summary["dimer"]["models"] = {
        k: {kk: v.get(kk) for kk in ("slope", "e10_ratio", "train_rmse_mev", "c6_mean",
                                      "c6_std", "ood_flagged")}
        for k, v in res["models"].items()}


def run(args: argparse.Namespace) -> int:
    from nnpot.io import atomic_write_json

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    water_section(args, out, summary)
    print("[3/6] physics, not parroting: Ar2 trained at 3-5 Å, predicted at 7-12 Å "
          "(three committees) ...", flush=True)
    dimer_section(out, summary)
    print("[4/6] active learning: a water potential from ten structures, GFN2-xTB as the "
          "oracle, then MD with the result ...", flush=True)
    from nnpot.active.demo import water_demo

    summary["active"] = water_demo(out / "active", quick=True, progress=not args.quiet)
    print("[5/6] the shipped nucleon-nucleon potential (np, N2LO pion exchange + Yukawa "
          "intermediate range + contact short range; networks off, see its README) ...",
          flush=True)
    nuclear_section(out, summary)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out / "summary.json", json.loads(json.dumps(summary, default=float)))
    print(f"[6/6] report written to {out.resolve()}/ (parity.png, learning_curve.png, "
          f"energy_conservation.png, rdf_OO.png, dimer/, active/, nuclear/, summary.json); total "
          f"{summary['wall_s']:.0f} s")
    return 0
