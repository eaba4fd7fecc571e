"""Committees (ensembles) of models: mean, epistemic spread, DP-GEN force deviation, bootstrap.

A committee of M members predicts values ``y_m``; its prediction is the mean
``ȳ = (1/M) Σ_m y_m`` and its epistemic uncertainty the spread
``σ = sqrt((1/M) Σ_m (y_m − ȳ)²)`` (population standard deviation, ``ddof=0``). We use
``ddof=0`` because the members *are* the ensemble (the same convention as DP-GEN's force
deviation below); committees are small, so the spread is an estimate whose absolute scale
is fixed afterwards by recalibration (:class:`nnpot.uq.calibration.ScalarRecalibration`),
which absorbs the ``sqrt(M/(M−1))`` difference between the two conventions.

Units are those of the values (eV, eV/Å, MeV, degrees, ...): nothing here rescales.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnpot.uq._common import UQInputError, as_array, is_tensor

__all__ = [
    "atomic_force_deviation",
    "bootstrap_weights",
    "committee_stats",
    "max_force_deviation",
]


def committee_stats(member_values: Any, axis: int = 0) -> tuple[Any, Any]:
    """Mean and spread of committee predictions along ``axis`` (the member axis).

    ``mean = (1/M) Σ_m y_m``, ``std = sqrt((1/M) Σ_m (y_m − mean)²)`` (``ddof=0``).

    Args:
        member_values: array or tensor with the M members along ``axis`` (any units).
        axis: the member axis.

    Returns:
        ``(mean, std)`` with ``axis`` removed, same type (numpy / torch) and units as the
        input. Torch inputs keep their autograd graph, device and dtype.
    """
    if is_tensor(member_values):
        if member_values.ndim == 0 or member_values.shape[axis] < 1:
            raise UQInputError("committee_stats needs at least one member along the axis.")
        mean = member_values.mean(dim=axis)
        std = (member_values - mean.unsqueeze(axis)).pow(2).mean(dim=axis).sqrt()
        return mean, std
    a = np.asarray(member_values, dtype=np.float64)
    if a.ndim == 0 or a.shape[axis] < 1:
        raise UQInputError("committee_stats needs at least one member along the axis.")
    return a.mean(axis=axis), a.std(axis=axis, ddof=0)


def atomic_force_deviation(forces_members: Any) -> Any:
    """Per-atom force deviation ``ε_i = sqrt((1/M) Σ_m |F_m,i − F̄_i|²)`` in eV/Å.

    ``F̄_i = (1/M) Σ_m F_m,i`` and ``|·|`` is the Euclidean norm of the 3-vector, as in
    DP-GEN (Zhang et al., Comput. Phys. Commun. 253, 107206 (2020), Eq. for ε_t).

    Args:
        forces_members: ``[M, n_atoms, 3]`` forces of the M members (eV/Å), numpy or torch.

    Returns:
        ``[n_atoms]`` deviations (eV/Å), same type as the input.
    """
    shape = tuple(forces_members.shape)
    if len(shape) != 3 or shape[2] != 3 or shape[0] < 1:
        raise UQInputError(f"forces_members must have shape [M, n_atoms, 3], got {shape}.")
    if is_tensor(forces_members):
        dev = forces_members - forces_members.mean(dim=0, keepdim=True)
        return dev.pow(2).sum(dim=2).mean(dim=0).sqrt()
    f = as_array(forces_members, "forces_members")
    dev = f - f.mean(axis=0, keepdims=True)
    return np.sqrt((dev**2).sum(axis=2).mean(axis=0))


def max_force_deviation(forces_members: Any) -> float:
    """DP-GEN's trigger: ``max_i sqrt((1/M) Σ_m |F_m,i − F̄_i|²)`` in eV/Å.

    Zhang et al., "DP-GEN: A concurrent learning platform for the generation of reliable
    deep learning based potential energy models", Comput. Phys. Commun. 253, 107206
    (2020): the maximal standard deviation of the atomic force predicted by the model
    ensemble. A structure with no atoms gives 0.0.

    Args:
        forces_members: ``[M, n_atoms, 3]`` forces (eV/Å), numpy or torch.

    Returns:
        The maximum over atoms (eV/Å), a Python float.
    """
    eps = atomic_force_deviation(forces_members)
    if eps.shape[0] == 0:
        return 0.0
    return float(eps.max())


def bootstrap_weights(n_samples: int, n_members: int, seed: int) -> np.ndarray:
    """Bootstrap multiplicities: member m sees sample j ``w[m, j]`` times.

    Each member draws ``n_samples`` indices uniformly with replacement (Efron's bootstrap),
    so every row sums to ``n_samples`` and about ``1 − 1/e ≈ 63 %`` of the samples have a
    nonzero count. Use the counts as per-sample loss weights (or repeat the samples);
    samples with ``w[m, j] == 0`` are that member's out-of-bag set. Deterministic in
    ``seed`` (numpy ``default_rng``).

    Returns:
        ``int64`` array ``[n_members, n_samples]``.
    """
    if int(n_samples) < 1 or int(n_members) < 1:
        raise UQInputError(
            f"bootstrap_weights needs n_samples >= 1 and n_members >= 1, got {n_samples}, "
            f"{n_members}."
        )
    rng = np.random.default_rng(seed)
    out = np.zeros((int(n_members), int(n_samples)), dtype=np.int64)
    for m in range(int(n_members)):
        idx = rng.integers(0, int(n_samples), size=int(n_samples))
        out[m] = np.bincount(idx, minlength=int(n_samples))
    return out
