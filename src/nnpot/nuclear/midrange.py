"""An intermediate-range correction per channel: Yukawa-type central and tensor terms.

The N2LO long range misses the pieces of two-pion exchange that appear at higher orders
(N3LO/N4LO TPE, Delta excitations), whose spectral functions start at 2 m_pi; in the phase
shifts they act as an intermediate-range (about 0.5-1.5 fm) force that no contact
polynomial can mimic (fitted contacts leave residuals that oscillate with energy). This
module adds, in every channel, a few Yukawa functions of the momentum transfer q [MeV]
with fixed masses M_k (a spectral representation with delta-function densities),

    V_mid(q) = C_0 sum_k [ a_k M_k^2 / (q^2 + M_k^2) + b_k sigma1.q sigma2.q / (q^2 + M_k^2) ],

C_0 = g_A^2 / (4 f_pi^2) [MeV^-2] (the OPE strength, so a, b are O(1) numbers), projected
onto the channel like pion exchange (:func:`nnpot.nuclear.ope.project`) and regulated by the
same f(p') f(p) (:mod:`~nnpot.nuclear.potential`). Spin-isospin factors are absorbed in the
per-channel coefficients; the tensor term exists only in spin triplets (in a singlet it
equals a contact plus the central Yukawa). Because it is a local potential, one central
and one tensor coefficient act coherently in all blocks of a coupled channel, and its
energy dependence has the shape of a finite-range force: a strong inductive bias with 2
(singlet: 1) numbers per mass. V_mid is linear in the coefficients; the projected basis
is cached per momentum grid. Units: V in MeV fm^3, p in fm^-1, masses in MeV.
"""

from __future__ import annotations

import torch

from nnpot.nuclear.channels import Channel
from nnpot.nuclear.constants import F_PI, G_A
from nnpot.nuclear.ope import project

C0 = G_A**2 / (4.0 * F_PI**2)  #: strength unit [MeV^-2]


def _key(channel: Channel) -> str:
    return channel.name.replace("-", "_")


class MidRange(torch.nn.Module):
    """Per-channel Yukawa-type correction; ``coef[<channel>]`` has shape (K, n_s) with the
    central and (spin triplets) tensor coefficients (a_k, b_k) per mass (dimensionless).

    masses_mev: the M_k [MeV]; jmax: channels covered; nz: points of the angular projection.
    """

    def __init__(self, masses_mev=(300.0, 500.0), jmax: int = 4, nz: int = 48):
        super().__init__()
        from nnpot.nuclear.channels import np_channels

        self.masses_mev = tuple(float(m) for m in masses_mev)
        self.jmax, self.nz = int(jmax), int(nz)
        self.coef = torch.nn.ParameterDict()
        for c in np_channels(self.jmax):
            self.coef[_key(c)] = torch.nn.Parameter(
                torch.zeros(len(self.masses_mev), 1 + c.s, dtype=torch.float64))
        self._cache: dict = {}

    def basis(self, channel: Channel, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        """Projected basis (K * n_s, nL, nL, n1, n2) [MeV fm^3], unregulated, cached; the
        order matches ``coef[<channel>].reshape(-1)``."""
        key = (channel, p1.shape[0], p2.shape[0], float(p1.sum()), float(p2.sum()),
               float((p1**2).sum()), float((p2**3).sum()))
        hit = self._cache.get(key)
        if hit is not None and torch.equal(hit[0], p1) and torch.equal(hit[1], p2):
            return hit[2]
        out = []
        with torch.no_grad():
            for m in self.masses_mev:
                yuk = lambda q, m=m: C0 * m**2 / (q**2 + m**2)  # noqa: E731
                out.append(project(channel, p1, p2, v_c=yuk, nz=self.nz))
                if channel.s == 1:
                    ten = lambda q, m=m: C0 / (q**2 + m**2)  # noqa: E731
                    out.append(project(channel, p1, p2, v_t=ten, nz=self.nz))
            basis = torch.stack(out)
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (p1.detach().clone(), p2.detach().clone(), basis)
        return basis

    def forward(self, channel: Channel, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        """V_mid (nL, nL, n1, n2) [MeV fm^3], unregulated."""
        b = self.basis(channel, p1, p2).to(p1)
        return torch.einsum("k,k...->...", self.coef[_key(channel)].reshape(-1), b)

    def config(self) -> dict:
        return {"masses_mev": list(self.masses_mev), "jmax": self.jmax, "nz": self.nz}
