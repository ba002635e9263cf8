"""The reaction-rate equations of the couplers' SSA-ensemble model (the start-up stability
prediction) against the mass-action formulas written out by hand, one reaction of each order."""
from __future__ import annotations

import numpy as np

from hmmpar.apps.coupler_models import rate_equations
from hmmpar.micro.ssa.model import Reaction, ReactionNetwork


def test_rate_equations_are_mass_action_of_every_order():
    net = ReactionNetwork({"A": 10, "B": 3, "C": 0}, [
        Reaction.parse("0 -> A", 2.0, name="birth"),
        Reaction.parse("A -> B", 0.5, name="conv"),
        Reaction.parse("2 A -> C", 0.1, name="dimer"),
        Reaction.parse("A + B -> C", 0.3, name="bind"),
    ])
    x = np.array([7.5, 2.25, 1.0])
    a = np.array([2.0, 0.5 * x[0], 0.1 * x[0] * (x[0] - 1) / 2, 0.3 * x[0] * x[1]])
    want = np.array([a[0] - a[1] - 2 * a[2] - a[3], a[1] - a[3], a[2] + a[3]])
    out = np.empty(3)
    rate_equations(net)(0.0, x, out)
    np.testing.assert_allclose(out, want, rtol=1e-15, atol=0)
    # at whole counts the polynomials are the engines' propensities: the mean drift
    xi = np.array([10.0, 3.0, 0.0])
    rate_equations(net)(0.0, xi, out)
    np.testing.assert_allclose(out, np.asarray(net.nu, float).T @ net.propensities(xi.astype(np.int64)), rtol=1e-15)
