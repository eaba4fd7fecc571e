"""Figures for nuclear models: phase shifts of every channel vs T_lab [MeV], in degrees.

Each channel gets one PNG with its waves: PWA93 np points (with the Granada-based errors),
the central model on a dense grid, the committee band (+/- 1 std, epistemic) and the EFT
truncation band (68 %), drawn separately.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nnpot.nuclear.channels import np_channels  # noqa: E402
from nnpot.nuclear.data import pwa93_with_errors  # noqa: E402
from nnpot.nuclear.predict import phase_table  # noqa: E402


def plot_phase_shifts(model, out_dir: str | os.PathLike, tmax: float = 350.0,
                      n_points: int = 71) -> list[Path]:
    """One PNG per channel in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tl = np.linspace(1.0, tmax, n_points)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = phase_table(model, tl.tolist())
    table = pwa93_with_errors()
    paths = []
    jmax = int(model.header.get("config", {}).get("short", {}).get("jmax", 4))
    for ch in np_channels(jmax):
        fig, axes = plt.subplots(1, len(ch.waves), figsize=(4.2 * len(ch.waves), 3.4),
                                 squeeze=False)
        for ax, w in zip(axes[0], ch.waves, strict=True):
            v = res["waves"][w]
            d, cs, tw = (np.array(v[k]) for k in ("deg", "committee_std_deg",
                                                  "truncation_68_deg"))
            ax.fill_between(tl, d - tw, d + tw, color="tab:orange", alpha=0.25,
                            label="EFT truncation 68%")
            ax.fill_between(tl, d - cs, d + cs, color="tab:blue", alpha=0.45,
                            label="committee ±1σ")
            ax.plot(tl, d, color="tab:blue", lw=1.2, label="nnpot")
            t, y, e = table.data[w]
            ax.errorbar(t, y, yerr=e, fmt="o", ms=3, color="k", label="PWA93")
            ax.set_title(w)
            ax.set_xlabel("T_lab [MeV]")
            ax.set_ylabel("deg")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out / f"phases_{ch.name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
