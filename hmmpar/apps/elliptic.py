r"""FE-HMM for elliptic homogenization (the flagship application).

Problem: :math:`-\nabla\cdot(a^\varepsilon(x)\nabla u) = f` in a box, :math:`u = g` on the
Dirichlet sides, :math:`a^\varepsilon\nabla u\cdot n = q` on the Neumann sides, with
:math:`a^\varepsilon(x) = a(x, x/\varepsilon)` oscillating on the scale
:math:`\varepsilon`. FE-HMM (E & Engquist 2003; Abdulle 2005, 2009) solves the macro
problem :math:`-\nabla\cdot(A_H\nabla U) = f` with Q1 elements of size H on a PETSc DMDA
(:class:`hmmpar.macro.box_q1.BoxQ1`), or with P1 elements on a triangle / tetrahedron mesh
read from a Gmsh file (``macro.mesh``, :class:`hmmpar.macro.simplex_p1.SimplexP1`, PETSc
DMPlex; the Dirichlet / Neumann "sides" are then the mesh's physical groups); at every
macro quadrature point :math:`x_l` the
effective tensor :math:`A_H(x_l)` comes from a micro cell problem on
:math:`I_\delta(x_l)` (:mod:`hmmpar.micro.cells.problem`), and the stiffness matrix is

.. math::

    B_H(U, V) = \sum_K \sum_l \omega_{K,l}\, \nabla V(x_{K,l}) \cdot A_H(x_{K,l}) \nabla U(x_{K,l}) .

The run's steps: steps ``0 .. B-1`` solve the cell problems in ``B = micro.batches``
batches of task ids (one checkpoint can follow each), step ``B`` assembles and solves the
macro system. A cell problem is a farm task with ``task_id = element * n_qp + q`` (global
element number: natural order on a box, file order on a mesh; quadrature point q, with
``n_qp = 2^d`` on a box and ``d + 1`` on a simplex mesh), so results do not depend on the
rank count. Identical cell problems (a coefficient without slow dependence, frozen) are
solved once: tasks are keyed by a hash of what defines their cell problem, and only one
task per key goes to the farm (``micro.cache``).

``macro.method = "fine-scale"`` solves :math:`-\nabla\cdot(a^\varepsilon\nabla u) = f`
directly on the macro mesh (which must then resolve eps), for validation and cost
comparison.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from hmmpar.apps.base import Application
from hmmpar.core.checkpoint import Block, CheckpointReader, format_bytes
from hmmpar.core.config import Field
from hmmpar.core.errors import CheckpointError, ConfigError, HmmparError, one_line
from hmmpar.core.expression import ExpressionError, macro_function
from hmmpar.core.farm import TaskContext
from hmmpar.core.instances import _move_rows
from hmmpar.io.inputs import parse_voxels, read_input
from hmmpar.io.reserved_h5 import ReservationError
from hmmpar.core.preflight import check_memory
from hmmpar.io.user_code import load_user_function
from hmmpar.micro.cells.coefficients import (KINDS, Coefficient, UserFunction, Voxels, check_values,
                                             coefficient_from_config, coefficient_name, invalid_values, numbers_text)
from hmmpar.micro.cells.problem import (BCS, FACTOR_PACKAGES, CellSpec, available_factor_packages, cell_dependence,
                                        cell_memory, cell_sizes, effective_tensor)

SIDE_NAMES = ("x-", "x+", "y-", "y+", "z-", "z+")
TASK_DTYPE = np.dtype([("task_id", "i8"), ("x", "f8", (3,))])


def _result_dtype(dim: int) -> np.dtype:
    return np.dtype([("A", "f8", (dim, dim))])


class Elliptic(Application):
    """FE-HMM (or a fine-scale reference solve) of a 2D/3D elliptic multiscale problem."""

    name = "elliptic"
    result_dtype = _result_dtype(2)  # replaced per instance by the problem's dimension
    schema = {
        "macro": {
            "method": Field(str, "fe-hmm", "fe-hmm, or fine-scale (direct solve with a^eps; the mesh "
                            "must resolve eps)", choices=("fe-hmm", "fine-scale")),
            "cells": Field(list, [16, 16], "macro Q1 elements per direction (2 or 3 entries)", item_type=int),
            "mesh": Field(str, "", "Gmsh .msh file of triangles / tetrahedra (path relative to the "
                          "config file); empty: the box of macro.cells", physics=False, path="input"),
            "lower": Field(list, [], "lower corner of the box (default 0)", item_type=float),
            "upper": Field(list, [], "upper corner of the box (default 1)", item_type=float),
            "rtol": Field(float, 1e-10, "relative tolerance of the macro Krylov solver (at most 0.1: "
                          "a tolerance near 1 stops before the first iteration)", min=0.0,
                          min_exclusive=True, max=0.1),
        },
        "problem": {
            "source": Field(str, "1", "f: a number or a formula in x, y, z", min_len=1),
            "dirichlet": Field(list, ["x-", "x+", "y-", "y+"], "Dirichlet sides (x-, x+, y-, y+, z-, z+); at "
                               "least one (else U is fixed only up to a constant)", item_type=str, min_len=1),
            "dirichlet_value": Field(str, "0", "g on the Dirichlet sides: number or formula", min_len=1),
            "neumann": Field(list, [], "Neumann sides (the rest are natural, zero flux)", item_type=str),
            "neumann_value": Field(str, "0", "outward flux q on the Neumann sides: number or formula",
                                   min_len=1),
            "exact": Field(str, "", "exact homogenized solution (formula) for the error report; "
                           "empty: none", physics=False),
        },
        "coefficient": {
            "kind": Field(str, "sine", "coefficient a(x, y): " + ", ".join(KINDS), choices=KINDS),
            "axis": Field(int, 0, "direction of variation of laminate/sine/inverse_cosine (0 = y1)", min=0, max=2),
            "values": Field(list, [1.0, 10.0], "laminate layer values / checkerboard phase values",
                            item_type=float),
            "fraction": Field(float, 0.5, "laminate: volume fraction of the first layer", min=0.0, max=1.0),
            "mean": Field(float, 2.0, "sine / inverse_cosine mean", min=0.0, min_exclusive=True),
            "amplitude": Field(float, 1.0, "sine / inverse_cosine amplitude"),
            "formula": Field(str, "2 + sin(2*pi*y1)", "formula in x1.. (slow) and y1.. (fast)"),
            "cells": Field(int, 4, "checkerboard squares per period and direction", min=1),
            "seed": Field(int, 0, "checkerboard random seed", min=0),
            "file": Field(str, "", "voxels: .npy or HDF5 file (relative to the config file)", physics=False,
                          path="input"),
            "dataset": Field(str, "", "voxels: HDF5 dataset name"),
            "function": Field(str, "", "function: module:function or file.py:function (relative to the "
                              "config file), numba-jittable f(x, y); runs user code", path="code",
                              user_code=True),
            "depends_on_x": Field(bool, True, "function: does it depend on the slow variable x"),
        },
        "micro": {
            "eps": Field(float, 1.0 / 32, "period eps of the fine scale", min=0.0, min_exclusive=True),
            "delta_over_eps": Field(float, 1.0, "sampling domain size delta / eps", min=0.0,
                                    min_exclusive=True),
            "n": Field(int, 32, "micro Q1 elements per direction across delta", min=2),
            "bc": Field(str, "periodic", "cell boundary condition: " + ", ".join(BCS), choices=BCS),
            "oversampling": Field(float, 0.5, "oversampling: extra width per side / delta", min=0.0, max=10.0),
            "solver": Field(str, "auto", "sparse direct solver of the cell problems: auto (MUMPS "
                            "for 3D cells, PETSc's Cholesky otherwise), petsc, mumps, cholmod",
                            choices=FACTOR_PACKAGES),
            "frozen": Field(bool, True, "coefficient a(x_l, x/eps) frozen at the quadrature point "
                            "(locally periodic) or a(x, x/eps) (general)"),
            "cache": Field(str, "auto", "solve identical cell problems once: auto (when the cell "
                           "does not depend on x_l), on, off", choices=("auto", "on", "off")),
            "batches": Field(int, 4, "cell problems are solved in this many steps (checkpoint "
                             "granularity)", min=1),
        },
    }

    # ------------------------------------------------------------------ set-up
    memory_keys = ("macro.cells (or the elements of macro.mesh)", "micro.n", "micro.bc",
                   "micro.oversampling", "coefficient.cells / coefficient.file")

    def __init__(self, config, comm, timers) -> None:
        super().__init__(config, comm, timers)
        self.method = config["macro.method"]
        m = config.section("micro")
        if not config["macro.mesh"]:  # a box: its size is known before anything is allocated
            cells = _box_cells(config, comm)
            self._check_memory_early(len(cells), math.prod(cells), 2 ** len(cells))
        self.mesh = _macro_mesh(config, comm)
        dim = self.mesh.dim
        if config["macro.mesh"]:  # a mesh file: its size is known once it is read
            self._check_memory_early(dim, self.mesh.n_elements, self.mesh.n_qp)
        self.result_dtype = _result_dtype(dim)
        p = config.section("problem")
        sides = SIDE_NAMES[:2 * dim]
        for key in ("dirichlet", "neumann"):
            if config["macro.mesh"]:  # physical groups of the mesh file
                try:
                    self.mesh.check_groups(dict.fromkeys(p[key]), key.capitalize())
                except ValueError as exc:
                    raise ConfigError(f"config key problem.{key}: {exc}") from None
                continue
            bad = [s for s in p[key] if s not in sides]
            if bad:
                raise ConfigError(f"config key problem.{key}: unknown side {bad[0]!r} (sides: {', '.join(sides)})")
        both = set(p["dirichlet"]) & set(p["neumann"])
        if both:
            raise ConfigError(f"config keys problem.dirichlet and problem.neumann both name side {sorted(both)[0]}")
        try:
            self.source = macro_function(p["source"], dim, "config key problem.source")
            g = macro_function(p["dirichlet_value"], dim, "config key problem.dirichlet_value")
            q = macro_function(p["neumann_value"], dim, "config key problem.neumann_value")
            self.exact = macro_function(p["exact"], dim, "config key problem.exact") if p["exact"] else None
        except ExpressionError as exc:
            raise ConfigError(str(exc)) from None
        self.dirichlet = {s: g for s in p["dirichlet"]}
        self.neumann = {s: q for s in p["neumann"]}
        _check_coefficient_values(config.section("coefficient"))
        self.coefficient = load_coefficient(config, comm, dim)
        grid = getattr(self.coefficient, "grid", None)
        self.n_voxels = int(grid.size) if grid is not None else 0
        self.eps = m["eps"]
        self.delta = m["delta_over_eps"] * m["eps"]
        self.frozen = m["frozen"]
        if self.method == "fe-hmm":
            _check_resolution(self.mesh, self.spec, self.eps, m["delta_over_eps"])
        if self.method == "fe-hmm" and m["batches"] > self.mesh.n_elements * self.mesh.n_qp:
            raise ConfigError(f"config key micro.batches = {m['batches']} exceeds the "
                              f"{self.mesh.n_elements * self.mesh.n_qp} cell problems of this mesh (a batch "
                              f"would be empty); use at most one batch per cell problem")
        nq = self.mesh.n_qp
        n_local = self.mesh.elements.shape[0]
        self.n_tasks = self.mesh.n_elements * nq
        self.task_ids = (self.mesh.elements[:, None] * nq + np.arange(nq)).reshape(-1)  # ascending
        self.points = self.mesh.quadrature_points().reshape(-1, dim)
        self.A = np.zeros((n_local * nq, dim, dim))
        self.done = np.zeros(n_local * nq, dtype=bool)
        self.dependence = cell_dependence(self.coefficient, self.spec, eps=self.eps, delta=self.delta,
                                          frozen=self.frozen)
        cell_independent = self.dependence in ("nothing", "phase")
        self.dedupe = m["cache"] == "on" or (m["cache"] == "auto" and cell_independent)
        self.batches = m["batches"] if self.method == "fe-hmm" else 0
        self.cache: dict[bytes, np.ndarray] = {}
        self._check_inputs()
        self._submitted = np.zeros(0, dtype=np.int64)  # local indices sent to the farm this step
        self.solved_here = 0  # cell problems this run solved (all ranks, counted on the farm)
        self.cache_hits = 0   # tasks of this rank filled from the cache (summed in finalize)
        self.U = None
        self.iterations = 0
        self.step = 0

    # ------------------------------------------------------------------ input checks
    def _check_inputs(self) -> None:
        """Bad values of the formulas and the coefficient, found before any micro work
        (collective; a ConfigError on every rank, the lowest task id's problem wins).

        The source and boundary data are evaluated exactly where the macro assembly
        evaluates them (a trial assembly with the identity tensor), the exact solution at
        the macro quadrature points. The coefficient is sampled at every macro quadrature
        point x_l (y = x_l / eps, the cell centre; with ``fine-scale`` these are all the
        points it is used at) and, at every 64th task id, on a 4^d grid across the cell.
        The cell problems check all their points again (:func:`check_values`).
        """
        message = None
        try:
            A, b = self.mesh.assemble(np.ones(self.mesh.elements.shape[:1] + (self.mesh.n_qp,)), self.source,
                                      self.dirichlet, self.neumann)
            A.destroy()
            b.destroy()
        except ValueError as exc:  # raised on every rank
            raise ConfigError(str(exc)) from None
        if self.exact is not None:
            try:
                self.exact(self.points)
            except ValueError as exc:
                message = str(exc)
        found = [(0, message)] if message is not None else []
        found += self._sample_coefficient()
        first = min((f for part in self.comm.allgather(found[:1]) for f in part), default=None,
                    key=lambda f: f[0])
        if first is not None:
            raise ConfigError(first[1])

    def _sample_coefficient(self) -> list[tuple[int, str]]:
        """``[(task_id, message)]`` of the bad coefficient sample with the lowest task id on
        this rank, or []. Evaluated in chunks of at most 2^16 points (bounded memory)."""
        found: tuple[int, str] | None = None
        for x, y, tid in self._coefficient_samples(1 << 16):
            try:
                values = self.coefficient.values(np.ascontiguousarray(x), np.ascontiguousarray(y))
            except Exception as exc:  # noqa: BLE001 - user code (module:function) may raise anything
                return [(int(tid[0]), f"{coefficient_name(self.coefficient)} fails at x = {numbers_text(x[0])}, "
                         f"y = {numbers_text(y[0])}: {one_line(exc)}")]
            bad = invalid_values(values)
            if not bad.any():
                continue
            i = int(np.flatnonzero(bad)[np.argmin(tid[bad])])
            if found is None or tid[i] < found[0]:
                try:
                    check_values(self.coefficient, np.asarray(values)[i:i + 1], x[i:i + 1], y[i:i + 1])
                except ValueError as exc:
                    found = (int(tid[i]), str(exc))
        return [found] if found is not None else []

    def _coefficient_samples(self, chunk: int):
        """Chunks ``(x, y, task_id)`` of the start-up sample of the coefficient: every local
        macro quadrature point x_l at the cell centre y = x_l / eps (with ``fine-scale``
        exactly the points it uses), then the task ids divisible by 64 on a 4^d grid
        across the cell (x moves with the grid unless ``micro.frozen``)."""
        d = self.dim
        for lo in range(0, self.points.shape[0], chunk):
            x = self.points[lo:lo + chunk]
            yield x, x / self.eps, self.task_ids[lo:lo + chunk]
        if self.method == "fine-scale":
            return
        grid = self.delta * ((np.stack(np.meshgrid(*[np.arange(4)] * d, indexing="ij"), -1).reshape(-1, d) + 0.5)
                             / 4 - 0.5)
        some = np.flatnonzero(self.task_ids % 64 == 0)
        for lo in range(0, some.size, max(1, chunk // grid.shape[0])):
            idx = some[lo:lo + max(1, chunk // grid.shape[0])]
            x_l = np.repeat(self.points[idx], grid.shape[0], axis=0)
            moved = x_l + np.tile(grid, (idx.size, 1))
            yield (x_l if self.frozen else moved), moved / self.eps, np.repeat(self.task_ids[idx], grid.shape[0])

    def _check_memory_early(self, dim: int, n_elements: int, n_qp: int) -> None:
        """Set what :meth:`memory_estimate` needs and check it (collective), before the
        macro arrays, the cell spec's users and a checkerboard's voxels are allocated."""
        self.dim, self.n_elements, self.n_qp = dim, n_elements, n_qp
        self.spec = _cell_spec(self.config.section("micro"), dim)
        c = self.config.section("coefficient")
        self.n_voxels = c["cells"] ** dim if c["kind"] == "checkerboard" else 0
        check_memory(self.comm, self)

    def memory_estimate(self) -> int:
        r"""Peak bytes of this rank (an upper estimate; every rank gets the same figure):

        .. math::

            M = \frac{N_{el}}{P}\,\big(n_{qp}(3 d^2 + 8) \cdot 8 + 3^d \cdot 48 + 200\big)
                + N_{el}\,(d^2 + 2) \cdot 8 + M_{cell} + 24\,N_{vox},

        the rank's share of the macro elements (``A_H``, tasks, quadrature points, its
        rows of the macro matrix and its preconditioner), the global arrays rank 0
        gathers for the output, one cell problem (:func:`~hmmpar.micro.cells.problem.cell_memory`:
        mesh arrays and the factor's fill, which grows with ``micro.n``), and the voxel
        grid of the coefficient (held by every rank)."""
        d, n_el, nq = self.dim, self.n_elements, self.n_qp
        share = -(-n_el // self.comm.size)
        macro = share * (nq * (3 * d * d + 8) * 8 + 3**d * 48 + 200) + n_el * (d * d + 2) * 8
        cell = cell_memory(self.spec) if self.method == "fe-hmm" else 0
        return int(macro + cell + 24 * self.n_voxels)

    @property
    def n_steps(self) -> int:
        return self.batches + 1

    @property
    def sim_time(self) -> float:
        return float(self.step)

    def initialize(self) -> None:
        self.done[:] = False
        self.step = 0

    # ------------------------------------------------------------------ micro
    def _batch_mask(self, step: int) -> np.ndarray:
        lo = self.n_tasks * step // self.batches
        hi = self.n_tasks * (step + 1) // self.batches
        return (self.task_ids >= lo) & (self.task_ids < hi)

    def _keys(self, idx: np.ndarray) -> list[bytes]:
        """What defines each task's cell problem, hashed (the cache key).

        By :func:`~hmmpar.micro.cells.problem.cell_dependence`: one key for all tasks when
        the cell depends on nothing (a periodic, period-aligned cell of a coefficient
        without slow dependence); the phase ``x_l / eps mod 1``, rounded to 1e-9 so that
        equal phases computed with different round-off share a key, when it depends on the
        phase only; otherwise x_l itself.
        """
        base = repr((self.coefficient.describe(), self.spec, self.eps, self.delta, self.frozen)).encode()
        if self.dependence == "nothing":
            key = hashlib.blake2b(base, digest_size=16).digest()
            return [key] * idx.size
        if self.dependence == "phase":
            phase = np.round(np.mod(self.points[idx] / self.eps, 1.0), 9) % 1.0
            return [hashlib.blake2b(base + p.tobytes(), digest_size=16).digest() for p in phase]
        return [hashlib.blake2b(base + self.points[i].tobytes(), digest_size=16).digest() for i in idx]

    def tasks(self, step: int) -> np.ndarray:
        if step >= self.batches:
            self._submitted = np.zeros(0, dtype=np.int64)
            return np.zeros(0, dtype=TASK_DTYPE)
        todo = np.flatnonzero(self._batch_mask(step) & ~self.done)
        if self.dedupe:
            todo = self._representatives(todo)
        self._submitted = todo
        rows = np.zeros(todo.size, dtype=TASK_DTYPE)
        rows["task_id"] = self.task_ids[todo]
        rows["x"][:, :self.dim] = self.points[todo]
        return rows

    def _representatives(self, todo: np.ndarray) -> np.ndarray:
        """Of the tasks in ``todo``, those that must be solved: one per distinct key over
        all ranks (the smallest task_id), skipping keys already in the cache."""
        keys = self._keys(todo)
        self._pending = {}
        for i, k in zip(todo, keys):
            if k in self.cache:
                continue
            tid = int(self.task_ids[i])
            if k not in self._pending or tid < self._pending[k][0]:
                self._pending[k] = (tid, int(i))
        offers = self.comm.allgather({k: v[0] for k, v in self._pending.items()})
        best: dict[bytes, int] = {}
        for o in offers:
            for k, tid in o.items():
                best[k] = min(tid, best.get(k, tid))
        self._todo_keys = (todo, keys)
        return np.array(sorted(i for k, (tid, i) in self._pending.items() if best[k] == tid), dtype=np.int64)

    def solve(self, rows: np.ndarray, ctx: TaskContext) -> np.ndarray:
        out = np.empty(rows.shape[0], dtype=self.result_dtype)
        for r in range(rows.shape[0]):
            out["A"][r] = effective_tensor(self.coefficient, rows["x"][r, :self.dim], self.spec,
                                           eps=self.eps, delta=self.delta, frozen=self.frozen)
        return out

    def absorb(self, step: int, results: np.ndarray) -> None:
        if step < self.batches:
            with self.timers.phase("farm_comm"):
                idx = self._submitted
                self.A[idx] = results["A"]
                self.done[idx] = True
                self.solved_here += self.comm.allreduce(int(idx.size))
                if self.dedupe:
                    self._fill_from_cache(idx)
        else:
            self._macro_solve()
        self.step = step + 1

    def _fill_from_cache(self, solved: np.ndarray) -> None:
        todo, keys = self._todo_keys
        new = {k: self.A[i] for k, i in zip(self._keys(solved), solved)}
        for part in self.comm.allgather(new):
            self.cache.update(part)
        for i, k in zip(todo, keys):
            if not self.done[i]:
                self.A[i] = self.cache[k]
                self.done[i] = True
                self.cache_hits += 1

    # ------------------------------------------------------------------ macro
    def _coefficient_at_qp(self) -> np.ndarray:
        n_local, nq = self.mesh.elements.shape[0], self.mesh.n_qp
        if self.method == "fine-scale":
            pts = self.points
            a = self.coefficient.tensor(pts, pts / self.eps)
            return a.reshape(n_local, nq, self.dim, self.dim)
        if not self.comm.allreduce(bool(self.done.all()), op=_land()):
            raise RuntimeError("internal: macro solve with cell problems missing")
        self._check_effective_tensors()
        return self.A.reshape(n_local, nq, self.dim, self.dim)

    def _check_effective_tensors(self) -> None:
        """A_H must have a positive definite symmetric part everywhere (it has when the
        coefficient has); else an error on every rank naming the lowest such task id."""
        bad = invalid_values(self.A)
        found = []
        if bad.any():
            i = int(np.flatnonzero(bad)[np.argmin(self.task_ids[bad])])
            a = self.A[i]
            eig = np.linalg.eigvalsh(0.5 * (a + a.T)) if np.all(np.isfinite(a)) else a.ravel()
            found = [(int(self.task_ids[i]), f"A_H of micro task {int(self.task_ids[i])} at x = "
                      f"{numbers_text(self.points[i])} is not positive definite: {numbers_text(a)} "
                      f"(eigenvalues of its symmetric part {numbers_text(eig)})")]
        first = min((f for part in self.comm.allgather(found) for f in part), default=None, key=lambda f: f[0])
        if first is not None:
            raise HmmparError(first[1])

    def _macro_solve(self) -> None:
        with self.timers.phase("macro_assemble"):
            try:
                A, b = self.mesh.assemble(self._coefficient_at_qp(), self.source, self.dirichlet, self.neumann)
            except ValueError as exc:  # bad data, raised on every rank
                raise ConfigError(str(exc)) from None
        with self.timers.phase("macro_solve"):
            self.U = self.mesh.solve(A, b, rtol=self.config["macro.rtol"])
            self.iterations = self.mesh.last_iterations

    # ------------------------------------------------------------------ checkpoints
    def _owners(self) -> np.ndarray:
        """The rank that holds every task id (from each rank's element list)."""
        counts = np.array(self.comm.allgather(self.task_ids.size))
        owner = np.repeat(np.arange(self.comm.size), counts)
        ids = np.empty(self.n_tasks, dtype=np.int64)
        self.comm.Allgatherv(self.task_ids, [ids, counts])
        out = np.empty(self.n_tasks, dtype=np.int64)
        out[ids] = owner
        return out

    def _blocks(self) -> np.ndarray:
        """The rank whose checkpoint block holds every task id (contiguous blocks)."""
        size = self.comm.size
        bounds = np.array([self.n_tasks * r // size for r in range(size + 1)])
        return np.searchsorted(bounds, np.arange(self.n_tasks), side="right") - 1

    def checkpoint_data(self) -> dict:
        d = self.dim
        rows = np.zeros(self.task_ids.size, dtype=[("A", "f8", (d, d)), ("done", "u1")])
        rows["A"], rows["done"] = self.A, self.done
        blocks = self._blocks()
        moved = _move_rows(self.comm, rows, self._owners(), blocks)
        start = int(np.searchsorted(blocks, self.comm.rank))
        return {"fields": {"A_H": Block(np.ascontiguousarray(moved["A"]), start, self.n_tasks),
                           "cell_done": Block(np.ascontiguousarray(moved["done"]), start, self.n_tasks)},
                "attrs": {"step": self.step, "dim": d}}

    def step_changes_checkpoint(self, step: int) -> bool:
        return step < self.batches  # the last step is the macro solve; U is not checkpointed

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        if reader.rows("fields", "A_H") != self.n_tasks or int(reader.attrs.get("dim", 0)) != self.dim:
            raise CheckpointError(f"checkpoint {reader.path} holds {reader.rows('fields', 'A_H')} cell "
                                  f"problems, this mesh has {self.n_tasks}")
        blocks = self._blocks()
        lo = int(np.searchsorted(blocks, self.comm.rank))
        hi = int(np.searchsorted(blocks, self.comm.rank, side="right"))
        d = self.dim
        rows = np.zeros(hi - lo, dtype=[("A", "f8", (d, d)), ("done", "u1")])
        rows["A"] = reader.read_block("fields", "A_H", lo, hi)
        rows["done"] = reader.read_block("fields", "cell_done", lo, hi)
        mine = _move_rows(self.comm, rows, blocks, self._owners())
        self.A[:], self.done[:] = mine["A"], mine["done"].astype(bool)
        self.step = int(reader.attrs["step"])
        if self.dedupe:  # rebuild the cache from the cell problems already solved
            idx = np.flatnonzero(self.done)
            local = {k: self.A[i] for k, i in zip(self._keys(idx), idx)}
            for part in self.comm.allgather(local):
                self.cache.update(part)

    # ------------------------------------------------------------------ outputs
    def finalize(self, outdir: Path) -> dict | None:
        mesh, d = self.mesh, self.dim
        if self.U is None:  # restarted from the final checkpoint: the cells are all there
            self._macro_solve()
        try:
            errors = mesh.errors(self.U, self.exact) if self.exact is not None else None
        except ValueError as exc:  # the exact solution is not finite (raised on every rank)
            raise ConfigError(str(exc)) from None
        a_elem = self._coefficient_at_qp().mean(axis=1)  # element average of A_H
        fields = {"A_H": a_elem}
        try:
            mesh.write(outdir / "elliptic.h5", self.U, fields, nodal_name="U")
        except ReservationError as exc:  # raised on every rank, before HDF5 opened the file
            raise HmmparError(f"cannot write {exc.filename}: reserving {format_bytes(exc.nbytes)} failed: "
                              f"{exc.strerror}") from None
        U = mesh.nodal_values(self.U)
        A_all = mesh.element_values(a_elem)
        cache_hits = self.comm.allreduce(self.cache_hits)  # counted on the owner ranks
        simplex_plot = self.config["output.plots"] and bool(self.config["macro.mesh"])
        points, cells = mesh.gather_mesh() if simplex_plot else (None, None)
        if self.comm.rank != 0:
            return None
        summary = {
            "app": self.name, "method": self.method, "dim": d, **_mesh_summary(mesh),
            "eps": self.eps, "delta": self.delta,
            "micro": {"n": self.spec.n, "bc": self.spec.bc, "frozen": self.frozen,
                      "h_over_eps": self.delta / self.spec.n / self.eps},
            "cell_problems": self.n_tasks if self.method == "fe-hmm" else 0,
            "cell_problems_solved_this_run": self.solved_here,
            "cache_hits_this_run": cache_hits,
            "krylov_iterations": self.iterations,
            "U_min": float(U.min()), "U_max": float(U.max()),
        }
        if errors is not None:
            summary["error_vs_exact"] = {"l2": errors["l2"], "h1": errors["h1"]}
        known = self.coefficient.homogenized(d)
        if known is not None and self.method == "fe-hmm":
            summary["A_H_mean"] = A_all.reshape(-1, d, d).mean(axis=0).tolist()
            summary["A_H_exact_periodic"] = known.tolist()
        if simplex_plot:
            self._plot_simplex(outdir / "elliptic.png", U, A_all, points, cells)
        elif self.config["output.plots"]:
            self._plot(outdir / "elliptic.png", U, A_all)
        return summary

    def _plot(self, path: Path, U: np.ndarray, A_all: np.ndarray) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        mesh, d = self.mesh, self.dim
        if d == 3:  # middle slice in z
            U = U[U.shape[0] // 2]
            A_all = A_all.reshape(tuple(mesh.cells[::-1]) + (d, d))[mesh.cells[2] // 2]
        else:
            A_all = A_all.reshape(tuple(mesh.cells[::-1]) + (d, d))
        ext = [mesh.lower[0], mesh.upper[0], mesh.lower[1], mesh.upper[1]]
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
        for ax, data, title in ((axes[0], U, "U (macro solution)"),
                                (axes[1], A_all[..., 0, 0], "$A_H$ 11 (element mean)"),
                                (axes[2], A_all[..., 1, 1], "$A_H$ 22 (element mean)")):
            im = ax.imshow(data, origin="lower", extent=ext, cmap="viridis", interpolation="nearest")
            ax.set(title=title + (" at mid z" if d == 3 else ""), xlabel="x", ylabel="y")
            fig.colorbar(im, ax=ax, shrink=0.85)
        fig.suptitle(f"{self.method}: {'x'.join(map(str, mesh.cells))} macro cells, eps = {self.eps:g}")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    def _plot_simplex(self, path: Path, U: np.ndarray, A_all: np.ndarray, points: np.ndarray,
                      cells: np.ndarray) -> None:
        """U and the diagonal of A_H on a simplex mesh: ``tripcolor`` in 2D; in 3D the
        vertices / element centroids within h_max / 2 of the middle z plane."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        mesh, d = self.mesh, self.dim
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
        titles = ("U (macro solution)", "$A_H$ 11 (element mean)", "$A_H$ 22 (element mean)")
        if d == 2:
            ims = [axes[0].tripcolor(points[:, 0], points[:, 1], cells, U, shading="gouraud", cmap="viridis")]
            ims += [ax.tripcolor(points[:, 0], points[:, 1], cells, facecolors=A_all[:, k, k], cmap="viridis",
                                 edgecolors="face")
                    for ax, k in ((axes[1], 0), (axes[2], 1))]
        else:
            zmid, half = 0.5 * (mesh.lower[2] + mesh.upper[2]), 0.5 * mesh.h_max
            near = np.abs(points[:, 2] - zmid) <= half
            centre = points[cells].mean(axis=1)
            enear = np.abs(centre[:, 2] - zmid) <= half
            ims = [axes[0].scatter(points[near, 0], points[near, 1], c=U[near], s=12, cmap="viridis")]
            ims += [ax.scatter(centre[enear, 0], centre[enear, 1], c=A_all[enear, k, k], s=12, cmap="viridis")
                    for ax, k in ((axes[1], 0), (axes[2], 1))]
            titles = tuple(t + " near mid z" for t in titles)
        for ax, im, title in zip(axes, ims, titles):
            ax.set(title=title, xlabel="x", ylabel="y", aspect="equal")
            fig.colorbar(im, ax=ax, shrink=0.85)
        fig.suptitle(f"{self.method}: {mesh.path.name}, {mesh.n_elements} elements, eps = {self.eps:g}")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def load_voxels(config, comm) -> np.ndarray:
    """The voxel image of ``coefficient.file`` (/ ``coefficient.dataset``): read and
    checked on rank 0, recorded in the config's ledger, broadcast (collective)."""
    grid = problem = None
    key, path = "coefficient.file", config["coefficient.file"]
    if not path:
        raise ConfigError("config key coefficient.file: coefficient.kind = \"voxels\" needs a file")
    data = read_input(comm, config, key, "voxels", share=False)
    if comm.rank == 0:
        try:
            grid = parse_voxels(data, key, path, config["coefficient.dataset"])
        except ConfigError as exc:
            problem = str(exc)
    shape, problem = comm.bcast((None if grid is None else grid.shape, problem), root=0)
    if problem:
        raise ConfigError(problem)
    if comm.rank != 0:
        grid = np.empty(shape)
    comm.Bcast(np.ascontiguousarray(grid) if comm.rank == 0 else grid, root=0)  # no pickle copy
    return grid


def load_coefficient(config, comm, dim: int) -> Coefficient:
    """The coefficient of the config's ``[coefficient]`` section for a ``dim``-D problem
    (collective: voxel images and user modules are read through :mod:`hmmpar.io.inputs`,
    so their content is recorded for restarts). Problems are ConfigErrors."""
    c = config.section("coefficient")
    if c["kind"] == "voxels":
        grid = load_voxels(config, comm)
        if grid.ndim != dim:
            raise ConfigError(f"config key coefficient.file: {c['file']} is a {grid.ndim}D image, "
                              f"the problem is {dim}D")
        return Voxels(grid, label=c["file"])
    if c["kind"] == "function":
        fn = load_user_function(comm, config, "coefficient.function")
        coefficient = UserFunction(c["function"], c["depends_on_x"], fn=fn)
        try:  # compile and evaluate once: a function numba cannot compile fails here, not in a cell
            coefficient.values(np.full((1, dim), 0.5), np.full((1, dim), 0.5))
        except Exception as exc:  # noqa: BLE001 - user code
            text = one_line(exc)
            raise ConfigError(f"config key coefficient.function = {c['function']!r} cannot be evaluated at "
                              f"x = y = 0.5: {text[:300]}{'...' if len(text) > 300 else ''}") from None
        return coefficient
    try:
        return coefficient_from_config(c, dim)
    except ValueError as exc:
        raise ConfigError(f"config section coefficient: {exc}") from None


def _macro_mesh(config, comm):
    """The macro mesh of the config: a SimplexP1 on ``macro.mesh`` (an absolute path in
    the validated config; read first through :mod:`hmmpar.io.inputs`: a regular file of
    bounded size, its content recorded for restarts), or a BoxQ1 on ``macro.cells`` /
    ``lower`` / ``upper``. Problems are ConfigErrors."""
    from hmmpar.macro.box_q1 import BoxQ1
    from hmmpar.macro.simplex_p1 import SimplexP1

    if config["macro.mesh"]:
        path = Path(config["macro.mesh"])
        read_input(comm, config, "macro.mesh", "mesh", share=False)
        try:
            return SimplexP1(comm, path)
        except ValueError as exc:
            raise ConfigError(f"config key macro.mesh: {exc}") from None
    cells = _box_cells(config, comm)
    dim = len(cells)
    lower = list(config["macro.lower"]) or [0.0] * dim
    upper = list(config["macro.upper"]) or [1.0] * dim
    for key, v in (("macro.lower", lower), ("macro.upper", upper)):
        if len(v) != dim:
            raise ConfigError(f"config key {key} must have {dim} entries like macro.cells")
    if any(u <= lo for lo, u in zip(lower, upper)):
        raise ConfigError("config key macro.upper must exceed macro.lower in every direction")
    span = [u - lo for lo, u in zip(lower, upper)]
    if not all(BOX_SPAN[0] <= w <= BOX_SPAN[1] for w in span):
        raise ConfigError(f"config keys macro.lower / macro.upper: the box's side lengths {span} must lie "
                          f"between {BOX_SPAN[0]:g} and {BOX_SPAN[1]:g}")
    try:
        return BoxQ1(comm, cells, lower, upper)
    except ValueError as exc:  # raised on every rank alike (PETSc's partition of the nodes)
        if "distribute" not in str(exc):
            raise
        raise ConfigError(f"config key macro.cells = {cells}: the box's {' x '.join(str(c + 1) for c in cells)} "
                          f"nodes cannot be split over {comm.size} ranks (PETSc's DMDA needs at least one "
                          "node per rank in each direction of its process grid); use more cells or fewer "
                          "ranks") from None


#: side lengths of a macro box: beyond these, h or the node coordinates lose their precision
BOX_SPAN = (1e-100, 1e100)


def _box_cells(config, comm) -> list[int]:
    """``macro.cells`` checked: 2 or 3 entries >= 1 and a node count PETSc can index."""
    from petsc4py import PETSc

    cells = [int(c) for c in config["macro.cells"]]
    if len(cells) not in (2, 3):
        raise ConfigError(f"config key macro.cells must have 2 or 3 entries, not {len(cells)}")
    if min(cells) < 1:
        raise ConfigError("config key macro.cells: every entry must be >= 1")
    nodes = math.prod(c + 1 for c in cells)
    limit = int(np.iinfo(PETSc.IntType).max)
    if nodes > limit:
        raise ConfigError(f"config key macro.cells = {cells} gives {nodes} nodes, more than this PETSc "
                          f"build's {np.dtype(PETSc.IntType).itemsize * 8}-bit indices can number ({limit})")
    return cells


def _cell_spec(m: dict, dim: int) -> CellSpec:
    """The cell spec of the ``[micro]`` section; a cell matrix PETSc can index."""
    from petsc4py import PETSc

    try:
        spec = CellSpec(dim, m["n"], m["bc"], m["oversampling"], m["solver"])
    except ValueError as exc:
        raise ConfigError(f"config section micro: {exc}") from None
    if spec.solver not in ("auto", "petsc") and spec.solver not in available_factor_packages():
        raise ConfigError(f"config key micro.solver = {spec.solver!r}: this PETSc build has no "
                          f"{spec.solver} (available: auto, petsc, {', '.join(available_factor_packages())})")
    n_el, n_dofs = cell_sizes(spec)
    limit = int(np.iinfo(PETSc.IntType).max)
    if n_dofs * 3**dim > limit:  # the cell matrix's nonzeros are numbered in PETSc's index type
        raise ConfigError(f"config key micro.n = {spec.n} (bc {spec.bc}, oversampling {spec.oversampling:g}) "
                          f"gives a cell matrix of {n_dofs * 3**dim} nonzeros, more than this PETSc "
                          f"build's indices can number ({limit})")
    return spec


def _check_coefficient_values(c: dict) -> None:
    """The ``coefficient.values`` a kind needs: two (the phases of a checkerboard, the
    layers of a laminate)."""
    if c["kind"] in ("checkerboard", "laminate") and len(c["values"]) != 2:
        what = "phases" if c["kind"] == "checkerboard" else "layers"
        raise ConfigError(f"config key coefficient.values must have 2 entries (the two {what}) for a "
                          f"{c['kind']}, got {len(c['values'])}")


def _check_resolution(mesh, spec: CellSpec, eps: float, delta_over_eps: float) -> None:
    r"""Refuse an ``eps`` so small against the domain that double precision cannot place
    the micro mesh: the fast variable :math:`y = x/\varepsilon` reaches :math:`R =
    \max|x|/\varepsilon`, rounded to :math:`R\,2^{-52}`, which must stay below
    :math:`10^{-6}` of the micro mesh step :math:`h/\varepsilon = (\delta/\varepsilon)/n`."""
    if not math.isfinite(eps * delta_over_eps):
        raise ConfigError(f"config keys micro.eps * micro.delta_over_eps = delta overflows ({eps:g} * "
                          f"{delta_over_eps:g})")
    reach = float(max(np.max(np.abs(mesh.lower)), np.max(np.abs(mesh.upper)))) / eps
    step = delta_over_eps / spec.n
    if not reach * 2.0**-52 <= 1e-6 * step:
        raise ConfigError(f"config key micro.eps = {eps:g} is too small for this domain: x / eps reaches "
                          f"{reach:.3g}, where double precision places the micro mesh (step h/eps = "
                          f"{step:.3g}) only to {reach * 2.0**-52:.3g}")


def _mesh_summary(mesh) -> dict:
    """The summary's mesh entries: ``cells`` and ``macro_h`` of a box, ``mesh`` (file,
    counts, edge lengths) of a simplex mesh."""
    if hasattr(mesh, "describe"):
        return {"mesh": mesh.describe()}
    return {"cells": mesh.cells.tolist(), "macro_h": mesh.h.tolist()}


def _land():
    from mpi4py import MPI
    return MPI.LAND
