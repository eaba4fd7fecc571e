"""ASE calculator for nnpot models: the ASE contract and nothing more.

Properties: ``energy``, ``free_energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt,
ASE sign; periodic cells only), ``energies`` (eV per atom). A committee model adds
``energy_std`` (eV), ``forces_std`` (N, eV/Å; per atom, sqrt of the mean over members of
|F_m,i − F̄_i|²) and ``max_force_deviation`` (eV/Å, DP-GEN's trigger); a model with an
aleatoric head adds ``energy_aleatoric_std`` (eV; sqrt of the members' mean σ_E²).
Models saved by ``nnpot fit`` also give recalibrated ``energy_sigma`` / ``forces_sigma``
(committees) and committee-free out-of-domain scores ``ood_score`` / ``ood_atoms`` per
atom (score > 1: atom out of domain), ``ood_structure_score`` (max atomic score over the
size-dependent structure threshold calibrated on validation) and ``ood`` (that > 1).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_numbers

from nnpot.atomistic.data import check_coordinates, check_elements, check_overlaps
from nnpot.atomistic.model import NNP
from nnpot.atomistic.neighbors import make_batch, neighbor_pairs
from nnpot.atomistic.uncertainty import ModelUncertainty


class NNPCalculator(Calculator):
    """ASE calculator wrapping an :class:`~nnpot.atomistic.model.NNP`."""

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies",
                              "energy_std", "forces_std", "max_force_deviation",
                              "energy_aleatoric_std", "energy_sigma", "forces_sigma",
                              "ood_score", "ood_atoms", "ood_structure_score", "ood"]

    def __init__(self, model: NNP, header: dict | None = None, check: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.header = header or {}
        self.check = check
        self.dtype = model.e_ref.dtype
        self.species_of = {atomic_numbers[e]: k for k, e in enumerate(model.elements)}
        self.uncertainty = ModelUncertainty(model, self.header) if self.header else None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        numbers = a.get_atomic_numbers()
        positions, cell, pbc = a.get_positions(), np.array(a.get_cell()[:]), a.get_pbc()
        check_elements(numbers, self.model.elements)
        pairs = None
        if self.check:
            check_coordinates(numbers, positions, cell, pbc)
            pairs = neighbor_pairs(positions, cell, pbc, self.model.spec.cutoff)
            check_overlaps(positions, cell, pairs)
        want_stress = "stress" in properties and bool(np.all(pbc))
        committee = self.model.n_members > 1
        batch = make_batch([(numbers, positions, cell, pbc)], self.species_of,
                           self.model.spec.cutoff, self.dtype,
                           pairs=None if pairs is None else [pairs])
        out = self.model.compute(batch, forces=True, stress=want_stress,
                                 member_forces=committee)
        energy_m = out.energy[:, 0].detach()
        energies = out.energies.detach()
        self.results["energy"] = float(energy_m.mean())
        self.results["free_energy"] = self.results["energy"]
        self.results["energies"] = energies.mean(0).cpu().numpy().astype(float)
        self.results["forces"] = out.forces.detach().cpu().numpy().astype(float)
        if want_stress:
            s = out.stress[0].detach().cpu().numpy().astype(float)
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2],
                                               s[0, 1]])
        if committee:
            mf = out.member_forces.detach()
            dev = (mf - mf.mean(0)).pow(2).sum(-1).mean(0).sqrt()
            self.results["energy_std"] = float(energy_m.std(unbiased=False))
            self.results["forces_std"] = dev.cpu().numpy().astype(float)
            self.results["max_force_deviation"] = float(dev.max())
        else:
            self.results["energy_std"] = 0.0
            self.results["forces_std"] = np.zeros(len(a))
            self.results["max_force_deviation"] = 0.0
        if out.log_var is not None:
            log_var = out.log_var[:, 0].detach()
            self.results["energy_aleatoric_std"] = float(log_var.exp().mean().sqrt())
        if self.uncertainty is not None:
            self.uncertainty.annotate(self.results, len(a), out.features, batch.species)


def load_calculator(path: str | os.PathLike, dtype: str | torch.dtype = "float64",
                    device: str = "cpu", check: bool = True) -> NNPCalculator:
    """ASE calculator for the model in ``path`` (a ``.nnp`` file).

    >>> calc = load_calculator("model.nnp"); atoms.calc = calc; atoms.get_forces()
    """
    from nnpot.atomistic.modelfile import load_model

    if isinstance(dtype, str):
        dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    model, header = load_model(path, dtype=dtype, device=device)
    return NNPCalculator(model, header, check=check)
