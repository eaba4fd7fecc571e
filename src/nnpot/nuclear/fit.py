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
zero can run off to a huge coupling and stall, e.g. 3P0 at 13.6 deg); in S waves also the
p^2 contact, and the fit is run from the best start per p^2 value: fitted phase shifts do not
fix the branch, and the lowest chi2 can be a V_S(0,0) > 0 solution (attraction only at p ~ 2-3
fm^-1, above the data) that underbinds the triton by ~4 MeV, or one with a spurious deep bound
state; the kept fit has none and V_S(0,0) < 0 if one within delta chi2 = 1 has, (2) contacts only,
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
    continuation stages [MeV], Levenberg-Marquardt iterations per stage, starting grid; S-wave
    branch choice (:func:`fit_channel`): extra small C_00 and C_01 start values, number of
    screened starts, delta chi2 window, depth [MeV] below which a bound state is spurious;
    weight and margin [MeV fm^3] of the S-wave attraction term (:mod:`~nnpot.nuclear.lsq`;
    weight 0 disables it)."""

    sigma_c: float = 10.0
    lambda_w: float = 1e-3
    lambda_s: float = 1e-2
    sigma_b: float = 0.0005
    sigma_b_stages: tuple[float, ...] = (0.05, 0.005)
    max_iter: int = 100
    grid: tuple[float, ...] = tuple(np.linspace(-5.0, 5.0, 21).tolist())
    grid_coupled: tuple[float, ...] = tuple(np.linspace(-4.0, 4.0, 9).tolist())
    grid_s0: tuple[float, ...] = (-0.5, -0.25)
    grid_s1: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    n_starts: int = 5
    branch_dchi2: float = 1.0
    deep_mev: float = 5.0
    s_wave_weight: float = 100.0
    s_wave_margin: float = 10.0


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
                   lambda_w=settings.lambda_w, lambda_s=settings.lambda_s,
                   s_wave_weight=settings.s_wave_weight, s_wave_margin=settings.s_wave_margin)


def _lead_keys(names: list[str]) -> list[str]:
    """Keys ("<ch>_LL") of the diagonal contact blocks among parameter ``names``."""
    return [n[len("short.coef."):] for n in names
            if n.startswith("short.coef.") and n[-1] == n[-2]]


def _s_wave_keys(lead: list[str], coef) -> list[str]:
    """Diagonal L = 0 blocks ("..._00") among ``lead`` that have a second (p^2) contact."""
    return [k for k in lead if k.endswith("_00") and coef[k].numel() > 1]


def _start_grid(prob: Problem, names: list[str], settings: FitSettings) -> list[dict]:
    """Starting values of the leading contacts on a grid, best (lowest cost) first.

    The leading contact C_00 of each diagonal block runs over ``settings.grid`` (one block)
    or ``settings.grid_coupled``, in S-wave blocks also over ``settings.grid_s0`` (small
    attractive values), and the p^2 contact C_01 runs over ``settings.grid_s1``. Returns up
    to ``settings.n_starts`` starts {key: [C_00(, C_01)]}: the best grid point, then the best
    point per C_01 value with attractive C_00 < 0 and no bound state below
    -``settings.deep_mev`` (other branches of the chi2 landscape), by grid
    cost. The model is left at the best start."""
    coef = dict(prob.model.short.coef.items())
    lead = _lead_keys(names)
    if not lead:
        return []
    swave = _s_wave_keys(lead, coef)
    grid = settings.grid if len(lead) == 1 else settings.grid_coupled
    fine = tuple(sorted({*grid, *settings.grid_s0}))  # small attractive C_00 in S waves
    axes = [fine if k in swave else grid for k in lead] + [settings.grid_s1] * len(swave)
    per_branch: dict[tuple, tuple[float, tuple]] = {}
    for vals in itertools.product(*axes):
        with torch.no_grad():
            for key, v in zip(lead, vals[:len(lead)], strict=True):
                coef[key][0] = v
            for key, v in zip(swave, vals[len(lead):], strict=True):
                coef[key][1] = v
        r, _, _, _ = residuals(prob, names, with_jac=False)
        c = float(r @ r)
        branch = (*vals[len(lead):], *(vals[lead.index(k)] < 0 for k in swave))
        if any(branch[len(swave):]) and branch_diagnostics(
                prob.model, prob.channel, prob.mesh, settings.deep_mev)["deep"]:
            continue  # attractive starts: only those without a spurious deep bound state
        if math.isfinite(c) and c < per_branch.get(branch, (math.inf,))[0]:
            per_branch[branch] = (c, vals)
    if not per_branch:  # every grid point failed: start at zero
        per_branch[()] = (math.inf, (0.0,) * len(lead) + (0.0,) * len(swave))
    ranked = sorted(per_branch.values(), key=lambda t: t[0])
    attractive = [t for t in ranked[1:] if all(t[1][lead.index(k)] < 0 for k in swave)]
    ranked = ([ranked[0]] + attractive)[:max(1, settings.n_starts)]
    starts = []
    for _, vals in ranked:
        st = {k: [v] for k, v in zip(lead, vals[:len(lead)], strict=True)}
        for k, v in zip(swave, vals[len(lead):], strict=True):
            st[k].append(v)
        starts.append(st)
    _set_start(prob.model, starts[0])
    return starts


def _set_start(model, start: dict) -> None:
    """Write start values {key: [C_00, C_01, ...]} into the leading contacts."""
    with torch.no_grad():
        for k, vals in start.items():
            model.short.coef[k][:len(vals)] = torch.tensor(vals, dtype=torch.float64)


def branch_diagnostics(model, channel: Channel, mesh, deep_mev: float = 5.0) -> dict:
    """Physical-branch indicators of one channel: V(0,0) [MeV fm^3] of the first diagonal
    block at p = p' = 1e-3 fm^-1 (full potential: pion + short range), and the bound states
    [MeV] below -``deep_mev`` of the channel Hamiltonian on ``mesh`` (spurious: the deuteron,
    B = 2.22 MeV, is shallower). Low-energy S-wave attraction, V_S(0,0) < 0, is the branch a
    chiral potential is on (LO: V = C_S < 0 in both S waves)."""
    k0 = torch.tensor([1e-3], dtype=torch.float64)
    with torch.no_grad():
        v00 = float(model(channel, k0, k0)[0, 0, 0, 0])
        ev = torch.linalg.eigvalsh(hamiltonian(model, channel, mesh))
    return {"v00": v00, "deep": [float(e) for e in ev if e < -deep_mev]}


def _choose(results: list[dict], dchi2: float) -> int:
    """Index of the physical branch: drop starts that ended with a spurious deep bound state
    (unless all did); among the rest within ``dchi2`` of the best objective prefer
    V_S(0,0) < 0, then the lowest objective."""
    ok = [i for i, r in enumerate(results) if not r["deep"]] or list(range(len(results)))
    best = min(results[i]["cost"] for i in ok)
    near = [i for i in ok if results[i]["cost"] <= best + dchi2]
    att = [i for i in near if results[i]["v00"] < 0]
    return min(att or near, key=lambda i: results[i]["cost"])


def _has_s_wave_grid(model, contacts: list[str]) -> bool:
    """Whether the channel of ``contacts`` has an S-wave block with a p^2 contact (the
    blocks whose branch :func:`_start_grid` scans)."""
    return bool(_s_wave_keys(_lead_keys(contacts), dict(model.short.coef.items())))


def _run_stages(model, dc: FitData, mesh, sigma_trunc, s: FitSettings, stages, contacts,
                all_names) -> tuple[float, int]:
    """Levenberg-Marquardt on the contacts (sigma_B stages), then on all parameters.
    Returns (final objective, iterations)."""
    its = 0
    for i, sb in enumerate(stages):  # intermediate sigma_B stages need no tight convergence
        n_it = s.max_iter if i == len(stages) - 1 else max(1, s.max_iter // 3)
        its += levenberg_marquardt(_problem(model, dc, mesh, sigma_trunc, s, sb), contacts,
                                   n_it)["iterations"]
    if len(all_names) > len(contacts) or not contacts:
        its += levenberg_marquardt(_problem(model, dc, mesh, sigma_trunc, s, stages[-1]),
                                   all_names, s.max_iter)["iterations"]
    r, _, _, _ = residuals(_problem(model, dc, mesh, sigma_trunc, s, stages[-1]), all_names,
                           with_jac=False)
    return float(r @ r), its


def fit_channel(model, dc: FitData, mesh, sigma_trunc=None, settings: FitSettings | None = None,
                init: bool = True) -> dict:
    """Fit the parameters of the single channel of ``dc`` (stages in the module docstring).

    With ``init``, channels with an S-wave p^2 contact are fitted from several starts of the
    grid (:func:`_start_grid`) and the physical branch is kept (:func:`_choose`: no spurious
    bound state below -``settings.deep_mev``, V_S(0,0) < 0 among the fits within
    ``settings.branch_dchi2`` of the best objective). Without ``init`` (a warm start from
    the model's current parameters, e.g. a committee member started at member 0's optimum)
    such a channel that ends with V_S(0,0) >= 0 or a spurious deep state is fitted again
    from the grid, and the same rules choose between the two fits ("branch_guard").

    Returns {"cost", "chi2", "iterations", "seconds", "v00" [MeV fm^3], "deep" [MeV],
    "starts" (objective, v00, deep per start), "branch_guard" (None, or both fits'
    objective and diagnostics and which was kept)}; chi2 is the phase-shift part."""
    s = settings or FitSettings()
    t0 = time.perf_counter()
    ch = dc.channels[0]
    deut = "3S1" in dc.waves
    all_names = parameter_names(model, ch)
    contacts = [n for n in all_names if n.startswith("short.coef.")]
    stages = [*(b for b in s.sigma_b_stages if b > s.sigma_b), s.sigma_b] if deut else [None]
    starts = []
    if init and contacts:
        starts = _start_grid(_problem(model, dc, mesh, sigma_trunc, s, stages[0]), contacts, s)
    params = dict(model.named_parameters())
    its, results = 0, []
    if len(starts) > 1:  # screen the starts with the first stage (contacts only), keep one
        with torch.no_grad():
            initial = {n: params[n].detach().clone() for n in all_names}
        n_screen = s.max_iter if len(stages) == 1 else max(1, s.max_iter // 3)
        for start in starts:
            with torch.no_grad():
                for n in all_names:
                    params[n].copy_(initial[n])
            _set_start(model, start)
            res = levenberg_marquardt(_problem(model, dc, mesh, sigma_trunc, s, stages[0]),
                                      contacts, n_screen)
            its += res["iterations"]
            r, _, _, _ = residuals(_problem(model, dc, mesh, sigma_trunc, s, stages[0]),
                                   contacts, with_jac=False)
            with torch.no_grad():
                state = {n: params[n].detach().clone() for n in all_names}
            results.append({"cost": float(r @ r), "start": start, "state": state,
                            **branch_diagnostics(model, ch, mesh, s.deep_mev)})
        pick = _choose(results, s.branch_dchi2)
        with torch.no_grad():
            for n in all_names:
                params[n].copy_(results[pick]["state"][n])
    cost, n_it = _run_stages(model, dc, mesh, sigma_trunc, s, stages, contacts, all_names)
    its += n_it
    diag = branch_diagnostics(model, ch, mesh, s.deep_mev)
    guard = None
    if not init and (diag["v00"] >= 0 or diag["deep"]) and _has_s_wave_grid(model, contacts):
        # a warm start (a committee member started at member 0's optimum, fitted to
        # resampled targets) that left the physical branch: fit again from the start grid
        # and keep whichever of the two the branch rules choose
        with torch.no_grad():
            warm = {n: params[n].detach().clone() for n in all_names}
        fresh = fit_channel(model, dc, mesh, sigma_trunc, s, init=True)
        its += fresh["iterations"]
        cands = [{"cost": cost, **diag}, {"cost": fresh["cost"], "v00": fresh["v00"],
                                          "deep": fresh["deep"]}]
        pick = _choose(cands, s.branch_dchi2)
        guard = {"warm": cands[0], "grid": cands[1], "kept": ("warm", "grid")[pick]}
        if pick == 0:
            with torch.no_grad():
                for n in all_names:
                    params[n].copy_(warm[n])
        else:
            cost, diag = fresh["cost"], cands[1]
    prob = _problem(model, dc, mesh, sigma_trunc, s, stages[-1])
    r, _, delta, _ = residuals(prob, all_names, with_jac=False)
    chi2 = float((((delta - dc.target) * prob.scale()) ** 2).sum())
    return {"cost": float(r @ r), "chi2": chi2, "iterations": its,
            "seconds": time.perf_counter() - t0, "v00": diag["v00"], "deep": diag["deep"],
            "starts": [(x["start"], x["cost"], x["v00"], x["deep"]) for x in results],
            "branch_guard": guard}


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
