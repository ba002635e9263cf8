"""Molecular dynamics micro family, in reduced Lennard-Jones units (m = epsilon = sigma = k_B = 1).

A library shared by the applications (gas-dynamics fluxes, atomistic elasticity, learned
estimators) and by other engines (the LAMMPS backend reuses the potentials, the estimators
and the result type):

- :mod:`.potentials`: :func:`make_potential` (``lj``, ``wca``, ``none``), tail corrections,
  ground-state energies;
- :mod:`.lattice`: fcc and random initial positions, Maxwell-Boltzmann velocities;
- :mod:`.neighbours`: cell-list half neighbour lists with periodic image codes;
- :mod:`.engine`: :class:`MDSystem`, the compiled velocity-Verlet NVE loop;
- :mod:`.estimators`: Irving-Kirkwood box fluxes per sample (:func:`sample_row`), block
  averages, the two-phase test, :class:`MDResult`, and the Galilean/Euler-flux derivation;
- :mod:`.box`: :func:`constrained_box` (the HMM gas-dynamics micro problem) and
  :func:`state_point`.
"""
from .box import MDStateError, constrained_box, macro_to_box, state_point
from .engine import MDError, MDSystem
from .estimators import FIELDS, MDResult, block_average, euler_flux, sample_row, two_phase_test
from .potentials import Potential, make_potential

__all__ = [
    "FIELDS", "MDError", "MDResult", "MDStateError", "MDSystem", "Potential", "block_average",
    "constrained_box", "euler_flux", "macro_to_box", "make_potential", "sample_row", "state_point",
    "two_phase_test",
]
