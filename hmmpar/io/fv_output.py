"""HDF5 snapshots of cell fields on a uniform grid and their XDMF time series (ParaView).

Rank 0 writes (the fields are gathered there): each snapshot is one HDF5 file with one
dataset per scalar field, shape ``(nx,)`` in 1D and ``(ny, nx)`` in 2D, and attributes
``time`` and ``step``; written to a temporary name and renamed, so a killed run leaves
whole files only. The XDMF file is a ``Temporal`` collection of ``Uniform`` grids, one per
snapshot (a ``2DCoRectMesh``: a 1D grid is shown as a strip one cell high), each with
its ``<Time>`` and cell-centred ``Scalar`` attributes pointing into the snapshot files.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["write_fields", "write_time_series", "write_xdmf"]


def write_fields(path: Path, fields: Mapping[str, np.ndarray], attrs: Mapping[str, object]) -> None:
    """Write ``fields`` (name -> float array) and ``attrs`` to the HDF5 file ``path``
    atomically (rank 0 only; h5py's default driver)."""
    import hmmpar  # noqa: F401  (h5py's MPI build is imported the project's way)
    import h5py

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        for name, values in fields.items():
            f.create_dataset(name, data=np.asarray(values, dtype=float))
        for key, value in attrs.items():
            f.attrs[key] = value
    os.replace(tmp, path)


def write_snapshot(comm, output_dir: str | Path, prefix: str, k: int, fields: Mapping[str, np.ndarray] | None,
                   attrs: Mapping[str, object]) -> None:
    """Write snapshot ``k``, ``<output_dir>/snapshots/<prefix>_<k:05d>.h5``, of ``fields``
    (given on rank 0; :func:`write_fields`). Collective: a write error raises
    :class:`~hmmpar.core.errors.HmmparError` naming the snapshot and folder on every rank."""
    from hmmpar.core.errors import HmmparError
    problem = None
    if comm.rank == 0:
        folder = Path(output_dir) / "snapshots"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_fields(folder / f"{prefix}_{k:05d}.h5", fields, attrs)
        except OSError as exc:
            problem = f"cannot write snapshot {k} in {folder}: {exc}"
    problem = comm.bcast(problem, root=0)
    if problem:
        raise HmmparError(problem)


def write_time_series(path: Path, entries: Sequence[tuple[float, str]], names: Sequence[str],
                      cells: Sequence[int], lower: Sequence[float], h: Sequence[float]) -> None:
    """XDMF 2 temporal collection: ``entries`` are ``(time, HDF5 file relative to path)``,
    each file holding the datasets ``names`` on the grid ``cells`` x ``h`` from ``lower``."""
    dim = len(cells)
    nx = int(cells[0])
    ny = int(cells[1]) if dim == 2 else 1
    x0, y0 = float(lower[0]), float(lower[1]) if dim == 2 else 0.0
    dx = float(h[0])
    dy = float(h[1]) if dim == 2 else dx
    root = ET.Element("Xdmf", Version="2.0")
    domain = ET.SubElement(root, "Domain")
    series = ET.SubElement(domain, "Grid", Name="gas_dynamics", GridType="Collection", CollectionType="Temporal")
    for k, (time, h5) in enumerate(entries):
        grid = ET.SubElement(series, "Grid", Name=f"t{k}", GridType="Uniform")
        ET.SubElement(grid, "Time", Value=repr(float(time)))
        ET.SubElement(grid, "Topology", TopologyType="2DCoRectMesh", Dimensions=f"{ny + 1} {nx + 1}")
        geom = ET.SubElement(grid, "Geometry", GeometryType="ORIGIN_DXDY")
        for label, (a, b) in (("Origin", (y0, x0)), ("Spacing", (dy, dx))):
            item = ET.SubElement(geom, "DataItem", Name=label, Dimensions="2", NumberType="Float",
                                 Precision="8", Format="XML")
            item.text = f"{a!r} {b!r}"
        for name in names:
            att = ET.SubElement(grid, "Attribute", Name=name, AttributeType="Scalar", Center="Cell")
            item = ET.SubElement(att, "DataItem", Dimensions=f"{ny} {nx}", NumberType="Float", Precision="8",
                                 Format="HDF")
            item.text = f"{h5}:/{name}"
    write_xdmf(path, root)


def write_xdmf(path: Path, root: ET.Element) -> None:
    """Write the XDMF tree ``root`` to ``path`` under a temporary name, then rename it."""
    ET.indent(root)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" ?>\n<!DOCTYPE Xdmf SYSTEM "Xdmf.dtd" []>\n')
        fh.write(ET.tostring(root, encoding="unicode"))
        fh.write("\n")
    os.replace(tmp, path)
