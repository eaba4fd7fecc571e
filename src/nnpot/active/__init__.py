"""Active learning: oracles, batch selection and the explore-label-retrain loop.

- :mod:`nnpot.active.oracle` — ``Oracle`` protocol, ``LabelRecord``, EMT / GFN2-xTB
  (tblite) / DFT (PySCF) oracles, ``FlakyOracle`` for fault injection, ``structure_hash``.
- :mod:`nnpot.active.execute` — ``label_many`` on any ``concurrent.futures.Executor``
  (local process pool, dask.distributed), with timeouts and bounded retries.
- :mod:`nnpot.active.select` — max disagreement, farthest point, greedy D-optimal.
- :mod:`nnpot.active.store` — ASE SQLite ``Store`` with provenance, atomic ``RunState``.
- :mod:`nnpot.active.explore` — ``Watchdog`` (two-threshold trust interval), ``run_walker``.
- :mod:`nnpot.active.features` — last-layer (Fisher) and descriptor features of structures;
  ``choose_batch`` (the ``[select] method`` on a pool of structures).
- :mod:`nnpot.active.retrain` — warm-started committee retraining, stable hash split.
- :mod:`nnpot.active.settings` / :mod:`nnpot.active.loop` — ``ActiveConfig`` and
  ``ActiveLearning`` (``nnpot active``), resumable after a kill.
- :mod:`nnpot.active.demo` — ``water_demo``: GFN2-xTB water from ten clusters, then MD.
"""

from nnpot.active.execute import default_executor, label_many
from nnpot.active.explore import Watchdog, run_walker
from nnpot.active.features import choose_batch, max_force_deviation, structure_features
from nnpot.active.loop import ActiveLearning, make_oracle
from nnpot.active.oracle import (
    EMTOracle,
    FlakyOracle,
    LabelRecord,
    Oracle,
    PySCFOracle,
    XTBOracle,
    structure_hash,
)
from nnpot.active.select import d_optimal, farthest_point, max_disagreement
from nnpot.active.settings import ActiveConfig
from nnpot.active.store import DuplicateLabelError, RunState, Store

__all__ = [
    "ActiveConfig",
    "ActiveLearning",
    "Watchdog",
    "make_oracle",
    "run_walker",
    "choose_batch",
    "max_force_deviation",
    "structure_features",
    "DuplicateLabelError",
    "EMTOracle",
    "FlakyOracle",
    "LabelRecord",
    "Oracle",
    "PySCFOracle",
    "RunState",
    "Store",
    "XTBOracle",
    "d_optimal",
    "default_executor",
    "farthest_point",
    "label_many",
    "max_disagreement",
    "structure_hash",
]
