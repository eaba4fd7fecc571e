"""Statistics of the training set that fix a model's constants before training.

* feature scaling: per element, mean and std of every symmetry function, the std floored
  (:func:`std_with_floor`) so that barely reached shells cannot blow inputs up;
* reference energies (isolated atoms, given values, or least squares on element counts)
  and the energy scale (:func:`fit_statistics`);
* label spreads σ_E, σ_F, σ_S that make the loss terms dimensionless (:func:`label_scales`).

Units: eV, Å.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from nnpot.atomistic.data import Frame
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.train import Prepared

#: floor of the feature scaling, relative to the element's median feature std
STD_FLOOR = 0.01


def std_with_floor(std: torch.Tensor, rel: float = STD_FLOOR) -> torch.Tensor:
    """Feature standard deviations for input scaling, floored at ``rel`` times the median
    of the varying features' std (features that never vary get 1).

    A radial shell that the training data barely reach (8 cold copper frames and the
    24-shell grid: std 4e-7 against a median of ~0.05) would otherwise be scaled by 1/std,
    so a new environment that does reach it feeds the network inputs of 10^2–10^5 and the
    committee's predictions blow up (seen as 4.8 eV/Å force errors in active learning).
    """
    live = std > 1e-8
    if not bool(live.any()):
        return torch.ones_like(std)
    floor = rel * float(std[live].median())
    return torch.where(live, std.clamp_min(floor), torch.ones_like(std))


def fit_statistics(model: NNP, prepared: Sequence[Prepared], frames: Sequence[Frame],
                   reference_energies: str | dict = "fit") -> dict:
    """Set feature scaling, reference energies and the energy scale from training data.

    Reference energies: elements given explicitly keep their value; an element with an
    isolated-atom structure (one atom, not periodic) takes that energy; the rest are
    fitted by least squares of E_s − Σ_known against element counts. Returns a summary.
    """
    n_el = len(model.elements)
    feats = torch.cat([p.g for p in prepared]).double()
    species = torch.cat([p.species for p in prepared])
    for k in range(n_el):
        sel = feats[species == k]
        if len(sel) == 0:
            continue
        model.feature_mean[k] = sel.mean(0)
        std = sel.std(0, unbiased=False) if len(sel) > 1 else torch.ones_like(sel[0])
        model.feature_std[k] = std_with_floor(std)
    fixed: dict[int, float] = {}
    if isinstance(reference_energies, dict):
        for el, v in reference_energies.items():
            if el in model.elements:
                fixed[model.elements.index(el)] = float(v)
    for fr, p in zip(frames, prepared, strict=True):
        if len(fr) == 1 and not fr.pbc.any() and fr.energy is not None and len(p.i) == 0:
            fixed.setdefault(int(p.species[0]), float(fr.energy) - p.tail_energy)
    counts = np.zeros((len(prepared), n_el))
    energies = np.zeros(len(prepared))
    has_e = np.zeros(len(prepared), bool)
    for s, p in enumerate(prepared):
        counts[s] = np.bincount(p.species.numpy(), minlength=n_el)
        if p.energy is not None:
            energies[s] = p.energy - p.tail_energy
            has_e[s] = True
    refs = np.zeros(n_el)
    for k, v in fixed.items():
        refs[k] = v
    free = [k for k in range(n_el) if k not in fixed]
    if has_e.any() and free:
        rhs = energies[has_e] - counts[has_e] @ refs
        sol, *_ = np.linalg.lstsq(counts[has_e][:, free], rhs, rcond=None)
        refs[free] = sol
    model.e_ref.copy_(torch.as_tensor(refs))
    if has_e.any():
        resid = (energies[has_e] - counts[has_e] @ refs) / counts[has_e].sum(1)
        scale = float(np.sqrt(np.mean(resid**2)))
        model.energy_scale.fill_(max(scale, 1e-3))
    return {"reference_energies": dict(zip(model.elements, refs.tolist(), strict=True)),
            "energy_scale": float(model.energy_scale)}


def label_scales(prepared: Sequence[Prepared], model: NNP) -> dict[str, float]:
    """Spreads of the labels after reference energies: σ_E (eV/atom), σ_F, σ_S."""
    e = [(p.energy - p.tail_energy - float(model.e_ref[p.species].sum())) / len(p.species)
         for p in prepared if p.energy is not None]
    f = torch.cat([p.forces.reshape(-1) for p in prepared if p.forces is not None]) \
        if any(p.forces is not None for p in prepared) else torch.zeros(1)
    s = torch.cat([p.stress.reshape(-1) for p in prepared if p.stress is not None]) \
        if any(p.stress is not None for p in prepared) else torch.zeros(1)
    sig_e = float(np.sqrt(np.mean(np.square(e)))) if e else 1.0
    return {"energy": max(sig_e, 1e-3), "forces": max(float(f.double().pow(2).mean().sqrt()),
                                                       1e-2),
            "stress": max(float(s.double().pow(2).mean().sqrt()), 1e-4)}
