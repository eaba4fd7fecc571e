"""Figures for nuclear models: phase shifts of every channel vs T_lab [MeV], in degrees.

Each channel gets one PNG with its waves: top row, PWA93 np points (with the Granada-based
errors; open symbols: energies the model was not fitted to), the central model on a dense
grid, the committee band (+/- 1 std, epistemic) and the EFT truncation band (68 %), drawn
separately; bottom row, the same as deviations from PWA93 (model - PWA93 at the table
energies, committee band around zero), on a scale that shows 0.1 deg.
"""

from __future__ import annotations

import os
import warnings
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = phase_table(model, tl.tolist())
    table = pwa93_with_errors()
    fitted = model.header.get("provenance", {}).get("tlab_fitted")
    tt = [t for t in table.data["1S0"][0] if t <= tmax]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        at_table = phase_table(model, tt)
    paths = []
    jmax = int(model.header.get("config", {}).get("short", {}).get("jmax", 4))
    for ch in np_channels(jmax):
        fig, axes = plt.subplots(2, len(ch.waves), figsize=(4.2 * len(ch.waves), 6.2),
                                 squeeze=False, gridspec_kw={"height_ratios": [3, 2]})
        for col, w in enumerate(ch.waves):
            ax = axes[0][col]
            v = res["waves"][w]
            d, cs, tw = (np.array(v[k]) for k in ("deg", "committee_std_deg",
                                                  "truncation_68_deg"))
            ax.fill_between(tl, d - tw, d + tw, color="tab:orange", alpha=0.25,
                            label="EFT truncation 68%")
            ax.fill_between(tl, d - cs, d + cs, color="tab:blue", alpha=0.45,
                            label="committee ±1σ")
            ax.plot(tl, d, color="tab:blue", lw=1.2, label="nnpot")
            t, y, e = table.data[w]
            keep = t <= tmax
            t, y, e = t[keep], y[keep], e[keep]
            fit_mask = (np.ones(len(t), bool) if not fitted
                        else np.array([any(np.isclose(x, f) for f in fitted) for x in t]))
            ax.errorbar(t[fit_mask], y[fit_mask], yerr=e[fit_mask], fmt="o", ms=3, color="k",
                        label="PWA93")
            if (~fit_mask).any():
                ax.errorbar(t[~fit_mask], y[~fit_mask], yerr=e[~fit_mask], fmt="o", ms=4,
                            mfc="none", color="k", label="PWA93, not fitted")
            ax.set_title(w)
            ax.set_ylabel("deg")
            v2 = at_table["waves"][w]
            dev = np.array(v2["deg"]) - y
            cs2, tw2 = np.array(v2["committee_std_deg"]), np.array(v2["truncation_68_deg"])
            bx = axes[1][col]
            lim = max(0.3, 1.3 * float(np.abs(dev[t <= 300]).max()))
            bx.fill_between(t, -tw2, tw2, color="tab:orange", alpha=0.2)
            bx.fill_between(t, -cs2, cs2, color="tab:blue", alpha=0.4)
            bx.errorbar(t, dev, yerr=e, fmt="o", ms=3, color="k")
            if (~fit_mask).any():
                bx.plot(t[~fit_mask], dev[~fit_mask], "o", ms=7, mfc="none", color="tab:red",
                        label="held out")
                bx.legend(fontsize=7)
            bx.axhline(0.0, color="0.5", lw=0.6)
            bx.set_ylim(-lim, lim)
            bx.set_xlabel("T_lab [MeV]")
            bx.set_ylabel("model - PWA93 [deg]")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out / f"phases_{ch.name}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths
