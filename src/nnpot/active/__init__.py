"""Active learning: oracles, batch selection and the explore-label-retrain loop.

- :mod:`nnpot.active.oracle` — ``Oracle`` protocol, ``LabelRecord``, EMT / GFN2-xTB
  (tblite) / DFT (PySCF) oracles, ``FlakyOracle`` for fault injection, ``structure_hash``.
- :mod:`nnpot.active.execute` — ``label_many`` on any ``concurrent.futures.Executor``
  (local process pool, dask.distributed), with timeouts and bounded retries.
- :mod:`nnpot.active.select` — max disagreement, farthest point, greedy D-optimal.
- :mod:`nnpot.active.store` — ASE SQLite ``Store`` with provenance, atomic ``RunState``.
"""

from nnpot.active.execute import default_executor, label_many
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
from nnpot.active.store import DuplicateLabelError, RunState, Store

__all__ = [
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
