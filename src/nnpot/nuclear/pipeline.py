"""The whole fit behind ``nnpot nuclear fit``: chiral orders -> sigma_trunc -> committee.

Steps (energies in MeV, phases in degrees):
1. PWA93 np targets at the fitted energies (``data.tlab`` minus ``data.holdout``), errors of
   :func:`nnpot.nuclear.data.pwa93_with_errors`.
2. LO, NLO, N2LO chiral models fitted at low energies (:mod:`nnpot.nuclear.orders`) ->
   BUQEYE posterior of cbar -> sigma_trunc (W, E) of the N2LO long range.
3. A committee of ``committee`` full models (N2LO pion exchange + per-channel Yukawa
   intermediate range + contact polynomial + small networks), each fitted channel by
   channel (:func:`nnpot.nuclear.fit.fit`) with chi2 on sigma_data (+) sigma_trunc and B_d;
   member 0 on the PWA93 values, members k > 0 resampled (``resample``): "noise" (default,
   parametric bootstrap: targets + sigma_data N(0, 1), every point kept; a Poisson
   bootstrap drops about a third of the points, and a member without, e.g., the 250-300 MeV
   points of a wave extrapolates wildly inside the fitted range), "poisson" (Poisson(1)
   weights per point) or "none" (seed only). B_d is never resampled. With ``warm_start``
   (default) members k > 0 start from member 0's optimum: from the contact grid a member
   can end in another minimum that the loose truncation errors at 250-300 MeV allow (e.g.
   1P1 4.5 deg RMS off the data) and inflate the committee band. In S waves the resampled
   targets can slide a warm start along the flat valley of phase-equivalent potentials to
   V_S(0,0) >> 0 (a triton bound by 2-4 MeV): the S-wave attraction term of
   :mod:`~nnpot.nuclear.lsq` (``[solver] s_wave_weight``, ``s_wave_margin``) and the
   branch guard of :func:`nnpot.nuclear.fit.fit_channel` keep every member attractive.

:func:`run_fit` returns the members and a JSON-able report: per wave RMS/max deviation and
chi2 per point (data errors alone and combined), the truncation posterior, timings.
"""

from __future__ import annotations

import math
import time
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from nnpot.config import Strict
from nnpot.nuclear import orders as O
from nnpot.nuclear.fit import FIT_TLAB, FitSettings, fit, make_data, per_wave_report, predict
from nnpot.nuclear.potential import NuclearPotential

#: Contact degrees of the shipped model (see :func:`nnpot.nuclear.potential.block_degree`).
DEGREES = {"0": 3, "1": 2, "2": 1, "3": 1, "4": 1, "5": 0, "02": 2, "13": 1, "24": 1,
           "35": 0, "E2": 2}


class ModelCfg(Strict):
    """Model: pion exchange (order, nonlocal regulator lam_mev/n_reg, SFR cutoff sfr_mev),
    Yukawa masses of the intermediate range (MeV; empty: none), contact degrees, network."""

    order: str = "N2LO"
    lam_mev: float = 600.0
    n_reg: int = 4
    sfr_mev: float = 600.0
    mid_masses_mev: list[float] = Field(default_factory=lambda: [300.0, 500.0])
    degrees: dict[str, int] = Field(default_factory=lambda: dict(DEGREES))
    hidden: int = 0
    layers: int = 1
    c_scale: float = 100.0
    p_scale: float = 2.0


class DataCfg(Strict):
    """Fitted PWA93 energies [MeV] (``holdout`` ones are left out), waves with J <= jmax."""

    tlab: list[float] = Field(default_factory=lambda: list(FIT_TLAB))
    jmax: int = 4
    holdout: list[float] = Field(default_factory=list)


class SolverCfg(Strict):
    """Priors and Levenberg-Marquardt controls (:class:`nnpot.nuclear.fit.FitSettings`)."""

    sigma_c: float = 100.0
    lambda_w: float = 1e-3
    lambda_s: float = 1e-7
    max_iter: int = 300
    sigma_b_mev: float = 0.0005
    # S-wave attraction: V_S(0,0) <= -margin [MeV fm^3] (nnpot.nuclear.lsq; weight 0: off)
    s_wave_weight: float = Field(100.0, ge=0)
    s_wave_margin: float = 10.0


class FitConfig(Strict):
    """Config of ``nnpot nuclear fit`` (TOML; unknown keys are errors)."""

    schema_version: int = 2
    model: ModelCfg = Field(default_factory=ModelCfg)
    data: DataCfg = Field(default_factory=DataCfg)
    solver: SolverCfg = Field(default_factory=SolverCfg)
    mesh_n: int = 48
    committee: int = 3
    resample: Literal["noise", "poisson", "none"] = "noise"
    warm_start: bool = True
    seed: int = 0
    truncation: bool = True
    lambda_b_mev: float = 600.0
    emax_mev: dict[str, float] = Field(default_factory=lambda: dict(O.EMAX))


