"""`nnpot fit`: train a model on labelled structures."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("fit", help="train a Behler-Parrinello potential on labelled structures",
                       description="Train a BP neural-network potential (energies, forces, "
                       "stress). A killed run resumes from its last checkpoint when run again.")
    p.add_argument("--data", required=False, help="training data (extxyz or ASE .db)")
    p.add_argument("--out", required=True, help="model file to write (.nnp)")
    p.add_argument("--config", help="TOML config ([data], [model], [training])")
    p.add_argument("--epochs", type=int, help="number of epochs (overrides the config)")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.add_argument("--committee", type=int, help="number of committee members (bootstrap)")
    p.add_argument("--max-time", type=float, help="training time budget in seconds")
    p.add_argument("--run-dir", help="checkpoints and logs (default: OUT.run/)")
    p.add_argument("--plots", action="store_true", help="write learning-curve and parity PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nnpot.atomistic.workflow import fit
    from nnpot.config import FitConfig, load_config

    cfg = load_config(FitConfig, args.config)
    if args.epochs is not None:
        cfg.training.epochs = args.epochs
    if args.seed is not None:
        cfg.training.seed = args.seed
    if args.committee is not None:
        cfg.model.committee = args.committee
    if args.max_time is not None:
        cfg.training.max_time = args.max_time
    res = fit(cfg, args.out, data=args.data, run_dir=args.run_dir, progress=not args.quiet)
    test = res.metrics.get("test") or res.metrics.get("valid") or {}
    print(f"model written to {res.model_path} ({res.wall_s:.1f} s); run folder {res.run_dir}")
    for k in ("energy_rmse_mev_atom", "forces_rmse_mev_ang", "stress_rmse_mev_ang3"):
        if k in test:
            print(f"  test {k.replace('_', ' ')}: {test[k]:.3f}")
    if args.plots:
        from nnpot.plotting.atomistic import learning_curve

        learning_curve(Path(res.run_dir) / "metrics.jsonl", Path(res.run_dir) / "learning.png")
    return 0
