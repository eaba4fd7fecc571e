"""TOML configuration files validated by pydantic.

Every schema forbids unknown keys (the error names the key) and carries a
``schema_version``. :func:`load_config` reads a file; :func:`dump_resolved` writes the
fully resolved configuration (``config.resolved.toml``) next to a run's outputs.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from nnpot.errors import ConfigError
from nnpot.io import atomic_write_text

SCHEMA_VERSION = 1


class Strict(BaseModel):
    """Base of every configuration schema: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


T = TypeVar("T", bound=BaseModel)


def _format_validation(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
        else:
            parts.append(f"'{loc}': {err['msg']}")
    return f"{source}: " + "; ".join(parts)


def parse_config(schema: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Validate a dict against ``schema``; errors become one-line :class:`ConfigError`."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source)) from None


def load_config(schema: type[T], path: str | os.PathLike | None) -> T:
    """Read and validate a TOML file (``None`` gives the schema's defaults)."""
    if path is None:
        return schema()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{str(path)!r} is not valid TOML: {exc}") from None
    return parse_config(schema, data, source=str(path))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Serialise a nested dict of plain values to TOML (``None`` values are omitted)."""
    lines, tables = [], []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{k}"
        out += f"\n[{name}]\n" + to_toml(v, prefix=name + ".")
    return out


def dump_resolved(config: BaseModel, folder: str | os.PathLike) -> Path:
    """Write ``config.resolved.toml`` into ``folder`` atomically and return its path."""
    path = Path(folder) / "config.resolved.toml"
    atomic_write_text(path, to_toml(config.model_dump(mode="json")))
    return path
