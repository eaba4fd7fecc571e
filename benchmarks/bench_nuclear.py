"""Nuclear benchmark: one forward + backward pass of the full chi2 over all np channels
(J <= 4) and the ten PWA93 energies, and the fit of one committee member (seconds).

    python benchmarks/bench_nuclear.py [OUT_DIR]

``main(out_dir, quick=False) -> dict`` with a ``"table"`` of rows (see benchmarks/run.py).
The full committee fit time is read from the shipped model's header (measured when it was
made, see src/nnpot/data/nuclear/README.md).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch


def main(out_dir: Path | str = "benchmarks/results", quick: bool = False) -> dict:
    from nnpot.nuclear import fit as F
    from nnpot.nuclear.mesh import default_mesh
    from nnpot.nuclear.modelfile import shipped_model_path
    from nnpot.nuclear.potential import NuclearPotential

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    mesh = default_mesh(48)
    data = F.make_data()
    model = NuclearPotential(short={"hidden": 8})
    F.loss_terms(model, data, mesh)["total"].backward()  # warm-up, fills the pion cache
    reps = 2 if quick else 5
    times = []
    for _ in range(reps):
        model.zero_grad()
        t0 = time.perf_counter()
        F.loss_terms(model, data, mesh)["total"].backward()
        times.append(time.perf_counter() - t0)
    rows = [{"what": "forward+backward, 14 channels x 10 energies, mesh 48",
             "seconds": min(times), "target_s": 1.0}]
    from nnpot.nuclear.pipeline import FitConfig, build_model

    m2 = build_model(FitConfig(), 0)
    t0 = time.perf_counter()
    F.fit(m2, data, mesh, max_iter=50 if quick else 300)
    rows.append({"what": "one committee member, all 14 channels (Levenberg-Marquardt)",
                 "seconds": time.perf_counter() - t0, "target_s": float("nan")})
    path = shipped_model_path()
    if path.is_file():
        from nnpot.nuclear.modelfile import load_model

        prov = load_model(path).header.get("provenance", {})
        rows.append({"what": "full fit of the shipped model (committee of 3, from its header)",
                     "seconds": float(prov.get("fit_seconds", float("nan"))),
                     "target_s": 600.0})
    res = {"name": "nuclear", "threads": torch.get_num_threads(), "table": rows}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_nuclear.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results"), indent=2))
