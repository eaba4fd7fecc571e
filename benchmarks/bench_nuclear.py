"""Nuclear benchmark (seconds, one process; threads as set by OMP_NUM_THREADS, max 2):

* forward + backward of the full chi2 (all 14 np channels J <= 4, ten PWA93 energies, B_d)
  by autograd through the Lippmann-Schwinger solver, for the shipped architecture;
* one evaluation of all channels' residuals and exact Jacobians (what each
  Levenberg-Marquardt iteration of the fit uses, :mod:`nnpot.nuclear.lsq`);
* the fit of one committee member (all channels, as in ``nnpot nuclear fit``);
* the full committee fit of the shipped model, read from its header (measured when it was
  made, see src/nnpot/data/nuclear/README.md).

    python benchmarks/bench_nuclear.py [OUT_DIR]

``main(out_dir, quick=False) -> dict`` with a ``"table"`` of rows (see benchmarks/run.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch


def main(out_dir: Path | str = "benchmarks/results", quick: bool = False) -> dict:
    from nnpot.nuclear import fit as F
    from nnpot.nuclear import lsq
    from nnpot.nuclear.mesh import default_mesh
    from nnpot.nuclear.modelfile import shipped_model_path
    from nnpot.nuclear.pipeline import FitConfig, build_model

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    mesh = default_mesh(48)
    data = F.make_data()
    model = build_model(FitConfig(), 0)
    F.loss_terms(model, data, mesh)["total"].backward()  # warm-up: pion/Yukawa caches
    reps = 2 if quick else 5
    times = []
    for _ in range(reps):
        model.zero_grad()
        t0 = time.perf_counter()
        F.loss_terms(model, data, mesh)["total"].backward()
        times.append(time.perf_counter() - t0)
    rows = [{"what": "forward+backward (autograd), 14 channels x 10 energies + B_d, mesh 48",
             "seconds": min(times), "target_s": 1.0}]
    probs = []
    for c in data.channels:
        dc = F.channel_data(data, c)
        probs.append((lsq.Problem(model, c, mesh, dc.p0, dc.target, dc.sigma, dc.weight,
                                  sigma_b=0.0005 if "3S1" in dc.waves else None),
                      lsq.parameter_names(model, c)))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for prob, names in probs:
            lsq.residuals(prob, names)
        times.append(time.perf_counter() - t0)
    rows.append({"what": "residuals + exact Jacobians, all channels (one LM iteration)",
                 "seconds": min(times), "target_s": 1.0})
    if not quick:
        from nnpot.nuclear.pipeline import run_fit

        t0 = time.perf_counter()
        run_fit(FitConfig(committee=1))  # the shipped settings, one member
        rows.append({"what": "nnpot nuclear fit, committee of 1 (chiral orders + member)",
                     "seconds": time.perf_counter() - t0, "target_s": float("nan")})
    path = shipped_model_path()
    if path.is_file():
        from nnpot.nuclear.modelfile import load_model

        prov = load_model(path).header.get("provenance", {})
        rows.append({"what": "full fit of the shipped model (committee of 3, wall, header)",
                     "seconds": float(prov.get("fit_seconds", float("nan"))),
                     "target_s": 600.0})
        rows.append({"what": "  the same, CPU seconds of the process (header)",
                     "seconds": float(prov.get("fit_cpu_seconds", float("nan"))),
                     "target_s": 600.0})
    res = {"name": "nuclear", "threads": torch.get_num_threads(), "table": rows}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_nuclear.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results"), indent=2))
