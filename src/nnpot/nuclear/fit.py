"""Fitting the potential to PWA93 np phase shifts and the deuteron binding energy.

Loss (phase shifts delta in degrees, energies in MeV), a sum of independent channel terms:

    chi2 = sum_{wave, T} w (delta_model - delta_PWA)^2 / (sigma_data^2 + sigma_trunc^2)
           + ((B_d - B_d,exp) / sigma_B)^2 + priors

sigma_data: Granada statistical error (+) PWA93-Granada difference (see
:func:`nnpot.nuclear.data.pwa93_with_errors`); sigma_trunc: BUQEYE truncation error of the
N2LO long range (:mod:`nnpot.nuclear.orders`); w: 1 or a bootstrap count. The priors are
those of :mod:`nnpot.nuclear.lsq` (natural-size contacts, network weight decay, bounded
short-range strength). The deuteron is the shallowest bound state of 3S1-3D1.

Each channel is fitted on its own by Levenberg-Marquardt (:mod:`~nnpot.nuclear.lsq`):
(1) a grid of starting values for the leading contact of every diagonal block (the chi2
landscape has a basin per number of spurious bound states; a gradient method started at
zero can run off to a huge coupling and stall, e.g. 3P0 at 13.6 deg), (2) contacts only,
in 3S1-3D1 with sigma_B shrunk in stages (50 keV, 5 keV, final: a 0.5 keV constraint from
the start makes the problem too stiff), (3) contacts and networks together.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from nnpot.errors import InputError
from nnpot.nuclear.channels import Channel, get_channel, np_channels
from nnpot.nuclear.constants import EXPERIMENT, p_cm
from nnpot.nuclear.data import pwa93_with_errors
from nnpot.nuclear.deuteron import hamiltonian
from nnpot.nuclear.lsq import Problem, levenberg_marquardt, parameter_names, residuals
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

    def with_target(self, target: torch.Tensor) -> FitData:
        return FitData(self.waves, self.tlab, self.p0, target, self.sigma, self.weight,
                       self.channels)


@dataclass
class FitSettings:
    """Fit controls: prior width sigma_c of the contacts (units of c_scale), network weight
    decay lambda_w, short-range strength weight lambda_s, deuteron sigma_b [MeV] and its
    continuation stages [MeV], Levenberg-Marquardt iterations per stage, starting grid."""

    sigma_c: float = 10.0
    lambda_w: float = 1e-3
    lambda_s: float = 1e-2
    sigma_b: float = 0.0005
    sigma_b_stages: tuple[float, ...] = (0.05, 0.005)
    max_iter: int = 100
    grid: tuple[float, ...] = tuple(np.linspace(-5.0, 5.0, 21).tolist())
    grid_coupled: tuple[float, ...] = tuple(np.linspace(-4.0, 4.0, 9).tolist())


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


def channel_data(data: FitData, channel: Channel) -> FitData:
    """The rows of ``data`` that belong to ``channel``."""
    idx = [data.waves.index(w) for w in channel.waves]
    return FitData([data.waves[i] for i in idx], data.tlab, data.p0, data.target[idx],
                   data.sigma[idx], data.weight[idx], [channel])


def channel_parameters(model, channel: Channel) -> list[torch.nn.Parameter]:
    """The trainable parameters of ``model`` that act in ``channel`` only."""
    params = dict(model.named_parameters())
    return [params[n] for n in parameter_names(model, channel)]


def loss_terms(model, data: FitData, mesh, sigma_trunc: torch.Tensor | None = None,
               sigma_b: float = 0.0005) -> dict:
    """chi2 of the phase shifts and the deuteron term (if 3S1 is in ``data``), by autograd
    through the full solver (used for timing and as a check of :mod:`~nnpot.nuclear.lsq`)."""
    pred = predict(model, data, mesh)
    var = data.sigma**2 + (0.0 if sigma_trunc is None else sigma_trunc**2)
    chi2 = (data.weight * (pred - data.target) ** 2 / var).sum()
    bd = torch.zeros((), dtype=torch.float64)
    if "3S1" in data.waves:
        bd = ((-deuteron_energy(model, mesh) - EXPERIMENT["B_d"]) / sigma_b) ** 2
    return {"chi2": chi2, "deuteron": bd, "total": chi2 + bd, "pred": pred.detach()}


def _problem(model, dc: FitData, mesh, st, settings: FitSettings, sigma_b) -> Problem:
    return Problem(model, dc.channels[0], mesh, dc.p0, dc.target, dc.sigma, dc.weight,
                   sigma_trunc=st, sigma_b=sigma_b, sigma_c=settings.sigma_c,
                   lambda_w=settings.lambda_w, lambda_s=settings.lambda_s)


def _start_grid(prob: Problem, names: list[str], settings: FitSettings) -> float:
    """Set the leading contact of each diagonal block to the best value on a grid."""
    coef = dict(prob.model.short.coef.items())
    lead = [n[len("short.coef."):] for n in names
            if n.startswith("short.coef.") and n[-1] == n[-2]]  # diagonal blocks "..._LL"
    if not lead:
        return float("nan")
    grid = settings.grid if len(lead) == 1 else settings.grid_coupled
    best, arg = math.inf, None
    for vals in itertools.product(grid, repeat=len(lead)):
        with torch.no_grad():
            for key, v in zip(lead, vals, strict=True):
                coef[key][0] = v
        r, _, _, _ = residuals(prob, names, with_jac=False)
        c = float(r @ r)
        if math.isfinite(c) and c < best:
            best, arg = c, vals
    with torch.no_grad():
        for key, v in zip(lead, arg if arg is not None else [0.0] * len(lead), strict=True):
            coef[key][0] = v
    return best


def fit_channel(model, dc: FitData, mesh, sigma_trunc=None, settings: FitSettings | None = None,
                init: bool = True) -> dict:
    """Fit the parameters of the single channel of ``dc`` (stages in the module docstring).

    Returns {"cost", "chi2", "iterations", "seconds"}; chi2 is the phase-shift part."""
    s = settings or FitSettings()
    t0 = time.perf_counter()
    ch = dc.channels[0]
    deut = "3S1" in dc.waves
    all_names = parameter_names(model, ch)
    contacts = [n for n in all_names if n.startswith("short.coef.")]
    stages = [*(b for b in s.sigma_b_stages if b > s.sigma_b), s.sigma_b] if deut else [None]
    its = 0
    if init and contacts:
        _start_grid(_problem(model, dc, mesh, sigma_trunc, s, stages[0]), contacts, s)
    for i, sb in enumerate(stages):  # intermediate sigma_B stages need no tight convergence
        n_it = s.max_iter if i == len(stages) - 1 else max(1, s.max_iter // 3)
        its += levenberg_marquardt(_problem(model, dc, mesh, sigma_trunc, s, sb), contacts,
                                   n_it)["iterations"]
    res = {"cost": float("nan")}
    if len(all_names) > len(contacts) or not contacts:
        res = levenberg_marquardt(_problem(model, dc, mesh, sigma_trunc, s, stages[-1]),
                                  all_names, s.max_iter)
        its += res["iterations"]
    prob = _problem(model, dc, mesh, sigma_trunc, s, stages[-1])
    r, _, delta, _ = residuals(prob, all_names, with_jac=False)
    chi2 = float((((delta - dc.target) * prob.scale()) ** 2).sum())
    return {"cost": float(r @ r), "chi2": chi2, "iterations": its,
            "seconds": time.perf_counter() - t0}


def fit(model, data: FitData, mesh, sigma_trunc=None, max_iter: int = 100,
        settings: FitSettings | None = None, init: bool = True, log=None) -> dict:
    """Fit every channel of ``data`` (independent problems, see :func:`fit_channel`).

    Returns {"chi2" (phase shifts, all channels), "pred" (W, E) [deg], "seconds",
    "iterations", "channels": {name: result}}."""
    s = settings or FitSettings(max_iter=max_iter)
    t0 = time.perf_counter()
    out, its = {}, 0
    for c in data.channels:
        dc = channel_data(data, c)
        st = None if sigma_trunc is None else sigma_trunc[[data.waves.index(w) for w in c.waves]]
        res = fit_channel(model, dc, mesh, st, s, init)
        its += res["iterations"]
        out[c.name] = res
        if log is not None:
            log({"channel": c.name} | res)
    with torch.no_grad():
        pred = predict(model, data, mesh)
    var = data.sigma**2 + (0.0 if sigma_trunc is None else sigma_trunc**2)
    chi2 = float((data.weight * (pred - data.target) ** 2 / var).sum())
    return {"chi2": chi2, "pred": pred, "seconds": time.perf_counter() - t0,
            "iterations": its, "channels": out}


def per_wave_report(pred: torch.Tensor, data: FitData, sigma_trunc=None) -> dict:
    """Per wave: RMS and max deviation [deg], chi2 per point with the data errors alone and
    with data (+) truncation errors (the latter equals the former without sigma_trunc)."""
    st = None if sigma_trunc is None else torch.as_tensor(sigma_trunc, dtype=torch.float64)
    rep = {}
    for i, w in enumerate(data.waves):
        d = pred[i] - data.target[i]
        var = data.sigma[i] ** 2 + (0.0 if st is None else st[i] ** 2)
        rep[w] = {"rms_deg": float(torch.sqrt((d**2).mean())),
                  "max_deg": float(d.abs().max()),
                  "chi2_per_point_data": float((d**2 / data.sigma[i] ** 2).mean()),
                  "chi2_per_point": float((d**2 / var).mean())}
    return rep
