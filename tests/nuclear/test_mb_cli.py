"""``nnpot nuclear lowrank | export | triton`` on small model files (pure regulated OPE)."""

import json

import numpy as np
import pytest

from nnpot.cli import main
from nnpot.nuclear.export import read_ho_file
from nnpot.nuclear.modelfile import load_model, save_model
from nnpot.nuclear.potential import NuclearPotential
from nnpot.nuclear.threebody.driver import model_hbar2_m, model_me
from nnpot.nuclear.threebody.triton import solve_triton


@pytest.fixture(scope="module")
def ope_model(tmp_path_factory):
    """LO (one-pion exchange, regulated) without contacts: one shallow deuteron only."""
    path = tmp_path_factory.mktemp("mb") / "ope.nnp"
    save_model(path, [NuclearPotential(pion={"order": "LO"})])
    return path


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_lowrank_cli(ope_model, capsys):
    assert main(["nuclear", "lowrank", str(ope_model), "--rank", "8", "--waves", "1S0,3S1",
                 "--json"]) == 0
    res = _json(capsys)
    assert set(res["channels"]) == {"1S0", "3S1-3D1"}
    d = res["channels"]["3S1-3D1"]
    assert d["e_d_separable_mev"] == pytest.approx(d["e_d_full_mev"], abs=1e-6)
    assert d["e_d_full_mev"] < 0
    assert res["channels"]["1S0"]["max_dphase_deg"] < 0.01  # EST rank 8, up to 300 MeV
    # the speed-up is reported, not asserted: a timing ratio fails under load (it read
    # 0.53 once with another job on the machine); benchmarks hold the speed figures
    assert res["speedup_separable_vs_full"] > 0


def test_lowrank_cli_optimised_beats_est(ope_model, capsys):
    """--method opt: the EST start optimised on the phase shifts, deuteron pole exact."""
    out = {}
    for method in ("est", "opt"):
        assert main(["nuclear", "lowrank", str(ope_model), "--rank", "4", "--waves", "3S1",
                     "--method", method, "--json"]) == 0
        out[method] = _json(capsys)["channels"]["3S1-3D1"]
    assert out["opt"]["max_dphase_deg"] < 0.5 * out["est"]["max_dphase_deg"]
    assert out["opt"]["e_d_separable_mev"] == pytest.approx(out["opt"]["e_d_full_mev"],
                                                            abs=1e-6)


def test_lowrank_cli_auto_rank(ope_model, capsys):
    """--rank auto: per channel the smallest rank within the tolerance; the rank below it
    must miss (so the choice is the smallest), and a bad --rank is one clear error."""
    assert main(["nuclear", "lowrank", str(ope_model), "--rank", "auto", "--waves", "1S0",
                 "--method", "est", "--tol", "0.05", "--json"]) == 0
    r = _json(capsys)["channels"]["1S0"]
    assert r["met"] and r["max_dphase_deg"] <= 0.05
    ranks = [t[0] for t in r["tried"]]
    assert ranks == list(range(1, r["rank"] + 1)) and r["rank"] > 1
    assert r["tried"][-2][1] > 0.05  # the next smaller rank misses the tolerance
    assert main(["nuclear", "lowrank", str(ope_model), "--rank", "two"]) == 2
    assert "--rank must be a positive integer or 'auto'" in capsys.readouterr().err


def test_export_cli_round_trip(ope_model, tmp_path, capsys):
    out = tmp_path / "ope.ho"
    assert main(["nuclear", "export", str(ope_model), "--hw", "24", "--nmax", "6",
                 "--out", str(out)]) == 0
    me, head = read_ho_file(out)
    ref = model_me(load_model(ope_model), 0, 6, 24.0)
    assert set(me) == set(ref)
    for key, blocks in ref.items():
        for blk, m in blocks.items():
            assert np.allclose(me[key][blk], m, rtol=1e-14, atol=1e-14)
            assert np.allclose(m, blocks[blk[::-1]].T, atol=1e-10)  # hermitian
    assert int(head["nmax"]) == 6 and float(head["hbar_omega"]) == 24.0


