"""ConvectionParams.validate: one line naming the key for every bad value; the boundary-layer rule;
the Chebyshev pieces against exact derivatives and integrals; the growth-rate formula."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.core.errors import ConfigError
from hmmpar.micro.convection import RA_C_FREE_SLIP, ConvectionParams, growth_rate_free_slip
from hmmpar.micro.convection.chebyshev import clenshaw_curtis_weights, diff_matrix, nodes
from hmmpar.micro.convection.params import boundary_layer_points, minimum_nz


def test_defaults_validate():
    ConvectionParams(ra=1e4).validate(prefix="micro.")


@pytest.mark.parametrize("change, message", [
    ({"ra": -1}, "micro.ra: must be > 0 and finite, got -1"),
    ({"ra": math.nan}, "micro.ra: must be > 0 and finite, got nan"),
    ({"ra": "1e4"}, "micro.ra: must be a number, got '1e4'"),
    ({"pr": 0.0}, "micro.pr: must be > 0 or inf, got 0.0"),
    ({"pr": math.nan}, "micro.pr: must be > 0 or inf, got nan"),
    ({"aspect": 0}, "micro.aspect: must be > 0 and finite, got 0"),
    ({"aspect": math.inf}, "micro.aspect: must be > 0 and finite, got inf"),
    ({"nx": 63}, "micro.nx: must be an even integer in [8, 4096], got 63"),
    ({"nx": 6}, "micro.nx: must be an even integer in [8, 4096], got 6"),
    ({"nx": 64.0}, "micro.nx: must be an integer, got 64.0"),
    ({"nz": 8}, "micro.nz: must be an integer in [9, 513], got 8"),
    ({"walls": "slip"}, "micro.walls: must be one of free-slip, no-slip, got 'slip'"),
    ({"bottom": "heat"}, "micro.bottom: must be one of temperature, flux, got 'heat'"),
    ({"cfl": 0}, "micro.cfl: must be in (0, 1], got 0"),
    ({"cfl": 1.5}, "micro.cfl: must be in (0, 1], got 1.5"),
    ({"dt_max": -1e-3}, "micro.dt_max: must be > 0 and finite, got -0.001"),
    ({"scheme": "euler"}, "micro.scheme: must be one of ars222, ars443, got 'euler'"),
])
def test_each_bad_value_is_one_line_naming_the_key(change, message):
    kw = {"ra": 1e4, "nz": 33} | change
    with pytest.raises(ConfigError) as err:
        ConvectionParams(**kw).validate(prefix="micro.")
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_boundary_layer_rule():
    # Ra = 1e6: Nu_est = 27, delta = 1/54; z_j = sin^2(pi j / 2N) <= delta for j <= 3 needs N >= 35
    assert minimum_nz(1e6) == 36
    assert boundary_layer_points(36, 1e6) == 3 and boundary_layer_points(35, 1e6) == 2
    with pytest.raises(ConfigError) as err:
        ConvectionParams(ra=1e6, nz=33).validate(prefix="micro.")
    assert str(err.value) == ("micro.nz: 33 points do not resolve the thermal boundary layer at Ra = 1e+06 "
                              "(2 of 3 inside delta = 0.0185); use nz >= 36")
    ConvectionParams(ra=1e6, nz=36).validate()


@pytest.mark.parametrize("nz", [9, 10, 17, 33])
def test_chebyshev_derivative_and_quadrature_are_exact_for_polynomials(nz):
    z = nodes(nz)
    assert z[0] == 0.0 and z[-1] == 1.0 and np.all(np.diff(z) > 0)
    d = diff_matrix(nz)
    w = clenshaw_curtis_weights(nz)
    deg = nz - 1
    for n in range(deg + 1):
        f = z ** n
        exact = n * z ** (n - 1) if n else 0 * z
        assert np.max(np.abs(d @ f - exact)) < 1e-13 * nz ** 2 * max(1, n)
        assert abs(w @ f - 1.0 / (n + 1)) < 1e-15 * nz
    # spectral accuracy on a smooth non-polynomial function
    if nz >= 17:
        assert np.max(np.abs(d @ np.sin(np.pi * z) - np.pi * np.cos(np.pi * z))) < 1e-9


def test_growth_rate_formula():
    k = math.pi / math.sqrt(2)
    assert RA_C_FREE_SLIP == pytest.approx(657.5113644795163, rel=1e-14)
    for pr in (0.1, 1.0, 7.0, math.inf):
        assert abs(growth_rate_free_slip(RA_C_FREE_SLIP, pr, k)) < 1e-12
        assert growth_rate_free_slip(640, pr, k) < 0 < growth_rate_free_slip(675, pr, k)
    # a large Pr approaches the Stokes limit, and the rate is an eigenvalue of the 2x2 matrix
    assert growth_rate_free_slip(2000, 1e8, 2.0) == pytest.approx(growth_rate_free_slip(2000, math.inf, 2.0), rel=1e-6)
    ra, pr, kk = 3000.0, 0.7, 3.0
    q2 = kk * kk + math.pi ** 2
    a = np.array([[-pr * q2, pr * ra * 1j * kk / q2], [-1j * kk, -q2]])
    assert max(np.linalg.eigvals(a).real) == pytest.approx(growth_rate_free_slip(ra, pr, kk), rel=1e-12)
