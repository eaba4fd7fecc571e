"""Per-centre slot sums for the factorised symmetry functions, with a hand-written backward.

For every centre i and neighbour element E, over the pair-list entries j ∈ E (r in Å):

    rad[i,E,r]   = Σ_j exp(-η_r (r_ij - s_r)²) f_c(r_ij)                      (G2 values)
    dsq[i,E,c]   = Σ_j g_c(r_ij)²,  g_c = exp(-η_c (r_ij - s_c)²) f_c(r_ij)  (j = k terms)
    mom[i,E,c,α] = Σ_j g_c(r_ij) r̂_ij^α   for all monomials of degree L-1 and L

Layout: per chunk of B centres, the entries of neighbour element E fill a padded block of
B rows × K_E slots (K_E = the most E-neighbours of any centre of the chunk); pads sit at
distance r_c, where f_c and so every weight is exactly zero. Per-slot arrays are channel-
major ([channels, slots]); slot sums are reductions and batched matrix products. The
backward recomputes slot quantities chunk by chunk, so memory stays O(pairs +
atoms·moments); it is built from differentiable torch ops, so double backward (training on
forces) is exact. Without a graph on a CPU, :func:`run_sums` takes the C kernel of
:mod:`forward_c` instead (no padded layout at all: :class:`Layout` builds its chunks lazily).
"""

from __future__ import annotations

import math

import torch

from nnpot.atomistic import forward_c

CHUNK_SLOTS = 1 << 14  # padded slots per chunk on a CPU (working set stays in L2/L3 cache)
CHUNK_SLOTS_GPU = 1 << 22  # on a GPU: few large chunks (every op of a chunk is a launch)


def chunk_slots(device: torch.device) -> int:
    """Padded slots per chunk for tensors on ``device``."""
    return CHUNK_SLOTS if device.type == "cpu" else CHUNK_SLOTS_GPU


def _multinomial(e) -> float:
    return math.factorial(sum(e)) / math.prod(math.factorial(k) for k in e)


def monomial_blocks(L: int) -> list[list[tuple[int, int, int]]]:
    """Exponents of degree 0..L. Order within degree d: x·(all of degree d-1), then
    y·(last d of degree d-1, those without x), then z·(last one, z^(d-1))."""
    blocks = [[(0, 0, 0)]]
    for d in range(1, L + 1):
        prev = blocks[-1]
        blocks.append([(a + 1, b, c) for a, b, c in prev]
                      + [(a, b + 1, c) for a, b, c in prev[-d:]]
                      + [(0, 0, d)])
    return blocks


