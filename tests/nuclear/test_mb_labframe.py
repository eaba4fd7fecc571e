"""Talmi-Moshinsky lab-frame TBMEs: brackets, recoupling, unitarity (spectra), phases, files."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import sph_harm_y

from nnpot.errors import InputError, MalformedFileError
from nnpot.nuclear.ho import ho_kinetic, ho_matrix_local, ho_matrix_local_block, ho_radial_r
from nnpot.nuclear.labframe import (
    lab_orbits,
    lab_tbme,
    pair_overlap,
    read_lab_file,
    recouple_rel_cm,
    tm_bracket,
    tm_brackets,
    write_lab_file,
)
from nnpot.nuclear.threebody.angmom import clebsch_gordan, wigner_6j
from nnpot.nuclear.threebody.brackets import reduced_a, reduced_adag
from nnpot.nuclear.threebody.interaction import b_relative, relative_channels
from nnpot.nuclear.threebody.models import HBAR2_M_BENCHMARK as H2M
from nnpot.nuclear.threebody.models import minnesota_r

HW = 20.0


# --- brackets ---------------------------------------------------------------------------

def test_brackets_orthogonal_and_closed_forms():
    for e in range(5):
        for big_l in range(e + 1):
            basis, b = tm_brackets(e, big_l)
            if basis:
                assert np.allclose(b @ b.T, np.eye(len(basis)), atol=1e-12)
    assert tm_bracket(0, 0, 0, 0, 0, 0, 0, 0, 0) == pytest.approx(1.0, abs=1e-14)
    # E = 1, L = 1: x_rel = (x1 - x2)/sqrt2, X = (x1 + x2)/sqrt2 (all p functions ~ x e^-..)
    s = 1 / math.sqrt(2)
    assert tm_bracket(0, 1, 0, 0, 0, 1, 0, 0, 1) == pytest.approx(s, abs=1e-13)   # p s | rel p
    assert tm_bracket(0, 0, 0, 1, 0, 1, 0, 0, 1) == pytest.approx(-s, abs=1e-13)  # s p | rel p
    assert tm_bracket(0, 1, 0, 0, 0, 0, 0, 1, 1) == pytest.approx(s, abs=1e-13)   # p s | cm p
    assert tm_bracket(0, 0, 0, 1, 0, 0, 0, 1, 1) == pytest.approx(s, abs=1e-13)
    assert tm_bracket(0, 1, 0, 0, 0, 1, 0, 0, 0) == 0.0  # L = 0 impossible for s x p


def _coupled(n1, l1, n2, l2, big_l, y1, y2):
    """[R_n1l1 Y_l1(y1) x R_n2l2 Y_l2(y2)]_{L, M=0} at points (oscillator length 1)."""
    def one(n, l, m, y):
        r = np.linalg.norm(y, axis=1)
        th, ph = np.arccos(y[:, 2] / r), np.arctan2(y[:, 1], y[:, 0])
        return ho_radial_r(n, l, r, 1.0) * sph_harm_y(l, m, th, ph)
    out = 0
    for m1 in range(-l1, l1 + 1):
        c = clebsch_gordan(l1, m1, l2, -m1, big_l, 0)
        if c:
            out = out + c * one(n1, l1, m1, y1) * one(n2, l2, -m1, y2)
    return out


@pytest.mark.parametrize("e,big_l", [(2, 1), (3, 2), (3, 1)])
def test_brackets_reproduce_rotated_wave_functions(e, big_l):
    """Psi_{(n l)(N Lam) L}((x1 - x2)/sqrt2, (x1 + x2)/sqrt2) = sum_lab B[lab, rel] Psi_lab."""
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    basis, b = tm_brackets(e, big_l)
    lab = [_coupled(*s, big_l, x1, x2) for s in basis]
    for k, rel in enumerate(basis):
        lhs = _coupled(*rel, big_l, (x1 - x2) / math.sqrt(2), (x1 + x2) / math.sqrt(2))
        rhs = sum(b[i, k] * lab[i] for i in range(len(basis)))
        assert np.allclose(lhs, rhs, atol=1e-12)


def test_recoupling_matches_clebsch_gordan_sums():
    for l, lam, s in itertools.product(range(3), range(3), range(2)):
        for big_l in range(abs(l - lam), l + lam + 1):
            for j in range(abs(big_l - s), big_l + s + 1):
                for jr in range(abs(l - s), l + s + 1):
                    direct = sum(
                        clebsch_gordan(l, ml, lam, ml2, big_l, ml + ml2)
                        * clebsch_gordan(big_l, ml + ml2, s, j - ml - ml2, j, j)
                        * clebsch_gordan(l, ml, s, j - ml - ml2, jr, j - ml2)
                        * clebsch_gordan(jr, j - ml2, lam, ml2, j, j)
                        for ml in range(-l, l + 1) for ml2 in range(-lam, lam + 1)
                        if abs(j - ml - ml2) <= s)
                    assert recouple_rel_cm(l, lam, big_l, s, j, jr) == pytest.approx(
                        direct, abs=1e-13)


# --- unitarity: lab spectrum = relative spectrum + CM spectrum --------------------------

def _interaction(nq):
    """Minnesota (even waves) + a Gaussian in odd waves + a 3S1-3D1 coupling; rel. nmax nq."""
    b = b_relative(HW, H2M)
    tensor = ho_matrix_local_block(lambda r: -30.0 * r * r * np.exp(-r * r), 0, 2, nq, b)
    me = {}
    for s, j, t, ls in relative_channels(nq):
        blocks = {}
        for l in ls:
            v = minnesota_r(s) if l % 2 == 0 else (lambda r: -25.0 * np.exp(-0.8 * r * r))
            blocks[(l, l)] = ho_matrix_local(v, l, nq, b)
        if ls == (0, 2):
            blocks[(0, 2)], blocks[(2, 0)] = tensor, tensor.T.copy()
        me[(s, j, t)] = blocks
    return me


def _rel_hamiltonian(blocks, ls, nq):
    """T + V of one relative channel with 2n + l <= nq [MeV] (l > nq dropped)."""
    ls = [l for l in ls if l <= nq]
    sizes = [(nq - l) // 2 + 1 for l in ls]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    h = np.zeros((off[-1], off[-1]))
    for a, la in enumerate(ls):
        h[off[a]:off[a + 1], off[a]:off[a + 1]] += ho_kinetic(la, nq, HW)
        for c, lc in enumerate(ls):
            if (la, lc) in blocks:
                h[off[a]:off[a + 1], off[c]:off[c + 1]] += blocks[(la, lc)][:sizes[a], :sizes[c]]
    return h


@pytest.mark.parametrize("j,t,parity", [(1, 0, 0), (0, 1, 0), (2, 1, 1), (3, 0, 1)])
def test_lab_spectrum_is_relative_plus_cm_spectrum(j, t, parity):
    """H = T_rel + V + H_cm^HO, built in the lab basis e_a + e_b <= nq, has the spectrum
    {E_rel,i(nq - 2N - Lam) + (2N + Lam + 3/2) hw}: the TM transformation is unitary.

    In the lab: H = W + sum_i h_i^HO with W = T_rel + V - H_rel^HO a relative operator
    (transformed by lab_tbme) and sum_i h_i^HO = (e_a + e_b + 3) hw diagonal.
    """
    nq = 4
    me = _interaction(nq)
    w = {}
    for key, blocks in me.items():
        w[key] = {k: v.copy() for k, v in blocks.items()}
        for (lo, li) in blocks:
            if lo == li:
                nn = np.arange((nq - lo) // 2 + 1)
                w[key][(lo, lo)] += ho_kinetic(lo, nq, HW) - np.diag(HW * (2 * nn + lo + 1.5))
    tb = lab_tbme(w, HW, nq, e2max=nq)
    orbits = lab_orbits(nq)
    pairs = sorted({(a, b) for (a, b, c, d, jj, tt) in tb if (jj, tt) == (j, t)
                    and (orbits[a][1] + orbits[b][1]) % 2 == parity})
    e = [2 * orbits[a][0] + orbits[a][1] + 2 * orbits[b][0] + orbits[b][1] for a, b in pairs]
    h = np.array([[tb[(a, b, c, d, j, t)] for (c, d) in pairs] for (a, b) in pairs])
    assert np.allclose(h, h.T, atol=1e-12)
    h += np.diag((np.array(e) + 3.0) * HW)
    lab = np.linalg.eigvalsh(h)
    ref = []
    for ecm in range(nq + 1):
        for lam in range(ecm % 2, ecm + 1, 2):
            for s, jr, tr, ls in relative_channels(nq):
                if tr != t or not abs(jr - lam) <= j <= jr + lam or (ls[0] + lam) % 2 != parity:
                    continue
                if min(ls) > nq - ecm:
                    continue
                ref += list(np.linalg.eigvalsh(_rel_hamiltonian(me[(s, jr, tr)], ls, nq - ecm))
                            + (ecm + 1.5) * HW)
    assert len(ref) == len(lab) > 3
    dev = np.max(np.abs(np.sort(ref) - lab))
    assert dev < 1e-10, dev


# --- lab-side phases --------------------------------------------------------------------

def test_exchange_phase_and_hermiticity():
    orbits = lab_orbits(2)
    rels = [(0, 1, 0, 1, 1, 0), (1, 0, 1, 1, 0, 1), (0, 2, 1, 3, 0, 1), (0, 1, 1, 2, 0, 2),
            (0, 2, 0, 2, 1, 0)]
    checked = 0
    for a, b in itertools.combinations(range(len(orbits)), 2):
        for rel in rels:
            n, l, s, jr, nc, lam = rel
            t = 1 - (l + s) % 2  # physical: (-1)^(l+S+T) = -1
            for j in range(abs(jr - lam), jr + lam + 1):
                ab = pair_overlap(orbits[a], orbits[b], rel, j, False)
                ba = pair_overlap(orbits[b], orbits[a], rel, j, False)
                phase = (-1) ** ((orbits[a][2] + orbits[b][2]) // 2 + j + t)
                assert ba == pytest.approx(phase * ab, abs=1e-13)
                checked += ab != 0.0
    assert checked > 20
    tb = lab_tbme(_interaction(4), HW, 2)
    for (a, b, c, d, j, t), v in tb.items():
        assert tb[(c, d, a, b, j, t)] == v


def test_closed_shell_s_wave_elements():
    """(0s1/2)^2: J=0 T=1 is the 1S0 n=0 element, J=1 T=0 the 3S1 one."""
    me = _interaction(4)
    tb = lab_tbme(me, HW, 2)
    assert tb[(0, 0, 0, 0, 0, 1)] == pytest.approx(me[(0, 0, 1)][(0, 0)][0, 0], abs=1e-12)
    assert tb[(0, 0, 0, 0, 1, 0)] == pytest.approx(me[(1, 1, 0)][(0, 0)][0, 0], abs=1e-12)
    assert not any(k[:4] == (0, 0, 0, 0) and k[4] + k[5] != 1 for k in tb)


def _sp_reduced_x(o1, o2):
    """<(l1 1/2) j1 || x || (l2 1/2) j2> (Edmonds 7.1.7), x = (a + a^dag)/sqrt2."""
    (n1, l1, j1), (n2, l2, j2) = o1, o2
    orb = (reduced_adag(n1, l1, n2, l2) + reduced_a(n1, l1, n2, l2)) / math.sqrt(2)
    return ((-1) ** round(l1 + 0.5 + j2 / 2 + 1) * math.sqrt((j1 + 1) * (j2 + 1))
            * wigner_6j(l1, j1 / 2, 0.5, j2 / 2, l2, 1) * orb)


def _sp_x2(o1, o2):
    (n1, l1, j1), (n2, l2, j2) = o1, o2
    if (l1, j1) != (l2, j2):
        return 0.0
    if n1 == n2:
        return 2 * n1 + l1 + 1.5
    n = min(n1, n2)
    return -math.sqrt((n + 1) * (n + l1 + 1.5)) if abs(n1 - n2) == 1 else 0.0


def test_relative_r2_against_single_particle_formula():
    """|x1 - x2|^2 = x1^2 + x2^2 - 2 x1.x2 (x = r/b) vs the relative operator 2 x_rel^2."""
    emax = 2
    orbits = lab_orbits(emax)
    me = {}
    for s, jr, t, ls in relative_channels(2 * emax):
        blocks = {}
        for lo in ls:
            for li in ls:
                nn = (2 * emax - lo) // 2 + 1
                m = np.zeros((nn, (2 * emax - li) // 2 + 1))
                if lo == li:
                    k = np.arange(nn)
                    off = -np.sqrt((k[:-1] + 1) * (k[:-1] + lo + 1.5))
                    m = 2.0 * (np.diag(2 * k + lo + 1.5) + np.diag(off, 1) + np.diag(off, -1))
                blocks[(lo, li)] = m
        me[(s, jr, t)] = blocks
    tb = lab_tbme(me, HW, emax)

    def direct(a, b, c, d, j):  # <a(1) b(2); J| O |c(1) d(2); J>, not antisymmetrised
        oa, ob, oc, od = (orbits[i] for i in (a, b, c, d))
        v = (b == d) * _sp_x2(oa, oc) + (a == c) * _sp_x2(ob, od)
        six = wigner_6j(oa[2] / 2, ob[2] / 2, j, od[2] / 2, oc[2] / 2, 1)
        v -= 2 * ((-1) ** round(oc[2] / 2 + ob[2] / 2 + j) * six
                  * _sp_reduced_x(oa, oc) * _sp_reduced_x(ob, od))
        return v

    for (a, b, c, d, j, t), v in tb.items():
        ph = (-1) ** round((orbits[c][2] + orbits[d][2]) / 2 - j + 1 - t)
        ref = 2 * (direct(a, b, c, d, j) - ph * direct(a, b, d, c, j))
        ref /= math.sqrt(2 * (1 + (a == b))) * math.sqrt(2 * (1 + (c == d)))
        assert v == pytest.approx(ref, abs=1e-11), (a, b, c, d, j, t)


# --- files and errors -------------------------------------------------------------------

def test_file_round_trip(tmp_path):
    tb = lab_tbme(_interaction(4), HW, 2)
    path = tmp_path / "lab.int"
    write_lab_file(path, tb, lab_orbits(2), HW, {"emax": 2, "source": "test"})
    back, orbits, head = read_lab_file(path)
    assert orbits == lab_orbits(2) and float(head["hbar_omega"]) == HW
    assert head["emax"] == "2" and back == tb
    text = path.read_text().replace("! orbit 6 0 2 5\n", "")
    (tmp_path / "cut.int").write_text(text)
    with pytest.raises(MalformedFileError):
        read_lab_file(tmp_path / "cut.int")  # orbit list shorter than the header says


def test_bad_input_raises(tmp_path):
    me = _interaction(4)
    with pytest.raises(InputError):
        lab_orbits(-1)
    with pytest.raises(InputError):
        lab_tbme(me, -5.0, 2)
    with pytest.raises(InputError):
        lab_tbme(me, HW, 3)  # relative nmax 4 < 2 emax = 6
    with pytest.raises(InputError):
        lab_tbme(me, HW, 2, e2max=5)
    with pytest.raises(InputError):
        lab_tbme({(0, 0, 0): me[(0, 0, 1)]}, HW, 2)  # 1S0 with T = 0 is not antisymmetric
    bad = {k: dict(v) for k, v in me.items()}
    bad[(1, 1, 0)][(0, 2)] = bad[(1, 1, 0)][(0, 2)] + 1.0
    with pytest.raises(InputError):
        lab_tbme(bad, HW, 2)  # not Hermitian
    with pytest.raises(MalformedFileError):
        read_lab_file(tmp_path / "missing.int")
    (tmp_path / "x.int").write_text("! something else\n1 1 1 1 0 1 0.0\n")
    with pytest.raises(MalformedFileError):
        read_lab_file(tmp_path / "x.int")


def test_model_lab_file_of_shipped_model(tmp_path):
    """The shipped fitted model: file written, (0s1/2)^2 elements = relative n = 0 ones."""
    import torch

    from nnpot.nuclear.labframe import model_lab_file
    from nnpot.nuclear.modelfile import load_model, shipped_model_path
    from nnpot.nuclear.threebody.driver import model_me

    torch.set_num_threads(1)
    model = load_model(shipped_model_path())
    out = tmp_path / "n2lo.int"
    tb = model_lab_file(model, 0, HW, 1, out)
    back, orbits, head = read_lab_file(out)
    assert back == tb and orbits == lab_orbits(1) and head["e2max"] == "2"
    rel = model_me(model, 0, 2, HW)
    assert tb[(0, 0, 0, 0, 0, 1)] == pytest.approx(rel[(0, 0, 1)][(0, 0)][0, 0], abs=1e-10)
    assert tb[(0, 0, 0, 0, 1, 0)] == pytest.approx(rel[(1, 1, 0)][(0, 0)][0, 0], abs=1e-10)
    with pytest.raises(InputError):
        model_lab_file(model, 0, HW, 1, out, nmax=1)
