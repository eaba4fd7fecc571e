"""Accuracy benchmark: nnpot vs a TorchANI model on the shipped GFN2-xTB water set.

Both models are trained by this script on the same data, the same train / validation /
test split (``nnpot.atomistic.data.split_indices`` with the same seed) and the same
wall-clock budget on the same machine and thread count, on energies and forces with the
same loss (nnpot's, see ``nnpot.atomistic.train``):

    L = ⟨ ((E_pred − E)/N)² / σ_E² + |F_pred − F|²/(3N) / σ_F² ⟩_structures

σ_E: RMS of the per-atom energy after least-squares element reference energies, σ_F: RMS
force component, both from the training split. Reported on the test split: energy RMSE
(meV/atom) and force RMSE (meV/Å), and the ratios nnpot / TorchANI (< 1: nnpot better).

nnpot: ``nnpot.atomistic.workflow.fit`` with the default ``FitConfig`` (6 Å cosine cutoff
for radial and angular functions, [25, 25] SiLU networks, float64, AdamW 3e-3 → 1e-4,
batch 8). Its learning-rate schedule is epoch-based; the script's ``log`` hook resets
``training.epochs`` after every epoch from the measured epoch time, so the schedule ends
with the budget (:class:`TimeSchedule`; ``training.max_time`` stops the loop).

TorchANI: ``torchani.aev.AEVComputer.like_1x`` (5.2 Å radial / 3.5 Å angular, 16 radial
shells, 4 × 8 angular terms) and ``torchani.nn.ANINetworks.like_1x`` on H and O
(ANI-1x shapes, CELU), least-squares self energies, float32 (TorchANI's usual training
dtype), AdamW 3e-3 → 1e-4 (nnpot's values; 3e-3 beat 1e-3 and 1e-2 for this model here)
decaying exponentially in elapsed time over the budget, batch 8, best validation epoch
kept. Periodic boxes: the half pair list is computed once per structure by vesin and the
pair vectors are rebuilt in torch every step (``AEVComputer.compute_from_neighbors``), so
forces come from autograd; the script checks that these AEVs equal TorchANI's own periodic
``AEVComputer.forward``. Optionally (full mode) a TorchANI model with 6 Å radial and
angular cutoffs and the same shell spacing.

Budget: nnpot's training loop gets ``budget`` seconds (``training.max_time``); it
precomputes descriptors and their Jacobians before the loop, so TorchANI's training loop
gets nnpot's whole time (set-up + loop). TorchANI's own set-up (neighbour lists, a few s)
and the final test evaluation of both are not counted. Another row trains nnpot with 8
radial shells instead of its default 24 (an n2p2-format descriptor file; same loop budget).

Run: ``python benchmarks/bench_accuracy.py [--quick]`` (or through ``benchmarks/run.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nnpot.atomistic.data import read_frames, split_indices

ELEMENTS = ("H", "O")
Z_OF = {"H": 1, "O": 8}
SPLIT = {"valid_fraction": 0.1, "test_fraction": 0.1, "split_seed": 0}
BUDGET_S = {True: 120.0, False: 600.0}  # quick / full, per model
RESULTS = Path(__file__).resolve().parent / "results"
os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")  # CUDA extensions: not used


def water_data_file() -> Path:
    """The shipped GFN2-xTB water set (one extxyz file of the ``water_xtb`` package)."""
    from nnpot.data import path

    p = Path(path("water_xtb"))
    if p.is_file():
        return p
    files = sorted(p.glob("*.extxyz")) + sorted(p.glob("*.xyz"))
    if not files:
        raise FileNotFoundError(f"no extxyz file in {p}")
    return max(files, key=lambda f: f.stat().st_size)


def rmse_report(frames, energies, forces) -> dict:
    """Energy RMSE per atom (meV/atom) and force-component RMSE (meV/Å), and MAEs."""
    e = np.array([(ep - f.energy) / len(f) for f, ep in zip(frames, energies, strict=True)])
    df = np.concatenate([(fp - f.forces).ravel() for f, fp in zip(frames, forces,
                                                                   strict=True)])
    return {"energy_rmse_mev_atom": 1e3 * float(np.sqrt(np.mean(e**2))),
            "energy_mae_mev_atom": 1e3 * float(np.mean(np.abs(e))),
            "forces_rmse_mev_ang": 1e3 * float(np.sqrt(np.mean(df**2))),
            "forces_mae_mev_ang": 1e3 * float(np.mean(np.abs(df)))}


# --- nnpot ----------------------------------------------------------------------------
class TimeSchedule:
    """``log`` hook for ``nnpot fit`` that makes its epoch-based learning-rate schedule
    follow the wall-clock budget.

    nnpot sets lr_e = lr·(lr_final/lr)^(e/(E−1)) at the start of epoch e, reading E =
    ``cfg.epochs`` every epoch. After e epochs in t seconds of loop this hook sets
    E = e·T/t + 1 (at least e + 1), so the next epoch's exponent is ≈ t/T: the schedule
    ends when the budget T does, and ``max_time`` (not E) stops the loop.
    """

    def __init__(self, cfg_training, budget: float):
        self.cfg, self.budget, self.records = cfg_training, budget, []

    def __call__(self, rec: dict) -> None:
        self.records.append((time.perf_counter(), rec))
        e, t = rec["epoch"], max(rec["time_s"], 1e-6)
        self.cfg.epochs = max(e + 1, round(e * self.budget / t) + 1)


def n2p2_text(n_radial: int, cutoff: float = 6.0) -> str:
    """nnpot's automatic grid with ``n_radial`` radial shells, written as an n2p2
    ``input.nn`` (the user-level way to give nnpot other symmetry functions)."""
    from nnpot.atomistic.descriptors import default_spec

    spec = default_spec(list(ELEMENTS), cutoff=cutoff, n_radial=n_radial)
    lines = ["cutoff_type 1"]
    for c in ELEMENTS:
        lines += [f"symfunction_short {c} 2 {n} {eta!r} {rs!r} {cutoff!r}"
                  for n in ELEMENTS for eta, rs in spec.radial]
        lines += [f"symfunction_short {c} 9 {a} {b} {eta!r} {lam!r} {zeta!r} {cutoff!r}"
                  for k, a in enumerate(ELEMENTS) for b in ELEMENTS[k:]
                  for _, eta, zeta, lam, _ in spec.angular]
    return "\n".join(lines) + "\n"


def run_nnpot(data: Path, frames, budget: float, dtype: str = "float64",
              n_radial: int | None = None) -> dict:
    """Train nnpot with its defaults (optionally ``n_radial`` radial shells instead of 24,
    given as an n2p2 descriptor file); test-set errors and timings."""
    from nnpot.atomistic.workflow import fit
    from nnpot.config import FitConfig

    cfg = FitConfig()
    tmp_desc = None
    if n_radial is not None:
        tmp_desc = tempfile.NamedTemporaryFile("w", suffix=".nn", delete=False)
        tmp_desc.write(n2p2_text(n_radial))
        tmp_desc.close()
        cfg.model.descriptors = tmp_desc.name
    cfg.data.valid_fraction = SPLIT["valid_fraction"]
    cfg.data.test_fraction = SPLIT["test_fraction"]
    cfg.data.split_seed = SPLIT["split_seed"]
    cfg.training.dtype = dtype
    cfg.training.max_time = budget
    cfg.training.patience = 10**6  # the budget stops training; best validation epoch kept
    tr, va, te = split_indices(len(frames), **_split_args())
    cfg.training.epochs = 10**6  # TimeSchedule sets it from the measured epoch time
    hook = TimeSchedule(cfg.training, budget)
    t0 = time.perf_counter()
    c0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        res = fit(cfg, Path(tmp) / "water.nnp", data=str(data), progress=False, log=hook)
        report = json.loads((res.run_dir / "report.json").read_text())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if tmp_desc is not None:
        os.unlink(tmp_desc.name)
    assert np.array_equal(res.splits["test"], te), "nnpot used a different test split"
    t_last, rec_last = hook.records[-1]
    loop_s = rec_last["time_s"]
    setup_s = (t_last - t0) - loop_s
    test = res.metrics["test"]
    n_params = sum(p.numel() for p in res.model.heads.parameters())
    name = "nnpot" if n_radial is None else f"nnpot n_radial={n_radial}"
    return {"model": name, "dtype": dtype, "cutoff": "6.0 Å radial+angular (cosine)",
            "features_per_atom": res.model.spec.n_features(), "params": int(n_params),
            "hidden": list(cfg.model.hidden), "epochs": report["training"]["epochs"],
            "best_epoch": report["training"]["best_epoch"],
            "lr_last_epoch": rec_last["lr"],
            "setup_s": setup_s, "train_loop_s": loop_s, "train_total_s": setup_s + loop_s,
            "wall_s": wall, "cpu_s": cpu,
            "energy_rmse_mev_atom": test["energy_rmse_mev_atom"],
            "energy_mae_mev_atom": test["energy_mae_mev_atom"],
            "forces_rmse_mev_ang": test["forces_rmse_mev_ang"],
            "forces_mae_mev_ang": test["forces_mae_mev_ang"],
            "valid": res.metrics["valid"]}


def _split_args() -> dict:
    return {"valid_fraction": SPLIT["valid_fraction"], "test_fraction":
            SPLIT["test_fraction"], "seed": SPLIT["split_seed"]}


# --- TorchANI -------------------------------------------------------------------------
class AniPotential(torch.nn.Module):
    """TorchANI AEVs + ANI-1x-shaped per-element networks; E = Σ_i NN_{Z_i}(AEV_i) (eV)
    on top of least-squares self energies (kept in float64 outside the network)."""

    def __init__(self, radial_cutoff: float = 5.2, angular_cutoff: float = 3.5):
        super().__init__()
        from torchani.aev import AEVComputer
        from torchani.nn import ANINetworks

        # ANI-1x shells: 16 radial on [0.9, 5.2), 4 angular on [0.9, 3.5); same spacing
        # when the cutoffs are larger
        n_rad = max(16, round(16 * (radial_cutoff - 0.9) / (5.2 - 0.9)))
        n_ang = max(4, round(4 * (angular_cutoff - 0.9) / (3.5 - 0.9)))
        self.aev = AEVComputer.like_1x(num_species=len(ELEMENTS),
                                       radial_cutoff=radial_cutoff, radial_num_shifts=n_rad,
                                       angular_cutoff=angular_cutoff,
                                       angular_num_shifts=n_ang)
        self.nets = ANINetworks.like_1x(symbols=ELEMENTS, in_dim=self.aev.out_dim)
        self.cutoffs = (radial_cutoff, angular_cutoff)

    def forward(self, species, coords, pairs, shift_vec, struct, n_struct):
        """Energies (n_struct,) eV of structures flattened into one atom list."""
        from torchani.neighbors import Neighbors

        diff = coords[pairs[0]] - coords[pairs[1]] - shift_vec  # r_i − (r_j + S·h)
        nb = Neighbors(pairs, diff.norm(dim=-1), diff)
        aev = self.aev.compute_from_neighbors(species[None], coords[None], nb)
        e_atom = self.nets(species[None], aev, atomic=True)[0]
        return e_atom.new_zeros(n_struct).index_add(0, struct, e_atom)


def ani_prepare(frames, cutoff: float, sae: np.ndarray, dtype) -> list[dict]:
    """Per structure: species, positions, half pair list (vesin), shift vectors S·h,
    energy minus self energies (float64), forces."""
    import vesin

    out = []
    for f in frames:
        sp = np.searchsorted([Z_OF[e] for e in ELEMENTS], f.numbers)
        box = np.asarray(f.cell, float) if f.pbc.any() else np.zeros((3, 3))
        nl = vesin.NeighborList(cutoff=cutoff, full_list=False)
        i, j, s = nl.compute(points=np.asarray(f.positions, float), box=box,
                             periodic=[bool(p) for p in f.pbc], quantities="ijS")
        out.append({"species": torch.as_tensor(sp, dtype=torch.int64),
                    "pos": torch.as_tensor(f.positions, dtype=dtype),
                    "pairs": torch.as_tensor(np.stack([i, j]), dtype=torch.int64),
                    "shift": torch.as_tensor(s @ box, dtype=dtype),
                    "e_res": float(f.energy - sae[sp].sum()), "n": len(f),
                    "forces": torch.as_tensor(f.forces, dtype=dtype)})
    return out


def ani_predict(model, items, create_graph: bool):
    """Residual energies (B,) and forces (list of (n, 3)) for a list of prepared items."""
    off, sp, pos, pairs, shift, struct = 0, [], [], [], [], []
    for b, it in enumerate(items):
        sp.append(it["species"])
        pos.append(it["pos"])
        pairs.append(it["pairs"] + off)
        shift.append(it["shift"])
        struct.append(torch.full((it["n"],), b, dtype=torch.int64))
        off += it["n"]
    coords = torch.cat(pos).requires_grad_(True)
    e = model(torch.cat(sp), coords, torch.cat(pairs, 1), torch.cat(shift),
              torch.cat(struct), len(items))
    (g,) = torch.autograd.grad(e.sum(), coords, create_graph=create_graph)
    return e, list(torch.split(-g, [it["n"] for it in items]))


def chunks(items, max_atoms: int):
    out, n = [], 0
    for it in items:
        if out and n + it["n"] > max_atoms:
            yield out
            out, n = [], 0
        out.append(it)
        n += it["n"]
    if out:
        yield out


def ani_errors(model, items, max_atoms: int) -> tuple[list, list]:
    """Predicted residual energies and forces (float64 NumPy) for ``items``."""
    es, fs = [], []
    for ch in chunks(items, max_atoms):
        e, f = ani_predict(model, ch, create_graph=False)
        es += e.detach().double().tolist()
        fs += [x.detach().double().numpy() for x in f]
    return es, fs


def run_torchani(frames, tr, va, te, budget: float, radial: float = 5.2,
                 angular: float = 3.5, dtype=torch.float32, lr: float = 3e-3,
                 lr_final: float = 1e-4, batch_size: int = 8, max_atoms: int = 4000,
                 seed: int = 0) -> dict:
    """Train the TorchANI model for ``budget`` s of training loop; test-set errors."""
    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    train_f, valid_f, test_f = ([frames[k] for k in idx] for idx in (tr, va, te))
    counts = np.array([[np.sum(f.numbers == Z_OF[e]) for e in ELEMENTS] for f in train_f])
    sae = np.linalg.lstsq(counts, np.array([f.energy for f in train_f]), rcond=None)[0]
    model = AniPotential(radial, angular).to(dtype)
    prep = {k: ani_prepare(fs, radial, sae, dtype) for k, fs in
            (("train", train_f), ("valid", valid_f), ("test", test_f))}
    if angular < radial:  # TorchANI's own forward needs angular < radial cutoff
        check_aev_against_torchani(model, train_f[:3])
    sig_e = float(np.sqrt(np.mean([(it["e_res"] / it["n"])**2 for it in prep["train"]])))
    sig_f = float(torch.cat([it["forces"].reshape(-1) for it in prep["train"]])
                  .double().pow(2).mean().sqrt())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-6)
    setup_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    best, best_state, epoch, best_epoch = math.inf, None, 0, 0
    t_loop = time.perf_counter()
    stop = False
    while not stop:
        perm = rng.permutation(len(prep["train"]))
        for start in range(0, len(perm), batch_size):
            frac = (time.perf_counter() - t_loop) / budget
            if frac >= 1.0:  # out of time inside an epoch (slow models): stop here
                stop = True
                break
            for gr in opt.param_groups:
                gr["lr"] = lr * (lr_final / lr) ** frac
            batch = [prep["train"][k] for k in perm[start:start + batch_size]]
            opt.zero_grad()
            for ch in chunks(batch, max_atoms):  # gradient accumulation bounds memory
                e, f = ani_predict(model, ch, create_graph=True)
                n = torch.tensor([it["n"] for it in ch], dtype=dtype)
                ref = torch.tensor([it["e_res"] for it in ch], dtype=torch.float64)
                le = (((e.double() - ref) / n.double()) ** 2).sum() / sig_e**2
                lf = sum(((fp - it["forces"]) ** 2).mean() for fp, it in
                         zip(f, ch, strict=True)) / sig_f**2
                ((le.to(dtype) + lf) / len(batch)).backward()
            opt.step()
        epoch += 1 if not stop else start / len(perm)  # fraction of a cut-off epoch
        e, f = ani_errors(model, prep["valid"], max_atoms)
        v = rmse_report(valid_f, [x + sae_sum(fr, sae) for x, fr in zip(e, valid_f,
                                                                         strict=True)], f)
        vloss = ((v["energy_rmse_mev_atom"] / 1e3 / sig_e) ** 2
                 + (v["forces_rmse_mev_ang"] / 1e3 / sig_f) ** 2)
        if vloss < best:
            best, best_epoch = vloss, epoch
            best_state = {k: x.detach().clone() for k, x in model.state_dict().items()}
        stop = stop or time.perf_counter() - t_loop >= budget
    loop_s = time.perf_counter() - t_loop
    model.load_state_dict(best_state)
    e, f = ani_errors(model, prep["test"], max_atoms)
    test = rmse_report(test_f, [x + sae_sum(fr, sae) for x, fr in zip(e, test_f,
                                                                       strict=True)], f)
    return {"model": "torchani", "dtype": str(dtype).replace("torch.", ""),
            "cutoff": f"{radial:g} Å radial / {angular:g} Å angular (cosine)",
            "features_per_atom": model.aev.out_dim,
            "params": int(sum(p.numel() for p in model.nets.parameters())),
            "hidden": {s: [m.out_features for m in model.nets[s].layers] for s in ELEMENTS},
            "epochs": epoch, "best_epoch": best_epoch, "lr": [lr, lr_final],
            "setup_s": setup_s, "train_loop_s": loop_s, "train_total_s": setup_s + loop_s,
            "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, **test,
            "valid": {k: v[k] for k in ("energy_rmse_mev_atom", "forces_rmse_mev_ang")}}


def sae_sum(frame, sae) -> float:
    return float(sum(sae[ELEMENTS.index(e)] for e in frame.symbols))


def check_aev_against_torchani(model: AniPotential, frames) -> None:
    """Our pair-list path must reproduce TorchANI's own (periodic) AEVComputer.forward."""
    from torchani.neighbors import Neighbors

    dtype = next(model.nets.parameters()).dtype
    aev = model.aev.double()
    try:
        for f in frames:
            it = ani_prepare([f], model.cutoffs[0], np.zeros(len(ELEMENTS)),
                             torch.float64)[0]
            sp, pos = it["species"][None], it["pos"][None]
            diff = pos[0][it["pairs"][0]] - pos[0][it["pairs"][1]] - it["shift"]
            ours = aev.compute_from_neighbors(sp, pos, Neighbors(it["pairs"],
                                                                 diff.norm(dim=-1), diff))
            pbc = torch.as_tensor(f.pbc) if f.pbc.any() else None
            cell = torch.as_tensor(f.cell, dtype=torch.float64) if f.pbc.any() else None
            ref = aev(sp, pos, cell, pbc)
            err = float((ours - ref).abs().max())
            if err > 1e-8:
                raise RuntimeError(f"AEV mismatch vs torchani ({err:.2e})")
    finally:
        model.aev.to(dtype)