class MomentTables:
    """Constants of the moment route up to degree L (L ≥ 1).

    Monomials of r̂ live in one buffer Y [n_all, S], rows ordered by degree 0..L. The
    moments use the rows of degrees L-1 and L ("top"); the gradient uses the rows of
    degrees L-2 and L-1 ("low"), since ∂r̂^α/∂r̂_x = α_x r̂^(α - e_x).
    """

    def __init__(self, L: int):
        self.L = L
        self.blocks = monomial_blocks(L)
        flat = [e for blk in self.blocks for e in blk]
        off = [0]
        for blk in self.blocks:
            off.append(off[-1] + len(blk))
        self.n_all = off[-1]
        top_deg = [d for d in (L - 1, L) if d >= 0]
        self.top = (off[top_deg[0]], off[L + 1])
        self.low = (off[max(L - 2, 0)], off[L])
        self.union = (self.low[0], self.top[1])
        top = flat[self.top[0]:self.top[1]]
        self.n_top = len(top)
        n_low = self.low[1] - self.low[0]
        # weighted moments of every degree ≤ L from the unweighted top ones (|r̂| = 1):
        # sqrt(d!/α!) Σ g r̂^α = sqrt(d!/α!) Σ_β (s!/β!) Σ g r̂^(α+2β),  s = (d_top - d)/2
        index = {e: m for m, e in enumerate(top)}
        T = torch.zeros(self.n_top, self.n_all, dtype=torch.float64)
        deg = torch.zeros(self.n_all, L + 1, dtype=torch.float64)
        for col, e in enumerate(flat):
            d = sum(e)
            deg[col, d] = 1.0
            s = (max(t for t in top_deg if (t - d) % 2 == 0) - d) // 2
            for b0 in range(s + 1):
                for b1 in range(s - b0 + 1):
                    beta = (b0, b1, s - b0 - b1)
                    hi = tuple(x + 2 * y for x, y in zip(e, beta, strict=True))
                    T[index[hi], col] += math.sqrt(_multinomial(e)) * _multinomial(beta)
        self.T, self.deg_ind = T, deg
        # A[m, x, m'] = α_x if low monomial m' = α_m - e_x (gradient of the top monomials)
        A = torch.zeros(self.n_top, 3, n_low, dtype=torch.float64)
        low_index = {e: k for k, e in enumerate(flat[self.low[0]:self.low[1]])}
        for m, e in enumerate(top):
            for x in range(3):
                if e[x]:
                    lower = list(e)
                    lower[x] -= 1
                    A[m, x, low_index[tuple(lower)]] = e[x]
        self.A = A.reshape(self.n_top, 3 * n_low)
        self.n_low = n_low
        # the same map as a gather: (d_mom A)[x, l] = low_fac[x, l] · d_mom[low_idx[x, l]]
        idx, fac = [], []
        for x in range(3):
            for e in flat[self.low[0]:self.low[1]]:
                hi = list(e)
                hi[x] += 1
                idx.append(index[tuple(hi)])
                fac.append(float(hi[x]))
        self.low_idx = torch.tensor(idx)
        self.low_fac = torch.tensor(fac, dtype=torch.float64).view(3, n_low)
        self.low_idx_lx = self.low_idx.view(3, n_low).t().reshape(-1)  # (l, x) order
        self.low_fac_lx = self.low_fac.t().reshape(-1)

    def monomials(self, u):
        """Unweighted monomials of r̂ (u: [3, S]): Y [n_all, S], rows ordered by degree."""
        x, y, z = u[0:1], u[1:2], u[2:3]
        out = [torch.ones_like(x), u]
        for d in range(2, self.L + 1):
            p = out[-1]
            out.append(torch.cat([x * p, y * p[-d:], z * p[-1:]], 0))
        return torch.cat(out, 0)


