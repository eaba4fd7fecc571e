"""Angular symmetry functions on explicit neighbour triplets (G4, and G5 with any ζ).

    G4_i[{A,B}] = 2^{1-ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ
                  · exp(-η [(r_ij-r_s)² + (r_ik-r_s)² + (r_jk-r_s)²]) f_c(r_ij) f_c(r_ik) f_c(r_jk)

(G5 drops the r_jk terms.) Behler, J. Chem. Phys. 134, 074106 (2011). Lengths in Å.
Triplets are pairs of distinct entries (j<k) of the same centre's neighbour list. Each term
is a product  V_f = A_{λζ}(cos θ) · a_g(r_ij) a_g(r_ik) · b_g(r_jk)  with the angular factor
A = 2^{1-ζ}(1+λ cos θ)^ζ shared by functions of equal (λ, ζ), and the pair factor
a_g(r) = exp(-η (r-r_s)²) f_c(r) and b_g (the same, for G4 only) shared by functions of
equal (η, r_s). When every function has the r_jk cutoff, triplets with r_jk ≥ r_c (exact
zeros) are dropped. A custom autograd Function with a hand-written backward recomputes
each chunk of triplets, so memory stays bounded; its backward is made of differentiable
torch ops (double backward works). On CPU the forward, and the backward when no graph is
being built, run the fused C kernel of :mod:`triplets_c` instead (same math; the torch
code here stays the reference and the path for GPUs, create_graph and vmap).
:func:`triplet_vjp` contracts K cotangents at once (committee pullbacks).
"""

from __future__ import annotations

import math

import torch

from nnpot.atomistic import triplets_c

CHUNK_TRIPLETS = 1 << 17


def _cut(r, rc, kind):
    """f_c(r) and f_c'(r) (1/Å)."""
    x = torch.clamp(r * (1.0 / rc), max=1.0)
    if kind == "cosine":
        a = math.pi * x
        return 0.5 * torch.cos(a) + 0.5, (-0.5 * math.pi / rc) * torch.sin(a)
    x2 = x * x
    return (1.0 + x2 * x * (-10.0 + x * (15.0 - 6.0 * x)),
            (x2 * (-30.0 + x * (60.0 - 30.0 * x))) * (1.0 / rc))


def _pow(x, z):
    if z == 1:
        return x
    if z == 2:
        return x * x
    if z == 4:
        x2 = x * x
        return x2 * x2
    return x**z


class TripletPlan:
    def __init__(self, spec, params):
        self.rc, self.kind = spec.cutoff, spec.cutoff_function
        groups, lz = [], []
        for typ, eta, zeta, lam, rs in params:
            if (typ, eta, rs) not in groups:
                groups.append((typ, eta, rs))
            if (lam, zeta) not in lz:
                lz.append((lam, zeta))
        self.groups, self.lz = groups, lz
        self.g_of = torch.tensor([groups.index((p[0], p[1], p[4])) for p in params])
        self.lz_of = torch.tensor([lz.index((p[3], p[2])) for p in params])
        self.g4 = [k for k, g in enumerate(groups) if g[0] == "G4"]
        self.all_g4 = len(self.g4) == len(groups)
        self.eta = torch.tensor([g[1] for g in groups], dtype=torch.float64)[:, None]
        self.rs = torch.tensor([g[2] for g in groups], dtype=torch.float64)[:, None]
        n = len(params)
        # S_g[g, f] = 1 if function f uses group g; S_lz likewise (sums in the backward)
        self.S_g = torch.zeros(len(groups), n, dtype=torch.float64)
        self.S_g[self.g_of, torch.arange(n)] = 1.0
        self.S_lz = torch.zeros(len(lz), n, dtype=torch.float64)
        self.S_lz[self.lz_of, torch.arange(n)] = 1.0
        self._cache = {}

    def c(self, name, ref):
        key = (name, ref.dtype, ref.device)
        if key not in self._cache:
            v = getattr(self, name)
            self._cache[key] = v.to(ref.device, ref.dtype if v.is_floating_point() else v.dtype)
        return self._cache[key]

    def pair_factors(self, rT, grad=True):
        """a [G, P] and (with grad) da/dr for pair distances r [P] (all groups)."""
        fc, dfc = _cut(rT, self.rc, self.kind)
        d = rT - self.c("rs", rT)
        e = torch.exp(-self.c("eta", rT) * d * d)
        return e * fc, (e * (dfc - 2.0 * self.c("eta", rT) * d * fc) if grad else None)

    def angular(self, cos, grad=True):
        """A [n_lz, T] and (with grad) dA/dcos."""
        vals, ders = [], []
        for lam, zeta in self.lz:
            base = torch.clamp(1.0 + lam * cos, min=0.0)
            pre = 2.0 ** (1.0 - zeta)
            vals.append(pre * _pow(base, zeta))
            if grad:
                ders.append((pre * zeta * lam) * (_pow(base, zeta - 1) if zeta != 1
                                                  else torch.ones_like(base)))
        return torch.stack(vals), (torch.stack(ders) if grad else None)

    def third(self, r3, grad=True):
        """b [G, T] (1 for G5 groups) and (with grad) db/dr_jk."""
        if not self.g4:
            return None, None
        fc, dfc = _cut(r3, self.rc, self.kind)
        d = r3 - self.c("rs", r3)
        e = torch.exp(-self.c("eta", r3) * d * d)
        b = e * fc
        db = e * (dfc - 2.0 * self.c("eta", r3) * d * fc) if grad else None
        if not self.all_g4:
            g5 = self.c("is_g5", r3)
            b = b * (1 - g5) + g5
            db = db * (1 - g5) if grad else None
        return b, db

    @property
    def is_g5(self):
        return torch.tensor([[0.0 if g[0] == "G4" else 1.0] for g in self.groups],
                            dtype=torch.float64)


