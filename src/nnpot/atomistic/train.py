"""Training: loss on energy per atom, forces and stress; AdamW; checkpoints; resume.

Per structure s and committee member m (bootstrap count c_ms, structure weight w_s):

    L_m = Σ_s w_s c_ms [ λ_E ((E_ms − E_s)/N_s)² / σ_E²  +  λ_F |F_ms − F_s|²/(3 N_s) / σ_F²
                         + λ_S |σ_ms − σ_s|²/9 / σ_S² ] / Σ_s w_s c_ms

with σ_E, σ_F, σ_S the spreads of the training labels (so the weights are unitless). The
descriptors and their pair Jacobians are computed once per structure (positions do not
change during training), so an epoch costs the networks and one contraction.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase.data import atomic_numbers

from nnpot.atomistic.data import Frame, voigt_to_matrix
from nnpot.atomistic.model import NNP, descriptor_jacobian, forces_from_jacobian
from nnpot.atomistic.neighbors import make_batch, pair_vectors
from nnpot.atomistic.statistics import label_scales
from nnpot.config import TrainingConfig
from nnpot.errors import EmptyDatasetError, MissingLabelError
from nnpot.io import atomic_write_text, load_model_file, save_model_file

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class Prepared:
    """One structure's precomputed training inputs (torch tensors)."""

    species: torch.Tensor  # (n,)
    g: torch.Tensor  # (n, F) symmetry functions
    jac: torch.Tensor  # (P, F, 3) pair Jacobians
    i: torch.Tensor
    j: torch.Tensor
    rij: torch.Tensor  # (P, 3) Å
    volume: float  # Å³ (0 for non-periodic)
    energy: float | None
    forces: torch.Tensor | None
    stress: torch.Tensor | None  # (3, 3)
    weight: float
    tail_energy: float = 0.0
    tail_forces: torch.Tensor | None = None
    tail_stress: torch.Tensor | None = None
    tail_basis: tuple | None = None  # per-term (energy (K,), forces (K,n,3), stress) of tail


def prepare(model: NNP, frames: Sequence[Frame], dtype=torch.float64,
            progress: Callable | None = None) -> list[Prepared]:
    """Compute descriptors and pair Jacobians for ``frames`` (once, before training)."""
    species_of = {atomic_numbers[e]: k for k, e in enumerate(model.elements)}
    out = []
    it = progress(frames) if progress else frames
    for fr in it:
        b = make_batch([(fr.numbers, fr.positions, fr.cell, fr.pbc)], species_of,
                       model.spec.cutoff, torch.float64)
        rij = pair_vectors(b.positions, b.cell, b.batch, b.i, b.j, b.shifts)
        g, jac = descriptor_jacobian(model.descriptor, b.species, b.i, b.j, rij)
        vol = abs(float(np.linalg.det(fr.cell))) if np.all(fr.pbc) else 0.0
        prep = Prepared(
            b.species, g.to(dtype), jac.to(dtype), b.i, b.j, rij.detach().to(dtype), vol,
            fr.energy,
            None if fr.forces is None else torch.as_tensor(fr.forces, dtype=dtype),
            None if (fr.stress is None or vol == 0) else
            torch.as_tensor(voigt_to_matrix(fr.stress), dtype=dtype),
            fr.weight,
        )
        if model.tail is not None:
            prep.tail_basis = model.tail.frame_basis(fr, dtype)
            te, tf, ts = model.tail.frame_terms(fr, basis=prep.tail_basis)
            prep.tail_energy = te
            prep.tail_forces = torch.as_tensor(tf, dtype=dtype)
            prep.tail_stress = None if ts is None else torch.as_tensor(ts, dtype=dtype)
        out.append(prep)
    return out


def _collate(items: Sequence[Prepared], dtype):
    """Descriptors, species and structure index of a mini-batch (the pair Jacobians stay
    per structure: concatenating them would copy the largest arrays every step)."""
    bidx = [torch.full((len(p.species),), s, dtype=torch.int64) for s, p in enumerate(items)]
    return (torch.cat([p.g for p in items]).to(dtype), torch.cat([p.species for p in items]),
            torch.cat(bidx))


