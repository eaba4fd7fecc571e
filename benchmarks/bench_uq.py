"""Uncertainty benchmark: calibration of committee, aleatoric-head and combined σ on the
shipped GFN2-xTB water set, before and after recalibration, with TorchANI's ensemble
spread as a peer.

One split for everything (``split_indices(232, 0.2, 0.2, seed=0)``: 140 train, 46
validation, 46 test structures); recalibration is fitted on the validation split and every
metric is measured on the test split. nnpot models: defaults (6 Å cosine cutoff, [25, 25]
SiLU, float64, loss on energy per atom and forces) except ``TRAINING`` (lr 1e-2 → 1e-3,
batch 4, forces weight 10) and β-NLL (β = 0.5) for the head:

* ``committee``: M members on bootstrap resamples of the training split, MSE loss
  (``nnpot fit --committee M``); σ = the members' spread.
* ``committee+head``: the same committee with the heteroscedastic head (``[model]
  aleatoric = true``: MSE warm-up for 30 % of the epochs, then β-NLL of the energy per
  atom). From it: ``head`` (aleatoric σ only, σ_E² = ⟨Σ_i v_i⟩_members),
  ``committee part`` (its epistemic σ only) and ``combined`` (σ² = σ_epi² + σ_alea²).
* ``head M=1`` and ``head M=1, plain NLL`` (full mode): a single model with the head,
  trained with β-NLL (β = 0.5) and with the plain Gaussian NLL.
* ``committee (first K)``: σ of the first K members of ``committee``, K = the TorchANI
  ensemble size (same-size comparison with the peer).
* ``torchani ensemble``: K TorchANI models (``bench_accuracy.AniPotential``: ANI-1x AEVs
  and networks, float32, its lr 3e-3 → 1e-4) on bootstrap resamples of the same training
  split with the same loss, batch size and forces weight, fewer epochs (a TorchANI epoch
  recomputes the AEVs and costs ~6 nnpot member-epochs), best validation epoch kept;
  σ = the members' spread.

σ of the energy per atom = σ_E / N (eV/atom); σ of a force component = the per-atom
member deviation sqrt(⟨|F_m − F̄|²⟩_m) / √3 (eV/Å; the aleatoric head has no force part,
so ``combined`` forces are the committee part). Metrics (``nnpot.uq.calibration_report``):
coverage of the 68 % and 95 % central Gaussian intervals, miscalibration area, mean
Gaussian NLL (natural log, errors in eV/atom or eV/Å: lower is better), ENCE (10
equal-count σ bins), Spearman rank correlation of |error| with σ. Recalibration: ``scalar``
σ' = s σ (maximum likelihood on validation); ``isotonic`` (Kuleshov et al. 2018) interval
multipliers m(p): coverages and the area use m(p) σ, NLL/ENCE use σ' = m(0.6827) σ.

Run: ``python benchmarks/bench_uq.py [--quick]`` (or ``benchmarks/run.py --only uq``).
Writes ``uq.json`` and ``uq_*.png`` to the results folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
SPLIT = {"valid_fraction": 0.2, "test_fraction": 0.2, "seed": 0}
SETTINGS = {  # quick / full (a TorchANI epoch costs ~6x an nnpot member-epoch: fewer)
    True: {"members": 4, "epochs": 25, "single_head": False, "ani_members": 2,
           "ani_epochs": 8},
    False: {"members": 8, "epochs": 60, "single_head": True, "ani_members": 4,
            "ani_epochs": 25},
}
BETA_NLL = 0.5  # plain Gaussian NLL (β = 0) degrades the mean on water; see README_uq.md
LEVELS = np.linspace(0.0, 1.0, 101)
# forces_weight 10 (default 1): with the default, water forces barely move in a short
# budget (RMSE 760 -> 640 meV/Å in 20 epochs); see README_uq.md.
TRAINING = {"lr": 0.01, "lr_final": 0.001, "batch_size": 4, "forces_weight": 10.0}
ANI_LR = (3e-3, 1e-4)  # bench_accuracy's TorchANI settings


# --- predictions: member energies, forces, log variances per structure ------------------
def nnpot_members(model, frames, chunk_atoms: int = 4000) -> list[dict]:
    """Per structure: member energies ``E`` (M,) eV, member forces ``F`` (M, n, 3) eV/Å and
    the head's log energy variance ``log_var`` (M,) log eV² (None without a head)."""
    from nnpot.atomistic.uncertainty import frame_batches

    out = []
    for _, group, b in frame_batches(model, frames, chunk_atoms):
        res = model.compute(b, forces=False, member_forces=True)
        off = 0
        for s, f in enumerate(group):
            k = len(f)
            out.append({"E": res.energy[:, s].detach().double().numpy(),
                        "F": res.member_forces[:, off:off + k].detach().double().numpy(),
                        "log_var": None if res.log_var is None else
                        res.log_var[:, s].detach().double().numpy()})
            off += k
    return out


