"""Predictions of a fitted model with bands: phase shifts [deg] and the deuteron.

Bands, reported separately:
* committee: standard deviation over the committee members (epistemic, from seeds and
  bootstrap resampling of the fitted points);
* EFT truncation: 68 % half-width of the BUQEYE pointwise model stored in the model file
  (posterior nu, tau^2 learnt from the LO, NLO, N2LO chiral fits, :mod:`~.orders`), for
  the N2LO long range: t_nu^-1(0.84) y_ref tau Q^4 / sqrt(1 - Q^2), Q = max(p, m_pi)/Lambda_b,
  y_ref per wave as stored (max |delta_PWA93| over the fitted energies). Files of format 1
  stored no y_ref; for them y_ref = max(|delta|, 1 deg) of the central model.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nnpot.nuclear.channels import get_channel, np_channels
from nnpot.nuclear.constants import EXPERIMENT, p_cm, q_expansion
from nnpot.nuclear.deuteron import deuteron_properties, effective_range
from nnpot.nuclear.scattering import phase_shifts

DEG = 180.0 / math.pi


def committee_phases(model, tlab, waves=None, mesh=None) -> tuple[list[str], np.ndarray]:
    """(waves, array (K, W, E) [deg]) for every committee member."""
    mesh = model.mesh() if mesh is None else mesh
    jmax = int(model.header.get("config", {}).get("short", {}).get("jmax", 4))
    if waves is None:
        chans = list(np_channels(jmax))
        wl = [w for c in chans for w in c.waves]
    else:
        wl = [get_channel(w, jmax).waves[get_channel(w, jmax).waves.index(w.upper())]
              if w.upper() in get_channel(w, jmax).waves else w for w in waves]
        chans = list(dict.fromkeys(get_channel(w, jmax) for w in wl))
        wl = [w for c in chans for w in c.waves if w in wl or c.name in waves]
    p0 = p_cm(tlab)
    out = []
    with torch.no_grad():
        for m in model.members:
            d = phase_shifts(m, chans, p0, mesh)
            out.append(np.stack([d[w].numpy() * DEG for w in wl]))
    return wl, np.stack(out)


def truncation_half_width(model, tlab, central_deg: np.ndarray, level: float = 0.68,
                          waves=None):
    """68 % truncation half-width [deg] (W, E) of ``waves`` from the model file's BUQEYE
    posterior (``central_deg`` (W, E): the central phases, used by format-1 files)."""
    tr = model.header.get("truncation")
    if not tr:
        return np.full_like(central_deg, np.nan)
    if "y_ref_deg" in tr:
        from nnpot.nuclear.orders import truncation_half_width as band

        return band(tr, list(waves), p_cm(tlab, warn=False), level=level)
    from nnpot.uq.truncation import TruncationModel

    tm = TruncationModel.from_dict({k: tr[k] for k in ("kind", "nu0", "tau0", "n_coefficients",
                                                       "sum_c2")})
    q = q_expansion(p_cm(tlab, warn=False), tr.get("lambda_b_mev", 600.0)).numpy()
    q = np.minimum(q, 0.99)
    y_ref = np.maximum(np.abs(central_deg), 1.0)
    return tm.band(y_ref, np.broadcast_to(q, y_ref.shape), 3, level=level)


def phase_table(model, tlab, waves=None) -> dict:
    """{"tlab_mev": [...], "waves": {wave: {"deg", "committee_std_deg", "truncation_68_deg"}}}."""
    tl = [float(t) for t in tlab]
    wl, ph = committee_phases(model, tl, waves)
    central = ph[0]
    std = ph.std(axis=0, ddof=1) if ph.shape[0] > 1 else np.zeros_like(central)
    tw = truncation_half_width(model, tl, central, waves=wl)
    return {"tlab_mev": tl, "units": "deg",
            "waves": {w: {"deg": central[i].tolist(), "committee_std_deg": std[i].tolist(),
                          "truncation_68_deg": tw[i].tolist()} for i, w in enumerate(wl)}}


def deuteron_table(model) -> dict:
    """Deuteron properties and effective-range parameters, central and committee std."""
    mesh = model.mesh()
    rows = []
    for m in model.members:
        d = deuteron_properties(m, mesh).as_dict()
        a1, r1 = effective_range(m, "1S0", mesh)
        a3, r3 = effective_range(m, "3S1", mesh)
        d |= {"a_1S0": a1, "r_1S0": r1, "a_3S1": a3, "r_3S1": r3}
        rows.append(d)
    keys = list(rows[0])
    arr = np.array([[r[k] for k in keys] for r in rows])
    std = arr.std(axis=0, ddof=1) if len(rows) > 1 else np.zeros(len(keys))
    exp = {k: EXPERIMENT[k] for k in keys if k in EXPERIMENT}
    return {"model": rows[0], "committee_std": dict(zip(keys, std.tolist(), strict=True)),
            "experiment": exp,
            "units": {"B_d": "MeV", "P_D": "1", "r_d": "fm", "Q_d": "fm^2", "A_S": "fm^-1/2",
                      "eta": "1", "a_1S0": "fm", "r_1S0": "fm", "a_3S1": "fm", "r_3S1": "fm"}}
