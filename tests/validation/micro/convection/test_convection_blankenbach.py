"""Blankenbach et al. (1989), GJI 98:23-38, case 1a: steady convection of an infinite-Prandtl
fluid between free-slip walls, Ra = 1e4, aspect ratio 1. Their best estimates:
Nu = 4.884409, Vrms = 42.864947 (thermal diffusion units).

A periodic box of width 2 holds the cell and its mirror image (the cell's side walls are the
symmetry lines x = 0 and x = 1 of T = 1 - z + 0.1 cos(pi x) sin(pi z)); means over the box
equal means over the cell. The run goes until Nu and Vrms change by less than 1e-11
(relative) over 0.05 time units (t = 0.75); a steady state of the IMEX scheme is a steady
state of the semi-discrete equations, so the time step adds no error.

Convergence table (benchmarks/convection_blankenbach.py, docs/convection.md):

    nx  nz   Nu(top) err  Nu(volume) err  Vrms err
    32  17     5.9e-04       5.1e-06      2.9e-06
    32  25     4.7e-06       4.4e-08     -4.9e-08
    48  33     5.8e-08       3.5e-08     -5.6e-08
    96  49     3.5e-08       3.5e-08     -5.6e-08

Converged values: Nu = 4.8844092 (the published 4.884409 rounds it), Vrms = 42.8649446
(2.4e-6 below the published value: 5.6e-8 relative, the accuracy of the published
extrapolation). The fast test runs 32 x 25: tolerances are twice the table's errors there
(Nu(top) 1e-5; Nu(volume), Vrms 2e-7, bounded below by the 5.6e-8 difference of the
converged values). The slow test runs 48 x 33 with 2e-7 on all three.
The wall fluxes converge more slowly than the volume flux: the wall derivative of the
thin thermal boundary layer is the hardest quantity for the Chebyshev interpolant.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.micro.convection import ConvectionModel, ConvectionParams

NU_REF, VRMS_REF = 4.884409, 42.864947


def steady_case_1a(nx: int, nz: int) -> tuple[ConvectionModel, np.ndarray]:
    m = ConvectionModel(ConvectionParams(ra=1e4, pr=math.inf, aspect=2.0, nx=nx, nz=nz))
    st = m.initial_states([np.random.default_rng(0)], amplitude=0.0)
    x, z = np.meshgrid(m.x, m.z)
    st["T"][0] = np.fft.rfft(1.0 - z + 0.1 * np.cos(np.pi * x) * np.sin(np.pi * z), axis=-1, norm="forward")
    old = None
    for _ in range(40):
        d = m.advance(st, 0.05)
        new = np.array([d["nu_top"][0], d["vrms"][0]])
        if old is not None and np.all(np.abs(new - old) < 1e-11 * np.abs(new)):
            return m, d
        old = new
    raise AssertionError("no steady state by t = 2")


def check(d, tol_top: float, tol: float) -> None:
    assert abs(d["nu_top"][0] / NU_REF - 1) < tol_top, d["nu_top"][0]
    assert abs(d["nu_volume"][0] / NU_REF - 1) < tol, d["nu_volume"][0]
    assert abs(d["vrms"][0] / VRMS_REF - 1) < tol, d["vrms"][0]
    # steady: what enters at the bottom leaves at the top (to rounding: the steady state is
    # exact for the discrete equations), and the Stokes work balances the dissipation
    assert abs(d["nu_bottom"][0] - d["nu_top"][0]) < 1e-9
    assert abs(d["avg_nu_bottom"][0] - d["avg_nu_top"][0]) < 1e-9
    assert d["work"][0] == pytest.approx(d["dissipation"][0], rel=1e-7)
    assert np.abs(d["avg_mean_T"][0] - d["mean_T"][0]).max() < 1e-9


def test_blankenbach_case_1a():
    m, d = steady_case_1a(32, 25)
    check(d, tol_top=1e-5, tol=2e-7)
    # the total heat flux <wT> - d<T>/dz is the same at every level (steady, no sources)
    total = d["wT"][0] - m.dz @ d["mean_T"][0]
    assert np.abs(total - d["nu_volume"][0]).max() < 1e-5 * NU_REF      # measured 2.3e-5 = 4.6e-6 NU_REF


@pytest.mark.slow
def test_blankenbach_case_1a_finer_grid():
    _, d = steady_case_1a(48, 33)
    check(d, tol_top=2e-7, tol=2e-7)
