"""Least squares for one partial-wave channel: residuals, exact Jacobians, Levenberg-Marquardt.

Units: momenta fm^-1, potentials MeV fm^3, energies MeV, phase shifts in degrees in the
residuals. The fitted parameters theta act in one channel only (its contact coefficients and
network weights), so every channel is an independent least-squares problem

    cost(theta) = sum_i r_i(theta)^2,

with dimensionless residuals
  * phase shifts: (delta_model - delta_PWA) sqrt(weight / (sigma_data^2 + sigma_trunc^2));
  * deuteron (3S1-3D1 only): (B_model - B_exp) / sigma_B;
  * prior on the contact parameters (stored in units of ``c_scale``): c / sigma_c;
  * weight decay of the networks: sqrt(lambda_w) W;
  * short-range strength: sqrt(lambda_s) (s_i V_s(k_i, k_j) s_j) / V0 on the mesh,
    s_i = sqrt(w_i) k_i f(k_i) and V0 = 100 MeV: the Hilbert-Schmidt norm of the regulated
    short range in the Hamiltonian's metric. It keeps the short range from growing where no
    datum constrains it (strong high-momentum parts make spurious resonances just above the
    fitted energies);
  * S-wave attraction (channels whose first wave has L = 0, with ``s_wave_weight`` > 0):
    sqrt(s_wave_weight) max(0, V(k_1, k_1) + s_wave_margin) / V0, V the full potential at
    the lowest mesh momentum (k_1 ~ 0.004 fm^-1, i.e. V(0,0)). Phase shifts leave a nearly
    flat valley of phase-equivalent S-wave potentials whose V(0,0) runs from attractive to
    strongly repulsive (e.g. 1S0 fits of equal chi2 with V(0,0) = -16 and +423 MeV fm^3);
    the fit stays on the attractive side, the sign of the chiral LO contacts, which binds
    the triton (repulsive ones underbind it by several MeV).

Jacobians without back-propagating every residual: V depends on theta only through the
short range. On the augmented mesh (k_1..k_N, p0) with the PV propagator D of
:mod:`~nnpot.nuclear.scattering` the on-shell K-matrix is K_on = (V E)^T u with
u = (1 - D V)^-1 E (E picks the on-shell index of each L), and since 1 + D K = (1 - D V)^-1,

    dK_on / dtheta = u^T (dV / dtheta) u;

the deuteron energy follows Hellmann-Feynman, dE/dtheta = psi^T (dH/dtheta) psi. dV/dtheta
comes from forward-mode differentiation of the short range on the union of the mesh and the
on-shell momenta (torch.func.jacfwd), d delta / dK_on from autograd on the small map K -> delta.
:func:`slow_jacobian` (reverse mode, one backward pass per residual) is the test oracle.

Optimiser: Levenberg-Marquardt with Marquardt scaling and Nielsen's damping update
(H.B. Nielsen, IMM-REP-1999-05, DTU); steps are accepted when the cost decreases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nnpot.nuclear import batched
from nnpot.nuclear.channels import Channel
from nnpot.nuclear.constants import EXPERIMENT, HBARC2_2MU
from nnpot.nuclear.potential import regulator
from nnpot.nuclear.scattering import (
    coupled_phases,
    gather_augmented,
    levinson_reference,
    propagator,
    uncoupled_phase,
)

DEG = 180.0 / math.pi
V0_MEV = 100.0  #: energy unit of the short-range strength penalty [MeV]


@dataclass
class Problem:
    """One channel's least-squares problem (see module docstring; tensors float64).

    target, sigma, weight: (W, E) [deg, deg, 1] for the channel's waves at CM momenta p0 (E,)
    [fm^-1]; sigma_trunc (W, E) [deg] or None; sigma_b [MeV] (None: no deuteron term);
    sigma_c: prior width of the contact parameters (units of c_scale); lambda_w, lambda_s:
    weights of the network weight decay and of the short-range strength; s_wave_weight,
    s_wave_margin [MeV fm^3]: the S-wave attraction term (module docstring; 0 disables).
    """

    model: torch.nn.Module
    channel: Channel
    mesh: tuple[torch.Tensor, torch.Tensor]
    p0: torch.Tensor
    target: torch.Tensor
    sigma: torch.Tensor
    weight: torch.Tensor
    sigma_trunc: torch.Tensor | None = None
    sigma_b: float | None = None
    sigma_c: float = 10.0
    lambda_w: float = 1e-3
    lambda_s: float = 1e-2
    s_wave_weight: float = 0.0
    s_wave_margin: float = 10.0

    def scale(self) -> torch.Tensor:
        var = self.sigma**2 + (0.0 if self.sigma_trunc is None else self.sigma_trunc**2)
        return torch.sqrt(self.weight / var)


def parameter_names(model, channel: Channel, trainable_only: bool = True) -> list[str]:
    """Names (in ``model``) of the parameters acting in ``channel``: its short-range ones
    ("short.coef.<ch>_LL", "short.nets.<ch>_LL....") and its intermediate-range ones
    ("mid.coef.<ch>") if the model has them."""
    pre = channel.name.replace("-", "_") + "_"
    out = []
    for name, p in model.named_parameters():
        parts = name.split(".")
        if not ((parts[0] == "short" and parts[2].startswith(pre))
                or (parts[0] == "mid" and parts[2] + "_" == pre)):
            continue
        if p.requires_grad or not trainable_only:
            out.append(name)
    return out


def _phases(channel: Channel, kon: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
    """(W, E) phase shifts / mixing angle [rad] from on-shell K (E, nL, nL)."""
    if len(channel.ls) == 1:
        return uncoupled_phase(kon[:, 0, 0], p0)[None]
    ref = levinson_reference(p0) if channel.waves[0] == "3S1" else None
    return torch.stack(coupled_phases(kon, p0, ref))


def _variable_and_jacobian(model, channel, q, names, with_jac: bool):
    """V_mid + V_s on (q, q) (nL, nL, M, M) [MeV fm^3] (unregulated) and its derivative
    (P, nL, nL, M, M) with respect to the parameters ``names`` (in that order)."""
    short = model.short
    with torch.no_grad():
        vs = short(channel, q, q)
        basis = None
        if model.mid is not None:
            vs = vs + model.mid(channel, q, q)
            basis = model.mid.basis(channel, q, q).to(q)
    if not with_jac or not names:
        return vs, None
    snames = [n[len("short."):] for n in names if n.startswith("short.")]
    jac = {}
    if snames:
        params = dict(short.named_parameters())
        primal = {n: params[n].detach() for n in snames}

        def f(pd):
            return torch.func.functional_call(short, pd, (channel, q, q), strict=False)

        with torch.no_grad():
            jac = torch.func.jacfwd(f)(primal)
    cols = []
    for n in names:
        if n.startswith("short."):
            cols.append(jac[n[len("short."):]].reshape(vs.shape + (-1,)))
        else:  # mid.coef.<ch>: the basis (V_mid is linear in its coefficients)
            cols.append(basis.movedim(0, -1))
    g = torch.cat(cols, dim=-1).movedim(-1, 0)
    return vs, g


def residuals(prob: Problem, names: list[str], with_jac: bool = True):
    """Residual vector r (R,) and Jacobian J (R, P) (None without ``with_jac``), plus the
    model's phase shifts (W, E) [deg] and deuteron energy [MeV] (or None)."""
    model, ch = prob.model, prob.channel
    k, w = prob.mesh
    n, ne, nl = k.shape[0], prob.p0.shape[0], len(ch.ls)
    q = torch.cat([k, prob.p0])
    f = regulator(q, model.pion.lam, model.pion.n_reg)
    ff = f[:, None] * f[None, :]
    vs, g = _variable_and_jacobian(model, ch, q, names, with_jac)
    vtot = model.pion(ch, q, q).to(vs) + vs * ff
    v_aug = gather_augmented(vtot, n, ne)  # (E, M, M)
    d = propagator(k, w, prob.p0).repeat(1, nl)  # (E, M)
    m = v_aug.shape[-1]
    on = [(i + 1) * (n + 1) - 1 for i in range(nl)]
    e_on = torch.zeros(m, nl, dtype=k.dtype, device=k.device)
    e_on[on, list(range(nl))] = 1.0
    a = torch.eye(m, dtype=k.dtype, device=k.device) - d[:, :, None] * v_aug
    u = batched.solve(a, e_on.expand(ne, m, nl))  # (E, M, nL)
    kon = v_aug[:, on, :] @ u  # (E, nL, nL)
    kon = 0.5 * (kon + kon.transpose(-1, -2))
    scale = prob.scale()
    res = []
    jac = []
    with torch.no_grad():
        delta = _phases(ch, kon, prob.p0) * DEG
    res.append(((delta - prob.target) * scale).reshape(-1))
    if with_jac:
        dphi = torch.autograd.functional.jacobian(lambda kk: _phases(ch, kk, prob.p0), kon)
        dphi = torch.einsum("weeac->weac", dphi) * DEG  # (W, E, nL, nL), diagonal in E
        g_aug = gather_augmented(g * ff, n, ne)  # (P, E, M, M)
        dk = torch.einsum("ema,pemn,enc->peac", u, g_aug, u)
        jac.append((torch.einsum("weac,peac->wep", dphi, dk) * scale[..., None])
                   .reshape(-1, g.shape[0]))
    energy = None
    if prob.sigma_b is not None:
        s = torch.sqrt(w) * k
        hv = (vtot[..., :n, :n] * s[:, None] * s[None, :]).transpose(1, 2).reshape(nl * n,
                                                                                  nl * n)
        evals, evecs = torch.linalg.eigh(hv + torch.diag((HBARC2_2MU * k**2).repeat(nl)))
        neg = torch.nonzero(evals < 0).reshape(-1)
        i = int(neg[-1]) if neg.numel() else 0
        energy = float(evals[i])
        res.append(torch.tensor([(-energy - EXPERIMENT["B_d"]) / prob.sigma_b], dtype=k.dtype))
        if with_jac:
            psi = evecs[:, i].reshape(nl, n) * s
            ge = torch.einsum("an,pabnm,bm->p", psi, (g * ff)[..., :n, :n], psi)
            jac.append((-ge / prob.sigma_b)[None, :])
    # priors: contact and mid-range coefficients, network weights; short-range strength
    params = dict(model.named_parameters())
    off = 0
    for name in names:
        p = params[name].detach().reshape(-1)
        if name.startswith("short.coef.") or name.startswith("mid."):
            fac = 1.0 / prob.sigma_c
        elif name.endswith("weight") and prob.lambda_w > 0:
            fac = math.sqrt(prob.lambda_w)
        else:
            fac = 0.0
        if fac > 0:
            res.append(fac * p)
            if with_jac:
                jp = torch.zeros(p.numel(), g.shape[0], dtype=k.dtype)
                jp[:, off:off + p.numel()] = fac * torch.eye(p.numel(), dtype=k.dtype)
                jac.append(jp)
        off += p.numel()
    if prob.lambda_s > 0:
        sf = torch.sqrt(w) * k * f[:n]
        fac = math.sqrt(prob.lambda_s) / V0_MEV
        res.append((fac * vs[..., :n, :n] * sf[:, None] * sf[None, :]).reshape(-1))
        if with_jac:
            jac.append((fac * g[..., :n, :n] * sf[:, None] * sf[None, :])
                       .reshape(g.shape[0], -1).T)
    if prob.s_wave_weight > 0 and ch.ls[0] == 0:
        fac = math.sqrt(prob.s_wave_weight) / V0_MEV
        v00 = vtot[0, 0, 0, 0] + prob.s_wave_margin
        on = bool(v00 > 0)
        res.append((fac * v00 * on).reshape(1))
        if with_jac:
            jac.append((fac * on * (g * ff)[:, 0, 0, 0, 0])[None, :])
    r = torch.cat(res)
    jmat = torch.cat(jac) if with_jac else None
    return r, jmat, delta, energy


