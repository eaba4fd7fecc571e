"""nnpot: neural-network potentials for atoms and nucleons, with honest uncertainty.

The public API is re-exported here (lazily, so ``import nnpot.nuclear`` stays light);
everything else may change.

>>> from nnpot import load_calculator
>>> atoms.calc = load_calculator("water.nnp")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_calculator": "nnpot.atomistic.calculator",
    "NNPCalculator": "nnpot.atomistic.calculator",
    "NNP": "nnpot.atomistic.model",
    "load_model": "nnpot.atomistic.modelfile",
    "save_model": "nnpot.atomistic.modelfile",
    "fit": "nnpot.atomistic.workflow",
    "evaluate": "nnpot.atomistic.workflow",
    "predict_frames": "nnpot.atomistic.workflow",
    "read_frames": "nnpot.atomistic.data",
    "run_md": "nnpot.atomistic.md",
    "DescriptorSpec": "nnpot.atomistic.descriptors",
    "default_spec": "nnpot.atomistic.descriptors",
    "FitConfig": "nnpot.config",
    "InputError": "nnpot.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nnpot' has no attribute {name!r}")
