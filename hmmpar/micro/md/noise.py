r"""Statistical noise of the box fluxes: how their standard error falls with atoms and time.

A box-averaged quantity :math:`A(t) = \frac1V\sum_i a_i(t)` of a homogeneous box at
equilibrium is a sum of N local contributions whose correlations have a finite range, so
its variance is :math:`\mathrm{Var}\,A = \sigma_A^2/N` for large N. Its time average over a
run of length t (much longer than the integrated autocorrelation time :math:`\tau_A`) has
variance :math:`2\tau_A\,\mathrm{Var}\,A/t`. So the standard error of every flux is

.. math::

    \mathrm{se}(\bar A) = \frac{C_A}{\sqrt{N t}},\qquad C_A^2 = 2\tau_A\sigma_A^2 ,

exponent :math:`-\tfrac12` in the product "atoms x averaging time": an HMM estimator
buys accuracy with atoms or with time at the same price. :func:`flux_noise` takes the
blocking standard errors of an :class:`~hmmpar.micro.md.estimators.MDResult` together with
their own standard errors (:func:`~hmmpar.micro.md.estimators.blocking`), and
:func:`fit_power_law` fits :math:`\ln\mathrm{se} = a + \sum_k b_k\ln x_k` by weighted least
squares with those errors, giving the exponents with their standard errors and the
:math:`\chi^2` of the fit (a check of the error model). ``tests/validation/micro/md/test_flux_noise.py``
and ``benchmarks/md_noise.py`` use them; the prefactor :math:`C_A = e^a` says how many
atom-time units a target error costs: :math:`N t = (C_A/\mathrm{se})^2`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .estimators import COLUMN, MDResult, blocking

#: the default quantities of :func:`flux_noise`: pressure, momentum flux xx, energy flux x
NOISE_QUANTITIES = ("pressure", "pi_xx", "j_x")


@dataclass(frozen=True)
class Noise:
    """Blocking standard error of one quantity of one run and the error of that error."""

    mean: float
    stderr: float
    stderr_err: float   # se / sqrt(2 (blocks - 1))
    blocks: int         # blocks at the chosen blocking level
    converged: bool


def flux_noise(result: MDResult, quantities: tuple[str, ...] = NOISE_QUANTITIES) -> dict[str, Noise]:
    """Standard errors (with their errors) of the columns ``quantities`` of a run's samples.

    Parameters
    ----------
    result
        A run of :func:`~hmmpar.micro.md.box.constrained_box` or
        :func:`~hmmpar.micro.md.box.state_point`.
    quantities
        Names in :data:`~hmmpar.micro.md.estimators.FIELDS`.

    Returns
    -------
    dict
        Name to :class:`Noise`; ``stderr`` equals the one in ``result``
        (e.g. ``result.pressure_err``).
    """
    unknown = [q for q in quantities if q not in COLUMN]
    if unknown:
        raise KeyError(f"unknown sample columns {unknown}")
    b = blocking(result.samples)  # all columns, as summarize() does: bitwise the same stderr
    return {q: Noise(float(b.mean[c]), float(b.stderr[c]), float(b.stderr_err[c]), int(b.blocks[c]),
                     bool(b.converged[c])) for q, c in ((q, COLUMN[q]) for q in quantities)}


@dataclass(frozen=True)
class PowerLawFit:
    r"""Weighted least-squares fit of :math:`\ln y = a + \sum_k b_k\ln x_k`.

    Attributes
    ----------
    exponents, exponents_err
        :math:`b_k` and their standard errors (from the given errors of y, not rescaled
        by the scatter of the fit).
    log_prefactor, log_prefactor_err
        :math:`a` and its standard error.
    covariance
        (p + 1, p + 1) covariance of :math:`(a, b_1, ..., b_p)`.
    chi2, dof, p_value
        :math:`\chi^2 = \sum_i r_i^2/\sigma_i^2` of the residuals, its degrees of freedom
        (points minus parameters) and the probability of a larger one if the model and
        the errors are right.
    """

    exponents: np.ndarray
    exponents_err: np.ndarray
    log_prefactor: float
    log_prefactor_err: float
    covariance: np.ndarray
    chi2: float
    dof: int
    p_value: float

    @property
    def exponent(self) -> float:
        """The single exponent of a one-variable fit."""
        if self.exponents.size != 1:
            raise ValueError(f"the fit has {self.exponents.size} exponents")
        return float(self.exponents[0])

    @property
    def exponent_err(self) -> float:
        """Its standard error."""
        if self.exponents_err.size != 1:
            raise ValueError(f"the fit has {self.exponents_err.size} exponents")
        return float(self.exponents_err[0])


def fit_power_law(x: np.ndarray, y: np.ndarray, y_err: np.ndarray) -> PowerLawFit:
    r"""Fit :math:`y = e^a\prod_k x_k^{b_k}` in logarithms, weighting each point by its error.

    Parameters
    ----------
    x
        (n,) or (n, p) positive abscissae.
    y, y_err
        (n,) positive values and their standard errors; :math:`\ln y` gets the standard
        error :math:`\sigma_i = y_{\rm err}/y` (first order; for a blocking standard error
        that is :math:`1/\sqrt{2(n_k - 1)}`).

    Returns
    -------
    PowerLawFit

    Raises
    ------
    ValueError
        Mismatched shapes, non-positive values, too few points, or abscissae that do not
        vary independently.
    """
    xs = np.asarray(x, dtype=float)
    if xs.ndim == 1:
        xs = xs[:, None]
    y = np.asarray(y, dtype=float)
    y_err = np.asarray(y_err, dtype=float)
    n, p = xs.shape
    if y.shape != (n,) or y_err.shape != (n,):
        raise ValueError(f"fit_power_law: x has {n} rows, y {y.shape}, y_err {y_err.shape}")
    if n < p + 1 or not (np.all(xs > 0) and np.all(y > 0) and np.all(y_err > 0)):
        raise ValueError("fit_power_law: need more points than parameters and positive x, y, y_err")
    sigma = y_err / y
    design = np.column_stack([np.ones(n), np.log(xs)])
    if np.linalg.matrix_rank(design) < p + 1:
        raise ValueError("fit_power_law: the abscissae do not vary independently (singular fit)")
    w = 1.0 / sigma
    coef, *_ = np.linalg.lstsq(design * w[:, None], np.log(y) * w, rcond=None)
    cov = np.linalg.inv((design * (w * w)[:, None]).T @ design)
    resid = (np.log(y) - design @ coef) / sigma
    chi2 = float(resid @ resid)
    dof = n - p - 1
    p_value = float(stats.chi2.sf(chi2, dof)) if dof > 0 else math.nan
    err = np.sqrt(np.diag(cov))
    return PowerLawFit(coef[1:].copy(), err[1:].copy(), float(coef[0]), float(err[0]), cov, chi2, dof, p_value)
