"""nnpot: neural-network potentials for atoms and nucleons, with honest uncertainty.

The public API is re-exported here; everything else may change.
"""

__version__ = "0.1.0"
