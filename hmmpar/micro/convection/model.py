r"""Two-dimensional Boussinesq convection in a periodic box: a batch of independent columns.

Equations (depth d = 1, temperature contrast 1, time in units of the thermal diffusion
time :math:`d^2/\kappa`, velocity in :math:`\kappa/d`):

.. math::

    \partial_t\mathbf u + \mathbf u\cdot\nabla\mathbf u = -\nabla p + \mathrm{Pr}\nabla^2\mathbf u
        + \mathrm{Pr\,Ra}\,T\hat{\mathbf z} + f_U(z)\hat{\mathbf x},\qquad \nabla\cdot\mathbf u = 0,
    \qquad \partial_t T + \mathbf u\cdot\nabla T = \nabla^2 T + f_T(z),

on :math:`0 \le x < L` (periodic), :math:`0 \le z \le 1`. For :math:`\mathrm{Pr} = \infty`
the momentum equation is Stokes' :math:`0 = -\nabla p + \nabla^2\mathbf u + \mathrm{Ra}\,T\hat{\mathbf z}`
(Blankenbach et al., GJI 98 (1989) 23).

Stream function and vorticity: :math:`u = \partial_z\psi`, :math:`w = -\partial_x\psi`,
:math:`\omega = \nabla^2\psi = \partial_z u - \partial_x w`; the curl of the momentum
equation is

.. math::

    \partial_t\omega + \mathbf u\cdot\nabla\omega = \mathrm{Pr}\nabla^2\omega
        - \mathrm{Pr\,Ra}\,\partial_x T .

The horizontal mean of u, :math:`U(z)` (mode k = 0), is not determined by ω and evolves by
its own equation
:math:`\partial_t U = \mathrm{Pr}\,U'' - \partial_z\langle uw\rangle + f_U` (no mean
pressure gradient in a periodic box: the net horizontal mass flux is free and f_U spins
it up); :math:`\psi_0 = 0`, so the mean of w is zero. For Pr = inf, U = 0.

Discretisation: Fourier in x (``nx`` points, modes :math:`|k| < n_x/2`, products on a 3/2
grid: alias-free quadratic terms), Chebyshev--Gauss--Lobatto collocation in z
(:mod:`.chebyshev`); per mode the implicit problems of :mod:`.operators`; time stepping
by the IMEX Runge--Kutta schemes of :mod:`.imex` with diffusion implicit and advection,
buoyancy and forcing explicit. A column stores its coefficients :math:`\hat T_k(z_j)`,
:math:`\hat\omega_k(z_j)` (k > 0) and :math:`U(z_j)`, so a copied row continues bitwise.

Time step: each column takes :math:`n = \lceil\tau/\Delta t_{\rm lim}\rceil` equal steps
for a call of length :math:`\tau`, with

.. math::

    \Delta t_{\rm lim} = \min\Big(\frac{\mathrm{cfl}}{\max_{x,z}(|u|/\Delta x + |w|/h_z)},\;
    \Delta t_{\max}\Big),\qquad
    \Delta t_{\max} = \frac{\mathrm{cfl}}{\min(\sqrt{\mathrm{Pr\,Ra'}},\ \mathrm{Ra'}/4\pi^2)}
    \ \text{(default)},

:math:`\Delta x = L/n_x`, :math:`h_z` the distance of a Chebyshev point to its nearest
neighbour, and :math:`\mathrm{Ra'} = \mathrm{Ra}\max(1, \max|T_b|)`. The default
:math:`\Delta t_{\max}` bounds the explicit buoyancy coupling: every growth rate of the
conductive state obeys :math:`\sigma < \min(\sqrt{\mathrm{Pr\,Ra}}, \mathrm{Ra}/4\pi^2)`
(:mod:`.linear`: :math:`\sigma^2 < \mathrm{Pr\,Ra}\,k^2/q^2` and
:math:`\sigma < \mathrm{Ra}\,k^2/q^4 \le \mathrm{Ra}/4\pi^2`). The limit is checked again at
every step from the velocities of the step's first stage; if the planned step exceeds it,
the rest of the call is re-planned into more equal steps, so a call still ends exactly at
its duration.

Determinism: every operation on a column is element-wise, a per-row FFT (``scipy.fft``
with ``workers=1``: pocketfft applies the same arithmetic to every row, whether it handles
several rows at once in SIMD lanes or one at a time), a compiled kernel with a fixed loop order
(:mod:`.operators`), or a reduction along the column's own contiguous rows; the inverses
depend only on the step. A column's trajectory is therefore bitwise the same alone or in
any batch (tested).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

from hmmpar.core.errors import HmmparError

from .chebyshev import clenshaw_curtis_weights, diff_matrix, local_spacing, nodes
from .diagnostics import diag_dtype, hmean, parseval_weights, zint
from .imex import TABLEAUX
from .operators import ModeOperators, advection, as_real, matvec_rows
from .params import ConvectionParams

#: smallest time step accepted before a column counts as blown up
DT_FLOOR = 1e-9
#: a column whose step limit falls by this factor within one step has blown up
DT_DROP = 1e-3


class ConvectionBlowUp(HmmparError):
    """A column produced NaN/Inf or its time step collapsed.

    Attributes
    ----------
    column
        Index of the column in the batch passed to :meth:`ConvectionModel.advance`.
    time
        The column's time when it was detected.
    cause
        E.g. ``"NaN in T"``.
    """

    def __init__(self, column: int, time: float, cause: str) -> None:
        super().__init__(f"convection column {column} blew up at t = {time:.10g} ({cause})", collective=False)
        self.column = int(column)
        self.time = float(time)
        self.cause = cause


class ConvectionModel:
    """Advance batches of convection columns of one :class:`ConvectionParams`.

    Attributes
    ----------
    x, z
        Grid (nx,) and Chebyshev levels (nz,), ascending, ``z[0] = 0``, ``z[-1] = 1``.
    quadrature_weights
        Clenshaw--Curtis weights on ``z``.
    k
        Kept wavenumbers :math:`2\\pi m/L`, m = 0..nx/2 (the Nyquist mode is held at zero).
    state_dtype
        One column: ``t``, ``steps`` (total), ``dt`` (last step), ``T`` (nz, nk) complex
        coefficients :math:`\\hat T_k(z_j)`, for finite Pr ``omega`` (nz, nk) (mode 0 unused,
        zero) and ``U`` (nz,), and ``bottom`` (nx,): the bottom temperature or flux profile.
    """

    def __init__(self, params: ConvectionParams) -> None:
        params.validate()
        self.params = p = params
        self.nx, self.nz = p.nx, p.nz
        self.nk = p.nx // 2 + 1
        self.nxp = 3 * p.nx // 2
        self.nkp = self.nxp // 2 + 1
        self.finite_pr = not math.isinf(p.pr)
        self.x = np.arange(p.nx) * (p.aspect / p.nx)
        self.z = nodes(p.nz)
        self.dz = diff_matrix(p.nz)
        self.quadrature_weights = clenshaw_curtis_weights(p.nz)
        self.k = 2.0 * math.pi / p.aspect * np.arange(self.nk)
        ik = 1j * self.k
        ik[-1] = 0.0
        self.ik = ik
        self._c = parseval_weights(self.nk)
        self._dxinv = p.nx / p.aspect
        self._hzinv = 1.0 / local_spacing(self.z)
        self.tableau = TABLEAUX[p.scheme]
        self.ops = ModeOperators(self.dz, self.k, p.pr, p.walls == "no-slip", p.bottom == "flux")
        fields = [("t", "f8"), ("steps", "i8"), ("dt", "f8"), ("T", "c16", (p.nz, self.nk))]
        if self.finite_pr:
            fields += [("omega", "c16", (p.nz, self.nk)), ("U", "f8", (p.nz,))]
        fields += [("bottom", "f8", (p.nx,))]
        self.state_dtype = np.dtype(fields)
        self.diag_dtype = diag_dtype(p.nz)

    # ------------------------------------------------------------------ set-up
    def _bottom_profiles(self, bottom, ncol: int) -> np.ndarray | None:
        """None, a scalar, (ncol,) values or (ncol, nx) profiles -> (ncol, nx) (or None)."""
        if bottom is None:
            return None
        b = np.asarray(bottom, dtype=float)
        if b.ndim == 0:
            out = np.full((ncol, self.nx), float(b))
        elif b.shape == (ncol,):
            out = np.repeat(b[:, None], self.nx, axis=1)
        elif b.shape == (ncol, self.nx):
            out = b.copy()
        else:
            raise ValueError(f"bottom: need a scalar, ({ncol},) values or ({ncol}, {self.nx}) profiles, "
                             f"got shape {b.shape}")
        if not np.isfinite(out).all():
            raise ValueError("bottom: values must be finite")
        return out

    def _forcing(self, f, ncol: int, name: str) -> np.ndarray:
        if f is None:
            return np.zeros((ncol, self.nz))
        a = np.asarray(f, dtype=float)
        if a.shape != (ncol, self.nz):
            raise ValueError(f"{name}: need shape ({ncol}, {self.nz}), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name}: values must be finite")
        return np.ascontiguousarray(a)

    def _rfft(self, a: np.ndarray) -> np.ndarray:
        out = np.fft.rfft(a, axis=-1, norm="forward")
        out[..., -1] = 0.0
        return out

    def initial_states(self, rngs, amplitude: float = 1e-3, bottom=None) -> np.ndarray:
        r"""Conductive columns with a random perturbation.

        :math:`T = b(x)(1 - z) + a\,4z(1-z)\,\xi(x, z)` with :math:`\xi` standard normal at
        the grid points, drawn from the column's generator (``rng.standard_normal((nz, nx))``),
        b the bottom value (temperature or flux, default 1); the fluid is at rest.

        Parameters
        ----------
        rngs
            One :class:`numpy.random.Generator` per column.
        amplitude
            a above.
        bottom
            None (1), a scalar, one value per column, or (ncol, nx) profiles.
        """
        ncol = len(rngs)
        states = np.zeros(ncol, dtype=self.state_dtype)
        b = self._bottom_profiles(1.0 if bottom is None else bottom, ncol)
        states["bottom"] = b
        shape = 4.0 * self.z * (1.0 - self.z)
        for c, rng in enumerate(rngs):
            noise = rng.standard_normal((self.nz, self.nx))
            t_phys = b[c][None, :] * (1.0 - self.z)[:, None] + amplitude * shape[:, None] * noise
            states["T"][c] = self._rfft(t_phys)
        return states

    def dt_limit_buoyancy(self, bottom: np.ndarray) -> np.ndarray:
        """The default largest step per column (module docstring), or ``params.dt_max``."""
        p = self.params
        if p.dt_max is not None:
            return np.full(bottom.shape[0], float(p.dt_max))
        ra_eff = p.ra * np.maximum(1.0, np.abs(bottom).max(axis=1))
        rate = ra_eff / (4.0 * math.pi ** 2)
        if self.finite_pr:
            rate = np.minimum(rate, np.sqrt(p.pr * ra_eff))
        return p.cfl / rate

    # ------------------------------------------------------------------ operators
    def _dz(self, a: np.ndarray) -> np.ndarray:
        """D_z along axis -2 of a contiguous complex (..., nz, nk) array."""
        shp = a.shape
        src = as_real(np.ascontiguousarray(a)).reshape(-1, self.nz, 2 * self.nk)
        out = np.empty_like(src)
        self.ops.dz_folded.apply(src, out)
        return out.view(np.complex128).reshape(shp)

    def _dz_real(self, a: np.ndarray) -> np.ndarray:
        """D_z of real profiles (n, nz)."""
        out = np.empty((a.shape[0], self.nz))
        matvec_rows(self.dz, a, out)
        return out

    def _modes(self, op, r: np.ndarray) -> np.ndarray:
        """Apply a per-mode operator (:class:`.operators.Folded`, ``Dense`` or
        ``VorticityStream``) to complex r (n, m, nk)."""
        src = as_real(np.ascontiguousarray(r))
        out = np.empty((r.shape[0], op.rows, 2 * self.nk))
        op.apply(src, out)
        return out.view(np.complex128)

    def _stokes(self, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Stokes vorticity and stream function of temperatures T: :math:`\Delta_k\hat\omega
        = \mathrm{Ra}\,ik\hat T`."""
        nz = self.nz
        rhs = (self.params.ra * self.ik) * T[:, 1:-1, :]
        sol = self._modes(self.ops.stokes, rhs)
        sol[:, :, 0] = 0.0
        return sol[:, :nz, :], sol[:, nz:, :]

    def _poisson(self, om: np.ndarray) -> np.ndarray:
        psi = self._modes(self.ops.poisson, om[:, 1:-1, :])
        psi[:, :, 0] = 0.0
        return psi

    # ------------------------------------------------------------------ explicit part
    def _explicit(self, T, om, psi, U, fT, fU, want_rate=True):
        """N(y) for a batch; also the velocity limit rate (zeros unless ``want_rate``) and stage
        diagnostics."""
        p = self.params
        n = T.shape[0]
        nz, nk = self.nz, self.nk
        ik = self.ik
        fin = self.finite_pr
        # spectral fields u, w, T_x, T_z[, omega_x, omega_z]; the 3/2 padding is done by irfft
        spec = np.empty((n, 6 if fin else 4, nz, nk), dtype=np.complex128)
        if fin:
            d = self._dz(np.stack([psi, om, T], axis=1))
            u_hat, dom, dT = d[:, 0], d[:, 1], d[:, 2]
            u_hat[:, :, 0] = U
            om_full = om.copy()
            dU = self._dz_real(U)
            om_full[:, :, 0] = dU
            dom[:, :, 0] = self._dz_real(dU)
            np.multiply(ik, om, out=spec[:, 4])
            spec[:, 5] = dom
        else:
            d = self._dz(np.stack([psi, T], axis=1))
            u_hat, dT = d[:, 0], d[:, 1]
            om_full = om
        spec[:, 0] = u_hat
        w_hat = spec[:, 1]
        np.multiply(-ik, psi, out=w_hat)
        np.multiply(ik, T, out=spec[:, 2])
        spec[:, 3] = dT
        phys = sfft.irfft(spec, n=self.nxp, axis=-1, norm="forward", workers=1)
        prod = np.empty((n, 2 if fin else 1, nz, self.nxp))
        rate = advection(phys, prod, self._dxinv, self._hzinv, want_rate)
        nl = sfft.rfft(prod, axis=-1, norm="forward", workers=1)[..., :nk]
        nl[..., -1] = 0.0
        NT = nl[:, 0]
        NT[:, :, 0] += fT
        wT = hmean(w_hat, T, self._c)
        diss = zint(hmean(om_full, om_full, self._c), self.quadrature_weights)
        work = p.ra * zint(wT, self.quadrature_weights)
        if fin:
            Nom = nl[:, 1] - (p.pr * p.ra * ik) * T
            NU = fU - self._dz_real(hmean(u_hat, w_hat, self._c))
            work = p.pr * work
            diss = p.pr * diss
            fpow = zint(U * fU, self.quadrature_weights)
        else:
            Nom = NU = None
            fpow = np.zeros(n)
        stage = {"mean_T": T[:, :, 0].real.copy(), "wT": wT, "work": work, "dissipation": diss,
                 "forcing_power": fpow}
        return NT, Nom, NU, rate, stage

    # ------------------------------------------------------------------ one column set
    def _finite_cause(self, T, om, U) -> list:
        """Per column: None or the cause of a non-finite state."""
        causes = []
        for c in range(T.shape[0]):
            cause = None
            for name, a in (("T", T[c]), ("omega", None if om is None else om[c]),
                            ("U", None if U is None else U[c])):
                if a is None or np.isfinite(a).all():
                    continue
                cause = f"{'NaN' if np.isnan(a).any() else 'Inf'} in {name}"
                break
            causes.append(cause)
        return causes

    def _check_finite(self, cols, T, om, U, t):
        bad = ~np.isfinite(T).all(axis=(1, 2))
        if om is not None:
            bad |= ~np.isfinite(om).all(axis=(1, 2)) | ~np.isfinite(U).all(axis=1)
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            cause = self._finite_cause(T[i:i + 1], None if om is None else om[i:i + 1],
                                       None if U is None else U[i:i + 1])[0]
            raise ConvectionBlowUp(int(cols[i]), float(t[i]), cause)

    def advance(self, states: np.ndarray, duration: float, forcing_T=None, forcing_U=None,
                bottom=None) -> np.ndarray:
        r"""Advance every column by ``duration`` (in place) and return its diagnostics.

        Parameters
        ----------
        states
            Rows of :attr:`state_dtype` (updated in place).
        duration
            Time to advance (> 0); each column ends exactly at its ``t + duration``.
        forcing_T, forcing_U
            (ncol, nz) horizontally uniform sources :math:`f_T(z)`, :math:`f_U(z)` added to
            the temperature and mean-momentum equations, constant during the call
            (``forcing_U`` needs finite Pr).
        bottom
            New bottom temperature/flux: a scalar, (ncol,) values or (ncol, nx) profiles;
            None keeps each column's stored ``bottom``.

        Returns
        -------
        numpy.ndarray
            One row of :attr:`diag_dtype` per column: ``t``, ``steps`` (this call), ``dt``
            (last step), the instantaneous ``nu_top``, ``nu_bottom``, ``nu_volume``, ``vrms``,
            ``ke``, ``work``, ``dissipation`` (:mod:`.diagnostics`) and horizontal-mean
            profiles ``mean_T``, ``wT``, ``mean_u`` at the end, and averages over the call
            (``avg_*``): wall fluxes weighted by the implicit stage weights :math:`b^I`,
            profiles, work, dissipation and forcing power :math:`\int U f_U dz` by the explicit
            weights :math:`b^E` (both second-order quadratures in time consistent with the
            scheme, so e.g. ``ke`` changes by ``(avg_work - avg_dissipation +
            avg_forcing_power) * duration`` up to the time-stepping error).

        Raises
        ------
        ConvectionBlowUp
            A column became non-finite or its step limit fell below :data:`DT_FLOOR`
            (or by a factor :data:`DT_DROP` in one step). The states are then left part-way.
        """
        duration = float(duration)
        if not (duration > 0 and math.isfinite(duration)):
            raise ValueError(f"duration: must be > 0 and finite, got {duration!r}")
        if states.dtype != self.state_dtype:
            raise ValueError("states: not rows of this model's state_dtype")
        p = self.params
        tab = self.tableau
        s = tab.stages
        ncol = len(states)
        nz, nk = self.nz, self.nk
        fT = self._forcing(forcing_T, ncol, "forcing_T")
        if forcing_U is not None and not self.finite_pr:
            raise ValueError("forcing_U: Stokes flow (pr = inf) has no inertia to force")
        fU = self._forcing(forcing_U, ncol, "forcing_U")
        b = self._bottom_profiles(bottom, ncol)
        if b is not None:
            states["bottom"] = b
        bc = self._rfft(np.ascontiguousarray(states["bottom"]))           # (ncol, nk)
        dt_cap = self.dt_limit_buoyancy(np.asarray(states["bottom"]))

        T = np.ascontiguousarray(states["T"])
        if self.finite_pr:
            om = np.ascontiguousarray(states["omega"])
            U = np.ascontiguousarray(states["U"])
        else:
            om = U = None
        t = np.array(states["t"], dtype=float)
        t_end = t + duration
        self._check_finite(np.arange(ncol), T, om, U, t)
        if self.finite_pr:
            psi = self._poisson(om)
        else:
            om, psi = self._stokes(T)
        n_left = np.zeros(ncol, dtype=np.int64)
        dt = np.zeros(ncol)
        taken = np.zeros(ncol, dtype=np.int64)
        last_lim = np.zeros(ncol)   # no previous step: no drop test
        acc = {key: np.zeros((ncol, nz)) if key in ("mean_T", "wT") else np.zeros(ncol)
               for key in ("mean_T", "wT", "work", "dissipation", "forcing_power", "nu_top", "nu_bottom")}
        active = np.arange(ncol)
        bE, bI = tab.b_exp, tab.b_imp
        while active.size:
            a = active
            Ta = T[a]
            oma = om[a]
            psia = psi[a]
            Ua = U[a] if self.finite_pr else None
            N0 = self._explicit(Ta, oma, psia, Ua, fT[a], fU[a])
            rate = N0[3]
            if not np.isfinite(rate).all():
                i = int(np.nonzero(~np.isfinite(rate))[0][0])
                raise ConvectionBlowUp(int(a[i]), float(t[a[i]]), "non-finite velocity")
            with np.errstate(divide="ignore"):
                lim = np.minimum(p.cfl / rate, dt_cap[a])
            for i in np.nonzero((lim < DT_FLOOR) | (lim < DT_DROP * last_lim[a]))[0]:
                raise ConvectionBlowUp(int(a[i]), float(t[a[i]]),
                                       f"time step limit {lim[i]:.3g} below the floor "
                                       f"{max(DT_FLOOR, DT_DROP * last_lim[a[i]]):.3g}")
            last_lim[a] = lim
            replan = (n_left[a] == 0) | (dt[a] > lim)
            if replan.any():
                r = a[replan]
                rest = t_end[r] - t[r]
                n_new = np.maximum(1, np.ceil(rest / lim[replan])).astype(np.int64)
                n_left[r] = n_new
                dt[r] = rest / n_new
            self._step(a, T, om, psi, U, fT, fU, bc, dt, N0, acc)
            taken[a] += 1
            n_left[a] -= 1
            t[a] += dt[a]
            done = a[n_left[a] == 0]
            t[done] = t_end[done]
            active = a[n_left[a] > 0]
            self._check_finite(a, T[a], None if om is None or not self.finite_pr else om[a],
                               U[a] if self.finite_pr else None, t[a])

        states["T"] = T
        if self.finite_pr:
            states["omega"] = om
            states["U"] = U
        states["t"] = t_end
        states["steps"] += taken
        states["dt"] = dt
        diag = np.zeros(ncol, dtype=self.diag_dtype)
        diag["t"] = t_end
        diag["steps"] = taken
        diag["dt"] = dt
        self._fill_diag(diag, T, om, psi, U)
        for key, v in acc.items():
            diag["avg_" + key] = v / duration
        return diag

    def _step(self, a, T, om, psi, U, fT, fU, bc, dt, N0, acc) -> None:
        """One IMEX step of the active columns ``a`` (arrays indexed by column, updated)."""
        tab = self.tableau
        s = tab.stages
        nz, nk = self.nz, self.nk
        g = tab.gamma
        fin = self.finite_pr
        na = len(a)
        dta = dt[a]
        d3 = dta[:, None, None]
        d2 = dta[:, None]
        bca = bc[a]
        y_T = T[a][:, 1:-1, :]
        y_om = om[a][:, 1:-1, :] if fin else None
        y_U = U[a][:, 1:-1] if fin else None
        NT, NO, NU, LT, LO, LU = [N0[0]], [N0[1]], [N0[2]], [None], [None], [None]
        stage_diag = [N0[4]]
        groups = [(d, np.nonzero(dta == d)[0]) for d in np.unique(dta)]
        one = len(groups) == 1
        scale = 1.0 / (g * d3)
        for i in range(1, s + 1):
            # right-hand sides; the temperature one is assembled in place with its wall rows
            full_T = np.empty((na, nz, nk), dtype=np.complex128)
            full_T[:, 0, :] = bca
            full_T[:, -1, :] = 0.0
            rT = full_T[:, 1:-1, :]
            rT[...] = y_T
            rO = y_om.copy() if fin else None
            rU = y_U.copy() if fin else None
            for j in range(i):
                ae, ai = tab.a_exp[i, j], tab.a_imp[i, j]
                if ae != 0.0:
                    c3 = d3 * ae
                    rT += c3 * NT[j][:, 1:-1, :]
                    if fin:
                        rO += c3 * NO[j][:, 1:-1, :]
                        rU += (d2 * ae) * NU[j][:, 1:-1]
                if ai != 0.0 and j > 0:
                    c3 = d3 * ai
                    rT += c3 * LT[j]
                    if fin:
                        rO += c3 * LO[j]
                        rU += (d2 * ai) * LU[j]
            # implicit solves, grouped by step
            if one:
                vort, temp, mean = self.ops.stage(g * groups[0][0])
                newT = self._modes(temp, full_T)
                if fin:
                    sol = self._modes(vort, rO)
                    newO, newP = sol[:, :nz], sol[:, nz:]
                    newU = np.empty((na, nz))
                    matvec_rows(mean[:, :, 0], rU, newU)
            else:
                newT = np.empty_like(full_T)
                if fin:
                    newO = np.empty_like(full_T)
                    newP = np.empty_like(full_T)
                    newU = np.empty((na, nz))
                for d, sel in groups:
                    vort, temp, mean = self.ops.stage(g * d)
                    newT[sel] = self._modes(temp, full_T[sel])
                    if fin:
                        sol = self._modes(vort, rO[sel])
                        newO[sel] = sol[:, :nz]
                        newP[sel] = sol[:, nz:]
                        outU = np.empty((len(sel), nz))
                        matvec_rows(mean[:, :, 0], rU[sel], outU)
                        newU[sel] = outU
            # the wall rows are identity rows: set their values exactly (the inverse gives them
            # to rounding error only)
            newT[:, -1, :] = 0.0
            if not self.ops.flux_bottom:
                newT[:, 0, :] = bca
            if fin:
                newO[:, :, 0] = 0.0
                newP[:, :, 0] = 0.0
                newP[:, 0, :] = 0.0
                newP[:, -1, :] = 0.0
                if self.ops.no_slip:
                    newU[:, 0] = 0.0
                    newU[:, -1] = 0.0
                else:
                    newO[:, 0, :] = 0.0
                    newO[:, -1, :] = 0.0
            if i < s:
                lt = newT[:, 1:-1, :] - rT
                lt *= scale
                LT.append(lt)
                if fin:
                    lo = newO[:, 1:-1, :] - rO
                    lo *= scale
                    LO.append(lo)
                    LU.append((newU[:, 1:-1] - rU) * scale[:, :, 0])
            if not fin:
                newO, newP = self._stokes(newT)
                newU = None
            # wall fluxes at the implicit stages
            dT0 = self._dz_real(newT[:, :, 0].real)
            acc["nu_bottom"][a] += dta * tab.b_imp[i] * (-dT0[:, 0])
            acc["nu_top"][a] += dta * tab.b_imp[i] * (-dT0[:, -1])
            if i < s:
                Ni = self._explicit(newT, newO, newP, newU, fT[a], fU[a], want_rate=False)
                NT.append(Ni[0]), NO.append(Ni[1]), NU.append(Ni[2])
                stage_diag.append(Ni[4])
        T[a] = newT
        om[a] = newO
        psi[a] = newP
        if fin:
            U[a] = newU
        for j, sd in enumerate(stage_diag):
            w = dta * tab.b_exp[j]
            if tab.b_exp[j] == 0.0:
                continue
            for key, v in sd.items():
                acc[key][a] += (w[:, None] if v.ndim == 2 else w) * v

    # ------------------------------------------------------------------ diagnostics
    def _fill_diag(self, diag, T, om, psi, U) -> None:
        p = self.params
        wq = self.quadrature_weights
        u_hat = self._dz(psi)
        if self.finite_pr:
            u_hat[:, :, 0] = U
            om_full = om.copy()
            om_full[:, :, 0] = self._dz_real(U)
        else:
            om_full = om
        w_hat = -self.ik * psi
        mean_T = T[:, :, 0].real
        dT0 = self._dz_real(mean_T)
        wT = hmean(w_hat, T, self._c)
        e2 = hmean(u_hat, u_hat, self._c) + hmean(w_hat, w_hat, self._c)
        ke = 0.5 * zint(e2, wq)
        factor = p.pr if self.finite_pr else 1.0
        diag["nu_bottom"] = -dT0[:, 0]
        diag["nu_top"] = -dT0[:, -1]
        diag["nu_volume"] = zint(wT, wq) + mean_T[:, 0] - mean_T[:, -1]
        diag["vrms"] = np.sqrt(2.0 * ke)
        diag["ke"] = ke
        diag["work"] = factor * p.ra * zint(wT, wq)
        diag["dissipation"] = factor * zint(hmean(om_full, om_full, self._c), wq)
        diag["mean_T"] = mean_T
        diag["wT"] = wT
        diag["mean_u"] = U if self.finite_pr else 0.0

    def _velocity(self, states) -> tuple:
        T = np.ascontiguousarray(states["T"])
        if self.finite_pr:
            om = np.ascontiguousarray(states["omega"])
            return T, om, self._poisson(om), np.ascontiguousarray(states["U"])
        om, psi = self._stokes(T)
        return T, om, psi, None

    def diagnose(self, states: np.ndarray) -> np.ndarray:
        """The instantaneous fields of :meth:`advance`'s result for the current states
        (``steps`` 0, averages 0)."""
        diag = np.zeros(len(states), dtype=self.diag_dtype)
        diag["t"] = states["t"]
        diag["dt"] = states["dt"]
        self._fill_diag(diag, *self._velocity(states))
        return diag

    def profiles(self, states: np.ndarray) -> dict[str, np.ndarray]:
        r"""Horizontal means per column at the current state: ``T`` :math:`\langle T\rangle(z)`,
        ``wT`` :math:`\langle wT\rangle(z)`, ``u`` :math:`U(z)` (each (ncol, nz))."""
        d = self.diagnose(states)
        return {"T": d["mean_T"].copy(), "wT": d["wT"].copy(), "u": d["mean_u"].copy()}

    def fields(self, states: np.ndarray) -> dict[str, np.ndarray]:
        """Physical T, u, w, omega, psi on the (nz, nx) grid per column (for plots and tests)."""
        T, om, psi, U = self._velocity(states)
        u_hat = self._dz(psi)
        om_full = om.copy()
        if self.finite_pr:
            u_hat[:, :, 0] = U
            om_full[:, :, 0] = self._dz_real(U)
        out = {}
        for name, a in (("T", T), ("u", u_hat), ("w", -self.ik * psi), ("omega", om_full), ("psi", psi)):
            out[name] = np.fft.irfft(a, n=self.nx, axis=-1, norm="forward")
        return out
