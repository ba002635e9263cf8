r"""Initial configurations: fcc lattices, random non-overlapping placement, and
Maxwell-Boltzmann velocities drawn from a given :class:`numpy.random.Generator`.

Everything random is drawn from the generator passed in, in a fixed order (positions,
then velocities), so a task's stream ``ctx.rng(task_id)`` always gives the same box.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from hmmpar.core.errors import ConfigError


def fcc_cells(n_atoms: int) -> int | None:
    """``n`` if ``n_atoms == 4 n^3`` (an fcc lattice of n^3 unit cells), else None."""
    n = int(round((n_atoms / 4.0) ** (1.0 / 3.0)))
    return n if n >= 1 and 4 * n ** 3 == n_atoms else None


def fcc_positions(n_cells: int, density: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions of an fcc lattice of ``n_cells``^3 cubic unit cells at ``density``.

    Returns
    -------
    positions : (4 n^3, 3) float64 array, atoms in [0, L)^3 (offset by a/4 from the origin)
    box : (3,) float64 array, L = n a with lattice constant a = (4/rho)^(1/3)
    """
    a = (4.0 / density) ** (1.0 / 3.0)
    g = np.arange(n_cells, dtype=float)
    cells = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    basis = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]) + 0.25
    x = ((cells + basis).reshape(-1, 3) * a).copy()
    return np.ascontiguousarray(x), np.full(3, n_cells * a)


@numba.njit(cache=True, error_model="numpy")
def _place(candidates: np.ndarray, placed: np.ndarray, n_placed: int, box: np.ndarray,
           d_min: float, heads: np.ndarray, nxt: np.ndarray, nc: np.ndarray) -> int:
    """Random sequential addition: accept each candidate farther than d_min from every
    placed atom (minimum image), using a cell grid; returns the new number placed."""
    n_target = placed.shape[0]
    d2 = d_min * d_min
    for k in range(candidates.shape[0]):
        if n_placed == n_target:
            break
        p0 = candidates[k, 0] * box[0]
        p1 = candidates[k, 1] * box[1]
        p2 = candidates[k, 2] * box[2]
        c0 = min(int(p0 / box[0] * nc[0]), nc[0] - 1)
        c1 = min(int(p1 / box[1] * nc[1]), nc[1] - 1)
        c2 = min(int(p2 / box[2] * nc[2]), nc[2] - 1)
        ok = True
        for a in range(-1, 2):
            for b in range(-1, 2):
                for c in range(-1, 2):
                    cell = (((c0 + a) % nc[0]) * nc[1] + (c1 + b) % nc[1]) * nc[2] + (c2 + c) % nc[2]
                    j = heads[cell]
                    while j >= 0:
                        d = p0 - placed[j, 0]
                        d -= box[0] * round(d / box[0])
                        e = p1 - placed[j, 1]
                        e -= box[1] * round(e / box[1])
                        f = p2 - placed[j, 2]
                        f -= box[2] * round(f / box[2])
                        if d * d + e * e + f * f < d2:
                            ok = False
                            break
                        j = nxt[j]
                    if not ok:
                        break
                if not ok:
                    break
            if not ok:
                break
        if ok:
            placed[n_placed, 0] = p0
            placed[n_placed, 1] = p1
            placed[n_placed, 2] = p2
            cell = (c0 * nc[1] + c1) * nc[2] + c2
            nxt[n_placed] = heads[cell]
            heads[cell] = n_placed
            n_placed += 1
    return n_placed


def random_positions(n_atoms: int, box: np.ndarray, rng: np.random.Generator,
                     d_min: float | None = None, max_candidates: int | None = None) -> np.ndarray:
    """``n_atoms`` uniform random positions no closer than ``d_min`` (minimum image).

    Random sequential addition of candidates drawn from ``rng`` in batches. The default
    ``d_min`` is ``min(0.9, 0.7 rho^(-1/3))``; random sequential addition jams near a
    packing fraction of 0.38, so at liquid densities prefer the fcc lattice.

    Raises
    ------
    ConfigError
        When the atoms do not fit after ``max_candidates`` draws (default ``2000 n_atoms``).
    """
    box = np.asarray(box, dtype=float)
    if d_min is None:
        d_min = min(0.9, 0.7 * (n_atoms / float(np.prod(box))) ** (-1.0 / 3.0))
    return random_positions_in_slabs([n_atoms], box, rng, d_min, max_candidates)


def random_positions_in_slabs(counts, box: np.ndarray, rng: np.random.Generator, d_min: float,
                              max_candidates: int | None = None) -> np.ndarray:
    """``counts[k]`` uniform random positions in the k-th of ``len(counts)`` equal slabs
    along x (slab k first), no two closer than ``d_min`` (minimum image, across slabs too):
    a box holding different densities side by side (the interface box of the kinetic
    scheme, a shock tube). One slab is :func:`random_positions`.

    Raises
    ------
    ConfigError
        When the atoms do not fit after ``max_candidates`` draws (default ``2000 N``).
    """
    box = np.asarray(box, dtype=float)
    counts = [int(c) for c in counts]
    n_atoms = sum(counts)
    nc = np.maximum((box / d_min).astype(np.int64), 1)  # cells at least d_min wide
    while int(np.prod(nc)) > max(27, 8 * n_atoms):
        nc = np.maximum(nc // 2, 1)
    heads = np.full(int(np.prod(nc)), -1, dtype=np.int64)
    nxt = np.full(n_atoms, -1, dtype=np.int64)
    placed = np.zeros((n_atoms, 3))
    n_placed, drawn = 0, 0
    limit = max_candidates if max_candidates is not None else 2000 * n_atoms
    width = 1.0 / len(counts)
    target = 0
    for k, count in enumerate(counts):
        target += count
        while n_placed < target:
            if drawn >= limit:
                rho = n_atoms / float(np.prod(box))
                raise ConfigError(f"initial placement: could not place {n_atoms} atoms at density {rho:g} "
                                  f"at least {d_min:g} apart; use the fcc lattice")
            cand = rng.random((max(1024, 2 * (target - n_placed)), 3))
            if len(counts) > 1:
                cand[:, 0] = k * width + width * cand[:, 0]
            n_placed = _place(cand, placed[:target], n_placed, box, d_min, heads, nxt, nc)
            drawn += cand.shape[0]
    return placed


def maxwell_boltzmann(n_atoms: int, temperature: float, rng: np.random.Generator,
                      mean_velocity=(0.0, 0.0, 0.0)) -> np.ndarray:
    r"""Velocities from the Maxwell-Boltzmann law, then made exact.

    Draws :math:`v \sim N(0, T)` per component (m = 1), removes the mean, scales the
    peculiar velocities so that their kinetic energy is exactly
    :math:`\tfrac{3}{2}(N-1)T` (the temperature with 3(N-1) degrees of freedom, see
    :mod:`hmmpar.micro.md.estimators`), and adds ``mean_velocity``.
    """
    v = rng.standard_normal((n_atoms, 3)) * math.sqrt(max(temperature, 0.0))
    v -= v.mean(axis=0)
    ke = 0.5 * float(np.sum(v * v))
    target = 1.5 * (n_atoms - 1) * temperature
    if ke > 0.0:
        v *= math.sqrt(target / ke)
    v += np.asarray(mean_velocity, dtype=float)
    return np.ascontiguousarray(v)
