r"""Oscillating coefficients :math:`a(x, y)` of elliptic homogenization problems.

A coefficient is a function of the macro point ``x`` and of the fast variable
``y = x / eps``, 1-periodic in every component of ``y``; it returns a scalar (isotropic)
or a ``d x d`` tensor. Locally periodic problems have :math:`a^\varepsilon(x) = a(x, x/\varepsilon)`;
a purely periodic one does not depend on ``x`` (:attr:`Coefficient.depends_on_x` is False),
so all its cell problems are the same.

Every coefficient evaluates on whole arrays of points: ``values(x, y)`` with ``x`` and
``y`` of shape ``(n, d)`` returns ``(n,)`` or ``(n, d, d)``.

The library: :class:`Laminate`, :class:`Sine` (``mean + amplitude sin(2 pi y_k)``),
:class:`InverseCosine` (``1 / (mean + amplitude cos(2 pi y_k))``), :class:`Product`,
:class:`Voxels` (piecewise constant on a voxel grid of the unit cell, from a ``.npy``
file, an HDF5 dataset or an array) and :func:`checkerboard` (random two-phase voxels from
a seed), :class:`Formula` (a config formula in ``x1.. y1..``) and :class:`UserFunction`
(``module:function`` or ``file.py:function``, a numba-jittable pointwise ``f(x, y)``;
user code, loaded by :mod:`hmmpar.io.user_code`).

Every value a cell problem uses must be finite and positive (a scalar) or have a positive
definite symmetric part (a tensor): :func:`check_values` checks a whole array of sampled
values at once and raises :class:`CoefficientValueError` naming the coefficient (its config
key), the point and the offending value. The built-in kinds check their parameters when
they are made; a formula or a user function can only be checked where it is sampled.

Exact homogenized tensors of the layered ones (:meth:`Coefficient.homogenized`): for a
coefficient that depends on ``y_k`` only, the effective tensor is diagonal with the
harmonic mean :math:`\langle a^{-1}\rangle^{-1}` in direction ``k`` and the arithmetic
mean :math:`\langle a\rangle` in the others (e.g. Bensoussan, Lions & Papanicolaou 1978;
Jikov, Kozlov & Oleinik 1994, sec. 1.5). For ``2 + sin(2 pi y_1)`` that is
``diag(sqrt(3), 2)``; for ``1 / (2 + cos(2 pi y_1))`` it is ``diag(1/2, 1/sqrt(3))``.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from hmmpar.core.expression import Expression, ExpressionError


class CoefficientValueError(ValueError):
    """Sampled coefficient values that are not finite, or not positive (definite)."""


def positive_definite(a: np.ndarray) -> np.ndarray:
    r"""Which of the matrices ``a`` (shape ``(n, d, d)``) have a positive definite symmetric
    part :math:`S = (A + A^T)/2`, shape ``(n,)``.

    Sylvester's criterion: :math:`S` is positive definite iff its leading principal minors
    :math:`\det S_{1:k,1:k}`, ``k = 1..d``, are all positive (written out for ``d <= 3``,
    vectorised over ``n``; NaN gives False). :math:`v^T A v = v^T S v`, so this is exactly the coercivity
    :math:`v^T A v > 0` for all :math:`v \ne 0` that the elliptic problem needs.
    """
    a = np.asarray(a, dtype=float)
    d = a.shape[-1]
    with np.errstate(all="ignore"):
        if d > 3:
            sym = 0.5 * (a + np.swapaxes(a, -1, -2))
            return np.all([np.linalg.det(sym[:, :k, :k]) > 0 for k in range(1, d + 1)], axis=0)

        def s(i: int, j: int) -> np.ndarray:
            return a[:, i, i] if i == j else 0.5 * (a[:, i, j] + a[:, j, i])

        ok = s(0, 0) > 0
        if d >= 2:
            ok &= s(0, 0) * s(1, 1) - s(0, 1) ** 2 > 0
        if d == 3:
            s12, s13, s23 = s(0, 1), s(0, 2), s(1, 2)
            ok &= (s(0, 0) * (s(1, 1) * s(2, 2) - s23 * s23) - s12 * (s12 * s(2, 2) - s23 * s13)
                   + s13 * (s12 * s23 - s(1, 1) * s13)) > 0
    return ok


def invalid_values(values: np.ndarray) -> np.ndarray:
    """Mask of the points whose coefficient value is unusable: ``(n,)`` scalars that are not
    finite or not positive, ``(n, d, d)`` tensors that are not finite or whose symmetric
    part is not positive definite (:func:`positive_definite`)."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        return ~(np.isfinite(v) & (v > 0))
    finite = np.isfinite(v).all(axis=(1, 2))
    if finite.all():
        return ~positive_definite(v)
    bad = ~finite
    bad[finite] = ~positive_definite(v[finite])
    return bad


