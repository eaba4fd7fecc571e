"""Atom-centred symmetry functions (Behler–Parrinello descriptors).

Behler, J. Chem. Phys. 134, 074106 (2011); Behler & Parrinello, PRL 98, 146401 (2007).
Lengths in Å, η in 1/Å², r_s in Å; features are dimensionless sums.

For a centre atom i with neighbours j, k (entries of a full pair list, r_ij = |r_ij| < r_c):

    G2_i[E]      = Σ_{j∈E} exp(-η (r_ij - r_s)²) f_c(r_ij)
    G4_i[{A,B}]  = 2^{1-ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ
                   · exp(-η [(r_ij-r_s)² + (r_ik-r_s)² + (r_jk-r_s)²]) f_c(r_ij) f_c(r_ik) f_c(r_jk)
    G5_i[{A,B}]  = 2^{1-ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ
                   · exp(-η [(r_ij-r_s)² + (r_ik-r_s)²]) f_c(r_ij) f_c(r_ik)

Conventions (chosen to coincide with n2p2's symmetry-function types 2, 3 and 9):
the shift r_s enters every distance of the angular Gaussians (n2p2's ``rshift``; dscribe has
no shift, i.e. r_s = 0); the angular sum runs over unordered neighbour pairs j < k, where j
and k are distinct entries of the pair list (the same atom seen through two periodic shifts
counts as two neighbours); for an element pair {A, B} with A ≠ B the sum runs over j ∈ A,
k ∈ B. dscribe's ACSF uses the same j<k counting and 2^{1-ζ} prefactor, so its G4/G5 agree
with ours at r_s = 0 (asserted in the tests).

Cutoff functions, x = r / r_c, f_c = 0 for x ≥ 1:
    "cosine":      f_c = ½ (cos(π x) + 1)                  (C1 at r_c)
    "polynomial":  f_c = 1 - 10x³ + 15x⁴ - 6x⁵             (n2p2 "poly2", C2 at r_c)

Feature columns: radial block first, ordered [neighbour element][radial parameter]; then the
angular block ordered [unordered element pair (a ≤ b, lexicographic)][angular parameter].

Implementation: ``descriptors_ref`` (slow loops, the test oracle), ``descriptors_fast``
(dispatch and the G5 moment contraction), ``descriptors_moments`` (padded-slot sums with a
hand-written chunked backward), ``descriptors_triplets`` (G4 / non-integer-ζ G5 on explicit
triplets), ``descriptors_n2p2`` (n2p2 input.nn parser).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from ase.data import atomic_numbers

from nnpot.atomistic.descriptors_ref import reference_features
from nnpot.errors import InputError

__all__ = [
    "DescriptorSpec",
    "SymmetryFunctions",
    "default_spec",
    "spec_from_n2p2",
    "reference_features",
    "cutoff_function",
]

CUTOFF_FUNCTIONS = ("cosine", "polynomial")
SPEC_VERSION = 1


def cutoff_function(r: torch.Tensor, cutoff: float, kind: str = "cosine") -> torch.Tensor:
    """Smooth cutoff f_c(r) (dimensionless) for distances r in Å; exactly 0 for r ≥ cutoff.

    "cosine": ½(cos(π r/r_c) + 1); "polynomial": 1 - 10x³ + 15x⁴ - 6x⁵ with x = r/r_c
    (n2p2 poly2; value, first and second derivative vanish at r_c).
    """
    x = torch.clamp(r / cutoff, max=1.0)
    if kind == "cosine":
        return 0.5 * (torch.cos(math.pi * x) + 1.0)
    if kind == "polynomial":
        return 1.0 + x * x * x * (-10.0 + x * (15.0 - 6.0 * x))
    raise InputError(f"Unknown cutoff function {kind!r}; use one of {CUTOFF_FUNCTIONS}.")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class DescriptorSpec:
    """Parameters of an element-resolved symmetry-function set (see module docstring).

    elements: chemical symbols sorted by atomic number; species index = position.
    cutoff: r_c in Å, shared by radial and angular functions.
    radial: G2 parameters (η [1/Å²], r_s [Å]), applied per neighbour element.
    angular: ("G4"|"G5", η [1/Å²], ζ, λ = ±1, r_s [Å]) per unordered neighbour-element pair.
    centre_columns: optional {element: column indices} when the set differs per centre
        element (n2p2 sets); None means every column is used for every element.
    """

    elements: tuple[str, ...]
    cutoff: float
    cutoff_function: str = "cosine"
    radial: tuple[tuple[float, float], ...] = ()
    angular: tuple[tuple[str, float, float, float, float], ...] = ()
    centre_columns: dict | None = field(default=None, compare=True)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        elements = tuple(self.elements)
        if not elements:
            raise InputError("A descriptor spec needs at least one element.")
        for e in elements:
            if e not in atomic_numbers or e == "X":
                raise InputError(f"Unknown chemical element {e!r} in the descriptor spec.")
        if len(set(elements)) != len(elements):
            raise InputError(f"Duplicate elements in the descriptor spec: {elements}.")
        if list(elements) != sorted(elements, key=lambda s: atomic_numbers[s]):
            raise InputError(f"Descriptor elements must be sorted by atomic number: {elements}.")
        set_("elements", elements)
        if not _finite(self.cutoff) or self.cutoff <= 0:
            raise InputError(f"The descriptor cutoff must be a positive number of Å, got "
                             f"{self.cutoff!r}.")
        set_("cutoff", float(self.cutoff))
        if self.cutoff_function not in CUTOFF_FUNCTIONS:
            raise InputError(f"Unknown cutoff function {self.cutoff_function!r}; use one of "
                             f"{CUTOFF_FUNCTIONS}.")
        radial = []
        for p in self.radial:
            if len(p) != 2 or not all(_finite(v) for v in p) or p[0] < 0 or p[1] < 0:
                raise InputError(f"Radial parameters must be (eta >= 0 [1/Å²], r_s >= 0 [Å]), "
                                 f"got {p!r}.")
            radial.append((float(p[0]), float(p[1])))
        set_("radial", tuple(radial))
        angular = []
        for p in self.angular:
            if len(p) != 5 or p[0] not in ("G4", "G5"):
                raise InputError(f"Angular parameters must be ('G4'|'G5', eta, zeta, lambda, "
                                 f"r_s), got {p!r}.")
            kind, eta, zeta, lam, rs = p
            if not all(_finite(v) for v in (eta, zeta, lam, rs)):
                raise InputError(f"Angular parameters must be finite numbers, got {p!r}.")
            if lam not in (1, -1):
                raise InputError(f"Angular lambda must be +1 or -1, got {lam!r} in {p!r}.")
            if eta < 0 or zeta < 1 or rs < 0:
                raise InputError(f"Angular parameters need eta >= 0, zeta >= 1 and r_s >= 0, "
                                 f"got {p!r}.")
            angular.append((kind, float(eta), float(zeta), float(lam), float(rs)))
        set_("angular", tuple(angular))
        if self.n_features() == 0:
            raise InputError("The descriptor spec has no radial and no angular functions.")
        if self.centre_columns is not None:
            cols = {}
            for e, idx in dict(self.centre_columns).items():
                if e not in elements:
                    raise InputError(f"centre_columns names element {e!r}, which is not in "
                                     f"the spec's elements {elements}.")
                idx = tuple(int(c) for c in idx)
                if any(c < 0 or c >= self.n_features() for c in idx) or len(set(idx)) != len(idx):
                    raise InputError(f"centre_columns[{e!r}] must hold distinct column indices "
                                     f"in [0, {self.n_features()}).")
                cols[e] = idx
            missing = [e for e in elements if e not in cols]
            if missing:
                raise InputError(f"centre_columns lacks elements {missing}.")
            set_("centre_columns", cols)

    # ----------------------------------------------------------------- layout
    def element_pairs(self) -> list[tuple[int, int]]:
        """Unordered neighbour-element pairs (a ≤ b), in column order."""
        n = len(self.elements)
        return [(a, b) for a in range(n) for b in range(a, n)]

    def n_features(self) -> int:
        """Number of feature columns for every atom (before centre_columns selection)."""
        n = len(self.elements)
        return n * len(self.radial) + n * (n + 1) // 2 * len(self.angular)

    def feature_names(self) -> list[str]:
        """Human-readable name per column, e.g. 'G2[O] eta=0.5 rs=1'."""
        names = [f"G2[{e}] eta={eta:g} rs={rs:g}" for e in self.elements
                 for eta, rs in self.radial]
        for a, b in self.element_pairs():
            ea, eb = self.elements[a], self.elements[b]
            names += [f"{k}[{ea}-{eb}] eta={eta:g} zeta={z:g} lambda={lam:+g} rs={rs:g}"
                      for k, eta, z, lam, rs in self.angular]
        return names

    def columns_for(self, element: str) -> list[int]:
        """Feature columns a centre atom of this element uses (all, unless centre_columns)."""
        if element not in self.elements:
            raise InputError(f"Element {element!r} is not in the descriptor's elements "
                             f"{self.elements}.")
        if self.centre_columns is None:
            return list(range(self.n_features()))
        return list(self.centre_columns[element])

    # ------------------------------------------------------------ serialise
    def to_dict(self) -> dict:
        """JSON-serialisable dict; ``DescriptorSpec.from_dict`` round-trips it exactly."""
        return {
            "spec_version": SPEC_VERSION,
            "elements": list(self.elements),
            "cutoff": self.cutoff,
            "cutoff_function": self.cutoff_function,
            "radial": [list(p) for p in self.radial],
            "angular": [list(p) for p in self.angular],
            "centre_columns": None if self.centre_columns is None else
            {e: list(c) for e, c in self.centre_columns.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> DescriptorSpec:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict):
            raise InputError("A descriptor spec must be a dict.")
        d = dict(d)
        version = d.pop("spec_version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise InputError(f"Descriptor spec version {version} is not supported (this nnpot "
                             f"reads version {SPEC_VERSION}); upgrade nnpot.")
        known = {"elements", "cutoff", "cutoff_function", "radial", "angular", "centre_columns"}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"Unknown descriptor spec keys: {sorted(unknown)}.")
        try:
            return cls(
                elements=tuple(d["elements"]),
                cutoff=d["cutoff"],
                cutoff_function=d.get("cutoff_function", "cosine"),
                radial=tuple(tuple(p) for p in d.get("radial", ())),
                angular=tuple(tuple(p) for p in d.get("angular", ())),
                centre_columns=d.get("centre_columns"),
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"Malformed descriptor spec: {exc}.") from None


def default_spec(elements, cutoff: float = 6.0, n_radial: int = 8,
                 angular_etas: tuple[float, ...] | None = None,
                 zetas: tuple[int, ...] = (1, 4),
                 cutoff_function: str = "cosine") -> DescriptorSpec:
    """Automatic, factorisable symmetry-function grid (G2 + G5 only, integer ζ).

    Radial: ``n_radial`` shifted Gaussians with centres r_s evenly spaced on
    [0.5 Å, r_c - Δ], Δ = (r_c - 0.5 Å)/n_radial, and width σ = Δ, η = 1/(2σ²) [1/Å²].
    Angular (G5, r_s = 0): for each η in ``angular_etas`` (default η = 1/(2σ²) with
    σ = r_c/2 and r_c/4, i.e. 1/18 and 2/9 Å⁻² at 6 Å), each ζ in ``zetas`` and λ = ±1.
    For two elements at the defaults: 2·8 radial + 3·8 angular = 40 features per atom.
    ``elements`` may be given in any order; they are sorted by atomic number.
    """
    elements = tuple(sorted(set(elements), key=lambda s: atomic_numbers.get(s, 0)))
    if not _finite(cutoff) or cutoff <= 0.5:
        raise InputError(f"default_spec needs a cutoff above 0.5 Å, got {cutoff!r}.")
    if n_radial < 1:
        raise InputError(f"n_radial must be at least 1, got {n_radial}.")
    r0 = 0.5
    delta = (cutoff - r0) / n_radial
    radial = tuple((1.0 / (2.0 * delta**2), r0 + k * delta) for k in range(n_radial))
    if angular_etas is None:
        angular_etas = (1.0 / (2.0 * (cutoff / 2.0) ** 2), 1.0 / (2.0 * (cutoff / 4.0) ** 2))
    for z in zetas:
        if int(z) != z or z < 1:
            raise InputError(f"default_spec zetas must be positive integers, got {z!r}.")
    angular = tuple(("G5", float(eta), float(z), lam, 0.0)
                    for eta in angular_etas for z in zetas for lam in (1.0, -1.0))
    return DescriptorSpec(elements=elements, cutoff=cutoff, cutoff_function=cutoff_function,
                          radial=radial, angular=angular)


def spec_from_n2p2(elements, text: str, length_unit: str = "angstrom") -> DescriptorSpec:
    """Build a spec from n2p2 ``input.nn`` text (see :mod:`nnpot.atomistic.descriptors_n2p2`)."""
    from nnpot.atomistic.descriptors_n2p2 import parse_n2p2

    return parse_n2p2(DescriptorSpec, elements, text, length_unit)


class SymmetryFunctions(torch.nn.Module):
    """Vectorised symmetry functions: (species, i, j, r_ij [Å]) -> features [n_atoms, n_feat].

    Pair-list contract: full list (both directions), sorted by centre i, r_ij = r_j - r_i
    (+ shift·cell) in Å, only |r_ij| < cutoff, no zero-shift self pair. G2 and integer-ζ G5
    use the factorised moment route (O(neighbours) per atom); G4 and non-integer-ζ G5 use
    explicit neighbour triplets. Differentiable in r_ij (forces, stress, double backward,
    batched grads via ``is_grads_batched``); memory O(pairs) however large the system.
    """

    def __init__(self, spec: DescriptorSpec):
        super().__init__()
        from nnpot.atomistic.descriptors_fast import FastPlan

        self.spec = spec
        self.plan = FastPlan(spec)

    def forward(self, species: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                rij: torch.Tensor) -> torch.Tensor:
        return self.plan(species, i, j, rij)

    def pullback(self, species, i, j, rij):
        """Features and many vector-Jacobian products at fixed ``rij`` without autograd:
        a :class:`~nnpot.atomistic.descriptors_vjp.Pullback` with ``features`` (n, F),
        ``atoms(cot)`` (committee forces: ∂/∂positions (K, n, 3) and per-centre virial
        (K, n, 3, 3) of K cotangents (K, n, F)), ``pairs(cot)`` (K products per pair,
        (P, K, 3)) and ``jacobian()`` (P, F, 3) = ∂G_{i(p), f}/∂r_p in 1/Å."""
        from nnpot.atomistic.descriptors_vjp import Pullback

        return Pullback(self.plan, species, i, j, rij)

    def jacobian(self, species, i, j, rij):
        """Features G (n, F) and pair Jacobians J (P, F, 3) = ∂G_{i(p), f}/∂r_p (1/Å), in
        one pass (closed-form rows; see :meth:`Pullback.jacobian`)."""
        pb = self.pullback(species, i, j, rij)
        return pb.features, pb.jacobian()

    def extra_repr(self) -> str:
        s = self.spec
        return (f"elements={s.elements}, cutoff={s.cutoff}, n_features={s.n_features()}, "
                f"cutoff_function={s.cutoff_function!r}")