class Layout:
    """Padded slot positions of a centre-sorted pair list, chunked over centres.

    Chunk c holds centres c0..c1 (B = c1 - c0) and their pairs p0..p1; its buffer has
    B·ΣK_E slots, K_E = the most E-neighbours of any centre in the chunk, ordered
    [element][centre][rank]. ``chunks`` lists (c0, c1, p0, p1, slot of each pair, K, inverse
    map slot -> pair).
    """

    def __init__(self, species, i, j, n: int, n_el: int):
        self.species, self.i, self.j = species, i, j
        self.n, self.n_el, self.P = n, n_el, i.shape[0]
        self._chunks = None

    @property
    def chunks(self):
        """Built on first use (the C slot sums of :mod:`forward_c` never need it)."""
        if self._chunks is None:
            self._chunks = self._build(self.species, self.i, self.j, self.n, self.n_el)
        return self._chunks

    @staticmethod
    def _build(species, i, j, n: int, n_el: int):
        dev = i.device
        counts = torch.bincount(i, minlength=n)
        kmax = int(counts.max()) if n else 0
        per = max(1, chunk_slots(dev) // max(kmax + n_el, 1))
        ends = torch.cumsum(counts, 0).tolist()
        chunks = []
        # everything per chunk, so the work stays in cache however long the pair list
        for c0 in range(0, n, per):
            c1 = min(n, c0 + per)
            B, p0, p1 = c1 - c0, (ends[c0 - 1] if c0 else 0), ends[c1 - 1]
            ic = i[p0:p1] - c0
            sj = species[j[p0:p1]]
            cnt = torch.bincount(ic * n_el + sj, minlength=B * n_el).view(B, n_el)
            K = cnt.max(0).values.tolist()
            # rank of a pair among its centre's neighbours of the same element (i sorted)
            # (one flat scan of the [E, P] indicator, minus the rows before: a scan over dim 0
            # of a [P, E] array is a sequential kernel on a GPU, 400 ms at 66k atoms, and
            # row-wise scans of [E, P] still 8 ms)
            onehot = torch.nn.functional.one_hot(sj, n_el).t().contiguous().to(torch.int32)
            flat = torch.cumsum(onehot.view(-1), 0, dtype=torch.int32).view(n_el, -1)
            flat = flat - (flat[:, -1:] - onehot.sum(1, keepdim=True, dtype=torch.int32))
            seen = flat.gather(0, sj[None, :])
            before = torch.cumsum(cnt.t().contiguous(), 1).t() - cnt
            rank = seen.squeeze(0).long() - 1 - before[ic, sj]
            Kt = torch.tensor(K, device=dev)
            off = torch.tensor([sum(K[:e]) for e in range(n_el)], device=dev)
            slot = B * off[sj] + ic * Kt[sj] + rank
            # inverse map: slot -> pair (p - p0), pads -> p1 - p0 (the "far" row)
            inv = torch.full((B * sum(K),), p1 - p0, dtype=torch.long, device=dev)
            inv[slot] = torch.arange(p1 - p0, device=dev)
            chunks.append((c0, c1, p0, p1, slot, K, inv))
        return chunks

    @staticmethod
    def blocks(B: int, K):
        """[(start, end, element, K_E)]: slot range of each neighbour element in a chunk."""
        out, s = [], 0
        for e, k in enumerate(K):
            out.append((s, s + B * k, e, k))
            s += B * k
        return out


class SlotKernel:
    """Slot quantities and slot sums for radial (η, s) channels and moment channels.

    Channel-major ("structure of arrays") layout: every per-slot array is [channels, S],
    so elementwise work runs over long contiguous rows.
    """

    def __init__(self, rc: float, kind: str, radial, chans, tables: MomentTables | None):
        self.rc, self.kind = rc, kind
        self.radial, self.chans = tuple(radial), tuple(chans)  # (η [1/Å²], s [Å]) each
        self.n_rad, self.n_chan = len(radial), len(chans)
        self.tables = tables
        f64 = dict(dtype=torch.float64)
        self.consts = {}
        for name, ch in (("ang", chans), ("rad", radial)):
            eta = torch.tensor([c[0] for c in ch], **f64)
            rs = torch.tensor([c[1] for c in ch], **f64)
            # exponent -η (r - s)² = [2ηs, -η] @ [r; r²] - η s²  (one addmm per group)
            self.consts[name + "_w"] = torch.stack([2.0 * eta * rs, -eta], 1)
            self.consts[name + "_b"] = (-eta * rs * rs)[:, None]
            self.consts[name + "_m2eta"] = -2.0 * eta
            self.consts[name + "_2etas"] = 2.0 * eta * rs
        self._cache = {}

    def const(self, name, ref):
        key = (name, ref.dtype, ref.device)
        if key not in self._cache:
            src = self.consts[name] if name in self.consts else getattr(self.tables, name)
            self._cache[key] = src.to(ref.device, ref.dtype if src.is_floating_point()
                                      else src.dtype)
        return self._cache[key]

    def _gauss(self, name, rr):
        z = torch.addmm(self.const(name + "_b", rr), self.const(name + "_w", rr), rr)
        # clamp: no subnormal floats (~100x slower on x86); e ≥ 1e-26 changes nothing here
        return torch.exp(torch.clamp(z, min=-60.0))

    def slots(self, x):
        """x [3, S] -> r, 1/r, r̂ [3,S], f_c, f_c', Gaussians [R,S] and [C,S], monomials."""
        r2 = (x * x).sum(0)
        inv = torch.rsqrt(r2)
        r = r2 * inv
        u = x * inv
        t = torch.clamp(r * (1.0 / self.rc), max=1.0)
        if self.kind == "cosine":
            a = math.pi * t
            fc = 0.5 * torch.cos(a) + 0.5
            dfc = (-0.5 * math.pi / self.rc) * torch.sin(a)
        else:
            t2 = t * t
            fc = 1.0 + t2 * t * (-10.0 + t * (15.0 - 6.0 * t))
            dfc = (t2 * (-30.0 + t * (60.0 - 30.0 * t))) * (1.0 / self.rc)
        rr = torch.stack([r, r2], 0)
        e_rad = self._gauss("rad", rr)
        e_ang = self._gauss("ang", rr) if self.n_chan else None
        ys = self.tables.monomials(u) if self.n_chan else None
        return r, inv, u, fc, dfc, e_rad, e_ang, ys

    def sums(self, x, B: int, blocks, sl=None):
        """rad [B,E,R], dsq [B,E,C], mom [B,E,C,M_top] of one chunk buffer x [3,S]
        (``sl``: the chunk's :meth:`slots`, when already computed)."""
        _, _, _, fc, _, e_rad, e_ang, ys = self.slots(x) if sl is None else sl
        C, R = self.n_chan, self.n_rad
        g_rad = e_rad * fc
        rad = torch.stack([g_rad[:, s0:s1].view(R, B, K).sum(2) for s0, s1, _, K in blocks])
        rad = rad.permute(2, 0, 1)
        if not C:
            return rad, None, None
        g_ang = e_ang * fc
        yt = ys[self.tables.top[0]:self.tables.top[1]]
        M = yt.shape[0]
        dsq, mom = [], []
        for s0, s1, _, K in blocks:
            ga = g_ang[:, s0:s1].view(C, B, K)
            dsq.append((ga * ga).sum(2))
            yb = yt[:, s0:s1].view(M, B, K).transpose(0, 1)  # [B, M, K]
            mom.append(torch.bmm(yb, ga.permute(1, 2, 0)))  # [B, M, C]
        return rad, torch.stack(dsq).permute(2, 0, 1), torch.stack(mom, 1).transpose(2, 3)

    def sums_backward(self, x, B: int, blocks, d_rad, d_dsq, d_mom):
        """Gradient [3,S] of Σ d_rad·rad + d_dsq·dsq + d_mom·mom with respect to x [3,S]."""
        r, inv, u, fc, dfc, e_rad, e_ang, ys = self.slots(x)
        C, R = self.n_chan, self.n_rad
        # g_c = e_c f_c:  dg_c/dr = e_c (f_c (2η_c s_c - 2η_c r) + f_c')
        de = torch.cat([(e_rad[:, s0:s1].view(R, B, K) * d_rad[:, k].t()[:, :, None])
                        .view(R, B * K) for s0, s1, k, K in blocks], 1)
        acc_a = self.const("rad_m2eta", x) @ de  # Σ_c de_c (-2η_c)
        acc_b = self.const("rad_2etas", x) @ de  # Σ_c de_c 2η_c s_c
        acc_c = de.sum(0)
        du = None
        if C:
            t = self.tables
            g_ang = e_ang * fc
            yu = ys[t.union[0]:t.union[1]]
            U = yu.shape[0]
            # per centre: rows [dMom | ∂/∂r̂ of the polynomials Σ_m dMom_m r̂^α_m] over the
            # union of top and low monomials, so one bmm per block gives both
            poly = (d_mom @ self.const("A", x)).view(B, -1, C, 3 * t.n_low)
            lhs = torch.cat([
                torch.nn.functional.pad(d_mom, (t.top[0] - t.union[0], 0)),
                torch.nn.functional.pad(poly.view(B, -1, C * 3, t.n_low),
                                        (0, t.union[1] - t.low[1]))], 2)  # [B, E, 4C, U]
            dga, du = [], []
            for s0, s1, k, K in blocks:
                ga = g_ang[:, s0:s1].view(C, B, K)
                out = torch.bmm(lhs[:, k], yu[:, s0:s1].view(U, B, K).transpose(0, 1))
                dga.append((out[:, :C].transpose(0, 1)
                            + (2.0 * ga) * d_dsq[:, k].t()[:, :, None]).reshape(C, B * K))
                gp = out[:, C:].view(B, C, 3, K) * ga.transpose(0, 1)[:, :, None, :]
                du.append(gp.sum(1).transpose(0, 1).reshape(3, B * K))
            de = torch.cat(dga, 1) * e_ang
            acc_a = acc_a + self.const("ang_m2eta", x) @ de
            acc_b = acc_b + self.const("ang_2etas", x) @ de
            acc_c = acc_c + de.sum(0)
            du = torch.cat(du, 1)
        dr = fc * (r * acc_a + acc_b) + dfc * acc_c
        dx = dr * u
        if du is not None:
            dx = dx + (du - (du * u).sum(0) * u) * inv
        return dx


class SlotSums(torch.autograd.Function):
    """rij [P,3] (Å) -> (rad [n,E,R], dsq [n,E,C], mom [n,E,C,M_top]); see module doc."""

    @staticmethod
    def forward(ctx, rij, kernel, layout):
        ctx.kernel, ctx.layout = kernel, layout
        ctx.save_for_backward(rij)
        return run_sums_torch(rij, kernel, layout)

    @staticmethod
    def backward(ctx, d_rad, d_dsq, d_mom):
        (rij,) = ctx.saved_tensors
        kernel, layout = ctx.kernel, ctx.layout
        E, C = layout.n_el, kernel.n_chan
        n = layout.n
        if d_rad is None:
            d_rad = rij.new_zeros((n, E, kernel.n_rad))
        if C and d_dsq is None:
            d_dsq = rij.new_zeros((n, E, C))
        if C and d_mom is None:
            d_mom = rij.new_zeros((n, E, C, kernel.tables.n_top))
        # out of place throughout: double backward and batched grads (vmap) need it
        grads = []
        for c0, c1, p0, p1, slot, K, inv in layout.chunks:
            B = c1 - c0
            x = _gather(rij, p0, p1, inv, kernel.rc)
            dx = kernel.sums_backward(x, B, layout.blocks(B, K), d_rad[c0:c1],
                                      d_dsq[c0:c1] if C else None,
                                      d_mom[c0:c1] if C else None)
            grads.append(dx.index_select(1, slot))
        if not grads:
            return torch.zeros_like(rij), None, None
        return torch.cat(grads, 1).t().contiguous(), None, None


def _gather(rij, p0, p1, inv, far):
    """Chunk buffer [3,S]: the pairs p0..p1 at their slots, pads at (far, 0, 0)."""
    src = torch.cat([rij[p0:p1], rij.new_tensor([[far, 0.0, 0.0]])]).t()
    return src.index_select(1, inv)


def run_sums(rij, kernel, layout):
    """The slot sums without a graph: the C kernel of :mod:`forward_c` where it applies
    (CPU, float32/64, no gradient wanted), else :func:`run_sums_torch`."""
    if forward_c.wanted(rij):
        out = forward_c.slot_sums(rij, kernel, layout.species, layout.i, layout.j,
                                  layout.n, layout.n_el)
        if out is not None:
            return out
    return run_sums_torch(rij, kernel, layout)


def run_sums_torch(rij, kernel, layout):
    """The forward of :class:`SlotSums` in torch (the reference of the C kernel)."""
    rad, dsq, mom = [], [], []
    for c0, c1, _p0, _p1, _slot, K, inv in layout.chunks:
        B = c1 - c0
        x = _gather(rij, _p0, _p1, inv, kernel.rc)
        a, b, c = kernel.sums(x, B, layout.blocks(B, K))
        rad.append(a)
        dsq.append(b)
        mom.append(c)
    E, C, n = layout.n_el, kernel.n_chan, layout.n
    if not rad:
        return (rij.new_zeros((n, E, kernel.n_rad)), rij.new_zeros((n, E, C)),
                rij.new_zeros((n, E, C, kernel.tables.n_top if C else 0)))
    rad = torch.cat(rad)
    if not C:
        return rad, rij.new_zeros((n, E, 0)), rij.new_zeros((n, E, 0, 0))
    return rad, torch.cat(dsq), torch.cat(mom)
