"""Model-level A = 3 workflow: a fitted NN model -> HO matrix elements -> triton scan.

Used by ``nnpot nuclear triton`` and the benchmark. Conventions: the NN model is the np
potential of :mod:`nnpot.nuclear.modelfile`; T = 1 pairs use its np T = 1 channels for nn
and pp as well (isospin-averaged, charge-independent approximation; no Coulomb force, so
this is 3H with an np-like nn force); hbar^2/m = (hbar c)^2/M_avg with the isospin-averaged
nucleon mass. Energies MeV, lengths fm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from nnpot.errors import InputError
from nnpot.nuclear.ho import HBARC
from nnpot.nuclear.threebody.interaction import momentum_me
from nnpot.nuclear.threebody.triton import B_3H, fit_contact, triton_scan

__all__ = ["model_hbar2_m", "model_pmax", "spurious_bound_states", "model_me",
           "model_triton", "B_3H"]


def model_hbar2_m() -> float:
    """hbar^2/m = (hbar c)^2/M_avg [MeV fm^2] (isospin-averaged nucleon mass)."""
    from nnpot.nuclear.constants import M_AVG

    return HBARC**2 / M_AVG


def model_pmax(model, default: float = 8.0) -> float:
    """Momentum [fm^-1] beyond which the model's regulator makes V negligible.

    For f(p) = exp(-(p/Lambda)^(2n)) on both sides, f < e^-40 beyond Lambda 40^(1/2n).
    """
    cfg = getattr(model, "header", {}).get("config", {}).get("pion", {})
    lam, n = cfg.get("lam_mev"), cfg.get("n_reg")
    if not lam or not n:
        return default
    return min(default, lam / HBARC * 40.0 ** (1.0 / (2 * n)))


def spurious_bound_states(model, member: int = 0, mesh=None, deuteron_window: float = 5.0
                          ) -> list[tuple[str, float]]:
    """Bound states [MeV] other than one shallow deuteron in 3S1-3D1, per channel.

    A potential with deep (spurious) bound states gives meaningless many-body results; the
    NCSM would converge to them. The deuteron is the shallowest 3S1-3D1 state above
    -``deuteron_window`` MeV.
    """
    from nnpot.nuclear.channels import np_channels
    from nnpot.nuclear.lowrank import TWO_MU, block_matrix

    k, w = model.mesh() if mesh is None else mesh
    k = torch.as_tensor(k, dtype=torch.float64)
    w = torch.as_tensor(w, dtype=torch.float64)
    jmax = int(model.header.get("config", {}).get("short", {}).get("jmax", 4))
    pot = model.members[member]
    out = []
    for ch in np_channels(jmax):
        with torch.no_grad():
            v = block_matrix(lambda a, b, ch=ch: pot(ch, a, b), k, k)
        nl = len(ch.ls)
        s = (torch.sqrt(w) * k).repeat(nl)
        h = torch.diag((k * k / TWO_MU).repeat(nl)) + s[:, None] * v * s[None, :]
        ev = torch.linalg.eigvalsh(0.5 * (h + h.T))
        bound = [float(e) for e in ev if e < 0]
        if ch.name == "3S1-3D1" and bound and bound[-1] > -deuteron_window:
            bound = bound[:-1]
        out += [(ch.name, e) for e in bound]
    return out


def model_me(model, member: int, nmax: int, hw: float, npoints: int | None = None) -> dict:
    """Bare HO matrix elements {(s, j, t): {(l', l): M}} [MeV] of one committee member."""
    from nnpot.nuclear.export import model_channel_potential

    return momentum_me(model_channel_potential(model, member), nmax, hw, model_hbar2_m(),
                       npoints=npoints, pmax=model_pmax(model))


def model_triton(model, nmax_list: Sequence[int], hw: float, ols: bool = False,
                 nbig: int | None = None, members: Sequence[int] = (0,),
                 c_e: float | None = None, fit_c_e: bool = False,
                 contact: tuple[float, int] = (500.0, 2), precision: str = "float64",
                 check: bool = True, log: Callable[[dict], None] | None = None,
                 c_d: float = 0.0) -> dict:
    """3H from a fitted model: energies per N_max and member, extrapolation, optional 3NF.

    With ``fit_c_e`` the contact strength is fitted (central member, largest N_max) to
    E = -B(3H) = -8.4818 MeV and then applied to every member; ``c_e`` fixes it instead.
    ``c_d``: strength of the one-pion-exchange-contact term (:mod:`contact_d`), fixed (the
    c_E fit is done at this c_D).
    Returns a JSON-ready dict (energies MeV, radii fm).
    """
    nmax_list = sorted(int(n) for n in nmax_list)
    if not nmax_list or nmax_list[0] < 0:
        raise InputError("give at least one non-negative N_max")
    if ols and nbig is None:
        nbig = max(4 * nmax_list[-1], 120)
    h2m = model_hbar2_m()
    if check:
        for m in members:
            bad = spurious_bound_states(model, m)
            if bad:
                ch, e = min(bad, key=lambda x: x[1])
                raise InputError(
                    f"committee member {m} has {len(bad)} spurious bound state(s) (deepest "
                    f"{e:.4g} MeV in {ch}); a triton calculation with it is meaningless")
    out: dict = {"hw_mev": hw, "nmax": nmax_list, "ols": bool(ols), "nbig": nbig,
                 "hbar2_over_m": h2m, "members": {}, "units": {"energy": "MeV", "r": "fm"},
                 "isospin": "np T=1 force used for all T=1 pairs (isospin averaged), no "
                            "Coulomb"}
    me_cache: dict = {}
    for m in members:
        bare = model_me(model, m, nbig if ols else nmax_list[-1], hw)
        me_cache[m] = bare
        res, ext = triton_scan(bare, nmax_list, hw, h2m, ols=ols, nbig=nbig,
                               precision=precision, log=log)
        out["members"][str(m)] = {"nn_only": [r.as_dict() for r in res],
                                  "extrapolation": ext.as_dict() if ext else None}
    def best(runs: list, ext: dict | None) -> float:
        """Extrapolated energy when the sequence is geometric, else the last one."""
        if ext and math.isfinite(ext["sigma"]):
            return ext["e_inf"]
        return runs[-1]["energy"]

    central = out["members"][str(members[0])]["nn_only"][-1]
    nn = [best(out["members"][str(m)]["nn_only"], out["members"][str(m)]["extrapolation"])
          for m in members]
    out["e_nn_mev"] = nn[0]
    out["e_nn_last_mev"] = central["energy"]
    out["e_nn_committee_std_mev"] = float(np.std(nn, ddof=1)) if len(nn) > 1 else 0.0
    if fit_c_e or c_e or c_d:
        c_e = c_e or 0.0
        if fit_c_e:
            fit_n = nmax_list[-3:] if len(nmax_list) >= 3 else nmax_list[-1]
            c_e = fit_contact(me_cache[members[0]], fit_n, hw, h2m, -B_3H, ols=ols,
                              contact=contact, nbig=nbig, c_d=c_d)
            out["c_e_fitted_to"] = ("extrapolated energy of N_max " + str(fit_n)
                                    if isinstance(fit_n, list) else f"N_max = {fit_n}")
        out["c_e"] = c_e
        out["c_d"] = float(c_d)
        if abs(c_e) > 10.0:  # natural size is O(1) (F_pi^4 Lambda_chi units)
            out["c_e_note"] = (f"|c_E| = {abs(c_e):.3g} is far from natural size O(1): the NN "
                               "wave function has little weight where the regulated contact "
                               "acts; the NN force, not the 3NF, is what is off")
        out["contact"] = {"lambda_mev": contact[0], "n": contact[1], "f_pi_mev": 92.4,
                          "lambda_chi_mev": 700.0}
        with3 = []
        for m in members:
            res, ext = triton_scan(me_cache[m], nmax_list, hw, h2m, ols=ols, nbig=nbig,
                                   c_e=c_e, contact=contact, precision=precision, c_d=c_d)
            entry = out["members"][str(m)]
            entry["with_3nf"] = [r.as_dict() for r in res]
            entry["with_3nf_extrapolation"] = ext.as_dict() if ext else None
            with3.append(best(entry["with_3nf"], entry["with_3nf_extrapolation"]))
        out["e_3nf_mev"] = with3[0]
        out["r_p_3nf_fm"] = out["members"][str(members[0])]["with_3nf"][-1]["r_p"]
        out["e_3nf_committee_std_mev"] = float(np.std(with3, ddof=1)) if len(with3) > 1 else 0.0
    out["r_p_nn_fm"] = central["r_p"]
    if not math.isfinite(out["e_nn_mev"]):
        raise InputError("the triton energy is not finite; check the model")
    return out