# --- driver ---------------------------------------------------------------------------
def main(out_dir: Path = RESULTS, quick: bool = False, data: str | None = None,
         budget: float | None = None, threads: int = 2, large_cutoff: bool | None = None,
         dense: int | None = 8, ani_lr: float = 3e-3) -> dict:
    """Train the models, write ``out_dir/accuracy.json``, return the result with a
    ``table`` (rows of plain values) for the benchmark driver.

    Rows: nnpot with its defaults; TorchANI (ANI-1x AEVs and networks) with the same
    total wall time; with ``dense`` also nnpot with ``dense`` radial shells (a user-level
    n2p2 descriptor file); with ``large_cutoff`` (default: full mode) also TorchANI with
    6 Å radial and angular cutoffs.
    """
    torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = Path(data) if data else water_data_file()
    budget = BUDGET_S[quick] if budget is None else budget
    large_cutoff = (not quick) if large_cutoff is None else large_cutoff
    frames = read_frames(data_path, require=("energy", "forces"))
    tr, va, te = split_indices(len(frames), **_split_args())
    load = [os.getloadavg()[0]]
    runs = [run_nnpot(data_path, frames, budget)]
    load.append(os.getloadavg()[0])
    same_total = runs[0]["train_total_s"]  # TorchANI gets nnpot's set-up + loop time
    runs.append(run_torchani(frames, tr, va, te, same_total, lr=ani_lr))
    load.append(os.getloadavg()[0])
    if dense:
        runs.append(run_nnpot(data_path, frames, budget, n_radial=dense))
        load.append(os.getloadavg()[0])
    if large_cutoff:  # TorchANI with nnpot's 6 Å for radial and angular terms
        runs.append(run_torchani(frames, tr, va, te, same_total, 6.0, 6.0, lr=ani_lr,
                                 max_atoms=200))
        load.append(os.getloadavg()[0])
    peer = runs[1]
    table = []
    for r in runs:
        table.append({"model": r["model"], "cutoff": r["cutoff"], "dtype": r["dtype"],
                      "features": r["features_per_atom"], "params": r["params"],
                      "epochs": round(r["epochs"], 2), "train_s": round(r["train_total_s"], 1),
                      "E_rmse_meV_atom": round(r["energy_rmse_mev_atom"], 3),
                      "F_rmse_meV_A": round(r["forces_rmse_mev_ang"], 2),
                      "E_ratio_vs_torchani": round(r["energy_rmse_mev_atom"]
                                                   / peer["energy_rmse_mev_atom"], 3),
                      "F_ratio_vs_torchani": round(r["forces_rmse_mev_ang"]
                                                   / peer["forces_rmse_mev_ang"], 3)})
    n_atoms = [len(f) for f in frames]
    result = {
        "benchmark": "accuracy", "quick": quick, "data": str(data_path),
        "n_structures": len(frames), "atoms_per_structure": [min(n_atoms), max(n_atoms)],
        "split": {"train": len(tr), "valid": len(va), "test": len(te), **SPLIT},
        "budget_s": budget, "threads": threads, "torch": torch.__version__,
        "torchani": __import__("torchani").__version__,
        "nnpot_commit": _commit(), "machine": _machine(), "load_average_1min": load,
        "runs": runs, "table": table,
        "ratio_nnpot_over_torchani": {"energy": table[0]["E_ratio_vs_torchani"],
                                      "forces": table[0]["F_ratio_vs_torchani"]},
    }
    from nnpot.io import atomic_write_json

    atomic_write_json(out_dir / "accuracy.json", json.loads(json.dumps(result, default=str)))
    return result


