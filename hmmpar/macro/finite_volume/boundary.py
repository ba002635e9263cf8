r"""Boundary conditions by ghost values: periodic, reflecting (solid wall), outflow.

A local array holds ``width`` ghost layers beyond each side of its owned points; on a
side that is a physical boundary they are filled here from the owned values (periodic
sides are filled by the DMDA's ghost exchange instead). Two placements of the points:

``"cell"``
    cell centres: the boundary lies between the last owned point and the first ghost;
    ghost layer :math:`l = 1, 2, \dots` mirrors owned point :math:`l - 1` (counted from the
    boundary).
``"vertex"``
    cell corners / faces (the staggered grid of the central schemes): the boundary
    point itself is an owned point; ghost layer :math:`l` mirrors owned point :math:`l`.

Conditions:

``reflecting``
    a solid wall: the ghost state is the mirror image of the interior, i.e. the normal
    momentum changes sign (:func:`reflection_signs`). The flux in the wall's normal
    direction of a mirrored state is the mirrored flux times -1, tangential fluxes are
    mirrored only: :math:`F_d(RU) = \pm R F_d(U)` with :math:`-` iff :math:`d` is the
    wall's normal. With these ghosts the scheme computes the mirror-symmetric extension
    of the solution, so total mass and energy are conserved exactly.
``outflow``
    transmissive: every ghost layer copies the boundary value (zero-order
    extrapolation), so waves leave with little reflection.
``periodic``
    both sides of an axis: handled by the DMDA (``DM_BOUNDARY_PERIODIC``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["BCS", "reflection_signs", "fill_ghosts"]

#: the boundary conditions, as written in configs
BCS = ("periodic", "reflecting", "outflow")


def reflection_signs(nvar: int, normal: int, flux_direction: int | None = None) -> np.ndarray:
    """Sign per conserved variable of the mirror image across a wall normal to direction
    ``normal`` (0 = x, 1 = y): -1 for that momentum component. For a *flux* in
    ``flux_direction`` the whole vector also changes sign when ``flux_direction == normal``."""
    signs = np.ones(nvar)
    signs[1 + normal] = -1.0
    if flux_direction is not None and flux_direction == normal:
        signs = -signs
    return signs


def _index(ndim: int, axis: int, i) -> tuple:
    index = [slice(None)] * ndim
    index[axis] = i
    return tuple(index)


def fill_ghosts(a: np.ndarray, axis: int, side: int, bc: str, width: int, placement: str,
                signs: np.ndarray | None = None) -> None:
    """Fill, in place, the ``width`` ghost layers of ``a`` on one side of array axis ``axis``.

    Parameters
    ----------
    a
        Local array whose last axis is the variables; along ``axis`` its first (``side``
        0) or last (``side`` 1) ``width`` entries are the ghosts of a physical boundary.
    bc
        ``"reflecting"`` or ``"outflow"`` (``"periodic"`` is an error here).
    placement
        ``"cell"`` or ``"vertex"`` (see the module docstring).
    signs
        Per-variable signs of the mirror image (reflecting); default all +1.
    """
    n = a.shape[axis]
    nd = a.ndim
    # b: index of the boundary point (the owned point next to the ghosts); step: outwards
    b, step = (width, -1) if side == 0 else (n - 1 - width, 1)
    for layer in range(1, width + 1):
        ghost = b + step * layer
        if bc == "outflow":
            a[_index(nd, axis, ghost)] = a[_index(nd, axis, b)]
        elif bc == "reflecting":
            mirror = b - step * (layer - 1 if placement == "cell" else layer)
            values = a[_index(nd, axis, mirror)]
            a[_index(nd, axis, ghost)] = values if signs is None else values * signs
        else:
            raise ValueError(f"fill_ghosts: boundary condition {bc!r} has no ghost rule here")
