r"""Finite-volume kernels of the staggered (MAC) Boussinesq grid, NumPy-vectorised.

Placement (Harlow & Welch 1965): cell :math:`(i, k)` has centre
:math:`(x_i, z_k) = ((i + \tfrac12) h_x, (k + \tfrac12) h_z)`; :math:`T` and :math:`p` live
at centres, :math:`u_{i,k}` on the west face :math:`x = i h_x` of the cell and
:math:`w_{i,k}` on its bottom face :math:`z = k h_z`. The bottom wall is face :math:`k = 0`
(stored, always 0), the top wall :math:`k = n_z` (not stored, a ghost row held at 0).

All kernels take *ghosted* arrays of shape ``(nz + 4, nc + 4)`` (DMDA order: z rows, x
columns, ``WIDTH = 2`` ghost layers on each side; the owned block is
``[2:nz+2, 2:nc+2]``), with the z ghosts filled by :func:`fill_wall_ghosts`.

Advection is in flux form :math:`\nabla\cdot(\mathbf u q)` (equal to
:math:`\mathbf u\cdot\nabla q` for a divergence-free velocity), the face value of the
advected quantity the upwind-biased MUSCL value with the minmod limiter (van Leer 1979):

.. math::

    q_{j+1/2} = \begin{cases} q_j + \tfrac12\,\mathrm{mm}(q_j - q_{j-1},\ q_{j+1} - q_j) & a \ge 0\\
    q_{j+1} - \tfrac12\,\mathrm{mm}(q_{j+1} - q_j,\ q_{j+2} - q_{j+1}) & a < 0\end{cases}

(second order where smooth, no new extrema). Diffusion is the standard 5-point flux
difference. For :math:`T` each face flux (advective + diffusive) is computed once and
differenced, so the heat content changes only by the wall fluxes (to round-off). Momentum
is advected in the same flux form on the staggered control volumes (Harlow & Welch 1965):
the :math:`u` fluxes at cell centres and cell corners, the :math:`w` fluxes at corners
and cell centres, with the advecting velocity the average of the two nearest faces.

Every operation is elementwise (no sums over cells), so a cell's result does not depend
on how the columns are split between ranks.
"""
from __future__ import annotations

import numpy as np

__all__ = ["minmod", "face_value", "fill_wall_ghosts", "temperature_fluxes", "temperature_tendency",
           "momentum_tendency", "divergence"]

G = 2  # ghost layers (params.WIDTH)


def minmod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r""":math:`\mathrm{mm}(a, b) = \tfrac12(\mathrm{sgn}\,a + \mathrm{sgn}\,b)\min(|a|, |b|)`."""
    return 0.5 * (np.sign(a) + np.sign(b)) * np.minimum(np.abs(a), np.abs(b))


