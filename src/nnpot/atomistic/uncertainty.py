"""Uncertainty of atomistic models: recalibrated committee/aleatoric σ and out-of-domain flags.

Glue between :class:`~nnpot.atomistic.model.NNP` and :mod:`nnpot.uq` (which knows nothing
of atoms). Stored in the model header under ``"uq"``:

* ``energy``: recalibration of the per-atom energy σ, σ_E/N with
  σ_E² = σ_committee² + σ_aleatoric², fitted on the validation split
  (:class:`nnpot.uq.ScalarRecalibration`: σ' = s σ, s by maximum likelihood; or, with
  ``recalibration = "isotonic"``, :class:`nnpot.uq.IsotonicRecalibration`: a JSON table of
  levels p and multipliers m(p), intervals |err| ≤ m(p) σ and σ' = m(0.6827) σ);
* ``forces``: the same for force components with σ_F,i = forces_std_i / √3 (the per-atom
  committee deviation spread over three components);
* ``domain``: :class:`nnpot.uq.DescriptorDomain` of the scaled training descriptors per
  element — a committee-free out-of-domain score per atom (an isolated atom, or a
  compressed structure absent from training, is flagged even when all members agree) —
  with a structure-level threshold T_N calibrated on the validation atoms
  (:meth:`~nnpot.uq.DescriptorDomain.calibrate_structures`, about
  ``STRUCTURE_RATE`` of in-distribution structures of any size flagged). ``ood`` of a
  structure is ``max_i score_i > T_N``, not ``any(score_i > 1)`` (whose false-positive
  rate grows as 1 − (1 − ε)^N with the atom count N), or more flagged atoms than chance
  allows (a uniformly strained crystal); models without the calibration (fewer than 20
  validation atoms, older files) keep ``any``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase.data import atomic_numbers

from nnpot.atomistic.data import Frame
from nnpot.atomistic.model import NNP
from nnpot.atomistic.neighbors import make_batch, pair_vectors
from nnpot.errors import ConfigError
from nnpot.uq import (
    DescriptorDomain,
    IsotonicRecalibration,
    ScalarRecalibration,
    calibration_report,
    combine,
    recalibration_from_dict,
)


def scaled_features(model: NNP, g: torch.Tensor, species: torch.Tensor) -> np.ndarray:
    """Descriptors scaled by the model's per-element training mean and std."""
    sp = species.cpu()
    gd = g.detach().double().cpu()
    return ((gd - model.feature_mean[sp].double().cpu()) /
            model.feature_std[sp].double().cpu()).numpy()


STRUCTURE_RATE = 0.01  # target fraction of in-distribution structures flagged as ood


def frame_batches(model: NNP, frames: Sequence[Frame], chunk_atoms: int = 20000):
    """Yield (index of the first frame, frames, Batch) over ``frames`` in consecutive groups
    of about ``chunk_atoms`` atoms (at least one frame each), in the model's dtype."""
    species_of = {atomic_numbers[e]: k for k, e in enumerate(model.elements)}
    start = 0
    while start < len(frames):
        group, n = [], 0
        while start + len(group) < len(frames) and (not group or n < chunk_atoms):
            group.append(frames[start + len(group)])
            n += len(group[-1])
        yield start, group, make_batch([(f.numbers, f.positions, f.cell, f.pbc) for f in group],
                                       species_of, model.spec.cutoff, model.e_ref.dtype)
        start += len(group)


def frame_descriptors(model: NNP, frames: Sequence[Frame], chunk_atoms: int = 20000):
    """Descriptors ``g`` (N, F), species (N,) and structure index (N,) of ``frames``."""
    gs, sps, owner = [], [], []
    for start, _, b in frame_batches(model, frames, chunk_atoms):
        with torch.no_grad():
            rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
            gs.append(model.features(b, rij).double())
        sps.append(b.species)
        owner.append(b.batch + start)
    return torch.cat(gs), torch.cat(sps), torch.cat(owner)


def fit_domain(model: NNP, prepared, valid: tuple | None = None) -> DescriptorDomain | None:
    """Domain of the training atoms that have neighbours: an isolated-atom reference
    structure (all-zero descriptors) in the data must not make isolated atoms, or far
    dimers, look in-domain. ``valid = (g, species, structure index)`` of the validation
    atoms (:func:`frame_descriptors`) calibrates the structure-level threshold."""
    g = torch.cat([p.g for p in prepared])
    sp = torch.cat([p.species for p in prepared])
    keep = g.abs().sum(1) > 0
    if int(keep.sum()) < 2:  # no atom has neighbours: nothing to describe
        return None
    domain = DescriptorDomain().fit(scaled_features(model, g[keep], sp[keep]),
                                    sp[keep].numpy())
    if valid is not None:
        gv, spv, owner = valid
        keep = gv.abs().sum(1) > 0
        if int(keep.sum()) >= 20:  # the tail fit needs a few rows above its 90 % quantile
            domain.calibrate_structures(scaled_features(model, gv[keep], spv[keep]),
                                        spv[keep].cpu().numpy(), owner[keep].cpu().numpy(),
                                        rate=STRUCTURE_RATE)
    return domain


