"""Figures (matplotlib, Agg backend). Core code never imports this package.

One module per pipeline: :mod:`nnpot.plotting.atomistic`, :mod:`nnpot.plotting.uq`,
:mod:`nnpot.plotting.nuclear`, :mod:`nnpot.plotting.active`.
"""

import matplotlib

matplotlib.use("Agg")


def save_figure(fig, path):
    """Write ``fig`` as PNG to ``path`` atomically (temp file, then rename); close it."""
    from pathlib import Path

    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path
