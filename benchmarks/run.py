"""`make bench`: run every benchmarks/bench_*.py, write JSON results, print one table.

Each benchmark module exposes ``main(out_dir: Path, quick: bool = False) -> dict`` whose
``"table"`` is a list of rows (dicts). Figures are ratios against a peer measured in the
same run, because these machines are shared and noisy.

    python benchmarks/run.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    import os

    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M")}


def print_table(name: str, rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    widths = {c: max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols}
    print(f"\n== {name} ==")
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(fmt(r.get(c, "")).ljust(widths[c]) for c in cols))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and budgets")
    ap.add_argument("--only", nargs="*", help="benchmark names (e.g. speed accuracy)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(), "benchmarks": {}}
    failed = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem[len("bench_"):]
        if args.only and name not in args.only:
            continue
        print(f"\n### {name} ({path.name}) ...", flush=True)
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        t0 = time.perf_counter()
        try:
            spec.loader.exec_module(mod)
            res = mod.main(out, quick=args.quick)
        except Exception:  # one failing benchmark must not hide the others
            traceback.print_exc()
            failed.append(name)
            continue
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["benchmarks"][name] = res
        print_table(name, res.get("table", []))
    from nnpot.io import atomic_write_json

    atomic_write_json(out / "summary.json", json.loads(json.dumps(results, default=str)))
    print(f"\nresults in {out}/ ({', '.join(results['benchmarks'])})")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
