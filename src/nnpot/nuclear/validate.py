"""Checks of a fitted model against issue-level targets (MeV, degrees, keV as stated).

* :func:`deviations`: model - PWA93 [deg] per wave at every table energy (fitted or not, so a
  model fitted with held-out energies is checked at those), RMS over the fitted energies,
  chi2 per point with the data errors alone and with data (+) truncation errors.
* :func:`mesh_independence`: largest change of any phase shift [deg] (T_lab 1-350 MeV) and of
  B_d [keV] when the momentum mesh grows by half (n -> 3n/2).
* :func:`smoothness`: second differences Delta^2 delta(T) = delta(T+1) - 2 delta(T) +
  delta(T-1) [deg] on a 1-MeV grid, against those of a cubic spline through the PWA93 table
  (T >= 5 MeV, where the table spacing resolves the curvature); a wiggle between table
  points shows up as model second differences well above the spline's.
* :func:`check`: all of the above and the deuteron against experiment.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nnpot.nuclear.channels import np_channels
from nnpot.nuclear.constants import EXPERIMENT, p_cm
from nnpot.nuclear.data import pwa93_with_errors
from nnpot.nuclear.deuteron import deuteron_properties, effective_range
from nnpot.nuclear.fit import deuteron_energy
from nnpot.nuclear.mesh import default_mesh
from nnpot.nuclear.scattering import phase_shifts

DEG = 180.0 / math.pi
TABLE_TLAB = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0)


def _jmax(model) -> int:
    return int(model.header.get("config", {}).get("short", {}).get("jmax", 4))


def _phases(potential, tlab, mesh, jmax) -> tuple[list[str], np.ndarray]:
    chans = list(np_channels(jmax))
    with torch.no_grad():
        d = phase_shifts(potential, chans, p_cm(list(tlab), warn=False), mesh)
    waves = [w for c in chans for w in c.waves]
    return waves, np.stack([d[w].numpy() * DEG for w in waves])


def deviations(model, member: int = 0) -> dict:
    """Per wave: model - PWA93 [deg] at :data:`TABLE_TLAB`, RMS [deg] and chi2 per point
    (data errors; data (+) truncation errors) over the fitted energies."""
    from nnpot.nuclear.orders import truncation_std

    fitted = model.header.get("provenance", {}).get("tlab_fitted") or list(TABLE_TLAB[:-1])
    waves, ph = _phases(model.members[member], TABLE_TLAB, model.mesh(), _jmax(model))
    table = pwa93_with_errors()
    fit_idx = [i for i, t in enumerate(TABLE_TLAB) if any(math.isclose(t, f) for f in fitted)]
    tr = model.header.get("truncation") or {}
    st = None
    if "y_ref_deg" in tr:
        st = truncation_std(tr, waves, p_cm([TABLE_TLAB[i] for i in fit_idx], warn=False))
        st = st.numpy()
    out = {"tlab_mev": list(TABLE_TLAB), "fitted_mev": [TABLE_TLAB[i] for i in fit_idx],
           "waves": {}}
    for k, w in enumerate(waves):
        t, d, e = table.data[w]
        ref = np.array([d[np.isclose(t, x)][0] for x in TABLE_TLAB])
        err = np.array([e[np.isclose(t, x)][0] for x in TABLE_TLAB])
        dev = ph[k] - ref
        df, ef = dev[fit_idx], err[fit_idx]
        comb = ef**2 + (st[k] ** 2 if st is not None else 0.0)
        out["waves"][w] = {"dev_deg": dev.tolist(), "rms_deg": float(np.sqrt(np.mean(df**2))),
                           "chi2_per_point_data": float(np.mean(df**2 / ef**2)),
                           "chi2_per_point": float(np.mean(df**2 / comb))}
    return out


def mesh_independence(model, member: int = 0, factor: float = 1.5) -> dict:
    """Max |delta(n) - delta(factor n)| [deg] over waves and T_lab 1-350 MeV, and
    |B_d(n) - B_d(factor n)| [keV], for the model's mesh size n."""
    n = int(model.header.get("mesh", {}).get("n", 48))
    big = default_mesh(int(round(factor * n)))
    pot = model.members[member]
    tl = np.arange(1.0, 351.0, 7.0)
    waves, a = _phases(pot, tl, model.mesh(), _jmax(model))
    _, b = _phases(pot, tl, big, _jmax(model))
    with torch.no_grad():
        ea, eb = float(deuteron_energy(pot, model.mesh())), float(deuteron_energy(pot, big))
    k = np.unravel_index(np.argmax(np.abs(a - b)), a.shape)
    return {"n": n, "n_big": int(round(factor * n)), "max_phase_change_deg":
            float(np.abs(a - b).max()), "where": [waves[k[0]], float(tl[k[1]])],
            "bd_change_kev": abs(ea - eb) * 1e3}


def smoothness(model, member: int = 0, tmin: float = 5.0, tmax: float = 350.0) -> dict:
    """Per wave: max |Delta^2 delta| [deg] of the model on a 1-MeV grid in [tmin, tmax] MeV
    and of a cubic spline through the PWA93 table (same grid), and their ratio."""
    from scipy.interpolate import CubicSpline

    tl = np.arange(tmin, tmax + 0.5, 1.0)
    waves, ph = _phases(model.members[member], tl, model.mesh(), _jmax(model))
    table = pwa93_with_errors()
    out = {}
    for k, w in enumerate(waves):
        t, d, _ = table.data[w]
        spl = CubicSpline(t, d)(tl)
        dm = np.abs(np.diff(ph[k], 2)).max()
        dp = np.abs(np.diff(spl, 2)).max()
        out[w] = {"model_max_d2_deg": float(dm), "pwa_spline_max_d2_deg": float(dp),
                  "ratio": float(dm / max(dp, 1e-12))}
    return out


def deuteron_vs_experiment(model, member: int = 0) -> dict:
    """Deuteron and effective-range parameters of ``member`` and experiment (MeV, fm)."""
    pot, mesh = model.members[member], model.mesh()
    d = deuteron_properties(pot, mesh).as_dict()
    a1, r1 = effective_range(pot, "1S0", mesh)
    a3, r3 = effective_range(pot, "3S1", mesh)
    d |= {"a_1S0": a1, "r_1S0": r1, "a_3S1": a3, "r_3S1": r3}
    return {k: {"model": v, "experiment": EXPERIMENT.get(k)} for k, v in d.items()}


def check(model) -> dict:
    """Every check of this module on the central member."""
    return {"deviations": deviations(model), "mesh": mesh_independence(model),
            "smoothness": smoothness(model), "deuteron": deuteron_vs_experiment(model)}
