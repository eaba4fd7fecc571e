"""Neighbour lists reused between MD steps (Verlet lists with a skin) and a calculator that
uses them.

A list of candidate pairs is built by vesin with radius r_c + skin (Å). While no atom has
moved more than skin/2 since that build (and cell, periodicity and atoms are unchanged),
every pair closer than r_c now was closer than r_c + skin then (|Δr_ij| ≤ |Δr_i| + |Δr_j|
≤ skin), so filtering the candidates by |r_j − r_i + S·h| < r_c gives exactly the pairs a
fresh list would give (same set, possibly in another order within a centre: energies and
forces agree to rounding). Filtering costs O(candidates) per step instead of a full
cell-list search, and yields the closest distance for the overlap check for free.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from nnpot.atomistic.calculator import NNPCalculator
from nnpot.atomistic.data import (
    MIN_DISTANCE,
    check_coordinates,
    check_elements,
    check_overlaps,
)
from nnpot.atomistic.neighbors import make_batch, neighbor_pairs
from nnpot.errors import InputError


class VerletPairs:
    """Pairs within ``cutoff`` (Å) from a candidate list of radius ``cutoff + skin``.

    Call with (positions [N,3] Å, cell [3,3] Å, pbc [3]) -> (i, j, S) like
    :func:`nnpot.atomistic.neighbors.neighbor_pairs` (full list, sorted by i). ``builds``
    counts the candidate-list builds.
    """

    def __init__(self, cutoff: float, skin: float = 1.0):
        if not (np.isfinite(cutoff) and cutoff > 0):
            raise InputError(f"The neighbour-list cutoff must be a positive length in Å, "
                             f"got {cutoff!r}.")
        if not (np.isfinite(skin) and skin >= 0):
            raise InputError(f"The neighbour-list skin must be a length >= 0 Å, got {skin!r}.")
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.builds = 0
        self._ref = None  # positions, cell and pbc of the last build
        self._cand = self._shift = None
        self.min_distance = float("inf")  # Å, closest pair of the last call

    def _stale(self, positions, cell, pbc) -> bool:
        if self._ref is None:
            return True
        pos0, cell0, pbc0 = self._ref
        if pos0.shape != positions.shape or not np.array_equal(pbc0, pbc):
            return True
        if pbc.any() and not np.array_equal(cell0, cell):
            return True
        moved = np.einsum("ij,ij->i", positions - pos0, positions - pos0).max(initial=0.0)
        return bool(moved > (0.5 * self.skin) ** 2)

    def __call__(self, positions, cell, pbc):
        positions = np.asarray(positions, dtype=np.float64)
        cell = np.asarray(cell, dtype=np.float64)
        pbc = np.asarray(pbc, dtype=bool)
        if self._stale(positions, cell, pbc):
            i, j, s = neighbor_pairs(positions, cell, pbc, self.cutoff + self.skin)
            self._cand = (torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(s))
            self._ref = (positions.copy(), cell.copy(), pbc.copy())
            self._shift = torch.from_numpy(s @ cell) if pbc.any() else None
            self.builds += 1
        i, j, s = self._cand
        pos = torch.from_numpy(positions)
        d = pos.index_select(0, j) - pos.index_select(0, i)
        if self._shift is not None:
            d += self._shift
        r2 = (d * d).sum(1)
        keep = torch.nonzero(r2 < self.cutoff * self.cutoff).squeeze(1)
        self.min_distance = float(r2.index_select(0, keep).min().sqrt()) if len(keep) \
            else float("inf")
        return tuple(t.index_select(0, keep).numpy() for t in (i, j, s))


class SkinCalculator(NNPCalculator):
    """:class:`~nnpot.atomistic.calculator.NNPCalculator` whose pair lists come from a
    :class:`VerletPairs` (``skin`` in Å; 0 rebuilds every call). Same properties and units;
    results equal those with fresh lists to rounding."""

    def __init__(self, model, header: dict | None = None, check: bool = True,
                 skin: float = 1.0, **kwargs):
        super().__init__(model, header, check=check, **kwargs)
        self.verlet = VerletPairs(model.spec.cutoff, skin)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        a = self.atoms
        numbers = a.get_atomic_numbers()
        positions, cell, pbc = a.get_positions(), np.array(a.get_cell()[:]), a.get_pbc()
        check_elements(numbers, self.model.elements)
        if self.check:
            check_coordinates(numbers, positions, cell, pbc)
        pairs = self.verlet(positions, cell, pbc)
        if self.check and self.verlet.min_distance < MIN_DISTANCE:
            check_overlaps(positions, cell, pairs)  # raises, naming the pair
        want_stress = "stress" in properties and bool(np.all(pbc))
        batch = make_batch([(numbers, positions, cell, pbc)], self.species_of,
                           self.model.spec.cutoff, self.dtype, pairs=[pairs])
        self._store(batch, properties, want_stress)

    def _store(self, batch, properties, want_stress):
        """The results block of :meth:`NNPCalculator.calculate` for a prepared batch."""
        out = self.model.compute(batch, forces=True, stress=want_stress,
                                 member_forces=self.model.n_members > 1)
        n = batch.species.shape[0]
        energy_m = out.energy[:, 0].detach()
        r = self.results
        r["energy"] = r["free_energy"] = float(energy_m.mean())
        r["energies"] = out.energies.detach().mean(0).cpu().numpy().astype(float)
        r["forces"] = out.forces.detach().cpu().numpy().astype(float)
        if want_stress:
            s = out.stress[0].detach().cpu().numpy().astype(float)
            r["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        if self.model.n_members > 1:
            mf = out.member_forces.detach()
            dev = (mf - mf.mean(0)).pow(2).sum(-1).mean(0).sqrt()
            r["energy_std"] = float(energy_m.std(unbiased=False))
            r["forces_std"] = dev.cpu().numpy().astype(float)
            r["max_force_deviation"] = float(dev.max())
        else:
            r["energy_std"], r["max_force_deviation"] = 0.0, 0.0
            r["forces_std"] = np.zeros(n)
        if out.log_var is not None:
            r["energy_aleatoric_std"] = float(out.log_var[:, 0].exp().mean().sqrt())
        if self.uncertainty is not None:
            self.uncertainty.annotate(r, n, out.features, batch.species)