def predict_prepared(model: NNP, items: Sequence[Prepared], create_graph: bool):
    """Per-member energies (M, B), forces list of (M, n_s, 3), stresses (M, B, 3, 3) and
    log aleatoric variance (M, B) or None, from precomputed descriptors."""
    dtype = model.e_ref.dtype
    g, sp, bidx = _collate(items, dtype)
    g = g.detach().requires_grad_(True)
    # member-expanded inputs: ∂(Σ_m E_m)/∂X[m] is member m's own gradient
    inputs = [(idx, x.unsqueeze(0).expand(model.n_members, -1, -1))
              for idx, x in model.scaled_inputs(sp, g)]
    e_atom, v_atom = model.atomic_outputs(sp, inputs)
    n_b = len(items)
    energy = model.structure_sum(e_atom, bidx, n_b)
    tail_f = tail_s = None
    if model.tail is not None:  # linear in the tail's (possibly learned) scales
        tail_e, tail_f, tail_s = model.tail.prepared_terms(items, model.n_members)
        energy = energy + tail_e
    # each member's energy depends only on its own network: one backward gives all ∂E_m/∂G
    xs = [x for _, x in inputs]
    grads = torch.autograd.grad(e_atom.sum(), xs, create_graph=create_graph, allow_unused=True)
    dedg = torch.zeros(model.n_members, *g.shape, dtype=dtype)
    for k, ((idx, _), gx) in enumerate(zip(inputs, grads, strict=True)):
        if gx is None or idx.numel() == 0:
            continue
        cols = model.columns(k)
        block = gx / model.feature_std[k, cols]
        full = torch.zeros(model.n_members, len(idx), g.shape[1], dtype=dtype)
        full = full.index_copy(2, cols, block)
        dedg = dedg.index_copy(1, idx, full)
    f_list, virial, start = [], [], 0
    for s, p in enumerate(items):  # F_m = contraction of ∂E_m/∂G with each pair Jacobian
        n = len(p.species)
        f, dedr = forces_from_jacobian(dedg[:, start:start + n], p.jac, p.i, p.j, n)
        virial.append(torch.einsum("pa,mpb->mab", p.rij, dedr))
        if tail_f is not None:
            f = f + tail_f[s]
        f_list.append(f)
        start += n
    virial = torch.stack(virial, 1)
    vols = torch.tensor([p.volume if p.volume > 0 else 1.0 for p in items], dtype=dtype)
    stress = 0.5 * (virial + virial.transpose(2, 3)) / vols[None, :, None, None]
    if tail_s is not None:
        stress = stress + tail_s
    log_var = None
    if v_atom is not None:
        log_var = torch.log(model.structure_sum(v_atom, bidx, n_b))
    return energy, f_list, stress, log_var


def batch_loss(model: NNP, items: Sequence[Prepared], counts: torch.Tensor,
               cfg: TrainingConfig, scales: dict, nll: bool = False):
    """Loss per member (M,) for a mini-batch; ``counts`` (M, B) bootstrap multiplicities."""
    dtype = model.e_ref.dtype
    energy, forces, stress, log_var = predict_prepared(model, items, create_graph=True)
    w = torch.tensor([p.weight for p in items], dtype=dtype)[None, :] * counts.to(dtype)
    n = torch.tensor([len(p.species) for p in items], dtype=dtype)
    loss = torch.zeros(model.n_members, dtype=dtype)
    norm = w.sum(1).clamp_min(1e-12)
    has_e = torch.tensor([p.energy is not None for p in items])
    if has_e.any() and cfg.energy_weight > 0:
        ref = torch.tensor([p.energy if p.energy is not None else 0.0 for p in items],
                           dtype=dtype)
        err = (energy - ref) / n
        if nll and log_var is not None:
            # Gaussian NLL of the energy per atom in units of σ_E (β-NLL optional,
            # Seitzer et al., ICLR 2022): ½ (err²/var + log var), var = Σ_i v_i / N²
            var = torch.exp(log_var) / n**2 / scales["energy"] ** 2
            z2 = err**2 / scales["energy"] ** 2
            term = 0.5 * (z2 / var + torch.log(var))
            if cfg.beta_nll:
                term = term * var.detach() ** cfg.beta_nll
        else:
            term = err**2 / scales["energy"] ** 2
        loss = loss + cfg.energy_weight * (w * term * has_e).sum(1) / norm
    if cfg.forces_weight > 0:
        terms = []
        for s, p in enumerate(items):
            if p.forces is None:
                terms.append(torch.zeros(model.n_members, dtype=dtype))
            else:
                terms.append(((forces[s] - p.forces) ** 2).mean((1, 2)))
        ft = torch.stack(terms, 1) / scales["forces"] ** 2
        loss = loss + cfg.forces_weight * (w * ft).sum(1) / norm
    if cfg.stress_weight > 0:
        terms = []
        for s, p in enumerate(items):
            if p.stress is None:
                terms.append(torch.zeros(model.n_members, dtype=dtype))
            else:
                terms.append(((stress[:, s] - p.stress) ** 2).mean((1, 2)))
        st = torch.stack(terms, 1) / scales["stress"] ** 2
        loss = loss + cfg.stress_weight * (w * st).sum(1) / norm
    return loss


