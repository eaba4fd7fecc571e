"""Read n2p2 ``input.nn`` symmetry-function definitions into a :class:`DescriptorSpec`.

Supported lines (n2p2 documentation, "Symmetry functions"; Singraber et al., J. Chem.
Theory Comput. 15, 1827 (2019)):

    symfunction_short <centre> 2 <neighbour> <eta> <rshift> <rcutoff>
    symfunction_short <centre> 3 <neigh1> <neigh2> <eta> <lambda> <zeta> <rcutoff> [<rshift>]
    symfunction_short <centre> 9 <neigh1> <neigh2> <eta> <lambda> <zeta> <rcutoff> [<rshift>]
    cutoff_type <1 (cosine) | 6 (poly2)> [<alpha> = 0]

Type 3 is our G4 (with r_jk term), type 9 our G5. All functions must share one cutoff.
The spec holds the union of parameters over centre elements; ``centre_columns`` names the
columns each centre element actually uses (n2p2 order within radial/angular blocks is not
kept — columns follow the spec's layout). ``length_unit="bohr"`` converts η (1/Bohr² →
1/Å²), r_s and r_c (Bohr → Å); the default treats the numbers as Å.
"""

from __future__ import annotations

from ase.data import atomic_numbers
from ase.units import Bohr

from nnpot.errors import InputError

_CUTOFF_TYPES = {1: "cosine", 6: "polynomial"}


def parse_n2p2(spec_cls, elements, text: str, length_unit: str = "angstrom"):
    """Parse n2p2 text into ``spec_cls`` (a DescriptorSpec); see the module docstring."""
    if length_unit not in ("angstrom", "bohr"):
        raise InputError(f"length_unit must be 'angstrom' or 'bohr', got {length_unit!r}.")
    scale = Bohr if length_unit == "bohr" else 1.0
    for e in elements:
        if e not in atomic_numbers:
            raise InputError(f"Unknown chemical element {e!r} given to spec_from_n2p2.")
    elements = tuple(sorted(set(elements), key=lambda s: atomic_numbers[s]))
    index = {e: k for k, e in enumerate(elements)}
    cutoff_kind = "cosine"
    radial, angular, cutoffs = [], [], set()
    uses = []  # (centre, "rad", neighbour, param) / (centre, "ang", (a, b), param)

    def element(sym, lineno):
        if sym not in index:
            raise InputError(f"n2p2 line {lineno}: element {sym!r} is not in {elements}.")
        return index[sym]

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        if line[0] == "cutoff_type":
            try:
                ctype = int(line[1])
                alpha = float(line[2]) if len(line) > 2 else 0.0
            except (IndexError, ValueError):
                raise InputError(f"n2p2 line {lineno}: malformed cutoff_type line.") from None
            if ctype not in _CUTOFF_TYPES or alpha != 0.0:
                raise InputError(f"n2p2 line {lineno}: only cutoff_type 1 (cosine) and 6 "
                                 f"(poly2) with alpha = 0 are supported.")
            cutoff_kind = _CUTOFF_TYPES[ctype]
            continue
        if line[0] != "symfunction_short":
            continue
        try:
            centre = element(line[1], lineno)
            typ = int(line[2])
            if typ == 2:
                nb = element(line[3], lineno)
                eta, rs, rc = (float(x) for x in line[4:7])
                param = (eta / scale**2, rs * scale)
                if param not in radial:
                    radial.append(param)
                uses.append((centre, "rad", nb, param))
            elif typ in (3, 9):
                a, b = sorted((element(line[3], lineno), element(line[4], lineno)))
                eta, lam, zeta, rc = (float(x) for x in line[5:9])
                rs = float(line[9]) if len(line) > 9 else 0.0
                param = ("G4" if typ == 3 else "G5", eta / scale**2, zeta, lam, rs * scale)
                if param not in angular:
                    angular.append(param)
                uses.append((centre, "ang", (a, b), param))
            else:
                raise InputError(f"n2p2 line {lineno}: symmetry function type {typ} is not "
                                 f"supported (use 2, 3 or 9).")
        except (IndexError, ValueError):
            raise InputError(f"n2p2 line {lineno}: malformed symfunction_short line.") from None
        cutoffs.add(rc * scale)
    if not uses:
        raise InputError("No symfunction_short lines found in the n2p2 text.")
    if len(cutoffs) != 1:
        raise InputError(f"All n2p2 symmetry functions must share one cutoff; found "
                         f"{sorted(cutoffs)} Å.")
    spec = spec_cls(elements=elements, cutoff=cutoffs.pop(), cutoff_function=cutoff_kind,
                    radial=tuple(radial), angular=tuple(angular))
    n_el, n_rad, n_ang = len(elements), len(spec.radial), len(spec.angular)
    pair_pos = {p: k for k, p in enumerate(spec.element_pairs())}
    columns = {e: [] for e in elements}
    for centre, kind, what, param in uses:
        if kind == "rad":
            col = what * n_rad + spec.radial.index(param)
        else:
            col = n_el * n_rad + pair_pos[what] * n_ang + spec.angular.index(param)
        if col not in columns[elements[centre]]:
            columns[elements[centre]].append(col)
    empty = [e for e, c in columns.items() if not c]
    if empty:
        raise InputError(f"The n2p2 text defines no symmetry functions for elements {empty}.")
    return spec_cls(elements=elements, cutoff=spec.cutoff, cutoff_function=cutoff_kind,
                    radial=spec.radial, angular=spec.angular,
                    centre_columns={e: sorted(c) for e, c in columns.items()})
