r"""An equation of state tabulated from micro state points.

The macro scheme needs three things a micro model does not give directly: the internal
energy of the initial data, given as :math:`(\rho, \mathbf u, p)`; the pressure of a
conserved state, for output; and the adiabatic sound speed, for the CFL time step. An MD
micro model measures :math:`p` and the internal energy per mass :math:`e` at state points
:math:`(\rho_k, T_l)` on a grid (once per run, stored in the checkpoint); this class
interpolates them.

Interpolation: at each tabulated density :math:`\rho_k`, :math:`p` and :math:`T` are
piecewise linear in :math:`e` along the column :math:`e_{kl}` (increasing in :math:`T` for a
stable fluid: checked), extrapolated linearly beyond the last two points; between
densities, linear in :math:`\rho`. Densities outside the table are refused (a
:class:`ValueError` the caller names a cell in).

Sound speed, from :math:`p(\rho, e)` (e per mass) and the first law at constant entropy,
:math:`de = (p/\rho^2)\,d\rho`:

.. math::

    c^2 = \left(\frac{\partial p}{\partial\rho}\right)_s
        = \left(\frac{\partial p}{\partial\rho}\right)_e
          + \frac{p}{\rho^2}\left(\frac{\partial p}{\partial e}\right)_\rho ,

with both derivatives the slopes of the interpolant (centred differences of step
:math:`10^{-4}` of the table's ranges). For an ideal gas :math:`p = (\gamma-1)\rho e` this is
:math:`\gamma p / \rho` exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class TabulatedEOS:
    """``density`` (K,) increasing; ``energy``, ``pressure``, ``temperature`` (K, L): the
    internal energy per mass, pressure and temperature at ``density[k]`` and the l-th
    tabulated temperature (increasing along each row)."""

    density: np.ndarray
    energy: np.ndarray
    pressure_table: np.ndarray
    temperature: np.ndarray

    def __post_init__(self) -> None:
        rho = np.asarray(self.density, dtype=float)
        if rho.ndim != 1 or rho.size < 2 or not np.all(np.diff(rho) > 0):
            raise ValueError("EOS table: need at least 2 increasing densities")
        for name in ("energy", "pressure_table", "temperature"):
            a = np.asarray(getattr(self, name), dtype=float)
            if a.shape != (rho.size, a.shape[1] if a.ndim == 2 else -1) or a.shape[1] < 2:
                raise ValueError(f"EOS table: {name} must be ({rho.size}, L >= 2)")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"EOS table: {name} is not finite")
        bad = np.argwhere(~(np.diff(np.asarray(self.energy), axis=1) > 0))
        if bad.size:
            k, l = bad[0]
            raise ValueError(f"EOS table: the internal energy does not increase with temperature at density "
                             f"{rho[k]:.4g} between T = {self.temperature[k][l]:.4g} and {self.temperature[k][l + 1]:.4g}")

    # ------------------------------------------------------------------ interpolation
    def _column(self, k: np.ndarray, e: np.ndarray, table: np.ndarray) -> np.ndarray:
        """Piecewise-linear value of ``table[k]`` at energies ``e`` along row k (extrapolated)."""
        ek = self.energy[k]                        # (n, L)
        n_l = ek.shape[1]
        j = np.empty(e.shape, dtype=np.int64)
        for i in range(e.size):                    # rows differ per point: search each
            j[i] = np.searchsorted(ek[i], e[i]) - 1
        j = np.clip(j, 0, n_l - 2)
        rows = np.arange(e.size)
        e0, e1 = ek[rows, j], ek[rows, j + 1]
        v0, v1 = table[k, j], table[k, j + 1]
        return v0 + (v1 - v0) * (e - e0) / (e1 - e0)

    def _interp(self, rho: np.ndarray, e: np.ndarray, table: np.ndarray) -> np.ndarray:
        rho = np.asarray(rho, dtype=float).ravel()
        e = np.asarray(e, dtype=float).ravel()
        outside = ~((rho >= self.density[0]) & (rho <= self.density[-1]))
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(f"density {rho[i]:.6g} is outside the EOS table [{self.density[0]:.4g}, "
                             f"{self.density[-1]:.4g}]")
        k = np.clip(np.searchsorted(self.density, rho) - 1, 0, self.density.size - 2)
        w = (rho - self.density[k]) / (self.density[k + 1] - self.density[k])
        return (1.0 - w) * self._column(k, e, table) + w * self._column(k + 1, e, table)

    def pressure_of(self, rho, e) -> np.ndarray:
        """Pressure at density ``rho`` and internal energy per mass ``e``."""
        shape = np.shape(rho)
        return self._interp(rho, e, np.asarray(self.pressure_table)).reshape(shape)

    def temperature_of(self, rho, e) -> np.ndarray:
        """Temperature at density ``rho`` and internal energy per mass ``e``."""
        shape = np.shape(rho)
        return self._interp(rho, e, np.asarray(self.temperature)).reshape(shape)

    def energy_of(self, rho, p) -> np.ndarray:
        """Internal energy per mass giving pressure ``p`` at density ``rho`` (the inverse of
        :meth:`pressure_of` in e, by bisection on the interpolant; ValueError when p is
        below the pressure of the lowest tabulated temperature, or not finite)."""
        shape = np.shape(rho)
        rho = np.asarray(rho, dtype=float).ravel()
        p = np.broadcast_to(np.asarray(p, dtype=float), np.shape(rho)).ravel()
        lo = np.full(rho.size, float(np.min(self.energy)))
        p_lo = self.pressure_of(rho, lo)
        too_low = ~(p >= p_lo)
        if too_low.any():
            i = int(np.flatnonzero(too_low)[0])
            raise ValueError(f"pressure {p[i]:.6g} at density {rho[i]:.6g} is below the EOS table (its lowest "
                             f"temperature gives {p_lo[i]:.6g}); lower the table's lowest temperature")
        span = float(np.max(self.energy) - np.min(self.energy))
        hi = lo + span
        for _ in range(60):                        # grow until bracketed (extrapolated side)
            short = self.pressure_of(rho, hi) < p
            if not short.any():                    # elementwise: stopping early changes no point
                break
            hi = np.where(short, hi + span, hi)
        # a fixed number of halvings, not "until every point has converged": each point's
        # answer must not depend on the other points of the array (the arrays of a rank's
        # cells differ with the rank count); 2^-100 of the bracket is below one ulp
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            below = self.pressure_of(rho, mid) < p
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return (0.5 * (lo + hi)).reshape(shape)

    def sound_speed_of(self, rho, e) -> np.ndarray:
        r""":math:`c = \sqrt{(\partial p/\partial\rho)_e + p\,(\partial p/\partial e)_\rho/\rho^2}`
        (module docstring); NaN where :math:`c^2 \le 0` (a mechanically unstable state)."""
        shape = np.shape(rho)
        rho = np.asarray(rho, dtype=float).ravel()
        e = np.asarray(e, dtype=float).ravel()
        h_rho = 1e-4 * float(self.density[-1] - self.density[0])
        h_e = 1e-4 * float(np.max(self.energy) - np.min(self.energy))
        r_lo = np.maximum(rho - h_rho, self.density[0])
        r_hi = np.minimum(rho + h_rho, self.density[-1])
        dp_drho = (self.pressure_of(r_hi, e) - self.pressure_of(r_lo, e)) / (r_hi - r_lo)
        dp_de = (self.pressure_of(rho, e + h_e) - self.pressure_of(rho, e - h_e)) / (2 * h_e)
        p = self.pressure_of(rho, e)
        c2 = dp_drho + p * dp_de / (rho * rho)
        with np.errstate(invalid="ignore"):
            return np.where(c2 > 0, np.sqrt(np.maximum(c2, 0.0)), np.nan).reshape(shape)

    # ------------------------------------------------------------------ the app's EOS interface
    def pressure(self, rho, rho_e) -> np.ndarray:
        """Pressure from density and internal energy density (the app's EOS interface)."""
        rho = np.asarray(rho, dtype=float)
        return self.pressure_of(rho, np.asarray(rho_e, dtype=float) / rho)

    def internal_energy_density(self, rho, p) -> np.ndarray:
        r"""Internal energy density :math:`\rho e(\rho, p)`."""
        rho = np.asarray(rho, dtype=float)
        return rho * self.energy_of(rho, p)

    def sound_speed(self, rho, p) -> np.ndarray:
        """Adiabatic sound speed at density and pressure."""
        rho = np.asarray(rho, dtype=float)
        return self.sound_speed_of(rho, self.energy_of(rho, p))

    def arrays(self) -> dict[str, np.ndarray]:
        """The table as arrays (for a checkpoint)."""
        return {"density": np.asarray(self.density), "energy": np.asarray(self.energy),
                "pressure": np.asarray(self.pressure_table), "temperature": np.asarray(self.temperature)}
