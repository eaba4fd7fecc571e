"""Configuration of ``nnpot active`` (TOML, validated; unknown keys are errors).

Units: thresholds in eV/Å (max atomic force deviation of the committee), times in fs
(``dt_fs``) and s (``timeout_s``, ``max_wall_s``), temperatures in K, friction in 1/fs.

Example::

    seed = 0
    [data]
    initial = "start.extxyz"   # structures to start from (labels are used if present)
    test = "test.extxyz"       # optional labelled test set, evaluated every iteration
    [oracle]
    kind = "xtb"               # "emt", "xtb", "pyscf"
    settings = { accuracy = 1.0 }
    [explore]
    walkers = 4
    steps = 500
    temperatures = [300.0, 600.0]
    [trust]
    mode = "calibrated"        # or "absolute" with lower/upper in eV/Å
    [select]
    method = "d_optimal"
    batch_size = 8
    cost = "uniform"           # or "atoms": gain per (atoms ** cost_exponent)
    [loop]
    max_iterations = 10
    max_labels = 200
    [model]                    # as in `nnpot fit`
    committee = 4
    [training]                 # as in `nnpot fit`
    epochs = 200

Oracles on a SLURM cluster: start a dask-jobqueue cluster and give its scheduler address,

    # python: from dask_jobqueue import SLURMCluster
    #         c = SLURMCluster(cores=8, memory="16GB", walltime="02:00:00"); c.scale(jobs=4)
    #         print(c.scheduler_address)
    [executor]
    kind = "dask"
    scheduler = "tcp://10.0.0.5:8786"
    workers = 32               # worker slots (bounds the structures in flight)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from nnpot.config import SCHEMA_VERSION, ModelConfig, Strict, TrainingConfig


class ActiveDataConfig(Strict):
    """[data]: starting structures and an optional test set."""

    initial: str | None = None  # extxyz / ASE db; unlabelled structures go to the oracle
    start: str | None = None  # MD starting structures (default: the initial structures)
    test: str | None = None  # labelled test set (errors reported every iteration)
    energy_key: str = "REF_energy"
    forces_key: str = "REF_forces"
    stress_key: str = "REF_stress"
    valid_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # by structure hash, stable


class OracleConfig(Strict):
    """[oracle]: which reference method labels structures, and how it is run."""

    kind: Literal["emt", "xtb", "pyscf"] = "emt"
    settings: dict[str, Any] = Field(default_factory=dict)  # constructor arguments
    timeout_s: float | None = Field(None, gt=0)
    max_retries: int = Field(1, ge=0)
    fail_fraction: float = Field(0.0, ge=0.0, le=1.0)  # fault injection (tests, demos)
    delay_s: float = Field(0.0, ge=0.0)  # fault injection: a slow oracle


class ExecutorConfig(Strict):
    """[executor]: where oracle calls run."""

    kind: Literal["process", "thread", "dask"] = "process"
    workers: int | None = Field(None, ge=1)  # default: number of CPU cores
    scheduler: str | None = None  # dask: scheduler address; None starts a LocalCluster


class ExploreConfig(Strict):
    """[explore]: molecular dynamics with the committee."""

    walkers: int = Field(2, ge=1)
    steps: int = Field(200, ge=1)  # MD steps per walker and iteration
    dt_fs: float = Field(1.0, gt=0)
    ensemble: Literal["langevin", "nve"] = "langevin"
    friction: float = Field(0.02, gt=0)  # 1/fs (Langevin)
    temperatures: list[float] = Field(default_factory=lambda: [300.0])  # K, per walker
    temperature_end: list[float] | None = None  # K: linear ramp within each segment
    temperature_growth: float = Field(1.0, gt=0)  # factor per iteration (ramp across)
    max_candidates: int = Field(1, ge=1)  # per walker and iteration; then it pauses
    candidate_stride: int = Field(5, ge=1)  # min. steps between a walker's candidates

    @model_validator(mode="after")
    def _temperatures(self) -> ExploreConfig:
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise ValueError("temperatures must be a non-empty list of values >= 0 K")
        if self.temperature_end is not None and len(self.temperature_end) != len(
                self.temperatures):
            raise ValueError("temperature_end must have as many entries as temperatures")
        return self


class TrustConfig(Strict):
    """[trust]: the two-threshold trust interval on the max force deviation (eV/Å).

    ``absolute``: ``lower``/``upper`` as given. ``calibrated``: ``lower = lower_factor ·
    e`` and ``upper = upper_factor · e``, with ``e = √3 · RMSE_F / s`` (RMSE_F the
    validation force RMSE per component, s the committee's force recalibration factor),
    i.e. the deviation at which the calibrated per-atom error equals the typical error.
    """

    mode: Literal["absolute", "calibrated"] = "absolute"
    lower: float = Field(0.1, gt=0)
    upper: float = Field(0.5, gt=0)
    lower_factor: float = Field(2.0, gt=0)
    upper_factor: float = Field(8.0, gt=0)

    @model_validator(mode="after")
    def _order(self) -> TrustConfig:
        if self.upper <= self.lower or self.upper_factor <= self.lower_factor:
            raise ValueError("the upper trust threshold must be above the lower one")
        return self


class SelectConfig(Strict):
    """[select]: how a batch is chosen among the candidates of an iteration."""

    method: Literal["d_optimal", "d_optimal_atoms", "disagreement", "farthest_point", "hybrid",
                    "random"] = "d_optimal"
    batch_size: int = Field(4, ge=1)
    #: what a label costs: "uniform" (every structure alike) or "atoms" (atoms ** exponent);
    #: with "atoms" the D-optimal methods pick by information gain per unit cost
    cost: Literal["uniform", "atoms"] = "uniform"
    cost_exponent: float = Field(1.0, ge=0.0, le=6.0)

    @model_validator(mode="after")
    def _cost_applies(self):
        if self.cost != "uniform" and self.method not in ("d_optimal", "d_optimal_atoms",
                                                          "hybrid"):
            raise ValueError(f"[select] cost = {self.cost!r} applies to d_optimal, "
                             f"d_optimal_atoms and hybrid, not to {self.method!r}")
        return self


class LoopConfig(Strict):
    """[loop]: when to stop, and warm-started retraining."""

    max_iterations: int = Field(10, ge=1)
    max_labels: int | None = Field(None, ge=1)  # label budget (oracle calls that succeed)
    max_wall_s: float | None = Field(None, gt=0)  # over all resumes
    quiet_steps: int | None = Field(None, ge=1)  # stop after this many MD steps w/o trigger
    retrain_epochs: int | None = Field(None, ge=1)  # epochs of warm-started retraining


class ActiveConfig(Strict):
    """Everything ``nnpot active`` needs."""

    schema_version: int = SCHEMA_VERSION
    seed: int = 0
    data: ActiveDataConfig = Field(default_factory=ActiveDataConfig)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    explore: ExploreConfig = Field(default_factory=ExploreConfig)
    trust: TrustConfig = Field(default_factory=TrustConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(committee=4))
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @model_validator(mode="after")
    def _committee(self) -> ActiveConfig:
        if self.model.committee < 2:
            raise ValueError("[model] committee must be >= 2: active learning needs the "
                             "committee's disagreement")
        return self
