"""Angular-momentum coupling coefficients: Clebsch-Gordan, 6j and 9j symbols.

Condon-Shortley phases; formulas of Racah as written in A. R. Edmonds, *Angular Momentum
in Quantum Mechanics* (Princeton, 1957), eqs. (3.6.11) [3j], (6.3.7) [6j], (6.4.3) [9j].
Arguments are angular momenta as numbers (0, 0.5, 1, ...); internally they are doubled
integers and every factorial sum is done in exact integer arithmetic, so the symbols are
exact to the last bit of a float64 for the quantum numbers met in A = 3 HO bases
(l up to ~100). Results are cached.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

__all__ = ["clebsch_gordan", "wigner_6j", "wigner_9j", "hat"]


def _two(j: float) -> int:
    t = round(2 * j)
    if abs(2 * j - t) > 1e-9:
        raise ValueError(f"{j} is not an integer or half-integer angular momentum")
    return int(t)


def hat(j: float) -> float:
    """sqrt(2 j + 1)."""
    return math.sqrt(2 * j + 1)


def _tri(a: int, b: int, c: int) -> bool:
    """Triangle rule for doubled momenta (with integer perimeter)."""
    return (a + b + c) % 2 == 0 and abs(a - b) <= c <= a + b


def _delta2(a: int, b: int, c: int) -> Fraction:
    """Delta(abc)^2 = (a+b-c)!(a-b+c)!(-a+b+c)!/(a+b+c+1)! for doubled a, b, c."""
    f = math.factorial
    return Fraction(
        f((a + b - c) // 2) * f((a - b + c) // 2) * f((-a + b + c) // 2), f((a + b + c) // 2 + 1)
    )


def _signed_sqrt(sign_value: Fraction, square: Fraction) -> float:
    """sign_value * sqrt(square) as a float, rounded once at the end (exact rationals in)."""
    if sign_value == 0 or square == 0:
        return 0.0
    return math.copysign(math.sqrt(float(sign_value * sign_value * square)), sign_value)


@cache
def _cg2(j1: int, m1: int, j2: int, m2: int, j: int, m: int) -> float:
    if m1 + m2 != m or not _tri(j1, j2, j):
        return 0.0
    if abs(m1) > j1 or abs(m2) > j2 or abs(m) > j:
        return 0.0
    if (j1 + m1) % 2 or (j2 + m2) % 2 or (j + m) % 2:
        return 0.0
    f = math.factorial
    pre = Fraction((j + 1) * f((j1 + j2 - j) // 2) * f((j1 - j2 + j) // 2)
                   * f((-j1 + j2 + j) // 2), f((j1 + j2 + j) // 2 + 1))
    pre *= (f((j + m) // 2) * f((j - m) // 2) * f((j1 - m1) // 2) * f((j1 + m1) // 2)
            * f((j2 - m2) // 2) * f((j2 + m2) // 2))
    total = Fraction(0)
    for k in range(0, (j1 + j2 - j) // 2 + 1):
        args = ((j1 + j2 - j) // 2 - k, (j1 - m1) // 2 - k, (j2 + m2) // 2 - k,
                (j - j2 + m1) // 2 + k, (j - j1 - m2) // 2 + k)
        if min(args) < 0:
            continue
        den = f(k)
        for a in args:
            den *= f(a)
        total += Fraction((-1) ** k, den)
    return _signed_sqrt(total, pre)


def clebsch_gordan(j1: float, m1: float, j2: float, m2: float, j: float, m: float) -> float:
    """<j1 m1 j2 m2 | j m> (Condon-Shortley)."""
    return _cg2(_two(j1), _two(m1), _two(j2), _two(m2), _two(j), _two(m))


@cache
def _sixj2(a: int, b: int, c: int, d: int, e: int, f_: int) -> float:
    if not (_tri(a, b, c) and _tri(a, e, f_) and _tri(d, b, f_) and _tri(d, e, c)):
        return 0.0
    fa = math.factorial
    pre = _delta2(a, b, c) * _delta2(a, e, f_) * _delta2(d, b, f_) * _delta2(d, e, c)
    a1, a2, a3, a4 = (a + b + c) // 2, (a + e + f_) // 2, (d + b + f_) // 2, (d + e + c) // 2
    b1, b2, b3 = (a + b + d + e) // 2, (b + c + e + f_) // 2, (c + a + f_ + d) // 2
    total = 0
    for t in range(max(a1, a2, a3, a4), min(b1, b2, b3) + 1):
        num = (-1) ** t * fa(t + 1)
        den = (fa(t - a1) * fa(t - a2) * fa(t - a3) * fa(t - a4)
               * fa(b1 - t) * fa(b2 - t) * fa(b3 - t))
        total += Fraction(num, den)
    return _signed_sqrt(Fraction(total), pre)


def wigner_6j(j1: float, j2: float, j3: float, j4: float, j5: float, j6: float) -> float:
    """The 6j symbol {j1 j2 j3; j4 j5 j6} (Racah's formula, exact sums)."""
    return _sixj2(_two(j1), _two(j2), _two(j3), _two(j4), _two(j5), _two(j6))


@cache
def _ninej2(a, b, c, d, e, f_, g, h, i) -> float:
    if not (_tri(a, b, c) and _tri(d, e, f_) and _tri(g, h, i)
            and _tri(a, d, g) and _tri(b, e, h) and _tri(c, f_, i)):
        return 0.0
    lo = max(abs(a - i), abs(d - h), abs(b - f_))
    hi = min(a + i, d + h, b + f_)
    total = 0.0
    for x in range(lo, hi + 1, 2):
        total += ((-1) ** x * (x + 1) * _sixj2(a, b, c, f_, i, x) * _sixj2(d, e, f_, b, x, h)
                  * _sixj2(g, h, i, x, a, d))
    return total


def wigner_9j(j1, j2, j12, j3, j4, j34, j13, j24, j) -> float:
    """The 9j symbol {j1 j2 j12; j3 j4 j34; j13 j24 j} as a sum of three 6j symbols."""
    return _ninej2(*(_two(x) for x in (j1, j2, j12, j3, j4, j34, j13, j24, j)))