def validation_errors(model: NNP, prepared: Sequence[Prepared], chunk: int = 16) -> dict:
    """Committee-mean RMSE of energy per atom (meV/atom) and forces (meV/Å); with the
    aleatoric head also ``energy_nll``, the mean Gaussian NLL of the energy per atom
    ½ log(2π v) + err²/(2 v), v = ⟨Σ_i v_i⟩_members / N² (eV/atom units, natural log)."""
    if not prepared:
        return {}
    e_err, f_err, nll = [], [], []
    for start in range(0, len(prepared), chunk):
        items = prepared[start:start + chunk]
        energy, forces, _, log_var = predict_prepared(model, items, create_graph=False)
        for s, p in enumerate(items):
            if p.energy is not None:
                e_err.append(float(energy[:, s].detach().mean() - p.energy) / len(p.species))
                if log_var is not None:
                    v = float(log_var[:, s].detach().exp().mean()) / len(p.species) ** 2
                    nll.append(0.5 * (math.log(2 * math.pi * v) + e_err[-1] ** 2 / v))
            if p.forces is not None:
                f_err.append((forces[s].mean(0) - p.forces).detach().reshape(-1).numpy())
    out = {}
    if e_err:
        out["energy_rmse_mev_atom"] = 1000 * float(np.sqrt(np.mean(np.square(e_err))))
    if nll:
        out["energy_nll"] = float(np.mean(nll))
    if f_err:
        out["forces_rmse_mev_ang"] = 1000 * float(np.sqrt(np.mean(np.concatenate(f_err) ** 2)))
    return out


def _val_loss(v: dict, scales: dict, nll: bool = False) -> float:
    loss = 0.0
    if nll and "energy_nll" in v:  # the training objective's energy term, in units of σ_E
        loss += v["energy_nll"] - 0.5 * math.log(2 * math.pi * scales["energy"] ** 2)
    elif "energy_rmse_mev_atom" in v:
        loss += (v["energy_rmse_mev_atom"] / 1000 / scales["energy"]) ** 2
    if "forces_rmse_mev_ang" in v:
        loss += (v["forces_rmse_mev_ang"] / 1000 / scales["forces"]) ** 2
    return loss


def check_labels(frames: Sequence[Frame], cfg: TrainingConfig) -> None:
    if not frames:
        raise EmptyDatasetError("the training split holds no structures")
    if cfg.energy_weight > 0 and not any(f.energy is not None for f in frames):
        raise MissingLabelError("no training structure has an energy label")
    if cfg.forces_weight > 0 and not any(f.forces is not None for f in frames):
        raise MissingLabelError("no training structure has a forces label; set "
                                "forces_weight = 0 in [training] to fit energies only")
    if cfg.stress_weight > 0 and not any(f.stress is not None for f in frames):
        raise MissingLabelError("stress_weight > 0 but no structure has a stress label")


