"""Many vector-Jacobian products of the symmetry functions in one pass, without autograd.

Given K cotangents c_k (n_atoms, n_features) — the ∂E_m/∂G of M committee members, or the
unit vectors of the F features for a pair Jacobian — compute for every pair p (r_p in Å)

    v[p, k, :] = Σ_f c_k[i(p), f] ∂G_{i(p), f}/∂r_p                    (P, K, 3)

(a pair vector feeds only its centre's features). With c_k = e_f this is the pair Jacobian
J[p, f, :] = ∂G_{i(p), f}/∂r_p; with c_m = ∂E_m/∂G it is ∂E_m/∂r_p. Since r_p = r_j − r_i
(+ S·h), the gradient with respect to atom a is Σ_{p: j(p)=a} v_p − Σ_{p: i(p)=a} v_p and
the strain derivative is Σ_p r_p ⊗ v_p (:meth:`Pullback.atoms` sums both without forming
v in pair order).

Factorised route (:mod:`descriptors_fast`, :mod:`descriptors_moments`). The adjoint of the
G5 contraction maps c_k to per-centre cotangents of the slot sums (rad, dsq, mom): with
S_d = m_aᵀ Q_d m_b (top moments m, Q_d = T diag(deg_d) Tᵀ) for the element pair (a, b),
∂G/∂m_a = h Σ_d (Σ_k W dG) Q_d m_b. For one slot (neighbour at r = |r_p|, r̂ = r_p / r,
channel functions g = e(r) f_c(r)):

    ∂/∂r_p = r̂ [Σ_r d_rad_r g_r' + Σ_c (2 d_dsq_c g_c g_c' + g_c' Σ_m d_mom_cm r̂^m)]
             + (1 − r̂ r̂ᵀ)/r · Σ_c g_c Σ_l poly_c[:, l] r̂^l,   poly_c[x, l] = α_x d_mom_c,l+e_x

(m over the top monomials, l over the low ones). The bracket is a dot product of the
per-centre coefficients with a per-slot basis φ = [g_r'; 2 g_c g_c'; g_c' r̂^m] and the
tangential sum one with ψ = [g_c r̂^l / r], so per neighbour-element block both are batched
matrix products [B, K, ·] @ [B, ·, K_E] whose K rows share every slot quantity (the basis
is rebuilt chunk by chunk, so memory stays O(pairs · K)). Triplet-path columns (G4,
non-integer ζ) fall back to autograd with batched gradients. Nothing here is
differentiable (use autograd for higher derivatives).
"""

from __future__ import annotations

import torch

from nnpot import ckernels
from nnpot.atomistic import pullback_c
from nnpot.atomistic.descriptors_moments import Layout, _gather, run_sums


def _q_table(plan, ref):
    """Q [M_top, D·M_top] with S_d = m_aᵀ Q_d m_b for the top moments (Q_d = T diag(deg_d)
    Tᵀ), so ∂S_d/∂m_a = Q_d m_b."""
    key = ("Q", ref.dtype, ref.device)
    if key not in plan._cache:
        T, deg = plan.consts["T"], plan.consts["deg_ind"]
        Q = torch.einsum("ma,ad,na->mdn", T, deg, T)  # [Mt, D, Mt]
        plan._cache[key] = Q.reshape(T.shape[0], -1).to(ref.device, ref.dtype)
    return plan._cache[key]


def _basis(kernel, x, sl):
    """(u [3,S], φ [NB,S], ψ [C·n_low,S] or None) of one chunk; pads exactly zero."""
    r, inv, u, fc, dfc, e_rad, e_ang, ys = sl
    C, R, S = kernel.n_chan, kernel.n_rad, x.shape[1]
    dfc = dfc.masked_fill(r >= kernel.rc, 0.0)  # pads (and r = r_c): f_c' = 0 exactly

    def deriv(name, e, dst):  # dg/dr = e (f_c (2η s − 2η r) + f_c')
        lin = torch.addmm(kernel.const(name + "_2etas", x)[:, None],
                          kernel.const(name + "_m2eta", x)[:, None], r[None])
        lin.mul_(fc).add_(dfc)
        return torch.mul(e, lin, out=dst)

    if not C:
        return u, deriv("rad", e_rad, x.new_empty(R, S)), None
    t = kernel.tables
    Mt, nl = t.n_top, t.n_low
    phi = x.new_empty(R + C + C * Mt, S)
    deriv("rad", e_rad, phi[:R])
    ga = e_ang * fc
    dga = deriv("ang", e_ang, torch.empty_like(ga))
    torch.mul(ga, dga, out=phi[R:R + C]).mul_(2.0)
    torch.mul(dga[:, None], ys[None, t.top[0]:t.top[1]], out=phi[R + C:].view(C, Mt, S))
    psi = torch.mul((ga * inv)[:, None], ys[None, t.low[0]:t.low[1]]).view(C * nl, S)
    return u, phi, psi


