"""The demo's starting structures: hydrogen-bonded water clusters (no oracle call)."""

from __future__ import annotations

import numpy as np
import pytest

from nnpot.active.demo import water_cluster, water_config


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_water_clusters_are_hydrogen_bonded_molecules(n):
    atoms = water_cluster(n, np.random.default_rng(n), rattle=0.0)
    assert atoms.get_chemical_symbols() == ["O", "H", "H"] * n
    assert not atoms.pbc.any()
    r = atoms.positions.reshape(n, 3, 3)
    oh = np.linalg.norm(r[:, 1:] - r[:, :1], axis=-1)
    np.testing.assert_allclose(oh, 0.9686, atol=1e-3)  # ASE's gas-phase O–H bond (Å)
    d = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    mol = np.repeat(np.arange(n), 3)
    inter = mol[:, None] != mol[None]
    if n > 1:
        oo = d[::3, ::3][~np.eye(n, dtype=bool)]
        assert oo.min() >= 2.6
        assert d[inter].min() >= 1.5  # no clashes between molecules
        # every molecule takes part in at least one H···O contact of 1.5–2.3 Å
        is_h, is_o = atoms.numbers == 1, atoms.numbers == 8
        hb = inter & (d < 2.3) & ((is_h[:, None] & is_o[None]) | (is_o[:, None] & is_h[None]))
        assert set(mol[np.any(hb, axis=1)]) == set(range(n))


def test_demo_configuration_is_valid(tmp_path):
    cfg = water_config(tmp_path / "start.extxyz", quick=True)
    assert cfg.oracle.kind == "xtb" and cfg.model.committee >= 2
    assert cfg.loop.max_iterations < water_config(tmp_path / "s.extxyz", quick=False) \
        .loop.max_iterations
