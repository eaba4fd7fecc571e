"""The explore–select–label–retrain loop, resumable after a kill at any moment.

Iteration 0 labels the initial structures (labels already in the input are used as they
are) and trains the first committee. Each later iteration k:

1. ``explore`` — every walker runs MD with the committee of iteration k−1 under the
   two-threshold watchdog (:mod:`nnpot.active.explore`), from its last trusted frame;
2. ``select`` — a batch (at most ``batch_size``, within the label budget) is chosen among
   the new candidates (:mod:`nnpot.active.select`); every decision goes to the store;
3. ``label`` — the oracle labels the batch on an Executor; each label is stored the
   moment it arrives (:func:`nnpot.active.execute.label_many`);
4. ``train`` — the committee is retrained, warm-started (:mod:`nnpot.active.retrain`).

Run folder: ``state.json`` (atomic), ``store.db`` (ASE SQLite), ``config.resolved.toml``,
``models/iter_KKK.nnp``, ``train/iter_KKK/`` (checkpoints), ``explore/iter_KKK/``
(``pool.extxyz``, ``walkers.extxyz``), ``iterations.jsonl``. Every phase is a pure
function of the files before it (seeds derive from ``seed``, iteration and walker), and
labels are never requested for a hash the store has labelled, so a resumed run ends with
the same data set as an uninterrupted one. Stops on ``max_iterations``, the label budget,
wall time, or ``quiet_steps`` MD steps without a trigger.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import ase.io
import numpy as np

from nnpot.active.execute import label_many
from nnpot.active.explore import Watchdog, run_walker
from nnpot.active.features import choose_batch, label_cost
from nnpot.active.oracle import (
    EMTOracle,
    FlakyOracle,
    LabelRecord,
    Oracle,
    PySCFOracle,
    XTBOracle,
    structure_hash,
)
from nnpot.active.retrain import thresholds, train_committee
from nnpot.active.settings import ActiveConfig
from nnpot.active.store import RunState, Store
from nnpot.atomistic.data import read_atoms
from nnpot.config import dump_resolved, load_config
from nnpot.errors import ConfigError, InputError
from nnpot.io import atomic_write_text

__all__ = ["ActiveLearning", "make_oracle"]

ORACLES = {"emt": EMTOracle, "xtb": XTBOracle, "pyscf": PySCFOracle}

#: selection methods that need the committee (its features) to choose a batch
MODEL_METHODS = ("d_optimal", "d_optimal_atoms", "farthest_point", "hybrid")


def make_oracle(cfg: ActiveConfig) -> Oracle:
    """The oracle of ``[oracle]`` (wrapped in FlakyOracle when faults are injected)."""
    try:
        oracle = ORACLES[cfg.oracle.kind](**cfg.oracle.settings)
    except TypeError as exc:
        raise ConfigError(f"[oracle] settings do not fit the {cfg.oracle.kind!r} oracle: "
                          f"{exc}") from None
    if cfg.oracle.fail_fraction > 0 or cfg.oracle.delay_s > 0:
        oracle = FlakyOracle(oracle, cfg.oracle.fail_fraction, seed=cfg.seed,
                             delay_s=cfg.oracle.delay_s)
    return oracle


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class ActiveLearning:
    """One active-learning run in ``run_dir`` (see the module docstring).

    ``ActiveLearning(cfg, run_dir).run()`` starts (or continues) a run;
    ``ActiveLearning.resume(run_dir).run()`` continues one from its folder alone.
    ``echo`` receives one line per iteration (default: print).
    """

    def __init__(self, cfg: ActiveConfig, run_dir: str | Path, progress: bool = False,
                 echo: Callable[[str], None] | None = print) -> None:
        self.cfg = cfg
        self.dir = Path(run_dir)
        self.progress = progress
        self.echo = echo or (lambda line: None)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.json"
        if self.state_path.exists():
            self.state = RunState.load(self.state_path)
        else:
            dump_resolved(cfg, self.dir)
            self.state = RunState(counters={"elapsed_s": 0.0, "quiet_steps": 0})
        self.store = Store(self.dir / "store.db")
        self.oracle = make_oracle(cfg)
        self._executor: Executor | None = None
        self._cluster = None
        self._t0 = time.monotonic()
        self._models: dict[str, tuple] = {}

    @classmethod
    def resume(cls, run_dir: str | Path, **kwargs) -> ActiveLearning:
        """Continue the run in ``run_dir`` with its resolved configuration."""
        run_dir = Path(run_dir)
        if not (run_dir / "state.json").exists():
            raise InputError(f"{str(run_dir)!r} is not an active-learning run folder "
                             "(no state.json)")
        return cls(load_config(ActiveConfig, run_dir / "config.resolved.toml"), run_dir,
                   **kwargs)

    # -- bookkeeping ---------------------------------------------------------------------
    def _save(self, **changes) -> None:
        now = time.monotonic()
        self.state.counters["elapsed_s"] = self.state.counters.get("elapsed_s", 0.0) + (
            now - self._t0)
        self._t0 = now
        for k, v in changes.items():
            setattr(self.state, k, v)
        self.state.save(self.state_path)

    def _path(self, kind: str, k: int, name: str = "") -> Path:
        return self.dir / kind / f"iter_{k:03d}" / name

    def _stop_reason(self) -> str | None:
        c, loop = self.state.counters, self.cfg.loop
        if loop.max_labels is not None and self.store.counts()["labelled"] >= loop.max_labels:
            return "label budget reached"
        if loop.max_wall_s is not None and c.get("elapsed_s", 0) + (
                time.monotonic() - self._t0) >= loop.max_wall_s:
            return "wall time reached"
        if loop.quiet_steps is not None and c.get("quiet_steps", 0) >= loop.quiet_steps:
            return f"no trigger in {int(c['quiet_steps'])} MD steps"
        if self.state.iteration >= loop.max_iterations:
            return "max_iterations reached"
        return None

    def executor(self) -> Executor | None:
        """The oracle executor of ``[executor]`` (None: label_many's own process pool)."""
        ex = self.cfg.executor
        if self._executor is None and ex.kind == "thread":
            self._executor = ThreadPoolExecutor(ex.workers or 2)
        elif self._executor is None and ex.kind == "dask":
            from dask.distributed import Client, LocalCluster

            if ex.scheduler:
                client = Client(ex.scheduler)
            else:
                self._cluster = LocalCluster(n_workers=ex.workers or 2, threads_per_worker=1,
                                             processes=True, dashboard_address=None)
                client = Client(self._cluster)
            self._executor = client.get_executor(pure=False)
        return self._executor

    def close(self) -> None:
        if isinstance(self._executor, ThreadPoolExecutor):
            self._executor.shutdown(wait=True)
        elif self._executor is not None:
            self._executor._client.close()  # dask ClientExecutor
            if self._cluster is not None:
                self._cluster.close()
        self._executor = self._cluster = None

    def model(self, path: str):
        """(model, header) of a saved committee, cached."""
        if path not in self._models:
            from nnpot.atomistic.modelfile import load_model

            self._models = {path: load_model(path)}
        return self._models[path]

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> RunState:
        """Run phases until a stop condition; returns the final state."""
        phases = {"start": self._start, "label": self._label, "train": self._train,
                  "explore": self._explore, "select": self._select}
        try:
            while self.state.phase != "done":
                phases[self.state.phase]()
        finally:
            self.close()
        return self.state

    def _start(self) -> None:
        cfg = self.cfg
        if not cfg.data.initial:
            raise ConfigError("[data] initial: give the structures to start from")
        for atoms in read_atoms(cfg.data.initial):
            e = atoms.info.get(cfg.data.energy_key)
            f = atoms.arrays.get(cfg.data.forces_key)
            h = structure_hash(atoms)
            if e is not None and f is not None:
                if self.store.status(h) != "labelled":
                    s = atoms.info.get(cfg.data.stress_key)
                    rec = LabelRecord(h, True, float(e), np.asarray(f, float),
                                      None if s is None else np.asarray(s, float).ravel(),
                                      oracle="input")
                    self.store.record_label(rec, atoms=atoms, iteration=0)
            else:
                self.store.add_candidate(atoms, iteration=0, source="initial", h=h)
        self._save(iteration=0, phase="label")

    def _label(self) -> None:
        k = self.state.iteration
        pending = self.store.candidates()
        if pending:
            atoms = [a for _, a in pending]
            label_many(self.oracle, atoms, executor=self.executor(),
                       timeout=self.cfg.oracle.timeout_s,
                       max_retries=self.cfg.oracle.max_retries,
                       max_workers=self.cfg.executor.workers,
                       on_result=lambda i, rec: self.store.record_label(rec, iteration=k))
        self._save(phase="train")

    def _train(self) -> None:
        k = self.state.iteration
        out = self.dir / "models" / f"iter_{k:03d}.nnp"
        test = read_atoms(self.cfg.data.test) if self.cfg.data.test else None
        warm = self.state.paths.get("model")
        res = train_committee(self.store.labelled_atoms(), self.cfg, k, self._path("train", k),
                              out, warm_from=Path(warm) if warm else None, test=test,
                              progress=self.progress)
        lower, upper = thresholds(self.cfg.trust, res.header)
        self.state.paths["model"] = str(out)
        self.state.extra["thresholds"] = [lower, upper]
        self._summarise(k, res.metrics, res.header)
        self._next_iteration()

    def _next_iteration(self) -> None:
        self.state.iteration += 1
        reason = self._stop_reason()
        if reason:
            self.state.extra["stop_reason"] = reason
            self.echo(f"active: stopped after iteration {self.state.iteration - 1}: {reason}")
            self._save(phase="done")
        else:
            self._save(phase="explore")

    def _explore(self) -> None:
        from nnpot.atomistic.calculator import NNPCalculator

        k, cfg, ex = self.state.iteration, self.cfg, self.cfg.explore
        model, header = self.model(self.state.paths["model"])
        lower, upper = self.state.extra["thresholds"]
        prev = self._path("explore", k - 1, "walkers.extxyz")
        if prev.exists():
            starts = ase.io.read(prev, ":")
        else:
            pool = read_atoms(cfg.data.start or cfg.data.initial)
            starts = [pool[w % len(pool)] for w in range(ex.walkers)]
        calc = NNPCalculator(model, header)
        found, restart, steps, triggers = [], [], 0, 0
        growth = ex.temperature_growth ** (k - 1)
        for w, start in enumerate(starts):
            t0 = ex.temperatures[w % len(ex.temperatures)] * growth
            t1 = None if ex.temperature_end is None else \
                ex.temperature_end[w % len(ex.temperature_end)] * growth
            dog = Watchdog(lower, upper, ex.max_candidates, ex.candidate_stride)
            res = run_walker(start, calc, dog, ex.steps, ex.dt_fs, t0, t1, ex.ensemble,
                             ex.friction, seed=_seed(cfg.seed, k, w))
            steps += res.steps_done
            triggers += int(res.paused_at is not None)
            for a, decision in [(a, "candidate") for a in res.candidates] + \
                    [(a, "discard") for a in res.discarded]:
                a.info.update(walker=w, decision=decision)
                found.append(a)
            restart.append(res.last_trusted if res.last_trusted is not None else start)
        for a in found:
            a.set_momenta(None)  # positions are what gets labelled
        folder = self._path("explore", k)
        folder.mkdir(parents=True, exist_ok=True)
        _write_extxyz(folder / "pool.extxyz", found)
        _write_extxyz(folder / "walkers.extxyz", restart)
        c = self.state.counters
        c["quiet_steps"] = 0 if found else c.get("quiet_steps", 0) + steps
        self.state.extra["explore"] = {"md_steps": steps, "triggers": triggers,
                                       "candidates": sum(a.info["decision"] == "candidate"
                                                         for a in found),
                                       "discarded": sum(a.info["decision"] == "discard"
                                                        for a in found)}
        self._save(phase="select")

    def _select(self) -> None:
        k, cfg = self.state.iteration, self.cfg
        path = self._path("explore", k, "pool.extxyz")
        found = ase.io.read(path, ":") if path.stat().st_size else []
        lower, upper = self.state.extra["thresholds"]

        def new(a):  # not seen before this iteration (rows of iteration k are ours)
            row = self.store.get(structure_hash(a))
            return row is None or row.iteration == k

        pool = [a for a in found if a.info["decision"] == "candidate" and new(a)]
        budget = cfg.select.batch_size
        if cfg.loop.max_labels is not None:
            done = sum(1 for r in self.store.rows("labelled") if r.iteration < k)
            budget = max(0, min(budget, cfg.loop.max_labels - done))
        chosen = self.choose(pool, budget, k)
        for i, a in enumerate(pool):
            if i in chosen:
                self.store.add_candidate(a, iteration=k, trigger=a.info["sigma"])
            else:
                self.store.add_discarded(a, k, f"not selected ({cfg.select.method})",
                                         trigger=a.info["sigma"])
        for a in found:
            if a.info["decision"] == "discard" and new(a):
                self.store.add_discarded(a, k, f"above the trust interval ({upper:.3g} eV/Å)",
                                         trigger=a.info["sigma"])
        if chosen:
            self._save(phase="label")
        else:  # nothing to learn this time: same committee, explore again
            self._summarise(k, None, None)
            self._next_iteration()

    def choose(self, pool, budget: int, k: int) -> set[int]:
        """Indices of ``pool`` to label (``[select] method``, see
        :func:`nnpot.active.features.choose_batch`)."""
        method = self.cfg.select.method
        if not pool or budget <= 0:
            return set()
        needs_model = method in MODEL_METHODS and len(pool) > budget
        model = self.model(self.state.paths["model"])[0] if needs_model else None
        labelled = self.store.labelled_atoms() if needs_model else ()
        sel = self.cfg.select
        cost = label_cost(pool, sel.cost, sel.cost_exponent) if needs_model else None
        idx = choose_batch(method, model, pool, budget, sigmas=[a.info["sigma"] for a in pool],
                           labelled=labelled, seed=_seed(self.cfg.seed, k, 17), cost=cost)
        return set(idx.tolist())

    def _summarise(self, k: int, metrics: dict | None, header: dict | None) -> None:
        counts = self.store.counts()
        explore = self.state.extra.pop("explore", {}) if k > 0 else {}
        steps = explore.get("md_steps", 0)
        rows = self.store.rows(iteration=k)
        entry = {
            "iteration": k, "labelled": counts["labelled"], "failed": counts["failed"],
            "new_labels": sum(r.status == "labelled" for r in rows),
            "new_failures": sum(r.status == "failed" for r in rows), **explore,
            "trigger_rate": explore.get("triggers", 0) / steps if steps else None,
            "quiet_steps": int(self.state.counters.get("quiet_steps", 0)),
            "lower": self.state.extra["thresholds"][0],
            "upper": self.state.extra["thresholds"][1], "retrained": metrics is not None,
        }
        for split, m in (metrics or {}).items():
            for key in ("energy_rmse_mev_atom", "forces_rmse_mev_ang"):
                if key in m:
                    entry[f"{split}_{key}"] = m[key]
            cal = m.get("calibration", {}).get("forces_recalibrated", {})
            if "coverage_68" in cal:
                entry[f"{split}_forces_coverage_68"] = cal["coverage_68"]
        history = [h for h in self.state.extra.get("history", []) if h["iteration"] != k]
        self.state.extra["history"] = [*history, entry]
        atomic_write_text(self.dir / "iterations.jsonl", "".join(
            json.dumps(h) + "\n" for h in self.state.extra["history"]))
        self.echo(_line(entry))


def _write_extxyz(path: Path, frames) -> None:
    import io

    buf = io.StringIO()
    for a in frames:
        ase.io.write(buf, a, format="extxyz")
    atomic_write_text(path, buf.getvalue())


def _line(e: dict) -> str:
    parts = [f"iter {e['iteration']:3d}", f"labels {e['labelled']:4d} (+{e['new_labels']})",
             f"failed {e['failed']}"]
    if e.get("md_steps"):
        parts.append(f"md {e['md_steps']} steps, trigger rate {e['trigger_rate']:.3g}/step")
    if "valid_forces_rmse_mev_ang" in e:
        parts.append(f"valid F {e['valid_forces_rmse_mev_ang']:.1f} meV/Å")
    if "test_forces_rmse_mev_ang" in e:
        parts.append(f"test F {e['test_forces_rmse_mev_ang']:.1f} meV/Å")
    if "valid_forces_coverage_68" in e:
        parts.append(f"cov68 {e['valid_forces_coverage_68']:.2f}")
    parts.append(f"trust [{e['lower']:.3g}, {e['upper']:.3g}) eV/Å")
    return "active: " + " | ".join(parts)
