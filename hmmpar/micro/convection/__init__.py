"""Two-dimensional Boussinesq convection: the micro model of superparametrized convection.

- :mod:`.params`: :class:`ConvectionParams` and its checks (the boundary-layer rule);
- :mod:`.chebyshev`: Chebyshev--Gauss--Lobatto points, derivative matrix, Clenshaw--Curtis weights;
- :mod:`.operators`: the implicit per-mode problems, their compiled inverses and kernels;
- :mod:`.imex`: the ARS IMEX Runge--Kutta tableaux;
- :mod:`.model`: :class:`ConvectionModel` (batches of columns, bitwise per column),
  :class:`ConvectionBlowUp`;
- :mod:`.diagnostics`: Nusselt numbers, energies and horizontal-mean profiles;
- :mod:`.linear`: :func:`growth_rate_free_slip`, the exact linear growth rate.

docs/convection.md has the equations, the numerics and the validation.
"""
from .linear import RA_C_FREE_SLIP, growth_rate_free_slip
from .model import ConvectionBlowUp, ConvectionModel
from .params import ConvectionParams

__all__ = ["RA_C_FREE_SLIP", "ConvectionBlowUp", "ConvectionModel", "ConvectionParams", "growth_rate_free_slip"]
