"""Momentum meshes for integrals over [0, inf) (points in fm^-1).

``gauss_legendre(n, a, b)`` are plain Gauss-Legendre points on [a, b]. ``mapped_mesh``
maps them onto [0, inf) with the tangent map

    k = c tan(pi (1 + x) / 4),   dk = c pi / (4 cos^2(pi (1 + x) / 4)) dx,

so that half the points lie below the scale c. ``two_part_mesh`` puts n1 points linearly
on [0, p1] and n2 tangent-mapped points on [p1, inf) (k = p1 + c tan(pi (1+x)/4)); it
resolves low momenta (deuteron, threshold) and the regulated tail at once. Every mesh
integrates ``sum_i w_i f(k_i) ~ int_0^inf dk f(k)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nnpot.errors import InputError


def gauss_legendre(n: int, a: float = -1.0, b: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre points and weights on [a, b] (float64 tensors)."""
    if int(n) < 1:
        raise InputError(f"a quadrature needs at least one point, got n = {n}")
    x, w = np.polynomial.legendre.leggauss(int(n))
    x = 0.5 * (b - a) * x + 0.5 * (b + a)
    w = 0.5 * (b - a) * w
    return torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64)


def mapped_mesh(n: int, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """n points/weights on [0, inf) [fm^-1] by the tangent map with scale ``scale`` [fm^-1]."""
    if scale <= 0:
        raise InputError(f"mesh scale must be positive (fm^-1), got {scale}")
    x, w = gauss_legendre(n)
    t = math.pi * (1.0 + x) / 4.0
    k = scale * torch.tan(t)
    wk = scale * math.pi / 4.0 / torch.cos(t) ** 2 * w
    return k, wk


def two_part_mesh(
    n1: int = 24, n2: int = 24, p1: float = 2.0, scale: float = 3.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """n1 Gauss points on [0, p1] plus n2 tangent-mapped points on [p1, inf) [fm^-1]."""
    if p1 <= 0:
        raise InputError(f"mesh break point p1 must be positive (fm^-1), got {p1}")
    k1, w1 = gauss_legendre(n1, 0.0, p1)
    k2, w2 = mapped_mesh(n2, scale)
    return torch.cat([k1, k2 + p1]), torch.cat([w1, w2])


def default_mesh(n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """The package's standard mesh with ``n`` points [fm^-1]: 3n/4 Gauss points on
    [0, 3.5] fm^-1 (where regulated potentials live; every on-shell momentum up to
    T_lab = 350 MeV, p = 2.05 fm^-1, lies well inside) and n/4 tangent-mapped points beyond
    (scale 2 fm^-1)."""
    n1 = (3 * n) // 4
    return two_part_mesh(n1, n - n1, p1=3.5, scale=2.0)


def legacy_mesh(n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """The mesh of nnpot model files before format 2: n/2 Gauss points on [0, 2] fm^-1 and
    n/2 tangent-mapped beyond (scale 3 fm^-1). Its break point sits next to the on-shell
    momenta of 300-350 MeV, which costs about 0.01 deg at n = 48."""
    n1 = n // 2
    return two_part_mesh(n1, n - n1, p1=2.0, scale=3.0)
