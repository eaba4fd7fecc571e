"""Uncertainty quantification on tensors and arrays: knows nothing of atoms or nucleons."""
