"""Fitting the potential to PWA93 np phase shifts and the deuteron binding energy.

Loss (phase shifts delta in degrees, energies in MeV):

    chi2 = sum_{wave, T} (delta_model - delta_PWA)^2 / (sigma_data^2 + sigma_trunc^2)
           + ((B_d - B_d,exp) / sigma_B)^2 + lambda_w sum ||W_net||^2

sigma_data: Granada statistical error (+) PWA93-Granada difference (see
:func:`nnpot.nuclear.data.pwa93_with_errors`). sigma_trunc: BUQEYE pointwise truncation
error of the N2LO calculation (:mod:`nnpot.uq.truncation`), learnt from the order-by-order
predictions of chiral models fitted at LO, NLO and N2LO (pion exchange of that order plus
that order's contacts, no network), with Q = max(p, m_pi)/Lambda_b, Lambda_b = 600 MeV,
orders (0, 2, 3), and y_ref = max_k |delta_k| (floored at 1 deg): see
:func:`truncation_sigma`. The deuteron is the shallowest bound state of 3S1-3D1
(torch.linalg.eigh, differentiable). Optimiser: L-BFGS (float64, strong Wolfe).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from nnpot.errors import InputError
from nnpot.nuclear.channels import Channel, get_channel, np_channels
from nnpot.nuclear.constants import EXPERIMENT, p_cm, q_expansion
from nnpot.nuclear.data import pwa93_with_errors
from nnpot.nuclear.deuteron import hamiltonian
from nnpot.nuclear.potential import NuclearPotential
from nnpot.nuclear.scattering import phase_shifts

DEG = 180.0 / math.pi
FIT_TLAB = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0)


@dataclass
class FitData:
    """Targets on a (wave, energy) grid: tlab (E,) MeV, p0 (E,) fm^-1, target/sigma (W, E)
    in degrees, weight (W, E) (0 leaves a point out, bootstrap counts otherwise)."""

    waves: list[str]
    tlab: torch.Tensor
    p0: torch.Tensor
    target: torch.Tensor
    sigma: torch.Tensor
    weight: torch.Tensor
    channels: list[Channel] = field(default_factory=list)

    def with_weight(self, weight: torch.Tensor) -> FitData:
        return FitData(self.waves, self.tlab, self.p0, self.target, self.sigma, weight,
                       self.channels)


def make_data(tlab=FIT_TLAB, jmax: int = 4, waves: list[str] | None = None) -> FitData:
    """PWA93 np targets with errors at the energies ``tlab`` [MeV] for all waves J <= jmax."""
    table = pwa93_with_errors()
    chans = [c for c in np_channels(jmax) if waves is None or any(w in waves for w in c.waves)]
    wl = [w for c in chans for w in c.waves]
    t = torch.tensor(sorted(float(x) for x in tlab), dtype=torch.float64)
    tgt = torch.zeros(len(wl), len(t), dtype=torch.float64)
    sig = torch.zeros_like(tgt)
    for i, w in enumerate(wl):
        tt, d, e = table.data[w]
        for j, x in enumerate(t.tolist()):
            k = np.nonzero(np.isclose(tt, x))[0]
            if len(k) == 0:
                raise InputError(f"PWA93 has no {w} value at T_lab = {x} MeV")
            tgt[i, j], sig[i, j] = float(d[k[0]]), float(e[k[0]])
    return FitData(wl, t, p_cm(t, warn=False), tgt, sig, torch.ones_like(tgt), chans)


def predict(model, data: FitData, mesh) -> torch.Tensor:
    """Model phase shifts (W, E) in degrees at the data energies."""
    d = phase_shifts(model, data.channels, data.p0, mesh)
    return torch.stack([d[w] for w in data.waves]) * DEG


def deuteron_energy(model, mesh) -> torch.Tensor:
    """Energy [MeV] of the shallowest bound state of 3S1-3D1 (0 if none), differentiable."""
    evals = torch.linalg.eigvalsh(hamiltonian(model, get_channel("3S1"), mesh))
    neg = evals[evals < 0]
    if neg.numel() == 0:
        return torch.zeros((), dtype=evals.dtype)
    return neg.max()


def truncation_sigma(preds_deg: np.ndarray, p0: torch.Tensor, nu0: float = 1.0,
                     tau0: float = 1.0, lambda_b: float = 600.0):
    """sigma_trunc (W, E) [deg] of the N2LO prediction and cbar, from (3, W, E) predictions
    at LO, NLO, N2LO [deg] (BUQEYE pointwise model of :mod:`nnpot.uq.truncation`)."""
    from nnpot.uq.truncation import truncation_band

    q = q_expansion(p0, lambda_b).numpy()[None, :]
    y_ref = np.maximum(np.abs(preds_deg).max(axis=0), 1.0)
    res = truncation_band(preds_deg, y_ref, np.broadcast_to(q, y_ref.shape), (0, 2, 3),
                          nu0=nu0, tau0=tau0)
    return res["std"], float(res["cbar"])


def channel_data(data: FitData, channel: Channel) -> FitData:
    """The rows of ``data`` that belong to ``channel``."""
    idx = [data.waves.index(w) for w in channel.waves]
    return FitData([data.waves[i] for i in idx], data.tlab, data.p0, data.target[idx],
                   data.sigma[idx], data.weight[idx], [channel])


def channel_parameters(model, channel: Channel) -> list[torch.nn.Parameter]:
    """The trainable parameters of ``model`` that act in ``channel`` only."""
    prefix = channel.name.replace("-", "_") + "_"
    out = [p for n, p in model.short.coef.items() if n.startswith(prefix)]
    for n, net in model.short.nets.items():
        if n.startswith(prefix):
            out.extend(net.parameters())
    return [p for p in out if p.requires_grad]


def net_penalty(model, channel: Channel | None = None) -> torch.Tensor:
    """Sum of squared network weights (all channels, or one)."""
    prefix = None if channel is None else channel.name.replace("-", "_") + "_"
    tot = torch.zeros((), dtype=torch.float64)
    for n, net in model.short.nets.items():
        if prefix is None or n.startswith(prefix):
            for pn, p in net.named_parameters():
                if pn.endswith("weight"):
                    tot = tot + (p**2).sum()
    return tot


def loss_terms(model, data: FitData, mesh, sigma_trunc: torch.Tensor | None = None,
               sigma_b: float = 0.0005, lambda_w: float = 1e-4) -> dict:
    """chi2 of the phase shifts, deuteron term (if 3S1 is in ``data``) and weight penalty."""
    pred = predict(model, data, mesh)
    var = data.sigma**2 + (0.0 if sigma_trunc is None else sigma_trunc**2)
    chi2 = (data.weight * (pred - data.target) ** 2 / var).sum()
    bd = torch.zeros((), dtype=torch.float64)
    if "3S1" in data.waves:
        e_d = deuteron_energy(model, mesh)
        bd = ((-e_d - EXPERIMENT["B_d"]) / sigma_b) ** 2
    pen = torch.zeros((), dtype=torch.float64)
    if lambda_w > 0 and hasattr(model, "short"):
        for c in data.channels:
            pen = pen + lambda_w * net_penalty(model, c)
    return {"chi2": chi2, "deuteron": bd, "penalty": pen, "total": chi2 + bd + pen,
            "pred": pred.detach()}


def fit(model, data: FitData, mesh, sigma_trunc=None, max_iter: int = 300,
        sigma_b: float = 0.0005, lambda_w: float = 1e-4, log=None) -> dict:
    """Minimise :func:`loss_terms` with L-BFGS, channel by channel.

    The loss is a sum of independent channel terms (the deuteron belongs to 3S1-3D1), so
    minimising each channel with its own parameters is the joint minimisation, with far
    better conditioning. Returns the final terms (all channels) and timing.
    """
    t0 = time.perf_counter()
    n_eval = 0
    for c in data.channels:
        params = channel_parameters(model, c)
        if not params:
            continue
        dc = channel_data(data, c)
        st = None if sigma_trunc is None else sigma_trunc[[data.waves.index(w) for w in c.waves]]
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, history_size=50,
                                tolerance_grad=1e-10, tolerance_change=1e-14,
                                line_search_fn="strong_wolfe")

        def closure(dc=dc, st=st, opt=opt):
            nonlocal n_eval
            opt.zero_grad()
            terms = loss_terms(model, dc, mesh, st, sigma_b, lambda_w)
            terms["total"].backward()
            n_eval += 1
            return terms["total"]

        opt.step(closure)
        if log is not None:
            with torch.no_grad():
                tc = loss_terms(model, dc, mesh, st, sigma_b, lambda_w)
            log({"channel": c.name, "chi2": float(tc["chi2"]), "deuteron": float(tc["deuteron"])})
    with torch.no_grad():
        terms = loss_terms(model, data, mesh, sigma_trunc, sigma_b, lambda_w)
    return {k: (float(v) if k != "pred" else v) for k, v in terms.items()} | {
        "seconds": time.perf_counter() - t0, "evaluations": n_eval}


def chiral_order_predictions(data: FitData, mesh, max_iter: int = 150, pion: dict | None = None,
                             log=None) -> np.ndarray:
    """(3, W, E) phase shifts [deg] of chiral models fitted at LO, NLO and N2LO.

    Each has that order's pion exchange and contacts ("LO": S-wave constants; "NLO" and
    N2LO: Weinberg NLO contact set) and no network; fitted to the data errors only.
    """
    out = []
    for order, contacts in (("LO", "LO"), ("NLO", "NLO"), ("N2LO", "NLO")):
        m = NuclearPotential(pion=(pion or {}) | {"order": order},
                             short={"jmax": max(c.j for c in data.channels), "hidden": 0,
                                    "contacts": contacts})
        fit(m, data, mesh, None, max_iter=max_iter, lambda_w=0.0, log=log)
        with torch.no_grad():
            out.append(predict(m, data, mesh).numpy())
    return np.stack(out)


def per_wave_report(pred: torch.Tensor, data: FitData, sigma_trunc=None) -> dict:
    """Per wave: RMS deviation [deg] and chi2 per point (data (+) truncation errors)."""
    var = data.sigma**2 + (0.0 if sigma_trunc is None else torch.as_tensor(sigma_trunc) ** 2)
    rep = {}
    for i, w in enumerate(data.waves):
        d = pred[i] - data.target[i]
        rep[w] = {"rms_deg": float(torch.sqrt((d**2).mean())),
                  "max_deg": float(d.abs().max()),
                  "chi2_per_point": float((d**2 / var[i]).mean()) if torch.is_tensor(var)
                  else float("nan")}
    return rep


# ----------------------------------------------------------------------------- pipeline
def _config_schema():
    from pydantic import Field

    from nnpot.config import Strict

    class ModelCfg(Strict):
        order: str = "N2LO"
        lam_mev: float = 600.0
        n_reg: int = 4
        sfr_mev: float = 600.0
        hidden: int = 8
        contacts: str = "full"
        p_scale: float = 2.0

    class DataCfg(Strict):
        tlab: list[float] = Field(default_factory=lambda: list(FIT_TLAB))
        jmax: int = 4
        holdout: list[float] = Field(default_factory=list)

    class FitCfg(Strict):
        schema_version: int = 1
        model: ModelCfg = Field(default_factory=ModelCfg)
        data: DataCfg = Field(default_factory=DataCfg)
        mesh_n: int = 48
        committee: int = 3
        bootstrap: bool = True
        seed: int = 0
        max_iter_contacts: int = 400
        max_iter: int = 1500
        lambda_w: float = 1e-4
        sigma_b_mev: float = 0.0005
        truncation: bool = True
        lambda_b_mev: float = 600.0

    return FitCfg


FitConfig = _config_schema()


def run_fit(cfg, log=None) -> tuple[list[NuclearPotential], dict]:
    """The whole fit of ``cfg`` (a :data:`FitConfig`): chiral orders -> sigma_trunc ->
    committee of full models (member 0 on all data with seed ``cfg.seed``; the others with
    other seeds and, if ``cfg.bootstrap``, Poisson(1) bootstrap weights per point)."""
    from nnpot.nuclear.mesh import default_mesh

    torch.manual_seed(cfg.seed)
    mesh = default_mesh(cfg.mesh_n)
    tl = [t for t in cfg.data.tlab if not any(math.isclose(t, h) for h in cfg.data.holdout)]
    data = make_data(tl, cfg.data.jmax)
    pion = {"lam_mev": cfg.model.lam_mev, "n_reg": cfg.model.n_reg,
            "sfr_mev": cfg.model.sfr_mev}
    t0 = time.perf_counter()
    report: dict = {"tlab_fitted": tl, "holdout": list(cfg.data.holdout)}
    sig_t, trunc = None, None
    if cfg.truncation:
        preds = chiral_order_predictions(data, mesh, pion=pion)
        sd, cbar = truncation_sigma(preds, data.p0, lambda_b=cfg.lambda_b_mev)
        sig_t = torch.as_tensor(np.asarray(sd), dtype=torch.float64)
        from nnpot.uq.truncation import TruncationModel, extract_coefficients

        q = q_expansion(data.p0, cfg.lambda_b_mev).numpy()[None, :]
        y_ref = np.maximum(np.abs(preds).max(axis=0), 1.0)
        c = extract_coefficients(preds, y_ref, np.broadcast_to(q, y_ref.shape), (0, 2, 3))
        trunc = TruncationModel().fit(c, (0, 2, 3)).to_dict()
        trunc |= {"cbar": cbar, "lambda_b_mev": cfg.lambda_b_mev, "orders": [0, 2, 3],
                  "y_ref": "max(|delta_k|, 1 deg)"}
        report["chiral_orders_seconds"] = time.perf_counter() - t0
    members = []
    gen = torch.Generator().manual_seed(cfg.seed)
    for k in range(cfg.committee):
        m = NuclearPotential(pion=pion | {"order": cfg.model.order},
                             short={"jmax": cfg.data.jmax, "hidden": cfg.model.hidden,
                                    "contacts": cfg.model.contacts, "p_scale": cfg.model.p_scale,
                                    "seed": cfg.seed + k})
        d = data
        if k > 0 and cfg.bootstrap:
            d = data.with_weight(torch.poisson(torch.ones_like(data.weight), generator=gen))
        m.short.nets.requires_grad_(False)
        fit(m, d, mesh, sig_t, cfg.max_iter_contacts, cfg.sigma_b_mev, cfg.lambda_w, log)
        m.short.nets.requires_grad_(True)
        res = fit(m, d, mesh, sig_t, cfg.max_iter, cfg.sigma_b_mev, cfg.lambda_w, log)
        if log is not None:
            log({"member": k, "chi2": res["chi2"], "seconds": res["seconds"]})
        members.append(m)
    with torch.no_grad():
        pred = predict(members[0], data, mesh)
    report["per_wave"] = per_wave_report(pred, data, sig_t)
    report["fit_seconds"] = time.perf_counter() - t0
    report["truncation"] = trunc
    return members, report
