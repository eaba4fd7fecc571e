"""Label efficiency of active learning: labels needed to reach a test-set force error.

Pool-based protocol (the same for every selection method, so only the choice differs):

1. A pool of unlabelled MD frames is sampled once per system (below) and labelled once by
   the oracle through :func:`nnpot.active.label_many` (a local process pool); a method
   only *sees* a label when it selects that frame, and "labels" counts those.
2. Each run starts from ``initial`` frames drawn at random from the pool (the same frames
   for every method with the same seed), trains a committee with the loop's own
   :func:`nnpot.active.retrain.train_committee` (bootstrap members, stable hash split for
   validation: validation labels count as labels), and then repeats ``iterations`` times:
   choose ``batch`` new frames among the unlabelled ones with
   :func:`nnpot.active.features.choose_batch`, add their labels, retrain warm-started
   from the previous committee, and evaluate the force RMSE on a fixed held-out test set.
3. Methods: ``random`` (uniform sampling of MD frames: the baseline), ``disagreement``
   (largest committee force deviation σ_max, the watchdog's trigger), ``d_optimal``
   (greedy D-optimal design on last-layer features, information matrix starting from the
   labelled frames), ``d_optimal_atoms`` (the same with a structure's per-atom features as
   its rows of information, a proxy for its 3N force labels) and ``hybrid`` (the
   4 × batch largest σ_max, then D-optimal among them, so that one batch is not a burst
   of consecutive, nearly identical frames), ``farthest_point`` (descriptor space), the
   ``*_cost`` variants (information gain per atom labelled; water only) and the
   diagnostic reference ``rare_first`` (not a method: it reads the pool's provenance,
   see :func:`rare_first`).

Figure of merit: ``labels_to_random_final`` — the label count at which a run's test force
RMSE falls to random sampling's final error (geometric mean over seeds; log-linear
interpolation between measured points); for a method's "mean" row, of its seed-averaged
curve, and ``fraction_of_random_labels`` = that / random's label count. The goal is ≤ 0.5.
Per seed also ``paired_fraction``: labels to reach the final error of random's run with the
same seed (same initial frames), over random's label count.

Pool settings (the test set is the same for all of a system's settings;
``active_pools.POOL_SETTINGS`` says which system has which):

- ``balanced`` — every (system, temperature) trajectory contributes the same number of
  frames: the best case for random sampling, since the pool then looks like the test set.
- ``skewed`` — what an MD campaign produces: 80 % of the frames from one long run (copper:
  300 K bulk; water: a 6-molecule cluster at 300 K), the condition of interest, cheap to
  simulate, frames 10 fs apart and therefore correlated; the rest in short bursts of 8
  consecutive frames from each other condition (copper: hotter / defect / surface,
  :func:`active_pools.copper_pool_skewed`; water: 2–12 molecules at 250 and 450 K,
  :func:`active_pools.water_pool_skewed`).
- ``campaign`` (water only) — the same shape, but the long run is the smallest H-bonded
  system, the water dimer at 300 K (75 % after dropping its unbound frames; narrow in
  *local* environments: one H-bond per atom at most), and the bursts of 8 frames hold
  4–12-molecule clusters at 250 and 450 K and the monomer at 300 and 600 K
  (:func:`active_pools.water_pool_campaign`).

Systems:

- ``copper_emt`` — ASE EMT. Pool: Langevin MD (2 fs, 0.02 fs⁻¹) of a 32-atom fcc cell, the
  same with a vacancy, and (111) and (100) 3×3×4 slabs, each at 300, 600, 900, 1200 K;
  40 frames 20 fs apart after 0.4 ps (640 frames). Test: the MD, vacancy and surface frames
  of the shipped ``cu_emt`` set (108-atom bulk, strained 32-atom cells, 107-atom vacancy
  cells, 45-atom slabs; independent MD). 8 + 7 batches of 16 labels. Skewed pool: 480
  frames of 300 K bulk + 15 × 8 frames of the other conditions (600 frames).
- ``water_xtb`` — GFN2-xTB (tblite). Pool: water clusters of 2–12 molecules (xTB takes
  ~0.01–0.1 s each here, a 32-molecule periodic box ~20 s, so the benchmark uses clusters
  only): 32 trajectories with the flexible sampling force field of ``nnpot.data.water_xtb``
  at 250–450 K, 12 frames 40 fs apart after 0.5 ps (~330 connected frames). Test: the
  cluster and monomer frames of the shipped ``water_xtb`` set (2–20 molecules) when it
  exists, else clusters from independent trajectories made here. 8 + 7 batches of 8.

Results and their discussion: ``benchmarks/README_active.md``.

Run: ``python benchmarks/bench_active.py [--quick]`` (or through ``benchmarks/run.py``).
Writes ``active.json``, ``active_<setting>.json`` and ``active_<setting>.png`` to the output
folder (setting ``copper_emt``, ``water_xtb``: balanced pools; ``*_skewed``,
``water_xtb_campaign``);
``--reuse`` keeps curves of an earlier run on the same pool and runs only missing ones.
Units: force RMSE in meV/Å, energy RMSE in meV/atom, times in s.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # active_pools.py sits next to this file
from active_pools import POOL_SETTINGS, pool_composition  # noqa: E402

RESULTS = HERE / "results"
METHODS = ("random", "disagreement", "d_optimal", "d_optimal_atoms", "hybrid",
           "d_optimal_cost", "d_optimal_atoms_cost", "farthest_point", "rare_first")
# "<method>_cost": the D-optimal stage picks by information gain per atom labelled
# (choose_batch(..., cost=label_cost(pool, "atoms"))); only where structure sizes differ
COST_METHODS = ("d_optimal_cost", "d_optimal_atoms_cost")
COST_SYSTEMS = {"water_xtb"}  # copper's structures all have 31-36 atoms
# not a selection method: a reference that reads the pool's provenance (which frames are
# not from the main run), which no method sees; see rare_first
DIAGNOSTIC_METHODS = ("rare_first",)
POOLS = ("balanced", "skewed", "campaign")  # which system has which: POOL_SETTINGS

# n_radial = 8: the automatic grid every recorded curve was made with (the [model] default
# became 24 at 23:03 on 2026-11-25; pinned so that runs stay comparable and --reuse valid)
TRAINING = {"epochs": 60, "batch_size": 4, "lr": 0.01, "lr_final": 0.001, "patience": 1000}
SYSTEMS = {
    "copper_emt": {"model": {"committee": 4, "cutoff": 5.0, "hidden": [16, 16],
                             "n_radial": 8},
                   "training": TRAINING, "retrain_epochs": 30, "initial": 8, "batch": 16},
    "water_xtb": {"model": {"committee": 4, "cutoff": 4.0, "hidden": [16, 16],
                            "n_radial": 8},
                  "training": TRAINING, "retrain_epochs": 30, "initial": 8, "batch": 8},
}
FULL = {"seeds": (0, 1, 2), "iterations": 7, "systems": ("copper_emt", "water_xtb"),
        "pools": POOLS, "methods": METHODS}
QUICK = {"seeds": (0, 1), "iterations": 4, "systems": ("copper_emt", "water_xtb"),
         "pools": POOLS, "methods": METHODS}
WORKERS = 2
# settings that `make bench` (main with no selection) also runs with --package-net
PACKAGE_NET_SETTINGS = (("water_xtb", "campaign"),)


def _setting_name(system: str, pool: str, labels: int | None = None) -> str:
    """``copper_emt`` (balanced pool, the original benchmark), ``copper_emt_skewed``,
    ``water_xtb_campaign``, ...; with ``labels`` (a budget other than the default
    schedule's) ``water_xtb_campaign_128labels``."""
    name = system if pool == "balanced" else f"{system}_{pool}"
    return name if labels is None else f"{name}_{labels}labels"


# --- pools and test sets ----------------------------------------------------------------
# --- one learning curve (runs in a worker process) --------------------------------------
def learning_curve(system: str, method: str, seed: int, iterations: int, pool, test,
                   pool_setting: str = "balanced", model: dict | None = None) -> dict:
    """Test errors after each retraining of one (system, pool, method, seed) run;
    ``model``: [model] entries that replace the system's (``--package-net``)."""
    import torch

    from nnpot.active.features import choose_batch, label_cost
    from nnpot.active.retrain import train_committee
    from nnpot.active.settings import ActiveConfig
    from nnpot.config import parse_config

    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    s = SYSTEMS[system]
    cfg = parse_config(ActiveConfig, {
        "seed": seed, "model": {**s["model"], **(model or {})},
        "training": {**s["training"], "seed": 100 * seed},
        "loop": {"retrain_epochs": s["retrain_epochs"]}})
    rng = np.random.default_rng([seed, 7])
    chosen = [int(i) for i in rng.choice(len(pool), size=s["initial"], replace=False)]
    out = {"system": system, "pool": pool_setting, "method": method, "seed": seed,
           "model": {**s["model"], **(model or {})},
           "labels": [], "atoms": [], "oracle_s": [],
           "forces_rmse_mev_ang": [], "energy_rmse_mev_atom": [],
           "valid_forces_rmse_mev_ang": [], "select_s": 0.0}
    warm = None
    with tempfile.TemporaryDirectory(prefix="bench_active_") as tmp:
        for it in range(iterations + 1):
            model_path = Path(tmp) / f"iter_{it:03d}.nnp"
            res = train_committee([pool[i] for i in chosen], cfg, it, Path(tmp) / f"t{it}",
                                  model_path, warm_from=warm, test=test)
            warm = model_path
            out["labels"].append(len(chosen))
            out["atoms"].append(int(sum(len(pool[i]) for i in chosen)))
            out["oracle_s"].append(float(sum(pool[i].info.get("oracle_s", np.nan)
                                             for i in chosen)))
            out["forces_rmse_mev_ang"].append(res.metrics["test"]["forces_rmse_mev_ang"])
            out["energy_rmse_mev_atom"].append(res.metrics["test"]["energy_rmse_mev_atom"])
            out["valid_forces_rmse_mev_ang"].append(
                res.metrics["valid"].get("forces_rmse_mev_ang"))
            if it == iterations:
                break
            ts = time.perf_counter()
            taken = set(chosen)
            rest = [i for i in range(len(pool)) if i not in taken]
            cand = [pool[i] for i in rest]
            base = method.removesuffix("_cost")
            if method in DIAGNOSTIC_METHODS:
                chosen += rare_first(pool, rest, s["batch"], [seed, it, 17])
                continue
            pick = choose_batch(base, res.model, cand, s["batch"],
                                labelled=[pool[i] for i in chosen], seed=[seed, it, 17],
                                cost=label_cost(cand, "atoms") if base != method else None)
            chosen += [rest[j] for j in pick]
            out["select_s"] += time.perf_counter() - ts
    out["chosen"] = pool_composition([pool[i] for i in chosen])
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    return out


def rare_first(pool, rest: list[int], k: int, seed) -> list[int]:
    """Diagnostic reference, not a method: ``k`` of the unlabelled pool indices ``rest``,
    drawn at random among the frames that are *not* from the pool's main run (its most
    common ``config_type@temperature``) while any are left, then at random among the main
    run's. It uses the provenance tags, which no selection method sees, and so shows how
    far "label the rare conditions, skip the redundant run" can go on a pool."""
    comp = pool_composition(pool)
    main_run = max(comp, key=comp.get)
    tag = [f"{pool[i].info['config_type']}@{pool[i].info['temperature']:.0f}" for i in rest]
    rng = np.random.default_rng(seed)
    rare = [i for i, t in zip(rest, tag, strict=True) if t != main_run]
    common = [i for i, t in zip(rest, tag, strict=True) if t == main_run]
    order = list(rng.permutation(rare)) + list(rng.permutation(common))
    return [int(i) for i in order[:k]]


# --- summary ----------------------------------------------------------------------------
def labels_to_reach(labels, errors, target: float) -> float | None:
    """Labels at which ``errors`` first fall to ``target``: linear interpolation of
    log(error) between the two measured points around the crossing (None if never)."""
    for k, (n, e) in enumerate(zip(labels, errors, strict=True)):
        if e <= target:
            if k == 0:
                return float(n)
            n0, e0 = labels[k - 1], errors[k - 1]
            f = (np.log(e0) - np.log(target)) / (np.log(e0) - np.log(e))
            return float(n0 + f * (n - n0))
    return None


def _paired(c: dict, rand: list[dict], budget: int) -> float | None:
    """Labels for curve ``c`` to reach the final error of random's run with its seed,
    over ``budget`` (None: no such random run, or never reached)."""
    same = [r for r in rand if r["seed"] == c["seed"]]
    if not same:
        return None
    hit = labels_to_reach(c["labels"], c["forces_rmse_mev_ang"],
                          same[0]["forces_rmse_mev_ang"][-1] * (1 + 1e-12))
    return None if hit is None else round(hit / budget, 2)


def _paired_cost(c: dict, rand: list[dict], key: str) -> float | None:
    """As :func:`_paired`, but counting the cumulative ``key`` ("atoms" labelled, or
    "oracle_s" of oracle wall time) instead of structures: the cost at the crossing
    (interpolated between the measured points) over random's total cost with that seed."""
    same = [r for r in rand if r["seed"] == c["seed"]]
    if not same or key not in c or key not in same[0]:
        return None
    hit = labels_to_reach(c["labels"], c["forces_rmse_mev_ang"],
                          same[0]["forces_rmse_mev_ang"][-1] * (1 + 1e-12))
    total = same[0][key][-1]
    if hit is None or not np.isfinite(total) or total <= 0:
        return None
    return round(float(np.interp(hit, c["labels"], c[key])) / total, 2)


def _median_cost(mine: list[dict], rand: list[dict], key: str) -> float | str | None:
    """Median over seeds of :func:`_paired_cost`, a run that never gets there counting as
    +inf (">1" when that makes the median infinite); None if any curve lacks ``key``
    (results made before the cost was recorded)."""
    if not all(key in c for c in mine + rand):
        return None
    vals = [_paired_cost(c, rand, key) for c in mine]
    med = float(np.median([np.inf if v is None else v for v in vals]))
    return ">1" if not np.isfinite(med) else round(med, 2)


def summarise(system: str, curves: list[dict]) -> tuple[list[dict], float, dict]:
    """Rows (method, seed, labels, final errors, labels to reach random's final error).

    The target is the geometric mean over seeds of random sampling's final test force
    RMSE. Per seed: where that run's curve reaches it, and (paired, since runs with the
    same seed share their initial frames) where it reaches the final error of random's
    run with the same seed, as a fraction of random's labels; per method ("mean" rows):
    where the seed-averaged curve (geometric mean at each label count) reaches the target,
    and that as a fraction of random's label count.
    """
    rand = [c for c in curves if c["method"] == "random"]
    target = float(np.exp(np.mean([np.log(c["forces_rmse_mev_ang"][-1]) for c in rand])))
    budget = rand[0]["labels"][-1]
    rows, fractions = [], {}
    for method in [m for m in METHODS if any(c["method"] == m for c in curves)]:
        mine = sorted((c for c in curves if c["method"] == method), key=lambda c: c["seed"])
        for c in mine:
            hit = labels_to_reach(c["labels"], c["forces_rmse_mev_ang"], target)
            rows.append({"system": system, "pool": c.get("pool", "balanced"),
                         "method": method, "seed": c["seed"],
                         "labels": c["labels"][-1],
                         "test_F_rmse_meV_A": round(c["forces_rmse_mev_ang"][-1], 1),
                         "test_E_rmse_meV_atom": round(c["energy_rmse_mev_atom"][-1], 2),
                         "labels_to_random_final": (round(hit, 1) if hit is not None
                                                    else f">{c['labels'][-1]}"),
                         "paired_fraction": _paired(c, rand, budget),
                         "paired_fraction_atoms": _paired_cost(c, rand, "atoms"),
                         "paired_fraction_oracle_s": _paired_cost(c, rand, "oracle_s")})
        mean = np.exp(np.mean([np.log(c["forces_rmse_mev_ang"]) for c in mine], axis=0))
        hit = labels_to_reach(mine[0]["labels"], list(mean), target * (1 + 1e-12))
        fractions[method] = None if hit is None else round(hit / budget, 3)
        e_mean = np.exp(np.mean([np.log(c["energy_rmse_mev_atom"][-1]) for c in mine]))
        rows.append({"system": system, "pool": mine[0].get("pool", "balanced"),
                     "method": method, "seed": "mean",
                     "labels": mine[0]["labels"][-1],
                     "test_F_rmse_meV_A": round(float(mean[-1]), 1),
                     "test_E_rmse_meV_atom": round(float(e_mean), 2),
                     "labels_to_random_final": (round(hit, 1) if hit is not None
                                                else f">{mine[0]['labels'][-1]}"),
                     "fraction_of_random_labels": (None if hit is None
                                                   else round(hit / budget, 2)),
                     **{f"median_paired_fraction_{k}": _median_cost(mine, rand, k)
                        for k in ("atoms", "oracle_s")}})
    return rows, target, fractions


REFERENCE_LABEL = "rare_first (provenance reference)"


def plot_setting(curves: list[dict], path: Path, target: float, system: str, pool: str,
                 package_net: bool = False) -> Path:
    """The learning-curve figure of one setting: every method's curves (the diagnostic
    reference labelled as such), random's final error dotted; the title names the pool,
    the network, the budget and the number of seeds."""
    from nnpot.plotting.active import METHOD_STYLE, learning_curves

    for m, style in (("d_optimal_atoms", ("tab:cyan", "P")), ("hybrid", ("tab:purple", "v")),
                     ("d_optimal_cost", ("tab:olive", "x")),
                     ("d_optimal_atoms_cost", ("tab:brown", "*")),
                     (REFERENCE_LABEL, ("black", "x"))):
        METHOD_STYLE.setdefault(m, style)  # one colour per method (seeds and mean)
    by_method = {(REFERENCE_LABEL if m in DIAGNOSTIC_METHODS else m):
                 [c for c in curves if c["method"] == m] for m in METHODS}
    seeds = len({c["seed"] for c in curves})
    net = "package network" if package_net else "small pinned network"
    return learning_curves({m: v for m, v in by_method.items() if v}, path, target=target,
                           title=f"{system}, {pool} pool, {net}: test force error vs "
                                 f"labels ({seeds} seeds)")


def _reusable(path: Path, info: dict, iterations: int) -> list[dict]:
    """Curves of an earlier run in ``path`` made on the same pool and test set (same size
    and composition) with the same number of iterations; [] otherwise."""
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    same = all(old.get(k) == info[k] for k in ("pool_size", "test_size", "test_atoms"))
    comp = old.get("pool_composition")
    same &= comp is None or comp == info["pool_composition"]
    return [c for c in old.get("curves", []) if same and len(c["labels"]) == iterations + 1]


def main(out_dir: Path = RESULTS, quick: bool = False, systems=None, seeds=None,
         pools=None, methods=None, workers: int = WORKERS, reuse: bool = False,
         iterations: int | None = None, package_net: bool = False,
         merge_summary: bool = False) -> dict:
    """Run the benchmark; write JSON and learning-curve PNGs to ``out_dir``.

    ``reuse``: keep the curves of an earlier run in ``out_dir`` (same pool, test set and
    iterations) and run only the (method, seed) pairs it lacks; ``active.json`` keeps the
    earlier summary's other settings and lists every run (wall and CPU time).
    ``iterations``: selection rounds other than the schedule's (7; quick 4); the settings
    are then named with their label budget (``water_xtb_campaign_128labels``), so that
    longer curves never mix with the default ones.
    ``package_net``: the package's default radial grid and network (``[model] n_radial``
    and ``hidden`` of :class:`nnpot.config.ModelConfig`) instead of the small pinned ones
    (cutoff and committee stay the system's); settings get the suffix ``_packagenet``.
    With no systems, pools, methods, iterations or network given (what ``make bench``
    runs), the water campaign pool is then also run with the package network
    (:data:`PACKAGE_NET_SETTINGS`), the setting where water meets the goal.
    ``merge_summary``: keep the other settings of an existing ``active.json`` (as
    ``reuse`` does) without reusing any curve.
    """
    from nnpot.io import atomic_write_json

    default_plan = not (systems or pools or methods or package_net) and iterations is None
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = dict(QUICK if quick else FULL)
    plan.update({k: tuple(v) for k, v in (("systems", systems), ("seeds", seeds),
                                          ("pools", pools), ("methods", methods)) if v})
    if iterations is not None and iterations != plan["iterations"]:
        if int(iterations) != iterations or iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
        plan["iterations"] = int(iterations)
        tag = {s: SYSTEMS[s]["initial"] + iterations * SYSTEMS[s]["batch"] for s in SYSTEMS}
    else:
        tag = dict.fromkeys(SYSTEMS)

    net = None
    if package_net:
        from nnpot.config import ModelConfig

        default = ModelConfig()
        net = {"n_radial": default.n_radial, "hidden": list(default.hidden)}

    def setting_name(system, pool):  # noqa: F811 - the budget-tagged name in this run
        name = _setting_name(system, pool, tag[system])
        return f"{name}_packagenet" if package_net else name

    settings = [(system, pool) for system in plan["systems"] for pool in plan["pools"]
                if pool in POOL_SETTINGS[system]]
    if not settings:
        raise ValueError(f"no setting: pools {plan['pools']} of systems {plan['systems']} "
                         f"(pools per system: {POOL_SETTINGS})")
    t0, c0 = time.perf_counter(), time.process_time()
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    me = importlib.import_module("bench_active")  # workers find functions by this name
    pool_mod = importlib.import_module("active_pools")
    curves: dict[tuple, list[dict]] = {st: [] for st in settings}
    reused: dict[tuple, int] = {}
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as ex:
        data = dict(zip(settings, ex.map(pool_mod.pool_and_test, [st[0] for st in settings],
                                         [quick] * len(settings), [st[1] for st in settings]),
                        strict=True))
        for st in settings:
            print(f"  {setting_name(*st)}: {json.dumps(data[st]['info'])}", flush=True)
            if reuse:
                old = _reusable(out_dir / f"active_{setting_name(*st)}.json", data[st]["info"],
                                plan["iterations"])
                model = {**SYSTEMS[st[0]]["model"], **(net or {})}  # older curves: pinned
                curves[st] = [{**c, "pool": st[1], "reused": True} for c in old
                              if c["method"] in METHODS and c["seed"] in plan["seeds"]
                              and c.get("model", SYSTEMS[st[0]]["model"]) == model]
                reused[st] = len(curves[st])
        have = {(st, c["method"], c["seed"]) for st in settings for c in curves[st]}
        tasks = [(st, method, seed) for seed in plan["seeds"] for st in settings
                 for method in plan["methods"] if (st, method, seed) not in have
                 and (method not in COST_METHODS or st[0] in COST_SYSTEMS)]
        futures = [ex.submit(me.learning_curve, st[0], method, seed, plan["iterations"],
                             data[st]["pool"], data[st]["test"], st[1], net)
                   for st, method, seed in tasks]
        for (st, _, _), fut in zip(tasks, futures, strict=True):
            c = fut.result()
            c["made"] = time.strftime("%Y-%m-%d %H:%M")
            curves[st].append(c)
            print(f"  {setting_name(*st):18s} {c['method']:12s} seed {c['seed']}: "
                  f"F RMSE {c['forces_rmse_mev_ang'][0]:.0f} -> {c['forces_rmse_mev_ang'][-1]:.0f}"
                  f" meV/Å with {c['labels'][-1]} labels ({c['wall_s']:.0f} s, "
                  f"{c['cpu_s']:.0f} s CPU)", flush=True)
    table, result = [], {"quick": quick, "plan": {k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in plan.items()},
                         "settings": SYSTEMS, "systems": {}}
    for st in settings:
        name, mine = setting_name(*st), curves[st]
        rows, target, fractions = summarise(st[0], mine)
        for r in rows:
            r["setting"] = name
        table += rows
        plot_setting(mine, out_dir / f"active_{name}.png", target, st[0], st[1],
                     package_net)
        result["systems"][name] = {
            **data[st]["info"], "random_final_error": target,
            "fraction_of_random_labels": fractions,
            "goal_met": {m: f is not None and f <= 0.5 for m, f in fractions.items()
                         if m != "random" and m not in DIAGNOSTIC_METHODS},
            "curves_reused": reused.get(st, 0), "rows": rows, "curves": mine}
        atomic_write_json(out_dir / f"active_{name}.json", result["systems"][name])
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["cpu_s"] = round(time.process_time() - c0 + children.ru_utime + children.ru_stime, 1)
    result["load_average"] = os.getloadavg()
    run = {k: result[k] for k in ("wall_s", "cpu_s", "load_average")}
    run.update(date=time.strftime("%Y-%m-%d %H:%M"), settings=list(result["systems"]),
               curves_run=len(tasks), workers=workers)
    result["runs"] = [run]
    summary = out_dir / "active.json"
    if (reuse or merge_summary) and summary.exists():  # keep the earlier summary's others
        prev = json.loads(summary.read_text())
        for name, entry in prev.get("systems", {}).items():
            if name not in result["systems"]:
                result["systems"][name] = entry
                table = [{"system": r["system"], "pool": r.get("pool", "balanced"), **r}
                         for r in prev.get("table", []) if r.get("setting", _setting_name(
                             r["system"], r.get("pool", "balanced"))) == name] + table
        result["runs"] = prev.get("runs", [{k: prev.get(k) for k in
                                             ("wall_s", "cpu_s", "load_average")}]) + [run]
    result["table"] = table
    atomic_write_json(out_dir / "active.json", json.loads(json.dumps(result, default=str)))
    if default_plan:
        for system, pool in PACKAGE_NET_SETTINGS:  # make bench: the package-network run too
            result = main(out_dir, quick, systems=(system,), seeds=seeds, pools=(pool,),
                          workers=workers, reuse=reuse, package_net=True, merge_summary=True)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # totals of the whole plan
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        result["cpu_s"] = round(time.process_time() - c0 + children.ru_utime
                                + children.ru_stime, 1)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--systems", nargs="*", choices=tuple(SYSTEMS), help="default: all")
    ap.add_argument("--seeds", nargs="*", type=int, help="default: 0 1 2 (quick: 0 1)")
    ap.add_argument("--pools", nargs="*", choices=POOLS,
                    help="default: every pool of each system (campaign: water only)")
    ap.add_argument("--methods", nargs="*", choices=METHODS, help="default: all")
    ap.add_argument("--workers", type=int, default=WORKERS)
    ap.add_argument("--iterations", type=int,
                    help="selection rounds (default 7, quick 4); another value tags the "
                         "settings with their label budget, e.g. water_xtb_campaign_128labels")
    ap.add_argument("--package-net", action="store_true",
                    help="the package's default radial grid and hidden layers instead of "
                         "the pinned small ones (settings named ..._packagenet)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep matching curves already in --out; run only the missing ones")
    args = ap.parse_args()
    res = main(Path(args.out), quick=args.quick, systems=args.systems, seeds=args.seeds,
               pools=args.pools, methods=args.methods, workers=args.workers, reuse=args.reuse,
               iterations=args.iterations, package_net=args.package_net)
    sys.path.insert(0, str(HERE))
    from run import print_table

    print_table("active", res["table"])
    print(f"wall {res['wall_s']} s, CPU {res['cpu_s']} s")
