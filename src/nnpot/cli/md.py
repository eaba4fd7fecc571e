"""`nnpot md`: molecular dynamics with a trained model."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("md", help="run molecular dynamics with a model (ASE)")
    p.add_argument("model", help="model file (.nnp)")
    p.add_argument("structure", help="starting structure (any file ASE reads; first frame)")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--dt", type=float, default=0.5, help="time step in fs")
    p.add_argument("--temperature", type=float, default=300.0, help="K")
    p.add_argument("--ensemble", choices=["nve", "langevin"], default="nve")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    p.add_argument("--out", required=True, help="trajectory (extxyz)")
    p.add_argument("--log", help="JSON-lines log of energies and temperature (default OUT.log)")
    p.add_argument("--interval", type=int, default=10, help="write a frame every N steps")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nnpot.atomistic.calculator import load_calculator
    from nnpot.atomistic.data import read_atoms
    from nnpot.atomistic.md import run_md

    atoms = read_atoms(args.structure, index="0")[0]
    atoms.calc = load_calculator(args.model, dtype=args.dtype)
    log = args.log or args.out + ".log"
    res = run_md(atoms, args.steps, args.dt, args.temperature, args.ensemble, args.friction,
                 traj=args.out, log=log, interval=args.interval, seed=args.seed,
                 progress=not args.quiet)
    n = len(atoms)
    print(f"{res.steps_done} steps of {n} atoms in {res.wall_s:.1f} s "
          f"({1000 * res.wall_s / max(res.steps_done, 1):.1f} ms/step); "
          f"final T = {res.temperature[-1]:.1f} K; "
          f"max |E_tot - E_tot(0)| = {res.drift_mev_per_atom(n):.3f} meV/atom")
    print(f"trajectory: {args.out}; log: {log}")
    return 0
