"""Physical constants and kinematics for the nuclear pipeline (MeV, fm, fm^-1).

Values are read from the shipped ``nnpot/data/nuclear/constants.json`` (CODATA 2018
masses and hbar c, PDG 2020 pion masses, deuteron and low-energy np data; references and
the public files they were verified in are stored with every entry, see SOURCES.md there).

Conventions (shared by all of :mod:`nnpot.nuclear`): partial-wave states |p (L S) J T>
with <p|p'> = delta(p - p')/p^2; potentials V_{L'L}(p', p) in MeV fm^3; the kinetic
energy of relative motion is E(p) = (hbar c)^2 p^2 / (2 mu) with mu the np reduced mass
(p in fm^-1, E in MeV).

Kinematics (as the Nijmegen analysis does): the CM momentum for a neutron of laboratory
kinetic energy T_lab on a proton at rest is the relativistic relation

    p^2 = M_p^2 T_lab (T_lab + 2 M_n) / ((M_p + M_n)^2 + 2 T_lab M_p)      [MeV^2],

divided by (hbar c)^2 to give fm^-2. The on-shell energy fed to the (non-relativistic)
Lippmann-Schwinger equation is then E = (hbar c)^2 p^2 / (2 mu).

Chiral constants: g_A = 1.29 (effective value absorbing the Goldberger-Treiman
discrepancy; Epelbaum, Krebs, Meissner, EPJA 51, 53 (2015)), f_pi = 92.4 MeV, and the
pi-N LECs at N2LO c1 = -0.74, c3 = -3.61, c4 = 2.44 GeV^-1 (Roy-Steiner analysis at
NLO of the chiral expansion: M. Hoferichter, J. Ruiz de Elvira, B. Kubis, U.-G. Meissner,
PRL 115, 192301 (2015); the values used in the N2LO potentials of Entem, Machleidt,
Nosyk, PRC 96, 024004 (2017)).
"""

from __future__ import annotations

import json
import warnings
from importlib import resources

import torch

from nnpot.errors import InputError


def _load() -> dict:
    text = resources.files("nnpot").joinpath("data/nuclear/constants.json").read_text("utf-8")
    return json.loads(text)


CONSTANTS: dict = _load()

_F = CONSTANTS["fundamental"]
_P = CONSTANTS["pion_and_chiral"]

HBARC: float = _F["hbar_c"]["value"]  #: MeV fm
M_P: float = _F["m_p"]["value"]  #: proton mass, MeV
M_N: float = _F["m_n"]["value"]  #: neutron mass, MeV
M_AVG: float = 0.5 * (M_P + M_N)  #: isospin-averaged nucleon mass, MeV
MU_NP: float = M_P * M_N / (M_P + M_N)  #: np reduced mass, MeV
HBARC2_2MU: float = HBARC**2 / (2.0 * MU_NP)  #: (hbar c)^2 / (2 mu), MeV fm^2

M_PI0: float = _P["m_pi0"]["value"]  #: MeV
M_PIC: float = _P["m_pi_pm"]["value"]  #: charged pion mass, MeV
M_PI: float = (2.0 * M_PIC + M_PI0) / 3.0  #: isospin-averaged pion mass, MeV
G_A: float = _P["g_A_chiral"]["value"]  #: axial coupling used in chiral OPE
F_PI: float = _P["f_pi_chiral"]["value"]  #: pion decay constant, MeV

#: pi-N LECs (GeV^-1), Hoferichter et al. PRL 115, 192301 (2015), NLO Roy-Steiner values.
C1_GEV: float = -0.74
C3_GEV: float = -3.61
C4_GEV: float = 2.44

#: Breakdown scale of the chiral expansion used for truncation errors (MeV).
LAMBDA_B: float = 600.0

#: Lab energy of the pion-production threshold for np (MeV): T = 2 m_pi + m_pi^2/(2M).
TLAB_PION_THRESHOLD: float = 2.0 * M_PI0 + M_PI0**2 / (2.0 * M_AVG)

EXPERIMENT = {
    "B_d": CONSTANTS["deuteron"]["B_d"]["value"],  # MeV
    "Q_d": CONSTANTS["deuteron"]["Q_d"]["value"],  # fm^2
    "A_S": CONSTANTS["deuteron"]["A_S"]["value"],  # fm^-1/2
    "eta": CONSTANTS["deuteron"]["eta_DS"]["value"],  # 1
    "r_d": CONSTANTS["deuteron"]["r_d_matter"]["value"],  # fm
    "a_1S0": CONSTANTS["np_low_energy"]["a_s_np"]["value"],  # fm
    "r_1S0": CONSTANTS["np_low_energy"]["r_s_np"]["value"],  # fm (status: conflict)
    "a_3S1": CONSTANTS["np_low_energy"]["a_t"]["value"],  # fm
    "r_3S1": CONSTANTS["np_low_energy"]["r_t"]["value"],  # fm
}


def check_tlab(tlab, warn: bool = True) -> torch.Tensor:
    """Validate laboratory energies (MeV): finite, > 0; warn above pion production.

    Returns them as a float64 tensor. Raises :class:`InputError` for zero, negative or
    non-finite energies. Above the pion-production threshold (about 280 MeV) a potential
    model without inelasticity is used outside its domain: a ``UserWarning`` says so.
    """
    t = torch.as_tensor(tlab, dtype=torch.float64).reshape(-1)
    if t.numel() == 0:
        raise InputError("no laboratory energies were given; give at least one T_lab in MeV")
    if not bool(torch.isfinite(t).all()):
        raise InputError("laboratory energies must be finite numbers in MeV")
    if bool((t <= 0).any()):
        bad = float(t[t <= 0][0])
        raise InputError(f"laboratory energy {bad} MeV is not positive; give T_lab > 0 in MeV")
    if warn and bool((t > TLAB_PION_THRESHOLD).any()):
        warnings.warn(
            f"T_lab up to {float(t.max()):.0f} MeV is above the pion-production threshold "
            f"({TLAB_PION_THRESHOLD:.0f} MeV): the elastic NN potential ignores inelasticity there",
            UserWarning,
            stacklevel=2,
        )
    return t


def p_cm(tlab, warn: bool = True) -> torch.Tensor:
    """CM momentum p [fm^-1] for np at laboratory kinetic energy ``tlab`` [MeV].

    p^2 = M_p^2 T (T + 2 M_n) / ((M_p + M_n)^2 + 2 T M_p) / (hbar c)^2 (relativistic,
    neutron projectile on a proton at rest, as in the Nijmegen PWA).
    """
    t = check_tlab(tlab, warn=warn)
    p2 = M_P**2 * t * (t + 2.0 * M_N) / ((M_P + M_N) ** 2 + 2.0 * t * M_P)
    return torch.sqrt(p2) / HBARC


def e_cm(p) -> torch.Tensor:
    """Non-relativistic CM energy E = (hbar c)^2 p^2 / (2 mu) [MeV] for p in fm^-1."""
    p = torch.as_tensor(p, dtype=torch.float64)
    return HBARC2_2MU * p**2


def q_expansion(p, lambda_b: float = LAMBDA_B) -> torch.Tensor:
    """EFT expansion parameter Q = max(p, m_pi) / Lambda_b (p in fm^-1, Lambda_b in MeV)."""
    p = torch.as_tensor(p, dtype=torch.float64) * HBARC
    return torch.clamp(p, min=M_PI) / lambda_b

