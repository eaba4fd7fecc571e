"""Model files and atomic writes.

A ``.nnp`` file is a safetensors file: the tensors are the weights, and the safetensors
metadata holds one JSON header under the key ``"nnpot"`` (format version, kind of model,
everything needed to rebuild it). Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnpot.errors import FormatVersionError, MalformedFileError

if TYPE_CHECKING:  # torch is imported lazily: the store and CLI start faster without it
    import torch

FORMAT_VERSION = 1
HEADER_KEY = "nnpot"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_model_file(
    path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], header: Mapping[str, Any]
) -> None:
    """Save weights and a JSON-serialisable header as one safetensors file, atomically.

    ``header`` must contain ``"kind"`` (for example ``"atomistic"`` or ``"nuclear"``);
    ``"format_version"`` is added here.
    """
    from safetensors.torch import save as st_save

    if "kind" not in header:
        raise ValueError("model header needs a 'kind'")
    full = dict(header)
    full["format_version"] = FORMAT_VERSION
    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    blob = st_save(clean, metadata={HEADER_KEY: json.dumps(full, sort_keys=True)})
    atomic_write_bytes(path, blob)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Read only the JSON header of a model file (cheap; no tensors are loaded)."""
    tensors, header = load_model_file(path)
    del tensors
    return header


def load_model_file(
    path: str | os.PathLike, kind: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, header)`` from a ``.nnp`` file written by :func:`save_model_file`.

    Raises :class:`MalformedFileError` for files that are not nnpot model files and
    :class:`FormatVersionError` for a newer format or a model of another ``kind``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path)
    if not path.is_file():
        raise MalformedFileError(f"model file {str(path)!r} does not exist")
    data = path.read_bytes()
    try:
        tensors = st_load(data)

        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + header_len].decode("utf-8")).get("__metadata__", {})
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFileError(
            f"{str(path)!r} is not an nnpot model file (not safetensors: {exc})"
        ) from None
    if HEADER_KEY not in meta:
        raise MalformedFileError(f"{str(path)!r} is a safetensors file but not an nnpot model")
    try:
        header = json.loads(meta[HEADER_KEY])
    except json.JSONDecodeError as exc:
        raise MalformedFileError(f"{str(path)!r} has a corrupt nnpot header: {exc}") from None
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FormatVersionError(
            f"{str(path)!r} has model format version {version!r}, newer than this nnpot "
            f"understands ({FORMAT_VERSION}); upgrade nnpot to load it"
        )
    if kind is not None and header.get("kind") != kind:
        raise FormatVersionError(
            f"{str(path)!r} is a {header.get('kind')!r} model, but a {kind!r} model is needed"
        )
    return tensors, header
