"""Config formulas: arithmetic is right, and nothing outside the whitelist is reachable."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hmmpar.core.expression import Expression, ExpressionError, macro_function


def test_values_power_caret_and_constants():
    f = macro_function("2*pi^2*sin(pi*x)*sin(pi*y) + x1", 2, "problem.source")
    p = np.array([[0.5, 0.5], [0.25, 0.0]])
    np.testing.assert_allclose(f(p), [2 * math.pi**2 + 0.5, 0.25], rtol=1e-15)
    assert macro_function(3.5, 3, "k")(np.zeros((4, 3))).tolist() == [3.5] * 4


def test_constant_formula_broadcasts_to_points():
    assert macro_function("1", 2, "k")(np.zeros((5, 2))).shape == (5,)


@pytest.mark.parametrize("text,msg", [
    ("__import__('os')", "not allowed"),
    ("x.real", "not allowed"),
    ("open", "unknown name 'open'"),
    ("sin(x", "does not parse"),
    ("w + 1", "unknown name 'w'"),
    ("'a'", "only numbers"),
])
def test_rejected(text, msg):
    with pytest.raises(ExpressionError, match=msg):
        macro_function(text, 2, "problem.source")


def test_used_variables_are_recorded():
    e = Expression("2 + sin(2*pi*y1)", ("x1", "x2", "y1", "y2"))
    assert e.used == {"y1"}
