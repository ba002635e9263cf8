r"""A uniform finite-volume grid on PETSc DMDAs: cells, their corners, their faces.

Three kinds of points, each a DMDA with the same process grid:

``cell``
    cell centres :math:`x_j = l + (j + \tfrac12) h`, ``j = 0 .. N-1``;
``vertex``
    cell corners :math:`x_{j-1/2} = l + j h`: the staggered grid of the central schemes.
    Along a non-periodic direction there are ``N + 1`` of them (both boundary points),
    along a periodic one ``N`` (the last equals the first);
``face`` ``d``
    faces normal to direction ``d``: vertex placement along ``d``, cell placement along
    the other directions (the interfaces of the kinetic scheme).

Point ``j`` of every kind is owned by the rank that owns cell ``j`` (and the extra last
corner / face of a non-periodic direction by the last rank), so a rank's owned corners
and faces are exactly those of its cells' low sides: the ownership ranges of the corner
and face DMDAs are the cell DMDA's with one added to the last rank's count. The cell
partition is computed here (not by PETSc) so that a grid too small for the rank count is
a clear error before PETSc is asked (PETSc's own check fails on some ranks only).

Arrays are in DMDA order: 1D ``(n, dof)``, 2D ``(ny, nx, dof)`` (x fastest), so physical
direction ``d`` is array axis ``dim - 1 - d``. Natural (global, rank-independent) point
numbers are ``i`` (1D) and ``i + nx j`` (2D), with ``nx`` the DMDA's own x size.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from petsc4py import PETSc

__all__ = ["split_counts", "process_grid", "Layout", "FVGrid"]

#: ghost layers of every DMDA (the NT / MUSCL stencils reach two cells)
WIDTH = 2


def split_counts(n: int, parts: int) -> list[int]:
    """``n`` points in ``parts`` contiguous blocks, the first ``n % parts`` one larger."""
    return [n // parts + (1 if r < n % parts else 0) for r in range(parts)]


def process_grid(cells: Sequence[int], size: int, min_local: int = WIDTH) -> tuple[int, ...] | None:
    """A process grid ``(px[, py])`` with ``prod = size`` whose every block has at least
    ``min_local`` cells per direction, as square as possible; None if there is none."""
    cells = [int(c) for c in cells]
    if len(cells) == 1:
        return (size,) if cells[0] // size >= min_local else None
    best, score = None, None
    for px in range(1, size + 1):
        if size % px:
            continue
        py = size // px
        if cells[0] // px < min_local or cells[1] // py < min_local:
            continue
        s = abs(math.log((cells[0] / px) / (cells[1] / py)))
        if score is None or s < score - 1e-12:
            best, score = (px, py), s
    return best


class Layout:
    """One DMDA of the grid and this rank's part of it.

    Attributes
    ----------
    dm : PETSc.DMDA
    sizes : tuple
        Global point counts, x first.
    start, stop : tuple
        Owned index range per direction, x first.
    gstart, gstop : tuple
        Ghosted index range per direction (may reach below 0 / beyond ``sizes`` at a
        physical boundary, and wrap at a periodic one).
    """

    def __init__(self, dm: PETSc.DMDA, sizes: Sequence[int]) -> None:
        self.dm = dm
        self.sizes = tuple(int(s) for s in sizes)
        self.dim = len(self.sizes)
        ranges = dm.getRanges()
        ghosts = dm.getGhostRanges()
        self.start = tuple(int(r[0]) for r in ranges)
        self.stop = tuple(int(r[1]) for r in ranges)
        self.gstart = tuple(int(r[0]) for r in ghosts)
        self.gstop = tuple(int(r[1]) for r in ghosts)
        self.dof = int(dm.getDof())
        self._global: PETSc.Vec | None = None
        self._local: PETSc.Vec | None = None
        self._natural = None

    # shapes in array (DMDA) order
    @property
    def owned_shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.start, self.stop))[::-1]

    @property
    def ghosted_shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.gstart, self.gstop))[::-1]

    @property
    def n_owned(self) -> int:
        return int(np.prod(self.owned_shape))

    @property
    def n_global(self) -> int:
        return int(np.prod(self.sizes))

    def axis(self, direction: int) -> int:
        """Array axis of physical direction ``direction``."""
        return self.dim - 1 - direction

    def owned_in_ghosted(self, lo_extra: Sequence[int] = (), hi_extra: Sequence[int] = ()) -> tuple:
        """Slices (array order) of the owned region, widened per direction (x first) by
        ``lo_extra`` / ``hi_extra`` points, inside the ghosted array."""
        lo_extra = tuple(lo_extra) or (0,) * self.dim
        hi_extra = tuple(hi_extra) or (0,) * self.dim
        sl = [slice(a - lx - g, b + hx - g)
              for a, b, g, lx, hx in zip(self.start, self.stop, self.gstart, lo_extra, hi_extra)]
        return tuple(sl[::-1])

    def range_in_ghosted(self, lo: Sequence[int], hi: Sequence[int]) -> tuple:
        """Slices (array order) of global index ranges ``[lo_d, hi_d)`` (x first) in the ghosted array."""
        return tuple(slice(a - g, b - g) for a, b, g in zip(lo, hi, self.gstart))[::-1]

    def natural_ids(self) -> np.ndarray:
        """Natural numbers of the owned points, in owned array order (int64)."""
        axes = [np.arange(a, b, dtype=np.int64) for a, b in zip(self.start, self.stop)]
        if self.dim == 1:
            return axes[0]
        jj, ii = np.meshgrid(axes[1], axes[0], indexing="ij")
        return (ii + self.sizes[0] * jj).reshape(-1)

    def unravel(self, natural: int) -> tuple[int, ...]:
        """Point index ``(i[, j])`` of a natural number."""
        if self.dim == 1:
            return (int(natural),)
        return (int(natural) % self.sizes[0], int(natural) // self.sizes[0])

    # vectors
    def global_vec(self) -> PETSc.Vec:
        """A new global vector of this DMDA."""
        return self.dm.createGlobalVec()

    def owned(self, gvec: PETSc.Vec, readonly: bool = False) -> np.ndarray:
        """The owned values of a global vector as an array ``owned_shape + (dof,)`` (a view)."""
        return gvec.getArray(readonly=readonly).reshape(self.owned_shape + (self.dof,))

    def ghosted(self, gvec: PETSc.Vec) -> np.ndarray:
        """The owned and ghost values (exchanged through the DMDA), ``ghosted_shape + (dof,)``.

        A copy: physical-boundary ghosts hold garbage until the caller fills them.
        """
        if self._local is None:
            self._local = self.dm.createLocalVec()
        self.dm.globalToLocal(gvec, self._local)
        return self._local.getArray(readonly=True).reshape(self.ghosted_shape + (self.dof,)).copy()

    def set_owned(self, gvec: PETSc.Vec, values: np.ndarray) -> None:
        """Write ``values`` (``owned_shape + (dof,)``) into a global vector."""
        gvec.getArray()[:] = np.ascontiguousarray(values).reshape(-1)

    def to_natural(self, gvec: PETSc.Vec) -> tuple[np.ndarray, int]:
        """This rank's contiguous block of the vector in natural order: ``(rows (n, dof),
        first natural row)``."""
        if self._natural is None:
            self._natural = self.dm.createNaturalVec()
        self.dm.globalToNatural(gvec, self._natural)
        lo, _ = self._natural.getOwnershipRange()
        return self._natural.getArray(readonly=True).reshape(-1, self.dof).copy(), lo // self.dof

    def natural_block(self) -> tuple[int, int]:
        """Rows ``[lo, hi)`` of the natural-order block this rank holds."""
        if self._natural is None:
            self._natural = self.dm.createNaturalVec()
        lo, hi = self._natural.getOwnershipRange()
        return lo // self.dof, hi // self.dof

    def from_natural(self, gvec: PETSc.Vec, rows: np.ndarray) -> None:
        """Set a global vector from this rank's natural-order block (:meth:`natural_block`)."""
        if self._natural is None:
            self._natural = self.dm.createNaturalVec()
        self._natural.getArray()[:] = np.ascontiguousarray(rows, dtype=float).reshape(-1)
        self.dm.naturalToGlobal(self._natural, gvec)

    def gather(self, gvec: PETSc.Vec) -> np.ndarray | None:
        """The whole vector in natural order on rank 0, shape ``sizes[::-1] + (dof,)``;
        None on the other ranks (collective)."""
        if self._natural is None:
            self._natural = self.dm.createNaturalVec()
        self.dm.globalToNatural(gvec, self._natural)
        scatter, seq = PETSc.Scatter.toZero(self._natural)
        try:
            scatter.scatter(self._natural, seq, addv=PETSc.InsertMode.INSERT_VALUES,
                            mode=PETSc.ScatterMode.FORWARD)
            if self.dm.getComm().getRank() != 0:
                return None
            return seq.getArray(readonly=True).reshape(self.sizes[::-1] + (self.dof,)).copy()
        finally:
            scatter.destroy()
            seq.destroy()


