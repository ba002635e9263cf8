"""Molecular dynamics micro family (reduced Lennard-Jones units): potentials, neighbour
lists, the compiled NVE engine, Irving-Kirkwood estimators and the constrained box."""
