"""Angular symmetry functions on explicit neighbour triplets (G4, and G5 with any ζ).

    G4_i[{A,B}] = 2^{1-ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ
                  · exp(-η [(r_ij-r_s)² + (r_ik-r_s)² + (r_jk-r_s)²]) f_c(r_ij) f_c(r_ik) f_c(r_jk)

(G5 drops the r_jk terms.) Behler, J. Chem. Phys. 134, 074106 (2011). Lengths in Å.
Triplets are pairs of distinct entries (j<k) of the same centre's neighbour list; G4 terms
with r_jk ≥ r_c vanish and are skipped. Work is chunked over centres to bound memory.
"""

from __future__ import annotations

import math

import torch

CHUNK_TRIPLETS = 1 << 20


def _cut(r, rc, kind):
    x = torch.clamp(r * (1.0 / rc), max=1.0)
    if kind == "cosine":
        return 0.5 * (torch.cos(math.pi * x) + 1.0)
    return 1.0 + x * x * x * (-10.0 + x * (15.0 - 6.0 * x))


def triplet_features(spec, params, species, i, j, rij, n):
    """[n, n_pair, len(params)] angular features for ``params`` (entries of spec.angular)."""
    dev = i.device
    n_el = len(spec.elements)
    n_pair = n_el * (n_el + 1) // 2
    pair_id = torch.full((n_el, n_el), -1, dtype=torch.long, device=dev)
    for k, (a, b) in enumerate(spec.element_pairs()):
        pair_id[a, b] = pair_id[b, a] = k
    nt = len(params)
    rc, kind = spec.cutoff, spec.cutoff_function
    f64 = dict(dtype=rij.dtype, device=rij.device)
    is_g4 = torch.tensor([p[0] == "G4" for p in params], device=rij.device)
    any_g5 = not bool(is_g4.all())
    eta = torch.tensor([p[1] for p in params], **f64)
    zeta = torch.tensor([p[2] for p in params], **f64)
    lam = torch.tensor([p[3] for p in params], **f64)
    rs = torch.tensor([p[4] for p in params], **f64)
    pre = 2.0 ** (1.0 - zeta)
    g4f = is_g4.to(rij.dtype)
    int_zeta = [int(z) if float(z) == int(z) and z <= 16 else None for z in zeta.tolist()]

    P = i.shape[0]
    r = torch.sqrt((rij * rij).sum(1))
    fc = _cut(r, rc, kind)
    sj = species[j]
    counts = torch.bincount(i, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(P, device=dev) - starts[i]
    partners = counts[i] - 1 - pos  # later entries of the same centre
    cum = torch.cumsum(partners, 0)
    out = rij.new_zeros((n * n_pair, nt))
    total = int(cum[-1]) if P else 0
    if total == 0:
        return out.view(n, n_pair, nt)
    # chunks of consecutive first-pair indices holding about CHUNK_TRIPLETS triplets
    marks = torch.tensor(list(range(CHUNK_TRIPLETS, total, CHUNK_TRIPLETS)), dtype=cum.dtype,
                         device=dev)
    bounds = torch.searchsorted(cum, marks, right=True).tolist()
    edges = [0] + bounds + [P]
    for q0, q1 in zip(edges[:-1], edges[1:], strict=True):
        if q1 <= q0:
            continue
        cnt = partners[q0:q1]
        p1 = torch.repeat_interleave(torch.arange(q0, q1, device=dev), cnt)
        if p1.numel() == 0:
            continue
        first = torch.cumsum(cnt, 0) - cnt
        p2 = p1 + 1 + torch.arange(p1.shape[0], device=dev) - first[p1 - q0]
        v1, v2 = rij[p1], rij[p2]
        w = v2 - v1
        r3 = torch.sqrt((w * w).sum(1))
        if not any_g5:  # every function has the r_jk cutoff: drop vanishing triplets
            keep = r3 < rc
            p1, p2, v1, v2, r3 = p1[keep], p2[keep], v1[keep], v2[keep], r3[keep]
        r1, r2 = r[p1], r[p2]
        cos = (v1 * v2).sum(1) / (r1 * r2)
        base = fc[p1] * fc[p2]
        f3 = _cut(r3, rc, kind)
        d2 = ((r1[:, None] - rs) ** 2 + (r2[:, None] - rs) ** 2
              + g4f * (r3[:, None] - rs) ** 2)
        cut = base[:, None] * torch.where(is_g4, f3[:, None], torch.ones_like(f3)[:, None])
        x = torch.clamp(1.0 + lam * cos[:, None], min=0.0)
        if all(z is not None for z in int_zeta):
            ang = torch.stack([x[:, k] ** z for k, z in enumerate(int_zeta)], 1)
        else:
            ang = x**zeta
        val = pre * ang * torch.exp(-eta * d2) * cut
        pid = pair_id[sj[p1], sj[p2]]
        out = out.index_add(0, i[p1] * n_pair + pid, val)
    return out.view(n, n_pair, nt)
