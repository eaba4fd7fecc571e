"""Per-structure feature vectors of an NNP for batch selection.

``last_layer`` (Fisher / D-optimal): member m's energy per atom is linear in its
last-layer weights w_{m,e}. With h_{m,i} the last hidden activations of atom i and h⁰_{m,e}
those of an atom without neighbours (whose energy is pinned to E_ref),

    E_m/N = Σ_e n_e E_ref,e / N + s Σ_e w_{m,e}ᵀ φ_{m,e},
    φ_{m,e} = (1/N) Σ_{i∈e} (h_{m,i} − h⁰_{m,e})

(s the model's energy scale), so φ (all members and elements concatenated) is the
gradient of the per-atom energy with respect to those weights divided by s, and Σ φφᵀ is
the Gauss–Newton (Fisher) information of energy labels for the last layer (cf. Zaverkin
& Kästner, Mach. Learn.: Sci. Technol. 2, 035009 (2021)).

``descriptor`` (farthest-point): the mean scaled symmetry-function vector per element,
concatenated (zero for an absent element).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers

from nnpot.atomistic.model import NNP
from nnpot.atomistic.neighbors import make_batch, pair_vectors
from nnpot.errors import InputError

__all__ = ["structure_features"]


@torch.no_grad()
def structure_features(model: NNP, structures: Sequence[Atoms], kind: str = "last_layer",
                       chunk: int = 64) -> np.ndarray:
    """Feature matrix (n_structures, d) of ``structures`` under ``model`` (float64).

    ``kind``: ``"last_layer"`` (d = Σ_e M·H_e) or ``"descriptor"`` (d = Σ_e F_e); see the
    module docstring. Unitless (scaled features and activations).
    """
    if kind not in ("last_layer", "descriptor"):
        raise InputError(f"unknown feature kind {kind!r}; use 'last_layer' or 'descriptor'")
    species_of = {atomic_numbers[e]: k for k, e in enumerate(model.elements)}
    dtype = model.e_ref.dtype
    out = []
    for start in range(0, len(structures), chunk):
        group = structures[start:start + chunk]
        b = make_batch([(a.numbers, a.positions, np.asarray(a.cell[:]), a.pbc)
                        for a in group], species_of, model.spec.cutoff, dtype)
        rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
        g = model.features(b, rij)
        n_atoms = b.n_atoms.to(dtype)[:, None]
        blocks = []
        for k, (idx, x) in enumerate(model.scaled_inputs(b.species, g)):
            if kind == "descriptor":
                per_atom = x
            else:
                cols = model.columns(k)
                x0 = (-model.feature_mean[k, cols] / model.feature_std[k, cols])[None]
                head = model.heads[k]
                h = head.last_hidden(x) - head.last_hidden(x0)
                per_atom = h.permute(1, 0, 2).reshape(len(idx), -1)  # (n_e, M·H)
            acc = torch.zeros(len(group), per_atom.shape[1], dtype=dtype)
            acc.index_add_(0, b.batch[idx], per_atom)
            if kind == "descriptor":
                count = torch.bincount(b.batch[idx], minlength=len(group)).to(dtype)
                blocks.append(acc / count.clamp_min(1)[:, None])
            else:
                blocks.append(acc / n_atoms)
        out.append(torch.cat(blocks, dim=1).double().numpy())
    if not out:
        return np.zeros((0, 0))
    return np.concatenate(out, axis=0)
