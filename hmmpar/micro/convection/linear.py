r"""Linear stability of the conductive state between free-slip walls (Chandrasekhar 1961).

Perturb :math:`T = 1 - z + \theta` with the stream function convention of
:mod:`hmmpar.micro.convection.model` (:math:`u = \partial_z\psi`,
:math:`w = -\partial_x\psi`, :math:`\omega = \nabla^2\psi = \partial_z u - \partial_x w`).
Linearised, the vorticity and temperature equations are

.. math::

    \partial_t\omega = \mathrm{Pr}\,\nabla^2\omega - \mathrm{Pr}\,\mathrm{Ra}\,\partial_x\theta,
    \qquad \partial_t\theta = w + \nabla^2\theta .

Between free-slip walls held at fixed temperature the modes
:math:`\psi, \theta \propto \sin(m\pi z)\,e^{ikx + \sigma t}` satisfy every boundary
condition (:math:`\psi = \partial_z^2\psi = \theta = 0`). With :math:`q^2 = k^2 + m^2\pi^2`,
:math:`\hat\omega = -q^2\hat\psi` and :math:`\hat w = -ik\hat\psi`:

.. math::

    \sigma\begin{pmatrix}\hat\psi\\ \hat\theta\end{pmatrix} =
    \begin{pmatrix} -\mathrm{Pr}\,q^2 & \mathrm{Pr}\,\mathrm{Ra}\,ik/q^2 \\
                    -ik & -q^2 \end{pmatrix}
    \begin{pmatrix}\hat\psi\\ \hat\theta\end{pmatrix},

trace :math:`-(\mathrm{Pr}+1)q^2`, determinant
:math:`\mathrm{Pr}\,(q^4 - \mathrm{Ra}\,k^2/q^2)`, so the larger eigenvalue is

.. math::

    \sigma = \tfrac12\Big[-(\mathrm{Pr}+1)q^2
        + \sqrt{(\mathrm{Pr}-1)^2q^4 + 4\,\mathrm{Pr}\,\mathrm{Ra}\,k^2/q^2}\Big],

real for every Pr (exchange of stabilities). For :math:`\mathrm{Pr}\to\infty` (Stokes flow,
:math:`0 = \nabla^2\omega - \mathrm{Ra}\,\partial_x\theta`) the first row becomes
:math:`\hat\psi = \mathrm{Ra}\,ik\,\hat\theta/q^4` and
:math:`\sigma = \mathrm{Ra}\,k^2/q^4 - q^2`. Both vanish on :math:`\mathrm{Ra} = q^6/k^2`,
whose minimum over k is at :math:`k^2 = \pi^2/2` (m = 1):
:math:`\mathrm{Ra}_c = 27\pi^4/4 \approx 657.51` (Chandrasekhar, *Hydrodynamic and
Hydromagnetic Stability*, Oxford 1961, §II.15; Rayleigh 1916).
"""
from __future__ import annotations

import math

#: critical Rayleigh number between free-slip walls, and its wavenumber
RA_C_FREE_SLIP = 27.0 * math.pi ** 4 / 4.0
K_C_FREE_SLIP = math.pi / math.sqrt(2.0)


def growth_rate_free_slip(ra: float, pr: float, k: float, m: int = 1) -> float:
    r"""Growth rate :math:`\sigma` of :math:`\sin(m\pi z)e^{ikx}` between free-slip walls.

    Parameters
    ----------
    ra, pr
        Rayleigh and Prandtl numbers (``pr = math.inf``: Stokes flow).
    k
        Horizontal wavenumber (> 0).
    m
        Vertical mode number (>= 1).

    Returns
    -------
    float
        The larger eigenvalue of the 2x2 problem in the module docstring, in units of the
        inverse thermal diffusion time :math:`\kappa/d^2`.
    """
    if k <= 0 or m < 1:
        raise ValueError(f"need k > 0 and m >= 1, got k = {k}, m = {m}")
    q2 = k * k + (m * math.pi) ** 2
    if math.isinf(pr):
        return ra * k * k / (q2 * q2) - q2
    disc = (pr - 1.0) ** 2 * q2 * q2 + 4.0 * pr * ra * k * k / q2
    return 0.5 * (-(pr + 1.0) * q2 + math.sqrt(disc))


def eigenvector_free_slip(ra: float, pr: float, k: float, m: int = 1) -> complex:
    r"""Ratio :math:`\hat\psi/\hat\theta` of the growing mode (second row of the matrix):
    :math:`\hat\psi = i(\sigma + q^2)\hat\theta/k`."""
    sigma = growth_rate_free_slip(ra, pr, k, m)
    q2 = k * k + (m * math.pi) ** 2
    return 1j * (sigma + q2) / k
