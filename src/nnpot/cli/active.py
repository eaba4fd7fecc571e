"""`nnpot active`: the explore-label-retrain loop (`--resume RUN_DIR` continues one)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "active", help="active learning: MD with a committee, label what it doubts, retrain",
        description="Run the active-learning loop of CONFIG.toml in a run folder. A killed "
        "run continues with --resume RUN_DIR, without labelling any structure twice.")
    p.add_argument("config", nargs="?", help="TOML config (see nnpot.active.settings)")
    p.add_argument("--out", help="run folder (default: CONFIG name + '.active')")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--threads", type=int, help="torch threads (resume with the same number "
                   "for bit-identical results)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or iteration lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nnpot.errors import InputError

    if bool(args.config) == bool(args.resume):
        raise InputError("give either CONFIG.toml or --resume RUN_DIR")
    import torch

    from nnpot.active.loop import ActiveLearning
    from nnpot.active.settings import ActiveConfig
    from nnpot.config import load_config

    if args.threads:
        torch.set_num_threads(args.threads)
    echo = None if args.quiet else print
    if args.resume:
        run_dir = Path(args.resume)
        loop = ActiveLearning.resume(run_dir, progress=not args.quiet, echo=echo)
    else:
        cfg = load_config(ActiveConfig, args.config)
        run_dir = Path(args.out) if args.out else Path(Path(args.config).stem + ".active")
        if (run_dir / "state.json").exists():
            raise InputError(f"{str(run_dir)!r} already holds a run; continue it with "
                             f"--resume {run_dir}")
        loop = ActiveLearning(cfg, run_dir, progress=not args.quiet, echo=echo)
    state = loop.run()
    history = state.extra.get("history", [])
    if history:
        from nnpot.plotting.active import active_summary

        png = active_summary(history, run_dir / "active.png")
        last = history[-1]
        print(f"active: {last['labelled']} labelled, {last['failed']} failed, "
              f"{state.extra.get('stop_reason', '')}; run folder {run_dir}, plot {png}")
    return 0
