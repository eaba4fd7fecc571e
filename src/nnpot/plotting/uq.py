"""Figures for uncertainties: calibration curve, error vs σ, EFT truncation bands.

Each ``draw_*`` function draws on a given matplotlib ``Axes`` (so pipelines can compose
panels, e.g. one per partial wave); the file-level functions make a figure, draw, save it
atomically as PNG and return the path. ``series`` arguments map a label (``"committee"``,
``"head"``, ``"combined"``, ``"recalibrated"``, ...) to ``(err, sigma)`` with
``err = prediction − reference`` and σ in the same units.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt  # Agg set by nnpot.plotting
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from nnpot.io import atomic_write_bytes
from nnpot.uq import coverage_curve, miscalibration_area

__all__ = [
    "calibration_plot",
    "draw_calibration",
    "draw_error_vs_sigma",
    "draw_truncation_bands",
    "error_vs_sigma_plot",
    "truncation_band_plot",
]


def _save(fig, path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _flat(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64).ravel()


def _readable_log_axis(axis) -> None:
    """Tick labels of a log axis that do not collide. Matplotlib labels the minor ticks
    of a log axis spanning less than a decade (``3×10⁻³``, ``4×10⁻³``, ... side by side);
    here minor ticks stay unlabelled, and an axis spanning less than two decades gets
    major ticks at the first of 1, 1–2–5 or 1–2–3–5 × 10^k that puts two inside the view
    (linear steps when none does: a span below a factor of ~1.7), in plain numbers."""
    axis.axes.autoscale_view()
    lo, hi = sorted(axis.get_view_interval())
    axis.set_minor_formatter(NullFormatter())
    if not (lo > 0 and np.isfinite(hi)) or np.log10(hi / lo) >= 2.0:
        return
    locator = MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10])
    powers = 10.0 ** np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    for subs in ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0)):
        ticks = np.outer(powers, subs).ravel()
        ticks = ticks[(ticks >= lo) & (ticks <= hi)]
        if ticks.size >= 2:
            locator = FixedLocator(ticks)
            break
    axis.set_major_locator(locator)
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.3g}"))


def draw_calibration(ax, series: Mapping[str, tuple[Any, Any]], n_levels: int = 100) -> None:
    """Observed vs expected coverage of central Gaussian intervals, one curve per series;
    the legend gives each miscalibration area. The diagonal is perfect calibration."""
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="ideal")
    for label, (err, sigma) in series.items():
        e, s = _flat(err), _flat(sigma)
        p, obs = coverage_curve(e, s, n_levels)
        area = miscalibration_area(e, s, n_levels)
        ax.plot(p, obs, label=f"{label} (area {area:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("expected coverage")
    ax.set_ylabel("observed coverage")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def draw_error_vs_sigma(
    ax, series: Mapping[str, tuple[Any, Any]], units: str = "", n_bins: int = 10
) -> None:
    """|err| against σ (log–log scatter) with the binned RMSE against RMV (equal-count σ
    bins, Levi et al. 2022); calibrated points lie on the diagonal."""
    lo, hi = np.inf, 0.0
    for label, (err, sigma) in series.items():
        e, s = np.abs(_flat(err)), _flat(sigma)
        pts = ax.scatter(s, np.maximum(e, 1e-300), s=3, alpha=0.25)
        order = np.argsort(s)
        bins = np.array_split(order, min(n_bins, s.size))
        rmv = [np.sqrt(np.mean(s[b] ** 2)) for b in bins]
        rmse = [np.sqrt(np.mean(e[b] ** 2)) for b in bins]
        ax.plot(rmv, rmse, "o-", color=pts.get_facecolor()[0][:3], label=f"{label}: RMSE vs RMV")
        lo, hi = min(lo, s.min()), max(hi, s.max())
    if hi > 0:
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="|err| = σ")
        ax.plot([lo, hi], [1.96 * lo, 1.96 * hi], "k:", lw=0.8, label="|err| = 1.96 σ")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _readable_log_axis(ax.xaxis)
    _readable_log_axis(ax.yaxis)
    u = f" ({units})" if units else ""
    ax.set_xlabel(f"predicted σ{u}")
    ax.set_ylabel(f"|error|{u}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def draw_truncation_bands(
    ax,
    x: Any,
    predictions: Any,
    half_widths: Any,
    labels: Sequence[str] | None = None,
    data: tuple[Any, Any, Any] | None = None,
) -> None:
    """Order-by-order predictions ``[n_orders, n_x]`` with shaded ``±half_width`` bands
    (same shape, units of y); ``data = (x, y, y_err)`` adds reference points."""
    xv = _flat(x)
    pred = np.asarray(predictions, dtype=np.float64).reshape(-1, xv.size)
    hw = np.asarray(half_widths, dtype=np.float64).reshape(-1, xv.size)
    if hw.shape != pred.shape:
        raise ValueError("predictions and half_widths must have the same shape [n_orders, n_x].")
    labels = list(labels) if labels is not None else [f"order {i}" for i in range(len(pred))]
    for y, h, lab in zip(pred, hw, labels, strict=True):
        (line,) = ax.plot(xv, y, lw=1.2, label=lab)
        ax.fill_between(xv, y - h, y + h, color=line.get_color(), alpha=0.2, lw=0)
    if data is not None:
        dx, dy, de = (_flat(a) for a in data)
        ax.errorbar(dx, dy, yerr=de, fmt="ko", ms=3, label="reference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def calibration_plot(series: Mapping[str, tuple[Any, Any]], out, title: str = "") -> Path:
    """Calibration curve figure (PNG at ``out``); see :func:`draw_calibration`."""
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    draw_calibration(ax, series)
    if title:
        ax.set_title(title)
    return _save(fig, out)


def error_vs_sigma_plot(
    series: Mapping[str, tuple[Any, Any]], out, units: str = "", title: str = ""
) -> Path:
    """Error-vs-σ figure (PNG at ``out``); see :func:`draw_error_vs_sigma`."""
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    draw_error_vs_sigma(ax, series, units)
    if title:
        ax.set_title(title)
    return _save(fig, out)


def truncation_band_plot(
    x: Any,
    predictions: Any,
    half_widths: Any,
    out,
    labels: Sequence[str] | None = None,
    data: tuple[Any, Any, Any] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
) -> Path:
    """Truncation-band figure (PNG at ``out``); see :func:`draw_truncation_bands`."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    draw_truncation_bands(ax, x, predictions, half_widths, labels, data)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _save(fig, out)