class FVGrid:
    """The cell, corner and face DMDAs of a uniform grid (see the module docstring).

    Parameters
    ----------
    comm
        mpi4py communicator.
    cells
        Cells per direction (1 or 2 entries).
    lower, upper
        Domain corners.
    periodic
        Per direction: periodic boundary (both sides).
    dof
        Values per point.
    proc
        Process grid (:func:`process_grid`), one entry per direction.
    """

    def __init__(self, comm, cells: Sequence[int], lower: Sequence[float], upper: Sequence[float],
                 periodic: Sequence[bool], dof: int, proc: Sequence[int]) -> None:
        self.comm = comm
        self.dim = len(cells)
        self.cells = tuple(int(c) for c in cells)
        self.lower = np.array(lower, dtype=float)
        self.upper = np.array(upper, dtype=float)
        self.h = (self.upper - self.lower) / np.array(self.cells, dtype=float)
        self.periodic = tuple(bool(p) for p in periodic)
        self.dof = dof
        self.proc = tuple(int(p) for p in proc)
        self._counts = [split_counts(n, p) for n, p in zip(self.cells, self.proc)]
        self.cell = self._layout((0,) * self.dim)
        self.vertex = self._layout(tuple(0 if p else 1 for p in self.periodic))
        if self.dim == 1:  # the faces of a 1D grid are its corners
            self.face = [self.vertex]
        else:
            self.face = [self._layout(tuple(1 if (d == e and not self.periodic[e]) else 0 for e in range(self.dim)))
                         for d in range(self.dim)]

    def _layout(self, extra: Sequence[int]) -> Layout:
        B = PETSc.DM.BoundaryType
        counts = []
        for c, e in zip(self._counts, extra):
            c = list(c)
            c[-1] += e
            counts.append(c)
        sizes = [n + e for n, e in zip(self.cells, extra)]
        dm = PETSc.DMDA().create(dim=self.dim, dof=self.dof, sizes=sizes, proc_sizes=self.proc,
                                 boundary_type=tuple(B.PERIODIC if p else B.GHOSTED for p in self.periodic),
                                 stencil_type=PETSc.DMDA.StencilType.BOX, stencil_width=WIDTH,
                                 ownership_ranges=tuple(counts), comm=self.comm)
        return Layout(dm, sizes)

    def coordinates(self, layout: Layout, index: Sequence[int]) -> np.ndarray:
        """Position of point ``index`` (x first) of ``layout``: cell centre, corner or face centre."""
        out = np.empty(self.dim)
        for d, i in enumerate(index):
            vertex_placed = layout is self.vertex or (layout in self.face and self.face.index(layout) == d)
            out[d] = self.lower[d] + (i + (0.0 if vertex_placed else 0.5)) * self.h[d]
        return out

    def cell_centres(self, layout: Layout | None = None) -> np.ndarray:
        """Positions of the owned points of ``layout`` (default the cells), owned array
        order, shape ``(n_owned, dim)``."""
        layout = layout or self.cell
        axes = []
        for d in range(self.dim):
            vertex_placed = layout is self.vertex or (layout in self.face and self.face.index(layout) == d)
            i = np.arange(layout.start[d], layout.stop[d], dtype=float)
            axes.append(self.lower[d] + (i + (0.0 if vertex_placed else 0.5)) * self.h[d])
        if self.dim == 1:
            return axes[0][:, None]
        yy, xx = np.meshgrid(axes[1], axes[0], indexing="ij")
        return np.stack([xx.reshape(-1), yy.reshape(-1)], axis=1)

    def destroy(self) -> None:
        for layout in {id(x): x for x in [self.cell, self.vertex, *self.face]}.values():
            for v in (layout._global, layout._local, layout._natural):
                if v is not None:
                    v.destroy()
            layout.dm.destroy()
