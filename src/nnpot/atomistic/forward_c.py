"""C kernels for the descriptor forward without a graph: the slot sums of
:mod:`~nnpot.atomistic.descriptors_moments` and the factorised G5 contraction of
:mod:`~nnpot.atomistic.descriptors_fast` (``FastPlan._g5``).

Slot sums (:func:`slot_sums`, same quantities as ``run_sums_torch``): for every centre i and
neighbour element E, over the pairs j ∈ E of i (r_ij in Å, r̂ = r_ij / r_ij)

    rad[i,E,r]   = Σ_j exp(-η_r (r_ij - s_r)²) f_c(r_ij)                     (G2 values)
    dsq[i,E,c]   = Σ_j g_c(r_ij)²,  g_c = exp(-η_c (r_ij - s_c)²) f_c(r_ij)
    mom[i,E,c,α] = Σ_j g_c(r_ij) r̂^α   for the monomials of degree L-1 and L

(η in 1/Å², s in Å; all three are dimensionless). The compiled ``_csrc/forward.c`` works
from the centre-sorted pair list directly (centre ranges by binary search, neighbour
elements from species[j]; no padded :class:`Layout`), one centre per OpenMP iteration,
the centre's pair vectors bucketed by element and taken one SIMD vector at a time.

G5 (:func:`g5`): per centre, the weighted moments of all degrees m = mom·T (T sparse), the
per-degree products S_d = Σ_{|α|=d} m_A,α m_B,α for every element pair (A, B), and the G5
columns ½^[A=B] (Σ_{c,d} S W − [A=B] dsq_A·Wd) (see :mod:`descriptors_fast` for the math).

Both accumulate in the input precision (float32 or float64). They are used on CPU for
float32/float64 when no gradient is wanted (grad mode off, or no input requires grad), the
kernel builds, and neither ``NNPOT_NO_CKERNELS`` nor ``NNPOT_NO_C_FORWARD`` is set to
1/yes/true (the second switches off these kernels alone, e.g. to time them against the
torch path with the C pullback still on). Otherwise, and when the pair list is not sorted
by centre, the torch path runs (it stays the reference, the GPU and the training path).
Nothing here is differentiable.

Outputs of 8 MiB and more come from :func:`nnpot.ckernels.empty` (own mappings advised for
transparent huge pages: a fresh 4 KiB-paged block costs one page fault per page on first
touch, ~10x the time of writing it).
"""

from __future__ import annotations

import ctypes
import os

import torch

from nnpot import ckernels

_SUFFIX = {torch.float64: "f64", torch.float32: "f32"}
ENV_OFF = "NNPOT_NO_C_FORWARD"


def library():
    """The compiled ``forward`` kernel library, or None (then use the torch path)."""
    return ckernels.load("forward")


def _function(dtype):
    """``slot_sums_<f32|f64>`` with its ctypes signature, or None."""
    return ckernels.function("forward", f"slot_sums_{_SUFFIX[dtype]}",
                             [ctypes.c_void_p, ctypes.c_double] + [ctypes.c_void_p] * 11)


def switched_off() -> bool:
    """True when ``NNPOT_NO_C_FORWARD`` is set to a true value (1, yes, true)."""
    return os.environ.get(ENV_OFF, "").strip().lower() in {"1", "yes", "true"}


def usable(ref: torch.Tensor) -> bool:
    """True when the C kernel applies to tensors like ``ref`` (a plain CPU float32/64
    tensor, C kernels on, this kernel not switched off, the library built)."""
    if (ref.device.type != "cpu" or ref.dtype not in _SUFFIX or type(ref) is not torch.Tensor
            or ckernels.disabled() or switched_off()):
        return False
    try:  # batched (vmap) and functorch-wrapped tensors have no plain storage
        ref.data_ptr()
    except RuntimeError:
        return False
    return library() is not None


def wanted(*inputs: torch.Tensor) -> bool:
    """True when results from these inputs should come from C: :func:`usable` for each,
    and no gradient is wanted (grad mode off, or none of them requires grad)."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        return False
    return all(usable(t) for t in inputs)


def _constants(kernel, ref):
    """(η_rad, s_rad, η_ang, s_ang) of a SlotKernel in ref's dtype (cached on it)."""
    cache = kernel.__dict__.setdefault("_c_forward", {})
    if ref.dtype not in cache:
        def col(ch, k):
            return torch.tensor([c[k] for c in ch] or [0.0], dtype=ref.dtype)

        cache[ref.dtype] = (col(kernel.radial, 0), col(kernel.radial, 1),
                            col(kernel.chans, 0), col(kernel.chans, 1))
    return cache[ref.dtype]


def _index(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.int64).contiguous()