def uq_arrays(recs: list[dict], frames, members: slice = slice(None)) -> dict:
    """Errors and σ parts (see module docstring) from member predictions."""
    e_err, e_epi, e_alea, f_err, f_epi = [], [], [], [], []
    for r, fr in zip(recs, frames, strict=True):
        n = len(fr)
        e, f = r["E"][members], r["F"][members]
        e_err.append((e.mean() - fr.energy) / n)
        e_epi.append(e.std() / n)
        if r["log_var"] is not None:
            e_alea.append(np.sqrt(np.exp(r["log_var"][members]).mean()) / n)
        fm = f.mean(0)
        f_err.append((fm - fr.forces).ravel())
        dev = np.sqrt(((f - fm) ** 2).sum(-1).mean(0)) / np.sqrt(3.0)
        f_epi.append(np.repeat(dev, 3))
    return {"e_err": np.array(e_err), "e_epi": np.array(e_epi),
            "e_alea": np.array(e_alea) if e_alea else None,
            "f_err": np.concatenate(f_err), "f_epi": np.concatenate(f_epi)}


# --- metrics -------------------------------------------------------------------------
def isotonic_report(err, sigma, cal) -> dict:
    """Metrics of isotonic recalibration: interval coverages with m(p) σ; σ' = m(0.6827) σ
    for NLL, ENCE, Spearman and RMS σ."""
    from nnpot.uq import calibration_report

    r = np.abs(err) / sigma
    rep = calibration_report(err, cal(sigma))
    rep["coverage_68"] = float(np.mean(r <= cal.multiplier(0.68)))
    rep["coverage_95"] = float(np.mean(r <= cal.multiplier(0.95)))
    p = LEVELS[1:-1]
    obs = np.array([np.mean(r <= m) for m in cal.multiplier(p)])
    d = np.abs(np.concatenate([[0.0], obs - p, [0.0]]))
    rep["miscalibration_area"] = float(np.sum(0.5 * (d[1:] + d[:-1]) * np.diff(LEVELS)))
    return rep


def reports(err_v, sig_v, err_t, sig_t) -> dict:
    """Test-split metrics raw and after scalar / isotonic recalibration fitted on
    validation; the fitted scalar factor."""
    from nnpot.uq import IsotonicRecalibration, ScalarRecalibration, calibration_report

    sc = ScalarRecalibration().fit(err_v, sig_v)
    out = {"raw": calibration_report(err_t, sig_t),
           "scalar": calibration_report(err_t, sc(sig_t)), "scale": sc.scale}
    if len(err_v) >= 10:
        iso = IsotonicRecalibration().fit(err_v, sig_v, n_knots=min(99, len(err_v) - 1))
        out["isotonic"] = isotonic_report(err_t, sig_t, iso)
    return out


def method_metrics(val: dict, test: dict) -> dict:
    """{(method part, quantity): reports} from uq_arrays of validation and test."""
    from nnpot.uq import combine

    out = {}
    has_epi = np.all(test["e_epi"] > 0)
    if has_epi:
        out[("committee", "E")] = reports(val["e_err"], val["e_epi"], test["e_err"],
                                          test["e_epi"])
        out[("committee", "F")] = reports(val["f_err"], val["f_epi"], test["f_err"],
                                          test["f_epi"])
    if test["e_alea"] is not None:
        out[("head", "E")] = reports(val["e_err"], val["e_alea"], test["e_err"],
                                     test["e_alea"])
        if has_epi:
            out[("combined", "E")] = reports(val["e_err"], combine(val["e_epi"], val["e_alea"]),
                                             test["e_err"],
                                             combine(test["e_epi"], test["e_alea"]))
    return out


# --- training ------------------------------------------------------------------------
def nnpot_config(members: int, aleatoric: bool, epochs: int, beta_nll: float | None = None):
    from nnpot.config import FitConfig, parse_config

    return parse_config(FitConfig, {
        "model": {"committee": members, "aleatoric": aleatoric},
        "training": {"epochs": epochs, "patience": 10**6, "beta_nll": beta_nll,
                     **TRAINING}})


