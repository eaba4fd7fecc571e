"""Make the rare-gas dimer data sets from the Tang–Toennies (2003) potentials.

Run:  python -m nnpot.data.rare_gas.make      (or python src/nnpot/data/rare_gas/make.py)

For each gas X in He, Ne, Ar, Kr, Xe this writes, next to this file,
  X_train.extxyz  TRAIN_POINTS dimers evenly spaced over TRAIN_WINDOW_AR·(Rₑ(X)/Rₑ(Ar))
                  plus one isolated atom (energy 0: the reference of separated atoms);
  X_test.extxyz   TEST_POINTS dimers evenly spaced over TEST_WINDOW_AR·(Rₑ(X)/Rₑ(Ar)).
Windows are argon's 3–5 Å (training) and 7–12 Å (test), scaled by each gas's well position,
i.e. [0.799, 1.331]·Rₑ and [1.863, 3.194]·Rₑ. Labels: REF_energy (eV, V(r) with separated
atoms at 0) and REF_forces (eV/Å, −∇V). Non-periodic, no cell. Deterministic (no randomness).
Prints, per gas, the well and the local log–log slope of |V| over the test window.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms

if __package__ in (None, ""):  # run as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from nnpot.data._write import label, write_extxyz_atomic  # noqa: E402
from nnpot.data.rare_gas.potential import (  # noqa: E402
    GASES,
    c6_ev_angstrom6,
    minimum,
    published_well,
    tang_toennies,
    tang_toennies_derivative,
)

# ---- settings ---------------------------------------------------------------------------
TRAIN_WINDOW_AR = (3.0, 5.0)  # Å, argon; scaled by Re(X)/Re(Ar) for the other gases
TEST_WINDOW_AR = (7.0, 12.0)  # Å, argon
TRAIN_POINTS = 41
TEST_POINTS = 26
AXIS = np.array([1.0, 0.0, 0.0])  # dimer axis
HERE = Path(__file__).resolve().parent
# -----------------------------------------------------------------------------------------


def windows(gas: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Training and test windows (Å) of ``gas``: argon's, scaled by Rₑ(gas)/Rₑ(Ar)."""
    scale = minimum(gas)[0] / minimum("Ar")[0]  # exactly 1 for argon
    return (
        (TRAIN_WINDOW_AR[0] * scale, TRAIN_WINDOW_AR[1] * scale),
        (TEST_WINDOW_AR[0] * scale, TEST_WINDOW_AR[1] * scale),
    )


def dimer(gas: str, r: float, config_type: str) -> Atoms:
    """A labelled dimer at separation ``r`` (Å), centred at the origin along AXIS."""
    atoms = Atoms(f"{gas}2", positions=[-0.5 * r * AXIS, 0.5 * r * AXIS], pbc=False)
    dv = tang_toennies_derivative(r, gas)
    f2 = -dv * AXIS  # force on atom 2 (at +r/2): −dV/dr along +AXIS
    return label(atoms, tang_toennies(r, gas), np.array([-f2, f2]),
                 config_type=config_type, distance=float(r))


def isolated(gas: str) -> Atoms:
    """The single-atom reference: energy 0 eV, zero force."""
    return label(Atoms(gas, positions=[[0.0, 0.0, 0.0]], pbc=False), 0.0, np.zeros((1, 3)),
                 config_type="isolated_atom")


def loglog_slope(r: np.ndarray, e: np.ndarray) -> float:
    """Least-squares slope of ln|E| against ln r."""
    return float(np.polyfit(np.log(r), np.log(np.abs(e)), 1)[0])


def make(out_dir: Path = HERE) -> list[str]:
    """Write every gas's train and test files into ``out_dir``; return summary lines."""
    lines = []
    for gas in GASES:
        (t0, t1), (s0, s1) = windows(gas)
        r_train = np.linspace(t0, t1, TRAIN_POINTS)
        r_test = np.linspace(s0, s1, TEST_POINTS)
        train = [dimer(gas, r, "dimer") for r in r_train] + [isolated(gas)]
        test = [dimer(gas, r, "dimer") for r in r_test]
        write_extxyz_atomic(out_dir / f"{gas}_train.extxyz", train)
        write_extxyz_atomic(out_dir / f"{gas}_test.extxyz", test)
        re, de = minimum(gas)
        re_pub, de_pub = published_well(gas)
        e_test = tang_toennies(r_test, gas)
        lines.append(
            f"{gas}: Re = {re:.4f} Å (ref {re_pub:.4f}), De = {1e3 * de:.3f} meV "
            f"(ref {1e3 * de_pub:.3f}), C6 = {c6_ev_angstrom6(gas):.3f} eV·Å⁶, "
            f"train {t0:.3f}–{t1:.3f} Å, test {s0:.3f}–{s1:.3f} Å, "
            f"log–log slope over test window = {loglog_slope(r_test, e_test):.3f}, "
            f"E(test centre {0.5 * (s0 + s1):.2f} Å) = {tang_toennies(0.5 * (s0 + s1), gas):.4e} eV"
        )
    return lines


def main() -> int:
    start = time.perf_counter()
    for line in make():
        print(line)
    print(f"wall time {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
