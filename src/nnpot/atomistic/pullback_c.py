"""C kernel for the K vector-Jacobian products of :class:`~descriptors_vjp.Pullback`.

Same math as :mod:`nnpot.atomistic.descriptors_vjp` (see its docstring). The compiled kernel
``_csrc/pullback.c`` takes the cotangents c [K, n, F] as they are and does everything per
centre (OpenMP over centres): the adjoint of the G5 contraction (dS_d = h W_d·c,
d_dsq = −h Wd·c, d_mom = Σ_t f_t Q_d m_o · dS_d, the ∂r̂^m polynomial coefficients), then,
for the centre's pairs grouped by neighbour element in blocks of one SIMD vector, the slot
basis (r, r̂, f_c, g, g', monomials of r̂: once per pair, not per cotangent), the K dot
products, the tangential projection and the accumulation into position gradients
(∂/∂r_j += v, ∂/∂r_i −= v; private buffers per thread) and per-centre virials
W[a, b] = Σ_p r_p,a v_p,b. The products Q_d m of the centre's top moments are formed per
centre in the kernel too (Q is ~4 % nonzeros: it is passed as a list of them), so nothing of
size [n, C, E, D, M_top] is built. Results are in cotangent units per Å (virial: cotangent
units).

Used on CPU for float32/float64 when :func:`nnpot.ckernels.load` builds the
kernel; otherwise (GPU, other dtypes, no compiler, ``NNPOT_NO_CKERNELS=1``) the torch path
of :mod:`descriptors_vjp` runs (it stays the reference). Triplet-route columns are not
handled here (the caller adds them). Nothing here is differentiable.
"""

from __future__ import annotations

import ctypes

import torch

from nnpot import ckernels
from nnpot.errors import InputError

_SUFFIX = {torch.float64: "f64", torch.float32: "f32"}


def library():
    """The compiled ``pullback`` kernel library, or None (then use the torch path)."""
    return ckernels.load("pullback")


def _function(dtype):
    """``pullback_atoms_<f32|f64>`` with its ctypes signature, or None."""
    return ckernels.function("pullback", f"pullback_atoms_{_SUFFIX[dtype]}",
                             [ctypes.c_void_p, ctypes.c_double] + [ctypes.c_void_p] * 27)


def usable(ref: torch.Tensor) -> bool:
    """True when the C kernel applies to tensors like ``ref`` (CPU, float32/64, built)."""
    return (ref.device.type == "cpu" and ref.dtype in _SUFFIX and not ckernels.disabled()
            and library() is not None)


def _constants(pb):
    """Inputs that depend only on the descriptor plan and the dtype (cached on the plan)."""
    plan, ref = pb.plan, pb.rij
    key = ("pullback_c", ref.dtype, ref.device)
    st = plan._cache.get(key)
    if st is not None:
        return st
    kern, spec = plan.kernel, plan.spec
    dev, dt = ref.device, ref.dtype
    E = pb.E
    i64 = dict(dtype=torch.int64, device=dev)
    chans = []
    for k in plan.fact:
        key_c = (spec.angular[k][1], spec.angular[k][4])
        if key_c not in chans:
            chans.append(key_c)
    C = kern.n_chan
    t = kern.tables
    st = {
        "rad_eta": torch.tensor([c[0] for c in spec.radial], dtype=dt, device=dev),
        "rad_rs": torch.tensor([c[1] for c in spec.radial], dtype=dt, device=dev),
        "ang_eta": torch.tensor([c[0] for c in chans] or [0.0], dtype=dt, device=dev),
        "ang_rs": torch.tensor([c[1] for c in chans] or [0.0], dtype=dt, device=dev),
        "cosine": int(kern.kind == "cosine"),
    }
    if C:
        from nnpot.atomistic.descriptors_vjp import _q_table

        terms = [pb._terms(e) for e in range(E)]
        flat = [x for tl in terms for x in tl]
        q = _q_table(plan, ref)  # [M_top, D·M_top], ~4 % nonzeros
        rows, cols = torch.nonzero(q, as_tuple=True)
        st.update(
            term_ptr=torch.tensor([0] + [len(tl) for tl in terms], **i64).cumsum(0),
            term_pair=torch.tensor([p for p, _, _ in flat], **i64),
            term_oth=torch.tensor([o for _, o, _ in flat], **i64),
            term_fac=torch.tensor([f for _, _, f in flat], dtype=dt, device=dev),
            low_idx=kern.const("low_idx_lx", ref).to(torch.int64).contiguous(),
            low_fac=kern.const("low_fac_lx", ref).contiguous(),
            diag=torch.tensor([plan.pairs.index((e, e)) for e in range(E)], **i64),
            fact=torch.tensor(plan.fact, **i64),
            q_row=rows.to(torch.int64).contiguous(), q_col=cols.to(torch.int64).contiguous(),
            q_val=q[rows, cols].contiguous(),
            W=plan._c("W", ref).contiguous(), Wd=plan._c("Wd", ref).contiguous(),
            half=plan._c("half", ref).contiguous(),
            dims=(plan.consts["deg_ind"].shape[1], t.n_top, t.n_low, t.L, t.top[0],
                  t.low[0]),
        )
    else:
        z = torch.zeros(1, **i64)
        zr = ref.new_zeros(1)
        st.update(term_ptr=torch.zeros(E + 1, **i64), term_pair=z, term_oth=z,
                  term_fac=zr, low_idx=z, low_fac=zr, diag=z, fact=z, q_row=z, q_col=z,
                  q_val=zr, W=zr, Wd=zr, half=zr, dims=(0, 0, 0, 0, 0, 0))
    st["nq"] = st["q_val"].numel() if C else 0
    plan._cache[key] = st
    return st