def train_nnpot(cfg, prep_tr, prep_va, frames_tr):
    """Train like ``workflow.fit`` on precomputed descriptors (shared by all models)."""
    from nnpot.atomistic.statistics import fit_statistics
    from nnpot.atomistic.train import train
    from nnpot.atomistic.workflow import build_model

    torch.manual_seed(cfg.training.seed)
    model = build_model(cfg, ["H", "O"])
    fit_statistics(model, prep_tr, frames_tr)
    c0, t0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        state = train(model, prep_tr, prep_va, cfg.training, Path(tmp), progress=False)
    return model, {"epochs": state["epoch"], "best_epoch": state["best_epoch"],
                   "train_cpu_s": round(time.process_time() - c0, 1),
                   "train_wall_s": round(time.perf_counter() - t0, 1)}


def load_bench_accuracy():
    path = Path(__file__).resolve().parent / "bench_accuracy.py"
    spec = importlib.util.spec_from_file_location("bench_accuracy_for_uq", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def train_ani_member(acc, frames, tr, va, epochs: int, seed: int):
    """One TorchANI model (``bench_accuracy.AniPotential``: ANI-1x AEVs and networks,
    float32, least-squares self energies) trained like the nnpot models here: the same
    loss (energy per atom and forces in units of the label spreads, forces weight
    ``TRAINING["forces_weight"]``), AdamW with the same batch size and exponential lr decay
    over ``epochs``, best validation epoch kept. Returns (model, self energies, info)."""
    c0 = time.process_time()
    torch.manual_seed(seed)
    train_f = [frames[i] for i in tr]
    valid_f = [frames[i] for i in va]
    counts = np.array([[np.sum(f.numbers == acc.Z_OF[e]) for e in acc.ELEMENTS]
                       for f in train_f])
    sae = np.linalg.lstsq(counts, np.array([f.energy for f in train_f]), rcond=None)[0]
    model = acc.AniPotential().to(torch.float32)
    prep = acc.ani_prepare(train_f, model.cutoffs[0], sae, torch.float32)
    prep_va = acc.ani_prepare(valid_f, model.cutoffs[0], sae, torch.float32)
    sig_e = float(np.sqrt(np.mean([(it["e_res"] / it["n"]) ** 2 for it in prep])))
    sig_f = float(torch.cat([it["forces"].reshape(-1) for it in prep]).double()
                  .pow(2).mean().sqrt())
    lr, lr_final, bs = ANI_LR[0], ANI_LR[1], TRAINING["batch_size"]
    wf = TRAINING["forces_weight"]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-6)
    rng = np.random.default_rng(seed)
    best, best_state, best_epoch = np.inf, None, 0
    for epoch in range(epochs):
        for gr in opt.param_groups:
            gr["lr"] = lr * (lr_final / lr) ** (epoch / max(epochs - 1, 1))
        perm = rng.permutation(len(prep))
        for start in range(0, len(perm), bs):
            batch = [prep[k] for k in perm[start:start + bs]]
            e, f = acc.ani_predict(model, batch, create_graph=True)
            n = torch.tensor([it["n"] for it in batch], dtype=torch.float64)
            ref = torch.tensor([it["e_res"] for it in batch], dtype=torch.float64)
            le = (((e.double() - ref) / n) ** 2).sum() / sig_e**2
            lf = sum(((fp - it["forces"]) ** 2).mean() for fp, it in
                     zip(f, batch, strict=True)) / sig_f**2
            opt.zero_grad()
            ((le.float() + wf * lf) / len(batch)).backward()
            opt.step()
        e, f = acc.ani_errors(model, prep_va, 4000)
        v = acc.rmse_report(valid_f, [x + acc.sae_sum(fr, sae) for x, fr in
                                      zip(e, valid_f, strict=True)], f)
        vloss = ((v["energy_rmse_mev_atom"] / 1e3 / sig_e) ** 2
                 + (v["forces_rmse_mev_ang"] / 1e3 / sig_f) ** 2)
        if vloss < best:
            best, best_epoch = vloss, epoch + 1
            best_state = {k: x.detach().clone() for k, x in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model, sae, {"epochs": epochs, "best_epoch": best_epoch,
                        "cpu_s": round(time.process_time() - c0, 1), "valid": v}


def torchani_ensemble(frames, tr, va, te, n: int, epochs: int, seed: int = 0):
    """K TorchANI models on bootstrap resamples of ``tr`` (:func:`train_ani_member`);
    member predictions on ``va`` and ``te`` in the format of :func:`nnpot_members`."""
    acc = load_bench_accuracy()
    rng = np.random.default_rng(seed + 7)
    preds = {"valid": [], "test": []}
    infos = []
    for k in range(n):
        boot = np.sort(rng.choice(tr, len(tr)))
        model, sae, info = train_ani_member(acc, frames, boot, va, epochs, seed + k)
        for name, idx in (("valid", va), ("test", te)):
            fs = [frames[i] for i in idx]
            items = acc.ani_prepare(fs, model.cutoffs[0], sae, torch.float32)
            e, f = acc.ani_errors(model, items, 4000)
            preds[name].append(([x + acc.sae_sum(fr, sae) for x, fr in zip(e, fs,
                                                                              strict=True)], f))
        infos.append(info)
    recs = {}
    for name in preds:
        recs[name] = [{"E": np.array([m[0][s] for m in preds[name]]),
                       "F": np.stack([m[1][s] for m in preds[name]]), "log_var": None}
                      for s in range(len(preds[name][0][0]))]
    return recs, infos


# --- driver --------------------------------------------------------------------------
def table_rows(name: str, metrics: dict) -> list[dict]:
    rows = []
    units = {"E": ("E/atom", 1e3, "meV/atom"), "F": ("F comp.", 1e3, "meV/Å")}
    for (part, q), rep in metrics.items():
        label, k, unit = units[q]
        for recal in ("raw", "scalar", "isotonic"):
            if recal not in rep:
                continue
            m = rep[recal]
            rows.append({"model": name, "sigma": part, "quantity": label, "recal": recal,
                         "rmse": round(k * m["rmse"], 2), "rms_sigma": round(k * m["rms_sigma"], 2),
                         "unit": unit, "cov68": round(m["coverage_68"], 3),
                         "cov95": round(m["coverage_95"], 3),
                         "miscal_area": round(m["miscalibration_area"], 3),
                         "nll": round(m["nll"], 2), "ence": round(m["ence"], 3),
                         "spearman": round(m["spearman"], 3),
                         "scale": round(rep["scale"], 2) if recal == "scalar" else ""})
    return rows


def main(out_dir: Path = RESULTS, quick: bool = False, data: str | None = None) -> dict:
    """Train the models, compute the calibration table, write ``uq.json`` and the plots
    into ``out_dir``; return the result with its ``table``."""
    from nnpot.atomistic.data import read_frames, split_indices
    from nnpot.atomistic.train import prepare
    from nnpot.atomistic.workflow import build_model, build_uq, evaluate, predict_frames
    from nnpot.io import atomic_write_json
    from nnpot.plotting.uq import calibration_plot, error_vs_sigma_plot

    torch.set_num_threads(1)
    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    c_start, t_start = time.process_time(), time.perf_counter()
    st = SETTINGS[quick]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = str(load_bench_accuracy().water_data_file())
    frames = read_frames(data, require=("energy", "forces"))
    tr, va, te = split_indices(len(frames), **SPLIT)
    f_tr, f_va, f_te = ([frames[k] for k in idx] for idx in (tr, va, te))
    timing: dict = {}
    c0 = time.process_time()
    proto = build_model(nnpot_config(1, False, 1), ["H", "O"])
    prep_tr, prep_va = prepare(proto, f_tr), prepare(proto, f_va)
    timing["descriptors_cpu_s"] = round(time.process_time() - c0, 1)

    runs = {"committee": (st["members"], False, None),
            "committee+head": (st["members"], True, BETA_NLL)}
    if st["single_head"]:
        runs["head M=1"] = (1, True, BETA_NLL)
        runs["head M=1, plain NLL"] = (1, True, None)
    metrics, info, arrays, consistency = {}, {}, {}, {}
    for name, (m, alea, beta) in runs.items():
        model, info[name] = train_nnpot(nnpot_config(m, alea, st["epochs"], beta), prep_tr,
                                        prep_va, f_tr)
        c0 = time.process_time()
        rv, rt = nnpot_members(model, f_va), nnpot_members(model, f_te)
        val, test = uq_arrays(rv, f_va), uq_arrays(rt, f_te)
        info[name]["predict_cpu_s"] = round(time.process_time() - c0, 1)
        metrics[name] = method_metrics(val, test)
        arrays[name] = (val, test)
        if name == "committee" and st["ani_members"] < m:
            k = st["ani_members"]
            sub = slice(0, k)
            metrics[f"committee (first {k})"] = method_metrics(uq_arrays(rv, f_va, sub),
                                                               uq_arrays(rt, f_te, sub))
        # the library path (stored scalar recalibration, evaluate) must give the same
        hdr = {"uq": build_uq(model, prep_tr, f_va)}
        preds = predict_frames(model, f_te, header=hdr)
        ev = evaluate(model, f_te, predictions=preds, header=hdr)
        info[name]["test_rmse"] = {k2: ev[k2] for k2 in ("energy_rmse_mev_atom",
                                                        "forces_rmse_mev_ang")}
        info[name]["ood_test_structures"] = [
            {"index": int(te[s]), "atoms": len(f_te[s]), "periodic": bool(f_te[s].pbc.any()),
             "flagged_atoms": int(np.sum(p["ood_atoms"]))}
            for s, p in enumerate(preds) if p.get("ood")]
        key = "combined" if alea and m > 1 else ("head" if alea else "committee")
        ours = metrics[name][(key, "E")]["scalar"]
        lib = ev["calibration"]["energy_recalibrated"]
        consistency[name] = {"energy_nll_bench": ours["nll"], "energy_nll_library": lib["nll"],
                             "max_abs_diff": max(abs(ours[k2] - lib[k2]) for k2 in
                                                 ("nll", "coverage_68", "rms_sigma"))}
    c0 = time.process_time()
    ani, ani_info = torchani_ensemble(frames, tr, va, te, st["ani_members"],
                                      st["ani_epochs"])
    timing["torchani_cpu_s"] = round(time.process_time() - c0, 1)
    ani_val, ani_test = uq_arrays(ani["valid"], f_va), uq_arrays(ani["test"], f_te)
    metrics["torchani ensemble"] = method_metrics(ani_val, ani_test)
    arrays["torchani ensemble"] = (ani_val, ani_test)

    plots = make_plots(out_dir, arrays, metrics, calibration_plot, error_vs_sigma_plot)
    table = [row for name, mets in metrics.items() for row in table_rows(name, mets)]
    timing.update(total_cpu_s=round(time.process_time() - c_start, 1),
                  total_wall_s=round(time.perf_counter() - t_start, 1))
    result = {
        "benchmark": "uq", "quick": quick, "data": data, "settings": st,
        "split": {"train": len(tr), "valid": len(va), "test": len(te), **SPLIT},
        "threads": 1, "torch": torch.__version__, "load_average_1min": os.getloadavg()[0],
        "models": info, "torchani_members": ani_info, "timing": timing,
        "library_consistency": consistency, "plots": [p.name for p in plots],
        "metrics": {f"{n} | {part} | {q}": rep for n, mets in metrics.items()
                    for (part, q), rep in mets.items()},
        "table": table,
    }
    atomic_write_json(out_dir / "uq.json", json.loads(json.dumps(result, default=float)))
    return result


def make_plots(out_dir, arrays, metrics, calibration_plot, error_vs_sigma_plot):
    """Calibration curves and error-vs-σ for energies and forces (raw and scalar)."""
    from nnpot.uq import combine

    e_ser, f_ser, e_sc, f_sc = {}, {}, {}, {}
    for name, (_, t) in arrays.items():
        if name not in ("committee", "committee+head", "torchani ensemble"):
            continue  # the M=1 heads and committee subsets are in the table only
        mets = metrics[name]
        parts = {"committee": t["e_epi"]} if np.all(t["e_epi"] > 0) else {}
        if t["e_alea"] is not None:
            parts["head"] = t["e_alea"]
            if parts.get("committee") is not None:
                parts["combined"] = combine(t["e_epi"], t["e_alea"])
        for part, sig in parts.items():
            if name == "committee+head" and part == "committee":
                continue
            lab = name if part == "committee" else f"{name}: {part}"
            e_ser[lab] = (t["e_err"], sig)
            e_sc[lab] = (t["e_err"], mets[(part, "E")]["scale"] * sig)
        if "committee" in parts and name != "committee+head":
            f_ser[name] = (t["f_err"], t["f_epi"])
            f_sc[name] = (t["f_err"], mets[("committee", "F")]["scale"] * t["f_epi"])
    return [
        calibration_plot({**{f"{k} raw": v for k, v in e_ser.items()},
                          **{f"{k} scalar": v for k, v in e_sc.items()}},
                         out_dir / "uq_calibration_energy.png",
                         "water (test split): energy per atom"),
        calibration_plot({**{f"{k} raw": v for k, v in f_ser.items()},
                          **{f"{k} scalar": v for k, v in f_sc.items()}},
                         out_dir / "uq_calibration_forces.png",
                         "water (test split): force components"),
        error_vs_sigma_plot(e_sc, out_dir / "uq_error_vs_sigma_energy.png", "eV/atom",
                            "energy per atom, σ after scalar recalibration"),
        error_vs_sigma_plot(f_sc, out_dir / "uq_error_vs_sigma_forces.png", "eV/Å",
                            "force components, σ after scalar recalibration"),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    res = main(Path(args.out), quick=args.quick, data=args.data)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import print_table

    print_table("uq", res["table"])
    print(json.dumps(res["timing"]), json.dumps(res["library_consistency"]))
