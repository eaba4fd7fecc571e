"""Behler-Parrinello neural-network potentials for atoms (eV, Angstrom)."""
