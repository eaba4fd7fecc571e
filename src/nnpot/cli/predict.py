"""`nnpot predict`: write predicted energies and forces (and committee spreads)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict energies/forces for structures, write extxyz")
    p.add_argument("model", help="model file (.nnp)")
    p.add_argument("data", help="structures (extxyz or ASE .db)")
    p.add_argument("--out", required=True, help="output extxyz")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import io

    import ase.io

    from nnpot.atomistic.data import read_frames
    from nnpot.atomistic.modelfile import load_model
    from nnpot.atomistic.workflow import predict_frames
    from nnpot.io import atomic_write_text

    model, header = load_model(args.model)
    frames = read_frames(args.data, require=())
    preds = predict_frames(model, frames, header=header)
    images = []
    for fr, p in zip(frames, preds, strict=True):
        a = fr.to_atoms()
        a.info["energy"] = p["energy"]
        a.arrays["forces"] = p["forces"]
        if model.n_members > 1:
            a.info["energy_std"] = p["energy_std"]
            a.arrays["forces_std"] = p["forces_std"]
            a.info["max_force_deviation"] = p["max_force_deviation"]
        for key in ("energy_sigma", "ood"):
            if key in p:
                a.info[key] = p[key]
        for key in ("forces_sigma", "ood_score"):
            if key in p:
                a.arrays[key] = p[key]
        if "stress" in p:
            a.info["stress"] = p["stress"]
        images.append(a)
    buf = io.StringIO()
    ase.io.write(buf, images, format="extxyz")
    atomic_write_text(args.out, buf.getvalue())
    print(f"wrote {len(images)} structures to {args.out}")
    return 0