def slow_jacobian(prob: Problem, names: list[str]) -> torch.Tensor:
    """The phase-shift block of the Jacobian by reverse-mode autograd through the full
    solver of :mod:`~nnpot.nuclear.scattering` (one backward pass per residual; test oracle)."""
    from nnpot.nuclear.scattering import phase_shifts

    params = dict(prob.model.named_parameters())
    ps = [params[nm] for nm in names]
    d = phase_shifts(prob.model, [prob.channel], prob.p0, prob.mesh)
    delta = torch.stack([d[wv] for wv in prob.channel.waves]) * DEG
    r = (delta * prob.scale()).reshape(-1)
    rows = []
    for i in range(r.numel()):
        gr = torch.autograd.grad(r[i], ps, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(x if x is not None else torch.zeros_like(p)).reshape(-1)
                               for x, p in zip(gr, ps, strict=True)]))
    return torch.stack(rows)


def _get_flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def _set_flat(params: list[torch.Tensor], x: torch.Tensor) -> None:
    off = 0
    with torch.no_grad():
        for p in params:
            p.copy_(x[off:off + p.numel()].reshape(p.shape))
            off += p.numel()


def levenberg_marquardt(prob: Problem, names: list[str], max_iter: int = 100,
                        rtol: float = 1e-7, mu: float = 1e-3, geodesic: bool = True) -> dict:
    """Minimise the channel cost over the parameters ``names`` (in place).

    With ``geodesic``, each step v gets the geodesic-acceleration correction a/2 of
    Transtrum, Machta, Sethna (PRE 83, 036701 (2011)): a = -(J^T J + mu D)^-1 J^T r_vv with
    the directional second derivative r_vv = (2/h) ((r(x + h v) - r(x))/h - J v), h = 0.1
    (used while |a| <= 0.75 |v|); it follows the curved narrow valleys of these fits.
    Stops after ``max_iter`` Jacobian evaluations, or when a step lowers the cost by less
    than ``rtol`` (relative) three times in a row. Returns {"cost", "iterations"}.
    """
    allp = dict(prob.model.named_parameters())
    params = [allp[nm] for nm in names]
    if not params:
        r, _, _, _ = residuals(prob, names, with_jac=False)
        return {"cost": float(r @ r), "iterations": 0}
    nu, small, done = 2.0, 0, 0
    r, jmat, _, _ = residuals(prob, names)
    cost = float(r @ r)
    for it in range(1, max_iter + 1):
        done = it
        jtj, jtr = jmat.T @ jmat, jmat.T @ r
        diag = torch.diag(jtj).clamp(min=1e-9 * float(torch.diag(jtj).max()) + 1e-300)
        x0 = _get_flat(params)
        accepted = False
        for _ in range(40):
            lhs = jtj + mu * torch.diag(diag)
            try:
                step = torch.linalg.solve(lhs, -jtr)
            except torch.linalg.LinAlgError:  # (numerically) singular: damp more
                mu, nu = mu * nu, nu * 2.0
                continue
            predicted = float(-(2.0 * step @ jtr + step @ jtj @ step))
            if geodesic:
                h = 0.1
                _set_flat(params, x0 + h * step)
                rh, _, _, _ = residuals(prob, names, with_jac=False)
                rvv = (2.0 / h) * ((rh - r) / h - jmat @ step)
                acc = torch.linalg.solve(lhs, -(jmat.T @ rvv))
                if bool(torch.isfinite(acc).all()) and float(acc.norm()) <= 0.75 * float(
                        step.norm()):
                    step = step + 0.5 * acc
            _set_flat(params, x0 + step)
            r2, _, _, _ = residuals(prob, names, with_jac=False)
            c2 = float(r2 @ r2)
            gain = (cost - c2) / max(predicted, 1e-300)
            if math.isfinite(c2) and c2 < cost and gain > 0:
                mu *= max(1.0 / 3.0, 1.0 - (2.0 * min(gain, 1.0) - 1.0) ** 3)
                nu, accepted = 2.0, True
                break
            mu, nu = mu * nu, nu * 2.0
        if not accepted:
            _set_flat(params, x0)
            break
        small = small + 1 if cost - c2 < rtol * cost else 0
        cost = c2
        if small >= 3 or cost < 1e-14:
            break
        r, jmat, _, _ = residuals(prob, names)
    return {"cost": cost, "iterations": done}
