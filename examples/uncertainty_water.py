"""Error bars you can check: a committee with an aleatoric head on the shipped water set.

What ``nnpot fit`` does with ``[model] committee = 4`` and ``aleatoric = true``, from
Python: train, store the validation-split recalibration and the descriptor domain in the
model file, then ask for calibrated σ and out-of-domain flags through the ASE calculator.

* ``energy_std`` (eV): committee spread (epistemic); ``energy_aleatoric_std`` (eV): the
  heteroscedastic head; ``energy_sigma`` (eV): both combined, σ² = σ_epi² + σ_alea²,
  scaled by the factor fitted on the validation split.
* ``forces_std`` (eV/Å, per atom): committee deviation; ``forces_sigma`` (eV/Å, per force
  component): its recalibrated value (the head has no force part).
* ``ood`` / ``ood_atoms``: descriptor-space domain check that does not use the committee.

Prints test-split calibration (coverage of the 68 % / 95 % intervals, miscalibration
area, NLL) and the uncertainties of one held-out box, of a monomer and of the same box
compressed by 12 % (out of domain). Runs in a few minutes on one core.

Run:  python examples/uncertainty_water.py [--epochs 20] [--out OUT]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from nnpot.atomistic.calculator import load_calculator
from nnpot.atomistic.workflow import fit
from nnpot.config import FitConfig, parse_config
from nnpot.data import path as data_path


def main(epochs: int = 20, out: Path | None = None) -> None:
    torch.set_num_threads(1)
    out = Path(out or tempfile.mkdtemp(prefix="nnpot_uq_"))
    cfg = parse_config(FitConfig, {
        "model": {"committee": 4, "aleatoric": True},
        "data": {"valid_fraction": 0.2, "test_fraction": 0.2},
        "training": {"epochs": epochs, "lr": 0.01, "lr_final": 0.001, "batch_size": 4,
                     "forces_weight": 10.0, "beta_nll": 0.5}})
    res = fit(cfg, out / "water.nnp", data=str(data_path("water_xtb")), progress=False)
    test = res.metrics["test"]
    print(f"test RMSE: {test['energy_rmse_mev_atom']:.2f} meV/atom, "
          f"{test['forces_rmse_mev_ang']:.0f} meV/Å; recalibration factors "
          f"E {res.header['uq']['energy']['scale']:.2f}, "
          f"F {res.header['uq']['forces']['scale']:.2f}")
    for key, cal in test["calibration"].items():
        print(f"  {key:20s} cov68 {cal['coverage_68']:.2f}  cov95 {cal['coverage_95']:.2f}  "
              f"area {cal['miscalibration_area']:.3f}  NLL {cal['nll']:.2f}  "
              f"Spearman {cal['spearman']:.2f}")

    import ase.io

    frames = ase.io.read(data_path("water_xtb"), ":")
    calc = load_calculator(out / "water.nnp")
    box = next(frames[k] for k in res.splits["test"] if frames[k].pbc.all())
    monomer = next((frames[k] for k in res.splits["test"] if len(frames[k]) == 3),
                   Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    squeezed = box.copy()
    squeezed.set_cell(box.cell * 0.88, scale_atoms=True)
    for name, atoms in (("held-out box", box), ("monomer", monomer),
                        ("box compressed 12 %", squeezed)):
        atoms = atoms.copy()
        atoms.calc = calc
        e = atoms.get_potential_energy()
        r = calc.results
        n = len(atoms)
        print(f"{name:20s} E/N {e / n:9.4f} eV  σ_E/N: committee "
              f"{1e3 * r['energy_std'] / n:.2f}, head {1e3 * r['energy_aleatoric_std'] / n:.2f},"
              f" calibrated {1e3 * r['energy_sigma'] / n:.2f} meV/atom; "
              f"max σ_F {1e3 * np.max(r['forces_sigma']):.0f} meV/Å; "
              f"out of domain: {r['ood']} ({int(np.sum(r['ood_atoms']))}/{n} atoms)")
    print(f"model and run files in {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    main(a.epochs, a.out)
