"""XDMF time series of point fields on a rectilinear grid (ParaView).

The snapshots are the HDF5 files of :func:`hmmpar.io.fv_output.write_fields`, one dataset
of shape ``(len(y), len(x))`` per field. The grid is a ``2DRectMesh`` whose node
coordinates are given (``VXVY`` geometry), so unevenly spaced levels such as Chebyshev
points are shown where they are; the fields are node-centred.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from hmmpar.io.fv_output import write_xdmf

__all__ = ["write_point_time_series"]


def write_point_time_series(path: Path, entries: Sequence[tuple[float, str]], names: Sequence[str],
                            x: np.ndarray, y: np.ndarray, title: str = "fields") -> None:
    """Write an XDMF 2 temporal collection: ``entries`` are ``(time, HDF5 file relative to
    path)``, each file holding the datasets ``names`` of shape ``(len(y), len(x))`` at the
    nodes ``x`` (fastest index) by ``y``. Written to a temporary name and renamed."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    root = ET.Element("Xdmf", Version="2.0")
    domain = ET.SubElement(root, "Domain")
    series = ET.SubElement(domain, "Grid", Name=title, GridType="Collection", CollectionType="Temporal")
    for k, (time, h5) in enumerate(entries):
        grid = ET.SubElement(series, "Grid", Name=f"t{k}", GridType="Uniform")
        ET.SubElement(grid, "Time", Value=repr(float(time)))
        ET.SubElement(grid, "Topology", TopologyType="2DRectMesh", Dimensions=f"{y.size} {x.size}")
        geom = ET.SubElement(grid, "Geometry", GeometryType="VXVY")
        for coords in (x, y):
            item = ET.SubElement(geom, "DataItem", Dimensions=str(coords.size), NumberType="Float",
                                 Precision="8", Format="XML")
            item.text = " ".join(repr(float(v)) for v in coords)
        for name in names:
            att = ET.SubElement(grid, "Attribute", Name=name, AttributeType="Scalar", Center="Node")
            item = ET.SubElement(att, "DataItem", Dimensions=f"{y.size} {x.size}", NumberType="Float",
                                 Precision="8", Format="HDF")
            item.text = f"{h5}:/{name}"
    write_xdmf(path, root)
