"""Behler–Parrinello model: per-element MLPs on symmetry functions, E = Σ_i E_i.

    E = Σ_i [ E_ref(Z_i) + s · NN_{Z_i}( (G_i − μ_{Z_i}) / σ_{Z_i} ) ]  (+ physical tails)

``G_i`` are the symmetry functions of atom ``i`` (``nnpot.atomistic.descriptors``), ``μ``
and ``σ`` per-element feature statistics of the training set, ``E_ref`` per-element
reference energies (least squares before training, or isolated-atom energies) and ``s``
the spread of the atomic-energy residuals. A *committee* is the same model with ``M``
member networks evaluated on one shared descriptor computation (``n_members``); ``M = 1``
is a plain model. Forces ``F = −∂E/∂r`` and stress ``σ = (1/V) ∂E/∂ε`` come from one
autograd pass in :meth:`NNP.compute` (eV, Å, eV/Å, eV/Å³).

Training uses the same network with precomputed descriptor Jacobians
``J_p = ∂G_{i(p)}/∂r_p`` (each pair vector feeds only its centre's features), so per-member
forces are a contraction ``∂E_m/∂r_p = (∂E_m/∂G_{i(p)}) · J_p`` (:func:`forces_from_jacobian`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from nnpot import ckernels
from nnpot.atomistic import mlp_c, pullback_c
from nnpot.atomistic.descriptors import DescriptorSpec, SymmetryFunctions
from nnpot.atomistic.neighbors import Batch, pair_vectors, strained

ACTIVATIONS = {"silu": nn.functional.silu, "tanh": torch.tanh,
               "softplus": nn.functional.softplus, "gelu": nn.functional.gelu}


class ElementMLP(nn.Module):
    """``M`` independent MLPs of the same shape for one element, evaluated together.

    Input (n, F) -> output (M, n, n_out). Weights (M, in, out); smooth activation.
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_members: int, n_out: int,
                 activation: str, generator: torch.Generator | None = None):
        super().__init__()
        sizes = [n_in, *hidden, n_out]
        self.activation = activation
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            std = 1.0 / math.sqrt(max(a, 1))
            if k == len(sizes) - 2:
                std *= 0.1  # small initial outputs: the model starts near E_ref
            w = torch.randn(n_members, a, b, generator=generator, dtype=torch.float64) * std
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n_members, 1, b, dtype=torch.float64)))

    def last_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Activations feeding the output layer, (M, n, H_last) (features for active
        learning: the output is linear in them)."""
        act = ACTIVATIONS[self.activation]
        m = self.weights[0].shape[0]
        h = x.unsqueeze(0).expand(m, -1, -1) if x.dim() == 2 else x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = act(torch.baddbmm(b, h, w))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.biases[-1], self.last_hidden(x), self.weights[-1])


class Output(NamedTuple):
    """Model outputs. Leading axis ``M`` is the committee member (M = 1 for one model).

    energy (M, B) eV; energies (M, N) eV per atom; forces (N, 3) eV/Å (committee mean);
    stress (B, 3, 3) eV/Å³ (mean; None unless asked); member_forces (M, N, 3) when asked;
    log_var (M, B) log aleatoric energy variance (eV²) when the model has that head;
    features (N, F) the symmetry functions (for out-of-domain checks).
    """

    energy: torch.Tensor
    energies: torch.Tensor
    forces: torch.Tensor | None = None
    stress: torch.Tensor | None = None
    member_forces: torch.Tensor | None = None
    member_stress: torch.Tensor | None = None
    log_var: torch.Tensor | None = None
    features: torch.Tensor | None = None


class NNP(nn.Module):
    """A Behler–Parrinello neural-network potential (optionally a committee)."""

    def __init__(self, spec: DescriptorSpec, hidden: Sequence[int] = (25, 25),
                 activation: str = "silu", n_members: int = 1, aleatoric: bool = False,
                 seed: int = 0, tail: nn.Module | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from "
                             f"{sorted(ACTIVATIONS)}")
        self.spec = spec
        self.elements = tuple(spec.elements)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.n_members = int(n_members)
        self.aleatoric = bool(aleatoric)
        self.descriptor = SymmetryFunctions(spec)
        n_el, n_feat = len(self.elements), spec.n_features()
        self.register_buffer("feature_mean", torch.zeros(n_el, n_feat, dtype=torch.float64))
        self.register_buffer("feature_std", torch.ones(n_el, n_feat, dtype=torch.float64))
        self.register_buffer("e_ref", torch.zeros(n_el, dtype=torch.float64))
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))
        gen = torch.Generator().manual_seed(int(seed))
        self.heads = nn.ModuleList()
        for k, el in enumerate(self.elements):
            cols = torch.tensor(spec.columns_for(el), dtype=torch.int64)
            self.register_buffer(f"columns_{k}", cols)
            self.heads.append(ElementMLP(len(cols), self.hidden, self.n_members,
                                         2 if self.aleatoric else 1, activation, gen))
        if tail is not None and hasattr(tail, "set_members"):
            tail.set_members(self.n_members, seed)  # learned tails: one set per member
        self.tail = tail

    # --- pieces -------------------------------------------------------------------
    def columns(self, k: int) -> torch.Tensor:
        return getattr(self, f"columns_{k}")

    def features(self, batch: Batch, rij: torch.Tensor) -> torch.Tensor:
        """Symmetry functions (N, F) from pair vectors ``rij`` (P, 3)."""
        return self.descriptor(batch.species, batch.i, batch.j, rij)

    def scaled_inputs(self, species: torch.Tensor, g: torch.Tensor):
        """Per element: (atom indices, scaled inputs (n_e, F_e))."""
        out = []
        for k in range(len(self.elements)):
            idx = torch.nonzero(species == k).squeeze(1)
            cols = self.columns(k)
            x = (g[idx][:, cols] - self.feature_mean[k, cols]) / self.feature_std[k, cols]
            out.append((idx, x))
        return out

    def atomic_outputs(self, species: torch.Tensor, inputs) -> tuple[torch.Tensor, ...]:
        """Atomic energies (M, N) eV and, with the aleatoric head, per-atom variance
        contributions (M, N) eV² (softplus, so positive)."""
        n = species.shape[0]
        dtype = self.e_ref.dtype
        e = torch.zeros(self.n_members, n, dtype=dtype, device=species.device)
        v = torch.zeros_like(e) if self.aleatoric else None
        for k, (idx, x) in enumerate(inputs):
            if idx.numel() == 0:
                continue
            ek, vk = self._from_head(k, self.heads[k](x))
            e = e.index_copy(1, idx, ek)
            if self.aleatoric:
                v = v.index_copy(1, idx, vk)
        return e, v

    def _from_head(self, k: int, y: torch.Tensor):
        """Atomic energies (eV) and aleatoric variances (eV², or None) of element ``k``'s
        atoms from its network's raw outputs ``y`` (..., n_out). An atom without neighbours
        (all G = 0) gets exactly E_ref in every member, so separated atoms are the zero of
        the interaction energy: E -> Σ E_ref as r -> ∞."""
        cols = self.columns(k)
        y0 = self.heads[k]((-self.feature_mean[k, cols] / self.feature_std[k, cols])[None])
        e = (y[..., 0] - y0[..., 0]) * self.energy_scale + self.e_ref[k]
        if not self.aleatoric:
            return e, None
        return e, nn.functional.softplus(y[..., 1]) * self.energy_scale**2 + 1e-12

    def structure_sum(self, per_atom: torch.Tensor, batch: torch.Tensor, n_struct: int):
        out = torch.zeros(per_atom.shape[0], n_struct, dtype=per_atom.dtype,
                          device=per_atom.device)
        return out.index_add(1, batch, per_atom)

    def tail_energy(self, batch: Batch, positions, cell) -> torch.Tensor | None:
        if self.tail is None:
            return None
        return self.tail(batch, positions, cell)

    # --- full evaluation ------------------------------------------------------------
    def compute(self, batch: Batch, forces: bool = True, stress: bool = False,
                member_forces: bool = False, create_graph: bool = False) -> Output:
        """Energies, forces and stress of a batch by one autograd pass (eV, eV/Å, eV/Å³).

        ``member_forces`` also returns each committee member's forces: without
        ``create_graph`` all members come from one descriptor pullback (:meth:`_committee`),
        otherwise from one extra backward pass per member. Without ``create_graph`` on a
        CPU with the C kernel, plain forces and stress take the same pullback with the
        members' mean as the one cotangent (forces come back detached, and so do energies
        where the fused network kernel of :mod:`mlp_c` runs). Stress is returned
        only for fully periodic structures' rows (others get NaN).
        """
        if not create_graph and hasattr(self.descriptor, "pullback") and (
                member_forces or ((forces or stress) and pullback_c.usable(batch.positions))):
            # one cotangent per member (or one for the mean) through the descriptor's
            # pullback; plain forces only where the C kernel runs it (CPU): 30-37 % faster
            # than autograd there, and on a GPU autograd stays
            return self._committee(batch, stress, member_forces)
        pos0 = batch.positions
        if forces or member_forces:
            pos0 = pos0.detach().requires_grad_(True)
        cell = batch.cell
        eps = None
        if stress:
            eps = torch.zeros_like(cell).requires_grad_(True)
            pos, cell = strained(pos0, cell, batch.batch, eps)
        else:
            pos = pos0
        rij = pair_vectors(pos, cell, batch.batch, batch.i, batch.j, batch.shifts)
        g = self.features(batch, rij)
        e_atom, v_atom = self.atomic_outputs(batch.species, self.scaled_inputs(batch.species, g))
        energy = self.structure_sum(e_atom, batch.batch, batch.n_structures)
        t = self.tail_energy(batch, pos, cell)
        if t is not None:
            energy = energy + t
        log_var = None
        if v_atom is not None:
            log_var = torch.log(self.structure_sum(v_atom, batch.batch, batch.n_structures))
        f = s = mf = ms = None
        if forces or stress:
            inputs = [pos0] + ([eps] if stress else [])
            grads = torch.autograd.grad(energy.mean(0).sum(), inputs,
                                        create_graph=create_graph,
                                        retain_graph=create_graph or member_forces)
            if forces:
                f = -grads[0]
            if stress:
                s = self._stress(grads[-1], batch.cell, batch.pbc)
        if member_forces:
            mfl, msl = [], []
            for m in range(self.n_members):
                inputs = [pos0] + ([eps] if stress else [])
                gm = torch.autograd.grad(energy[m].sum(), inputs, create_graph=create_graph,
                                         retain_graph=True)
                mfl.append(-gm[0])
                if stress:
                    msl.append(self._stress(gm[-1], batch.cell, batch.pbc))
            mf = torch.stack(mfl)
            ms = torch.stack(msl) if stress else None
        return Output(energy, e_atom, f, s, mf, ms, log_var, g.detach())

    def _committee(self, batch: Batch, stress: bool, members: bool = True) -> Output:
        """Energies, per-member and mean forces (and stress) with one shared descriptor
        pass: the members' ∂E_m/∂G (M, N, F) come from the networks' input gradients
        (:meth:`_member_gradients`), and the descriptor's pullback turns all M into
        ∂E_m/∂r (M, N, 3) and the per-atom virials Σ_p r_p ⊗ ∂E_m/∂r_p at once (no autograd
        through the descriptor)."""
        m = self.n_members
        pos, cell = batch.positions.detach(), batch.cell
        with torch.no_grad():
            rij = pair_vectors(pos, cell, batch.batch, batch.i, batch.j, batch.shifts)
        pb = self.descriptor.pullback(batch.species, batch.i, batch.j, rij)
        g = pb.features
        e_atom, v_atom, dedg = self._member_gradients(batch.species, g)
        if not members:  # mean forces only: one cotangent, ∂(mean_m E_m)/∂G
            dedg = dedg if m == 1 else dedg.mean(0, keepdim=True)
        dedr, vir = pb.atoms(dedg, stress)  # ∂E_m/∂positions (M, N, 3), virials (M,N,3,3)
        k_out = dedr.shape[0]
        energy = self.structure_sum(e_atom, batch.batch, batch.n_structures)
        eps = None
        if self.tail is not None:  # pair tails are cheap: autograd, one pass per member
            with torch.enable_grad():
                p0 = pos.requires_grad_(True)
                tpos, tcell = p0, cell
                if stress:
                    eps = torch.zeros_like(cell).requires_grad_(True)
                    tpos, tcell = strained(p0, cell, batch.batch, eps)
                t = self.tail_energy(batch, tpos, tcell)
                rows = t if t.dim() == 2 else t[None].expand(m, -1)
                if not members:
                    rows = rows.mean(0, keepdim=True)
                tg = [torch.autograd.grad(rows[k].sum(), [p0] + ([eps] if stress else []),
                                          retain_graph=True) for k in range(k_out)]
            energy = energy + t.detach()
            dedr = dedr + torch.stack([x[0] for x in tg])
        mf = -dedr
        ms = s = None
        if stress:
            w = vir.new_zeros(k_out, batch.n_structures, 3, 3).index_add_(1, batch.batch, vir)
            if eps is not None:
                w = w + torch.stack([x[1] for x in tg])
            ms = torch.stack([self._stress(w[k], cell, batch.pbc) for k in range(k_out)])
            s = ms.mean(0)
        log_var = None
        if v_atom is not None:
            log_var = torch.log(self.structure_sum(v_atom, batch.batch, batch.n_structures))
        if not members:
            return Output(energy, e_atom, mf[0], s, None, None, log_var, g.detach())
        return Output(energy, e_atom, mf.mean(0), s, mf, ms, log_var, g.detach())

    def _member_gradients(self, species: torch.Tensor, g: torch.Tensor):
        """Atomic energies (M, N) eV, aleatoric variances (M, N) eV² or None, and every
        member's ∂E_m/∂G (M, N, F) at features ``g`` (N, F): the fused network kernel
        (:mod:`mlp_c`: no graph, outputs detached) where it runs, else one backward
        through the networks (autograd, the reference)."""
        m, n, nf = self.n_members, species.shape[0], g.shape[1]
        every_column = self.spec.centre_columns is None  # columns(k) = arange(F) for all k
        rows = [torch.nonzero(species == k).squeeze(1) for k in range(len(self.elements))]
        # elements partition the atoms: when every element uses all F columns, each row of
        # ∂E/∂G is written once (no zero fill, no scatter of blocks)
        dense = every_column and sum(idx.numel() for idx in rows) == n
        if all(mlp_c.usable(h, g) for h in self.heads):
            dedg = ckernels.empty((m, n, nf), g.dtype) if dense else g.new_zeros(m, n, nf)
            e = g.new_zeros(m, n)
            v = torch.zeros_like(e) if self.aleatoric else None
            gc = g.detach().contiguous()
            with torch.no_grad():
                for k, idx in enumerate(rows):
                    if idx.numel() == 0:
                        continue
                    cols = self.columns(k)
                    mu, sd = self.feature_mean[k, cols], self.feature_std[k, cols]
                    y = mlp_c.element_outputs(self.heads[k], gc, idx, cols, mu, sd,
                                              self.energy_scale / sd, dedg)
                    ek, vk = self._from_head(k, y)
                    e.index_copy_(1, idx, ek)
                    if self.aleatoric:
                        v.index_copy_(1, idx, vk)
            return e, v, dedg
        inputs = [(idx, x.unsqueeze(0).expand(m, -1, -1))
                  for idx, x in self.scaled_inputs(species, g)]
        with torch.enable_grad():
            xs = [x.detach().requires_grad_(True) for _, x in inputs]
            e_atom, v_atom = self.atomic_outputs(
                species, [(idx, x) for (idx, _), x in zip(inputs, xs, strict=True)])
            grads = torch.autograd.grad(e_atom.sum(), xs, allow_unused=True)
        dense = dense and all(gx is not None for gx in grads)
        dedg = g.new_empty(m, n, nf) if dense else g.new_zeros(m, n, nf)
        for k, ((idx, _), gx) in enumerate(zip(inputs, grads, strict=True)):
            if gx is None or idx.numel() == 0:
                continue
            cols = self.columns(k)
            if every_column:
                dedg.index_copy_(1, idx, gx / self.feature_std[k, cols])
                continue
            block = g.new_zeros(m, len(idx), nf)
            block[:, :, cols] = gx / self.feature_std[k, cols]
            dedg[:, idx] = block
        return e_atom, v_atom, dedg

    @staticmethod
    def _stress(dedeps: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
        vol = torch.linalg.det(cell).abs()
        full = pbc.all(dim=1)
        safe = torch.where(full, vol, torch.ones_like(vol))
        s = 0.5 * (dedeps + dedeps.transpose(1, 2)) / safe[:, None, None]
        return torch.where(full[:, None, None], s, torch.full_like(s, float("nan")))

    # --- persistence --------------------------------------------------------------
    def header(self) -> dict:
        """JSON description from which :func:`build_model` rebuilds this model."""
        return {
            "kind": "atomistic",
            "elements": list(self.elements),
            "descriptor": self.spec.to_dict(),
            "hidden": list(self.hidden),
            "activation": self.activation,
            "n_members": self.n_members,
            "aleatoric": self.aleatoric,
            "tail": None if self.tail is None else self.tail.to_dict(),
            "units": {"energy": "eV", "length": "Angstrom", "forces": "eV/Angstrom",
                      "stress": "eV/Angstrom^3"},
        }


def build_model(header: dict) -> NNP:
    """Rebuild an (untrained) :class:`NNP` from :meth:`NNP.header`."""
    tail = None
    if header.get("tail"):
        from nnpot.atomistic.tails import tail_from_dict

        tail = tail_from_dict(header["tail"])
    return NNP(DescriptorSpec.from_dict(header["descriptor"]), header["hidden"],
               header["activation"], header["n_members"], header.get("aleatoric", False),
               tail=tail)


def forces_from_jacobian(dedg: torch.Tensor, jac: torch.Tensor, i: torch.Tensor,
                         j: torch.Tensor, n_atoms: int):
    """Per-member forces from descriptor gradients and pair Jacobians.

    ``dedg`` (M, N, F) = ∂E_m/∂G; ``jac`` (P, F, 3) = ∂G_{i(p)}/∂r_p. Returns forces
    (M, N, 3) eV/Å and ``dedr`` (M, P, 3) = ∂E_m/∂r_p (for the virial).
    Since r_p = r_j − r_i + ..., F_i += ∂E/∂r_p and F_j −= ∂E/∂r_p.
    """
    dedr = torch.einsum("mpf,pfc->mpc", dedg[:, i], jac)
    f = torch.zeros(dedg.shape[0], n_atoms, 3, dtype=dedr.dtype, device=dedr.device)
    f = f.index_add(1, i, dedr).index_add(1, j, -dedr)
    return f, dedr


def descriptor_jacobian(descriptor: nn.Module, species, i, j, rij):
    """Features G (N, F) and pair Jacobians J (P, F, 3) = ∂G_{i(p),f}/∂r_p (1/Å).

    A descriptor with a ``jacobian`` method (``SymmetryFunctions``: closed-form rows in one
    pass) supplies both. Otherwise: each pair vector feeds only its own centre's features,
    so ∂(Σ_n G_{n,f})/∂r_p is exactly ∂G_{i(p),f}/∂r_p: one vector-Jacobian product per
    feature.
    """
    if hasattr(descriptor, "jacobian"):
        g, jac = descriptor.jacobian(species, i, j, rij.detach())
        return g.detach(), jac
    rij = rij.detach().requires_grad_(True)
    g = descriptor(species, i, j, rij)
    n, nf = g.shape
    if rij.shape[0] == 0:
        return g.detach(), rij.new_zeros(0, nf, 3)
    # one backward pass per feature (batching them with vmap was slower on CPU)
    eye = torch.eye(nf, dtype=g.dtype, device=g.device).unsqueeze(1).expand(nf, n, nf)
    jac = torch.stack([torch.autograd.grad(g, rij, grad_outputs=eye[f],
                                           retain_graph=f < nf - 1)[0] for f in range(nf)])
    return g.detach(), jac.permute(1, 0, 2).contiguous()
