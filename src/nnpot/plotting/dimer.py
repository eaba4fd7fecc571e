"""Dimer extrapolation figure: log|E| against log r for a reference and committee models."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt  # Agg set by nnpot.plotting
import numpy as np

from nnpot.plotting.atomistic import _save

COLOURS = ("tab:gray", "tab:blue", "tab:red", "tab:green", "tab:purple")


def _log_ticks(ax, r: np.ndarray) -> None:
    ticks = [t for t in (2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20) if r.min() <= t <= r.max()]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())


def plot_dimer(out, gas: str, r: np.ndarray, e_ref: np.ndarray,
               members: Mapping[str, np.ndarray], train_window: Sequence[float],
               test_window: Sequence[float],
               cutoff: float | Mapping[str, float] | None = None,
               floor: float = 1e-9) -> Path:
    """Two panels against r (Å, log axis): |E| (eV, log) and E/E_ref where E_ref < 0.

    ``members[name]`` holds committee energies (M, len(r)) in eV; each model is drawn as
    its committee mean with a ±σ band. ``|E|`` below ``floor`` eV is drawn at the floor
    (a short-range model predicts exactly 0 beyond its cutoff). Shaded: the training and
    test windows; dotted: the network cutoff (``cutoff``: one value, or {label: value} when
    the models' networks stop at different distances).
    """
    r = np.asarray(r)
    e_ref = np.asarray(e_ref)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    attractive = (e_ref < 0) & (r > r[np.argmin(e_ref)])  # beyond the well
    for a in (ax, ax2):
        a.axvspan(*train_window, color="tab:olive", alpha=0.12, label="training window")
        a.axvspan(*test_window, color="tab:cyan", alpha=0.12, label="test window")
        cuts = {"network cutoff": cutoff} if isinstance(cutoff, (int, float)) else (
            cutoff or {})
        styles = itertools.cycle((":", "-.", "--", (0, (1, 3))))
        for (label, rc), ls in zip(cuts.items(), styles, strict=False):  # styles cycle
            a.axvline(rc, color="k", ls=ls, lw=1, label=label)
    for k, (name, e) in enumerate(members.items()):
        e = np.atleast_2d(np.asarray(e))
        mean, std = e.mean(0), e.std(0)
        c = COLOURS[k % len(COLOURS)]
        ax.plot(r, np.maximum(np.abs(mean), floor), color=c, lw=1.6, label=name)
        ax.fill_between(r, np.maximum(np.abs(mean) - std, floor),
                        np.maximum(np.abs(mean) + std, floor), color=c, alpha=0.25)
        rr, er = r[attractive], e_ref[attractive]
        m, s = mean[attractive], std[attractive]
        ax2.plot(rr, m / er, color=c, lw=1.6, label=name)
        ax2.fill_between(rr, (m - s) / er, (m + s) / er, color=c, alpha=0.25)
    ax.plot(r, np.abs(e_ref), "k--", lw=1.2, label="reference (Tang–Toennies 2003)")
    ax2.axhline(1.0, color="k", ls="--", lw=1.2, label="reference")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_ticks(ax, r)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel(f"|E| (eV; 0 drawn at {floor:g})")
    ax.set_ylim(floor / 2, None)
    ax.set_title(f"{gas}₂: |E| against r, committee mean ± σ")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower left")
    ax2.set_xscale("log")
    _log_ticks(ax2, r[attractive])
    ax2.set_xlabel("r (Å)")
    ax2.set_ylabel("E / E_ref")
    ax2.set_ylim(-0.1, 1.6)
    ax2.set_title("ratio to the reference beyond the well")
    ax2.grid(alpha=0.3, which="both")
    return _save(fig, out)
