"""The tabulated equation of state (hmmpar.macro.finite_volume.eos_table) on an ideal gas,
where every interpolant is exact: p = rho T, e = 3/2 T is linear in e at each density and
linear in rho at fixed e, so pressure, inversion and sound speed are exact to round-off
(the sound speed to the finite-difference step, 1e-8 relative here)."""
from __future__ import annotations

import numpy as np
import pytest

from hmmpar.macro.finite_volume.eos_table import TabulatedEOS


def ideal_table() -> TabulatedEOS:
    rho = np.array([0.05, 0.2, 0.6, 1.2])
    temps = np.array([0.5, 1.0, 2.0, 4.0])
    T = np.tile(temps, (rho.size, 1))
    return TabulatedEOS(rho, 1.5 * T, rho[:, None] * T, T)


def test_ideal_gas_is_reproduced():
    eos = ideal_table()
    rho = np.array([0.07, 0.3, 1.0, 1.15])
    e = np.array([0.9, 2.0, 5.5, 7.0])          # 7.0 lies beyond the table: extrapolated
    p = eos.pressure_of(rho, e)
    np.testing.assert_allclose(p, 2.0 / 3.0 * rho * e, rtol=1e-13)
    np.testing.assert_allclose(eos.temperature_of(rho, e), 2.0 / 3.0 * e, rtol=1e-13)
    np.testing.assert_allclose(eos.energy_of(rho, p), e, rtol=1e-12)
    np.testing.assert_allclose(eos.sound_speed_of(rho, e), np.sqrt(5.0 / 3.0 * p / rho), rtol=1e-8)
    np.testing.assert_allclose(eos.internal_energy_density(rho, p), rho * e, rtol=1e-12)
    np.testing.assert_allclose(eos.sound_speed(rho, p), np.sqrt(5.0 / 3.0 * p / rho), rtol=1e-8)


def test_outside_and_unstable_tables_are_refused():
    eos = ideal_table()
    with pytest.raises(ValueError, match="outside the EOS table"):
        eos.pressure_of(np.array([2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="below the EOS table"):
        eos.energy_of(np.array([0.5]), np.array([0.01]))
    rho = np.array([0.1, 0.2])
    e = np.array([[1.0, 0.9], [1.0, 2.0]])      # e falls as T rises at rho = 0.1
    with pytest.raises(ValueError, match="does not increase"):
        TabulatedEOS(rho, e, e, np.array([[1.0, 2.0], [1.0, 2.0]]))