class Pullback:
    """Features and K vector-Jacobian products at fixed pair vectors (module docstring).

    ``features`` [n, F]; ``pairs(cot)`` -> [P, K, 3]; ``atoms(cot)`` -> (gradient [K, n, 3]
    with respect to positions, per-centre virial [K, n, 3, 3], W[a, b] = Σ_{p: i(p) =
    centre} r_p,a v_p,b), for cot [K, n, F] (result units: cotangent unit per Å).
    """

    def __init__(self, plan, species, i, j, rij):
        self.plan, self.species, self.i, self.j = plan, species, i, j
        self.rij = rij = rij.detach()
        self.n, self.E = n, E = species.shape[0], plan.n_el
        self.layout = Layout(species, i, j, n, E)
        kern, spec = plan.kernel, plan.spec
        with torch.no_grad():
            rad, self.dsq, self.mom = run_sums(rij, kern, self.layout)
            parts = [rad.reshape(n, -1)]
            if plan.fact:
                parts.append(plan._g5(rij, self.dsq, self.mom))
        self.nr = parts[0].shape[1]
        self.trip_out = self.trip_r = None
        if plan.trip:
            from nnpot.atomistic.descriptors_triplets import triplet_features

            with torch.enable_grad():
                self.trip_r = rij.clone().requires_grad_(True)
                params = [spec.angular[k] for k in plan.trip]
                self.trip_out = triplet_features(spec, params, species, i, j, self.trip_r, n)
            parts.append(self.trip_out.detach())
        if spec.angular:
            ang = torch.cat(parts[1:], 2)[:, :, plan.ang_perm] if len(parts) > 2 else parts[1]
            ang = ang.reshape(n, -1)
            out = ckernels.empty((n, parts[0].shape[1] + ang.shape[1]), ang.dtype, ang.device)
            self.features = torch.cat([parts[0], ang], 1, out=out)
        else:
            self.features = parts[0]
        self._rhs = self._qmx = None

    def _qm(self):
        """Q_d m_e,c for all d as [n, C, E, D, M_top] (cached)."""
        if self._qmx is None:
            plan, kern = self.plan, self.plan.kernel
            D = plan.consts["deg_ind"].shape[1]
            Mt = kern.tables.n_top
            q = (self.mom @ _q_table(plan, self.rij)).view(self.n, self.E, kern.n_chan, D, Mt)
            self._qmx = q.transpose(1, 2).contiguous()
        return self._qmx

    def _terms(self, e):
        """(pair index, other element, factor) of the element pairs containing e."""
        return [(p, b if a == e else a, 2.0 if a == b else 1.0)
                for p, (a, b) in enumerate(self.plan.pairs) if e in (a, b)]

    def _coefficients(self, cot):
        """K-last per-centre coefficients for cot [K, n, F]: coef [E, n, NB, K] (rows of φ:
        d_rad | d_dsq | d_mom) and poly [E, n, C·n_low, 3K] (rows of ψ, columns (x, k))."""
        plan, n, E = self.plan, self.n, self.E
        kern, ref = plan.kernel, self.rij
        C, R = kern.n_chan, kern.n_rad
        K = cot.shape[0]
        cT = cot.to(ref.dtype).permute(1, 2, 0).contiguous()  # [n, F, K]
        d_rad = cT[:, :self.nr].view(n, E, R, K)
        if not C:
            return d_rad.transpose(0, 1), None
        t = kern.tables
        Mt, nl = t.n_top, t.n_low
        pairs = plan.pairs
        dh = cT[:, self.nr:].view(n, len(pairs), -1, K)
        if plan.trip:
            dh = dh[:, :, plan.fact]
        dh = dh * plan._c("half", ref)[:, None, None]  # [n, pair, nf, K]
        D = plan.consts["deg_ind"].shape[1]
        dS = torch.matmul(plan._c("W", ref), dh).view(n, len(pairs), C, D, K)
        dd = -torch.matmul(plan._c("Wd", ref), dh)  # [n, pair, C, K]
        qm = self._qm()
        coef = ref.new_empty(E, n, R + C + C * Mt, K)
        poly = ref.new_empty(E, n * C, 3 * nl * K)
        coef[:, :, :R] = d_rad.transpose(0, 1)
        key = ("vjp_gather", K, ref.dtype, ref.device)  # (l, x) columns of each k
        if key not in plan._cache:
            ar = torch.arange(K, device=ref.device)
            plan._cache[key] = ((kern.const("low_idx_lx", ref)[:, None] * K + ar).reshape(-1),
                                kern.const("low_fac_lx", ref)[:, None].expand(-1, K)
                                .reshape(-1).contiguous())
        idx, fac = plan._cache[key]
        for e in range(E):
            terms = self._terms(e)
            sel = torch.tensor([p for p, _, _ in terms], device=ref.device)
            oth = torch.tensor([o for _, o, _ in terms], device=ref.device)
            f = ref.new_tensor([f for _, _, f in terms])
            lhs = (dS.index_select(1, sel) * f[:, None, None, None]).transpose(1, 2)
            rhs = qm.index_select(2, oth).view(n * C, -1, Mt)  # [n·C, T·D, Mt]
            dm = torch.bmm(rhs.transpose(1, 2), lhs.reshape(n * C, -1, K)).view(n, C, Mt, K)
            coef[e, :, R + C:] = dm.view(n, C * Mt, K)
            torch.index_select(dm.view(n * C, Mt * K), 1, idx, out=poly[e]).mul_(fac)
            coef[e, :, R:R + C] = dd[:, pairs.index((e, e))]
        return coef, poly.view(E, n, C * nl, 3 * K)

    def _chunk_basis(self, c):
        """(x [3,S], u, φ, ψ) of chunk c, recomputed (cheaper than keeping them: the
        working set stays in cache)."""
        ch = self.layout.chunks[c]
        kern = self.plan.kernel
        x = _gather(self.rij, ch[2], ch[3], ch[6], kern.rc)
        return (x,) + _basis(kern, x, kern.slots(x))

    def _blocks(self, coef, poly):
        """Yield (chunk, x [3,S], s0, s1, dx [B, 3, K, K_E]) per neighbour-element block."""
        for c, ch in enumerate(self.layout.chunks):
            c0, c1, _p0, _p1, _slot, Kc, _inv = ch
            B = c1 - c0
            x, u, phi, psi = self._chunk_basis(c)
            for s0, s1, k, Kb in self.layout.blocks(B, Kc):
                if Kb:
                    yield ch, x, s0, s1, _block(coef[k, c0:c1], None if poly is None else
                                                poly[k, c0:c1], u, phi, psi, s0, s1, B, Kb)

    def pairs(self, cot: torch.Tensor) -> torch.Tensor:
        """v [P, K, 3] for cot [K, n, F]."""
        if pullback_c.usable(self.rij):
            with torch.no_grad():
                return self._add_triplets(pullback_c.pairs(self, cot), cot)
        return self.pairs_torch(cot)

    def pairs_torch(self, cot: torch.Tensor) -> torch.Tensor:
        """:meth:`pairs` in torch (the reference of the C kernel, and the GPU path)."""
        K = cot.shape[0]
        out = self.rij.new_empty((self.rij.shape[0], 3, K))
        with torch.no_grad():
            coef, poly = self._coefficients(cot)
            for ch, x, s0, s1, dx, last in _with_last(self._blocks(coef, poly)):
                if s0 == 0:
                    buf = x.new_empty(x.shape[1], 3 * K)
                B, Kb = dx.shape[0], dx.shape[3]
                buf[s0:s1].view(B, Kb, 3, K).copy_(dx.permute(0, 3, 1, 2))
                if last:
                    out[ch[2]:ch[3]] = buf.index_select(0, ch[4]).view(-1, 3, K)
            return self._add_triplets(out.transpose(1, 2).contiguous(), cot)

    def atoms(self, cot: torch.Tensor, virial: bool = True):
        """(∂/∂positions [K, n, 3], per-centre virial [K, n, 3, 3] or None without
        ``virial``) for cot [K, n, F]: the C kernel (:mod:`pullback_c`) on CPU, else
        :meth:`atoms_torch`."""
        if not pullback_c.usable(self.rij):
            return self.atoms_torch(cot, virial)
        with torch.no_grad():
            grad, vir = pullback_c.atoms(self, cot, virial)
            return self._atoms_triplets(grad, vir, cot)

    def atoms_torch(self, cot: torch.Tensor, virial: bool = True):
        """:meth:`atoms` in torch (the reference of the C kernel, and the GPU path)."""
        K, n = cot.shape[0], self.n
        grad = self.rij.new_zeros((n + 1, 3, K))
        vir = self.rij.new_zeros((n, 3 * K, 3))
        with torch.no_grad():
            coef, poly = self._coefficients(cot)
            for ch, x, s0, s1, dx, last in _with_last(self._blocks(coef, poly)):
                c0, c1, p0, p1, slot = ch[:5]
                if s0 == 0:
                    buf = x.new_empty(x.shape[1], 3 * K)  # every slot is written
                B, Kb = dx.shape[0], dx.shape[3]
                buf[s0:s1].view(B, Kb, 3, K).copy_(dx.permute(0, 3, 1, 2))
                grad[c0:c1] -= dx.sum(3)
                if virial:
                    vir[c0:c1] += torch.bmm(dx.reshape(B, 3 * K, Kb),
                                            x[:, s0:s1].view(3, B, Kb).permute(1, 2, 0))
                if last:  # pair -> neighbour j (pads -> row n)
                    jslot = torch.full((x.shape[1],), n, dtype=self.j.dtype, device=x.device)
                    jslot[slot] = self.j[p0:p1]
                    grad.view(n + 1, 3 * K).index_add_(0, jslot, buf)
            grad = grad[:n].permute(2, 0, 1)
            vir = vir.view(n, 3, K, 3).permute(2, 0, 3, 1)  # W[k, n, a, b] = Σ r_a v_b
            return self._atoms_triplets(grad, vir if virial else None, cot)

    def _atoms_triplets(self, grad, vir, cot):
        """Add the triplet-route columns' gradient and virial (autograd) to (grad, vir)."""
        if self.trip_out is not None:
            K, n = cot.shape[0], self.n
            v = self._add_triplets(self.rij.new_zeros((self.rij.shape[0], K, 3)), cot)
            g = v.new_zeros((n, K, 3)).index_add_(0, self.j, v).index_add_(0, self.i, -v)
            grad = grad + g.transpose(0, 1)
            if vir is not None:
                vir = vir + torch.zeros_like(vir).index_add_(
                    1, self.i, torch.einsum("pa,pkb->kpab", self.rij, v))
        return grad.contiguous(), None if vir is None else vir.contiguous()

    def jacobian(self) -> torch.Tensor:
        """Pair Jacobian J [P, F, 3] = ∂G_{i(p), f}/∂r_p (1/Å).

        The rows of the unit cotangents are known in closed form: a radial column of the
        neighbour's element is g_r'(r) r̂ (others vanish); an angular column of a pair
        containing the neighbour's element e has the coefficients h Σ_d W Q_d m_other
        (independent of any cotangent), so only those columns go through the kernel.
        """
        plan, n, E = self.plan, self.n, self.E
        kern, ref = plan.kernel, self.rij
        C, R = kern.n_chan, kern.n_rad
        F, P = self.features.shape[1], ref.shape[0]
        J = ref.new_empty((P, F, 3))
        with torch.no_grad():
            ang = [self._angular_rows(e) for e in range(E)] if C else None
            zero = []  # columns that vanish for a neighbour of element e
            for e in range(E):
                live = set(range(e * R, (e + 1) * R)) | set(ang[e][2].tolist() if C else [])
                zero.append(torch.tensor(sorted(set(range(F)) - live), dtype=torch.long,
                                         device=ref.device))
            for c, ch in enumerate(self.layout.chunks):
                c0, c1, p0, p1, slot, Kc, _inv = ch
                B = c1 - c0
                x, u, phi, psi = self._chunk_basis(c)
                buf = x.new_empty(x.shape[1], F, 3)
                for s0, s1, e, Kb in self.layout.blocks(B, Kc):
                    if not Kb:
                        continue
                    blk = buf[s0:s1].view(B, Kb, F, 3)
                    blk.index_fill_(2, zero[e], 0.0)
                    rad = (phi[:R, s0:s1].view(R, B, Kb, 1)
                           * u[:, s0:s1].view(3, B, Kb).permute(1, 2, 0))  # [R, B, Kb, 3]
                    blk[:, :, e * R:(e + 1) * R] = rad.permute(1, 2, 0, 3)
                    if C:
                        coef, poly, cols = ang[e]
                        dx = _block(coef[c0:c1], poly[c0:c1], u, phi[R:], psi, s0, s1, B, Kb)
                        blk.index_copy_(2, cols, dx.permute(0, 3, 2, 1))
                J[p0:p1] = buf.view(-1, 3 * F).index_select(0, slot).view(-1, F, 3)
        if self.trip_out is not None:
            cols = torch.tensor([self.nr + p * len(plan.spec.angular) + k
                                 for p in range(len(plan.pairs)) for k in plan.trip],
                                device=ref.device)
            cot = ref.new_zeros((len(cols), n, F))
            cot[torch.arange(len(cols), device=ref.device), :, cols] = 1.0
            J[:, cols] += self._add_triplets(ref.new_zeros((P, len(cols), 3)), cot)
        return J

    def _angular_rows(self, e):
        """Kernel coefficients of the factorised angular columns whose element pair contains
        e (K-last): coef [n, C + C·M_top, K_e] (d_dsq | d_mom), poly [n, C·n_low, 3K_e]."""
        plan, n, ref = self.plan, self.n, self.rij
        kern = plan.kernel
        C, t = kern.n_chan, kern.tables
        Mt, nl = t.n_top, t.n_low
        D = plan.consts["deg_ind"].shape[1]
        nf = len(plan.fact)
        W = plan._c("W", ref).view(C, D, nf)
        qm = self._qm()
        blocks, dsq, cols = [], [], []
        n_ang = len(plan.spec.angular)
        for p, o, f in self._terms(e):
            h = float(plan.consts["half"][p])
            blocks.append(torch.einsum("cdq,ncdm->ncmq", W * (h * f), qm[:, :, o]))
            same = plan.pairs[p][0] == plan.pairs[p][1]
            dsq.append(-h * plan._c("Wd", ref) if same else ref.new_zeros(C, nf))
            cols += [self.nr + p * n_ang + k for k in plan.fact]
        A = torch.cat(blocks, 3)  # [n, C, Mt, K_e]
        K = A.shape[3]
        coef = torch.cat([torch.cat(dsq, 1)[None].expand(n, C, K), A.reshape(n, C * Mt, K)], 1)
        idx, fac = kern.const("low_idx_lx", ref), kern.const("low_fac_lx", ref)
        poly = (A.index_select(2, idx) * fac[:, None]).reshape(n, C * nl, 3 * K)
        return coef, poly, torch.tensor(cols, device=ref.device)

    def _add_triplets(self, out, cot):
        if self.trip_out is None:
            return out
        d = cot.to(self.rij.dtype)[..., self.nr:].reshape(cot.shape[0], self.n,
                                                          len(self.plan.pairs), -1)
        from nnpot.atomistic.descriptors_triplets import triplet_vjp  # K at once (C or autograd)

        gt = triplet_vjp(self.trip_out, self.trip_r, d[..., self.plan.trip].contiguous())
        return out + gt.transpose(0, 1)


