"""From labelled structures to a saved model, and evaluation of a model on data.

:func:`fit` is what ``nnpot fit`` runs: read and check data, split it reproducibly, build
the descriptor set and the (committee) model, precompute descriptors, fit reference
energies and scaling, train with checkpoints (a killed run resumes), save the ``.nnp``
file and a test-set report. :func:`evaluate` gives RMSE/MAE of energy per atom (meV/atom),
forces (meV/Å) and stress (meV/Å³), plus uncertainty metrics for committees.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase.data import atomic_numbers

from nnpot.atomistic.data import (
    Frame,
    LabelKeys,
    check_elements,
    elements_of,
    read_frames,
    split_indices,
)
from nnpot.atomistic.descriptors import DescriptorSpec, default_spec, spec_from_n2p2
from nnpot.atomistic.model import NNP
from nnpot.atomistic.modelfile import save_model
from nnpot.atomistic.neighbors import make_batch
from nnpot.atomistic.statistics import fit_statistics
from nnpot.atomistic.train import DTYPES, check_labels, prepare, train
from nnpot.atomistic.uncertainty import (
    ModelUncertainty,
    calibration_summary,
    fit_domain,
    fit_recalibration,
    frame_descriptors,
)
from nnpot.config import FitConfig, dump_resolved
from nnpot.errors import ConfigError, InputError
from nnpot.io import atomic_write_json


@dataclass
class FitResult:
    model: NNP
    model_path: Path
    run_dir: Path
    metrics: dict
    splits: dict
    wall_s: float
    header: dict


def build_spec(cfg: FitConfig, elements: Sequence[str]) -> DescriptorSpec:
    m = cfg.model
    if m.descriptors == "default":
        return default_spec(list(elements), cutoff=m.cutoff, n_radial=m.n_radial,
                            cutoff_function=m.cutoff_function)
    path = Path(m.descriptors)
    if not path.is_file():
        raise ConfigError(f"[model] descriptors = {m.descriptors!r}: no such file "
                          "(use \"default\" or the path of an n2p2 input.nn)")
    return spec_from_n2p2(list(elements), path.read_text())


def build_model(cfg: FitConfig, elements: Sequence[str]) -> NNP:
    tail = None
    if cfg.model.dispersion is not None:
        from nnpot.atomistic.tails import tail_from_config

        tail = tail_from_config(cfg.model.dispersion, list(elements))
    return NNP(build_spec(cfg, elements), cfg.model.hidden, cfg.model.activation,
               cfg.model.committee, cfg.model.aleatoric, seed=cfg.training.seed, tail=tail)


def load_data(cfg: FitConfig, path: str | None = None) -> list[Frame]:
    d = cfg.data
    path = path or d.train
    if not path:
        raise ConfigError("no training data: give --data or [data] train = \"...\"")
    keys = LabelKeys(d.energy_key, d.forces_key, d.stress_key, d.weight_key)
    require = ["energy"] if cfg.training.energy_weight > 0 else []
    if cfg.training.forces_weight > 0:
        require.append("forces")
    return read_frames(path, keys, require=require)


def fit(cfg: FitConfig, out: str | Path, data: str | None = None, run_dir: str | Path | None
        = None, progress: bool = True, log=None) -> FitResult:
    """Train a model as configured and write it to ``out`` (see module docstring)."""
    t0 = time.perf_counter()
    out = Path(out)
    run_dir = Path(run_dir) if run_dir else out.with_suffix(out.suffix + ".run")
    run_dir.mkdir(parents=True, exist_ok=True)
    frames = load_data(cfg, data)
    elements = cfg.model.elements or elements_of(frames)
    elements = sorted(elements, key=lambda e: atomic_numbers.get(e, 0))
    for e in elements:
        if e not in atomic_numbers:
            raise ConfigError(f"[model] elements: {e!r} is not a chemical symbol")
    for k, fr in enumerate(frames):
        check_elements(fr.numbers, elements, where=f"structure {k}")
    d = cfg.data
    if d.test:
        test_frames = read_frames(d.test, LabelKeys(d.energy_key, d.forces_key, d.stress_key,
                                                    d.weight_key))
        tr, va, _ = split_indices(len(frames), d.valid_fraction, 0.0, d.split_seed)
        te = np.array([], dtype=int)
    else:
        tr, va, te = split_indices(len(frames), d.valid_fraction, d.test_fraction,
                                   d.split_seed)
        test_frames = [frames[k] for k in te]
    train_frames = [frames[k] for k in tr]
    valid_frames = [frames[k] for k in va]
    check_labels(train_frames, cfg.training)
    dump_resolved(cfg, run_dir)
    atomic_write_json(run_dir / "splits.json", {"train": tr.tolist(), "valid": va.tolist(),
                                                "test": te.tolist()})
    torch.manual_seed(cfg.training.seed)
    model = build_model(cfg, elements)
    dtype = DTYPES[cfg.training.dtype]
    from tqdm.auto import tqdm

    def bar(xs):
        return tqdm(xs, desc="descriptors", leave=False, disable=not progress)

    train_prep = prepare(model, train_frames, dtype, progress=bar)
    valid_prep = prepare(model, valid_frames, dtype, progress=bar)
    stats = fit_statistics(model, train_prep, train_frames, cfg.model.reference_energies)
    model.to(dtype)
    state = train(model, train_prep, valid_prep, cfg.training, run_dir, progress, log)
    model.to(torch.float64)
    uq = build_uq(model, train_prep, valid_frames, valid_prep, cfg.model.recalibration)
    hdr = {"uq": uq}
    metrics = {"train": evaluate(model, train_frames[:200], header=hdr) if train_frames else {},
               "valid": evaluate(model, valid_frames, header=hdr) if valid_frames else {},
               "test": evaluate(model, test_frames, header=hdr) if test_frames else {}}
    provenance = {
        "training": {"data": str(data or d.train), "n_train": len(tr), "n_valid": len(va),
                     "n_test": len(test_frames), "epochs": state["epoch"],
                     "best_epoch": state["best_epoch"], "seed": cfg.training.seed,
                     "wall_s": round(time.perf_counter() - t0, 1), **stats},
        "metrics": metrics,
        "uq": uq,
    }
    save_model(out, model, provenance)
    atomic_write_json(run_dir / "report.json", provenance)
    return FitResult(model, out, run_dir, metrics, {"train": tr, "valid": va, "test": te},
                     time.perf_counter() - t0, provenance)


def build_uq(model: NNP, train_prep, valid_frames: Sequence[Frame], valid_prep=None,
             recalibration: str = "scalar") -> dict:
    """Out-of-domain statistics of the training descriptors (with the structure-level
    threshold calibrated on the validation atoms) and, for models with σ (committee or
    aleatoric head), the σ recalibration fitted on the validation split: ``"scalar"`` (one
    factor) or ``"isotonic"`` (a table of interval multipliers; see
    :func:`nnpot.atomistic.uncertainty.fit_recalibration`). ``valid_prep`` (prepared
    validation frames) saves recomputing their descriptors."""
    valid = None
    if valid_frames:
        if valid_prep is not None:
            valid = (torch.cat([p.g for p in valid_prep]),
                     torch.cat([p.species for p in valid_prep]),
                     torch.cat([torch.full((len(p.species),), k)
                                for k, p in enumerate(valid_prep)]))
        else:
            valid = frame_descriptors(model, valid_frames)
    domain = fit_domain(model, train_prep, valid)
    uq = {} if domain is None else {"domain": domain.to_dict()}
    if (model.n_members > 1 or model.aleatoric) and len(valid_frames) >= 2:
        uq.update(fit_recalibration(predict_frames(model, valid_frames), valid_frames,
                                    recalibration))
    return uq


def predict_frames(model: NNP, frames: Sequence[Frame], chunk_atoms: int = 20000,
                   stress: bool = True, header: dict | None = None) -> list[dict]:
    """Predictions per frame: energy (eV), forces (eV/Å), stress (Voigt) and committee
    spreads (``energy_std``, ``forces_std`` per atom, ``max_force_deviation``). With the
    model's ``header``, also calibrated σ (``energy_sigma``, ``forces_sigma``) and
    out-of-domain scores (``ood_score``, ``ood_atoms`` per atom, ``ood_structure_score``,
    ``ood``; see :mod:`nnpot.atomistic.uncertainty`)."""
    unc = ModelUncertainty(model, header) if header else None
    species_of = {atomic_numbers[e]: k for k, e in enumerate(model.elements)}
    dtype = model.e_ref.dtype
    out: list[dict] = []
    start = 0
    while start < len(frames):
        group, n = [], 0
        while start + len(group) < len(frames) and (not group or n < chunk_atoms):
            fr = frames[start + len(group)]
            check_elements(fr.numbers, model.elements, where=f"structure {start + len(group)}")
            group.append(fr)
            n += len(fr)
        b = make_batch([(f.numbers, f.positions, f.cell, f.pbc) for f in group], species_of,
                       model.spec.cutoff, dtype)
        want_stress = stress and any(f.pbc.all() for f in group)
        res = model.compute(b, forces=True, stress=want_stress,
                            member_forces=model.n_members > 1)
        res = type(res)(*[None if t is None else t.detach() for t in res])
        off = 0
        for s, fr in enumerate(group):
            k = len(fr)
            rec = {"energy": float(res.energy[:, s].mean()),
                   "energy_std": float(res.energy[:, s].std(unbiased=False)),
                   "forces": res.forces[off:off + k].detach().numpy().astype(float)}
            if res.member_forces is not None:
                mf = res.member_forces[:, off:off + k].detach()
                dev = (mf - mf.mean(0)).pow(2).sum(-1).mean(0).sqrt().numpy()
                rec["forces_std"] = dev
                rec["max_force_deviation"] = float(dev.max())
            if res.log_var is not None:
                rec["energy_aleatoric_std"] = float(res.log_var[:, s].exp().mean().sqrt())
            if want_stress and fr.pbc.all():
                m = res.stress[s].detach().numpy()
                rec["stress"] = np.array([m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]])
            if unc is not None:
                unc.annotate(rec, k, res.features[off:off + k], b.species[off:off + k])
            out.append(rec)
            off += k
        start += len(group)
    return out


def evaluate(model: NNP, frames: Sequence[Frame], predictions: list[dict] | None = None,
             header: dict | None = None) -> dict:
    """Errors of ``model`` on labelled ``frames``: energy per atom (meV/atom), forces
    (meV/Å), stress (meV/Å³), RMSE and MAE; with a committee also the energy-error
    calibration (coverage at 68/95 %, Spearman of |error| and σ)."""
    if not frames:
        raise InputError("nothing to evaluate: the data set is empty")
    preds = predictions or predict_frames(model, frames, header=header)
    e_err, f_err, s_err = [], [], []
    for fr, p in zip(frames, preds, strict=True):
        if fr.energy is not None:
            e_err.append((p["energy"] - fr.energy) / len(fr))
        if fr.forces is not None:
            f_err.append((p["forces"] - fr.forces).reshape(-1))
        if fr.stress is not None and "stress" in p:
            s_err.append(p["stress"] - fr.stress)
    out: dict = {"n_structures": len(frames), "n_atoms": int(sum(len(f) for f in frames))}

    def stats(name, arr, unit):
        a = np.concatenate(arr) if isinstance(arr[0], np.ndarray) else np.asarray(arr)
        out[f"{name}_rmse_{unit}"] = 1000 * float(np.sqrt(np.mean(a**2)))
        out[f"{name}_mae_{unit}"] = 1000 * float(np.mean(np.abs(a)))

    if e_err:
        stats("energy", e_err, "mev_atom")
    if f_err:
        stats("forces", f_err, "mev_ang")
    if s_err:
        stats("stress", s_err, "mev_ang3")
    if header is not None and (model.n_members > 1 or model.aleatoric):
        out["calibration"] = calibration_summary(preds, frames, header)
    if preds and "ood" in preds[0]:
        out["ood_structures"] = int(sum(p["ood"] for p in preds))
        out["ood_atoms"] = int(sum(int(p["ood_atoms"].sum()) for p in preds))
    return out


def write_json(obj, path: Path) -> None:
    atomic_write_json(path, json.loads(json.dumps(obj, default=float)))
