"""Finite volumes for hyperbolic conservation laws (the gas-dynamics macro solver).

Small modules, one job each, all NumPy-vectorised over cells:

- :mod:`.euler`          conserved/primitive variables, Euler fluxes, ideal-gas EOS, admissibility
- :mod:`.limiters`       minmod and limited differences
- :mod:`.staggered`      staggered Lax-Friedrichs, Nessyahu-Tadmor (1D), Jiang-Tadmor (2D) kernels
- :mod:`.kfvs`           kinetic flux-vector splitting (Pullin; Deshpande; Mandal & Deshpande)
- :mod:`.muscl`          MUSCL face states with minmod (second-order kinetic scheme)
- :mod:`.boundary`       periodic / reflecting / outflow ghost values
- :mod:`.timestep`       CFL time step and each scheme's stability limit
- :mod:`.grid`           the cell, corner and face PETSc DMDAs of a uniform grid
- :mod:`.riemann_exact`  Toro's exact Riemann solver (reference solutions)

The HMM wiring (which flux values are micro tasks, the step's farm rounds, checkpoints,
outputs) is in :mod:`hmmpar.apps.gas_dynamics`.
"""