def _static(pb):
    """Cotangent-independent inputs of a Pullback: the pair list's (cached on it), and the
    plan's constants (:func:`_constants`)."""
    st = getattr(pb, "_c_static", None)
    if st is not None:
        return st
    n = pb.n
    if pb.j.numel():  # the kernel reads species[j] and writes row j: never out of range
        lo, hi = torch.aminmax(pb.j)
        if int(lo) < 0 or int(hi) >= n:
            raise InputError(f"pair list names neighbour atoms {int(lo)}..{int(hi)} "
                             f"outside 0..{n - 1}")
    counts = torch.bincount(pb.i, minlength=n)
    ptr = torch.zeros(n + 1, dtype=torch.int64, device=pb.rij.device)
    torch.cumsum(counts, 0, out=ptr[1:])
    # per atom, not per pair: species[j] would be a [P] array (45 MB at 66k waters) per call
    st = dict(_constants(pb), rij=pb.rij.contiguous(), ptr=ptr,
              j=pb.j.to(torch.int64).contiguous(),
              species=pb.species.to(torch.int64).contiguous())
    pb._c_static = st
    return st


def _run(pb, cot, virial: bool, per_pair: bool):
    """(grad [K, n, 3] or None, vir [K, n, 3, 3] or None, v [P, K, 3] or None) of cot
    [K, n, F]: gradients and virials, or (``per_pair``) the products per pair."""
    st = _static(pb)
    plan, ref = pb.plan, pb.rij
    n, E, K = pb.n, pb.E, cot.shape[0]
    kern = plan.kernel
    C, R = kern.n_chan, kern.n_rad
    P = ref.shape[0]
    cot = cot.to(ref.dtype).contiguous()
    D, Mt, nl, L, top0, low0 = st["dims"]
    mom = pb.mom.contiguous() if C else ref.new_zeros(1)  # [n, E, C, Mt]
    grad = None if per_pair else ref.new_empty((K, n, 3))
    vir = ref.new_empty((K, n, 3, 3)) if virial and not per_pair else None
    pout = ref.new_empty((P, K, 3)) if per_pair else None
    dims = torch.tensor([n, P, K, E, R, C, D, Mt, nl, L, top0, low0, max(len(plan.pairs), 1),
                         cot.shape[2], st["cosine"], torch.get_num_threads(), len(plan.fact),
                         len(plan.spec.angular), st["nq"]], dtype=torch.int64)
    fn = _function(ref.dtype)
    p = ckernels.ptr

    def opt(t):
        return None if t is None else p(t)

    rc = fn(p(dims), float(kern.rc), p(st["rij"]), p(st["ptr"]), p(st["j"]), p(st["species"]),
            p(cot), p(st["W"]), p(st["Wd"]), p(st["half"]), p(st["fact"]), p(st["diag"]),
            p(mom), p(st["q_row"]), p(st["q_col"]), p(st["q_val"]), p(st["term_ptr"]),
            p(st["term_pair"]), p(st["term_oth"]), p(st["term_fac"]),
            p(st["low_idx"]), p(st["low_fac"]), p(st["rad_eta"]), p(st["rad_rs"]),
            p(st["ang_eta"]), p(st["ang_rs"]), opt(grad), opt(vir), opt(pout))
    if rc != 0:
        raise MemoryError("the C pullback kernel could not allocate its buffers")
    return grad, vir, pout


def atoms(pb, cot: torch.Tensor, virial: bool = True):
    """(∂/∂positions [K, n, 3], per-centre virial [K, n, 3, 3] or None) of the radial and
    factorised columns for cot [K, n, F] (cotangent unit per Å; virial × Å/Å)."""
    grad, vir, _ = _run(pb, cot, virial, per_pair=False)
    return grad, vir


def pairs(pb, cot: torch.Tensor) -> torch.Tensor:
    """v [P, K, 3] = Σ_f c_k[i(p), f] ∂G_{i(p), f}/∂r_p of the radial and factorised columns
    for cot [K, n, F] (cotangent unit per Å)."""
    return _run(pb, cot, False, per_pair=True)[2]