def slot_sums(rij: torch.Tensor, kernel, species: torch.Tensor, i: torch.Tensor,
              j: torch.Tensor, n: int, n_el: int):
    """(rad [n,E,R], dsq [n,E,C], mom [n,E,C,M_top]) of pair vectors rij [P,3] (Å) for the
    centre-sorted pair list (i, j) and atom elements ``species`` [n] (see the module doc),
    or None when the pair list is not sorted by centre or holds an index out of range (the
    caller then takes the torch path). Call only where :func:`usable` holds."""
    R, C = kernel.n_rad, kernel.n_chan
    t = kernel.tables
    L, top0, Mt = (t.L, t.top[0], t.n_top) if C else (0, 0, 0)
    with torch.no_grad():
        r = rij.detach().contiguous()
        rad = ckernels.empty((n, n_el, R), r.dtype)
        dsq = ckernels.empty((n, n_el, C), r.dtype)
        mom = ckernels.empty((n, n_el, C, Mt), r.dtype)  # 800 B per atom in float64
        if n == 0:
            return rad, dsq, mom
        dims = torch.tensor([n, r.shape[0], n_el, R, C, L, top0, Mt,
                             int(kernel.kind == "cosine"), torch.get_num_threads()],
                            dtype=torch.int64)
        ci, cj, sp = _index(i), _index(j), _index(species)
        eta_r, s_r, eta_a, s_a = _constants(kernel, r)
        p = ckernels.ptr
        rc = _function(r.dtype)(p(dims), float(kernel.rc), p(r), p(ci), p(cj), p(sp),
                                p(eta_r), p(s_r), p(eta_a), p(s_a), p(rad), p(dsq), p(mom))
    if rc == -1:
        raise MemoryError("the C slot-sum kernel could not allocate its buffers")
    if rc != 0:
        return None
    return rad, dsq, mom


def _g5_function(dtype):
    """``g5_<f32|f64>`` with its ctypes signature, or None."""
    return ckernels.function("forward", f"g5_{_SUFFIX[dtype]}", [ctypes.c_void_p] * 14)


def _g5_constants(plan, ref):
    """Sparse T (by column), the first column of each degree, pairs and weights of a
    FastPlan in ref's dtype (cached on it)."""
    key = ("c_forward_g5", ref.dtype)
    if key not in plan._cache:
        T = plan.consts["T"]  # [M_top, n_all]
        cols = [torch.nonzero(T[:, a]).flatten() for a in range(T.shape[1])]
        i64 = dict(dtype=torch.int64)
        plan._cache[key] = dict(
            t_ptr=torch.tensor([0] + [len(c) for c in cols], **i64).cumsum(0),
            t_row=torch.cat(cols).to(torch.int64),
            t_val=torch.cat([T[c, a] for a, c in enumerate(cols)]).to(ref.dtype),
            doff=torch.cat([torch.zeros(1, **i64),  # columns are ordered by degree
                            plan.consts["deg_ind"].sum(0).to(torch.int64).cumsum(0)]),
            pa=torch.tensor([a for a, _ in plan.pairs], **i64),
            pb=torch.tensor([b for _, b in plan.pairs], **i64),
            **{k: plan.consts[k].to(ref.dtype).contiguous()
               for k in ("W", "Wd", "half", "same")})
    return plan._cache[key]


def g5(plan, dsq: torch.Tensor, mom: torch.Tensor):
    """The factorised G5 columns [n, n_pairs, n_fact] of a FastPlan (its ``_g5``) from the
    slot sums dsq [n,E,C] and mom [n,E,C,M_top] (dimensionless), or None when the kernel is
    not there. Call only where :func:`usable` holds."""
    fn = _g5_function(mom.dtype)
    if fn is None:
        return None
    st = _g5_constants(plan, mom)
    n, E, C, Mt = mom.shape
    D, nf = plan.consts["W"].shape[0] // C, plan.consts["W"].shape[1]
    with torch.no_grad():
        m, d = mom.detach().contiguous(), dsq.detach().to(mom.dtype).contiguous()
        out = ckernels.empty((n, len(plan.pairs), nf), m.dtype)
        if n == 0:
            return out
        dims = torch.tensor([n, E, C, Mt, plan.consts["T"].shape[1], D, len(plan.pairs), nf,
                             torch.get_num_threads()], dtype=torch.int64)
        p = ckernels.ptr
        rc = fn(p(dims), p(m), p(d), *(p(st[k]) for k in (
            "t_ptr", "t_row", "t_val", "doff", "pa", "pb", "W", "Wd", "half", "same")), p(out))
    if rc != 0:
        raise MemoryError("the C G5 kernel could not allocate its buffers")
    return out
