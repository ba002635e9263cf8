"""Formulas written in configs, e.g. ``source = "2*pi^2*sin(pi*x)*sin(pi*y)"``.

A formula is parsed once with :mod:`ast` and checked against a whitelist (numbers, the
variables the context allows, ``+ - * / ** ^ %``, comparisons ``< <= > >=``, and the
functions in :data:`FUNCTIONS` with their number of arguments), then translated into a
postfix program that a loop evaluates with NumPy on whole arrays of points. Nothing else
of Python is reachable: no attribute access, no calls to anything not listed, no names
outside the context's variables, and no ``compile``/``eval`` at all. ``^`` means power,
as users of other FEM codes expect.

Bounded cost
------------
Every number is converted to a float64 when the formula is checked, and every operation
is a NumPy ufunc on float64 operands, so a formula can never trigger Python's exact
integer arithmetic (``9**9**9`` is ``inf``, not a 370-million-digit integer) and its cost
is linear in its size: one array operation per syntax node. Overflow, division by zero
and invalid operations give ``inf``/``nan`` silently here; the places that use a formula's
values check them and name the config key (:func:`macro_function`,
:mod:`hmmpar.micro.cells.coefficients`). The size of a formula is bounded before and after
parsing (:data:`MAX_LENGTH` characters, :data:`MAX_NODES` syntax nodes, :data:`MAX_DEPTH`
levels of nesting), so that neither the parser nor anything else can recurse without
bound; a formula beyond a limit is an :class:`ExpressionError`.
"""
from __future__ import annotations

import ast
import math
from typing import Callable, Mapping, Sequence

import numpy as np

#: most characters in a formula (the parser's work and memory grow with the text)
MAX_LENGTH = 4000
#: most terms (numbers, names, operations, calls: the nodes of the syntax tree) in a formula
MAX_NODES = 2000
#: deepest nesting of terms (``a + b + c`` is ``(a + b) + c``, 3 deep)
MAX_DEPTH = 200

FUNCTIONS: dict[str, Callable] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log,
    "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh,
    "arctan": np.arctan, "floor": np.floor, "min": np.minimum, "max": np.maximum,
    "where": np.where,
}
#: number of arguments of each function
ARITY = {**dict.fromkeys(FUNCTIONS, 1), "min": 2, "max": 2, "where": 3}
CONSTANTS = {"pi": math.pi, "e": math.e}

_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
           ast.Pow: np.power, ast.BitXor: np.power, ast.Mod: np.mod}
_UNARYOPS = {ast.USub: np.negative, ast.UAdd: np.positive}
_CMPOPS = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal}

# postfix instructions: (opcode, argument)
_PUSH, _VAR, _APPLY, _COMPARE = range(4)


class ExpressionError(ValueError):
    """A formula that does not parse, is too large, or uses something not allowed."""


