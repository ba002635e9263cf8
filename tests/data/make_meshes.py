#!/usr/bin/env python3
"""Small unstructured simplex meshes of the unit square / cube in Gmsh format.

``python tests/data/make_meshes.py`` (re)writes the committed test meshes
``tests/data/square.msh`` and ``tests/data/cube.msh`` and the example mesh
``drivers/configs/meshes/square.msh``. Tests import :func:`box_mesh` and
:func:`write_msh22` / :func:`write_msh41` to write refined meshes into temporary
directories.

Construction
------------
A grid of ``n[d]`` cells per direction; every square is cut into 2 triangles along a
randomly chosen diagonal (2D), every cube into the 6 Kuhn tetrahedra around one of its
4 main diagonals: the Kuhn pattern mirrored in direction d when the cube's index in d
is odd, which keeps the face diagonals of neighbouring cubes equal (conforming). Interior nodes are then moved by
independent uniform offsets of up to ``jitter * h`` per coordinate and nodes on a face
of the box (not on an edge) by such offsets along the face, so the mesh is neither
uniform nor aligned. Node and element numbers are shuffled, so the file order is
unrelated to the geometry. Boundary facets (lines in 2D, triangles in 3D) are the
facets of the simplices that lie on a side of the box; each side is a physical group:

====  ==============================================================
2D    ``left`` (x = 0), ``right`` (x = 1), ``bottom`` (y = 0), ``top`` (y = 1);
      the triangles are the group ``domain``
3D    ``left``/``right`` (x = 0/1), ``front``/``back`` (y = 0/1),
      ``bottom``/``top`` (z = 0/1); the tetrahedra are the group ``domain``
====  ==============================================================

Coordinates are written with 17 significant digits (round-trip exact).
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

SIDE_NAMES = {2: ("left", "right", "bottom", "top"),
              3: ("left", "right", "front", "back", "bottom", "top")}
DOMAIN_TAG = 100  # physical tag of the cells; side s (0 .. 2 dim - 1) has tag s + 1


@dataclass
class SimplexMesh:
    """A simplex mesh with tagged boundary facets (0-based node numbers).

    Attributes
    ----------
    points : (n_nodes, dim) float
    cells : (n_cells, dim + 1) int, node numbers
    facets : (n_facets, dim) int, node numbers of the boundary facets
    facet_tags : (n_facets,) int, physical tag (side index + 1)
    names : dict
        physical tag -> (dimension, name), including the cell group
    """

    points: np.ndarray
    cells: np.ndarray
    facets: np.ndarray
    facet_tags: np.ndarray
    names: dict

    @property
    def dim(self) -> int:
        return self.points.shape[1]


def _kuhn_tets(start_corner: int) -> list[list[int]]:
    """The 6 tetrahedra of the unit cube around the main diagonal from corner
    ``start_corner`` (corner ``c = cx + 2 cy + 4 cz``) to the opposite corner."""
    start = np.array([(start_corner >> d) & 1 for d in range(3)])
    step = 1 - 2 * start  # walk from the start corner towards the opposite one
    tets = []
    for perm in itertools.permutations(range(3)):
        corner = start.copy()
        path = [corner.copy()]
        for d in perm:
            corner[d] += step[d]
            path.append(corner.copy())
        tets.append([int(c[0] + 2 * c[1] + 4 * c[2]) for c in path])
    return tets


def box_mesh(n: Sequence[int], *, jitter: float = 0.2, seed: int = 0,
             shuffle: bool = True) -> SimplexMesh:
    """Simplex mesh of the unit square (``len(n) == 2``) or cube (``len(n) == 3``).

    Parameters
    ----------
    n
        Grid cells per direction before the split into simplices.
    jitter
        Largest node offset per coordinate, in units of the grid width (< 0.25 keeps
        every simplex positively oriented).
    seed
        Seed of the diagonals (2D), offsets and shuffles.
    shuffle
        Randomly permute node and element numbers.
    """
    n = np.array(n, dtype=np.int64)
    dim = n.size
    rng = np.random.default_rng(seed)
    h = 1.0 / n
    axes = [np.arange(m + 1) for m in n]
    ijk = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)  # last axis fastest
    strides = np.array([np.prod(n[d + 1:] + 1) for d in range(dim)], dtype=np.int64)
    points = ijk * h
    on_side = (ijk == 0) | (ijk == n)
    free = ~on_side                                   # coordinates that may move
    n_fixed = on_side.sum(axis=1)
    movable = n_fixed <= 1                            # interior, or inside one side (not an edge)
    offsets = rng.uniform(-jitter, jitter, size=points.shape) * h
    points = points + np.where(free & movable[:, None], offsets, 0.0)

    cells = []
    corners = np.array(list(itertools.product((0, 1), repeat=dim)))[:, ::-1]  # corner c: bit d = offset in d
    for base in itertools.product(*[range(m) for m in n]):
        base = np.array(base)
        node = ((base + corners) @ strides)
        if dim == 2:
            # corners 0 (0,0), 1 (1,0), 2 (0,1), 3 (1,1)
            if rng.integers(2):
                tris = [[0, 1, 3], [0, 3, 2]]
            else:
                tris = [[0, 1, 2], [1, 3, 2]]
            cells += [node[t] for t in tris]
        else:
            parity = base % 2
            cells += [node[t] for t in _kuhn_tets(int(parity[0] + 2 * parity[1] + 4 * parity[2]))]
    cells = np.array(cells, dtype=np.int64)
    # positive orientation (Gmsh convention; PETSc does not need it)
    vol = np.linalg.det(points[cells[:, 1:]] - points[cells[:, :1]])
    cells[vol < 0, :2] = cells[vol < 0, 1::-1]

    # boundary facets: facets of exactly one cell lying on a box side
    faces = np.concatenate([np.delete(cells, k, axis=1) for k in range(dim + 1)])
    key = np.sort(faces, axis=1)
    _, first, count = np.unique(key, axis=0, return_index=True, return_counts=True)
    facets = faces[first[count == 1]]
    fijk = ijk[facets]                                 # (nf, dim, dim)
    tags = np.zeros(len(facets), dtype=np.int64)
    for d in range(dim):
        tags[np.all(fijk[:, :, d] == 0, axis=1)] = 2 * d + 1
        tags[np.all(fijk[:, :, d] == n[d], axis=1)] = 2 * d + 2
    assert np.all(tags > 0), "a boundary facet on no side"

    if shuffle:
        perm = rng.permutation(len(points))           # new number of old node i: perm[i]
        new_points = np.empty_like(points)
        new_points[perm] = points
        points, cells, facets = new_points, perm[cells], perm[facets]
        cells = cells[rng.permutation(len(cells))]
        order = rng.permutation(len(facets))
        facets, tags = facets[order], tags[order]
    names = {t + 1: (dim - 1, nm) for t, nm in enumerate(SIDE_NAMES[dim])}
    names[DOMAIN_TAG] = (dim, "domain")
    return SimplexMesh(points, cells, facets, tags, names)


def _coords(points: np.ndarray) -> np.ndarray:
    return np.hstack([points, np.zeros((len(points), 3 - points.shape[1]))])


def write_msh22(path: str | Path, mesh: SimplexMesh) -> Path:
    """Write ``mesh`` as a Gmsh 2.2 ASCII file (boundary facets first, then the cells)."""
    dim = mesh.dim
    facet_type, cell_type = (1, 2) if dim == 2 else (2, 4)
    lines = ["$MeshFormat", "2.2 0 8", "$EndMeshFormat", "$PhysicalNames", str(len(mesh.names))]
    lines += [f'{d} {tag} "{name}"' for tag, (d, name) in sorted(mesh.names.items())]
    lines += ["$EndPhysicalNames", "$Nodes", str(len(mesh.points))]
    lines += [f"{i + 1} {x!r} {y!r} {z!r}" for i, (x, y, z) in enumerate(_coords(mesh.points).tolist())]
    lines += ["$EndNodes", "$Elements", str(len(mesh.facets) + len(mesh.cells))]
    number = 0
    for nodes, tag in zip(mesh.facets + 1, mesh.facet_tags):
        number += 1
        lines.append(f"{number} {facet_type} 2 {tag} {tag} " + " ".join(map(str, nodes)))
    for nodes in mesh.cells + 1:
        number += 1
        lines.append(f"{number} {cell_type} 2 {DOMAIN_TAG} 1 " + " ".join(map(str, nodes)))
    lines += ["$EndElements", ""]
    path = Path(path)
    path.write_text("\n".join(lines))
    return path


def write_msh41(path: str | Path, mesh: SimplexMesh) -> Path:
    """Write ``mesh`` as a Gmsh 4.1 ASCII file.

    One geometric entity per side (dimension ``dim - 1``, tag = side tag) and one for
    the domain (dimension ``dim``, tag 1), each carrying its physical tag; all nodes in
    one block on the domain entity.
    """
    dim = mesh.dim
    facet_type, cell_type = (1, 2) if dim == 2 else (2, 4)
    sides = sorted(t for t, (d, _) in mesh.names.items() if d == dim - 1)
    box = "0 0 0 1 1 " + ("1" if dim == 3 else "0")
    counts = [0, 0, 0, 0]
    counts[dim - 1] = len(sides)
    counts[dim] = 1
    lines = ["$MeshFormat", "4.1 0 8", "$EndMeshFormat", "$PhysicalNames", str(len(mesh.names))]
    lines += [f'{d} {tag} "{name}"' for tag, (d, name) in sorted(mesh.names.items())]
    lines += ["$EndPhysicalNames", "$Entities", " ".join(map(str, counts))]
    for t in sides:
        lines.append(f"{t} {box} 1 {t} 0")
    lines.append(f"1 {box} 1 {DOMAIN_TAG} {len(sides)} " + " ".join(str(t) for t in sides))
    lines += ["$EndEntities", "$Nodes", f"1 {len(mesh.points)} 1 {len(mesh.points)}",
              f"{dim} 1 0 {len(mesh.points)}"]
    lines += [str(i + 1) for i in range(len(mesh.points))]
    lines += [f"{x!r} {y!r} {z!r}" for x, y, z in _coords(mesh.points).tolist()]
    lines += ["$EndNodes", "$Elements"]
    total = len(mesh.facets) + len(mesh.cells)
    blocks = [(dim - 1, t, facet_type, mesh.facets[mesh.facet_tags == t]) for t in sides]
    blocks.append((dim, 1, cell_type, mesh.cells))
    lines.append(f"{len(blocks)} {total} 1 {total}")
    number = 0
    for d, tag, etype, nodes in blocks:
        lines.append(f"{d} {tag} {etype} {len(nodes)}")
        for row in nodes + 1:
            number += 1
            lines.append(f"{number} " + " ".join(map(str, row)))
    lines += ["$EndElements", ""]
    path = Path(path)
    path.write_text("\n".join(lines))
    return path


def main() -> int:
    data = ROOT / "tests" / "data"
    examples = ROOT / "drivers" / "configs" / "meshes"
    examples.mkdir(parents=True, exist_ok=True)
    write_msh22(data / "square.msh", box_mesh([6, 6], seed=1))
    write_msh22(data / "cube.msh", box_mesh([3, 3, 3], seed=2))
    write_msh22(examples / "square.msh", box_mesh([16, 16], seed=3))
    for p in (data / "square.msh", data / "cube.msh", examples / "square.msh"):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
