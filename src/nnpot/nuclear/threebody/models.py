"""Simple NN model potentials with published few-body benchmarks (validation only).

Units: r in fm, momenta in fm^-1, V(r) in MeV, partial-wave V_l(p', p) in MeV fm^3 with the
package normalisation <p|p'> = delta(p - p')/p^2 (no i^l), i.e. for a local potential

    V_l(p', p) = (2/pi) int_0^inf dr r^2 j_l(p' r) V(r) j_l(p r).

Malfliet-Tjon (R. A. Malfliet, J. A. Tjon, Nucl. Phys. A 127, 161 (1969)), parameters as
used in the Faddeev benchmarks (hbar^2/m = 41.47 MeV fm^2):

    V(r) = V_R exp(-mu_R r)/r - V_A exp(-mu_A r)/r,  mu_R = 3.11 fm^-1, mu_A = 1.55 fm^-1,
    MT-V : V_R = 1458.047 MeV fm, V_A = 578.089 MeV fm (all S, T),
    MT-I : V_R = 1438.720 MeV fm, V_A = 513.968 MeV fm (1S0),
    MT-III: V_R = 1438.720 MeV fm, V_A = 626.885 MeV fm (3S1).

For a Yukawa term V_Y exp(-mu r)/r the S-wave projection is analytic,
V_0(p', p) = V_Y/(2 pi p p') ln[((p + p')^2 + mu^2)/((p - p')^2 + mu^2)].

Minnesota (D. R. Thompson, M. LeMere, Y. C. Tang, Nucl. Phys. A 286, 53 (1977)) with
exchange parameter u = 1 (acts in even partial waves only): V(r) = V_R exp(-k_R r^2) +
V_{t,s} exp(-k_{t,s} r^2) in the spin triplet / singlet, V_R = 200 MeV, k_R = 1.487 fm^-2,
V_t = -178 MeV, k_t = 0.639 fm^-2, V_s = -91.85 MeV, k_s = 0.465 fm^-2.

Yamaguchi (Y. Yamaguchi, Phys. Rev. 95, 1628 (1954)): rank one, V(p', p) = lambda g(p') g(p),
g(p) = 1/(p^2 + beta^2).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["HBAR2_M_BENCHMARK", "MT_PARAMETERS", "malfliet_tjon_r", "malfliet_tjon_swave",
           "minnesota_r", "yamaguchi"]

#: hbar^2/m [MeV fm^2] used by the Malfliet-Tjon and Minnesota benchmarks.
HBAR2_M_BENCHMARK = 41.47

MU_R, MU_A = 3.11, 1.55
MT_PARAMETERS = {
    "MT-V": (1458.047, 578.089),
    "MT-I": (1438.720, 513.968),
    "MT-III": (1438.720, 626.885),
}


def _mt(name: str) -> tuple[float, float]:
    try:
        return MT_PARAMETERS[name]
    except KeyError:
        raise ValueError(f"unknown Malfliet-Tjon variant {name!r}; use one of "
                         f"{', '.join(MT_PARAMETERS)}") from None


def malfliet_tjon_r(name: str):
    """V(r) [MeV] of a Malfliet-Tjon variant as a numpy function of r [fm]."""
    vr, va = _mt(name)
    return lambda r: (vr * np.exp(-MU_R * r) - va * np.exp(-MU_A * r)) / r


def _yukawa_swave(p_out: torch.Tensor, p_in: torch.Tensor, strength: float, mu: float):
    po, pi = p_out[:, None], p_in[None, :]
    den = (po - pi) ** 2 + mu * mu
    x = 4.0 * po * pi / den
    small = x < 1e-8
    ratio = torch.where(small, 1.0 - 0.5 * x, torch.log1p(x) / torch.where(small, 1.0, x))
    return strength * 2.0 / math.pi * ratio / den


def malfliet_tjon_swave(name: str):
    """S-wave V_0(p', p) [MeV fm^3] as a potential block function (p_out, p_in) -> (1,1,n,m)."""
    vr, va = _mt(name)

    def pot(p_out: torch.Tensor, p_in: torch.Tensor) -> torch.Tensor:
        p_out = torch.as_tensor(p_out, dtype=torch.float64)
        p_in = torch.as_tensor(p_in, dtype=torch.float64)
        v = _yukawa_swave(p_out, p_in, vr, MU_R) - _yukawa_swave(p_out, p_in, va, MU_A)
        return v[None, None]

    return pot


def minnesota_r(spin: int):
    """Minnesota V(r) [MeV] in spin triplet (1) or singlet (0), even partial waves."""
    vt, kt = (-178.0, 0.639) if spin == 1 else (-91.85, 0.465)
    return lambda r: 200.0 * np.exp(-1.487 * r * r) + vt * np.exp(-kt * r * r)


def yamaguchi(strength: float, beta: float):
    """Rank-one V(p', p) = strength g(p') g(p), g = 1/(p^2 + beta^2) [strength: MeV fm^-1]."""

    def pot(p_out: torch.Tensor, p_in: torch.Tensor) -> torch.Tensor:
        go = 1.0 / (torch.as_tensor(p_out, dtype=torch.float64) ** 2 + beta**2)
        gi = 1.0 / (torch.as_tensor(p_in, dtype=torch.float64) ** 2 + beta**2)
        return (strength * go[:, None] * gi[None, :])[None, None]

    return pot
