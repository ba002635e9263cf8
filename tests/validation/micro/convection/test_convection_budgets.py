"""Heat and kinetic-energy budgets, and the response to the horizontally uniform forcings
f_T(z) and f_U(z) that a coarse model applies to each column in superparametrization.

Numbers measured when the tests were written (nz = 17/25, the grids below):

* heat content of a column at rest with f_T = 2 + 3 z over 0.1 diffusion times: the change
  minus (int f_T dz + mean bottom flux - mean top flux) * duration is below 3e-14 for both
  bottom conditions. It is not exact by construction: the scheme updates the interior
  levels, so the wall residuals w_0 (D^2 T + f)_wall of the Clenshaw-Curtis sum enter; they
  are a spectral error (the exact solution has T_t = 0 at a Dirichlet wall). Tolerance 1e-11.
* the conductive profile under f_T = 2 against the Fourier series of the heat equation:
  max error 1.48e-6 (dt = 2e-3) and 3.70e-7 (dt = 1e-3), ratio 4.0 = order 2.
* kinetic energy, Ra = 1e4, Pr = 1, free-slip, f_U = 30 cos(pi z), 0.02 time units from a
  convecting state: residual of dKE = (work - dissipation + forcing power) dt is
  4.13e-3 (dt = 2e-4) and 1.03e-3 (dt = 1e-4) on dKE = 69.5: ratio 4.02 = order 2.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.micro.convection import ConvectionModel, ConvectionParams


def rest_column(nz=17, dt=1e-3, **kw) -> tuple[ConvectionModel, np.ndarray]:
    m = ConvectionModel(ConvectionParams(ra=1e4, pr=1.0, aspect=2.0, nx=8, nz=nz, dt_max=dt, **kw))
    return m, m.initial_states([np.random.default_rng(0)], amplitude=0.0)


@pytest.mark.parametrize("bottom", ["temperature", "flux"])
def test_heat_content_changes_by_the_source_plus_the_wall_fluxes(bottom):
    m, st = rest_column(bottom=bottom)
    f = 2.0 + 3.0 * m.z
    h0 = m.quadrature_weights @ st["T"][0, :, 0].real
    tau = 0.1
    d = m.advance(st, tau, forcing_T=f[None, :])
    h1 = m.quadrature_weights @ d["mean_T"][0]
    source = m.quadrature_weights @ f                                 # 3.5, exact (degree 1)
    assert source == pytest.approx(3.5, abs=1e-15)
    expected = (source + d["avg_nu_bottom"][0] - d["avg_nu_top"][0]) * tau
    assert abs((h1 - h0) - expected) < 1e-11
    assert d["vrms"][0] == 0.0                                        # no flow: uniform forcing, no perturbation
    if bottom == "flux":
        assert d["nu_bottom"][0] == pytest.approx(1.0, abs=1e-12)    # the flux condition holds
    else:
        assert d["mean_T"][0][0] == 1.0 and d["mean_T"][0][-1] == 0.0


def test_forced_conduction_matches_the_fourier_series():
    """T = 1 - z + c theta, theta_t = theta_zz + 1, theta(0) = theta(1) = theta(z, 0) = 0:
    theta = sum_{n odd} 4 / (n pi)^3 (1 - exp(-n^2 pi^2 t)) sin(n pi z)."""
    c, tau = 2.0, 0.1
    errors = []
    for dt in (2e-3, 1e-3):
        m, st = rest_column(dt=dt)
        d = m.advance(st, tau, forcing_T=np.full((1, m.nz), c))
        n = np.arange(1, 4001, 2)[:, None]
        theta = (4.0 / (n * np.pi) ** 3 * (1 - np.exp(-(n * np.pi) ** 2 * tau)) * np.sin(n * np.pi * m.z)).sum(0)
        errors.append(np.abs(d["mean_T"][0] - (1 - m.z + c * theta)).max())
    assert 3.5 < errors[0] / errors[1] < 4.5                           # order 2
    assert errors[1] < 1e-6


def test_uniform_momentum_forcing_spins_up_a_uniform_mean_flow():
    """Free-slip walls: no stress at the walls, so f_U = c gives U = c t exactly (the explicit
    weights of the scheme sum to 1), and the mean momentum int U dz grows by int f_U dz * t."""
    m, st = rest_column()
    c, tau = 0.7, 0.05
    d = m.advance(st, tau, forcing_U=np.full((1, m.nz), c))
    # to round-off: 50 steps of a few operations each on 0.035 (measured 4.5e-14)
    assert np.abs(d["mean_u"][0] - c * tau).max() < 1e-12
    assert np.abs(m.profiles(st)["u"][0] - c * tau).max() < 1e-12
    assert d["vrms"][0] == pytest.approx(c * tau, rel=1e-13)          # the mean flow is the only flow
    assert d["avg_forcing_power"][0] == pytest.approx(c * c * tau / 2, rel=1e-12)


def test_cosine_momentum_forcing_free_slip_and_uniform_forcing_no_slip():
    """f_U = a cos(pi z), free-slip: U = a (1 - exp(-Pr pi^2 t)) / (Pr pi^2) cos(pi z);
    no-slip, f_U = a: the steady flow is U = a z (1 - z) / (2 Pr)."""
    a, pr, tau = 5.0, 2.0, 0.05
    errors = []
    for dt in (2e-3, 1e-3):
        m = ConvectionModel(ConvectionParams(ra=1e4, pr=pr, aspect=2.0, nx=8, nz=17, dt_max=dt))
        st = m.initial_states([np.random.default_rng(0)], amplitude=0.0)
        d = m.advance(st, tau, forcing_U=(a * np.cos(np.pi * m.z))[None, :])
        exact = a * (1 - math.exp(-pr * math.pi ** 2 * tau)) / (pr * math.pi ** 2) * np.cos(np.pi * m.z)
        errors.append(np.abs(d["mean_u"][0] - exact).max())
    assert 3.0 < errors[0] / errors[1] < 5.0 and errors[1] < 1e-5 * np.abs(exact).max()
    m = ConvectionModel(ConvectionParams(ra=1e4, pr=pr, aspect=2.0, nx=8, nz=17, walls="no-slip"))
    st = m.initial_states([np.random.default_rng(0)], amplitude=0.0)
    d = m.advance(st, 2.0, forcing_U=np.full((1, m.nz), a))               # e-folding 1/(Pr pi^2) = 0.05
    assert np.abs(d["mean_u"][0] - a * m.z * (1 - m.z) / (2 * pr)).max() < 1e-12
    assert d["mean_u"][0][0] == 0.0 and d["mean_u"][0][-1] == 0.0


@pytest.fixture(scope="module")
def convecting():
    """Ra = 1e4, Pr = 1, free-slip, with a mean-flow forcing, after 0.15 time units."""
    p = ConvectionParams(ra=1e4, pr=1.0, aspect=2.0, nx=32, nz=25)
    m = ConvectionModel(p)
    st = m.initial_states([np.random.default_rng(3)], amplitude=0.05)
    f_u = (30.0 * np.cos(np.pi * m.z))[None, :]
    m.advance(st, 0.15, forcing_U=f_u)
    return p, st, f_u


def test_kinetic_energy_budget_closes_at_second_order(convecting):
    p, st, f_u = convecting
    base = ConvectionModel(p).diagnose(st)
    assert base["vrms"][0] > 20.0                                          # well into convection
    tau = 0.02
    residuals = []
    for dt in (2e-4, 1e-4):
        m = ConvectionModel(ConvectionParams(**{**p.__dict__, "dt_max": dt}))
        s = st.copy()
        d = m.advance(s, tau, forcing_U=f_u)
        assert d["dt"][0] == pytest.approx(dt, rel=1e-12)                  # dt_max, not the CFL, set the step
        dke = d["ke"][0] - base["ke"][0]
        residuals.append(dke - tau * (d["avg_work"][0] - d["avg_dissipation"][0] + d["avg_forcing_power"][0]))
    assert 3.5 < residuals[0] / residuals[1] < 4.5
    assert abs(residuals[1]) < 1e-4 * abs(dke)


def test_stokes_work_equals_dissipation_at_every_instant():
    """Pr = inf: Ra <wT> = <|grad u|^2> (the dot product of the Stokes equation with u)."""
    m = ConvectionModel(ConvectionParams(ra=2e4, pr=math.inf, aspect=2.0, nx=32, nz=25, walls="no-slip"))
    st = m.initial_states([np.random.default_rng(1)], amplitude=0.1)
    m.advance(st, 0.05)
    d = m.diagnose(st)
    assert d["vrms"][0] > 5.0
    assert d["work"][0] == pytest.approx(d["dissipation"][0], rel=1e-8)


def test_bottom_temperature_profile_varying_in_x_is_held_and_kept_between_calls():
    """One wide box, bottom warm in the middle and cool at the sides (the reference run of the
    superparametrization benchmark): the wall row of T equals the profile exactly after each
    call, a call without ``bottom=`` keeps it, and the mean bottom flux is positive."""
    m = ConvectionModel(ConvectionParams(ra=5e3, pr=1.0, aspect=4.0, nx=16, nz=17))
    prof = 1.0 + 0.5 * np.cos(2 * np.pi * (m.x - 2.0) / 4.0)
    st = m.initial_states([np.random.default_rng(0)], bottom=prof[None, :])
    for _ in range(2):
        d = m.advance(st, 0.02)
        assert np.abs(m.fields(st)["T"][0, 0] - prof).max() < 1e-14
    assert d["mean_T"][0][0] == pytest.approx(1.0, abs=1e-14)
    assert d["nu_bottom"][0] > 0 and d["vrms"][0] > 0.1                 # the warm middle drives a flow
    with pytest.raises(ValueError, match=r"bottom: need a scalar"):
        m.advance(st, 0.01, bottom=np.ones(3))