def sigmas(preds: Sequence[dict], frames: Sequence[Frame]):
    """Raw per-atom energy σ (eV/atom) and per-component force σ (eV/Å) of predictions."""
    e_sig, f_sig = [], []
    for fr, p in zip(frames, preds, strict=True):
        s = p.get("energy_std", 0.0)
        if "energy_aleatoric_std" in p:
            s = float(combine(s, p["energy_aleatoric_std"]))
        e_sig.append(s / len(fr))
        if "forces_std" in p:
            f_sig.append(np.repeat(p["forces_std"] / np.sqrt(3.0), 3))
    return np.asarray(e_sig), (np.concatenate(f_sig) if f_sig else None)


def errors(preds: Sequence[dict], frames: Sequence[Frame]):
    e = np.array([(p["energy"] - fr.energy) / len(fr) for fr, p in
                  zip(frames, preds, strict=True) if fr.energy is not None])
    f = [(p["forces"] - fr.forces).ravel() for fr, p in zip(frames, preds, strict=True)
         if fr.forces is not None]
    return e, (np.concatenate(f) if f else None)


def _recalibrate(err: np.ndarray, sig: np.ndarray, kind: str) -> dict:
    if kind == "isotonic" and len(err) >= 10:
        return IsotonicRecalibration().fit(err, sig, n_knots=min(99, len(err) - 1)).to_dict()
    return ScalarRecalibration().fit(err, sig).to_dict()


def fit_recalibration(preds: Sequence[dict], frames: Sequence[Frame],
                      kind: str = "scalar") -> dict:
    """Recalibration of energy and force σ from validation predictions (needs σ > 0):
    ``kind = "scalar"`` or ``"isotonic"`` (knots at p = j/(n_knots + 1) with
    n_knots = min(99, n − 1); a quantity with fewer than 10 validation errors falls back
    to the scalar factor, which the stored ``"kind"`` records)."""
    if kind not in ("scalar", "isotonic"):
        raise ConfigError(f"unknown recalibration {kind!r}; use \"scalar\" or \"isotonic\"")
    out = {}
    e_err, f_err = errors(preds, frames)
    e_sig, f_sig = sigmas(preds, frames)
    has_e = np.array([fr.energy is not None for fr in frames])
    if len(e_err) >= 2 and np.all(e_sig[has_e] > 0):
        out["energy"] = _recalibrate(e_err, e_sig[has_e], kind)
    if f_err is not None and f_sig is not None and len(f_err) == len(f_sig) and \
            np.all(f_sig > 0):
        out["forces"] = _recalibrate(f_err, f_sig, kind)
    return out


class ModelUncertainty:
    """Applies the stored recalibration and domain to predictions (see module docstring)."""

    def __init__(self, model: NNP, header: dict):
        uq = header.get("uq", {}) or {}
        self.model = model
        self.energy_cal = recalibration_from_dict(uq["energy"]) if "energy" in uq else None
        self.forces_cal = recalibration_from_dict(uq["forces"]) if "forces" in uq else None
        self.domain = DescriptorDomain.from_dict(uq["domain"]) if "domain" in uq else None

    def annotate(self, rec: dict, n_atoms: int, g=None, species=None) -> dict:
        """Add calibrated σ and out-of-domain scores to one structure's prediction."""
        if self.energy_cal is not None and "energy_std" in rec:
            s = rec["energy_std"]
            if "energy_aleatoric_std" in rec:
                s = float(combine(s, rec["energy_aleatoric_std"]))
            rec["energy_sigma"] = float(self.energy_cal(s / n_atoms)) * n_atoms
        if self.forces_cal is not None and "forces_std" in rec:
            rec["forces_sigma"] = np.asarray(self.forces_cal(rec["forces_std"] / np.sqrt(3)))
        if self.domain is not None and g is not None:
            x = scaled_features(self.model, g, species)
            score = self.domain.score(x, species.cpu().numpy())
            rec["ood_score"] = score
            rec["ood_atoms"] = np.asarray(score > 1.0)
            rec["ood_structure_score"] = float(self.domain.structure_scores(score)[0]) \
                if score.size else 0.0
            rec["ood"] = rec["ood_structure_score"] > 1.0
        return rec


def calibration_summary(preds: Sequence[dict], frames: Sequence[Frame], header: dict) -> dict:
    """Calibration metrics of energy and forces, raw and after the stored recalibration."""
    out = {}
    e_err, f_err = errors(preds, frames)
    e_sig, f_sig = sigmas(preds, frames)
    has_e = np.array([fr.energy is not None for fr in frames])
    uq = header.get("uq", {}) or {}
    if len(e_err) >= 3 and np.all(e_sig[has_e] > 0):
        out["energy_raw"] = calibration_report(e_err, e_sig[has_e])
        if "energy" in uq:
            cal = recalibration_from_dict(uq["energy"])
            out["energy_recalibrated"] = calibration_report(e_err, e_sig[has_e],
                                                            recalibration=cal)
    if f_err is not None and f_sig is not None and len(f_sig) == len(f_err) and \
            np.all(f_sig > 0):
        out["forces_raw"] = calibration_report(f_err, f_sig)
        if "forces" in uq:
            cal = recalibration_from_dict(uq["forces"])
            out["forces_recalibrated"] = calibration_report(f_err, f_sig, recalibration=cal)
    return out