def _triplets(meta, q0, q1, rijT):
    """(p1, p2) of the triplets whose first pair lies in q0..q1 (r_jk filter applied)."""
    i, partners, rc = meta["i"], meta["partners"], meta["plan"].rc
    cnt = partners[q0:q1]
    p1 = torch.repeat_interleave(torch.arange(q0, q1, device=i.device), cnt)
    first = torch.cumsum(cnt, 0) - cnt
    p2 = p1 + 1 + torch.arange(p1.shape[0], device=i.device) - first[p1 - q0]
    if meta["plan"].all_g4 and p1.numel():
        with torch.no_grad():
            w = rijT.index_select(1, p2) - rijT.index_select(1, p1)
            keep = (w * w).sum(0) < rc * rc
        p1, p2 = p1[keep], p2[keep]
    return p1, p2


def _chunk_terms(plan, rijT, rT, a, p1, p2, grad=True):
    v1, v2 = rijT.index_select(1, p1), rijT.index_select(1, p2)
    r1, r2 = rT.index_select(0, p1), rT.index_select(0, p2)
    w = v2 - v1
    r3 = torch.sqrt((w * w).sum(0))
    cos = (v1 * v2).sum(0) / (r1 * r2)
    A, dA = plan.angular(cos, grad)
    a1, a2 = a.index_select(1, p1), a.index_select(1, p2)
    b, db = plan.third(r3, grad)
    return v1, v2, r1, r2, w, r3, cos, A, dA, a1, a2, b, db


class TripletSums(torch.autograd.Function):
    """rij [P,3] (Å) -> raw triplet sums [n·n_pair, n_fun] (see module docstring)."""

    @staticmethod
    def forward(ctx, rij, meta):
        ctx.meta = meta
        ctx.save_for_backward(rij)
        out = triplets_c.forward(rij, meta)  # None: not applicable, take the torch path
        return _forward(rij, meta) if out is None else out

    @staticmethod
    def backward(ctx, d_out):
        (rij,) = ctx.saved_tensors
        g = triplets_c.backward(rij, ctx.meta, d_out)  # None with create_graph, vmap, GPU
        return (_backward(rij, ctx.meta, d_out) if g is None else g), None


def _forward(rij, meta):
    plan = meta["plan"]
    rijT = rij.t().contiguous()
    rT = torch.sqrt((rij * rij).sum(1))
    a, _ = plan.pair_factors(rT, grad=False)
    n_fun = plan.g_of.shape[0]
    out = rij.new_zeros((n_fun, meta["n_rows"]))
    g_of, lz_of = plan.c("g_of", rT), plan.c("lz_of", rT)
    for q0, q1 in meta["edges"]:
        p1, p2 = _triplets(meta, q0, q1, rijT)
        if p1.numel() == 0:
            continue
        _, _, _, _, _, _, _, A, _, a1, a2, b, _ = _chunk_terms(plan, rijT, rT, a, p1, p2,
                                                               grad=False)
        P = a1 * a2 if b is None else a1 * a2 * b
        V = A.index_select(0, lz_of) * P.index_select(0, g_of)
        out.index_add_(1, meta["centre_pair"](p1, p2), V)
    return out.t()


