"""A short active-learning demo: a water potential from ten structures with GFN2-xTB.

:func:`water_demo` starts from ten small hydrogen-bonded water clusters (2–5 molecules,
:func:`water_cluster`), labels them with GFN2-xTB through tblite, and runs the
explore–select–label–retrain loop of :class:`nnpot.active.ActiveLearning` (Langevin MD at
300 and 450 K with a committee of four, two-threshold trust interval calibrated on the
validation error, D-optimal batches of eight; oracle calls on two threads). It prints one
summary line per iteration, then runs 100 fs of NVE MD of a four-molecule cluster with the
final committee. ``quick=True`` (five iterations, ~42 labels) costs ~25 s of CPU time:
about 20 s on two idle cores (GFN2-xTB takes ~5 ms per cluster of ≤ 15 atoms here).

It is a demonstration of the loop, not a production water model: after five iterations the
in-loop validation force RMSE is ~260 meV/Å, and on the shipped ``water_xtb`` clusters of
the same sizes (sampled by a force field's MD, not by the committee) ~420 meV/Å.

Units: energies eV (meV/atom in summaries), forces eV/Å (meV/Å in summaries), times s,
MD time step fs, temperatures K.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

from nnpot.active.loop import ActiveLearning
from nnpot.active.settings import ActiveConfig
from nnpot.config import parse_config
from nnpot.errors import BadStructureError

__all__ = ["water_cluster", "water_config", "water_demo"]

O_O_RANGE = (2.7, 3.1)  # Å, distance of a new molecule's O to the O it binds to


def water_cluster(n: int, rng: np.random.Generator, rattle: float = 0.03) -> Atoms:
    """``n`` water molecules (ASE's gas-phase geometry) grown as a hydrogen-bonded cluster.

    Each new molecule donates a hydrogen bond to a random earlier one: its O sits
    2.7–3.1 Å from that O with one O–H bond pointing at it (random rotation about the
    O···O axis), at least 2.6 Å from every other O and 1.5 Å between other atoms of
    different molecules. Non-periodic, atoms in O, H, H order, positions in Å, rattled
    by a Gaussian of ``rattle`` Å.
    """
    w = molecule("H2O")
    w.positions -= w.positions[0]  # O at the origin
    h1 = w.positions[1] / np.linalg.norm(w.positions[1])
    pos = [Rotation.random(random_state=int(rng.integers(2**31))).apply(w.positions)]
    while len(pos) < n:
        base = pos[int(rng.integers(len(pos)))][0]
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        o = base + rng.uniform(*O_O_RANGE) * u
        align = Rotation.align_vectors([-u], [h1])[0]  # O–H of the donor points at base
        spin = Rotation.from_rotvec(u * rng.uniform(0.0, 2.0 * np.pi))
        new = (spin * align).apply(w.positions) + o
        others = np.concatenate(pos)
        d_oo = np.linalg.norm(others[::3] - o, axis=1)
        d_all = np.linalg.norm(others[:, None] - new[None], axis=-1)
        d_all[::3, 0] = np.inf  # O–O checked separately
        if np.sum(d_oo < 2.6) == 0 and d_all.min() >= 1.5:
            pos.append(new)
    atoms = Atoms("OHH" * n, positions=np.concatenate(pos), pbc=False)
    atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
    return atoms


def water_config(initial: Path, quick: bool = True, seed: int = 0) -> ActiveConfig:
    """The demo's ``nnpot active`` configuration (see the module docstring)."""
    return parse_config(ActiveConfig, {
        "seed": seed,
        "data": {"initial": str(initial), "valid_fraction": 0.2},
        "oracle": {"kind": "xtb", "timeout_s": 60.0, "max_retries": 1},
        "executor": {"kind": "thread", "workers": 2},
        "explore": {"walkers": 4, "steps": 150 if quick else 300, "dt_fs": 0.5,
                    "temperatures": [300.0, 450.0], "max_candidates": 3,
                    "candidate_stride": 10},
        "trust": {"mode": "calibrated", "lower_factor": 1.0, "upper_factor": 8.0},
        "select": {"method": "d_optimal", "batch_size": 8},
        "loop": {"max_iterations": 5 if quick else 10, "retrain_epochs": 80},
        "model": {"committee": 4, "cutoff": 4.0, "hidden": [16, 16]},
        "training": {"epochs": 200, "batch_size": 4, "lr": 0.01, "lr_final": 0.001,
                     "patience": 1000},
    })


def _final_md(model_path: Path, out_dir: Path, steps: int, seed: int) -> dict:
    from nnpot.atomistic.calculator import load_calculator
    from nnpot.atomistic.md import run_md

    atoms = water_cluster(4, np.random.default_rng(seed + 1000), rattle=0.0)
    atoms.calc = load_calculator(model_path)
    sig = []

    def watch(a, step):  # record σ_max; stop if the committee leaves its trust region
        sig.append(a.calc.results["max_force_deviation"])
        return {"reason": "σ_max above 5 eV/Å"} if sig[-1] > 5.0 else None

    try:
        res = run_md(atoms, steps, dt_fs=0.5, temperature=300.0, ensemble="nve",
                     traj=out_dir / "md.extxyz", log=out_dir / "md.jsonl", interval=10,
                     seed=seed, watchdog=watch)
    except BadStructureError as exc:  # atoms collapsed: report it, do not crash the demo
        return {"final_md_steps": len(sig), "final_md_stopped": str(exc),
                "final_md_dt_fs": 0.5, "final_md_atoms": len(atoms),
                "final_md_energy_drift_mev_atom": None, "final_md_mean_temperature_k": None,
                "final_md_max_force_deviation_ev_ang": max(sig, default=None),
                "final_md_wall_s": None}
    return {"final_md_steps": res.steps_done,
            "final_md_stopped": None if res.stopped_by is None else res.stopped_by["reason"],
            "final_md_dt_fs": 0.5,
            "final_md_atoms": len(atoms),
            "final_md_energy_drift_mev_atom": res.drift_mev_per_atom(len(atoms)),
            "final_md_mean_temperature_k": float(np.mean(res.temperature)),
            "final_md_max_force_deviation_ev_ang": float(np.max(sig)) if sig else None,
            "final_md_wall_s": res.wall_s}


def _shipped_test(model_path: Path, max_molecules: int = 5) -> dict:
    """Errors of the committee on the shipped GFN2-xTB clusters and monomers of at most
    ``max_molecules`` molecules (the demo's size range), if that set is shipped. They were
    sampled differently (a force field's MD, not the committee's), so this is a test of
    transfer, not a second validation set."""
    from nnpot.atomistic.data import LabelKeys, frame_from_atoms, read_atoms
    from nnpot.atomistic.modelfile import load_model
    from nnpot.atomistic.workflow import evaluate
    from nnpot.data import path
    from nnpot.errors import InputError

    try:
        atoms = read_atoms(path("water_xtb"))
    except (InputError, OSError):
        return {}
    keep = [a for a in atoms if a.info.get("config_type") in ("cluster", "monomer")
            and len(a) <= 3 * max_molecules]
    if not keep:
        return {}
    model, _ = load_model(model_path)
    m = evaluate(model, [frame_from_atoms(a, LabelKeys()) for a in keep])
    return {"test_structures": len(keep),
            "test_forces_rmse_mev_ang": m["forces_rmse_mev_ang"],
            "test_energy_rmse_mev_atom": m["energy_rmse_mev_atom"]}


def water_demo(out_dir: Path, quick: bool = True, progress: bool = True) -> dict:
    """Build a water potential with GFN2-xTB from ten clusters; then a short MD.

    Writes the run folder ``out_dir/run`` (store, models, ``iterations.jsonl``) and the MD
    trajectory ``out_dir/md.extxyz``. Returns a summary: ``iterations``, ``labels``,
    ``failures``, ``valid_forces_rmse_mev_ang`` / ``valid_energy_rmse_mev_atom`` of the
    final committee, ``test_forces_rmse_mev_ang`` / ``test_energy_rmse_mev_atom`` on the
    shipped ``water_xtb`` clusters of 1–5 molecules (when shipped), ``oracle_s_per_structure``
    (mean wall time of a GFN2-xTB label, s),
    ``md_steps`` (exploration MD steps), the final NVE MD's ``final_md_steps``,
    ``final_md_energy_drift_mev_atom`` and ``final_md_max_force_deviation_ev_ang``, and
    ``wall_s``. With ``progress`` one line per iteration is printed.
    """
    import ase.io
    import torch

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    run_dir = out_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(7)
        start = [water_cluster(n, rng) for n in (2, 2, 3, 3, 3, 4, 4, 4, 5, 5)]
        initial = run_dir / "initial.extxyz"
        if not initial.exists():
            ase.io.write(initial, start)
        cfg = water_config(initial, quick)
        echo = print if progress else None
        if echo:
            echo(f"active demo: GFN2-xTB water from {len(start)} clusters "
                 f"({cfg.loop.max_iterations} iterations, {cfg.explore.walkers} walkers)")
        al = ActiveLearning(cfg, run_dir, echo=echo)
        state = al.run()
        history = state.extra.get("history", [])
        last = next((h for h in reversed(history) if h.get("retrained")), {})
        times = [r.get("wall_time") for r in al.store.rows("labelled") if r.get("wall_time")]
        summary = {
            "iterations": state.iteration, "labels": al.store.counts()["labelled"],
            "failures": al.store.counts()["failed"],
            "stop_reason": state.extra.get("stop_reason"),
            "valid_forces_rmse_mev_ang": last.get("valid_forces_rmse_mev_ang"),
            "valid_energy_rmse_mev_atom": last.get("valid_energy_rmse_mev_atom"),
            "oracle_s_per_structure": float(np.mean(times)) if times else None,
            "md_steps": int(sum(h.get("md_steps", 0) for h in history)),
            "model": state.paths["model"], "run_dir": str(run_dir),
        }
        summary.update(_shipped_test(Path(state.paths["model"])))
        summary.update(_final_md(Path(state.paths["model"]), out_dir, 200 if quick else 1000,
                                 cfg.seed))
    finally:
        torch.set_num_threads(threads)
    summary["wall_s"] = time.perf_counter() - t0
    if progress:
        s = summary
        print(f"active demo: {s['labels']} labels ({s['failures']} failed) in "
              f"{s['iterations']} iterations ({s['md_steps']} exploration MD steps); final "
              f"valid F RMSE {_num(s['valid_forces_rmse_mev_ang'])} meV/Å"
              + (f", shipped 1–5-molecule clusters {_num(s['test_forces_rmse_mev_ang'])} meV/Å"
                 if "test_forces_rmse_mev_ang" in s else "") + "; GFN2-xTB "
              f"{_num(s['oracle_s_per_structure'], '.3f')} s/structure; NVE MD "
              f"{s['final_md_steps']} steps × {s['final_md_dt_fs']} fs of {s['final_md_atoms']}"
              f" atoms, drift {_num(s['final_md_energy_drift_mev_atom'], '.2f')} meV/atom, "
              f"max σ_F {_num(s['final_md_max_force_deviation_ev_ang'], '.2f')} eV/Å; "
              f"{s['wall_s']:.0f} s")
    return summary


def _num(x, fmt: str = ".0f") -> str:
    return "n/a" if x is None else format(x, fmt)