def _with_last(blocks):
    """Add a flag to each block: True for the last block of its chunk."""
    prev = None
    for item in blocks:
        if prev is not None:
            yield (*prev, item[0] is not prev[0])
        prev = item
    if prev is not None:
        yield (*prev, True)


def _block(coef, poly, u, phi, psi, s0, s1, B, Kb):
    """dx [B, 3, K, K_E] of one block from K-last coefficients coef [B, NB, K] and poly
    [B, C·n_low, 3K] (columns (x, k)); u [3, S], φ, ψ [·, S] (1/r is in ψ)."""
    K = coef.shape[2]
    dr = torch.bmm(coef.transpose(1, 2), phi[:, s0:s1].view(-1, B, Kb).transpose(0, 1))
    u_b = u[:, s0:s1].view(3, B, 1, Kb).transpose(0, 1)  # [B, 3, 1, Kb]
    dr = dr.view(B, 1, K, Kb)
    if poly is None:
        return dr * u_b
    du = torch.bmm(poly.transpose(1, 2), psi[:, s0:s1].view(-1, B, Kb).transpose(0, 1))
    du = du.view(B, 3, K, Kb)
    # r̂ dr + (1 − r̂ r̂ᵀ) du / r
    dr.sub_((du * u_b).sum(1, keepdim=True))
    return du.addcmul_(dr, u_b)


def features_and_pullback(plan, species, i, j, rij):
    """Features G [n, F] and a :class:`Pullback` at ``rij`` [P, 3] (Å)."""
    pb = Pullback(plan, species, i, j, rij)
    return pb.features, pb