def _backward(rij, meta, d_out):
    plan = meta["plan"]
    grad_mode = torch.is_grad_enabled()  # create_graph: keep everything out of place
    rijT = rij.t().contiguous()
    rT = torch.sqrt((rij * rij).sum(1))
    a, da_dr = plan.pair_factors(rT)
    dT = d_out.t()  # [n_fun, n_rows]
    S_g, S_lz = plan.c("S_g", rT), plan.c("S_lz", rT)
    g_of, lz_of = plan.c("g_of", rT), plan.c("lz_of", rT)
    g_a = torch.zeros_like(a)
    g_v = torch.zeros_like(rijT)

    inplace = [not grad_mode]

    def acc(buf, idx, src):
        if inplace[0]:
            try:
                return buf.index_add_(1, idx, src)
            except RuntimeError:  # batched grads (vmap) cannot write into a plain buffer
                inplace[0] = False
        return buf.index_add(1, idx, src)

    for q0, q1 in meta["edges"]:
        p1, p2 = _triplets(meta, q0, q1, rijT)
        if p1.numel() == 0:
            continue
        v1, v2, r1, r2, w, r3, cos, A, dA, a1, a2, b, db = _chunk_terms(plan, rijT, rT, a,
                                                                         p1, p2)
        dV = dT.index_select(1, meta["centre_pair"](p1, p2))  # [n_fun, T]
        P12 = a1 * a2
        P = P12 if b is None else P12 * b
        dAng = S_lz @ (dV * P.index_select(0, g_of))  # [n_lz, T]
        dP = S_g @ (dV * A.index_select(0, lz_of))  # [G, T]
        dPb = dP if b is None else dP * b
        g_a = acc(g_a, p1, dPb * a2)
        g_a = acc(g_a, p2, dPb * a1)
        dcos = (dAng * dA).sum(0)
        inv12 = 1.0 / (r1 * r2)
        dv1 = dcos * (v2 * inv12 - cos * v1 / (r1 * r1))
        dv2 = dcos * (v1 * inv12 - cos * v2 / (r2 * r2))
        if b is not None:
            dr3 = (dP * P12 * db).sum(0)
            t = w * (dr3 / r3)
            dv1, dv2 = dv1 - t, dv2 + t
        g_v = acc(g_v, p1, dv1)
        g_v = acc(g_v, p2, dv2)
    g_r = (g_a * da_dr).sum(0)
    return (g_v + g_r * rijT / rT).t()


def triplet_features(spec, params, species, i, j, rij, n):
    """[n, n_pair, len(params)] angular features for ``params`` (entries of spec.angular)."""
    plan = TripletPlan(spec, params)
    dev = i.device
    n_el = len(spec.elements)
    n_pair = n_el * (n_el + 1) // 2
    pair_id = torch.full((n_el, n_el), -1, dtype=torch.long, device=dev)
    for k, (ea, eb) in enumerate(spec.element_pairs()):
        pair_id[ea, eb] = pair_id[eb, ea] = k
    P = i.shape[0]
    if P == 0:
        return rij.new_zeros((n, n_pair, len(params))) + 0.0 * rij.sum()
    sj = species[j]
    counts = torch.bincount(i, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    partners = counts[i] - 1 - (torch.arange(P, device=dev) - starts[i])
    cum = torch.cumsum(partners, 0)
    marks = torch.tensor(list(range(CHUNK_TRIPLETS, int(cum[-1]), CHUNK_TRIPLETS)),
                         dtype=cum.dtype, device=dev)
    edges = [0] + torch.searchsorted(cum, marks, right=True).tolist() + [P]
    meta = {
        "plan": plan, "i": i, "partners": partners, "n_rows": n * n_pair, "n": n,
        "n_pair": n_pair, "sj": sj, "pair_id": pair_id,
        "edges": [(q0, q1) for q0, q1 in zip(edges[:-1], edges[1:], strict=True) if q1 > q0],
        "centre_pair": lambda p1, p2: i[p1] * n_pair + pair_id[sj[p1], sj[p2]],
    }
    out = TripletSums.apply(rij, meta)
    return out.reshape(n, n_pair, len(params))


def triplet_vjp(out, rij, cot):
    """Σ_f cot[k]·∂out/∂rij for K cotangents at once: ``out`` [n, n_pair, F] from
    :func:`triplet_features` (called with ``rij`` [P, 3], Å), cot [K, n, n_pair, F] ->
    [K, P, 3] (cotangent unit per Å). The C kernel contracts every cotangent with triplet
    terms computed once; otherwise (GPU, no compiler) batched autograd. Not differentiable.
    """
    node = out.grad_fn
    while node is not None and not isinstance(getattr(node, "meta", None), dict):
        node = node.next_functions[0][0] if node.next_functions else None
    if node is not None and node.saved_tensors[0] is rij:
        with torch.no_grad():
            g = triplets_c.backward(rij, node.meta, cot.reshape(cot.shape[0], -1, out.shape[2]))
        if g is not None:
            return g
    with torch.enable_grad():
        (g,) = torch.autograd.grad(out, rij, cot, retain_graph=True, is_grads_batched=True)
    return g