def test_export_cli_lab_frame(ope_model, tmp_path, capsys):
    """--lab-emax: the (0s1/2)^2 lab elements equal the n = 0 relative S-wave elements."""
    from nnpot.nuclear.labframe import read_lab_file

    out, lab = tmp_path / "ope.ho", tmp_path / "ope.int"
    assert main(["nuclear", "export", str(ope_model), "--hw", "24", "--nmax", "4",
                 "--out", str(out), "--lab-emax", "2", "--lab-out", str(lab)]) == 0
    rel, _ = read_ho_file(out)
    tbme, orbits = read_lab_file(lab)[:2]
    s0 = [i for i, o in enumerate(orbits) if tuple(o) == (0, 0, 1)]
    assert len(s0) == 1
    a = s0[0]
    for (s, j, t), key in (((0, 0, 1), (a, a, a, a, 0, 1)), ((1, 1, 0), (a, a, a, a, 1, 0))):
        v00 = rel[(s, j, t)][(0, 0)][0, 0]
        assert tbme[key] == pytest.approx(v00, rel=1e-10, abs=1e-10)
    capsys.readouterr()
    assert main(["nuclear", "export", str(ope_model), "--hw", "24", "--nmax", "4",
                 "--out", str(tmp_path / "x.ho"), "--lab-emax", "3"]) == 2
    assert "--lab-emax must be between 0 and nmax/2" in capsys.readouterr().err
    assert not (tmp_path / "x.ho").exists()  # refused before anything was written


def test_triton_cli_matches_library(ope_model, capsys):
    assert main(["nuclear", "triton", str(ope_model), "--nmax", "4,6,8", "--hw", "24",
                 "--json"]) == 0
    res = _json(capsys)
    me = model_me(load_model(ope_model), 0, 8, 24.0)
    direct = solve_triton(me, 8, 24.0, model_hbar2_m())
    assert res["e_nn_last_mev"] == pytest.approx(direct.energy, abs=1e-8)
    energies = [r["energy"] for r in res["members"]["0"]["nn_only"]]
    assert energies[0] > energies[1] > energies[2]  # variational in N_max


def test_triton_cli_c_d_with_fitted_c_e(ope_model, capsys):
    """--c-d with --fit-c-e: c_E is fitted at that c_D, the 3NF energy lands on -B(3H),
    and the result records both LECs."""
    assert main(["nuclear", "triton", str(ope_model), "--nmax", "6", "--hw", "24",
                 "--c-d", "1.5", "--fit-c-e", "--json"]) == 0
    res = _json(capsys)
    assert res["c_d"] == 1.5 and res["members"]["0"]["with_3nf"][0]["c_d"] == 1.5
    assert res["e_3nf_mev"] == pytest.approx(-8.4818, abs=1e-4)
    assert main(["nuclear", "triton", str(ope_model), "--nmax", "6", "--hw", "24",
                 "--fit-c-e", "--json"]) == 0
    assert _json(capsys)["c_e"] != pytest.approx(res["c_e"], abs=1e-3)  # c_D matters


def test_triton_refuses_models_with_spurious_bound_states(tmp_path, capsys):
    path = tmp_path / "n2lo.nnp"
    save_model(path, [NuclearPotential(pion={"order": "N2LO"})])  # TPE without contacts
    assert main(["nuclear", "triton", str(path), "--nmax", "4", "--hw", "20"]) == 2
    assert "spurious bound state" in capsys.readouterr().err


def test_bad_arguments(ope_model, capsys):
    assert main(["nuclear", "triton", str(ope_model), "--nmax", "a,b", "--hw", "20"]) == 2
    assert main(["nuclear", "export", str(ope_model), "--hw", "-3", "--nmax", "4",
                 "--out", "x.ho"]) == 2


def test_model_adapter_gives_coordinate_space_tensor_sign(ope_model):
    """HO deuteron of the OPE model: same B_d and P_D as nnpot.nuclear.deuteron, and the
    D wave has the sign of the S wave at large r (eta > 0): the adapter's i^(L-L') flip."""
    import math

    from nnpot.nuclear.deuteron import deuteron_properties
    from nnpot.nuclear.export import model_channel_potential
    from nnpot.nuclear.ho import ho_channel_hamiltonian, ho_radial_r, n_states
    from nnpot.nuclear.threebody.interaction import momentum_me

    model = load_model(ope_model)
    ref = deuteron_properties(model.members[0], model.mesh())
    hw, nmax = 12.0, 60
    pot = model_channel_potential(model)
    me = momentum_me(lambda s, j, t, ls: pot(s, j, t, ls) if (s, j, t) == (1, 1, 0) else None,
                     nmax, hw, model_hbar2_m(), lmax=2)
    h = ho_channel_hamiltonian(me[(1, 1, 0)], (0, 2), nmax, hw)
    e, v = np.linalg.eigh(h)
    c = v[:, 0]
    n0 = n_states(0, nmax)
    assert e[0] == pytest.approx(-ref.B_d, abs=2e-3)
    assert (c[n0:] ** 2).sum() == pytest.approx(ref.P_D, abs=2e-3)
    b = math.sqrt(2 * model_hbar2_m() / hw)
    r = np.array([3.0, 5.0])
    u = sum(c[i] * ho_radial_r(i, 0, r, b) for i in range(n0))
    w = sum(c[n0 + i] * ho_radial_r(i, 2, r, b) for i in range(n_states(2, nmax)))
    assert np.all(w / u > 0) and ref.eta > 0