def _commit() -> str:
    """Git commit of the nnpot sources used (``+dirty`` with uncommitted changes)."""
    import subprocess

    import nnpot

    src = Path(nnpot.__file__).resolve().parent
    if os.environ.get("NNPOT_COMMIT"):  # runs from an exported snapshot of the sources
        return os.environ["NNPOT_COMMIT"]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=src,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=src,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"unknown ({src})"
    return rev + ("+dirty" if dirty else "")


def _machine() -> str:
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible"


def _print_table(rows) -> None:
    keys = list(rows[0])
    width = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, width, strict=True)))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, width, strict=True)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="120 s per model instead of 600 s")
    ap.add_argument("--data", help="extxyz file (default: the shipped water_xtb set)")
    ap.add_argument("--budget", type=float, help="seconds of training per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--large-cutoff", action=argparse.BooleanOptionalAction, default=None,
                    help="also train TorchANI with 6 Å radial and angular cutoffs")
    ap.add_argument("--dense", type=int, default=8,
                    help="also nnpot with this many radial shells (0: skip)")
    ap.add_argument("--ani-lr", type=float, default=3e-3, help="TorchANI initial lr")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args()
    res = main(Path(a.out), a.quick, a.data, a.budget, a.threads, a.large_cutoff,
               a.dense or None, a.ani_lr)
    _print_table(res["table"])
    sys.exit(0)