def build_model(cfg: FitConfig, seed: int) -> NuclearPotential:
    """An unfitted potential as configured (member seed ``seed``)."""
    m = cfg.model
    mid = ({"masses_mev": list(m.mid_masses_mev), "jmax": cfg.data.jmax}
           if m.mid_masses_mev else None)
    return NuclearPotential(
        pion={"order": m.order, "lam_mev": m.lam_mev, "n_reg": m.n_reg, "sfr_mev": m.sfr_mev},
        short={"jmax": cfg.data.jmax, "hidden": m.hidden, "layers": m.layers,
               "degrees": dict(m.degrees), "c_scale": m.c_scale, "p_scale": m.p_scale,
               "seed": seed},
        mid=mid)


def fitted_energies(cfg: FitConfig) -> list[float]:
    return [t for t in cfg.data.tlab if not any(math.isclose(t, h) for h in cfg.data.holdout)]


def truncation_model(cfg: FitConfig, data, mesh, log=None) -> tuple[dict, torch.Tensor]:
    """(posterior record for the model file, sigma_trunc (W, E) [deg]) from the chiral
    orders fitted to ``data``."""
    pion = {"lam_mev": cfg.model.lam_mev, "n_reg": cfg.model.n_reg,
            "sfr_mev": cfg.model.sfr_mev}
    preds = O.chiral_order_predictions(data, mesh, pion=pion, emax=cfg.emax_mev, log=log)
    y_ref = O.y_reference(data.waves, data.tlab.tolist())
    tm, coef = O.truncation_posterior(preds, data.p0, np.array([y_ref[w] for w in data.waves]),
                                      cfg.lambda_b_mev)
    post = O.posterior_dict(tm, y_ref, cfg.lambda_b_mev, cfg.emax_mev, coef)
    return post, O.truncation_std(post, data.waves, data.p0)


def run_fit(cfg: FitConfig, log=None) -> tuple[list[NuclearPotential], dict]:
    """The whole fit of ``cfg`` (module docstring). Returns (members, report)."""
    from nnpot.nuclear.mesh import default_mesh

    torch.manual_seed(cfg.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    mesh = default_mesh(cfg.mesh_n)
    tl = fitted_energies(cfg)
    data = make_data(tl, cfg.data.jmax)
    report: dict = {"tlab_fitted": tl, "holdout": list(cfg.data.holdout)}
    post, sig_t = None, None
    if cfg.truncation:
        post, sig_t = truncation_model(cfg, data, mesh, log=log)
        report["chiral_orders_seconds"] = time.perf_counter() - t0
        if log is not None:
            log({"stage": "truncation", "cbar": post["cbar"]})
    s = cfg.solver
    settings = FitSettings(sigma_c=s.sigma_c, lambda_w=s.lambda_w, lambda_s=s.lambda_s,
                           sigma_b=s.sigma_b_mev, max_iter=s.max_iter,
                           s_wave_weight=s.s_wave_weight, s_wave_margin=s.s_wave_margin)
    gen = torch.Generator().manual_seed(cfg.seed)
    members, seconds = [], []
    for k in range(cfg.committee):
        tk = time.perf_counter()
        model = build_model(cfg, cfg.seed + k)
        d = data
        if k > 0 and cfg.resample == "poisson":
            d = data.with_weight(torch.poisson(torch.ones_like(data.weight), generator=gen))
        elif k > 0 and cfg.resample == "noise":
            noise = torch.randn(data.target.shape, generator=gen, dtype=torch.float64)
            d = data.with_target(data.target + data.sigma * noise)
        init = True
        if k > 0 and cfg.warm_start:  # start at member 0's optimum: a local bootstrap
            model.load_state_dict(members[0].state_dict())
            init = False
        res = fit(model, d, mesh, sig_t, settings=settings, init=init, log=log)
        seconds.append(time.perf_counter() - tk)
        if log is not None:
            log({"member": k, "chi2": res["chi2"], "seconds": seconds[-1]})
        model.requires_grad_(False)
        members.append(model)
    with torch.no_grad():
        pred = predict(members[0], data, mesh)
    report["per_wave"] = per_wave_report(pred, data, sig_t)
    report["member_seconds"] = seconds
    report["fit_seconds"] = time.perf_counter() - t0
    report["fit_cpu_seconds"] = time.process_time() - c0
    report["threads"] = torch.get_num_threads()
    report["truncation"] = post
    return members, report
