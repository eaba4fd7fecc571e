"""Save and load atomistic models as ``.nnp`` files (safetensors + JSON header).

The header (see :meth:`nnpot.atomistic.model.NNP.header`) holds the descriptor set,
network shapes, units and training provenance; the tensors hold weights, feature scaling
and reference energies. Loading never unpickles.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from nnpot.atomistic.model import NNP, build_model
from nnpot.io import load_model_file, save_model_file


def save_model(path: str | os.PathLike, model: NNP, extra: dict[str, Any] | None = None):
    """Write ``model`` to ``path`` atomically; ``extra`` goes into the header (provenance,
    metrics, out-of-domain statistics, recalibration...)."""
    header = model.header()
    header.update(extra or {})
    header.setdefault("extra", {})
    save_model_file(path, model.state_dict(), header)


def load_model(path: str | os.PathLike, dtype: torch.dtype = torch.float64,
               device: str | torch.device = "cpu") -> tuple[NNP, dict[str, Any]]:
    """Load ``(model, header)`` from a ``.nnp`` file; clear errors for other files."""
    tensors, header = load_model_file(path, kind="atomistic")
    model = build_model(header)
    model.load_state_dict(tensors)
    model.to(device=device, dtype=dtype)
    model.eval()
    return model, header