def face_value(qm1: np.ndarray, q0: np.ndarray, qp1: np.ndarray, qp2: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Limited upwind value between ``q0`` and ``qp1`` for the advecting velocity ``a``."""
    left = q0 + 0.5 * minmod(q0 - qm1, qp1 - q0)
    right = qp1 - 0.5 * minmod(qp1 - q0, qp2 - qp1)
    return np.where(a >= 0.0, left, right)


def fill_wall_ghosts(u: np.ndarray, w: np.ndarray, t: np.ndarray, bottom: np.ndarray, hz: float,
                     bottom_kind: str, no_slip: bool) -> None:
    r"""Fill the two z-ghost rows at each wall, in place, for all (ghosted) columns.

    * :math:`T`: top :math:`T = 0` (odd reflection, :math:`T_{n_z} = -T_{n_z-1}`); bottom
      temperature :math:`T_b` (odd reflection about :math:`T_b`: :math:`T_{-1} = 2T_b - T_0`)
      or upward flux :math:`q_b` (:math:`T_{-1} = T_0 + q_b h_z`, so that
      :math:`-(T_0 - T_{-1})/h_z = q_b`; second ghost linear).
    * :math:`u`: free slip even (:math:`\partial_z u = 0`), no slip odd (:math:`u = 0`).
    * :math:`w`: zero on both wall faces, odd beyond them.

    ``bottom`` holds :math:`T_b` or :math:`q_b` of every ghosted column.
    """
    nz = t.shape[0] - 2 * G
    r0, r1 = G, G + nz - 1  # first and last interior row
    if bottom_kind == "temperature":
        t[r0 - 1] = 2.0 * bottom - t[r0]
        t[r0 - 2] = 2.0 * bottom - t[r0 + 1]
    else:
        t[r0 - 1] = t[r0] + bottom * hz
        t[r0 - 2] = t[r0 + 1] + 3.0 * bottom * hz
    t[r1 + 1] = -t[r1]
    t[r1 + 2] = -t[r1 - 1]
    sgn = -1.0 if no_slip else 1.0
    u[r0 - 1] = sgn * u[r0]
    u[r0 - 2] = sgn * u[r0 + 1]
    u[r1 + 1] = sgn * u[r1]
    u[r1 + 2] = sgn * u[r1 - 1]
    w[r0] = 0.0                  # bottom wall face k = 0
    w[r0 - 1] = -w[r0 + 1]
    w[r0 - 2] = -w[r0 + 2]
    w[r1 + 1] = 0.0              # top wall face k = nz
    w[r1 + 2] = -w[r1]


def temperature_fluxes(u: np.ndarray, w: np.ndarray, t: np.ndarray, hx: float, hz: float,
                       vertical_diffusion: bool = True) -> tuple[np.ndarray, np.ndarray]:
    r"""Total (advective + diffusive) heat fluxes through the faces of the owned cells.

    ``vertical_diffusion=False`` leaves the diffusive part of the z fluxes out, the
    boundary fluxes included (under superparametrization the column models carry the
    vertical heat transport by diffusion and convection, and the walls' heat exchange).

    Returns ``fx`` of shape ``(nz, nc + 1)`` (x faces ``i0 .. i1``:
    :math:`u\,T_{i-1/2} - (T_i - T_{i-1})/h_x`) and ``fz`` of shape ``(nz + 1, nc)`` (z faces
    ``0 .. nz``, upward: :math:`w\,T_{k-1/2} - (T_k - T_{k-1})/h_z`; the wall rows are the
    boundary fluxes, :math:`w = 0` there).
    """
    nz, nc = t.shape[0] - 2 * G, t.shape[1] - 2 * G
    rows = slice(G, G + nz)
    a = u[rows, G:G + nc + 1]
    qm1, q0, qp1, qp2 = (t[rows, s:s + nc + 1] for s in range(0, 4))
    fx = a * face_value(qm1, q0, qp1, qp2, a) - (qp1 - q0) / hx
    cols = slice(G, G + nc)
    a = w[G:G + nz + 1, cols]
    qm1, q0, qp1, qp2 = (t[s:s + nz + 1, cols] for s in range(0, 4))
    fz = a * face_value(qm1, q0, qp1, qp2, a)
    if vertical_diffusion:
        fz = fz - (qp1 - q0) / hz
    return fx, fz


def temperature_tendency(fx: np.ndarray, fz: np.ndarray, hx: float, hz: float) -> np.ndarray:
    r""":math:`-\nabla\cdot F` of the owned cells, ``(nz, nc)``, from :func:`temperature_fluxes`."""
    return -(fx[:, 1:] - fx[:, :-1]) / hx - (fz[1:] - fz[:-1]) / hz


def momentum_tendency(u: np.ndarray, w: np.ndarray, t: np.ndarray, hx: float, hz: float, pr: float, ra: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    r"""Advection, viscosity and buoyancy of the owned faces (no pressure).

    Returns ``du`` ``(nz, nc)`` (x faces ``i0 .. i1 - 1``) and ``dw`` ``(nz, nc)`` (z faces
    ``0 .. nz - 1``; row 0, the wall, is 0):

    .. math::

        \dot u = -\delta_x(\bar u\,u - \Pr\,\delta_x u) - \delta_z(\bar w\,u - \Pr\,\delta_z u),\qquad
        \dot w = -\delta_x(\bar u\,w - \Pr\,\delta_x w) - \delta_z(\bar w\,w - \Pr\,\delta_z w)
        + \Pr\,\mathrm{Ra}\,\bar T^z.
    """
    nz, nc = t.shape[0] - 2 * G, t.shape[1] - 2 * G
    rows, cols = slice(G, G + nz), slice(G, G + nc)
    # u: x fluxes at the cell centres i0-1 .. i1-1 (centre c between faces c and c+1)
    abar = 0.5 * (u[rows, 1:nc + 2] + u[rows, 2:nc + 3])
    qm1, q0, qp1, qp2 = (u[rows, s:s + nc + 1] for s in range(0, 4))
    fux = abar * face_value(qm1, q0, qp1, qp2, abar) - pr * (qp1 - q0) / hx
    # u: z fluxes at the corners (x face i, z face k), k = 0 .. nz
    wbar = 0.5 * (w[G:G + nz + 1, 1:nc + 1] + w[G:G + nz + 1, 2:nc + 2])
    qm1, q0, qp1, qp2 = (u[s:s + nz + 1, cols] for s in range(0, 4))
    fuz = wbar * face_value(qm1, q0, qp1, qp2, wbar) - pr * (qp1 - q0) / hz
    du = -(fux[:, 1:] - fux[:, :-1]) / hx - (fuz[1:] - fuz[:-1]) / hz
    # w (interior faces k = 1 .. nz-1): x fluxes at the corners, x faces i0 .. i1
    inner = slice(G + 1, G + nz)
    ubar = 0.5 * (u[G:G + nz - 1, G:G + nc + 1] + u[inner, G:G + nc + 1])
    qm1, q0, qp1, qp2 = (w[inner, s:s + nc + 1] for s in range(0, 4))
    fwx = ubar * face_value(qm1, q0, qp1, qp2, ubar) - pr * (qp1 - q0) / hx
    # w: z fluxes at the cell centres k = 0 .. nz-1 (between faces k and k+1)
    wbar = 0.5 * (w[G:G + nz, cols] + w[G + 1:G + nz + 1, cols])
    qm1, q0, qp1, qp2 = (w[s:s + nz, cols] for s in range(1, 5))
    fwz = wbar * face_value(qm1, q0, qp1, qp2, wbar) - pr * (qp1 - q0) / hz
    dw = np.zeros((nz, nc))
    buoy = (pr * ra) * (0.5 * (t[G:G + nz - 1, cols] + t[inner, cols]))
    dw[1:] = -(fwx[:, 1:] - fwx[:, :-1]) / hx - (fwz[1:] - fwz[:-1]) / hz + buoy
    return du, dw


def divergence(u: np.ndarray, w: np.ndarray, hx: float, hz: float) -> np.ndarray:
    r"""Discrete divergence of the owned cells,
    :math:`(u_{i+1,k} - u_{i,k})/h_x + (w_{i,k+1} - w_{i,k})/h_z`, ``(nz, nc)`` (the wall
    rows of ``w`` must hold 0)."""
    nz, nc = u.shape[0] - 2 * G, u.shape[1] - 2 * G
    rows, cols = slice(G, G + nz), slice(G, G + nc)
    return (u[rows, G + 1:G + nc + 1] - u[rows, cols]) / hx + (w[G + 1:G + nz + 1, cols] - w[rows, cols]) / hz
