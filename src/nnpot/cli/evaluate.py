"""`nnpot eval`: errors of a model on labelled data."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser("eval", help="errors of a model on labelled structures")
    p.add_argument("model", help="model file (.nnp)")
    p.add_argument("data", help="labelled structures (extxyz or ASE .db)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--energy-key", default="REF_energy")
    p.add_argument("--forces-key", default="REF_forces")
    p.add_argument("--stress-key", default="REF_stress")
    p.add_argument("--parity", help="write a parity plot (PNG) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nnpot.atomistic.data import LabelKeys, read_frames
    from nnpot.atomistic.modelfile import load_model
    from nnpot.atomistic.workflow import evaluate, predict_frames

    model, header = load_model(args.model)
    frames = read_frames(args.data, LabelKeys(args.energy_key, args.forces_key,
                                              args.stress_key), require=())
    preds = predict_frames(model, frames, header=header)
    res = evaluate(model, frames, preds, header=header)
    if args.parity:
        from nnpot.plotting.atomistic import parity

        parity(frames, preds, args.parity)
    if args.json:
        print(json.dumps(res, default=float))
    else:
        _print_nested(res)
    return 0


def _print_nested(d: dict, indent: str = "") -> None:
    for k, v in d.items():
        if isinstance(v, dict):
            print(f"{indent}{k}:")
            _print_nested(v, indent + "  ")
        else:
            print(f"{indent}{k}: {v:.4g}" if isinstance(v, float) else f"{indent}{k}: {v}")
