"""Errors raised at nnpot's boundaries.

Every error is one clear sentence that names the problem and says what to do. The CLI
turns any :class:`InputError` into a single line on stderr and exit code 2.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a file, a structure, a configuration or an argument."""


class UnknownElementError(InputError):
    """A structure contains an element the model was not trained on."""


class BadStructureError(InputError):
    """Non-finite coordinates, overlapping atoms, a degenerate cell, ..."""


class MissingLabelError(InputError):
    """A reference label (energy, forces, stress) is missing from the data."""


class EmptyDatasetError(InputError):
    """A data set (or one of its splits) holds no structures."""


class MalformedFileError(InputError):
    """A file cannot be parsed in the format it claims to be in."""


class ConfigError(InputError):
    """A configuration file is not TOML, or has unknown keys or bad values."""


class FormatVersionError(InputError):
    """A model file was written by a newer nnpot (or is another kind of model)."""


class OracleError(RuntimeError):
    """A labelling oracle failed on one structure (recorded, never fatal to a loop)."""