# --- checkpoints -----------------------------------------------------------------------
def save_checkpoint(path: Path, model: NNP, opt: torch.optim.Optimizer, state: dict) -> None:
    """Model, optimiser moments and loop state in one safetensors file (atomic)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            tensors[f"opt.{pid}.{k}"] = torch.as_tensor(v)
    tensors["best." + "__marker__"] = torch.zeros(1)
    for k, v in state.pop("best_state", {}).items():
        tensors[f"best.{k}"] = v
    header = dict(model.header(), kind="atomistic-checkpoint", loop=state,
                  param_groups=[{k: v for k, v in g.items() if k != "params"}
                                for g in opt_state["param_groups"]])
    save_model_file(path, tensors, header)


def load_checkpoint(path: Path, model: NNP, opt: torch.optim.Optimizer) -> dict:
    tensors, header = load_model_file(path, kind="atomistic-checkpoint")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    sd = opt.state_dict()
    new_state: dict = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            new_state.setdefault(int(pid), {})[name] = v
    groups = []
    for g, saved in zip(sd["param_groups"], header["param_groups"], strict=True):
        groups.append(dict(saved, params=g["params"]))
    opt.load_state_dict({"state": new_state, "param_groups": groups})
    loop = dict(header["loop"])
    loop["best_state"] = {k[5:]: v for k, v in tensors.items()
                          if k.startswith("best.") and k != "best.__marker__"}
    return loop


def train(model: NNP, train_prep: Sequence[Prepared], valid_prep: Sequence[Prepared],
          cfg: TrainingConfig, run_dir: Path, progress: bool = True,
          log: Callable[[dict], None] | None = None) -> dict:
    """Train ``model`` in place; checkpoint every epoch into ``run_dir``; resume if a
    checkpoint is there. Returns the final loop state (best validation metrics, epochs)."""
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    m = model.n_members
    n_train = len(train_prep)
    if m > 1 and cfg.bootstrap:
        counts_all = torch.as_tensor(
            np.stack([np.bincount(rng.integers(0, n_train, n_train), minlength=n_train)
                      for _ in range(m)]))
    else:
        counts_all = torch.ones(m, n_train, dtype=torch.int64)
    scales = label_scales(train_prep, model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt = run_dir / "checkpoint.nnp"
    metrics_path = run_dir / "metrics.jsonl"
    state = {"epoch": 0, "best_loss": math.inf, "best_epoch": 0, "elapsed": 0.0,
             "best_state": {}, "best_metrics": {}}
    if ckpt.exists():
        state = load_checkpoint(ckpt, model, opt)
        if metrics_path.exists():  # drop lines written after the checkpoint
            lines = [ln for ln in metrics_path.read_text().splitlines()
                     if ln.strip() and json.loads(ln)["epoch"] <= state["epoch"]]
            atomic_write_text(metrics_path, "".join(ln + "\n" for ln in lines))
    aleatoric_start = int(cfg.aleatoric_warmup * cfg.epochs)
    bar = tqdm(total=cfg.epochs, initial=state["epoch"], disable=not progress,
               desc="fit", unit="epoch", leave=False)
    t_start = time.perf_counter() - state["elapsed"]
    while state["epoch"] < cfg.epochs and not state.get("stopped_early"):
        epoch = state["epoch"]
        lr = cfg.lr * (cfg.lr_final / cfg.lr) ** (epoch / max(cfg.epochs - 1, 1))
        for gr in opt.param_groups:
            gr["lr"] = lr
        perm = np.random.default_rng(cfg.seed * 100003 + epoch).permutation(n_train)
        if model.tail is not None and hasattr(model.tail, "on_epoch"):
            model.tail.on_epoch(epoch, cfg.epochs)  # e.g. hold learned C6 during warm-up
        total = 0.0
        nll = model.aleatoric and epoch >= aleatoric_start
        if model.aleatoric and epoch == aleatoric_start and epoch > 0:
            # the variance head learns only from here on: a best state kept from the MSE
            # warm-up would carry an untrained head, so selection restarts now
            state["best_loss"], state["best_epoch"] = math.inf, epoch
        for start in range(0, n_train, cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            items = [train_prep[k] for k in idx]
            loss = batch_loss(model, items, counts_all[:, idx], cfg, scales, nll=nll)
            prior = getattr(model.tail, "penalty", lambda n: None)(n_train)
            if prior is not None:  # learned tail coefficients: prior of each member
                loss = loss + prior
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
            total += float(loss.detach().sum()) * len(idx)
        val = validation_errors(model, valid_prep) if valid_prep else {}
        train_err = validation_errors(model, train_prep[: min(len(train_prep), 64)])
        vloss = _val_loss(val, scales, nll) if val else total / n_train
        state["epoch"] = epoch + 1
        state["elapsed"] = time.perf_counter() - t_start
        rec = {"epoch": epoch + 1, "lr": lr, "train_loss": total / n_train / m,
               "time_s": round(state["elapsed"], 3),
               **{f"train_{k}": v for k, v in train_err.items()},
               **{f"valid_{k}": v for k, v in val.items()}}
        improved = vloss < state["best_loss"]
        if improved or not state["best_state"]:
            state["best_loss"] = vloss
            state["best_epoch"] = epoch + 1
            state["best_metrics"] = rec
            state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        with open(metrics_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if log:
            log(rec)
        warming = model.aleatoric and epoch + 1 < aleatoric_start  # no early stop yet
        stop = (epoch + 1 - state["best_epoch"] >= cfg.patience and not warming or
                (cfg.max_time is not None and state["elapsed"] >= cfg.max_time))
        if stop:
            state["stopped_early"] = True
            state["epoch_stop"] = epoch + 1
        save_checkpoint(ckpt, model, opt, dict(state))
        bar.update(1)
        bar.set_postfix({k.replace("valid_", ""): f"{v:.3g}" for k, v in val.items()})
        if stop:
            break
    bar.close()
    if state["best_state"]:
        model.load_state_dict(state["best_state"])
    return {k: v for k, v in state.items() if k != "best_state"}
