"""Figures for atomistic models: learning curve, parity, energy conservation, RDF."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt  # Agg set by nnpot.plotting
import numpy as np

from nnpot.plotting import save_figure as _save


def learning_curve(metrics_jsonl, out) -> Path:
    """Validation/training RMSE of energy (meV/atom) and forces (meV/Å) per epoch."""
    recs = [json.loads(ln) for ln in Path(metrics_jsonl).read_text().splitlines() if ln.strip()]
    ep = [r["epoch"] for r in recs]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, unit in ((axes[0], "energy_rmse_mev_atom", "meV/atom"),
                          (axes[1], "forces_rmse_mev_ang", "meV/Å")):
        for split, style in (("train", "--"), ("valid", "-")):
            vals = [r.get(f"{split}_{key}") for r in recs]
            if any(v is not None for v in vals):
                ax.plot(ep, vals, style, label=split)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{key.split('_')[0]} RMSE ({unit})")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("learning curve")
    return _save(fig, out)


def parity(frames, preds, out, title: str = "") -> Path:
    """Predicted vs reference energy per atom and force components."""
    e_ref = [f.energy / len(f) for f in frames if f.energy is not None]
    e_pred = [p["energy"] / len(f) for f, p in zip(frames, preds, strict=True)
              if f.energy is not None]
    f_ref = np.concatenate([f.forces.ravel() for f in frames if f.forces is not None]) \
        if any(f.forces is not None for f in frames) else np.array([])
    f_pred = np.concatenate([p["forces"].ravel() for f, p in zip(frames, preds, strict=True)
                             if f.forces is not None]) if len(f_ref) else np.array([])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, x, y, lab in ((axes[0], e_ref, e_pred, "energy (eV/atom)"),
                          (axes[1], f_ref, f_pred, "force component (eV/Å)")):
        x, y = np.asarray(x), np.asarray(y)
        if len(x):
            ax.scatter(x, y, s=4, alpha=0.5)
            lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            rmse = np.sqrt(np.mean((x - y) ** 2))
            ax.set_title(f"RMSE {1000 * rmse:.2f} m{lab.split('(')[1][:-1]}")
        ax.set_xlabel(f"reference {lab}")
        ax.set_ylabel(f"predicted {lab}")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def energy_conservation(md_result, n_atoms: int, out, title: str = "") -> Path:
    """Total, potential and kinetic energy per atom (meV/atom, relative to t = 0), and T."""
    t = np.asarray(md_result.time_fs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, lab in (("etot", "total"), ("epot", "potential"), ("ekin", "kinetic")):
        e = np.asarray(getattr(md_result, key))
        axes[0].plot(t, 1000 * (e - e[0]) / n_atoms, label=lab)
    axes[0].set_xlabel("time (fs)")
    axes[0].set_ylabel("E − E(0) (meV/atom)")
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    axes[1].plot(t, md_result.temperature)
    axes[1].set_xlabel("time (fs)")
    axes[1].set_ylabel("temperature (K)")
    axes[1].grid(alpha=0.3)
    fig.suptitle(title or f"energy conservation, {n_atoms} atoms")
    return _save(fig, out)


def rdf(r, g, out, label: str = "O–O", reference: tuple | None = None) -> Path:
    """Radial distribution function g(r)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(r, g, label="nnpot MD")
    if reference is not None:
        ax.plot(*reference, "--", label="reference")
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel(f"g(r) {label}")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, out)
