"""Nuclear model files (.nnp = safetensors + JSON header with ``kind = "nuclear"``).

A file holds a committee of K potentials with one architecture: tensors ``m{k}.<param>``
(k = 0 is the central model, fitted to all data), header ``config`` (arguments of
:class:`~nnpot.nuclear.potential.NuclearPotential`), ``members``, ``mesh`` (the mesh used
in the fit: ``{"kind": "default_mesh", "n": N}``; files of format 1 used what is now
:func:`~nnpot.nuclear.mesh.legacy_mesh`), ``units``, ``conventions``, ``truncation``
(BUQEYE posterior, Lambda_b, y_ref per wave) and ``provenance`` (what was fitted how).
Loading never unpickles; ShortRange arguments missing from older files get their old
values (:data:`~nnpot.nuclear.potential.LEGACY_SHORT`).

Public use (MeV, fm, fm^-1):

    model = load_model("np_n2lo.nnp")
    V = model.matrix("3S1-3D1", k)          # (nL, nL, N, N) MeV fm^3 on momenta k [fm^-1]
    V = model(channel, p_out, p_in)          # same, any two momentum sets
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch

from nnpot.errors import FormatVersionError, MalformedFileError
from nnpot.io import load_model_file, save_model_file
from nnpot.nuclear.channels import Channel, get_channel
from nnpot.nuclear.potential import LEGACY_SHORT, NuclearPotential

#: Version of the nuclear header layout (1: legacy mesh, format-1 ShortRange defaults).
NUCLEAR_FORMAT = 2

UNITS = {"momentum": "fm^-1", "potential": "MeV fm^3", "energy": "MeV",
         "phase_shifts": "deg (files), rad (inside)"}
CONVENTIONS = ("|p (L S) J T>, <p|p'> = delta(p-p')/p^2, no i^L factors; "
               "K = V + P int dk k^2 V K / (E - (hbar c)^2 k^2 / (2 mu)); "
               "tan delta = -pi mu p K / (hbar c)^2; Stapp bar mixing angles; "
               "np, mu = m_p m_n/(m_p+m_n)")


class NuclearModel:
    """A committee of fitted potentials; calling it evaluates the central member (k = 0)."""

    def __init__(self, members: list[NuclearPotential], header: dict | None = None):
        if not members:
            raise MalformedFileError("a nuclear model needs at least one committee member")
        self.members = members
        self.header = dict(header or {})

    @property
    def central(self) -> NuclearPotential:
        return self.members[0]

    def __call__(self, channel: Channel, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        return self.central(channel, p1, p2)

    def matrix(self, channel: str | Channel, k: torch.Tensor, member: int = 0) -> torch.Tensor:
        """V_{L'L}(k_i, k_j) (nL, nL, N, N) [MeV fm^3] of ``member`` on momenta k [fm^-1]."""
        ch = channel if isinstance(channel, Channel) else get_channel(channel)
        k = torch.as_tensor(k, dtype=torch.float64)
        with torch.no_grad():
            return self.members[member](ch, k, k)

    def mesh(self):
        """The momentum mesh (points, weights) [fm^-1] the model was fitted on."""
        from nnpot.nuclear.mesh import default_mesh, legacy_mesh

        n = int(self.header.get("mesh", {}).get("n", 48))
        if int(self.header.get("nuclear_format", 1)) < 2:
            return legacy_mesh(n)
        return default_mesh(n)


def save_model(path: str | os.PathLike, members: list[NuclearPotential], extra: dict | None = None,
               mesh_n: int = 48) -> None:
    """Write a committee (same architecture) to ``path`` atomically."""
    tensors = {}
    for i, m in enumerate(members):
        for name, t in m.state_dict().items():
            tensors[f"m{i}.{name}"] = t.detach().clone()
    header = {"kind": "nuclear", "nuclear_format": NUCLEAR_FORMAT, "model": "NuclearPotential",
              "config": members[0].config(),
              "members": len(members), "mesh": {"kind": "default_mesh", "n": int(mesh_n)},
              "units": UNITS, "conventions": CONVENTIONS}
    header.update(extra or {})
    save_model_file(path, tensors, header)


def load_model(path: str | os.PathLike) -> NuclearModel:
    """Read a nuclear model file (a model of another kind raises a clear InputError)."""
    tensors, header = load_model_file(path, kind="nuclear")
    fmt = header.get("nuclear_format", 1)
    if not isinstance(fmt, int) or fmt > NUCLEAR_FORMAT:
        raise FormatVersionError(f"{str(path)!r} has nuclear format {fmt!r}; this nnpot "
                                 f"reads formats up to {NUCLEAR_FORMAT}: upgrade nnpot")
    try:
        cfg, k = dict(header["config"]), int(header["members"])
        cfg["short"] = LEGACY_SHORT | dict(cfg.get("short") or {})
        members = []
        for i in range(k):
            m = NuclearPotential(**cfg)
            prefix = f"m{i}."
            state = {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}
            m.load_state_dict(state)
            m.requires_grad_(False)
            members.append(m)
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise MalformedFileError(f"{str(path)!r} is not a valid nuclear model: {exc}") from None
    return NuclearModel(members, header)


def shipped_model_path() -> Path:
    """Path of the fitted model shipped with the package (np_n2lo.nnp)."""
    return Path(str(resources.files("nnpot").joinpath("data/nuclear/np_n2lo.nnp")))
