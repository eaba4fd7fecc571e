"""Active learning of a water potential with GFN2-xTB, from ten clusters to MD.

What it does, with the public API of ``nnpot.active`` (the same as ``nnpot active``):

1. writes ten small water clusters (2–5 molecules) to ``OUT/initial.extxyz``;
2. writes a TOML configuration ``OUT/active.toml`` (GFN2-xTB oracle through tblite on a
   local process pool, four MD walkers at 300–450 K, calibrated trust interval, D-optimal
   batches of 8) and loads it as ``nnpot.active.ActiveConfig``;
3. runs ``ActiveLearning(cfg, OUT/run).run()`` — one summary line per iteration; a killed
   run continues with ``ActiveLearning.resume(OUT/run).run()`` (or ``nnpot active
   --resume OUT/run``) without labelling any structure twice;
4. runs 500 steps (0.25 ps) of NVE MD of a four-molecule cluster with the final committee
   and prints the energy drift and the largest committee force deviation met on the way.

Run:  python examples/active_water.py [--out OUT] [--iterations N] [--executor dask]
Units: eV, Å, eV/Å (meV/Å in summaries), fs, K.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import ase.io
import numpy as np

CONFIG = """\
seed = 0

[data]
initial = "{initial}"

[oracle]
kind = "xtb"
settings = {{ method = "GFN2-xTB", accuracy = 1.0 }}
timeout_s = 60.0
max_retries = 1

[executor]
kind = "{executor}"
workers = 2

[explore]
walkers = 4
steps = 200
dt_fs = 0.5
temperatures = [300.0, 450.0]
max_candidates = 3
candidate_stride = 10

[trust]
mode = "calibrated"
lower_factor = 1.0
upper_factor = 8.0

[select]
method = "d_optimal"
batch_size = 8

[loop]
max_iterations = {iterations}
retrain_epochs = 80

[model]
committee = 4
cutoff = 4.0
hidden = [16, 16]

[training]
epochs = 200
batch_size = 4
lr = 0.01
lr_final = 0.001
patience = 1000
"""


def main() -> None:
    import torch

    from nnpot import load_calculator, run_md
    from nnpot.active import ActiveConfig, ActiveLearning
    from nnpot.active.demo import water_cluster
    from nnpot.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="active_water", help="output folder")
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--executor", default="process", choices=("process", "thread", "dask"),
                    help="where GFN2-xTB runs (dask: a LocalCluster with 2 workers)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # small models: one thread each; oracles use the other cores

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    initial = out / "initial.extxyz"
    ase.io.write(initial, [water_cluster(n, rng) for n in (2, 2, 3, 3, 3, 4, 4, 4, 5, 5)])
    toml = out / "active.toml"
    toml.write_text(CONFIG.format(initial=initial.resolve(), executor=args.executor,
                                  iterations=args.iterations))
    cfg = load_config(ActiveConfig, toml)

    run_dir = out / "run"
    if (run_dir / "state.json").exists():  # a previous (maybe killed) run: continue it
        loop = ActiveLearning.resume(run_dir)
    else:
        loop = ActiveLearning(cfg, run_dir)
    state = loop.run()
    last = state.extra["history"][-1]
    print(textwrap.dedent(f"""\
        {last['labelled']} labelled structures, {last['failed']} failed; stopped because:
        {state.extra.get('stop_reason')}; final committee: {state.paths['model']}"""))

    atoms = water_cluster(4, np.random.default_rng(1), rattle=0.0)
    atoms.calc = load_calculator(state.paths["model"])
    sigma = []
    md = run_md(atoms, steps=500, dt_fs=0.5, temperature=300.0, ensemble="nve",
                traj=out / "md.extxyz", interval=10, seed=1,
                watchdog=lambda a, step: sigma.append(a.calc.results["max_force_deviation"]))
    print(f"NVE MD: {md.steps_done} steps of 0.5 fs, energy drift "
          f"{md.drift_mev_per_atom(len(atoms)):.2f} meV/atom, largest committee force "
          f"deviation {max(sigma):.2f} eV/Å; trajectory {out / 'md.extxyz'}")


if __name__ == "__main__":  # needed: the oracle's process pool re-imports this file
    main()
