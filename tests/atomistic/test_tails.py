"""Dispersion tail: analytic values, E → 0, smooth cutoff, forces/stress = finite differences
(molecule and periodic), half list = full-list oracle, tables vs their sources, learned C6,
bad configurations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.data import atomic_numbers

from nnpot.atomistic.c6_table import AU_C6, CHU_DALGARNO_2004, GRIMME_D2, pair_table
from nnpot.atomistic.data import Frame
from nnpot.atomistic.neighbors import make_batch, neighbor_pairs, pair_vectors, strained
from nnpot.atomistic.tails import (
    SWITCH_ON,
    DispersionTail,
    switch,
    tail_from_config,
    tail_from_dict,
)
from nnpot.config import DispersionConfig
from nnpot.errors import ConfigError

torch.set_num_threads(1)


def tail_for(elements, **kw):
    return tail_from_config(DispersionConfig(**kw), elements)


def batch_of(numbers, positions, cell=None, pbc=(False, False, False), elements=("Ar",)):
    species_of = {atomic_numbers[e]: k for k, e in enumerate(elements)}
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, float)
    return make_batch([(np.asarray(numbers), np.asarray(positions, float), cell,
                        np.asarray(pbc))], species_of, 1.0)


def energy(tail, b, pos=None, cell=None):
    pos = b.positions if pos is None else pos
    cell = b.cell if cell is None else cell
    e = tail(b, pos, cell)
    return e.mean(0) if e.dim() == 2 else e


def tt_slow(n, x):
    """f_n(x) = 1 − e^{−x} Σ_{k≤n} x^k/k!, written out (oracle of the gammainc form)."""
    return 1.0 - math.exp(-x) * sum(x**k / math.factorial(k) for k in range(n + 1))


@pytest.mark.parametrize("damping", ["tang-toennies", "becke-johnson"])
def test_dimer_matches_formula_and_vanishes(damping):
    tail = tail_for(["Ar"], c6="table", c8=True, damping=damping)
    c6, c8 = float(tail.coef0[0, 0, 0]), float(tail.coef0[1, 0, 0])
    b, r0 = float(tail.b[0, 0]), float(tail.r0[0, 0])
    for r in (2.5, 3.76, 6.0, 10.0, 15.0):
        bt = batch_of([18, 18], [[0, 0, 0], [r, 0, 0]])
        if damping == "tang-toennies":
            want = -tt_slow(6, b * r) * c6 / r**6 - tt_slow(8, b * r) * c8 / r**8
        else:
            want = -c6 / (r**6 + r0**6) - c8 / (r**8 + r0**8)
        assert float(energy(tail, bt)) == pytest.approx(want, rel=1e-12)
    # E -> 0 as r -> ∞: |E| ≤ (C6/r⁶ + C8/r⁸) and exactly 0 at and beyond the cutoff
    rs = [12.0, 16.0, 19.0, 20.0, 40.0, 1000.0]
    es = [float(energy(tail, batch_of([18, 18], [[0, 0, 0], [r, 0, 0]]))) for r in rs]
    assert all(-e <= c6 / r**6 + c8 / r**8 for e, r in zip(es, rs, strict=True))
    assert np.all(np.diff(np.abs(es[:4])) < 0) and es[-3:] == [0.0, 0.0, 0.0]


def test_switch_is_smooth_at_the_tail_cutoff():
    tail = tail_for(["Kr"], c6="table", cutoff=12.0)
    rc = tail.cutoff

    def e_and_f(r):
        pos = torch.tensor([[0.0, 0, 0], [r, 0, 0]], dtype=torch.float64, requires_grad=True)
        bt = batch_of([36, 36], pos.detach().numpy(), elements=("Kr",))
        e = energy(tail, bt, pos)
        return float(e.detach()), float(torch.autograd.grad(e.sum(), pos)[0][1, 0])

    e_out, f_out = e_and_f(rc + 1e-6)
    assert e_out == 0.0 and f_out == 0.0
    # S ≈ 10 y³ with y = h/w (w = switching width): E ≈ −10 C6/r_c⁶ y³, |F| ≈ 30 C6/r_c⁶ y²/w
    width = rc * (1 - SWITCH_ON)
    scale = float(tail.coef0[0, 0, 0]) / rc**6
    for h in (1e-2, 1e-3, 1e-4):
        e_in, f_in = e_and_f(rc - h)
        assert 0 > e_in > -11 * scale * (h / width) ** 3
        assert abs(f_in) < 31 * scale * (h / width) ** 2 / width
    e_on = e_and_f(SWITCH_ON * rc - 1e-9)[0]
    assert e_on == pytest.approx(-float(tail.coef0[0, 0, 0]) / (SWITCH_ON * rc) ** 6, rel=1e-6)


def fd_check(tail, b, h=1e-5, stress=False):
    """Autograd forces (and stress) of the tail vs central finite differences."""
    pos0 = b.positions.clone().requires_grad_(True)
    eps = torch.zeros_like(b.cell).requires_grad_(True)
    pos, cell = strained(pos0, b.cell, b.batch, eps)
    e = energy(tail, b, pos, cell).sum()
    gp, ge = torch.autograd.grad(e, (pos0, eps))
    forces = -gp.numpy()
    fd = np.zeros_like(forces)
    for a in range(len(forces)):
        for c in range(3):
            d = torch.zeros_like(b.positions)
            d[a, c] = h
            with torch.no_grad():
                ep = float(energy(tail, b, b.positions + d).sum())
                em = float(energy(tail, b, b.positions - d).sum())
            fd[a, c] = -(ep - em) / (2 * h)
    np.testing.assert_allclose(forces, fd, atol=1e-9 * max(1.0, np.abs(fd).max()))
    if stress:
        vol = float(torch.linalg.det(b.cell[0]).abs())
        sig = 0.5 * (ge[0] + ge[0].T).numpy() / vol
        sfd = np.zeros((3, 3))
        for x in range(3):
            for y in range(3):
                vals = []
                for sgn in (1, -1):
                    ep = torch.zeros_like(b.cell)
                    ep[0, x, y] += 0.5 * sgn * h
                    ep[0, y, x] += 0.5 * sgn * h
                    p2, c2 = strained(b.positions, b.cell, b.batch, ep)
                    with torch.no_grad():
                        vals.append(float(energy(tail, b, p2, c2).sum()))
                sfd[x, y] = (vals[0] - vals[1]) / (2 * h) / vol
        np.testing.assert_allclose(sig, sfd, atol=1e-9)
    return forces


@pytest.mark.parametrize("damping", ["tang-toennies", "becke-johnson"])
def test_forces_molecule_two_elements(damping):
    tail = tail_for(["O", "Ar"], c6="table", c8=True, damping=damping, cutoff=9.0)
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 6, (5, 3))
    b = batch_of([8, 18, 18, 8, 18], pos, elements=("O", "Ar"))
    f = fd_check(tail, b)
    assert np.abs(f.sum(0)).max() < 1e-12  # Newton's third law


def test_forces_and_stress_periodic_triclinic_small_cell():
    tail = tail_for(["Ne", "Ar"], c6="table", c8=True, cutoff=7.0)
    cell = np.array([[4.2, 0.0, 0.0], [0.9, 3.9, 0.0], [0.4, -0.7, 4.4]])  # < cutoff
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 1, (3, 3)) @ cell
    b = batch_of([10, 18, 18], pos, cell, (True, True, True), elements=("Ne", "Ar"))
    fd_check(tail, b, stress=True)


def test_half_list_equals_full_list_oracle_and_extensivity():
    tail = tail_for(["Ar"], c6="table", c8=True, cutoff=9.0)
    atoms = bulk("Ar", "fcc", a=5.3) * (1, 1, 2)
    atoms.set_cell(atoms.cell[:] + np.array([[0, 0.3, 0], [0.2, 0, 0], [0, 0, 0]]),
                   scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    b = batch_of(atoms.numbers, atoms.positions, atoms.cell[:], atoms.pbc)
    e_fast = float(energy(tail, b))
    i, j, s = neighbor_pairs(atoms.positions, atoms.cell[:], atoms.pbc, tail.cutoff)
    r = pair_vectors(b.positions, b.cell, b.batch, torch.as_tensor(i), torch.as_tensor(j),
                     torch.as_tensor(s, dtype=torch.float64)).norm(dim=1)
    e_slow = 0.0  # full list: every pair twice
    for o, n in enumerate(tail.orders):
        c = float(tail.coef0[o, 0, 0])
        f = torch.tensor([tt_slow(n, float(x)) for x in tail.b[0, 0] * r], dtype=torch.float64)
        e_slow -= 0.5 * float((switch(r, tail.cutoff) * f * c / r**n).sum())
    assert e_fast == pytest.approx(e_slow, rel=1e-12)
    big = atoms * (2, 2, 1)
    b2 = batch_of(big.numbers, big.positions, big.cell[:], big.pbc)
    assert float(energy(tail, b2)) == pytest.approx(4 * e_fast, rel=1e-11)


def test_frame_basis_matches_autograd_and_fd():
    tail = tail_for(["Ar"], c6="learn", c8=True, cutoff=8.0)
    tail.set_members(3, seed=5)
    cell = np.array([[5.0, 0.0, 0.0], [0.5, 5.2, 0.0], [0.0, 0.3, 5.1]])
    pos = np.random.default_rng(3).uniform(0, 1, (2, 3)) @ cell
    fr = Frame(np.array([18, 18]), pos, cell, np.ones(3, bool))
    e_k, f_k, s_k = tail.frame_basis(fr)
    w = tail.scales().detach()
    b = batch_of(fr.numbers, pos, cell, fr.pbc)
    e_members = tail(b, b.positions, b.cell).detach()[:, 0]
    np.testing.assert_allclose((w @ e_k).numpy(), e_members.numpy(), rtol=1e-12)
    f_mean = torch.einsum("k,knc->nc", w.mean(0), f_k).numpy()
    np.testing.assert_allclose(f_mean, fd_check(tail, b), atol=1e-10)
    e, f, s = tail.frame_terms(fr)
    assert e == pytest.approx(float(e_members.mean()), rel=1e-12) and s.shape == (3, 3)


def test_tables_agree_with_their_sources():
    from ase.calculators.vdwcorrection import vdWDB_Chu04jcp, vdWDB_Grimme06jcc
    from ase.units import Bohr, Hartree

    from nnpot.data.rare_gas.potential import dispersion_coefficients_ev

    for gas in ("He", "Ne", "Ar", "Kr", "Xe"):
        t = pair_table([gas])
        ref = dispersion_coefficients_ev(gas)
        assert t.c6[0, 0] == pytest.approx(ref[6], rel=1e-12)
        assert t.c8[0, 0] == pytest.approx(ref[8], rel=1e-12)
    for el, (alpha, c6) in CHU_DALGARNO_2004.items():
        assert [alpha, c6] == vdWDB_Chu04jcp[el]
        if el not in ("He", "Ne", "Ar", "Kr", "Xe"):
            assert pair_table([el]).c6[0, 0] == pytest.approx(c6 * Hartree * Bohr**6)
    for el, c6 in GRIMME_D2.items():
        key = el if el in vdWDB_Grimme06jcc else "Y-Cd"
        assert c6 == vdWDB_Grimme06jcc[key][0]
    # unit conversion: D2's Ar (4.61 J nm⁶/mol) is 47.8 eV·Å⁶; Chu–Dalgarno Ar 64.2 au = 38.4
    assert pair_table(["Ge"]).c6[0, 0] == pytest.approx(17.10 * 10.3643, rel=1e-4)
    assert AU_C6 * 64.30 == pytest.approx(38.42, rel=1e-3)
    t = pair_table(["H", "C", "Ar", "Ge"])
    np.testing.assert_allclose(t.c6, t.c6.T)
    np.testing.assert_allclose(t.c8, t.c8.T)
    # Tang's rule with equal α/C6 ratios reduces to the geometric mean; unlike pairs lie
    # between the like pairs for these elements
    for a in range(4):
        for c in range(a + 1, 4):
            lo, hi = sorted([t.c6[a, a], t.c6[c, c]])
            assert lo < t.c6[a, c] < hi


def test_bad_configurations_raise_clear_errors():
    with pytest.raises(ConfigError, match="no tabulated C6 for element 'Cs'"):
        tail_for(["O", "Cs"], c6="table")
    with pytest.raises(ConfigError, match="no tabulated C6 for element 'Rn'"):
        tail_for(["Rn"], c6="learn")
    with pytest.raises(ConfigError, match="not a chemical symbol"):
        pair_table(["Xx"])
    with pytest.raises(ConfigError, match="must be positive"):
        tail_for(["Ar"], c6=-3.0)
    with pytest.raises(ConfigError, match="damping"):
        DispersionTail(["Ar"], np.ones((1, 1)), damping="grimme")
    t = tail_for(["Cs"], c6=120.0)  # a number works for any element with a vdW radius
    assert float(t.coef0[0, 0, 0]) == 120.0


def test_dict_round_trip_keeps_energies():
    tail = tail_for(["O", "Ar"], c6="learn", c8=True, damping="becke-johnson", cutoff=11.0)
    tail.set_members(2, seed=3)
    with torch.no_grad():
        tail.log_scale.add_(0.1)
    again = tail_from_dict(tail.to_dict())
    again.set_members(2, seed=3)
    again.load_state_dict(tail.state_dict())
    b = batch_of([8, 18, 18], [[0, 0, 0], [3.1, 0, 0], [0, 3.5, 1.0]], elements=("O", "Ar"))
    torch.testing.assert_close(again(b, b.positions, b.cell), tail(b, b.positions, b.cell),
                               rtol=0, atol=0)


def test_learned_c6_moves_to_an_identifiable_value(tmp_path):
    """Network cutoff 3 Å, dimers at 4–9 Å labelled by a pure tail with C6 = 1.5× the table:
    only the tail can explain them, so learning must take every member's C6 from its prior
    draw (table × e^{N(0, 0.2²)}) to the truth, and the committee spread must collapse."""
    import ase.io

    from nnpot.atomistic.workflow import fit
    from nnpot.config import FitConfig

    c6_true = 1.5 * float(pair_table(["Ar"]).c6[0, 0])
    truth = tail_for(["Ar"], c6=c6_true)
    images = []
    for r in np.linspace(4.0, 9.0, 21):
        fr = Frame(np.array([18, 18]), np.array([[0, 0, 0], [r, 0.3, 0]]), np.zeros((3, 3)),
                   np.zeros(3, bool))
        fr.energy, fr.forces, _ = truth.frame_terms(fr)
        images.append(fr.to_atoms())
    iso = Frame(np.array([18]), np.zeros((1, 3)), np.zeros((3, 3)), np.zeros(3, bool), 0.0,
                np.zeros((1, 3)))
    images.append(iso.to_atoms())
    ase.io.write(tmp_path / "d.extxyz", images, format="extxyz")
    cfg = FitConfig.model_validate({
        "data": {"valid_fraction": 0.0, "test_fraction": 0.0},
        "model": {"cutoff": 3.0, "hidden": [4], "committee": 3,
                  "dispersion": {"c6": "learn"}},
        "training": {"epochs": 60, "batch_size": 4, "lr": 3e-2, "lr_final": 3e-3,
                     "patience": 1000, "bootstrap": False, "seed": 1}})
    res = fit(cfg, tmp_path / "m.nnp", data=str(tmp_path / "d.extxyz"), progress=False)
    tail = res.model.tail
    start = (tail.coef0[0, 0, 0] * torch.exp(tail.anchor[:, 0, 0])).numpy()
    learned = tail.coefficients(6)[:, 0, 0].detach().numpy()
    assert np.abs(start / c6_true - 1).max() > 0.2  # it had somewhere to go
    np.testing.assert_allclose(learned, c6_true, rtol=0.02)
    assert learned.std() < 0.25 * start.std()
    # the learned tail is saved and loaded with the model
    from nnpot.atomistic.modelfile import load_model

    again, header = load_model(tmp_path / "m.nnp")
    np.testing.assert_array_equal(again.tail.coefficients(6).detach().numpy(),
                                  tail.coefficients(6).detach().numpy())
    assert header["tail"]["learn"] and len(header["tail"]["c6_members"]) == 3


def test_training_path_with_learned_tail_equals_autograd():
    """predict_prepared (precomputed tail basis × member scales) gives the same per-member
    energies, forces and stress as NNP.compute (autograd through the tail), periodic and
    molecular structures in one batch."""
    from nnpot.atomistic.descriptors import default_spec
    from nnpot.atomistic.model import NNP
    from nnpot.atomistic.train import predict_prepared, prepare

    tail = tail_for(["O", "Ar"], c6="learn", c8=True, cutoff=9.0)
    model = NNP(default_spec(["O", "Ar"], cutoff=4.0), hidden=[5], n_members=3, seed=2,
                tail=tail)
    assert model.tail.log_scale.shape == (3, 2, 2)  # the NNP gave the tail its committee
    rng = np.random.default_rng(4)
    cell = np.array([[5.1, 0.0, 0.0], [0.6, 4.9, 0.0], [-0.4, 0.5, 5.3]])
    frames = [Frame(np.array([8, 18, 18]), rng.uniform(0, 1, (3, 3)) @ cell, cell,
                    np.ones(3, bool), 0.0),
              Frame(np.array([18, 8]), np.array([[0.0, 0, 0], [3.3, 0.4, 0]]),
                    np.zeros((3, 3)), np.zeros(3, bool), 0.0)]
    prep = prepare(model, frames)
    e, f, s, _ = predict_prepared(model, prep, create_graph=False)
    b = make_batch([(fr.numbers, fr.positions, fr.cell, fr.pbc) for fr in frames],
                   {8: 0, 18: 1}, model.spec.cutoff)
    out = model.compute(b, forces=True, stress=True, member_forces=True)
    assert float(out.energy.detach().std(0).min()) > 1e-6  # members' tails differ
    torch.testing.assert_close(out.energy.detach(), e.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.member_forces[:, :3].detach(), f[0].detach(), atol=1e-11,
                               rtol=1e-9)
    torch.testing.assert_close(out.member_forces[:, 3:].detach(), f[1].detach(), atol=1e-11,
                               rtol=1e-9)
    torch.testing.assert_close(out.member_stress[:, 0].detach(), s[:, 0].detach(), atol=1e-11,
                               rtol=1e-9)
    # the tail's learned scales receive gradients through the training path
    e2, _, _, _ = predict_prepared(model, prep, create_graph=True)
    e2.sum().backward()
    assert float(model.tail.log_scale.grad.abs().min()) > 0
