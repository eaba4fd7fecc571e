"""Vectorised symmetry functions (see :mod:`nnpot.atomistic.descriptors` for the math).

G2 and G5 with integer ζ ≤ MAX_FACTORISED_ZETA take the factorised route: with
(1 + λ cos θ)^ζ = Σ_d C(ζ,d) λ^d cos^d θ and cos^d θ_jk = Σ_{|α|=d} (d!/α!) r̂_j^α r̂_k^α
(multinomial theorem),

    Σ_{j∈A, k∈B} g(r_ij) g(r_ik) cos^d θ_jk = Σ_{|α|=d} M^A_α M^B_α,
    M^E_α = sqrt(d!/α!) Σ_{j∈E} g(r_ij) r̂_ij^α                (per-centre moments),

so G5 costs O(neighbours) per atom. The j = k terms (A = B only) equal (1+λ)^ζ Σ_j g(r_ij)²
and are subtracted; halving gives the j<k sum. The slot sums (radial values, Σg², moments)
come from :mod:`descriptors_moments` (hand-written, chunked backward); the per-centre
contractions here are plain autograd ops (without a graph on a CPU, the slot sums and the
G5 contraction run in the C kernels of :mod:`forward_c`). G4 and other G5 use explicit
triplets (:mod:`descriptors_triplets`).
"""

from __future__ import annotations

import math

import torch

from nnpot.atomistic import forward_c
from nnpot.atomistic.descriptors_moments import Layout, MomentTables, SlotKernel, SlotSums, run_sums
from nnpot.atomistic.descriptors_triplets import triplet_features

MAX_FACTORISED_ZETA = 8  # (ζ+1)² moments per slot and channel; triplets beyond
G5_CENTRES = 4096  # centres per block of the per-centre G5 contraction (CPU)
G5_CENTRES_GPU = 1 << 17  # on a GPU: one block up to 131,072 centres


class FastPlan:
    """Precomputed tables for one DescriptorSpec; call with (species, i, j, rij)."""

    def __init__(self, spec):
        self.spec = spec
        self.n_el = len(spec.elements)
        self.pairs = spec.element_pairs()
        fact, trip = [], []
        for k, (typ, _eta, zeta, _lam, _rs) in enumerate(spec.angular):
            if typ == "G5" and zeta == int(zeta) and zeta <= MAX_FACTORISED_ZETA:
                fact.append(k)
            else:
                trip.append(k)
        self.fact, self.trip = fact, trip
        chans = []
        for k in fact:
            key = (spec.angular[k][1], spec.angular[k][4])
            if key not in chans:
                chans.append(key)
        L = max([int(spec.angular[k][2]) for k in fact], default=0)
        self.tables = MomentTables(L) if fact else None
        self.kernel = SlotKernel(spec.cutoff, spec.cutoff_function, spec.radial, chans,
                                 self.tables)
        C, nf, D = len(chans), len(fact), L + 1
        # G5[pair, k] = half_p (Σ_{c,d} S[pair,c,d] W[(c,d),k] - same_p Σ_c dsq[a,c] Wd[c,k])
        W = torch.zeros(C * D, nf, dtype=torch.float64)
        Wd = torch.zeros(C, nf, dtype=torch.float64)
        for n, k in enumerate(fact):
            _, eta, zeta, lam, rs = spec.angular[k]
            c, z = chans.index((eta, rs)), int(zeta)
            pre = 2.0 ** (1.0 - z)
            for d in range(z + 1):
                W[c * D + d, n] = pre * math.comb(z, d) * lam**d
            Wd[c, n] = pre * (1.0 + lam) ** z
        self.consts = {
            "W": W, "Wd": Wd,
            "half": torch.tensor([0.5 if a == b else 1.0 for a, b in self.pairs],
                                 dtype=torch.float64),
            "same": torch.tensor([1.0 if a == b else 0.0 for a, b in self.pairs],
                                 dtype=torch.float64),
        }
        if self.tables is not None:
            self.consts["T"] = self.tables.T
            self.consts["deg_ind"] = self.tables.deg_ind
        order = fact + trip
        self.ang_perm = [order.index(k) for k in range(len(spec.angular))]
        self._cache = {}

    def _c(self, name, ref):
        key = (name, ref.dtype, ref.device)
        if key not in self._cache:
            self._cache[key] = self.consts[name].to(ref.device, ref.dtype)
        return self._cache[key]

    def __call__(self, species, i, j, rij):
        spec = self.spec
        n, E = species.shape[0], self.n_el
        layout = Layout(species, i, j, n, E)  # padded slots built only if torch needs them
        if torch.is_grad_enabled() and rij.requires_grad:
            rad, dsq, mom = SlotSums.apply(rij, self.kernel, layout)
        else:  # no graph: run_sums takes the C kernel (forward_c) where it applies
            rad, dsq, mom = run_sums(rij, self.kernel, layout)
        g2 = rad.reshape(n, E * len(spec.radial))
        if not spec.angular:
            return g2
        parts = []
        if self.fact:  # per block of centres: the moment arrays stay in cache
            blk = G5_CENTRES if rij.device.type == "cpu" else G5_CENTRES_GPU
            parts.append(torch.cat([self._g5(rij, dsq[c:c + blk], mom[c:c + blk])
                                    for c in range(0, n, blk)]) if n > blk
                         else self._g5(rij, dsq, mom))
        if self.trip:
            params = [spec.angular[k] for k in self.trip]
            parts.append(triplet_features(spec, params, species, i, j, rij, n))
        ang = torch.cat(parts, 2)[:, :, self.ang_perm] if len(parts) > 1 else parts[0]
        return torch.cat([g2, ang.reshape(n, -1)], 1)

    def _g5(self, ref, dsq, mom_top):
        if forward_c.wanted(dsq, mom_top):  # no graph on a CPU: the C contraction
            out = forward_c.g5(self, dsq, mom_top)
            if out is not None:
                return out
        n = mom_top.shape[0]
        mom = mom_top @ self._c("T", ref)  # weighted moments of all degrees [n, E, C, M]
        a = [p[0] for p in self.pairs]
        b = [p[1] for p in self.pairs]
        S = (mom[:, a] * mom[:, b]) @ self._c("deg_ind", ref)  # [n, npair, C, D]
        G = S.reshape(n, len(self.pairs), -1) @ self._c("W", ref)
        diag = dsq[:, a] @ self._c("Wd", ref)  # [n, npair, nf]
        return self._c("half", ref)[:, None] * (G - self._c("same", ref)[:, None] * diag)
