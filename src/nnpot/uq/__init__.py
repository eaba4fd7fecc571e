"""Uncertainty quantification on tensors and arrays: knows nothing of atoms or nucleons.

* :mod:`~nnpot.uq.committee` — committee mean/spread, DP-GEN max force deviation, bootstrap.
* :mod:`~nnpot.uq.aleatoric` — Gaussian NLL, β-NLL, variance parametrisation.
* :mod:`~nnpot.uq.calibration` — coverage, miscalibration area, NLL, ENCE, Spearman,
  scalar / isotonic recalibration (:mod:`~nnpot.uq.recalibration`), combination.
* :mod:`~nnpot.uq.ood` — committee-free out-of-domain detection on descriptors.
* :mod:`~nnpot.uq.truncation`, :mod:`~nnpot.uq.truncation_gp` — BUQEYE EFT truncation errors.

This package imports nothing else of nnpot; bad input raises :class:`UQInputError`
(a ``ValueError``).
"""

from nnpot.uq._common import UQInputError
from nnpot.uq.aleatoric import (
    beta_nll,
    gaussian_nll,
    heteroscedastic_loss,
    positive_variance,
    structure_variance,
)
from nnpot.uq.calibration import (
    calibration_report,
    combine,
    coverage,
    coverage_curve,
    ence,
    gaussian_nll_np,
    miscalibration_area,
    spearman_error_sigma,
    z_of_level,
)
from nnpot.uq.committee import (
    atomic_force_deviation,
    bootstrap_weights,
    committee_stats,
    max_force_deviation,
)
from nnpot.uq.ood import DescriptorDomain, ledoit_wolf, per_structure
from nnpot.uq.recalibration import (
    IsotonicRecalibration,
    ScalarRecalibration,
    recalibration_from_dict,
)
from nnpot.uq.truncation import TruncationModel, extract_coefficients, truncation_band
from nnpot.uq.truncation_gp import TruncationGP

__all__ = [
    "DescriptorDomain",
    "IsotonicRecalibration",
    "ScalarRecalibration",
    "TruncationGP",
    "TruncationModel",
    "UQInputError",
    "atomic_force_deviation",
    "beta_nll",
    "bootstrap_weights",
    "calibration_report",
    "combine",
    "committee_stats",
    "coverage",
    "coverage_curve",
    "ence",
    "extract_coefficients",
    "gaussian_nll",
    "gaussian_nll_np",
    "heteroscedastic_loss",
    "ledoit_wolf",
    "max_force_deviation",
    "miscalibration_area",
    "per_structure",
    "positive_variance",
    "recalibration_from_dict",
    "spearman_error_sigma",
    "structure_variance",
    "truncation_band",
    "z_of_level",
]
