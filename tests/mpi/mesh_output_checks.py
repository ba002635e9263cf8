"""Checks shared by the mesh output tests of BoxQ1 and SimplexP1."""
from __future__ import annotations

from pathlib import Path

from hmmpar.macro.box_q1 import OUTPUT_OVERHEAD


def written_within_reservation(mesh, f, path: Path) -> bool:
    """The datasets in the open output file ``f`` are exactly those the mesh's
    ``_output_datasets`` counts, with the same byte sizes, and the finished file is no
    larger than the space reserved for it (so no HDF5 write needed new blocks)."""
    cell_sets = [(name, f["cell"][name][...].ravel()) for name in f["cell"]]
    nodal = list(f["nodal"])
    planned = mesh._output_datasets(nodal[0], cell_sets)
    written = {}
    f.visititems(lambda name, obj: written.update({name: obj.nbytes}) if hasattr(obj, "nbytes") else None)
    return len(nodal) == 1 and written == planned and path.stat().st_size <= OUTPUT_OVERHEAD + sum(planned.values())
