"""C kernels for the triplet symmetry-function sums (``_csrc/triplets.c``), via ctypes.

Same math and conventions as :mod:`nnpot.atomistic.descriptors_triplets` (the reference,
kept as the oracle in the tests): for every centre i and unordered neighbour-element pair,

    out[i, pair, f] = Σ_{j<k} A_l(cos θ_ijk) a_g(r_ij) a_g(r_ik) b_g(r_jk)

(lengths in Å, η in 1/Å²), and the backward gives ∂(Σ d_out · out)/∂r_ij for every pair
vector r_ij [P, 3] (cotangent unit per Å). Pairs must be sorted by centre (as
:func:`nnpot.atomistic.neighbors.neighbor_pairs` guarantees). One call runs over all
centres with ``torch.get_num_threads()`` OpenMP threads.

:func:`forward` and :func:`backward` return ``None`` when the C path does not apply (no
compiler, ``NNPOT_NO_CKERNELS=1``, a non-CPU tensor, a dtype other than float32/float64,
batched (vmap) cotangents); callers then take the torch path. Nothing here builds a graph:
the backward is used only when no higher derivative is needed.
"""

from __future__ import annotations

import ctypes
import math

import torch

from nnpot import ckernels

_SUFFIX = {torch.float64: "f64", torch.float32: "f32"}
MAX_TABLE = 64  # elements, (η, r_s) groups, (λ, ζ) pairs: fixed-size tables in C


def _function(name: str, dtype):
    """The C function ``trip_<name>_<f32|f64>`` with its argtypes, or None."""
    n_ptr = 6 if name == "forward" else 7
    return ckernels.function("triplets", f"trip_{name}_{_SUFFIX[dtype]}",
                             [ctypes.c_void_p] * n_ptr)


def _params(meta, k: int = 1):
    """(int32 table, float64 table) describing the plan for the C side (cached in meta),
    for k cotangents."""
    key = "c_params"
    if key not in meta:
        plan = meta["plan"]
        n_el = meta["pair_id"].shape[0]
        G, L, F = len(plan.groups), len(plan.lz), plan.g_of.shape[0]
        if _kind_code(plan.kind) is None or max(n_el, G, L) > MAX_TABLE:
            meta[key] = None
            return None
        zint = [int(z) if z == int(z) and z >= 1 else -1 for _, z in plan.lz]
        header = [meta["n"], n_el, meta["n_pair"], G, L, F, _kind_code(plan.kind),
                  int(plan.all_g4), 1, 1]  # ..., threads, cotangents (set per call)
        ints = (header + meta["pair_id"].reshape(-1).tolist() + plan.g_of.tolist()
                + plan.lz_of.tolist() + [1 if g[0] == "G4" else 0 for g in plan.groups]
                + zint)
        dbl = ([plan.rc] + [g[1] for g in plan.groups] + [g[2] for g in plan.groups]
               + [lam for lam, _ in plan.lz] + [z for _, z in plan.lz]
               + [2.0 ** (1.0 - z) for _, z in plan.lz])
        if not all(math.isfinite(v) for v in dbl):
            meta[key] = None
            return None
        meta[key] = (torch.tensor(ints, dtype=torch.int32),
                     torch.tensor(dbl, dtype=torch.float64))
    p = meta[key]
    if p is None:
        return None
    ints = p[0].clone()
    ints[8] = max(1, torch.get_num_threads())
    ints[9] = k
    return ints, p[1]


def _kind_code(kind: str):
    """0 for the cosine cutoff, 1 for the polynomial one, None otherwise."""
    return {"cosine": 0, "polynomial": 1}.get(kind)


def _csr(meta):
    """(start [n+1] int64, species of j [P] int32), cached in meta."""
    if "c_csr" not in meta:
        counts = torch.bincount(meta["i"], minlength=meta["n"])
        start = torch.zeros(meta["n"] + 1, dtype=torch.int64)
        torch.cumsum(counts.cpu(), 0, out=start[1:])
        meta["c_csr"] = (start, meta["sj"].to(device="cpu", dtype=torch.int32).contiguous())
    return meta["c_csr"]


def _usable(t) -> bool:
    if t.device.type != "cpu" or t.dtype not in _SUFFIX:
        return False
    try:  # batched (vmap) tensors and tensor subclasses have no plain storage
        t.data_ptr()
    except RuntimeError:
        return False
    return type(t) is torch.Tensor


def forward(rij: torch.Tensor, meta) -> torch.Tensor | None:
    """Triplet sums [n·n_pair, n_fun] for pair vectors rij [P, 3] (Å), or None."""
    if not _usable(rij):
        return None
    fn = _function("forward", rij.dtype)
    params = _params(meta) if fn is not None else None
    if params is None:
        return None
    start, sj = _csr(meta)
    r = rij.detach().contiguous()
    out = torch.empty((meta["n_rows"], params[0][5].item()), dtype=rij.dtype)
    ptr = ckernels.ptr
    if fn(ptr(start), ptr(sj), ptr(r), ptr(params[0]), ptr(params[1]), ptr(out)) != 0:
        raise MemoryError("triplet C kernel: out of memory for its workspace")
    return out


def backward(rij: torch.Tensor, meta, d_out: torch.Tensor) -> torch.Tensor | None:
    """∂(Σ d_out · out)/∂rij [P, 3] for a cotangent d_out [n·n_pair, n_fun] (or [K, P, 3]
    for K cotangents [K, n·n_pair, n_fun], sharing the triplet terms), or None."""
    if torch.is_grad_enabled() or not (_usable(rij) and _usable(d_out)) \
            or d_out.dtype != rij.dtype or d_out.dim() not in (2, 3):
        return None
    k = d_out.shape[0] if d_out.dim() == 3 else 1
    fn = _function("backward", rij.dtype)
    params = _params(meta, k) if fn is not None and k > 0 else None
    if params is None:
        return None
    start, sj = _csr(meta)
    r, d = rij.detach().contiguous(), d_out.contiguous()
    grad = r.new_empty((k, *r.shape) if d_out.dim() == 3 else r.shape)
    ptr = ckernels.ptr
    if fn(ptr(start), ptr(sj), ptr(r), ptr(params[0]), ptr(params[1]), ptr(d),
          ptr(grad)) != 0:
        raise MemoryError("triplet C kernel: out of memory for its workspace")
    return grad
