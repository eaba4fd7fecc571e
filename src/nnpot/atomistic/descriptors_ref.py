"""Slow, obviously correct symmetry functions: the test oracle of the fast implementation.

Loops over centre atoms and over pairs of their neighbour entries, literally evaluating
the formulas in :mod:`nnpot.atomistic.descriptors` (Behler, J. Chem. Phys. 134, 074106
(2011)). Differentiable in r_ij. Lengths in Å, η in 1/Å². Use it only on small systems.
"""

from __future__ import annotations

import math

import torch


def _fc(r: torch.Tensor, rc: float, kind: str) -> torch.Tensor:
    if float(r.detach()) >= rc:
        return r * 0.0
    x = r / rc
    if kind == "cosine":
        return 0.5 * (torch.cos(math.pi * x) + 1.0)
    return 1.0 - 10.0 * x**3 + 15.0 * x**4 - 6.0 * x**5


def reference_features(spec, species: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                       rij: torch.Tensor) -> torch.Tensor:
    """Features [n_atoms, spec.n_features()] by explicit loops (see module docstring).

    species: element indices into spec.elements [n_atoms]; i, j: pair list [n_pairs];
    rij: r_j - r_i (+ shift·cell) in Å [n_pairs, 3]. Dtype and device follow rij.
    """
    n_atoms = species.shape[0]
    n_el = len(spec.elements)
    rc, kind = spec.cutoff, spec.cutoff_function
    pair_index = {p: k for k, p in enumerate(spec.element_pairs())}
    n_rad, n_ang = len(spec.radial), len(spec.angular)
    ang0 = n_el * n_rad
    rows = []
    for centre in range(n_atoms):
        feats = [rij.new_zeros(()) for _ in range(spec.n_features())]
        mine = [p for p in range(i.shape[0]) if int(i[p]) == centre]
        for p in mine:
            r = torch.linalg.norm(rij[p])
            e = int(species[j[p]])
            for k, (eta, rs) in enumerate(spec.radial):
                col = e * n_rad + k
                feats[col] = feats[col] + torch.exp(-eta * (r - rs) ** 2) * _fc(r, rc, kind)
        for a_pos, p in enumerate(mine):
            for q in mine[a_pos + 1:]:  # unordered pairs of neighbour entries, j < k
                v1, v2 = rij[p], rij[q]
                r1, r2 = torch.linalg.norm(v1), torch.linalg.norm(v2)
                r3 = torch.linalg.norm(v2 - v1)
                cos = torch.dot(v1, v2) / (r1 * r2)
                e1, e2 = sorted((int(species[j[p]]), int(species[j[q]])))
                base = ang0 + pair_index[(e1, e2)] * n_ang
                for k, (typ, eta, zeta, lam, rs) in enumerate(spec.angular):
                    ang = 2.0 ** (1.0 - zeta) * torch.clamp(1.0 + lam * cos, min=0.0) ** zeta
                    if typ == "G4":
                        rad = (torch.exp(-eta * ((r1 - rs) ** 2 + (r2 - rs) ** 2 + (r3 - rs) ** 2))
                               * _fc(r1, rc, kind) * _fc(r2, rc, kind) * _fc(r3, rc, kind))
                    else:
                        rad = (torch.exp(-eta * ((r1 - rs) ** 2 + (r2 - rs) ** 2))
                               * _fc(r1, rc, kind) * _fc(r2, rc, kind))
                    feats[base + k] = feats[base + k] + ang * rad
        rows.append(torch.stack(feats))
    if not rows:
        return rij.new_zeros((0, spec.n_features()))
    return torch.stack(rows)