class Expression:
    """A checked formula in the variables ``variables`` (e.g. ``("x", "y")``).

    Call it with one array per variable (or a ``(n, len(variables))`` array through
    :meth:`at`); the result is a float64 array (or scalar) that broadcasts to the
    arguments' shape. Evaluation costs one NumPy operation per syntax node.
    """

    def __init__(self, text: str, variables: Sequence[str]) -> None:
        self.text = str(text)
        self.variables = tuple(variables)
        self.used: set[str] = set()
        if len(self.text) > MAX_LENGTH:
            raise ExpressionError(f"formula of {len(self.text)} characters is too long "
                                  f"(at most {MAX_LENGTH})")
        try:
            tree = ast.parse(self.text.strip().replace("^", "**"), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"formula {self._short()} does not parse: {exc.msg}") from None
        except ValueError as exc:  # a NUL character (Python 3.11)
            raise ExpressionError(f"formula {self._short()} does not parse: {exc}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError(f"formula {self._short()} is nested too deeply to parse "
                                  f"(at most {MAX_DEPTH} levels)") from None
        self._check_size(tree.body)
        self._program: list[tuple[int, object]] = []
        self._emit(tree.body)

    def _short(self) -> str:
        return repr(self.text if len(self.text) <= 60 else self.text[:57] + "...")

    def _check_size(self, root: ast.AST) -> None:
        """Count nodes and depth without recursion; raise beyond MAX_NODES / MAX_DEPTH."""
        stack, nodes, depth = [(root, 1)], 0, 0
        while stack:
            node, d = stack.pop()
            nodes, depth = nodes + 1, max(depth, d)
            if nodes > MAX_NODES:
                raise ExpressionError(f"formula {self._short()} has more than {MAX_NODES} terms "
                                      "(numbers, names, operations and calls)")
            if depth > MAX_DEPTH:
                raise ExpressionError(f"formula {self._short()} is nested more than {MAX_DEPTH} "
                                      "levels deep (a sum of n terms is n deep: group long sums "
                                      "with parentheses)")
            stack.extend((c, d + 1) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr))

    def _emit(self, root: ast.AST) -> None:
        """Check ``root`` against the whitelist and append its postfix code (children
        first). Iterative; ``_check_size`` bounded the tree already."""
        stack: list[tuple[ast.AST, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                self._program.append(self._instruction(node))
                continue
            children = self._operands(node)
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(children))

    def _operands(self, node: ast.AST) -> list[ast.AST]:
        """The operands of an allowed node in evaluation order; raise for anything else."""
        if isinstance(node, (ast.Constant, ast.Name)):
            return []
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARYOPS:
            return [node.operand]
        if isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
            return [node.left, *node.comparators]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
            name = node.func.id
            if node.keywords:
                raise ExpressionError(f"formula {self._short()}: keyword arguments are not allowed")
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise ExpressionError(f"formula {self._short()}: *arguments are not allowed")
            if len(node.args) != ARITY[name]:
                raise ExpressionError(f"formula {self._short()}: {name}() takes {ARITY[name]} "
                                      f"argument{'s' if ARITY[name] > 1 else ''}, got {len(node.args)}")
            return list(node.args)
        raise ExpressionError(f"formula {self._short()}: '{_source(self.text, node)}' is not allowed "
                              "(numbers, variables, + - * / ^ %, < <= > >=, and "
                              + ", ".join(FUNCTIONS) + ")")

    def _instruction(self, node: ast.AST) -> tuple[int, object]:
        if isinstance(node, ast.Constant):
            value = node.value
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ExpressionError(f"formula {self._short()}: only numbers are allowed as constants")
            try:
                number = np.float64(float(value))
            except OverflowError:
                number = np.float64(np.inf)
            if not np.isfinite(number):
                raise ExpressionError(f"formula {self._short()}: the number "
                                      f"{_source(self.text, node)[:30]} is too large for a float")
            return _PUSH, number
        if isinstance(node, ast.Name):
            if node.id in self.variables:
                self.used.add(node.id)
                return _VAR, node.id
            if node.id in CONSTANTS:
                return _PUSH, np.float64(CONSTANTS[node.id])
            if node.id in FUNCTIONS:
                raise ExpressionError(f"formula {self._short()}: function '{node.id}' used without arguments")
            allowed = ", ".join(self.variables)
            raise ExpressionError(f"formula {self._short()}: unknown name '{node.id}' "
                                  f"(variables here: {allowed}; constants: pi, e)")
        if isinstance(node, ast.BinOp):
            return _APPLY, (_BINOPS[type(node.op)], 2)
        if isinstance(node, ast.UnaryOp):
            return _APPLY, (_UNARYOPS[type(node.op)], 1)
        if isinstance(node, ast.Compare):
            return _COMPARE, tuple(_CMPOPS[type(op)] for op in node.ops)
        return _APPLY, (FUNCTIONS[node.func.id], len(node.args))

    def __call__(self, **values: np.ndarray) -> np.ndarray:
        """Evaluate on arrays (one keyword per variable used); float64 result.

        A chained comparison ``a < b < c`` means ``(a < b) and (b < c)`` elementwise;
        a comparison is 1.0 where true and 0.0 where false.
        """
        stack: list = []
        with np.errstate(all="ignore"):
            for op, arg in self._program:
                if op == _PUSH:
                    stack.append(arg)
                elif op == _VAR:
                    stack.append(np.asarray(values[arg], dtype=np.float64))
                elif op == _APPLY:
                    func, n = arg
                    args = stack[-n:]
                    del stack[-n:]
                    stack.append(np.asarray(func(*args), dtype=np.float64))
                else:
                    n = len(arg)
                    terms = stack[-n - 1:]
                    del stack[-n - 1:]
                    truth = arg[0](terms[0], terms[1])
                    for k in range(1, n):
                        truth = np.logical_and(truth, arg[k](terms[k], terms[k + 1]))
                    stack.append(np.asarray(truth, dtype=np.float64))
        return stack[0]

    def at(self, points: np.ndarray, **extra: np.ndarray) -> np.ndarray:
        """Values at ``points`` (shape ``(n, k)``; column ``i`` is variable ``i``), shape ``(n,)``."""
        points = np.asarray(points, dtype=float)
        values = {v: points[:, i] for i, v in enumerate(self.variables[:points.shape[1]])}
        values.update(extra)
        out = np.broadcast_to(np.asarray(self(**values), dtype=float), points.shape[:1])
        return np.array(out)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def _source(text: str, node: ast.AST) -> str:
    """The text of ``node`` (not :func:`ast.unparse`, which recurses)."""
    segment = ast.get_source_segment(text.strip().replace("^", "**"), node)
    return segment if segment is not None else type(node).__name__


def first_nonfinite(values: np.ndarray) -> int | None:
    """Index of the first non-finite entry of a 1D array, or None."""
    bad = ~np.isfinite(values)
    return int(np.argmax(bad)) if bad.any() else None


def macro_function(value: float | str, dim: int, what: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function of macro points ``(n, dim) -> (n,)`` from a number or a formula in
    ``x, y, z`` (also ``x1, x2, x3``). ``what`` names the config key in errors.

    The function raises :class:`ValueError` naming ``what``, the point and the value
    when the formula is NaN or infinite at one of the points.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        c = float(value)
        if not math.isfinite(c):
            raise ExpressionError(f"{what}: {value!r} is not a finite number")
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
        out = np.array(np.broadcast_to(np.asarray(expr(**cols), dtype=float), p.shape[:1]))
        i = first_nonfinite(out)
        if i is not None:
            raise ValueError(f"{what} = {expr._short()} is not finite at x = {_point(p[i])}: {out[i]}")
        return out

    f.text = str(value)  # type: ignore[attr-defined]
    return f


def _point(p: np.ndarray) -> str:
    """A point as ``(0.25, 0.5)`` with 6 significant digits."""
    return "(" + ", ".join(f"{v:.6g}" for v in np.asarray(p, dtype=float).ravel()) + ")"
