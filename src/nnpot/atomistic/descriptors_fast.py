"""Vectorised symmetry functions (see :mod:`nnpot.atomistic.descriptors` for the math).

Layout: the pair list (sorted by centre i) is laid out as one fixed-width, zero-padded row
of K neighbour slots per centre atom, so every per-centre sum is a batched matrix product.

Factorised angular route (G5 with integer ζ): (1 + λ cos θ)^ζ = Σ_d C(ζ,d) λ^d cos^d θ and
cos^d θ_jk = (r̂_j·r̂_k)^d = Σ_{|α|=d} (d!/α!) r̂_j^α r̂_k^α (multinomial theorem), so

    Σ_{j,k∈A×B} g(r_j) g(r_k) cos^d θ_jk = Σ_{|α|=d} M^A_α M^B_α,
    M^E_α = Σ_{j∈E} g(r_ij) sqrt(d!/α!) r̂_ij^α                (per-centre moments).

The j = k terms (same element only) equal (1+λ)^ζ Σ_{j∈A} g(r_ij)² and are subtracted;
halving gives the j<k sum. Cost O(neighbours) per atom. G4 (and G5 with non-integer ζ)
is evaluated on explicit neighbour triplets (j<k entries of the same centre).
"""

from __future__ import annotations

import math

import torch

from nnpot.atomistic.descriptors import cutoff_function

MAX_FACTORISED_ZETA = 8  # above this the monomial count (C(ζ+3,3)) beats triplets poorly


def monomial_table(max_degree: int):
    """Exponents (a,b,c) of all monomials of degree 0..max_degree, with parent/axis for
    the recursion x^α = x^(α - e_axis) · x_axis, degree and sqrt(multinomial) weights."""
    exps = [(0, 0, 0)]
    parent, axis = [0], [0]
    for d in range(1, max_degree + 1):
        for a in range(d, -1, -1):
            for b in range(d - a, -1, -1):
                c = d - a - b
                e = (a, b, c)
                ax = 0 if a > 0 else (1 if b > 0 else 2)
                prev = list(e)
                prev[ax] -= 1
                exps.append(e)
                parent.append(exps.index(tuple(prev)))
                axis.append(ax)
    degree = [sum(e) for e in exps]
    weight = [math.sqrt(math.factorial(sum(e)) / (math.factorial(e[0]) * math.factorial(e[1])
                                                  * math.factorial(e[2]))) for e in exps]
    return exps, parent, axis, degree, weight