def check_values(coefficient, values: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """Raise :class:`CoefficientValueError` at the first point where ``values`` (the
    coefficient's values at ``x``, ``y``, shapes ``(n,)`` or ``(n, d, d)``) is unusable
    (:func:`invalid_values`), naming the coefficient, the point and the value."""
    bad = invalid_values(values)
    if not bad.any():
        return
    i = int(np.argmax(bad))
    v = np.asarray(values, dtype=float)[i]
    if not np.all(np.isfinite(v)):
        problem, detail = "not finite", numbers_text(v)
    elif v.ndim == 0:
        problem, detail = "not positive", f"{float(v):.6g}"
    else:
        eig = np.linalg.eigvalsh(0.5 * (v + v.T))
        problem = "not positive definite"
        detail = f"{numbers_text(v)} (eigenvalues of its symmetric part {numbers_text(eig)})"
    raise CoefficientValueError(f"{coefficient_name(coefficient)} is {problem} at x = {numbers_text(x[i])}, "
                                f"y = {numbers_text(y[i])}: {detail}")


def coefficient_name(coefficient) -> str:
    """How errors name a coefficient: its config key and value where it has one."""
    what = getattr(coefficient, "what", None)
    return what() if callable(what) else f"coefficient {type(coefficient).__name__}"


def numbers_text(v) -> str:
    """An array as ``(1, -0.5)`` / ``((1, 0), (0, 1))`` with 6 significant digits."""
    v = np.asarray(v, dtype=float)
    if v.ndim == 0:
        return f"{float(v):.6g}"
    return "(" + ", ".join(numbers_text(r) for r in v) + ")"


class Coefficient:
    """Base class: ``values(x, y)`` on arrays of points, plus what caching needs."""

    #: does the coefficient depend on the macro point x (False: purely periodic)
    depends_on_x: bool = False

    def periodic_in_y(self, dim: int) -> bool:
        """Is it 1-periodic in every component of ``y`` (in ``dim`` dimensions)? The
        library's kinds are by construction; a formula or user function is checked
        (:func:`looks_periodic_in_y`). Periodic cells are solved on the period-aligned mesh
        only when it is (:func:`hmmpar.micro.cells.problem.cell_dependence`)."""
        return True

    def values(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(n,)`` scalars or ``(n, d, d)`` tensors at points ``x``, ``y`` of shape ``(n, d)``."""
        raise NotImplementedError

    def describe(self) -> str:
        """A canonical text that determines the coefficient (hashed for the cell cache)."""
        raise NotImplementedError

    def homogenized(self, dim: int) -> np.ndarray | None:
        """The exact effective tensor when it is known in closed form, else None."""
        return None

    def tensor(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Always ``(n, d, d)``: a scalar coefficient times the identity."""
        v = np.asarray(self.values(x, y), dtype=float)
        d = x.shape[1]
        if v.ndim == 1:
            return v[:, None, None] * np.eye(d)
        return v

    def digest(self) -> bytes:
        return hashlib.blake2b(self.describe().encode(), digest_size=16).digest()

    def what(self) -> str:
        """The coefficient as errors name it (the config key that defines it)."""
        return f"coefficient {self.describe()}"


class _Layered(Coefficient):
    """A scalar coefficient that varies along ``y_axis`` only."""

    axis: int = 0

    def profile(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def values(self, x, y):
        return self.profile(np.mod(y[:, self.axis], 1.0))

    def means(self) -> tuple[float, float]:
        """(arithmetic mean, harmonic mean) over a period; subclasses give exact values."""
        raise NotImplementedError

    def homogenized(self, dim):
        if self.axis >= dim:
            return None
        arith, harm = self.means()
        a = np.full(dim, arith)
        a[self.axis] = harm
        return np.diag(a)


class Laminate(_Layered):
    """Two layers across ``y_axis``: ``values[0]`` on ``frac(y_axis) < fraction``, else ``values[1]``."""

    def __init__(self, values: Sequence[float] = (1.0, 10.0), fraction: float = 0.5, axis: int = 0) -> None:
        self.a = tuple(float(v) for v in values)
        if len(self.a) != 2 or min(self.a) <= 0:
            raise ValueError("laminate values must be two positive numbers")
        if not 0.0 < fraction < 1.0:
            raise ValueError("laminate fraction must be in (0, 1)")
        self.fraction, self.axis = float(fraction), int(axis)

    def profile(self, t):
        return np.where(t < self.fraction, self.a[0], self.a[1])

    def means(self):
        f, (a0, a1) = self.fraction, self.a
        return f * a0 + (1 - f) * a1, 1.0 / (f / a0 + (1 - f) / a1)

    def describe(self):
        return f"laminate({self.a!r},{self.fraction!r},{self.axis})"


class Sine(_Layered):
    """``mean + amplitude * sin(2 pi y_axis)`` (``|amplitude| < mean``)."""

    def __init__(self, mean: float = 2.0, amplitude: float = 1.0, axis: int = 0) -> None:
        if not abs(amplitude) < mean:
            raise ValueError("sine coefficient needs |amplitude| < mean (a > 0)")
        self.mean, self.amplitude, self.axis = float(mean), float(amplitude), int(axis)

    def profile(self, t):
        return self.mean + self.amplitude * np.sin(2 * np.pi * t)

    def means(self):
        return self.mean, math.sqrt(self.mean**2 - self.amplitude**2)

    def describe(self):
        return f"sine({self.mean!r},{self.amplitude!r},{self.axis})"


class InverseCosine(_Layered):
    """``1 / (mean + amplitude * cos(2 pi y_axis))`` (``|amplitude| < mean``)."""

    def __init__(self, mean: float = 2.0, amplitude: float = 1.0, axis: int = 0) -> None:
        if not abs(amplitude) < mean:
            raise ValueError("inverse_cosine coefficient needs |amplitude| < mean (a > 0)")
        self.mean, self.amplitude, self.axis = float(mean), float(amplitude), int(axis)

    def profile(self, t):
        return 1.0 / (self.mean + self.amplitude * np.cos(2 * np.pi * t))

    def means(self):
        return 1.0 / math.sqrt(self.mean**2 - self.amplitude**2), 1.0 / self.mean

    def describe(self):
        return f"inverse_cosine({self.mean!r},{self.amplitude!r},{self.axis})"


class Product(Coefficient):
    """The pointwise product of scalar coefficients (tensors multiply as matrices)."""

    def __init__(self, *factors: Coefficient) -> None:
        if not factors:
            raise ValueError("a product needs at least one factor")
        self.factors = factors
        self.depends_on_x = any(f.depends_on_x for f in factors)

    def values(self, x, y):
        out = np.asarray(self.factors[0].values(x, y), dtype=float)
        for f in self.factors[1:]:
            v = np.asarray(f.values(x, y), dtype=float)
            if out.ndim == 3 or v.ndim == 3:
                out = np.einsum("nij,njk->nik", self._as_tensor(out, x), self._as_tensor(v, x))
            else:
                out = out * v
        return out

    @staticmethod
    def _as_tensor(v, x):
        return v if v.ndim == 3 else v[:, None, None] * np.eye(x.shape[1])

    def periodic_in_y(self, dim):
        return all(f.periodic_in_y(dim) for f in self.factors)

    def homogenized(self, dim):
        # a product of layered factors along one and the same axis is layered again,
        # but its means are not those of the factors: no closed form in general
        return None

    def describe(self):
        return "product(" + ",".join(f.describe() for f in self.factors) + ")"


class Voxels(Coefficient):
    """Piecewise constant on a voxel grid of the unit cell, repeated periodically.

    ``grid[i_1, ..., i_d]`` is the value on the voxel ``prod_k [i_k, i_k + 1) / shape_k``
    (index ``i_1`` runs along ``y_1``).
    """

    def __init__(self, grid: np.ndarray, label: str = "array") -> None:
        grid = np.asarray(grid, dtype=float)
        if grid.ndim not in (2, 3):
            raise ValueError(f"voxel coefficient {label}: need a 2D or 3D array, got {grid.ndim}D")
        if not np.all(np.isfinite(grid)) or grid.min() <= 0:
            raise ValueError(f"voxel coefficient {label}: values must be finite and positive")
        self.grid, self.label = grid, label

    @classmethod
    def from_file(cls, path: str | Path, dataset: str | None = None) -> "Voxels":
        """From a ``.npy`` file, or an HDF5 file's ``dataset`` (read and checked by
        :mod:`hmmpar.io.inputs`; problems are ConfigErrors naming ``coefficient.file``)."""
        from hmmpar.io.inputs import parse_voxels, read_file
        key = "coefficient.file"
        grid = parse_voxels(read_file(path, "voxels", f"config key {key}"), key, path, dataset or "")
        return cls(grid, label=f"{path}:{dataset}" if dataset else str(path))

    def values(self, x, y):
        d = self.grid.ndim
        if y.shape[1] != d:
            raise ValueError(f"voxel coefficient {self.label} is {d}D, the problem is {y.shape[1]}D")
        shape = np.array(self.grid.shape)
        idx = np.floor(np.mod(y, 1.0) * shape).astype(np.int64)
        idx = np.minimum(idx, shape - 1)
        return self.grid[tuple(idx[:, k] for k in range(d))]

    def what(self):
        return f"voxel coefficient {self.label}"

    def describe(self):
        return "voxels(" + hashlib.blake2b(self.grid.tobytes() + str(self.grid.shape).encode(),
                                           digest_size=16).hexdigest() + ")"


def checkerboard(dim: int, cells: int = 4, low: float = 1.0, high: float = 10.0, seed: int = 0) -> Voxels:
    """Random two-phase voxels: each of ``cells**dim`` squares is ``low`` or ``high`` with
    probability 1/2, drawn from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    grid = np.where(rng.random((cells,) * dim) < 0.5, low, high)
    return Voxels(grid, label=f"checkerboard(seed={seed})")


class Formula(Coefficient):
    """A formula in ``x1..xd`` (macro point) and ``y1..yd`` (fast variable), e.g.
    ``"(2 + sin(2*pi*y1)) * (1 + x1)"``."""

    def __init__(self, text: str, dim: int) -> None:
        names = tuple(f"x{i + 1}" for i in range(dim)) + tuple(f"y{i + 1}" for i in range(dim))
        self.expr = Expression(text, names)
        self.dim = dim
        self.depends_on_x = any(n.startswith("x") for n in self.expr.used)

    def periodic_in_y(self, dim):
        return looks_periodic_in_y(self, dim)

    def values(self, x, y):
        cols = {f"x{i + 1}": x[:, i] for i in range(self.dim)}
        cols.update({f"y{i + 1}": y[:, i] for i in range(self.dim)})
        return np.array(np.broadcast_to(np.asarray(self.expr(**cols), dtype=float), x.shape[:1]))

    def describe(self):
        return f"formula({self.expr.text!r},{self.dim})"

    def what(self):
        text = self.expr.text if len(self.expr.text) <= 60 else self.expr.text[:57] + "..."
        return f"config key coefficient.formula = {text!r}"


class UserFunction(Coefficient):
    """``module:function``: a pointwise ``f(x, y)`` (1D arrays of length d) returning a
    float or a ``d x d`` array, compiled with numba and looped over the points in
    compiled code. ``depends_on_x`` is taken from the config (default True).

    ``fn`` is the function when the caller loaded it
    (:func:`hmmpar.io.user_code.load_user_function`); else ``spec`` names an installed
    module (:func:`hmmpar.io.user_code.user_function`, the same rules)."""

    def __init__(self, spec: str, depends_on_x: bool = True, fn=None) -> None:
        if fn is None:
            from hmmpar.io.user_code import user_function
            fn = user_function(spec)
        import numba
        self.spec = spec
        self.depends_on_x = bool(depends_on_x)
        self._fn = fn if isinstance(fn, numba.core.dispatcher.Dispatcher) else numba.njit(cache=False)(fn)
        self._tensor: bool | None = None

    def periodic_in_y(self, dim):
        """Checked on first use (it calls, and so compiles, the function)."""
        return looks_periodic_in_y(self, dim)

    def values(self, x, y):
        x = np.ascontiguousarray(x, dtype=float)
        y = np.ascontiguousarray(y, dtype=float)
        if self._tensor is None:
            first = np.asarray(self._fn(x[0], y[0]))
            if first.ndim not in (0, 2) or (first.ndim == 2 and first.shape != (x.shape[1],) * 2):
                raise ValueError(f"coefficient function {self.spec} must return a float or a "
                                 f"{x.shape[1]}x{x.shape[1]} array, got shape {first.shape}")
            self._tensor = first.ndim == 2
        if self._tensor:
            out = np.empty((x.shape[0], x.shape[1], x.shape[1]))
            _loop_tensor(self._fn, x, y, out)
        else:
            out = np.empty(x.shape[0])
            _loop_scalar(self._fn, x, y, out)
        return out

    def describe(self):
        return f"function({self.spec!r})"

    def what(self):
        return f"config key coefficient.function = {self.spec!r}"


def looks_periodic_in_y(coef: Coefficient, dim: int, points: int = 16, rtol: float = 1e-9) -> bool:
    r"""Whether ``coef`` looks 1-periodic in every component of ``y``: at ``points`` fixed
    pseudo-random ``x`` in :math:`[0, 1]^d`, ``y`` in :math:`[-1, 2]^d`, the values at
    :math:`y` and :math:`y + e_k` agree to ``rtol`` (relative to the largest value; round-off
    of ``sin(2 pi y)`` is far below) for every ``k``. A NaN, Inf or an error counts as not
    periodic. The answer is kept on the coefficient (one check per dimension).

    A sampled check can miss a non-periodicity confined to a small set; it decides only
    whether periodic cells may be placed on the period-aligned mesh, which a coefficient
    that passes it but is not periodic would make depend on nothing but its values on
    :math:`[0, \delta/\varepsilon]^d`.
    """
    known = coef.__dict__.setdefault("_periodic_in_y", {})
    if dim not in known:
        known[dim] = _sampled_periodicity(coef, dim, points, rtol)
    return known[dim]


def _sampled_periodicity(coef: Coefficient, dim: int, points: int, rtol: float) -> bool:
    rng = np.random.default_rng(20261207)
    x = rng.random((points, dim))
    y = rng.uniform(-1.0, 2.0, (points, dim))
    try:
        with np.errstate(all="ignore"):
            v = np.asarray(coef.values(x, y), dtype=float)
            if not np.all(np.isfinite(v)):
                return False
            atol = rtol * float(np.max(np.abs(v)))
            for k in range(dim):
                w = np.asarray(coef.values(x, y + np.eye(dim)[k]), dtype=float)
                if not (np.all(np.isfinite(w)) and np.all(np.abs(w - v) <= atol)):
                    return False
    except Exception:  # noqa: BLE001 - an error the cell problems will report with its context
        return False
    return True


def _make_loops():
    import numba

    @numba.njit(cache=False)
    def loop_scalar(f, x, y, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i], y[i])

    @numba.njit(cache=False)
    def loop_tensor(f, x, y, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i], y[i])

    return loop_scalar, loop_tensor


_loop_scalar, _loop_tensor = _make_loops()

KINDS = ("laminate", "sine", "inverse_cosine", "formula", "checkerboard", "voxels", "function")


def coefficient_from_config(c, dim: int) -> Coefficient:
    """Build the coefficient of a ``[coefficient]`` config section (a mapping)."""
    kind = c["kind"]
    axis = int(c["axis"])
    if axis >= dim:
        raise ValueError(f"coefficient.axis = {axis} but the problem is {dim}D")
    if kind == "laminate":
        return Laminate(c["values"], c["fraction"], axis)
    if kind == "sine":
        return Sine(c["mean"], c["amplitude"], axis)
    if kind == "inverse_cosine":
        return InverseCosine(c["mean"], c["amplitude"], axis)
    if kind == "formula":
        try:
            return Formula(c["formula"], dim)
        except ExpressionError as exc:
            raise ValueError(f"coefficient.formula: {exc}") from None
    if kind == "checkerboard":
        lo, hi = c["values"]
        return checkerboard(dim, c["cells"], lo, hi, c["seed"])
    if kind == "voxels":
        return Voxels.from_file(c["file"], c["dataset"] or None)
    if kind == "function":
        return UserFunction(c["function"], c["depends_on_x"])
    raise ValueError(f"coefficient.kind {kind!r} is not one of {', '.join(KINDS)}")
