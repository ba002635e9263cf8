"""Outputs of an SSA ensemble: statistics with standard errors, ``ssa.h5``, ``ssa.png``.

Layout of ``ssa.h5`` (docs/ssa.md, "Outputs")::

    /times                 (K+1,)              sample times, t_0 = 0 first
    /species               (n_species,)        species names (bytes)
    /trajectories          (n_traj, K+1, n_sp) int64, chunked by blocks of trajectories
    /mean, /variance       (K+1, n_sp)         ensemble mean and unbiased variance per species
    /observables/<name>/   for each selected observable (a species or a sum such as "S3 + S4"):
        values (n_traj, K+1) int64, mean, variance, se_mean, se_variance (K+1,),
        histogram/counts, histogram/edges   at the final time
    attributes: app, method, model, trajectories, ...

Standard errors: of the mean, s/√n; of the variance, √((m₄ − s⁴ (n−3)/(n−1))/n) with m₄
the fourth central moment (the large-sample variance of the unbiased sample variance).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

#: trajectories per HDF5 chunk of /trajectories
CHUNK_TRAJECTORIES = 256


def moments(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, unbiased variance and their standard errors over axis 0.

    Parameters
    ----------
    values
        (n, ...) samples; n >= 1.

    Returns
    -------
    dict with ``mean``, ``variance``, ``se_mean``, ``se_variance`` (shape ``values.shape[1:]``).
    With one sample the variance is 0 and both standard errors are NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    mean = v.mean(axis=0)
    if n < 2:
        nan = np.full(mean.shape, np.nan)
        return {"mean": mean, "variance": np.zeros(mean.shape), "se_mean": nan, "se_variance": nan}
    dev = v - mean
    var = (dev ** 2).sum(axis=0) / (n - 1)
    m4 = (dev ** 4).mean(axis=0)
    se_var = np.sqrt(np.maximum(m4 - var ** 2 * (n - 3) / (n - 1), 0.0) / n)
    return {"mean": mean, "variance": var, "se_mean": np.sqrt(var / n), "se_variance": se_var}


def integer_histogram(values: np.ndarray, max_bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of integer data: unit bins centred on the integers when the
    range allows at most ``max_bins`` of them, else ``max_bins`` equal integer-aligned bins."""
    v = np.asarray(values, dtype=np.int64)
    lo, hi = int(v.min()), int(v.max())
    width = max(1, math.ceil((hi - lo + 1) / max_bins))
    edges = lo - 0.5 + width * np.arange((hi - lo) // width + 2)
    counts, _ = np.histogram(v, bins=edges)
    return counts.astype(np.int64), edges


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def final_statistics(observables: Mapping[str, np.ndarray]) -> dict[str, dict[str, float | None]]:
    """Mean, variance and standard errors at the final sample of each observable (JSON-ready)."""
    out = {}
    for name, values in observables.items():
        m = moments(values[:, -1])
        out[name] = {k: _finite_or_none(float(m[k])) for k in ("mean", "se_mean", "variance", "se_variance")}
    return out


def write_h5(path: Path, times: np.ndarray, species: Sequence[str], trajectories: np.ndarray,
             observables: Mapping[str, np.ndarray], attrs: Mapping[str, object]) -> None:
    """Write ``ssa.h5`` (serial, on one rank)."""
    import h5py
    n, k1, ns = trajectories.shape
    stats = moments(trajectories)
    with h5py.File(path, "w") as f:
        f["times"] = times
        f["species"] = np.array([s.encode() for s in species])
        f.create_dataset("trajectories", data=trajectories,
                         chunks=(min(n, CHUNK_TRAJECTORIES), k1, ns))
        f["mean"], f["variance"] = stats["mean"], stats["variance"]
        f["se_mean"], f["se_variance"] = stats["se_mean"], stats["se_variance"]
        group = f.create_group("observables")
        for name, values in observables.items():
            g = group.create_group(name.replace("/", "_"))
            g.attrs["expression"] = name
            g.create_dataset("values", data=values, chunks=(min(n, CHUNK_TRAJECTORIES), k1))
            for key, arr in moments(values).items():
                g[key] = arr
            counts, edges = integer_histogram(values[:, -1])
            g["histogram/counts"], g["histogram/edges"] = counts, edges
        for key, value in attrs.items():
            f.attrs[key] = value


def plot(path: Path, times: np.ndarray, observables: Mapping[str, np.ndarray], title: str,
         max_rows: int = 4) -> None:
    """``ssa.png``: per observable (at most ``max_rows``), mean ± one standard deviation
    over time and the histogram at the final time."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(observables)[:max_rows]
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 2.8 * len(names) + 0.6), squeeze=False)
    for row, name in enumerate(names):
        values = observables[name]
        m = moments(values)
        sd = np.sqrt(m["variance"])
        ax = axes[row, 0]
        ax.fill_between(times, m["mean"] - sd, m["mean"] + sd, alpha=0.3, label="mean ± sd")
        ax.plot(times, m["mean"], "-", lw=1.5, label="mean")
        ax.set(xlabel="t", ylabel=name)
        if row == 0:
            ax.legend(loc="best", fontsize=8)
        counts, edges = integer_histogram(values[:, -1])
        ax = axes[row, 1]
        ax.stairs(counts, edges, fill=True, alpha=0.6)
        ax.set(xlabel=f"{name} at t = {times[-1]:g}", ylabel="trajectories")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
