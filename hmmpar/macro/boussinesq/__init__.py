r"""A coarse, distributed 2D Boussinesq model (the macro model of superparametrization).

Modules, one job each:

- :mod:`.params`   :class:`BoussinesqParams`, the checks (``ConfigError`` naming the key),
  the bottom profile
- :mod:`.mac`      staggered-grid kernels: limited upwind flux-form advection, diffusion,
  buoyancy, divergence, wall ghosts
- :mod:`.poisson`  the projection's Poisson problem: a redundant sequential LU (bitwise
  rank-independent, the default) or CG + GAMG (distributed)
- :mod:`.ordered`  column-ordered gathers and sums (rank-independent diagnostics)
- :mod:`.model`    :class:`CoarseBoussinesq`: state on a PETSc DMDA, the split step,
  diagnostics, checkpoints

See ``docs/superparam.md``.
"""
from .model import CoarseBoussinesq
from .params import BoussinesqParams, default_bottom_profile

__all__ = ["CoarseBoussinesq", "BoussinesqParams", "default_bottom_profile"]
