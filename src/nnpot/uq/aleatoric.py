"""Aleatoric (data-noise) uncertainty: heteroscedastic Gaussian likelihoods.

A heteroscedastic model predicts a mean ``μ(x)`` and a variance ``σ²(x)`` for each target
``y`` and is trained by the Gaussian negative log-likelihood

    NLL = ½ [ log(2π σ²) + (y − μ)² / σ² ]                                   (per sample)

after a mean-squared-error warm-up (the variance head cannot learn before the mean is
reasonable). Seitzer et al., "On the pitfalls of heteroscedastic uncertainty estimation
with probabilistic neural networks", ICLR 2022, show that plain NLL down-weights hard
samples (gradient of μ scales as 1/σ²) and propose β-NLL: each sample's NLL is multiplied
by ``stop_gradient(σ²)^β``; β = 0 is NLL, β = 1 gives the mean the MSE gradient, β = 0.5 is
their recommended compromise.

For atomistic models each atom contributes a variance and the energy variance is their sum
(independent atomic noise): ``σ²_E = Σ_i σ²_i`` (:func:`structure_variance`).

Units: ``mean`` and ``target`` share units (eV, MeV, ...); ``var`` is in those units
squared. Losses are dimensionless up to the ``log σ²`` term (which carries the unit
choice as an additive constant). All functions accept torch tensors (differentiable; dtype
and device follow the inputs) and numpy arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnpot.uq._common import UQInputError, is_tensor, torch

__all__ = [
    "beta_nll",
    "gaussian_nll",
    "heteroscedastic_loss",
    "positive_variance",
    "structure_variance",
]

_LOG_2PI = math.log(2.0 * math.pi)
_REDUCTIONS = ("mean", "sum", "none")


def _reduce(x: Any, reduction: str) -> Any:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


def _check(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise UQInputError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")


def _pointwise_nll(mean: Any, var: Any, target: Any) -> Any:
    if is_tensor(mean) or is_tensor(var) or is_tensor(target):
        return 0.5 * (torch.log(var) + _LOG_2PI + (target - mean) ** 2 / var)
    mean, var, target = (np.asarray(a, dtype=np.float64) for a in (mean, var, target))
    if np.any(var <= 0):
        raise UQInputError("var must be strictly positive everywhere.")
    return 0.5 * (np.log(var) + _LOG_2PI + (target - mean) ** 2 / var)


def gaussian_nll(mean: Any, var: Any, target: Any, reduction: str = "mean") -> Any:
    """Gaussian negative log-likelihood ``½[log(2πσ²) + (y − μ)²/σ²]`` (full, with the 2π).

    Args:
        mean: predicted mean μ (units of the target).
        var: predicted variance σ² > 0 (target units squared); parametrise it with
            :func:`positive_variance` so that it cannot reach zero.
        target: observed y.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over all elements.

    Returns:
        The loss (torch tensor if any input is one, numpy otherwise).
    """
    _check(reduction)
    return _reduce(_pointwise_nll(mean, var, target), reduction)


def beta_nll(
    mean: Any, var: Any, target: Any, beta: float = 0.5, reduction: str = "mean"
) -> Any:
    """β-NLL of Seitzer et al. (ICLR 2022): ``sg(σ²)^β · ½[log(2πσ²) + (y − μ)²/σ²]``.

    ``sg`` is stop-gradient (``var.detach()``), so the value weights each sample's NLL by
    ``σ^{2β}`` while the gradients keep the NLL's form; ``β = 0`` is :func:`gaussian_nll`
    and ``β = 1`` gives μ exactly the MSE gradient ``(μ − y)``. Same arguments and units
    as :func:`gaussian_nll`; ``0 ≤ β ≤ 1``.
    """
    _check(reduction)
    if not 0.0 <= float(beta) <= 1.0:
        raise UQInputError(f"beta must lie in [0, 1], got {beta}.")
    nll = _pointwise_nll(mean, var, target)
    if is_tensor(nll):
        v = var.detach() if is_tensor(var) else torch.as_tensor(var, dtype=nll.dtype)
        w = v**beta
    else:
        w = np.asarray(var, dtype=np.float64) ** beta
    return _reduce(w * nll, reduction)


def heteroscedastic_loss(
    mean: Any, var: Any, target: Any, kind: str = "nll", beta: float = 0.5
) -> Any:
    """One entry point for the training schedule: ``kind`` = ``"mse"`` (warm-up; ``var``
    ignored), ``"nll"`` (:func:`gaussian_nll`) or ``"beta_nll"`` (:func:`beta_nll`).
    Mean over all elements.
    """
    if kind == "mse":
        return ((mean - target) ** 2).mean()
    if kind == "nll":
        return gaussian_nll(mean, var, target)
    if kind == "beta_nll":
        return beta_nll(mean, var, target, beta=beta)
    raise UQInputError(f"kind must be 'mse', 'nll' or 'beta_nll', got {kind!r}.")


def positive_variance(raw: Any, min_var: float = 1e-10) -> Any:
    """Map an unconstrained network output to a variance: ``softplus(raw) + min_var``.

    Softplus grows linearly (not exponentially) for large ``raw``, which keeps NLL training
    stable; ``min_var`` (target units squared) keeps σ² away from zero.
    """
    if is_tensor(raw):
        return torch.nn.functional.softplus(raw) + min_var
    r = np.asarray(raw, dtype=np.float64)
    return np.logaddexp(0.0, r) + min_var


def structure_variance(atomic_var: Any, structure_index: Any, n_structures: int) -> Any:
    """Sum per-atom variances into per-structure variances: ``σ²_S = Σ_{i∈S} σ²_i``.

    Args:
        atomic_var: ``[n_atoms]`` per-atom variances (eV²).
        structure_index: ``[n_atoms]`` integer structure of each atom, in ``[0, n_structures)``.
        n_structures: number of structures.

    Returns:
        ``[n_structures]`` variances (eV²); torch in, torch out (differentiable).
    """
    if is_tensor(atomic_var):
        idx = torch.as_tensor(structure_index, device=atomic_var.device, dtype=torch.long)
        if idx.shape != atomic_var.shape:
            raise UQInputError("atomic_var and structure_index must have the same shape.")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= int(n_structures)):
            raise UQInputError("structure_index must lie in [0, n_structures).")
        out = torch.zeros(int(n_structures), dtype=atomic_var.dtype, device=atomic_var.device)
        return out.index_add(0, idx, atomic_var)
    v = np.asarray(atomic_var, dtype=np.float64)
    idx = np.asarray(structure_index, dtype=np.int64)
    if idx.shape != v.shape:
        raise UQInputError("atomic_var and structure_index must have the same shape.")
    if idx.size and (idx.min() < 0 or idx.max() >= int(n_structures)):
        raise UQInputError("structure_index must lie in [0, n_structures).")
    return np.bincount(idx, weights=v, minlength=int(n_structures))
