"""UQ figures: written atomically as PNGs, and the curves drawn are the metrics' curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from nnpot.plotting.uq import (
    calibration_plot,
    draw_calibration,
    error_vs_sigma_plot,
    truncation_band_plot,
)
from nnpot.uq import coverage_curve, truncation_band

PNG = b"\x89PNG\r\n\x1a\n"


def test_calibration_figures(tmp_path):
    rng = np.random.default_rng(0)
    sigma = np.exp(rng.uniform(-2, 0, 500))
    err = sigma * rng.standard_normal(500)
    series = {"calibrated": (err, sigma), "over-confident": (err, sigma / 2)}
    p = calibration_plot(series, tmp_path / "cal.png", title="toy")
    assert p.read_bytes().startswith(PNG)
    q = error_vs_sigma_plot(series, tmp_path / "sub" / "err.png", units="eV")
    assert q.read_bytes().startswith(PNG)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["cal.png", "sub"]  # no temp files
    # the drawn over-confident curve is the metric's coverage curve (lies below the diagonal)
    fig, ax = plt.subplots()
    draw_calibration(ax, {"oc": (err, sigma / 2)})
    x, y = ax.lines[1].get_data()
    p_ref, obs_ref = coverage_curve(err, sigma / 2)
    np.testing.assert_allclose(y, obs_ref)
    assert np.all(y[1:-1] <= x[1:-1])
    plt.close(fig)


def test_truncation_band_figure(tmp_path):
    x = np.linspace(10, 300, 30)  # MeV
    Q = np.sqrt(x / 940.0) * 0.8
    rng = np.random.default_rng(1)
    c = rng.normal(size=(4, 30))
    y_ref = np.full(30, 20.0)
    pred = np.cumsum([y_ref * c[i] * Q**n for i, n in enumerate((0, 2, 3, 4))], axis=0)
    out = truncation_band(pred, y_ref, Q, (0, 2, 3, 4))
    path = truncation_band_plot(x, pred, out["half_width_per_order"], tmp_path / "bands.png",
                                labels=["LO", "NLO", "N2LO", "N3LO"],
                                data=(x[::5], pred[-1, ::5], np.full(6, 0.5)),
                                xlabel="T_lab (MeV)", ylabel="δ (deg)")
    assert path.read_bytes().startswith(PNG)
