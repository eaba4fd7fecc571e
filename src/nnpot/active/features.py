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

``atom_features`` gives the same activations per atom, φ_{m,i} = h_{m,i} − h⁰_{m,e(i)} in
element e(i)'s columns (zeros elsewhere), so that a structure's ``last_layer`` row is their
mean; ``d_optimal_atoms`` treats a structure's atoms as its rows of information
(Σ_i φ_i φ_iᵀ, a proxy for its 3N force labels, which all depend on every atom's energy).

``descriptor`` (farthest-point): the mean scaled symmetry-function vector per element,
concatenated (zero for an absent element).

:func:`choose_batch` turns these features (or the committee's force deviation) into the
batch a ``[select] method`` picks; the loop and the label-efficiency benchmark share it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers

from nnpot.active.select import (
    d_optimal,
    d_optimal_blocks,
    farthest_point,
    max_disagreement,
    shortlist_size,
)
from nnpot.atomistic.model import NNP
from nnpot.atomistic.neighbors import make_batch, pair_vectors
from nnpot.errors import InputError

__all__ = ["METHODS", "atom_features", "choose_batch", "max_force_deviation", "structure_features"]

METHODS = ("d_optimal", "d_optimal_atoms", "disagreement", "farthest_point", "hybrid", "random")
COST_METHODS = ("d_optimal", "d_optimal_atoms", "hybrid")  # methods that weigh a label cost


def label_cost(structures: Sequence[Atoms], kind: str = "uniform", exponent: float = 1.0
               ) -> np.ndarray | None:
    """Per-structure label cost for :func:`choose_batch`: None for ``"uniform"``, else
    (number of atoms) ** ``exponent`` for ``"atoms"`` (1: per force label; ~3 for the
    cubic scaling of a DFT oracle)."""
    if kind == "uniform":
        return None
    if kind != "atoms":
        raise InputError(f"unknown label cost {kind!r}; use 'uniform' or 'atoms'")
    if not np.isfinite(exponent) or exponent < 0:
        raise InputError(f"the cost exponent must be a number >= 0, got {exponent!r}")
    return np.array([float(len(a)) ** exponent for a in structures])
HYBRID_PREFILTER = 4.0  # shortlist = the 4·budget largest σ_max (see choose_batch)


def _feature_batches(model: NNP, structures: Sequence[Atoms], chunk: int):
    """Yield (structures, Batch, descriptors g) for consecutive groups of ``chunk``."""
    species_of = {atomic_numbers[e]: k for k, e in enumerate(model.elements)}
    for start in range(0, len(structures), chunk):
        group = structures[start:start + chunk]
        b = make_batch([(a.numbers, a.positions, np.asarray(a.cell[:]), a.pbc)
                        for a in group], species_of, model.spec.cutoff, model.e_ref.dtype)
        rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
        yield group, b, model.features(b, rij)


@torch.no_grad()
def structure_features(model: NNP, structures: Sequence[Atoms], kind: str = "last_layer",
                       chunk: int = 64) -> np.ndarray:
    """Feature matrix (n_structures, d) of ``structures`` under ``model`` (float64).

    ``kind``: ``"last_layer"`` (d = Σ_e M·H_e) or ``"descriptor"`` (d = Σ_e F_e); see the
    module docstring. Unitless (scaled features and activations).
    """
    if kind not in ("last_layer", "descriptor"):
        raise InputError(f"unknown feature kind {kind!r}; use 'last_layer' or 'descriptor'")
    dtype = model.e_ref.dtype
    out = []
    for group, b, g in _feature_batches(model, structures, chunk):
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


@torch.no_grad()
def atom_features(model: NNP, structures: Sequence[Atoms], chunk: int = 64
                  ) -> list[np.ndarray]:
    """Per-atom last-layer features: one (n_atoms, d) float64 array per structure,
    d = Σ_e M·H_e as in :func:`structure_features` (``"last_layer"``), whose rows are
    the means of these. Unitless."""
    dtype = model.e_ref.dtype
    out: list[np.ndarray] = []
    for _, b, g in _feature_batches(model, structures, chunk):
        parts = []
        for k, (idx, x) in enumerate(model.scaled_inputs(b.species, g)):
            cols = model.columns(k)
            x0 = (-model.feature_mean[k, cols] / model.feature_std[k, cols])[None]
            head = model.heads[k]
            h = head.last_hidden(x) - head.last_hidden(x0)
            parts.append((idx, h.permute(1, 0, 2).reshape(len(idx), -1)))
        width = sum(p.shape[1] for _, p in parts)
        full = torch.zeros(len(b.species), width, dtype=dtype)
        col = 0
        for idx, p in parts:
            full[idx, col:col + p.shape[1]] = p
            col += p.shape[1]
        full = full.double().numpy()
        ends = np.cumsum(b.n_atoms.numpy())
        out += [full[e - n:e] for e, n in zip(ends, b.n_atoms.numpy(), strict=True)]
    return out


def max_force_deviation(model: NNP, structures: Sequence[Atoms]) -> np.ndarray:
    """The committee's σ_max = max_i sqrt(mean_m |F_m,i − F̄_i|²) per structure (eV/Å),
    the watchdog's trigger (:mod:`nnpot.active.explore`)."""
    from nnpot.atomistic.data import Frame
    from nnpot.atomistic.workflow import predict_frames

    frames = [Frame(a.numbers, a.positions, np.asarray(a.cell[:]), np.asarray(a.pbc))
              for a in structures]
    preds = predict_frames(model, frames, stress=False)
    return np.array([p.get("max_force_deviation", 0.0) for p in preds])


def choose_batch(method: str, model: NNP | None, pool: Sequence[Atoms], budget: int,
                 sigmas=None, labelled: Sequence[Atoms] = (), seed=0, cost=None) -> np.ndarray:
    """Indices of ``pool`` to label, at most ``budget`` of them (a ``[select] method``).

    - ``"disagreement"``: the largest ``sigmas`` (σ_max in eV/Å; computed with ``model``
      by :func:`max_force_deviation` when not given);
    - ``"d_optimal"``: greedy D-optimal on last-layer features, the information matrix
      starting from the ``labelled`` structures' features (+ 10⁻⁶ I);
    - ``"d_optimal_atoms"``: greedy D-optimal with a structure's per-atom features as its
      rows of information (:func:`atom_features`,
      :func:`nnpot.active.select.d_optimal_blocks`), prior from the ``labelled`` atoms;
    - ``"hybrid"``: disagreement pre-filter, then D-optimal for diversity
      (:func:`nnpot.active.select.disagreement_then_d_optimal`): the
      ``HYBRID_PREFILTER · budget`` largest σ_max, among them greedy D-optimal as for
      ``"d_optimal"`` (features are computed for the shortlist only);
    - ``"farthest_point"``: farthest-point sampling on descriptor features, distances to
      the ``labelled`` structures included;
    - ``"random"``: uniform without replacement, ``numpy.random.default_rng(seed)``.

    ``cost`` (one number > 0 per pool structure, e.g. its atoms or expected oracle
    seconds): the D-optimal stages of ``"d_optimal"``, ``"d_optimal_atoms"`` and
    ``"hybrid"`` then maximise information gain per unit cost
    (:func:`nnpot.active.select.d_optimal`); other methods refuse a cost. A pool no larger
    than the budget is taken whole.
    """
    if method not in METHODS:
        raise InputError(f"unknown selection method {method!r}; use one of {METHODS}")
    if int(budget) != budget or budget < 0:
        raise InputError(f"the batch budget must be a non-negative integer, got {budget!r}")
    if cost is not None and method not in COST_METHODS:
        raise InputError(f"a label cost applies to {COST_METHODS}, not to {method!r}")
    if not len(pool) or budget == 0:
        return np.zeros(0, dtype=np.intp)
    if cost is not None:
        cost = np.asarray(cost, dtype=float)
        if cost.shape != (len(pool),):
            raise InputError(f"need one label cost per pool structure ({len(pool)}), "
                             f"got shape {cost.shape}")
    if len(pool) <= budget:
        return np.arange(len(pool), dtype=np.intp)
    if method == "random":
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(len(pool), size=int(budget), replace=False)).astype(np.intp)
    if model is None and not (method == "disagreement" and sigmas is not None):
        raise InputError(f"selection method {method!r} needs the committee model")
    if method in ("disagreement", "hybrid"):
        s = max_force_deviation(model, pool) if sigmas is None else np.asarray(sigmas, float)
        if s.shape != (len(pool),):
            raise InputError(f"need one σ per pool structure ({len(pool)}), got {s.shape}")
        if method == "disagreement":
            return max_disagreement(s, int(budget))
        top = max_disagreement(s, shortlist_size(len(pool), int(budget), HYBRID_PREFILTER))
        pool = [pool[i] for i in top]
        cost = None if cost is None else cost[top]
    if method == "d_optimal_atoms":
        ref = np.concatenate(atom_features(model, labelled)) if len(labelled) else None
        return d_optimal_blocks(atom_features(model, pool), int(budget),
                                prior=1e-6 if ref is None else ref, ridge=1e-6, cost=cost)
    kind = "descriptor" if method == "farthest_point" else "last_layer"
    phi = structure_features(model, pool, kind)
    ref = structure_features(model, labelled, kind) if len(labelled) else None
    if method == "d_optimal":
        return d_optimal(phi, int(budget), prior=1e-6 if ref is None else ref, ridge=1e-6,
                         cost=cost)
    if method == "hybrid":
        return top[d_optimal(phi, int(budget), prior=1e-6 if ref is None else ref, ridge=1e-6,
                             cost=cost)]
    return farthest_point(phi, int(budget), reference=ref)
