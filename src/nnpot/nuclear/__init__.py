"""Neural nucleon-nucleon potentials in momentum space (MeV, fm, fm^-1)."""