class FastPlan:
    """Precomputed index tables for one DescriptorSpec; call with (species, i, j, rij)."""

    def __init__(self, spec):
        self.spec = spec
        self.n_el = len(spec.elements)
        self.pairs = spec.element_pairs()
        self.n_pair = len(self.pairs)
        pair_id = torch.full((self.n_el, self.n_el), -1, dtype=torch.long)
        for k, (a, b) in enumerate(self.pairs):
            pair_id[a, b] = pair_id[b, a] = k
        self.pair_id = pair_id
        self.rad_eta = [p[0] for p in spec.radial]
        self.rad_rs = [p[1] for p in spec.radial]
        fact, trip = [], []
        for k, (typ, _eta, zeta, _lam, _rs) in enumerate(spec.angular):
            if typ == "G5" and zeta == int(zeta) and zeta <= MAX_FACTORISED_ZETA:
                fact.append(k)
            else:
                trip.append(k)
        self.fact, self.trip = fact, trip
        # factorised: unique radial channels (eta, rs) and polynomial coefficients
        chans = []
        for k in fact:
            key = (spec.angular[k][1], spec.angular[k][4])
            if key not in chans:
                chans.append(key)
        self.chans = chans
        self.chan_of = [chans.index((spec.angular[k][1], spec.angular[k][4])) for k in fact]
        self.max_deg = max([int(spec.angular[k][2]) for k in fact], default=0)
        exps, parent, axis, degree, weight = monomial_table(self.max_deg)
        self.mono_parent, self.mono_axis = parent, axis
        self.mono_weight = weight
        self.n_mono = len(exps)
        deg_ind = torch.zeros(self.n_mono, self.max_deg + 1, dtype=torch.float64)
        for m, d in enumerate(degree):
            deg_ind[m, d] = 1.0
        self.deg_ind = deg_ind
        coef = torch.zeros(len(fact), self.max_deg + 1, dtype=torch.float64)
        diag = torch.zeros(len(fact), dtype=torch.float64)
        for n, k in enumerate(fact):
            _, _, zeta, lam, _ = spec.angular[k]
            z = int(zeta)
            pre = 2.0 ** (1.0 - z)
            for d in range(z + 1):
                coef[n, d] = pre * math.comb(z, d) * lam**d
            diag[n] = pre * (1.0 + lam) ** z
        self.coef, self.diag = coef, diag
        n_ang = len(spec.angular)
        order = fact + trip
        self.ang_perm = [order.index(k) for k in range(n_ang)]
        self._cache = {}

    def _const(self, name, ref):
        key = (name, ref.dtype, ref.device)
        if key not in self._cache:
            val = getattr(self, name)
            if not torch.is_tensor(val):
                val = torch.tensor(val, dtype=torch.float64)
            self._cache[key] = val.to(device=ref.device,
                                      dtype=ref.dtype if val.is_floating_point() else val.dtype)
        return self._cache[key]

    # ------------------------------------------------------------------ main
    def __call__(self, species, i, j, rij):
        spec = self.spec
        n = species.shape[0]
        n_rad = len(spec.radial)
        n_ang = len(spec.angular)
        P = i.shape[0]
        if P == 0 or n == 0:
            return rij.new_zeros((n, spec.n_features())) + 0.0 * rij.sum()
        r = torch.linalg.norm(rij, dim=1)
        fc = cutoff_function(r, spec.cutoff, spec.cutoff_function)
        sj = species[j]
        counts = torch.bincount(i, minlength=n)
        K = int(counts.max())
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.arange(P, device=i.device) - starts[i]
        flat = i * K + pos
        onehot = torch.nn.functional.one_hot(sj, self.n_el).to(rij.dtype)  # [P, E]
        oh_pad = rij.new_zeros((n * K, self.n_el))
        oh_pad[flat] = onehot
        oh_pad = oh_pad.view(n, K, self.n_el).transpose(1, 2)  # [n, E, K]

        cols = []
        if n_rad:
            eta = self._const("rad_eta", rij)
            rs = self._const("rad_rs", rij)
            g = torch.exp(-eta * (r[:, None] - rs) ** 2) * fc[:, None]  # [P, R]
            cols.append(g)
        if self.fact:
            ceta = rij.new_tensor([c[0] for c in self.chans])
            crs = rij.new_tensor([c[1] for c in self.chans])
            ga = torch.exp(-ceta * (r[:, None] - crs) ** 2) * fc[:, None]  # [P, C]
            cols.append(ga * ga)
        ang_parts = []
        if cols:
            h = torch.cat(cols, 1)
            h_pad = h.new_zeros((n * K, h.shape[1]))
            h_pad[flat] = h
            sums = torch.bmm(oh_pad, h_pad.view(n, K, -1))  # [n, E, R + C]
            g2 = sums[:, :, :n_rad].reshape(n, -1)
            dsum = sums[:, :, n_rad:]  # [n, E, C]: Σ_j g(r_ij)²
        else:
            g2 = rij.new_zeros((n, 0))
        if self.fact:
            ang_parts.append(self._factorised(rij, r, ga, onehot, flat, n, K, dsum))
        if self.trip:
            ang_parts.append(self._triplets(rij, r, fc, sj, i, pos, counts, n))
        if not ang_parts:
            return g2
        ang = torch.cat(ang_parts, 2)[:, :, self.ang_perm] if len(ang_parts) > 1 else ang_parts[0]
        return torch.cat([g2, ang.reshape(n, self.n_pair * n_ang)], 1)

    def _monomials(self, u):
        """sqrt(d!/α!) û^α for all |α| ≤ max_deg: [P, n_mono]."""
        cols = [u.new_ones(u.shape[0])]
        for m in range(1, self.n_mono):
            cols.append(cols[self.mono_parent[m]] * u[:, self.mono_axis[m]])
        w = self._const("mono_weight", u)
        return torch.stack(cols, 1) * w

    def _factorised(self, rij, r, ga, onehot, flat, n, K, dsum):
        E, C = self.n_el, len(self.chans)
        u = rij / r[:, None]
        Y = self._monomials(u)  # [P, M]
        lhs = (onehot[:, :, None] * ga[:, None, :]).reshape(-1, E * C)  # [P, E*C]
        lhs_pad = rij.new_zeros((n * K, E * C))
        lhs_pad[flat] = lhs
        y_pad = rij.new_zeros((n * K, self.n_mono))
        y_pad[flat] = Y
        mom = torch.bmm(lhs_pad.view(n, K, E * C).transpose(1, 2), y_pad.view(n, K, -1))
        mom = mom.view(n, E, C, self.n_mono)
        a_idx = [a for a, _ in self.pairs]
        b_idx = [b for _, b in self.pairs]
        prod = mom[:, a_idx] * mom[:, b_idx]  # [n, npair, C, M]
        S = prod @ self._const("deg_ind", rij)  # [n, npair, C, D]
        S = S[:, :, self.chan_of, :]  # [n, npair, nf, D]
        G = (S * self._const("coef", rij)).sum(-1)  # [n, npair, nf]
        same = [a == b for a, b in self.pairs]
        diag = dsum[:, a_idx][:, :, self.chan_of] * self._const("diag", rij)  # [n, npair, nf]
        half = rij.new_tensor([0.5 if s else 1.0 for s in same])[None, :, None]
        mask = rij.new_tensor([1.0 if s else 0.0 for s in same])[None, :, None]
        return (G - mask * diag) * half

    def _triplets(self, rij, r, fc, sj, i, pos, counts, n):
        spec = self.spec
        P = i.shape[0]
        partners = counts[i] - 1 - pos  # entries after p in the same row
        p1 = torch.repeat_interleave(torch.arange(P, device=i.device), partners)
        T = p1.shape[0]
        tstart = torch.cumsum(partners, 0) - partners
        p2 = p1 + 1 + torch.arange(T, device=i.device) - tstart[p1]
        params = [spec.angular[k] for k in self.trip]
        nt = len(params)
        out = rij.new_zeros((n * self.n_pair, nt))
        if T == 0:
            return out.view(n, self.n_pair, nt)
        v1, v2 = rij[p1], rij[p2]
        r1, r2 = r[p1], r[p2]
        r3 = torch.linalg.norm(v2 - v1, dim=1)
        cos = (v1 * v2).sum(1) / (r1 * r2)
        f12 = fc[p1] * fc[p2]
        f3 = cutoff_function(r3, spec.cutoff, spec.cutoff_function)
        is_g4 = rij.new_tensor([1.0 if p[0] == "G4" else 0.0 for p in params])
        eta = rij.new_tensor([p[1] for p in params])
        zeta = rij.new_tensor([p[2] for p in params])
        lam = rij.new_tensor([p[3] for p in params])
        rs = rij.new_tensor([p[4] for p in params])
        d2 = (r1[:, None] - rs) ** 2 + (r2[:, None] - rs) ** 2 + is_g4 * (r3[:, None] - rs) ** 2
        fcut = f12[:, None] * torch.where(is_g4 > 0, f3[:, None], torch.ones_like(f3)[:, None])
        ang = torch.clamp(1.0 + lam * cos[:, None], min=0.0) ** zeta
        val = 2.0 ** (1.0 - zeta) * ang * torch.exp(-eta * d2) * fcut
        pid = self._const("pair_id", i)[sj[p1], sj[p2]]
        out = out.index_add(0, i[p1] * self.n_pair + pid, val)
        return out.view(n, self.n_pair, nt)
