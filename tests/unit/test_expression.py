"""Config formulas: arithmetic is right, and nothing outside the whitelist is reachable."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from hmmpar.core.expression import MAX_DEPTH, MAX_LENGTH, MAX_NODES, Expression, ExpressionError, macro_function


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


# ---------------------------------------------------------------- floating point, bounded cost
@pytest.mark.parametrize("text,expected", [
    ("2^3", 8.0), ("2**3", 8.0), ("7 % 3", 1.0), ("-7 % 3", 2.0), ("7.5 % -2", -0.5), ("1/2", 0.5),
    ("2**-1", 0.5), ("-2**2", -4.0), ("--------1", 1.0), ("floor(-0.5)", -1.0), ("e^pi", math.e ** math.pi),
    ("min(3, 2) + max(3, 2)", 5.0), ("where(1 < 2, 10, 20)", 10.0), ("0 < 1 <= 1 < 2", 1.0), ("2 < 1", 0.0),
])
def test_ordinary_formulas_give_the_numbers_python_gives(text, expected):
    """Integer constants are floats now; the numbers of ordinary formulas are those of
    Python's own arithmetic (exactly: the same IEEE operations)."""
    assert float(Expression(text, ("x",))(x=np.float64(0.0))) == expected
    assert eval(text.replace("^", "**").replace("where", "(lambda c, a, b: a if c else b)"),  # noqa: S307
                {"floor": math.floor, "min": min, "max": max, "e": math.e, "pi": math.pi}) == expected


@pytest.mark.parametrize("text,expected", [
    ("2 + 0*9**9**9", math.nan), ("9^9^9^9", math.inf), ("1e308**1e308", math.inf), ("10**400", math.inf),
    ("1/0", math.inf), ("0/0", math.nan), ("7 % 0", math.nan), ("log(-1)", math.nan), ("-(2^1024)", -math.inf),
])
def test_huge_and_invalid_arithmetic_is_float_and_fast(text, expected):
    """Before: 9**9**9 was Python integer arithmetic and never returned. Now every number is
    a float64 and every operation a ufunc: inf or nan, at once (the users check finiteness)."""
    t0 = time.process_time()
    value = float(Expression(text, ())())
    assert time.process_time() - t0 < 2.0   # CPU seconds; before: minutes
    assert value == expected or (math.isnan(expected) and math.isnan(value))


def test_chained_comparison_on_arrays_is_elementwise():
    x = np.array([0.1, 0.3, 0.6, 0.9])
    np.testing.assert_array_equal(Expression("0.2 < x < 0.7", ("x",))(x=x), [0, 1, 1, 0])
    np.testing.assert_array_equal(Expression("where(x >= 0.5, x, -x)", ("x",))(x=x), [-0.1, -0.3, 0.6, 0.9])


@pytest.mark.parametrize("text,msg", [
    ("x" * (MAX_LENGTH + 1), f"formula of {MAX_LENGTH + 1} characters is too long (at most {MAX_LENGTH})"),
    ("+".join(["x"] * (MAX_DEPTH + 1)), f"is nested more than {MAX_DEPTH} levels deep"),
    ("+".join(["(" + "+".join(["x"] * 100) + ")"] * 11), f"has more than {MAX_NODES} terms"),
    ("-" * (MAX_LENGTH - 1) + "1", "is nested too deeply to parse"),   # the parser's own limit
    ("-" * (MAX_DEPTH + 1) + "1", f"is nested more than {MAX_DEPTH} levels deep"),
    ("(" * 300 + "1" + ")" * 300, "does not parse: too many nested parentheses"),
    ("sin(" * 100 + "-" * 101 + "x" + ")" * 100, f"is nested more than {MAX_DEPTH} levels deep"),
    ("9" * 4000, "is too large for a float"),
    ("9" * 5000, "formula of 5000 characters is too long"),
    ("1e400", "the number 1e400 is too large for a float"),
    ("where(x, 1)", "where() takes 3 arguments, got 2"),
    ("min(x)", "min() takes 2 arguments, got 1"),
    ("abs(*x)", "*arguments are not allowed"),
    ("sin", "function 'sin' used without arguments"),
    ("x == 1", "'x == 1' is not allowed"),
    ("x if x else 1", "'x if x else 1' is not allowed"),
    ("1j", "only numbers"),
    ("1\x00", "does not parse: source code string cannot contain null bytes"),
    ("x\n+1", "does not parse: invalid syntax"),
])
def test_bounds_and_whitelist(text, msg):
    """Every limit is an ExpressionError (a ConfigError naming the key in the apps), never a
    RecursionError or MemoryError, and it comes at once."""
    t0 = time.process_time()
    with pytest.raises(ExpressionError) as info:
        macro_function(text, 2, "config key problem.source")
    assert time.process_time() - t0 < 2.0   # CPU seconds
    text_of = str(info.value)
    assert text_of.startswith("config key problem.source: formula ") and msg in text_of
    assert "\n" not in text_of and len(text_of) < 400


def test_surrounding_white_space_is_ignored():
    assert float(Expression("  \t1 + 2\n", ())()) == 3.0
    with pytest.raises(ExpressionError, match=r"^formula ' x.y': 'x.y' is not allowed"):
        Expression(" x.y", ("x", "y"))


def test_largest_allowed_formula_evaluates():
    """Just inside every limit: MAX_DEPTH - 1 nested terms of a sum, parsed and right."""
    text = "+".join(["x"] * (MAX_DEPTH - 1))
    assert len(text) <= MAX_LENGTH
    np.testing.assert_allclose(Expression(text, ("x",))(x=np.array([1.0, 2.0])), [MAX_DEPTH - 1, 2 * (MAX_DEPTH - 1)])


def test_non_finite_value_names_the_key_and_the_point():
    f = macro_function("1/(x - 0.5)", 2, "config key problem.dirichlet_value")
    assert f(np.array([[0.25, 0.0]])).tolist() == [-4.0]
    with pytest.raises(ValueError) as info:
        f(np.array([[0.25, 0.0], [0.5, 1.0]]))
    assert str(info.value) == ("config key problem.dirichlet_value = '1/(x - 0.5)' is not finite "
                               "at x = (0.5, 1): inf")
    with pytest.raises(ExpressionError, match="config key problem.source: inf is not a finite number"):
        macro_function(math.inf, 2, "config key problem.source")
