"""Retraining the committee on the labelled structures of an active-learning store.

Uses the atomistic training code as ``nnpot fit`` does (descriptors precomputed, bootstrap
committee, checkpoints every epoch, so a killed retraining resumes bit-identically), with
two differences:

- warm start: from the second training on, the committee starts from the previous one
  (weights, feature scaling and reference energies), for ``retrain_epochs`` epochs;
- a stable validation split: a structure is in the validation set iff
  ``u(seed, hash) < valid_fraction`` (u uniform in [0, 1) from a hash), so a structure
  never moves between training and validation as the data set grows.

Errors are reported in meV/atom and meV/Å; thresholds in eV/Å.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers

from nnpot.active.settings import ActiveConfig, TrustConfig
from nnpot.atomistic.data import Frame, LabelKeys, frame_from_atoms
from nnpot.atomistic.model import NNP
from nnpot.atomistic.modelfile import load_model, save_model
from nnpot.atomistic.statistics import fit_statistics
from nnpot.atomistic.train import DTYPES, prepare, train
from nnpot.atomistic.workflow import build_model, build_uq, evaluate
from nnpot.config import FitConfig
from nnpot.errors import EmptyDatasetError

__all__ = ["TrainResult", "split_by_hash", "thresholds", "train_committee"]


@dataclass
class TrainResult:
    model: NNP
    header: dict
    metrics: dict  # {"valid": {...}, "test": {...}} from nnpot.atomistic.workflow.evaluate
    n_train: int
    n_valid: int


def _u(seed: int, h: str) -> float:
    d = hashlib.sha256(f"split:{seed}:{h}".encode()).digest()
    return int.from_bytes(d[:8], "little") / 2.0**64


def split_by_hash(hashes: Sequence[str], valid_fraction: float, seed: int,
                  min_valid: int = 2) -> tuple[list[int], list[int]]:
    """Indices (train, valid): valid iff u(seed, hash) < valid_fraction; if that gives
    fewer than ``min_valid`` (and at least ``min_valid + 2`` structures exist), the
    structures with the smallest u are moved to validation."""
    u = np.array([_u(seed, h) for h in hashes])
    valid = set(np.flatnonzero(u < valid_fraction).tolist())
    if len(valid) < min_valid and len(hashes) >= min_valid + 2:
        valid = set(np.argsort(u, kind="stable")[:min_valid].tolist())
    train_idx = [i for i in range(len(hashes)) if i not in valid]
    return train_idx, sorted(valid)


def _frames(atoms: Sequence[Atoms], keys: LabelKeys, where: str) -> list[Frame]:
    return [frame_from_atoms(a, keys, require=("energy", "forces"), where=f"{where} {k}")
            for k, a in enumerate(atoms)]


def train_committee(
    labelled: Sequence[Atoms], cfg: ActiveConfig, iteration: int, run_dir: Path, out: Path,
    warm_from: Path | None = None, test: Sequence[Atoms] | None = None,
    progress: bool = False, log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train (or warm-start) the committee on ``labelled`` (atoms with REF_ labels and
    ``info['structure_hash']``), save it to ``out`` and return it with its metrics."""
    if not labelled:
        raise EmptyDatasetError("no labelled structures to train on (did every label fail?)")
    keys = LabelKeys()
    frames = _frames(labelled, keys, "labelled structure")
    hashes = [a.info["structure_hash"] for a in labelled]
    tr, va = split_by_hash(hashes, cfg.data.valid_fraction, cfg.seed)
    train_frames = [frames[i] for i in tr]
    valid_frames = [frames[i] for i in va]
    training = cfg.training.model_copy(update={"seed": cfg.training.seed + iteration})
    if warm_from is not None and cfg.loop.retrain_epochs is not None:
        training = training.model_copy(update={"epochs": cfg.loop.retrain_epochs})
    fitcfg = FitConfig(model=cfg.model, training=training)
    elements = list(cfg.model.elements or sorted(
        {s for a in labelled for s in a.get_chemical_symbols()}, key=atomic_numbers.get))
    torch.manual_seed(training.seed)
    model = build_model(fitcfg, elements)
    dtype = DTYPES[training.dtype]
    train_prep = prepare(model, train_frames, dtype)
    valid_prep = prepare(model, valid_frames, dtype)
    if warm_from is not None:
        previous, _ = load_model(warm_from)
        model.load_state_dict(previous.state_dict())
    else:
        fit_statistics(model, train_prep, train_frames, cfg.model.reference_energies)
    model.to(dtype)
    state = train(model, train_prep, valid_prep, training, Path(run_dir), progress, log)
    model.to(torch.float64)
    uq = build_uq(model, train_prep, valid_frames)
    hdr = {"uq": uq}
    metrics = {"valid": evaluate(model, valid_frames, header=hdr) if valid_frames else {}}
    if test:
        metrics["test"] = evaluate(model, _frames(test, keys, "test structure"), header=hdr)
    provenance = {
        "uq": uq, "metrics": metrics,
        "training": {"active_iteration": iteration, "n_train": len(tr), "n_valid": len(va),
                     "epochs": state["epoch"], "best_epoch": state["best_epoch"],
                     "seed": training.seed, "warm_start": warm_from is not None},
    }
    save_model(out, model, provenance)
    header = dict(model.header(), **provenance)
    return TrainResult(model, header, metrics, len(tr), len(va))


def thresholds(trust: TrustConfig, header: dict) -> tuple[float, float]:
    """Trust interval (lower, upper) in eV/Å for a trained committee (see TrustConfig)."""
    if trust.mode == "absolute":
        return trust.lower, trust.upper
    rmse = header.get("metrics", {}).get("valid", {}).get("forces_rmse_mev_ang")
    if rmse is None or not math.isfinite(rmse) or rmse <= 0:
        return trust.lower, trust.upper  # no validation error: fall back to absolute
    scale = float((header.get("uq", {}).get("forces") or {}).get("scale", 1.0))
    e = math.sqrt(3.0) * rmse / 1000.0 / scale
    return trust.lower_factor * e, trust.upper_factor * e
