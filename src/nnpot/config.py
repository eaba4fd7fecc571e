"""TOML configuration files validated by pydantic.

Every schema forbids unknown keys (the error names the key) and carries a
``schema_version``. :func:`load_config` reads a file; :func:`dump_resolved` writes the
fully resolved configuration (``config.resolved.toml``) next to a run's outputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


# --- atomistic fit -------------------------------------------------------------------

class DataConfig(Strict):
    """[data]: where the labelled structures are and how to split them."""

    train: str | None = None  # extxyz or ASE db; the CLI's --data overrides it
    test: str | None = None  # optional separate test file (else a split of `train`)
    energy_key: str = "REF_energy"
    forces_key: str = "REF_forces"
    stress_key: str = "REF_stress"
    weight_key: str = "weight"
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    split_seed: int = 0


class DispersionConfig(Strict):
    """[model.dispersion]: pairwise −f_damp(r) C6/r^6 tail (see nnpot.atomistic.tails)."""

    c6: Literal["table", "learn"] | float = "table"
    damping: Literal["tang-toennies", "becke-johnson"] = "tang-toennies"
    cutoff: float = Field(20.0, gt=0)
    c8: bool = False
    # weight of the anchored prior on learned coefficients against the mean training loss:
    # 2 (label noise / label spread)²; the default suits reference data fitted to ~1 % of
    # their spread (see nnpot.atomistic.tails.PRIOR_WEIGHT)
    prior_weight: float = Field(1e-4, gt=0, le=1.0)


class ModelConfig(Strict):
    """[model]: descriptors and networks."""

    elements: list[str] | None = None  # default: the elements in the training data
    cutoff: float = Field(6.0, gt=0.5, le=20.0)  # Å
    cutoff_function: Literal["cosine", "polynomial"] = "cosine"
    descriptors: str = "default"  # "default" (automatic grid) or a path to n2p2 input.nn
    # radial shells per element of the automatic grid (default_spec). 24 rather than the
    # grid's own 8: on the shipped water set (benchmarks/README_accuracy.md, same 600 s
    # budget) 8 shells gave 695 meV/Å force RMSE, 24 gave 162 (TorchANI 432), for ~1.3x
    # the cost of energy + forces.
    n_radial: int = Field(24, ge=1, le=64)
    hidden: list[int] = Field(default_factory=lambda: [25, 25])
    activation: Literal["silu", "tanh", "softplus", "gelu"] = "silu"
    committee: int = Field(1, ge=1, le=64)
    aleatoric: bool = False
    # σ recalibration stored in the model, fitted on the validation split: one factor, or
    # an isotonic map of interval multipliers (Kuleshov et al. 2018; JSON table)
    recalibration: Literal["scalar", "isotonic"] = "scalar"
    reference_energies: Literal["fit"] | dict[str, float] = "fit"
    dispersion: DispersionConfig | None = None

    @field_validator("hidden")
    @classmethod
    def _hidden_positive(cls, v: list[int]) -> list[int]:
        if not v or any(h < 1 for h in v):
            raise ValueError("hidden layer sizes must be positive integers")
        return v


class TrainingConfig(Strict):
    """[training]: loss weights, optimiser, schedule, stopping."""

    epochs: int = Field(200, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(3e-3, gt=0)
    lr_final: float = Field(1e-4, gt=0)
    weight_decay: float = Field(1e-6, ge=0)
    energy_weight: float = Field(1.0, ge=0)
    forces_weight: float = Field(1.0, ge=0)
    stress_weight: float = Field(0.0, ge=0)
    patience: int = Field(50, ge=1)  # early stopping on the validation loss
    max_time: float | None = Field(None, gt=0)  # seconds of training, then stop cleanly
    dtype: Literal["float64", "float32"] = "float64"
    seed: int = 0
    bootstrap: bool = True  # committee members see bootstrap resamples of the training set
    aleatoric_warmup: float = Field(0.3, ge=0, le=1)  # fraction of epochs on MSE first
    beta_nll: float | None = Field(None, ge=0, le=1)


class FitConfig(Strict):
    """Everything `nnpot fit` needs (TOML: [data], [model], [training])."""

    schema_version: int = SCHEMA_VERSION
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
