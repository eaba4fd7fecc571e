"""The shipped data sets: readable, labelled, and labelled *correctly* (physics checks).

Covers src/nnpot/data/{cu_emt,water_xtb,rare_gas}; the nuclear data have their own tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.calculators.emt import EMT
from ase.io import read

from nnpot.data import path
from nnpot.data.rare_gas import make as rg_make
from nnpot.data.rare_gas.potential import (
    GASES,
    c6_ev_angstrom6,
    minimum,
    published_well,
    tang_toennies,
    tang_toennies_derivative,
)
from nnpot.errors import InputError

ATOMISTIC_SETS = ["cu_emt", "water_xtb"] + [
    f"rare_gas/{g}{s}" for g in GASES for s in ("_train", "_test")
]
MAX_BYTES = 3_000_000


def _frames(name: str):
    return read(path(name), index=":", format="extxyz")


@pytest.fixture(scope="module")
def cu():
    return _frames("cu_emt")


@pytest.fixture(scope="module")
def water():
    return _frames("water_xtb")


# ---- every file ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ATOMISTIC_SETS)
def test_file_reads_with_finite_consistent_labels(name):
    p = path(name)
    assert p.stat().st_size < MAX_BYTES
    frames = _frames(name)
    assert len(frames) > 0
    for at in frames:
        e = at.info["REF_energy"]
        assert isinstance(e, float) and np.isfinite(e)
        f = at.arrays["REF_forces"]
        assert f.shape == (len(at), 3) and np.all(np.isfinite(f))
        if "REF_stress" in at.info:
            s = np.asarray(at.info["REF_stress"])
            assert s.shape == (6,) and np.all(np.isfinite(s))
            assert at.pbc.all()
        assert at.calc is None  # labels live only under REF_ keys


def test_path_names_and_unknown_name():
    assert path("rare_gas/Ar") == path("rare_gas/Ar_train")
    assert path("cu_emt").name == "cu_emt.extxyz"
    assert path("water_xtb").name == "water_xtb.extxyz"
    with pytest.raises(InputError, match="water_xtb"):
        path("no_such_set")


# ---- copper / EMT ------------------------------------------------------------------------

def test_cu_config_types_and_sizes(cu):
    kinds = {at.info["config_type"] for at in cu}
    assert {"bulk_strain", "bulk_shear", "bulk_md", "vacancy", "interstitial", "surface_111",
            "surface_100", "primitive", "triclinic_supercell", "sheared_supercell"} <= kinds
    assert 150 <= len(cu) <= 400
    assert all(at.pbc.all() and "REF_stress" in at.info for at in cu)
    n_bulk = len(cu[[at.info["config_type"] for at in cu].index("bulk_md")])
    assert any(len(at) == n_bulk - 1 for at in cu if at.info["config_type"] == "vacancy")
    assert any(len(at) == n_bulk + 1 for at in cu if at.info["config_type"] == "interstitial")


def test_cu_has_a_cell_thinner_than_a_6_angstrom_cutoff(cu):
    def min_height(cell):
        v = abs(np.linalg.det(cell))
        return min(v / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
                   for i in range(3))

    heights = [min_height(at.cell[:]) for at in cu]
    assert min(heights) < 6.0
    triclinic = [at for at in cu
                 if abs(at.cell.angles() - 90.0).max() > 5.0]  # non-orthogonal cells exist
    assert len(triclinic) >= 10


def test_cu_labels_are_emt_for_each_kind(cu):
    seen = set()
    for at in cu:
        kind = at.info["config_type"]
        if kind in seen:
            continue
        seen.add(kind)
        a = at.copy()
        a.calc = EMT()
        assert a.get_potential_energy() == pytest.approx(at.info["REF_energy"], abs=1e-6)
        # positions are stored to 1e-8 Å, which moves forces by ~1e-7 eV/Å
        np.testing.assert_allclose(a.get_forces(), at.arrays["REF_forces"], atol=1e-6)
        np.testing.assert_allclose(a.get_stress(), at.info["REF_stress"], atol=1e-8)


def test_cu_forces_and_stress_are_energy_derivatives(cu):
    at = next(a for a in cu if a.info["config_type"] == "bulk_shear")  # 32 atoms, rattled

    def energy(a):
        a = a.copy()
        a.calc = EMT()
        return a.get_potential_energy()

    h = 1e-5
    for i, k in [(0, 0), (5, 1), (17, 2), (31, 0)]:
        plus, minus = at.copy(), at.copy()
        plus.positions[i, k] += h
        minus.positions[i, k] -= h
        fd = -(energy(plus) - energy(minus)) / (2 * h)
        assert fd == pytest.approx(at.arrays["REF_forces"][i, k], abs=1e-6)
    # stress = (1/V) dE/dε (symmetric strain), Voigt xx yy zz yz xz xy
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    for v, (i, j) in enumerate(voigt):
        es = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = sign * h if i == j else sign * h / 2  # dE = V σ_v h
            a = at.copy()
            a.set_cell(at.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
            es.append(energy(a))
        fd = (es[0] - es[1]) / (2 * h) / at.get_volume()
        assert fd == pytest.approx(at.info["REF_stress"][v], abs=1e-7)


# ---- water / GFN2-xTB ----------------------------------------------------------------------

def test_water_composition_and_geometry(water):
    kinds = [at.info["config_type"] for at in water]
    assert set(kinds) == {"liquid_32", "liquid_64", "cluster", "monomer"}
    assert 150 <= len(water) <= 300
    for at in water:
        assert at.get_chemical_symbols() == ["O", "H", "H"] * (len(at) // 3)
        R = at.positions.reshape(-1, 3, 3)
        oh = np.linalg.norm(R[:, 1:] - R[:, :1], axis=-1)
        assert 0.8 < oh.min() and oh.max() < 1.25  # every molecule intact
        if at.info["config_type"].startswith("liquid"):
            assert at.pbc.all() and "REF_stress" in at.info
            rho = len(R) * 18.015 / (units.mol * 1e-24) / at.get_volume()
            assert 0.95 < rho < 1.05  # g/cm³
        else:
            assert not at.pbc.any() and "REF_stress" not in at.info
    sizes = sorted(len(at) // 3 for at in water if at.info["config_type"] == "cluster")
    assert sizes[0] <= 3 and sizes[-1] >= 15


def test_water_labels_are_gfn2_xtb(water):
    pytest.importorskip("tblite")
    from tblite.ase import TBLite

    at = min((a for a in water if a.info["config_type"] == "cluster"), key=len)
    a = at.copy()
    a.calc = TBLite(method="GFN2-xTB", verbosity=0)
    # tolerances allow for SCF convergence (1e-6 Eh) on another machine / BLAS
    assert a.get_potential_energy() == pytest.approx(at.info["REF_energy"], abs=1e-4)
    np.testing.assert_allclose(a.get_forces(), at.arrays["REF_forces"], atol=1e-3)
    # and the forces are the gradient of that energy
    h = 1e-3
    for i, k in [(0, 0), (1, 2)]:
        e = []
        for sign in (1, -1):
            b = at.copy()
            b.positions[i, k] += sign * h
            b.calc = TBLite(method="GFN2-xTB", verbosity=0)
            e.append(b.get_potential_energy())
        assert -(e[0] - e[1]) / (2 * h) == pytest.approx(at.arrays["REF_forces"][i, k], abs=2e-4)


# ---- rare-gas dimers / Tang–Toennies --------------------------------------------------------

@pytest.mark.parametrize("gas", GASES)
def test_tt_well_matches_published(gas):
    re, de = minimum(gas)
    re_pub, de_pub = published_well(gas)
    assert re == pytest.approx(re_pub, rel=5e-3)
    assert de == pytest.approx(de_pub, rel=1e-2)


@pytest.mark.parametrize("gas", GASES)
def test_tt_tail_is_london_and_vanishes(gas):
    # far out only -C6/r^6 survives: E -> 0 and E r^6 -> -C6
    r = np.array([40.0, 80.0])
    ratio = tang_toennies(r, gas) * r**6 / -c6_ev_angstrom6(gas)
    assert ratio[1] == pytest.approx(1.0, abs=2e-3)
    assert abs(ratio[1] - 1) < abs(ratio[0] - 1)
    assert abs(tang_toennies(1000.0, gas)) < 1e-15
    # in the test window C8 and C10 still steepen the decay beyond -6
    (_, _), (s0, s1) = rg_make.windows(gas)
    rt = np.linspace(s0, s1, 26)
    slope = rg_make.loglog_slope(rt, tang_toennies(rt, gas))
    assert -6.5 < slope < -6.0


@pytest.mark.parametrize("gas", GASES)
def test_tt_derivative_is_numerical_derivative(gas):
    r = np.linspace(0.7, 3.5, 50) * minimum(gas)[0]
    h = 1e-5
    fd = (tang_toennies(r + h, gas) - tang_toennies(r - h, gas)) / (2 * h)
    np.testing.assert_allclose(tang_toennies_derivative(r, gas), fd, rtol=1e-6, atol=1e-11)


@pytest.mark.parametrize("gas", GASES)
def test_dimer_files(gas):
    train = _frames(f"rare_gas/{gas}_train")
    test = _frames(f"rare_gas/{gas}_test")
    iso = [a for a in train if len(a) == 1]
    assert len(iso) == 1 and iso[0].info["REF_energy"] == 0.0
    assert not np.any(iso[0].arrays["REF_forces"])
    dimers = [a for a in train if len(a) == 2]
    assert len(dimers) == 41 and len(test) == 26
    re = minimum(gas)[0]
    for frames, (lo, hi) in ((dimers, (0.79, 1.34)), (test, (1.85, 3.20))):
        r = np.array([a.info["distance"] for a in frames])  # exact; positions are rounded
        np.testing.assert_allclose([a.get_distance(0, 1) for a in frames], r, atol=2e-8)
        assert lo * re < r.min() and r.max() < hi * re
        assert np.allclose(np.diff(r), np.diff(r)[0], atol=1e-6)  # evenly spaced
        for a, ri in zip(frames, r, strict=True):
            assert not a.pbc.any()
            assert a.info["REF_energy"] == pytest.approx(tang_toennies(ri, gas), rel=1e-9,
                                                         abs=1e-15)
            u = (a.positions[1] - a.positions[0]) / ri
            h = 1e-5
            dvdr = (tang_toennies(ri + h, gas) - tang_toennies(ri - h, gas)) / (2 * h)
            f = a.arrays["REF_forces"]
            np.testing.assert_allclose(f[1], -dvdr * u, atol=2e-8, rtol=1e-6)
            np.testing.assert_allclose(f[0], -f[1], atol=1e-12)
    if gas == "Ar":
        r = [a.get_distance(0, 1) for a in dimers]
        assert r[0] == pytest.approx(3.0) and r[-1] == pytest.approx(5.0)
        rt = [a.get_distance(0, 1) for a in test]
        assert rt[0] == pytest.approx(7.0) and rt[-1] == pytest.approx(12.0)
