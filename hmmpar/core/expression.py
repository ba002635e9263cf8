"""Formulas written in configs, e.g. ``source = "2*pi^2*sin(pi*x)*sin(pi*y)"``.

A formula is parsed once with :mod:`ast` and checked against a whitelist (numbers, the
variables the context allows, ``+ - * / ** ^ %``, and the functions in
:data:`FUNCTIONS`), then evaluated with NumPy on whole arrays of points. Nothing else of
Python is reachable: no attribute access, no calls to anything not listed, no names
outside the context's variables. ``^`` means power, as users of other FEM codes expect.
"""
from __future__ import annotations

import ast
import math
from typing import Callable, Mapping, Sequence

import numpy as np

FUNCTIONS: dict[str, Callable] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log,
    "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh,
    "arctan": np.arctan, "floor": np.floor, "min": np.minimum, "max": np.maximum,
    "where": np.where,
}
CONSTANTS = {"pi": math.pi, "e": math.e}

_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
           ast.Pow: np.power, ast.BitXor: np.power, ast.Mod: np.mod}
_CMPOPS = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal}


class ExpressionError(ValueError):
    """A formula that does not parse or uses something not allowed."""


class Expression:
    """A checked formula in the variables ``variables`` (e.g. ``("x", "y")``).

    Call it with one array per variable (or a ``(n, len(variables))`` array through
    :meth:`at`); the result broadcasts to the arguments' shape.
    """

    def __init__(self, text: str, variables: Sequence[str]) -> None:
        self.text = str(text)
        self.variables = tuple(variables)
        try:
            tree = ast.parse(self.text.replace("^", "**"), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"formula {self.text!r} does not parse: {exc.msg}") from None
        self.used = set()
        self._check(tree.body)
        self._code = compile(tree, "<formula>", "eval")

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise ExpressionError(f"formula {self.text!r}: only numbers are allowed as constants")
        elif isinstance(node, ast.Name):
            if node.id in self.variables:
                self.used.add(node.id)
            elif node.id not in CONSTANTS and node.id not in FUNCTIONS:
                allowed = ", ".join(self.variables)
                raise ExpressionError(f"formula {self.text!r}: unknown name '{node.id}' "
                                      f"(variables here: {allowed}; constants: pi, e)")
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            self._check(node.operand)
        elif isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
            self._check(node.left)
            for c in node.comparators:
                self._check(c)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
            if node.keywords:
                raise ExpressionError(f"formula {self.text!r}: keyword arguments are not allowed")
            for a in node.args:
                self._check(a)
        else:
            raise ExpressionError(f"formula {self.text!r}: '{ast.unparse(node)}' is not allowed "
                                  "(numbers, variables, + - * / ^, and " + ", ".join(FUNCTIONS) + ")")

    def __call__(self, **values: np.ndarray) -> np.ndarray:
        env: dict[str, object] = {"__builtins__": {}}
        env.update(CONSTANTS)
        env.update(FUNCTIONS)
        env.update(values)
        with np.errstate(all="ignore"):
            return eval(self._code, env)  # noqa: S307 - the tree was whitelisted in _check

    def at(self, points: np.ndarray, **extra: np.ndarray) -> np.ndarray:
        """Values at ``points`` (shape ``(n, k)``; column ``i`` is variable ``i``), shape ``(n,)``."""
        points = np.asarray(points, dtype=float)
        values = {v: points[:, i] for i, v in enumerate(self.variables[:points.shape[1]])}
        values.update(extra)
        out = np.broadcast_to(np.asarray(self(**values), dtype=float), points.shape[:1])
        return np.array(out)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def macro_function(value: float | str, dim: int, what: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function of macro points ``(n, dim) -> (n,)`` from a number or a formula in
    ``x, y, z`` (also ``x1, x2, x3``). ``what`` names the config key in errors."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        c = float(value)
        return lambda p: np.full(np.asarray(p).shape[0], c)
    names = ("x", "y", "z")[:dim]
    try:
        expr = Expression(str(value), names + tuple(f"x{i + 1}" for i in range(dim)))
    except ExpressionError as exc:
        raise ExpressionError(f"{what}: {exc}") from None

    def f(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        cols: Mapping[str, np.ndarray] = {n: p[:, i] for i, n in enumerate(names)}
        cols.update({f"x{i + 1}": p[:, i] for i in range(dim)})
        return np.array(np.broadcast_to(np.asarray(expr(**cols), dtype=float), p.shape[:1]))

    f.text = str(value)  # type: ignore[attr-defined]
    return f
