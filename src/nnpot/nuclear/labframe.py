"""Laboratory-frame two-body matrix elements from relative HO matrix elements (Talmi-Moshinsky).

Input: relative HO matrix elements <n' l'| V^{S J_rel T} |n l> [MeV] as produced by
:func:`nnpot.nuclear.threebody.driver.model_me`, :func:`~nnpot.nuclear.threebody.interaction.
local_me` or read by :func:`nnpot.nuclear.export.read_ho_file`: a dict
``{(S, J_rel, T): {(l', l): M[n', n]}}`` for the relative coordinate r = r1 - r2 with
oscillator length b_rel = sqrt(2) b (channels absent from the dict have V = 0).

Output: normalised, antisymmetrised J-coupled matrix elements <ab; J T| V |cd; J T> [MeV]
in the single-particle HO basis a = (n_a, l_a, j_a), 2 n_a + l_a <= emax, oscillator length
b = sqrt(hbar^2/(m hbar omega)), isospin formalism (T = 0, 1). The relative interaction of
each channel carries its own T (fixed by (-1)^(l + S + T) = -1); for the nnpot NN models
T = 1 is the np force, so nn and pp pairs get the np T = 1 force (charge independence,
no Coulomb), exactly as in the relative file.

Conventions.
* Radial functions R_nl positive at the origin (as in :mod:`nnpot.nuclear.ho`); orbits are
  |(l 1/2) j m> (orbital first, then spin); pair states |a(1) b(2); J M> = sum CG(j_a j_b J)
  with particle 1 first; isospin |(1/2 1/2) T>.
* Normalised Jacobi coordinates (lengths in units of b): x = (x1 - x2)/sqrt(2) (relative,
  = r/b_rel) and X = (x1 + x2)/sqrt(2) (centre of mass, oscillator length b/sqrt(2) in R =
  (r1 + r2)/2 units). The Talmi-Moshinsky bracket is the HO rotation bracket with
  phi = +pi/4 of :func:`nnpot.nuclear.threebody.brackets.rotation_brackets`:

      |(n l)(N Lam) L>(x, X) = sum_{lab} <(n_a l_a)(n_b l_b) L | (n l)(N Lam) L> |lab>(x1, x2),
      <(n_a l_a)(n_b l_b) L | (n l)(N Lam) L> = [expm(pi/4 K)]_{lab, rel},

  with 2 n_a + l_a + 2 n_b + l_b = 2 n + l + 2 N + Lam (M. Moshinsky, Nucl. Phys. 13, 104
  (1959); G. P. Kamuntavicius et al., Nucl. Phys. A 695, 191 (2001)). With these phases
  <(0 1)(0 0) 1 | (0 1)(0 0) 1> = +1/sqrt(2) (p orbit for particle 1, relative p state).
* LS -> jj (J. Suhonen, *From Nucleons to Nucleus*, Springer 2007, ch. 8; Edmonds 6.4):

      |(l_a 1/2) j_a, (l_b 1/2) j_b; J> = sum_{L S} hat(j_a) hat(j_b) hat(L) hat(S)
          {l_a 1/2 j_a; l_b 1/2 j_b; L S J} |(l_a l_b) L, (1/2 1/2) S; J>,   hat(x) = sqrt(2x+1).

* Relative-CM recoupling, relative angular momentum first:

      <((l Lam) L, S) J | ((l S) J_rel, Lam) J> = (-1)^(Lam + S + L + J_rel) hat(L) hat(J_rel)
          {Lam l L; S J J_rel}.

* Antisymmetriser: |ab; J T> = N_ab (1 - P12)|a(1) b(2); J T>, N_ab = 1/sqrt(2 (1 + d_ab)).
  P12 = (-1)^(l + S + T) on relative-CM states, so the overlap with a (physical,
  (-1)^(l + S + T) = -1) relative state is N_ab (1 - (-1)^(l + S + T)) <a(1) b(2)|rel> =
  sqrt(2/(1 + d_ab)) <a(1) b(2)|rel>; states a = b exist only for J + T odd. Exchange:
  |ba; J T> = (-1)^(j_a + j_b + J + T) |ab; J T>.

Then <ab; J T| V |cd; J T> = sum M_{ab, rel} V_rel M_{cd, rel'} with V_rel diagonal in
(N, Lam, S, J_rel) and the CM motion untouched. Relative matrix elements are needed up to
2n + l <= e2max (default 2 emax). The transformation is exact (no truncation error) within
each total-quanta shell.
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

import numpy as np

from nnpot.errors import InputError, MalformedFileError
from nnpot.io import atomic_write_text
from nnpot.nuclear.export import check_format_line
from nnpot.nuclear.threebody.angmom import hat, wigner_6j, wigner_9j
from nnpot.nuclear.threebody.brackets import pair_basis, rotation_brackets

__all__ = ["lab_orbits", "tm_bracket", "tm_brackets", "recouple_rel_cm", "pair_overlap", "lab_tbme",
           "write_lab_file", "read_lab_file", "model_lab_file", "LAB_FORMAT"]

LAB_FORMAT = "nnpot-lab-tbme"
LAB_VERSION = 1
PHI_TM = math.pi / 4  #: rotation angle lab -> (relative, CM) for equal masses


def lab_orbits(emax: int) -> list[tuple[int, int, int]]:
    """Single-particle HO orbits (n, l, 2j) with 2n + l <= emax, ordered by e, l, j."""
    if int(emax) != emax or emax < 0:
        raise InputError(f"emax must be a non-negative integer, got {emax!r}")
    out = []
    for e in range(int(emax) + 1):
        for l in range(e % 2, e + 1, 2):
            for j2 in (2 * l - 1, 2 * l + 1):
                if j2 > 0:
                    out.append(((e - l) // 2, l, j2))
    return out


def tm_brackets(e: int, big_l: int) -> tuple[tuple[tuple[int, int, int, int], ...], np.ndarray]:
    """(basis, B): B[lab, rel] = <(n_a l_a)(n_b l_b) L | (n l)(N Lam) L>, both in ``basis``.

    ``basis`` = ``pair_basis(e, L)`` (tuples (n1, l1, n2, l2)); B is orthogonal.
    """
    return pair_basis(e, big_l), rotation_brackets(e, big_l, PHI_TM)


@cache
def _index(e: int, big_l: int) -> dict:
    return {s: i for i, s in enumerate(pair_basis(e, big_l))}


def tm_bracket(na: int, la: int, nb: int, lb: int, n: int, l: int, nc: int, lc: int,
               big_l: int) -> float:
    """<(na la)(nb lb) L | (n l)(N=nc Lam=lc) L> (0 unless quanta and triangles match)."""
    e = 2 * na + la + 2 * nb + lb
    if e != 2 * n + l + 2 * nc + lc:
        return 0.0
    idx = _index(e, big_l)
    i, k = idx.get((na, la, nb, lb)), idx.get((n, l, nc, lc))
    if i is None or k is None:
        return 0.0
    return float(rotation_brackets(e, big_l, PHI_TM)[i, k])


def recouple_rel_cm(l: int, lam: int, big_l: int, s: int, j: int, jrel: int) -> float:
    """<((l Lam) L, S) J | ((l S) J_rel, Lam) J> (see the module docstring)."""
    return ((-1) ** ((lam + s + big_l + jrel) % 2) * hat(big_l) * hat(jrel)
            * wigner_6j(lam, l, big_l, s, j, jrel))


def _rel_blocks(rel_me: dict, e2max: int) -> dict:
    """Validate ``rel_me`` and return {(S, J_rel, T): {(l', l): M}} as float arrays."""
    if not isinstance(rel_me, dict):
        raise InputError("relative matrix elements must be a dict {(S, J, T): {(l', l): M}}")
    out = {}
    for key, blocks in rel_me.items():
        if not (isinstance(key, tuple) and len(key) == 3):
            raise InputError(f"relative channel key {key!r} is not (S, J, T)")
        s, jr, t = (int(x) for x in key)
        for (lp, l), m in blocks.items():
            m = np.asarray(m, dtype=np.float64)
            if (lp + s + t) % 2 == 0 or (l + s + t) % 2 == 0 or (lp - l) % 2:
                raise InputError(f"block (l', l) = ({lp}, {l}) of channel (S, J, T) = "
                                 f"({s}, {jr}, {t}) violates (-1)^(l + S + T) = -1")
            if not (abs(l - s) <= jr <= l + s and abs(lp - s) <= jr <= lp + s):
                raise InputError(f"block (l', l) = ({lp}, {l}) cannot couple with S = {s} "
                                 f"to J_rel = {jr}")
            need = ((e2max - lp) // 2 + 1 if lp <= e2max else 0,
                    (e2max - l) // 2 + 1 if l <= e2max else 0)
            if m.ndim != 2 or m.shape[0] < need[0] or m.shape[1] < need[1]:
                raise InputError(f"relative block ({lp}, {l}) of channel ({s}, {jr}, {t}) has "
                                 f"shape {m.shape}; 2n + l <= {e2max} needs at least {need} "
                                 "(compute the relative matrix elements with a larger nmax)")
            if not np.all(np.isfinite(m[:need[0], :need[1]])):
                raise InputError(f"relative block ({lp}, {l}) of channel ({s}, {jr}, {t}) "
                                 "has non-finite entries")
            out.setdefault((s, jr, t), {})[(lp, l)] = m[:need[0], :need[1]]
    for (s, jr, t), blocks in out.items():
        for (lp, l), m in blocks.items():
            other = blocks.get((l, lp))
            if other is None or not np.allclose(m, other.T, rtol=1e-8, atol=1e-10):
                raise InputError(f"relative block ({lp}, {l}) of channel ({s}, {jr}, {t}) is "
                                 "not the transpose of block ({l}, {lp}): V must be Hermitian")
    return out


def _lab_states(orbits, j: int, t: int, parity: int, e2max: int):
    out = []
    for a, (na, la, ja) in enumerate(orbits):
        for b in range(a, len(orbits)):
            nb, lb, jb = orbits[b]
            if (la + lb) % 2 != parity or 2 * na + la + 2 * nb + lb > e2max:
                continue
            if not abs(ja - jb) <= 2 * j <= ja + jb:
                continue
            if a == b and (j + t) % 2 == 0:
                continue
            out.append((a, b))
    return out


def _rel_states(j: int, t: int, parity: int, e2max: int):
    """(n, l, S, J_rel, N, Lam) with (-1)^(l+S+T) = -1, total quanta <= e2max, parity."""
    out = []
    for e in range(e2max + 1):
        for ecm in range(e2max - e + 1):
            for l in range(e % 2, e + 1, 2):
                for lam in range(ecm % 2, ecm + 1, 2):
                    if (l + lam) % 2 != parity:
                        continue
                    for s in (0, 1):
                        if (l + s + t) % 2 == 0:
                            continue
                        for jr in range(abs(l - s), l + s + 1):
                            if abs(jr - lam) <= j <= jr + lam:
                                out.append(((e - l) // 2, l, s, jr, (ecm - lam) // 2, lam))
    return out


def pair_overlap(orb_a, orb_b, rel, j: int, same: bool) -> float:
    """<ab; J T | rel>: orbits (n, l, 2j), rel = (n, l, S, J_rel, N, Lam) with (-1)^(l+S+T) = -1.

    ``same`` says a = b (normalisation N_aa = 1/2); the value does not depend on T otherwise.
    """
    (na, la, ja), (nb, lb, jb) = orb_a, orb_b
    n, l, s, jr, nc, lam = rel
    if 2 * na + la + 2 * nb + lb != 2 * n + l + 2 * nc + lam:
        return 0.0
    total = 0.0
    for big_l in range(max(abs(la - lb), abs(l - lam), abs(j - s)),
                       min(la + lb, l + lam, j + s) + 1):
        ninej = wigner_9j(la, 0.5, ja / 2, lb, 0.5, jb / 2, big_l, s, j)
        if ninej == 0.0:
            continue
        total += (hat(ja / 2) * hat(jb / 2) * hat(big_l) * hat(s) * ninej
                  * tm_bracket(na, la, nb, lb, n, l, nc, lam, big_l)
                  * recouple_rel_cm(l, lam, big_l, s, j, jr))
    return math.sqrt(2.0 / (1.0 + same)) * total


def lab_tbme(rel_me: dict, hw: float, emax: int, e2max: int | None = None) -> dict:
    """Antisymmetrised J-coupled lab matrix elements <ab; J T|V|cd; J T> [MeV].

    ``rel_me``: {(S, J_rel, T): {(l', l): M[n', n]}} [MeV], relative HO basis of frequency
    ``hw`` [MeV] (only checked to be positive: the transformation itself is frequency-free),
    needed for 2n + l <= e2max (default 2 emax). Returns {(a, b, c, d, J, T): V} with orbit
    indices into :func:`lab_orbits` (0-based), a <= b, c <= d, both (ab, cd) and (cd, ab),
    for e_a + e_b <= e2max and e_c + e_d <= e2max; pairs a = b only for J + T odd.
    """
    try:
        ok = math.isfinite(float(hw)) and float(hw) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"hbar omega must be a positive number of MeV, got {hw!r}")
    orbits = lab_orbits(emax)
    e2max = 2 * int(emax) if e2max is None else e2max
    if int(e2max) != e2max or not 0 <= e2max <= 2 * emax:
        raise InputError(f"e2max must be an integer in [0, 2 emax = {2 * emax}], got {e2max!r}")
    e2max = int(e2max)
    rel = _rel_blocks(rel_me, e2max)
    out: dict = {}
    jmax = max(o[2] for o in orbits)  # 2 j_max = maximum J
    for t in (0, 1):
        for j in range(jmax + 1):
            for parity in (0, 1):
                labs = _lab_states(orbits, j, t, parity, e2max)
                if not labs:
                    continue
                rels = _rel_states(j, t, parity, e2max)
                m = np.zeros((len(labs), len(rels)))
                for i, (a, b) in enumerate(labs):
                    for k, r in enumerate(rels):
                        m[i, k] = pair_overlap(orbits[a], orbits[b], r, j, a == b)
                v = np.zeros((len(rels), len(rels)))
                for k, (n, l, s, jr, nc, lam) in enumerate(rels):
                    blocks = rel.get((s, jr, t))
                    if not blocks:
                        continue
                    for k2, (n2, l2, s2, jr2, nc2, lam2) in enumerate(rels):
                        if (s2, jr2, nc2, lam2) == (s, jr, nc, lam) and (l, l2) in blocks:
                            v[k, k2] = blocks[(l, l2)][n, n2]
                vl = m @ v @ m.T
                vl = 0.5 * (vl + vl.T)  # exactly Hermitian (V is, to rounding)
                for i, (a, b) in enumerate(labs):
                    for i2, (c, d) in enumerate(labs):
                        out[(a, b, c, d, j, t)] = float(vl[i, i2])
    return out


def write_lab_file(path: str | os.PathLike, tbme: dict, orbits, hw: float,
                   header: dict | None = None) -> None:
    """Write lab TBMEs (:func:`lab_tbme`) as plain text (NuShellX-like), atomically.

    Layout: comment lines start with '!'; '! key = value' header lines (hbar_omega [MeV],
    emax, units and conventions); '! orbit i n l 2j' lines (1-based i); then one line per
    matrix element 'a b c d J T V' with 1-based orbit indices, J and T as integers (not
    doubled), V in MeV; a <= b, c <= d, (a, b) <= (c, d) (the Hermitian partner is implied).
    """
    orbits = [tuple(int(x) for x in o) for o in orbits]
    head = {"hbar_omega": f"{float(hw):.10g}", "norbits": str(len(orbits))}
    for k, v in (header or {}).items():
        head[str(k)] = str(v).replace("\n", " ")
    lines = [f"! {LAB_FORMAT} {LAB_VERSION}"]
    lines += [f"! {k} = {v}" for k, v in head.items()]
    lines += [
        "! convention: <ab; J T|V|cd; J T>, normalised and antisymmetrised, isospin formalism",
        "! convention: orbits |(l 1/2) j>, HO radial functions positive at the origin, "
        "b = sqrt(hbar^2/(m hbar omega))",
        "! convention: |ba; J T> = (-1)^(j_a + j_b + J + T) |ab; J T>; V in MeV; J, T integers",
        "! convention: T = 1 uses the T = 1 (np) relative force for nn, pp and np pairs",
        "! columns of the orbit lines: orbit index n l 2j",
    ]
    lines += [f"! orbit {i + 1} {n} {l} {j2}" for i, (n, l, j2) in enumerate(orbits)]
    lines.append("! columns: a b c d J T V_MeV")
    for (a, b, c, d, j, t) in sorted(tbme):
        if (a, b) <= (c, d):
            lines.append(f"{a + 1} {b + 1} {c + 1} {d + 1} {j} {t} {tbme[(a, b, c, d, j, t)]:.16e}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_lab_file(path: str | os.PathLike) -> tuple[dict, list, dict]:
    """Read a :func:`write_lab_file` file: (tbme with (ab, cd) and (cd, ab), orbits, header)."""
    path = Path(path)
    if not path.is_file():
        raise MalformedFileError(f"lab TBME file {str(path)!r} does not exist")
    header: dict[str, str] = {}
    orbits: list = []
    tbme: dict = {}
    with open(path, encoding="utf-8") as fh:
        check_format_line(path, fh.readline(), "!", LAB_FORMAT, LAB_VERSION)
        for lineno, line in enumerate(fh, start=2):
            parts = line.split()
            try:
                if line.startswith("!"):
                    if parts[1:2] == ["orbit"] and len(parts) == 6:
                        orbits.append(tuple(int(x) for x in parts[3:6]))
                    elif " = " in line:
                        k, v = line[1:].split(" = ", 1)
                        header[k.strip()] = v.strip()
                    continue
                if not parts:
                    continue
                if len(parts) != 7:
                    raise MalformedFileError(f"{str(path)!r} line {lineno}: expected 7 columns")
                a, b, c, d, j, t = (int(x) for x in parts[:6])
                val = float(parts[6])
            except ValueError:
                raise MalformedFileError(f"{str(path)!r} line {lineno}: not numbers") from None
            if min(a, b, c, d) < 1 or max(a, b, c, d) > len(orbits):
                raise MalformedFileError(f"{str(path)!r} line {lineno}: orbit index outside "
                                         f"1..{len(orbits)}")
            tbme[(a - 1, b - 1, c - 1, d - 1, j, t)] = val
            tbme[(c - 1, d - 1, a - 1, b - 1, j, t)] = val
    if "hbar_omega" not in header:
        raise MalformedFileError(f"{str(path)!r} lacks the header entry 'hbar_omega'")
    if header.get("norbits", str(len(orbits))) != str(len(orbits)):
        raise MalformedFileError(f"{str(path)!r} lists {len(orbits)} orbits, its header says "
                                 f"{header['norbits']}")
    return tbme, orbits, header


def model_lab_file(model, member: int, hw: float, emax: int, out: str | os.PathLike,
                   nmax: int | None = None, e2max: int | None = None,
                   rel: dict | None = None) -> dict:
    """Lab TBMEs of a fitted NN model (committee ``member``) written to ``out``; returns them.

    Relative matrix elements from :func:`nnpot.nuclear.threebody.driver.model_me` up to
    ``nmax`` (default e2max = 2 emax) relative quanta at ``hw`` [MeV], or ``rel`` when the
    caller has them already (same model, member and hw); hbar^2/m with the
    isospin-averaged nucleon mass (b = sqrt(hbar^2/m / hw) [fm] in the header).
    """
    from nnpot.nuclear.threebody.driver import model_hbar2_m, model_me

    e2 = 2 * int(emax) if e2max is None else int(e2max)
    nrel = e2 if nmax is None else int(nmax)
    if nrel < e2:
        raise InputError(f"relative nmax = {nrel} is below e2max = {e2}; lab TBMEs need it")
    if rel is None:
        rel = model_me(model, member, nrel, hw)
    tbme = lab_tbme(rel, hw, emax, e2max=e2)
    h2m = model_hbar2_m()
    write_lab_file(out, tbme, lab_orbits(emax), hw, {
        "emax": emax, "e2max": e2, "member": member, "relative_nmax": nrel,
        "hbar2_over_m": f"{h2m:.10g}", "b_fm": f"{math.sqrt(h2m / hw):.12g}",
        "source": "nnpot model (bare NN interaction, no kinetic energy, no Coulomb)"})
    return tbme
