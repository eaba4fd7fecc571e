"""Order-by-order chiral fits and the BUQEYE truncation error of the N2LO long range.

Three chiral models (Weinberg counting, no network):

    LO:   OPE + the two S-wave constants (1S0, 3S1),
    NLO:  OPE + NLO TPE + the seven NLO contacts (S waves C + C2 (p^2 + p'^2), one p p' in
          each P wave, one in E1),
    N2LO: OPE + NLO + N2LO TPE + the same seven contacts,

each fitted (data errors alone, and B_d) at the energies where that order can work,
T_lab <= ``emax`` (defaults 25, 100 and 150 MeV), so that its contacts take natural values;
the fitted chi2 landscape is handled as in :mod:`nnpot.nuclear.fit`. Their phase shifts
y_k(wave, T_lab) [deg] at the fitted energies give the BUQEYE coefficients (Furnstahl et al.,
PRC 92, 024005 (2015); Melendez et al., PRC 96, 024003 (2017))

    c_0 = y_LO / y_ref,  c_2 = (y_NLO - y_LO) / (y_ref Q^2),  c_3 = (y_N2LO - y_NLO) / (y_ref Q^3),

with Q = max(p, m_pi)/Lambda_b (Lambda_b = 600 MeV, p the CM momentum) and a reference
scale per wave, y_ref = max over the fitted energies of |delta_PWA93| (floored at 1 deg), so
that c_0 is O(1) by construction and the energy dependence is carried by Q^n. Pooling all
coefficients (:class:`nnpot.uq.truncation.TruncationModel`, prior nu0 = tau0 = 1) gives
the posterior of cbar^2; the truncation error of the N2LO long range (first omitted order
4) has standard deviation

    sigma_trunc = y_ref tau Q^4 / sqrt(1 - Q^2) sqrt(nu / (nu - 2))        [deg]

(68 % half-width: t_nu^-1(0.84) y_ref tau Q^4 / sqrt(1 - Q^2)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nnpot.nuclear.constants import q_expansion
from nnpot.nuclear.data import pwa93_np

ORDERS = ("LO", "NLO", "N2LO")
ORDER_POWERS = (0, 2, 3)  #: powers of Q present (c_1 = 0 by symmetry)
NEXT_ORDER = 4  #: first omitted power after N2LO
EMAX = {"LO": 25.0, "NLO": 100.0, "N2LO": 150.0}  #: fitted T_lab range per order [MeV]


def y_reference(waves: list[str], tlab, floor_deg: float = 1.0) -> dict[str, float]:
    """y_ref [deg] per wave: max |delta_PWA93| over the energies ``tlab`` [MeV] (floored)."""
    table = pwa93_np()
    out = {}
    for w in waves:
        vals = [abs(table.value(w, float(t))) for t in tlab]
        out[w] = max(max(vals), floor_deg)
    return out


def chiral_order_predictions(data, mesh, pion: dict | None = None, emax: dict | None = None,
                             max_iter: int = 100, log=None) -> np.ndarray:
    """(3, W, E) phase shifts [deg] at the energies of ``data`` (a
    :class:`~nnpot.nuclear.fit.FitData`) of the LO, NLO and N2LO chiral models, each fitted to
    the points of ``data`` with T_lab <= emax[order] (data errors alone, and B_d)."""
    from nnpot.nuclear.fit import FitSettings, fit, make_data, predict
    from nnpot.nuclear.potential import NuclearPotential

    em = EMAX | dict(emax or {})
    jmax = max(c.j for c in data.channels)
    out = []
    for order, contacts in (("LO", "LO"), ("NLO", "NLO"), ("N2LO", "NLO")):
        model = NuclearPotential(pion=(pion or {}) | {"order": order},
                                 short={"jmax": jmax, "hidden": 0, "contacts": contacts})
        tl = [t for t in data.tlab.tolist() if t <= em[order] + 1e-9]
        sub = make_data(tl, jmax)
        sub = sub.with_weight(_weights_for(data, sub))
        fit(model, sub, mesh, settings=FitSettings(max_iter=max_iter, lambda_s=0.0), log=log)
        with torch.no_grad():
            out.append(predict(model, data, mesh).numpy())
    return np.stack(out)


def _weights_for(data, sub) -> torch.Tensor:
    """Bootstrap/holdout weights of ``data`` restricted to the energies of ``sub``."""
    idx = [int(np.nonzero(np.isclose(data.tlab.numpy(), t))[0][0]) for t in sub.tlab.tolist()]
    rows = [data.waves.index(w) for w in sub.waves]
    return data.weight[rows][:, idx]


def truncation_posterior(preds: np.ndarray, p0, y_ref: np.ndarray,
                         lambda_b: float = 600.0, nu0: float = 1.0, tau0: float = 1.0):
    """(TruncationModel fitted to the coefficients, coefficients (3, W, E)) from order
    predictions (3, W, E) [deg], CM momenta p0 (E,) [fm^-1] and y_ref (W,) [deg]."""
    from nnpot.uq.truncation import TruncationModel, extract_coefficients

    q = q_expansion(torch.as_tensor(p0), lambda_b).numpy()[None, :]
    ref = np.asarray(y_ref, dtype=float)[:, None]
    shape = preds.shape[1:]
    c = extract_coefficients(preds, np.broadcast_to(ref, shape), np.broadcast_to(q, shape),
                             ORDER_POWERS)
    return TruncationModel(nu0, tau0).fit(c, ORDER_POWERS), c


def truncation_std(posterior: dict, waves: list[str], p0) -> torch.Tensor:
    """sigma_trunc (W, E) [deg] of the N2LO long range from a stored posterior (the dict
    written by :func:`posterior_dict`) at CM momenta p0 (E,) [fm^-1]."""
    from nnpot.uq.truncation import TruncationModel

    tm = TruncationModel.from_dict(posterior)
    q = q_expansion(torch.as_tensor(p0), posterior["lambda_b_mev"]).numpy()
    q = np.minimum(q, 0.99)
    ref = np.array([posterior["y_ref_deg"].get(w, 1.0) for w in waves])[:, None]
    shape = (len(waves), len(q))
    sd = tm.std(np.broadcast_to(ref, shape), np.broadcast_to(q[None, :], shape), 3,
                next_order=NEXT_ORDER)
    return torch.as_tensor(np.asarray(sd), dtype=torch.float64)


def truncation_half_width(posterior: dict, waves: list[str], p0, level: float = 0.68):
    """Central ``level`` credible half-width (W, E) [deg] of the N2LO truncation error."""
    from nnpot.uq.truncation import TruncationModel

    tm = TruncationModel.from_dict(posterior)
    q = np.minimum(q_expansion(torch.as_tensor(p0), posterior["lambda_b_mev"]).numpy(), 0.99)
    ref = np.array([posterior["y_ref_deg"].get(w, 1.0) for w in waves])[:, None]
    shape = (len(waves), len(q))
    return tm.band(np.broadcast_to(ref, shape), np.broadcast_to(q[None, :], shape), 3,
                   level=level, next_order=NEXT_ORDER)


def posterior_dict(model, y_ref: dict[str, float], lambda_b: float, emax: dict,
                   coefficients: np.ndarray) -> dict:
    """JSON-able record of the truncation model (stored in model files)."""
    c = np.asarray(coefficients)
    return model.to_dict() | {
        "cbar": model.cbar, "lambda_b_mev": float(lambda_b), "orders": list(ORDER_POWERS),
        "next_order": NEXT_ORDER, "y_ref_deg": {k: float(v) for k, v in y_ref.items()},
        "y_ref": "max |delta_PWA93| over the fitted energies per wave, floored at 1 deg",
        "emax_mev": dict(emax),
        "cbar_per_order": [float(math.sqrt(np.mean(c[i] ** 2))) for i in range(c.shape[0])]}
