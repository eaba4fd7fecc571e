"""Angular symmetry functions on explicit neighbour triplets (G4, and G5 with any ζ).

    G4_i[{A,B}] = 2^{1-ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ
                  · exp(-η [(r_ij-r_s)² + (r_ik-r_s)² + (r_jk-r_s)²]) f_c(r_ij) f_c(r_ik) f_c(r_jk)

(G5 drops the r_jk terms.) Behler, J. Chem. Phys. 134, 074106 (2011). Lengths in Å.
Triplets are pairs of distinct entries (j<k) of the same centre's neighbour list. Lean
evaluation: the pair factors a(r) = exp(-η (r-r_s)²) f_c(r) are computed once per pair
and (η, r_s) group, the angular factors once per triplet and (λ, ζ) group; when every
function has the r_jk cutoff, triplets with r_jk ≥ r_c (exactly zero) are dropped. Work is
chunked over triplets, and each chunk is checkpointed (recomputed in the backward), so
memory stays bounded; double backward works.
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

CHUNK_TRIPLETS = 1 << 17


def _cut(r, rc, kind):
    x = torch.clamp(r * (1.0 / rc), max=1.0)
    if kind == "cosine":
        return 0.5 * torch.cos(math.pi * x) + 0.5
    return 1.0 + x * x * x * (-10.0 + x * (15.0 - 6.0 * x))


class _Plan:
    def __init__(self, spec, params):
        self.rc, self.kind = spec.cutoff, spec.cutoff_function
        groups, lz = [], []
        for _typ, eta, zeta, lam, rs in params:
            if (eta, rs) not in groups:
                groups.append((eta, rs))
            if (lam, zeta) not in lz:
                lz.append((lam, zeta))
        self.groups, self.lz = groups, lz
        self.g_of = [groups.index((p[1], p[4])) for p in params]
        self.lz_of = [lz.index((p[3], p[2])) for p in params]
        self.pre = [2.0 ** (1.0 - p[2]) for p in params]
        g4 = [p[0] == "G4" for p in params]
        # a G4 and a G5 may share (η, r_s): r_jk factors are kept per function kind
        self.g4_groups = sorted({self.g_of[k] for k in range(len(params)) if g4[k]})
        self.is_g4 = g4
        self.all_g4 = all(g4)

    def values(self, v1, v2, r1, r2, a1, a2):
        """[n_fun, T] function terms of triplets with vectors v1, v2 [3, T] (Å)."""
        w = v2 - v1
        r3 = torch.sqrt((w * w).sum(0))
        cos = (v1 * v2).sum(0) / (r1 * r2)
        ang = []
        for lam, zeta in self.lz:
            base = torch.clamp(1.0 + lam * cos, min=0.0)
            ang.append(base**int(zeta) if zeta == int(zeta) else base**zeta)
        ang = torch.stack(ang)
        pair = a1 * a2  # [n_groups, T]
        if self.g4_groups:
            f3 = _cut(r3, self.rc, self.kind)
            b3 = {}
            for g in self.g4_groups:
                eta, rs = self.groups[g]
                b3[g] = torch.exp(-eta * (r3 - rs) ** 2) * f3
        rows = []
        for k in range(len(self.pre)):
            t = ang[self.lz_of[k]] * pair[self.g_of[k]]
            if self.is_g4[k]:
                t = t * b3[self.g_of[k]]
            rows.append(self.pre[k] * t)
        return torch.stack(rows)


def _chunk(plan, rijT, a, r, p1, p2, centre_pair, n_rows, n_fun):
    """Accumulated [n_rows, n_fun] terms of the triplets (p1, p2) of one chunk."""
    v1, v2 = rijT.index_select(1, p1), rijT.index_select(1, p2)
    vals = plan.values(v1, v2, r[p1], r[p2], a.index_select(1, p1), a.index_select(1, p2))
    out = vals.new_zeros((n_rows, n_fun))
    return out.index_add(0, centre_pair, vals.t())


def triplet_features(spec, params, species, i, j, rij, n):
    """[n, n_pair, len(params)] angular features for ``params`` (entries of spec.angular)."""
    plan = _Plan(spec, params)
    dev = i.device
    n_el = len(spec.elements)
    n_pair = n_el * (n_el + 1) // 2
    pair_id = torch.full((n_el, n_el), -1, dtype=torch.long, device=dev)
    for k, (ea, eb) in enumerate(spec.element_pairs()):
        pair_id[ea, eb] = pair_id[eb, ea] = k
    nt = len(params)
    P = i.shape[0]
    out = rij.new_zeros((n * n_pair, nt))
    if P == 0:
        return out.view(n, n_pair, nt)
    rijT = rij.t()
    r = torch.sqrt((rij * rij).sum(1))
    fc = _cut(r, spec.cutoff, spec.cutoff_function)
    a = torch.stack([torch.exp(-eta * (r - rs) ** 2) * fc for eta, rs in plan.groups])
    sj = species[j]
    counts = torch.bincount(i, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(P, device=dev) - starts[i]
    partners = counts[i] - 1 - pos  # later entries of the same centre
    cum = torch.cumsum(partners, 0)
    total = int(cum[-1])
    marks = torch.tensor(list(range(CHUNK_TRIPLETS, total, CHUNK_TRIPLETS)), dtype=cum.dtype,
                         device=dev)
    edges = [0] + torch.searchsorted(cum, marks, right=True).tolist() + [P]
    for q0, q1 in zip(edges[:-1], edges[1:], strict=True):
        cnt = partners[q0:q1]
        p1 = torch.repeat_interleave(torch.arange(q0, q1, device=dev), cnt)
        if p1.numel() == 0:
            continue
        first = torch.cumsum(cnt, 0) - cnt
        p2 = p1 + 1 + torch.arange(p1.shape[0], device=dev) - first[p1 - q0]
        if plan.all_g4:  # every term has f_c(r_jk): drop r_jk ≥ r_c (exact zeros)
            w = rij.detach()[p2] - rij.detach()[p1]
            keep = (w * w).sum(1) < spec.cutoff**2
            p1, p2 = p1[keep], p2[keep]
            del w
        if p1.numel() == 0:
            continue
        centre_pair = i[p1] * n_pair + pair_id[sj[p1], sj[p2]]
        if torch.is_grad_enabled() and (rij.requires_grad or a.requires_grad):
            out = out + checkpoint(_chunk, plan, rijT, a, r, p1, p2, centre_pair,
                                   n * n_pair, nt, use_reentrant=False)
        else:
            out = out + _chunk(plan, rijT, a, r, p1, p2, centre_pair, n * n_pair, nt)
    return out.view(n, n_pair, nt)
