"""Leftovers of the uncertainty issue on arrays: the structure-level out-of-domain
threshold (false-positive rate independent of the structure size)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support_uq import ETA, R0, R_CUT, R_S, radial_descriptors, structures  # noqa: F401

from nnpot.uq import DescriptorDomain, UQInputError, per_structure


@pytest.fixture(scope="module")
def calibrated():
    """Domain of 1500 training atoms per element; structure threshold calibrated on 40
    held-out 16-atom structures (640 rows)."""
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [radial_descriptors(rng, 1500, R0[0]), radial_descriptors(rng, 1500, R0[1])]
    )
    dom = DescriptorDomain().fit(x, np.repeat([0, 1], 1500))
    plain = DescriptorDomain.from_dict(dom.to_dict())  # per-atom only: any()
    xv, gv, sv = structures(rng, 40, 16)
    dom.calibrate_structures(xv, gv, sv, rate=0.01)
    return plain, dom


def test_in_domain_structures_of_any_size_are_rarely_flagged(calibrated):
    """any(per-atom flag) fires for a fraction 1 − (1 − ε)^N of in-distribution structures
    (a third of the 1024-atom ones here); the calibrated structure threshold keeps the
    rate at the per-cent level for every size, while the per-atom flags stay as they were."""
    plain, dom = calibrated
    rng = np.random.default_rng(1)
    for n_atoms, n_struct in ((4, 200), (16, 100), (128, 40), (1024, 20)):
        x, g, s = structures(rng, n_struct, n_atoms)
        flagged = dom.flag_structures(x, g, s)
        assert flagged.shape == (n_struct,)
        assert flagged.sum() <= max(1, int(0.03 * n_struct)), n_atoms
        np.testing.assert_array_equal(dom.flag(x, g), plain.flag(x, g))  # atoms unchanged
        if n_atoms == 1024:
            assert per_structure(plain.flag(x, g), s).mean() >= 0.2  # the old behaviour
    t = dom.structure_threshold(np.array([1, 4, 16, 128, 1024, 10**6]))
    assert np.all(t >= 1.0) and np.all(np.diff(t) >= 0)
    assert t[-1] > t[0]  # grows with size


def test_isolated_and_compressed_structures_are_flagged(calibrated):
    _, dom = calibrated
    rng = np.random.default_rng(2)
    # one atom without neighbours (all G = 0), alone or inside a large in-domain structure
    assert dom.flag_structures(np.zeros((1, R_S.size)), [0], [0]).all()
    x, g, s = structures(rng, 1, 1024)
    x[17] = 0.0
    assert dom.flag_structures(x, g, s).all()
    # compressed structures, small and large
    for strain, n_atoms in ((0.9, 16), (0.95, 128), (0.95, 1024)):
        x, g, s = structures(rng, 10, n_atoms, strain=strain)
        assert dom.flag_structures(x, g, s).all(), (strain, n_atoms)


def test_structure_threshold_round_trip_and_uncalibrated_default(calibrated):
    plain, dom = calibrated
    rng = np.random.default_rng(3)
    x, g, s = structures(rng, 8, 64, strain=0.97)
    dom2 = DescriptorDomain.from_dict(json.loads(json.dumps(dom.to_dict())))
    np.testing.assert_allclose(dom2.structure_score(x, g, s), dom.structure_score(x, g, s),
                               rtol=1e-12)
    # without calibration the structure flag is any() of the atom flags
    np.testing.assert_array_equal(plain.flag_structures(x, g, s),
                                  per_structure(plain.flag(x, g), s))
    assert plain.structure_threshold(1000) == 1.0
    # the diagnostic: the calibration structures themselves are rarely flagged
    assert dom.structure["calibration_flagged"] <= 0.05
    with pytest.raises(UQInputError, match="too few"):
        DescriptorDomain.from_dict(dom.to_dict()).calibrate_structures(x[:10], g[:10])


def _tick_labels(fig, axis):
    """Visible, non-empty tick labels (major and minor) of ``axis`` after drawing."""
    fig.canvas.draw()
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    lo, hi = sorted(axis.axes.get_xlim() if axis.axis_name == "x" else axis.axes.get_ylim())
    out = []
    for t in ticks:
        lab = t.label1
        if lab.get_visible() and lab.get_text().strip() and lo <= t.get_loc() <= hi:
            out.append(lab)
    return out


def test_error_vs_sigma_log_axes_have_no_overlapping_tick_labels():
    """σ spanning less than a decade (2–6 or 2.1–3.4 meV), |err| a few decades: each
    log axis carries at least two labels and no two labels' boxes overlap (matplotlib
    labels minor ticks of short log axes, which collided)."""
    import matplotlib.pyplot as plt

    from nnpot.plotting.uq import draw_error_vs_sigma

    rng = np.random.default_rng(5)
    cases = []
    for lo, hi in ((2e-3, 6e-3), (2.1e-3, 3.4e-3)):  # eV; the second has no 1-2-3-5 pair
        sigma = rng.uniform(lo, hi, 400)
        cases += [(size, sigma, sigma * rng.standard_normal(400))
                  for size in ((5.5, 4.8), (3.0, 2.5))]
    for size, sigma, err in cases:
        fig, ax = plt.subplots(figsize=size)
        draw_error_vs_sigma(ax, {"committee": (err, sigma)}, units="eV")
        for axis in (ax.xaxis, ax.yaxis):
            labels = _tick_labels(fig, axis)
            assert len(labels) >= 2, axis.axis_name
            renderer = fig.canvas.get_renderer()
            boxes = [lab.get_window_extent(renderer) for lab in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    assert not boxes[i].overlaps(boxes[j]), (
                        axis.axis_name, labels[i].get_text(), labels[j].get_text())
        plt.close(fig)
