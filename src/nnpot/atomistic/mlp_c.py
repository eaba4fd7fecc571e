"""C kernel for a committee's member networks: outputs and input gradients in one pass.

For the ``M`` member MLPs of one element (:class:`~nnpot.atomistic.model.ElementMLP`) on
the scaled symmetry functions of that element's atoms, ``x = (G[idx][:, cols] − μ) / σ``,
:func:`element_outputs` returns the raw network outputs ``y`` (M, n_e, n_out) and writes
the first output's gradient, scaled per column,

    dedg[m, idx[a], cols[f]] = colscale[f] · ∂y[m, a, 0]/∂x[a, f]

into the caller's (M, N, F) tensor (with colscale = s/σ this is ∂E_m/∂G in eV per feature
unit). The compiled ``_csrc/mlp.c`` fuses forward and backward per block of atoms (the
activations stay in cache; no autograd graph, no (M, n, H) temporaries). It is the fast
route of :meth:`NNP._committee <nnpot.atomistic.model.NNP._committee>` on CPU for float32
/ float64 with silu or tanh activations and at least one hidden layer; elsewhere (GPU,
other activations, ``NNPOT_NO_CKERNELS=1``, no compiler) autograd through the same
networks is used (it stays the reference). Nothing here is differentiable.
"""

from __future__ import annotations

import ctypes

import torch

from nnpot import ckernels

_SUFFIX = {torch.float64: "f64", torch.float32: "f32"}
_ACT = {"silu": 0, "tanh": 1}


def _function(dtype):
    """``mlp_committee_<f32|f64>`` with its ctypes signature, or None."""
    return ckernels.function("mlp", f"mlp_committee_{_SUFFIX[dtype]}", [ctypes.c_void_p] * 11)


def usable(head, ref: torch.Tensor) -> bool:
    """True when the kernel can evaluate ``head`` (an ElementMLP) on tensors like ``ref``."""
    return (ref.device.type == "cpu" and ref.dtype in _SUFFIX and not ckernels.disabled()
            and head.activation in _ACT and len(head.weights) >= 2
            and all(w.dtype == ref.dtype and w.device == ref.device for w in head.weights)
            and _function(ref.dtype) is not None)


def element_outputs(head, g: torch.Tensor, idx: torch.Tensor, cols: torch.Tensor,
                    mean: torch.Tensor, std: torch.Tensor, colscale: torch.Tensor,
                    dedg: torch.Tensor) -> torch.Tensor:
    """Raw outputs y (M, n_e, n_out) of ``head`` at x = (g[idx][:, cols] − mean) / std, and
    dedg[:, idx[:, None], cols] = colscale · ∂y[..., 0]/∂x written in place (see the module
    docstring). ``g`` (N, F) and ``dedg`` (M, N, F) contiguous, of ``head``'s dtype; call only
    where :func:`usable` holds."""
    ws = list(head.weights)
    bs = list(head.biases)
    m, n_out = ws[0].shape[0], ws[-1].shape[2]
    ne, dt = idx.numel(), g.dtype
    y = g.new_empty((m, ne, n_out))
    if ne == 0:
        return y
    with torch.no_grad():
        ws = [w.detach().contiguous() for w in ws]
        bs = [b.detach().contiguous() for b in bs]
        sizes = torch.tensor([ws[0].shape[1]] + [w.shape[2] for w in ws], dtype=torch.int64)
        wptr = torch.tensor([t.data_ptr() for pair in zip(ws, bs, strict=True) for t in pair],
                            dtype=torch.int64)
        i64 = [idx.to(torch.int64).contiguous(), cols.to(torch.int64).contiguous()]
        fl = [mean.to(dt).contiguous(), (1.0 / std).to(dt).contiguous(),
              colscale.to(dt).contiguous()]
        dims = torch.tensor([ne, g.shape[1], cols.numel(), m, len(ws), n_out,
                             _ACT[head.activation], torch.get_num_threads(), g.shape[0]],
                            dtype=torch.int64)
        p = ckernels.ptr
        rc = _function(dt)(p(dims), p(sizes), p(wptr), p(g), p(i64[0]), p(i64[1]), p(fl[0]),
                           p(fl[1]), p(fl[2]), p(y), p(dedg))
    if rc != 0:
        raise MemoryError("the C committee-network kernel could not allocate its buffers")
    return y
