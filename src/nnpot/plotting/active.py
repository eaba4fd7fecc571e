"""Figures for active learning: errors and labels against iteration, and error vs labels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt  # Agg set by nnpot.plotting
from matplotlib.ticker import MaxNLocator

from nnpot.plotting import save_figure as _save


def read_history(path) -> list[dict]:
    """Per-iteration summaries from a run's ``iterations.jsonl``."""
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


def active_summary(history: list[dict], out) -> Path:
    """Two panels: force RMSE (meV/Å; validation and test) and labels against iteration,
    and force RMSE against the number of labelled structures (the learning curve)."""
    it = [h["iteration"] for h in history]
    labels = [h["labelled"] for h in history]
    fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(11.5, 4.0))
    ax2 = ax1.twinx()
    for split, style in (("valid", "o-"), ("test", "s-")):
        key = f"{split}_forces_rmse_mev_ang"
        pts = [(h["iteration"], h["labelled"], h[key]) for h in history if key in h]
        if pts:
            ax1.plot([p[0] for p in pts], [p[2] for p in pts], style, label=f"{split} F RMSE")
            ax3.plot([p[1] for p in pts], [p[2] for p in pts], style, label=split)
    ax2.step(it, labels, where="post", color="0.5", label="labels")
    failed = [h.get("failed", 0) for h in history]
    if any(failed):
        ax2.step(it, failed, where="post", color="tab:red", ls=":", label="failed")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("force RMSE (meV/Å)")
    ax2.set_ylabel("labelled structures")
    errs = [y for line in ax1.lines for y in line.get_ydata()]
    log = bool(errs) and max(errs) > 10 * min(errs) > 0
    if log:
        ax1.set_yscale("log")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=8)
    ax1.grid(alpha=0.3)
    ax3.set_xlabel("labelled structures")
    ax3.set_ylabel("force RMSE (meV/Å)")
    if log:
        ax3.set_yscale("log")
    ax3.grid(alpha=0.3)
    if ax3.lines:
        ax3.legend(fontsize=8)
    fig.suptitle("active learning")
    fig.subplots_adjust(wspace=0.45)
    return _save(fig, out)


METHOD_STYLE = {"random": ("tab:gray", "o"), "disagreement": ("tab:orange", "s"),
                "d_optimal": ("tab:blue", "D"), "farthest_point": ("tab:green", "^")}


def learning_curves(curves: dict[str, list[dict]], out, title: str = "",
                    target: float | None = None) -> Path:
    """Test force RMSE (meV/Å) against labelled structures, one colour per selection
    method: every seed thin, the mean over seeds thick. ``curves[method]`` is a list (one
    per seed) of ``{"labels": [...], "forces_rmse_mev_ang": [...]}`` (the thick line is the
    geometric mean over seeds); ``target`` draws
    random sampling's final error as a horizontal line."""
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for method, runs in curves.items():
        color, marker = METHOD_STYLE.get(method, (None, "o"))
        for run in runs:
            ax.plot(run["labels"], run["forces_rmse_mev_ang"], "-", color=color, lw=0.7,
                    alpha=0.45)
        n = min(len(r["labels"]) for r in runs)
        if n and all(r["labels"][:n] == runs[0]["labels"][:n] for r in runs):
            mean = [math.exp(sum(math.log(r["forces_rmse_mev_ang"][i]) for r in runs)
                             / len(runs)) for i in range(n)]
            ax.plot(runs[0]["labels"][:n], mean, marker + "-", color=color, lw=2, ms=4,
                    label=f"{method} (geometric mean of {len(runs)})")
    if target is not None:
        ax.axhline(target, color="k", ls=":", lw=1, label="random: final error")
    ax.set_xlabel("labelled structures")
    ax.set_ylabel("test force RMSE (meV/Å)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, out)
