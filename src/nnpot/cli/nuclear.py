"""``nnpot nuclear``: fit, phase shifts, deuteron and plots of nuclear NN potentials.

Built-in sub-subcommands: ``fit``, ``phases``, ``deuteron``, ``check``, ``plot``. Other modules add
theirs by being listed in :data:`NUCLEAR_SUBCOMMANDS`; each such module has
``register(subparsers)`` that adds a parser to the ``nnpot nuclear`` subparsers and sets
``func`` to ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from pathlib import Path

# Modules adding more `nnpot nuclear <sub>` commands (register(subparsers)). One line each.
NUCLEAR_SUBCOMMANDS: list[str] = ["nnpot.cli.nuclear_manybody"]


def _model_arg(p):
    p.add_argument("model", nargs="?", default=None,
                   help="nuclear model file (.nnp); default: the shipped np_n2lo.nnp")


def register(subparsers) -> None:
    parser = subparsers.add_parser("nuclear", help="nucleon-nucleon potentials (momentum space)",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="nuclear_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help() or 1))

    p = sub.add_parser("fit", help="fit a potential to PWA93 np phase shifts and B_d")
    p.add_argument("config", nargs="?", default=None, help="TOML config (defaults if omitted)")
    p.add_argument("--out", required=True, help="model file to write (.nnp)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_fit)

    p = sub.add_parser("phases", help="phase shifts and mixing angles [deg] with bands")
    _model_arg(p)
    p.add_argument("--tlab", required=True, help="comma-separated lab energies in MeV")
    p.add_argument("--waves", default=None, help="comma-separated waves (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_phases)

    p = sub.add_parser("deuteron", help="deuteron properties and effective-range parameters")
    _model_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_deuteron)

    p = sub.add_parser("check", help="deviations from PWA93 (fitted and held-out energies), "
                       "chi2, mesh independence, smoothness, deuteron vs experiment")
    _model_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_check)

    p = sub.add_parser("plot", help="plot every channel with PWA93 points and bands")
    _model_arg(p)
    p.add_argument("--out", default="nuclear-plots", help="folder for the PNG files")
    p.set_defaults(func=run_plot)

    for name in NUCLEAR_SUBCOMMANDS:
        importlib.import_module(name).register(sub)


def _load(path):
    from nnpot.nuclear.modelfile import load_model, shipped_model_path

    return load_model(path if path is not None else shipped_model_path())


def _tlabs(text: str):
    from nnpot.errors import InputError

    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--tlab must be comma-separated numbers in MeV, got {text!r}") from None
    return vals


def run_fit(args: argparse.Namespace) -> int:
    from nnpot.config import dump_resolved, load_config
    from nnpot.io import atomic_write_json
    from nnpot.nuclear.modelfile import save_model
    from nnpot.nuclear.pipeline import FitConfig, run_fit

    cfg = load_config(FitConfig, args.config)
    out = Path(args.out)
    log = None if args.quiet else (lambda rec: print(json.dumps(rec, default=str),
                                                     file=sys.stderr))
    members, report = run_fit(cfg, log=log)
    save_model(out, members, mesh_n=cfg.mesh_n,
               extra={"truncation": report["truncation"],
                      "provenance": {"fit": "nnpot nuclear fit", "config": cfg.model_dump(),
                                     "data": "PWA93 np (+ Granada errors), B_d",
                                     "tlab_fitted": report["tlab_fitted"],
                                     "fit_seconds": report["fit_seconds"],
                                     "fit_cpu_seconds": report["fit_cpu_seconds"],
                                     "threads": report["threads"]}})
    dump_resolved(cfg, out.parent)
    atomic_write_json(out.with_suffix(".report.json"), report)
    if not args.quiet:
        print(f"wrote {out} ({len(members)} members, {report['fit_seconds']:.0f} s)")
    return 0


def run_phases(args: argparse.Namespace) -> int:
    from nnpot.nuclear.predict import phase_table

    model = _load(args.model)
    waves = None if args.waves is None else [w.strip() for w in args.waves.split(",")]
    res = phase_table(model, _tlabs(args.tlab), waves)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    tl = res["tlab_mev"]
    print("wave   " + "".join(f"{t:>22.1f}" for t in tl))
    for w, v in res["waves"].items():
        cells = "".join(
            f"{d:9.3f} ±{c:5.3f} ±{t:5.2f}" for d, c, t in
            zip(v["deg"], v["committee_std_deg"], v["truncation_68_deg"], strict=True))
        print(f"{w:6s} {cells}")
    print("columns: deg ± committee std ± 68% EFT truncation half-width (deg)")
    return 0


def run_deuteron(args: argparse.Namespace) -> int:
    from nnpot.nuclear.predict import deuteron_table

    res = deuteron_table(_load(args.model))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    for k, v in res["model"].items():
        e = res["experiment"].get(k)
        s = res["committee_std"].get(k, math.nan)
        print(f"{k:6s} {v:12.6f} ± {s:.2g}   exp {e if e is not None else '-'}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from nnpot.nuclear.validate import check

    res = check(_load(args.model))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    dev = res["deviations"]
    tl, fitted = dev["tlab_mev"], dev["fitted_mev"]
    print("wave  rms[deg] chi2/pt(data) chi2/pt(comb) | model - PWA93 [deg] at T_lab "
          "(* = not fitted)")
    print(" " * 43 + "".join(f"{t:>7.0f}{'' if t in fitted else '*'}" for t in tl))
    for w, v in dev["waves"].items():
        cells = "".join(f"{x:8.3f}" for x in v["dev_deg"])
        print(f"{w:5s} {v['rms_deg']:8.3f} {v['chi2_per_point_data']:13.3f} "
              f"{v['chi2_per_point']:13.4f} |{cells}")
    m = res["mesh"]
    print(f"mesh {m['n']} -> {m['n_big']}: max phase change {m['max_phase_change_deg']:.2e} deg "
          f"({m['where'][0]}, {m['where'][1]:.0f} MeV), B_d change {m['bd_change_kev']:.2e} keV")
    worst = max(res["smoothness"].items(), key=lambda kv: kv[1]["ratio"])
    print(f"smoothness (1-MeV second differences, model / PWA93 spline): worst {worst[0]} "
          f"{worst[1]['model_max_d2_deg']:.3g} / {worst[1]['pwa_spline_max_d2_deg']:.3g} deg")
    for k, v in res["deuteron"].items():
        e = v["experiment"]
        print(f"{k:6s} {v['model']:12.6f}   exp {e if e is not None else '-'}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from nnpot.plotting.nuclear import plot_phase_shifts

    paths = plot_phase_shifts(_load(args.model), args.out)
    print(f"wrote {len(paths)} plots to {args.out}")
    return 0
