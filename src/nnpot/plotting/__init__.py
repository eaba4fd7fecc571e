"""Figures (matplotlib, Agg backend). Core code never imports this package.

One module per pipeline: :mod:`nnpot.plotting.atomistic`, :mod:`nnpot.plotting.uq`,
:mod:`nnpot.plotting.nuclear`, :mod:`nnpot.plotting.active`.
"""

import matplotlib

matplotlib.use("Agg")
