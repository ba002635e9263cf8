#!/usr/bin/env python
r"""Superparametrization against a fully resolved run of the same equations (issue 13).

One problem, three models, one table:

* **reference**: the convection model (:mod:`hmmpar.micro.convection`) over the whole
  domain (width ``lx``, depth 1) at fine resolution, with the continuous bottom temperature
  :math:`T_b(x) = 1 - A\cos(2\pi x/l_x)`; run once, in this process (one core);
* **SP**: ``run.app = "superparam"`` (the coarse model with a convection box under every
  column, ``mpirun -n RANKS``);
* **coarse**: the same coarse model alone (``coupling.superparam = false``).

Compared, over the same time window (``average_from`` to ``t_end``, after the spin-up):

* the horizontally averaged temperature of every coarse cell (column x level);
* the total upward heat flux :math:`F = \langle wT\rangle - \partial_z\langle T\rangle`
  through the coarse faces, per column and averaged over the domain (the heat-flux profile),
  and its bottom value per column (the local Nusselt number).

The reference's column means are exact integrals of its Fourier--Chebyshev fields over
each coarse column's x-range (products on a twice finer grid, so free of aliasing) and
over each coarse cell (the exact cell averages of :mod:`hmmpar.apps.superparam_remap`);
the faces' values and slopes are its Chebyshev interpolant's. Samples are taken every
``sample_every``; their statistical error is estimated from 4 block means. The problem is
symmetric under :math:`x \to l_x - x`, so every model's statistics are averaged with their
mirror image (column j with column n - 1 - j) before comparing.

Costs are core-seconds (wall time x ranks) of the time stepping.

    .venv/bin/python benchmarks/superparam.py            # default, ~3 min on 2 cores
    .venv/bin/python benchmarks/superparam.py --quick    # smoke run (< 1 min)

Writes ``benchmarks/results/superparam.json`` and ``superparam.png`` (``superparam_quick.*``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmmpar.apps.superparam_remap import cell_average_matrix, interpolation_matrix  # noqa: E402
from hmmpar.micro.convection import ConvectionModel, ConvectionParams  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

DEFAULT = dict(ra=1e5, pr=1.0, walls="no-slip", amplitude=0.5, lx=32.0, ncol=8, nzm=8, dt=1e-3, box_aspect=1.0,
               box_nx=32, box_nz=25, ref_nx=1024, ref_nz=33, t_end=0.5, average_from=0.2, sample_every=1e-3,
               ranks=2, seed=2026)
QUICK = dict(DEFAULT, walls="free-slip", dt=2e-4, ra=2e4, lx=8.0, box_nx=16, box_nz=19, ref_nx=128, ref_nz=19, t_end=0.02, average_from=0.01,
             sample_every=1e-3)


# ---------------------------------------------------------------------- the reference
def column_average_operator(n: int, lx: float, ncol: int) -> np.ndarray:
    r"""The (ncol, n) matrix of exact averages over the columns :math:`[jl_x/n_c, (j+1)l_x/n_c]`
    of the trigonometric interpolant of values at :math:`x_i = i\,l_x/n`:
    :math:`\bar f_j = \sum_k c_k\,(e^{ikb} - e^{ika})/(ik(b - a))` (:math:`c_0` for k = 0),
    with :math:`c_k` the forward-normalised coefficients (the Nyquist mode dropped)."""
    c = np.fft.rfft(np.eye(n), axis=0) / n  # (n//2 + 1, n): coefficient k of unit vector i
    c[-1] = 0.0 if n % 2 == 0 else c[-1]
    k = 2.0 * np.pi / lx * np.arange(c.shape[0])
    width = lx / ncol
    out = np.empty((ncol, n))
    for j in range(ncol):
        a, b = j * width, (j + 1) * width
        g = np.empty(k.size, dtype=complex)
        g[0] = 1.0
        g[1:] = (np.exp(1j * k[1:] * b) - np.exp(1j * k[1:] * a)) / (1j * k[1:] * width)
        out[j] = (c[0] * g[0]).real + 2.0 * (c[1:] * g[1:, None]).real.sum(axis=0)
    return out


def finer(f: np.ndarray) -> np.ndarray:
    """Values on the x grid twice as fine (trigonometric interpolation along the last axis)."""
    n = f.shape[-1]
    return 2.0 * np.fft.irfft(np.fft.rfft(f, axis=-1), n=2 * n, axis=-1)


def reference(c: dict, log=print) -> dict:
    """The resolved run: time means of the coarse-cell temperatures and face heat fluxes."""
    p = ConvectionParams(ra=c["ra"], pr=c["pr"], aspect=c["lx"], nx=c["ref_nx"], nz=c["ref_nz"], walls=c["walls"])
    m = ConvectionModel(p)
    bottom = 1.0 - c["amplitude"] * np.cos(2.0 * np.pi * m.x / c["lx"])
    states = m.initial_states([np.random.default_rng(c["seed"])], amplitude=1e-2, bottom=bottom[None])
    edges = np.linspace(0.0, 1.0, c["nzm"] + 1)
    cells = cell_average_matrix(m.z, edges)                   # (nzm, nz)
    at, slope = interpolation_matrix(m.z, edges), interpolation_matrix(m.z, edges, derivative=1)
    cols = column_average_operator(p.nx, c["lx"], c["ncol"])  # (ncol, nx)
    cols2 = column_average_operator(2 * p.nx, c["lx"], c["ncol"])
    m.advance(states, 1e-6)                                    # compile (numba cache), build the inverses
    states = m.initial_states([np.random.default_rng(c["seed"])], amplitude=1e-2, bottom=bottom[None])
    n_samples = int(round(c["t_end"] / c["sample_every"]))
    first = int(round(c["average_from"] / c["sample_every"]))
    Ts, Fs = [], []
    steps, t0, wall_sampling = 0, time.perf_counter(), 0.0
    for i in range(n_samples):
        d = m.advance(states, c["sample_every"])
        steps += int(d["steps"][0])
        if i + 1 > first:
            s0 = time.perf_counter()
            f = m.fields(states)
            T, w = f["T"][0], f["w"][0]                       # (nz, nx)
            Tcol = T @ cols.T                                  # (nz, ncol)
            wTcol = (finer(w) * finer(T)) @ cols2.T
            Ts.append((cells @ Tcol).T)                        # (ncol, nzm)
            Fs.append((at @ wTcol - slope @ Tcol).T)           # (ncol, nzm + 1)
            wall_sampling += time.perf_counter() - s0
        if (i + 1) % max(1, n_samples // 10) == 0:
            log(f"  reference t = {states['t'][0]:.4f}: {steps} steps, Nu_bottom {d['nu_bottom'][0]:.3f}, "
                f"Vrms {d['vrms'][0]:.1f}, {time.perf_counter() - t0:.0f} s")
    wall = time.perf_counter() - t0 - wall_sampling
    Ts, Fs = np.array(Ts), np.array(Fs)
    blocks = np.array_split(np.arange(len(Ts)), 4)
    bT = np.array([symmetric(Ts[b].mean(axis=0)) for b in blocks])
    bF = np.array([symmetric(Fs[b].mean(axis=0)) for b in blocks])
    return {"column_T": symmetric(Ts.mean(axis=0)), "heat_flux": symmetric(Fs.mean(axis=0)),
            "se_T": bT.std(axis=0, ddof=1) / 2.0, "se_F": bF.std(axis=0, ddof=1) / 2.0,
            "samples": len(Ts), "steps": steps, "core_seconds": wall, "grid": [p.nx, p.nz]}


def symmetric(a: np.ndarray) -> np.ndarray:
    """The mean of column statistics (ncol, ...) and their mirror image x -> lx - x."""
    return 0.5 * (a + a[::-1])


# ---------------------------------------------------------------------- the coarse runs
def coarse_run(c: dict, superparam: bool, workdir: Path, log=print) -> dict:
    out = workdir / ("sp" if superparam else "coarse")
    sets = {"model.ra": c["ra"], "model.pr": c["pr"], "model.walls": f'"{c["walls"]}"',
            "model.bottom_amplitude": c["amplitude"],
            "macro.lx": c["lx"], "macro.nx": c["ncol"], "macro.nz": c["nzm"], "macro.dt": c["dt"],
            "macro.t_end": c["t_end"], "micro.aspect": c["box_aspect"], "micro.nx": c["box_nx"],
            "micro.nz": c["box_nz"], "coupling.superparam": "true" if superparam else "false",
            "output.average_from": c["average_from"], "output.plots": "false", "run.seed": c["seed"],
            "checkpoint.every_steps": 0, "run.output_dir": f'"{out}"'}
    args = ["mpirun", "--oversubscribe", "-n", str(c["ranks"]), sys.executable, str(ROOT / "drivers/superparam.py")]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for key in list(env):  # launched from inside an MPI process (a singleton): not its job
        if key.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_ess", "OMPI_MCA_orte_ess")):
            env.pop(key)
    log(f"  {'SP' if superparam else 'coarse alone'}: drivers/superparam.py on {c['ranks']} ranks, to t = {c['t_end']:g}")
    p = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=c.get("timeout", 3600))
    if p.returncode != 0:
        raise RuntimeError(f"{'SP' if superparam else 'coarse'} run failed (exit {p.returncode}):\n"
                           f"{p.stderr[-3000:]}\n{p.stdout[-2000:]}")
    s = json.loads((out / "summary.json").read_text())
    timing = json.loads((out / "timing.json").read_text())
    a = s["averages"]
    return {"column_T": symmetric(np.array(a["column_T"])), "heat_flux": symmetric(np.array(a["heat_flux"])),
            "samples": a["samples"], "micro_substeps": s["micro_substeps"],
            # the time stepping (the runner's farm loop), without the start-up, as for the reference
            "core_seconds": timing["phases"]["farm_total"]["max"] * c["ranks"], "wall_seconds": timing["wall_seconds"],
            "heat_exchange_defect_max": s["heat_exchange_defect_max"]}


# ---------------------------------------------------------------------- compare
def errors(model: dict, ref: dict) -> dict:
    dT = model["column_T"] - ref["column_T"]
    dF = model["heat_flux"] - ref["heat_flux"]
    dmean = dF.mean(axis=0)
    return {"T_rms": float(np.sqrt((dT ** 2).mean())), "T_max": float(np.abs(dT).max()),
            "F_rms": float(np.sqrt((dF ** 2).mean())),
            "mean_F_rms": float(np.sqrt((dmean ** 2).mean())),
            "nusselt_bottom_rms": float(np.sqrt((dF[:, 0] ** 2).mean()))}


def plot(path: Path, c: dict, runs: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    z = (np.arange(c["nzm"]) + 0.5) / c["nzm"]
    zf = np.arange(c["nzm"] + 1) / c["nzm"]
    x = (np.arange(c["ncol"]) + 0.5) * c["lx"] / c["ncol"]
    style = {"reference": ("k", "-"), "SP": ("C3", "--"), "coarse alone": ("C0", ":")}
    fig, ax = plt.subplots(1, 4, figsize=(17, 4.2))
    for j, col in enumerate(sorted({0, c["ncol"] // 4, c["ncol"] // 2 - 1})):
        for name, r in runs.items():
            ax[0].plot(r["column_T"][col], z, color=f"C{j}", ls=style[name][1],
                       label=f"{name}, column {col}" if True else None)
    ax[0].set(xlabel="time-mean T", ylabel="z", title="column temperature")
    ax[0].legend(fontsize=6)
    for name, r in runs.items():
        ax[1].plot(r["heat_flux"].mean(axis=0), zf, color=style[name][0], ls=style[name][1], marker="o", ms=3,
                   label=name)
        ax[2].plot(x, r["heat_flux"][:, 0], color=style[name][0], ls=style[name][1], marker="o", ms=3, label=name)
    ax[1].set(xlabel="domain-mean heat flux F = <wT> - d<T>/dz", ylabel="z", title="heat-flux profile")
    ax[1].legend(fontsize=8)
    ax[2].set(xlabel="x (column centre)", ylabel="bottom heat flux", title="bottom heat flux per column")
    ax[2].legend(fontsize=8)
    names = [n for n in runs if n != "reference"]
    ax[3].bar([0, 1, 2], [runs["reference"]["core_seconds"]] + [runs[n]["core_seconds"] for n in names],
              color=["k"] + [style[n][0] for n in names])
    ax[3].set_xticks([0, 1, 2], ["reference"] + names)
    ax[3].set(ylabel="core-seconds", title="cost")
    fig.suptitle(f"superparametrization vs a resolved run: Ra = {c['ra']:g}, Pr = {c['pr']:g}, {c['walls']} walls, "
                 f"T_b = 1 - {c['amplitude']} cos(2 pi x / {c['lx']:g}), {c['ncol']} x {c['nzm']} coarse cells, "
                 f"means over t in [{c['average_from']:g}, {c['t_end']:g}]", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (small grids, short)")
    ap.add_argument("--ranks", type=int, default=None, help="MPI ranks of the coarse runs (default 2)")
    ap.add_argument("--amplitude", type=float, default=None,
                    help="A of the bottom temperature 1 - A cos(2 pi x / lx) (default 0.5); the files get a suffix")
    ap.add_argument("--walls", choices=("free-slip", "no-slip"), default=None,
                    help="the walls of all three models (default no-slip); the files get a suffix")
    ap.add_argument("--lx", type=float, default=None,
                    help="domain width (default 32; the reference keeps 32 points per unit width); the files get a "
                         "suffix")
    ap.add_argument("--dt", type=float, default=None,
                    help="the macro step of SP and the coarse model (default 1e-3); the files get a suffix")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and PNG go")
    args = ap.parse_args(argv)
    c = dict(QUICK if args.quick else DEFAULT)
    if args.ranks:
        c["ranks"] = args.ranks
    tag = "superparam_quick" if args.quick else "superparam"
    if args.amplitude is not None:
        if not 0.0 <= args.amplitude <= 1.0:
            ap.error(f"--amplitude {args.amplitude}: must lie in [0, 1]")
        c["amplitude"] = args.amplitude
    if args.lx is not None:
        if not (args.lx > 0 and (args.lx * c["ref_nx"] / c["lx"]) % 2 == 0):
            ap.error(f"--lx {args.lx:g}: must be positive and give an even reference grid ({c['ref_nx']} per "
                     f"{c['lx']:g})")
        c["ref_nx"] = int(round(args.lx * c["ref_nx"] / c["lx"]))
        c["lx"] = args.lx
    if args.dt is not None:
        if not args.dt > 0:
            ap.error(f"--dt {args.dt:g}: must be positive")
        c["dt"] = args.dt
    if args.walls is not None:
        c["walls"] = args.walls
    base = QUICK if args.quick else DEFAULT
    tag += "".join(f"_{label}{c[key]:g}" if isinstance(c[key], float) else f"_{c[key]}"
                   for key, label in (("amplitude", "A"), ("walls", ""), ("lx", "lx"), ("dt", "dt"))
                   if c[key] != base[key])
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"superparametrization benchmark ({'quick' if args.quick else 'default'}): {json.dumps(c)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hmmpar-sp-bench-") as tmp:
        work = Path(tmp)
        runs = {"SP": coarse_run(c, True, work), "coarse alone": coarse_run(c, False, work)}
        print("  reference:", flush=True)
        runs = {"reference": reference(c, log=lambda s: print(s, flush=True)), **runs}
    ref = runs["reference"]
    err = {name: errors(r, ref) for name, r in runs.items() if name != "reference"}
    gap = {key: 1.0 - err["SP"][key] / err["coarse alone"][key] if err["coarse alone"][key] > 0 else None
           for key in err["SP"]}
    table = []
    for key, label in (("T_rms", "column T, rms over cells"), ("mean_F_rms", "domain-mean heat flux F(z), rms"),
                       ("nusselt_bottom_rms", "bottom heat flux per column, rms"),
                       ("F_rms", "heat flux per column and face, rms")):
        table.append({"quantity": label, "coarse_alone": err["coarse alone"][key], "SP": err["SP"][key],
                      "gap_closed": gap[key]})
    table.append({"quantity": "cost (core-seconds)", "reference": ref["core_seconds"],
                  "coarse_alone": runs["coarse alone"]["core_seconds"], "SP": runs["SP"]["core_seconds"],
                  "SP_over_reference": runs["SP"]["core_seconds"] / ref["core_seconds"]})
    result = {
        "benchmark": "superparam", "config": c, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                            "platform": platform.platform()},
        "command": " ".join([".venv/bin/python", "benchmarks/superparam.py"] + (["--quick"] if args.quick else [])
                            + ([f"--amplitude {args.amplitude:g}"] if args.amplitude is not None else [])
                            + ([f"--walls {args.walls}"] if args.walls is not None else [])
                            + ([f"--lx {args.lx:g}"] if args.lx is not None else [])
                            + ([f"--dt {args.dt:g}"] if args.dt is not None else [])),
        "reference_statistical_error": {"T_rms_se": float(np.sqrt((ref["se_T"] ** 2).mean())),
                                        "F_rms_se": float(np.sqrt((ref["se_F"] ** 2).mean()))},
        "errors": err, "gap_closed": gap, "table": table,
        "runs": {name: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                 for name, r in runs.items()},
        "aims": {"SP closes most of the gap in T (gap_closed > 0.5)": bool((gap["T_rms"] or 0) > 0.5),
                 "SP closes most of the gap in the heat-flux profile": bool((gap["mean_F_rms"] or 0) > 0.5),
                 "SP costs less than the reference": bool(runs["SP"]["core_seconds"] < ref["core_seconds"])},
    }
    (args.out / f"{tag}.json").write_text(json.dumps(result, indent=1))
    plot(args.out / f"{tag}.png", c, runs)
    print(f"\n{'quantity':40s} {'coarse alone':>13s} {'SP':>10s} {'gap closed':>11s}")
    for row in table[:-1]:
        print(f"{row['quantity']:40s} {row['coarse_alone']:13.4g} {row['SP']:10.4g} {row['gap_closed']:11.2f}")
    r = table[-1]
    print(f"cost, core-seconds: reference {r['reference']:.1f}, SP {r['SP']:.1f} ({r['SP_over_reference']:.2f} of "
          f"it), coarse alone {r['coarse_alone']:.1f}")
    print(f"reference's statistical error (rms se of the block means): T {result['reference_statistical_error']}")
    print(f"aims: {result['aims']}")
    print(f"wrote {args.out / (tag + '.json')} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
