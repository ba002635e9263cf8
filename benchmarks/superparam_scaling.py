#!/usr/bin/env python
r"""Superparametrization: convection columns per second per core, and strong scaling.

This is a benchmark, not a test: it always exits 0 and only *reports* whether the aims
were met. Run it without ``mpirun``; the script is its own driver::

    .venv/bin/python benchmarks/superparam_scaling.py            # default (~6 min on 2 cores), emulated to 64 ranks
    .venv/bin/python benchmarks/superparam_scaling.py --quick    # < 2 min, emulated to 16 ranks

It writes ``benchmarks/results/superparam_scaling.json`` and ``.png`` (``_quick``, ``_tiny``
for the other modes; ``--tiny`` is the smoke test's mode, seconds).

Part 1, "batching" (one process, ``OMP/OPENBLAS_NUM_THREADS=1``): the micro model alone,
    :class:`~hmmpar.micro.convection.ConvectionModel` at Ra = 1e5, Pr = 1, width 1, free
    slip, bottom temperature, on the superparametrization demo's box grid (32 x 25,
    ``drivers/configs/superparam.toml``) and on 64 x 33. One column is spun up from
    amplitude 0.1 to a convecting state (t = 0.035, vrms about 100; quick 0.03) and copied
    into batches of 1, 2, 4, 8, 16, 32 columns; each batch advances ``steps`` fixed steps
    (``dt_max`` below the CFL limit, halved until every column takes the same steps),
    best of 5 (quick 3). Column-steps per second per core, and its ratio to 1 column per
    batch. Also the coarse model's Poisson solve alone on one process (set-up and one
    solve), ``redundant`` (the sequential LU every rank runs) against ``distributed``
    (CG + GAMG), for 256 to 4096 columns.
Part 2, "real" (``mpirun -n 2``): the superparam app by :func:`hmmpar.core.runner.run` on
    the demo config with 32 columns (``macro.nx = 32``, ``macro.lx = 32``: boxes of width 1),
    20 coupling steps, rebalancing and a checkpoint every 10 steps; p = 1 (rank 1 waits in a
    sleeping ``Ibarrier``) and p = 2 on a sub-communicator, after a warm-up, best of
    ``--repeats``. :meth:`ConvectionModel.advance` is wrapped (two clock reads per call)
    to measure its seconds per column and coupling step: the *calibration* of part 3.
    One more 2-rank run with ``macro.poisson = "distributed"``.
Part 3, "emulated" (one ``mpirun --oversubscribe -n P``, P = 64; quick 16): 256 columns
    (quick 128), 4 coupling steps, rebalancing and a checkpoint every 2 steps, p = 1, 2,
    4, ..., P on the first p ranks (the others sleep in an ``Ibarrier``). In the worker
    processes only, ``ConvectionModel.advance`` is replaced by a sleep of ``n_columns x c``
    seconds (to an absolute deadline), where ``c`` is the calibrated advance cost per
    column times a scale factor chosen so that each rank sleeps ``--sleep-per-step``
    seconds (0.3; quick 0.1) per coupling step at p = P: 64 processes on 2 cores must not
    be CPU bound. The replaced ``advance`` leaves the box unchanged (its mean temperature
    profile is read from the state's k = 0 Fourier mode, exact) and reports the calibrated
    sub-steps. Everything else is real: the coarse model's step and its Poisson solve,
    the box profiles and forcing (``ConvectionModel.profiles``, real CPU work), the
    pool's ``from_layout``/``to_layout`` ``Alltoallv``, the error ``allgather``, the
    rebalancing, the HDF5 checkpoints of the coarse fields and every box, the output.
    The box operators (``ConvectionModel(params)``: 0.2 s of matrix inverses per
    process) are built once per process before the runs and reused, so that 64 processes
    building them at once on 2 cores are not timed as set-up. ``macro.poisson =
    "redundant"`` (every rank factorises and solves the whole coarse Poisson problem with a
    sequential LU: the default, bitwise on any rank count, and on one process 100-2000x
    faster than the distributed CG + GAMG solve at these sizes; see part 1). CPU use of
    every run is recorded (cores busy = CPU seconds of our processes / wall, foreign =
    the rest of the machine's busy cores; together near 2 = CPU bound).

Efficiency: strong T1 / (p Tp), T = ``wall_seconds`` of the run's ``timing.json`` (the whole
``run()``: set-up, steps, checkpoints, output); also the "loop" efficiency from the
stepping alone (``farm_total``, the max over ranks of the time in ``app.advance``). Time
breakdown: the per-rank *maximum* of each ``timing.json`` phase (``macro_solve``: the
coarse step and the tendency; ``micro``: the box batch; ``farm_comm``: the pool's
Alltoallv/Gatherv; ``idle``: waiting in the step's error allgather; ``io``: checkpoints and
output) and ``other`` = wall - their sum (set-up, the allreduces of the coupling).

Aims (JSON ``"aims"``): real 2-rank strong efficiency >= 0.9; emulated strong efficiency at
64 ranks (quick 16) >= 0.8.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_usage import own_cpu, system_busy  # noqa: E402
from json_worker import emit, idle_wait, run_json_worker, self_launching_main  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONFIG = REPO / "drivers" / "configs" / "superparam.toml"
JSON_TAG = "SPSCALE_JSON "
PHASES = ("macro_solve", "micro", "farm_comm", "idle", "io")
DT = 2e-4  # the coupling step (macro.dt) of the scaling runs
AIM_REAL_EFF = 0.9
AIM_EMU_EFF = 0.8

#: Per mode: batching grids (nx, nz, fixed dt, steps), batch sizes, repeats; real and
#: emulated problem sizes (columns, coupling steps, rebalance/checkpoint period), ranks.
MODES: dict[str, dict] = {
    "default": {"grids": [(32, 25, 2e-5, 20), (64, 33, 1e-5, 10)], "batches": [1, 2, 4, 8, 16, 32],
                "spinup": 0.035, "batch_repeats": 5, "real_columns": 32, "real_steps": 20, "real_every": 10,
                "repeats": 3, "emu_columns": 256, "emu_steps": 4, "emu_every": 2, "max_ranks": 64,
                "sleep_per_step": 0.3, "poisson_grids": [(256, 8), (1024, 8), (4096, 8), (1024, 32)]},
    "quick": {"grids": [(32, 25, 2e-5, 10), (64, 33, 1e-5, 5)], "batches": [1, 2, 4, 8, 16, 32],
              "spinup": 0.03, "batch_repeats": 3, "real_columns": 32, "real_steps": 10, "real_every": 5,
              "repeats": 1, "emu_columns": 128, "emu_steps": 4, "emu_every": 2, "max_ranks": 16,
              "sleep_per_step": 0.1, "poisson_grids": [(256, 8), (1024, 8)]},
    "tiny": {"grids": [(32, 25, 2e-5, 3)], "batches": [1, 2, 4], "spinup": 0.0, "batch_repeats": 1,
             "real_columns": 8, "real_steps": 4, "real_every": 2, "repeats": 1, "emu_columns": 16,
             "emu_steps": 2, "emu_every": 1, "max_ranks": 4, "sleep_per_step": 0.02,
             "poisson_grids": [(64, 8)]},
}


# ---------------------------------------------------------------------- problems
def overrides(columns: int, steps: int, every: int, poisson: str = "redundant") -> list[str]:
    """Config overrides (of drivers/configs/superparam.toml) of one scaling run.

    Parameters
    ----------
    columns
        Coarse columns ``macro.nx``; ``macro.lx`` is set to the same number so that each
        box (``micro.aspect = 1``) is exactly one column wide. Free-slip walls and
        ``macro.dt = 2e-4`` (the demo's settings when these runs were first measured; the
        demo is now the no-slip problem of benchmarks/superparam.py), no time averages.
    steps
        Coupling steps (``macro.t_end = steps * macro.dt``).
    every
        ``coupling.rebalance_every`` and ``checkpoint.every_steps``.
    poisson
        ``macro.poisson``.
    """
    return [f"macro.nx={columns}", f"macro.lx={float(columns)}", f"macro.dt={DT!r}", f"macro.t_end={steps * DT!r}",
            "model.walls=free-slip", "output.average_from=0",
            f"coupling.rebalance_every={every}", f"checkpoint.every_steps={every}", f'macro.poisson="{poisson}"',
            "output.plots=false", "output.snapshot_every=0", "run.progress_interval=1e9"]


# ---------------------------------------------------------------------- part 1: batching
def micro_params(nx: int, nz: int, dt_max: float | None):
    """The demo's box parameters (Ra 1e5, Pr 1, width 1, free slip) on an nx x nz grid."""
    from hmmpar.micro.convection import ConvectionParams
    return ConvectionParams(ra=1e5, pr=1.0, aspect=1.0, nx=nx, nz=nz, walls="free-slip", bottom="temperature",
                            cfl=0.5, dt_max=dt_max)


def batching_grid(nx: int, nz: int, dt: float, steps: int, batches: list[int], spinup: float,
                  repeats: int) -> dict:
    """Column-steps per second of batches of convecting columns on one grid.

    Parameters
    ----------
    nx, nz
        Box grid (Fourier points, Chebyshev points).
    dt
        Fixed step (``dt_max``); halved until every column takes exactly ``steps`` steps.
    steps
        Steps per timed ``advance``.
    batches
        Columns per batch.
    spinup
        Time the seed column is advanced from amplitude 0.1 before the copies are made.
    repeats
        Timed repeats per batch size; the best counts.

    Returns
    -------
    dict
        ``grid``, ``dt``, ``steps``, ``spinup_vrms`` and one row per batch size with
        ``seconds`` (best), ``column_steps_per_s`` and ``ratio`` (to 1 column per batch).
    """
    from hmmpar.micro.convection import ConvectionModel
    model = ConvectionModel(micro_params(nx, nz, dt))
    seed = model.initial_states([np.random.default_rng(2026)], amplitude=0.1)
    vrms = 0.0
    if spinup > 0:  # CFL-limited steps to a convecting state (vrms ~ 100 at t = 0.035)
        vrms = float(ConvectionModel(micro_params(nx, nz, None)).advance(seed, spinup)["vrms"][0])
    rows = []
    for n in batches:
        while True:
            st = np.repeat(seed, n)
            model.advance(st, dt)  # warm (compiled kernels, batch-size caches)
            best = math.inf
            ok = True
            for _ in range(repeats):
                t0 = time.perf_counter()
                d = model.advance(st, steps * dt)
                best = min(best, time.perf_counter() - t0)
                ok = ok and bool((d["steps"] == steps).all())
            if ok:
                break
            dt *= 0.5  # the CFL limit bound: a smaller fixed step, and all batch sizes again
            model = ConvectionModel(micro_params(nx, nz, dt))
            rows = []
        rows.append({"columns": n, "seconds": best, "column_steps_per_s": n * steps / best})
    base = rows[0]["column_steps_per_s"]
    for r in rows:
        r["ratio"] = r["column_steps_per_s"] / base
    return {"grid": [nx, nz], "dt": dt, "steps": steps, "spinup_time": spinup, "spinup_vrms": vrms, "rows": rows}


def poisson_cost(nx: int, nz: int, poisson: str, repeats: int = 3) -> dict:
    """Set-up and best solve seconds of the coarse model's Poisson problem on one process.

    Parameters
    ----------
    nx, nz
        Coarse grid (columns, cells per column).
    poisson
        ``"redundant"`` (sequential LU, what every rank does) or ``"distributed"`` (CG + GAMG).
    repeats
        Timed solves of one random right-hand side; the best counts.
    """
    from mpi4py import MPI
    from hmmpar.macro.boussinesq import BoussinesqParams, CoarseBoussinesq
    t0 = time.perf_counter()
    m = CoarseBoussinesq(MPI.COMM_SELF, BoussinesqParams(ra=1e5, pr=1.0, lx=float(nx), nx=nx, nz=nz,
                                                         poisson=poisson))
    m.initialize()
    setup = time.perf_counter() - t0
    f = np.random.default_rng(0).standard_normal((nx, nz))
    m.solve_poisson(f)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        m.solve_poisson(f)
        best = min(best, time.perf_counter() - t0)
    m.destroy()
    return {"grid": [nx, nz], "poisson": poisson, "setup_seconds": setup, "solve_seconds": best}


def worker_batch(args) -> dict:
    """Part 1 in this (single, one-thread) process, and the serial Poisson solve costs."""
    m = MODES[args.mode]
    out: dict = {"grids": [], "poisson": []}
    for nx, nz in m["poisson_grids"]:
        for poisson in ("redundant", "distributed"):
            out["poisson"].append(poisson_cost(nx, nz, poisson))
    for nx, nz, dt, steps in m["grids"]:
        out["grids"].append(batching_grid(nx, nz, dt, steps, m["batches"], m["spinup"], m["batch_repeats"]))
        g = out["grids"][-1]
        print(f"    {nx}x{nz}: " + ", ".join(f"{r['columns']}: {r['column_steps_per_s']:.0f}/s"
                                             for r in g["rows"]), file=sys.stderr, flush=True)
    return out


# ---------------------------------------------------------------------- MPI helpers
def _emit(result: dict) -> None:
    emit(JSON_TAG, result)


def _idle_wait(comm, pause: float = 0.01) -> None:
    idle_wait(comm, pause)


def _import_all() -> None:
    """Import on every rank (PetscInitialize is collective on COMM_WORLD)."""
    import petsc4py.PETSc  # noqa: F401
    import h5py  # noqa: F401
    import hmmpar.apps.superparam  # noqa: F401
    import hmmpar.macro.boussinesq  # noqa: F401
    import hmmpar.micro.convection  # noqa: F401


def _run_on(world, p: int, over: list[str], outdir: Path) -> dict | None:
    """:func:`hmmpar.core.runner.run` of the superparam config on the first p ranks of
    world; the timing report (and the CPU use of all world ranks) on world rank 0."""
    from mpi4py import MPI
    from hmmpar.core.config import load_config
    from hmmpar.core.log import RankLog
    from hmmpar.core.runner import run
    sub = world.Split(0 if world.rank < p else MPI.UNDEFINED, world.rank)
    _idle_wait(world)
    busy0 = system_busy() if world.rank == 0 else 0.0
    cpu0 = own_cpu()
    t0 = time.perf_counter()
    error = None
    summary = None
    if sub != MPI.COMM_NULL:
        try:
            cfg = load_config(CONFIG, [f'run.output_dir="{outdir}"', *over])
            summary = run(cfg, sub, log=RankLog(sub, quiet=True))
        except Exception as exc:  # noqa: BLE001 - reported, the benchmark goes on
            error = repr(exc)
        sub.Free()
    _idle_wait(world)
    dt = time.perf_counter() - t0
    cpu = world.gather(own_cpu() - cpu0, root=0)
    errors = world.gather(error, root=0)
    if world.rank != 0:
        return None
    errors = [e for e in errors if e]
    if errors:
        return {"p": p, "error": errors[0]}
    timing = json.loads((outdir / "timing.json").read_text())
    ph = timing["phases"]
    pmax = {k: ph[k]["max"] for k in ph}
    return {"p": p, "wall": timing["wall_seconds"], "outer_wall": dt, "loop": pmax.get("farm_total", 0.0),
            "phases_max": pmax, "phases_mean": {k: ph[k]["mean"] for k in ph},
            "other": max(0.0, timing["wall_seconds"] - sum(pmax.get(k, 0.0) for k in PHASES)),
            "checkpoint": timing.get("checkpoint", {}), "columns_per_rank": timing["farm"]["tasks_per_rank"],
            "load_imbalance": timing["farm"]["load_imbalance"],
            "rebalance": (summary or {}).get("rebalance"), "micro_substeps": (summary or {}).get("micro_substeps"),
            "cpu_seconds": sum(cpu), "cores_busy": sum(cpu) / dt,
            "foreign_cores": max(0.0, system_busy() - busy0 - sum(cpu)) / dt}


# ---------------------------------------------------------------------- advance wrappers
_CAL = {"seconds": 0.0, "columns": 0, "calls": 0, "substeps": 0}


def install_timing() -> None:
    """Wrap ConvectionModel.advance to add up its seconds, columns and sub-steps (calibration)."""
    from hmmpar.micro.convection.model import ConvectionModel
    orig = ConvectionModel.advance

    def timed(self, states, duration, *a, **kw):
        t0 = time.perf_counter()
        d = orig(self, states, duration, *a, **kw)
        _CAL["seconds"] += time.perf_counter() - t0
        _CAL["columns"] += len(states)
        _CAL["calls"] += 1
        _CAL["substeps"] += int(d["steps"].sum())
        return d
    ConvectionModel.advance = timed


def install_emulation(column_seconds: float, substeps: int) -> None:
    """Replace ConvectionModel.advance by a sleep of ``len(states) * column_seconds``.

    The box is left as it is (time and step counters advanced); the diagnostics report
    ``substeps`` sub-steps per column and the box's current mean temperature profile (the
    k = 0 Fourier mode of T, which is what :meth:`ConvectionModel.profiles` returns).
    """
    from hmmpar.micro.convection.model import ConvectionModel  # the class, also under install_model_cache

    def emulated(self, states, duration, forcing_T=None, forcing_U=None, bottom=None):
        t_end = time.perf_counter() + len(states) * column_seconds
        while True:  # sleep to an absolute deadline (oversleeping is not repeated)
            left = t_end - time.perf_counter()
            if left <= 0:
                break
            time.sleep(left)
        diag = np.zeros(len(states), dtype=self.diag_dtype)
        states["t"] += duration
        states["steps"] += substeps
        diag["t"] = states["t"]
        diag["steps"] = substeps
        diag["dt"] = duration / substeps
        diag["mean_T"] = states["T"][:, :, 0].real
        return diag
    ConvectionModel.advance = emulated


def install_model_cache() -> None:
    """Build each set of box operators once per process (Superparam looks the class up in
    :mod:`hmmpar.micro.convection` when it is created)."""
    import hmmpar.micro.convection as conv
    cls = conv.ConvectionModel
    cache: dict = {}

    def cached(params):
        if params not in cache:
            cache[params] = cls(params)
        return cache[params]
    conv.ConvectionModel = cached


# ---------------------------------------------------------------------- workers
def worker_real(args) -> dict | None:
    """Part 2: p = 1 and 2, best of repeats; the calibration from the 1-rank runs."""
    from mpi4py import MPI
    _import_all()
    world = MPI.COMM_WORLD
    m = MODES[args.mode]
    tmp = Path(args.tmp)
    over = overrides(m["real_columns"], m["real_steps"], m["real_every"])
    install_timing()
    for p in (1, 2):  # warm-up: numba, PETSc, h5py on both communicators
        _run_on(world, p, overrides(m["real_columns"], 1, 1), tmp / f"warm{p}")
    out: dict = {"columns": m["real_columns"], "steps": m["real_steps"], "overrides": over, "runs": []}
    d = _run_on(world, 2, overrides(m["real_columns"], m["real_steps"], m["real_every"], "distributed"),
                tmp / "real2_distributed")  # the distributed Poisson solve on the same problem, once
    if d is not None:
        d["poisson"] = "distributed"
        out["distributed"] = d
    for p in (1, 2):
        best = None
        cal_best = None
        for rep in range(m["repeats"]):
            for k in _CAL:
                _CAL[k] = 0
            r = _run_on(world, p, over, tmp / f"real{p}_{rep}")
            if world.rank == 0 and r and "wall" in r and (best is None or r["wall"] < best["wall"]):
                best, cal_best = r, dict(_CAL)
        if world.rank == 0:
            best = best or {"p": p, "error": "no run"}
            out["runs"].append(best)
            if p == 1 and cal_best and cal_best["columns"]:
                out["calibration"] = {
                    "advance_seconds": cal_best["seconds"], "column_calls": cal_best["columns"],
                    "calls": cal_best["calls"], "substeps": cal_best["substeps"],
                    "column_seconds": cal_best["seconds"] / cal_best["columns"],
                    "substeps_per_column_call": cal_best["substeps"] / cal_best["columns"],
                    "advance_share_of_micro": cal_best["seconds"] / max(best["phases_max"].get("micro", 0.0), 1e-300)}
    return out if world.rank == 0 else None


def worker_emu(args) -> dict | None:
    """Part 3: p = 1, 2, 4, ..., world size with the emulated advance."""
    from mpi4py import MPI
    _import_all()
    world = MPI.COMM_WORLD
    m = MODES[args.mode]
    tmp = Path(args.tmp)
    P = world.size
    cal = json.loads(Path(args.calibration).read_text())
    ncol, steps, every = m["emu_columns"], m["emu_steps"], m["emu_every"]
    per_col = args.sleep_per_step * P / ncol  # each rank sleeps sleep_per_step per step at p = P
    substeps = max(1, int(round(cal["substeps_per_column_call"])))
    install_emulation(per_col, substeps)
    install_model_cache()
    import hmmpar.micro.convection as conv
    conv.ConvectionModel(micro_params(32, 25, None))  # the box operators, once per process, untimed
    world.Barrier()
    _run_on(world, P, overrides(ncol, 1, 1), tmp / "ewarm")  # warm-up on every rank
    res: dict = {"columns": ncol, "steps": steps, "overrides": overrides(ncol, steps, every),
                 "column_seconds_measured": cal["column_seconds"], "column_seconds_emulated": per_col,
                 "scale": per_col / cal["column_seconds"], "substeps_per_column_call": substeps,
                 "sleep_per_step_at_P": args.sleep_per_step, "runs": []}
    ps = [p for p in (1, 2, 4, 8, 16, 32, 64, 128) if p <= P]
    for p in ps:
        d = tmp / f"emu{p}"
        r = _run_on(world, p, overrides(ncol, steps, every), d)
        if world.rank == 0:
            r["poisson"] = "redundant"
            res["runs"].append(r)
            print(f"    p={p}: {r.get('wall', float('nan')):.2f} s "
                  f"(cores busy {r.get('cores_busy', float('nan')):.2f})", file=sys.stderr, flush=True)
            shutil.rmtree(d, ignore_errors=True)
    return res if world.rank == 0 else None


# ---------------------------------------------------------------------- driver
def _env() -> dict:
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_mpi_yield_when_idle": "1", "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def launch(args, label: str, worker_args: list[str], ranks: int | None, commands: list[str]) -> dict:
    """Run a worker (under mpirun when ranks is set) and return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *worker_args, "--tmp", args.tmp, "--mode", args.mode]
    if ranks is not None:
        cmd = [args.mpirun, "--oversubscribe", "-n", str(ranks), *cmd]
    commands.append(" ".join(cmd))
    return run_json_worker(cmd, _env(), label, args.timeout, JSON_TAG)


def add_efficiencies(runs: list[dict]) -> None:
    """Strong efficiency T1/(p Tp) of wall and loop times, in place (needs the p = 1 run)."""
    ok = [r for r in runs if "wall" in r]
    if not ok or ok[0]["p"] != 1:
        return
    t1, l1 = ok[0]["wall"], ok[0]["loop"]
    for r in ok:
        r["efficiency"] = t1 / (r["p"] * r["wall"])
        r["loop_efficiency"] = l1 / (r["p"] * r["loop"]) if r["loop"] > 0 else None


def analyse(batch: dict, real: dict, emu: dict, pmax: int) -> tuple[dict, dict]:
    """Efficiencies (added to the runs) and the aims."""
    add_efficiencies(real.get("runs", []))
    add_efficiencies(emu.get("runs", []))
    an: dict = {"batching_ratio": {f"{g['grid'][0]}x{g['grid'][1]}": {r["columns"]: r["ratio"] for r in g["rows"]}
                                   for g in batch.get("grids", [])},
                "real_strong": {r["p"]: r.get("efficiency") for r in real.get("runs", [])},
                "emulated_strong": {r["p"]: r.get("efficiency") for r in emu.get("runs", [])},
                "emulated_strong_loop": {r["p"]: r.get("loop_efficiency") for r in emu.get("runs", [])}}
    d = real.get("distributed") or {}
    ms: dict = {}
    for r in real.get("runs", []):
        if "wall" in r:
            ms[f"real_redundant_p{r['p']}"] = r["phases_max"]["macro_solve"] / real["steps"]
    if "wall" in d:
        ms["real_distributed_p2"] = d["phases_max"]["macro_solve"] / real["steps"]
    for r in emu.get("runs", []):
        if "wall" in r:
            ms[f"emulated_redundant_p{r['p']}"] = r["phases_max"]["macro_solve"] / emu["steps"]
    an["macro_solve_seconds_per_step"] = ms
    an["poisson_serial"] = batch.get("poisson", [])
    e_real = an["real_strong"].get(2)
    e_emu = an["emulated_strong"].get(pmax)
    aims = {"real_strong_eff_2": {"value": e_real, "aim": f">= {AIM_REAL_EFF}",
                                  "met": e_real is not None and e_real >= AIM_REAL_EFF},
            f"emulated_strong_eff_{pmax}": {"value": e_emu, "aim": f">= {AIM_EMU_EFF}",
                                            "met": e_emu is not None and e_emu >= AIM_EMU_EFF}}
    return an, aims


def plot(path: Path, batch: dict, real: dict, emu: dict) -> None:
    """Batching curve, efficiency against p, and the emulated time breakdown."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.4))
    a = ax[0]
    for g in batch.get("grids", []):
        n = [r["columns"] for r in g["rows"]]
        a.plot(n, [r["column_steps_per_s"] for r in g["rows"]], "o-", label=f"{g['grid'][0]} x {g['grid'][1]}")
        for r in g["rows"][1:]:
            a.annotate(f"{r['ratio']:.2f}x", (r["columns"], r["column_steps_per_s"]), fontsize=7,
                       textcoords="offset points", xytext=(0, 5), ha="center")
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("columns per batch")
    a.set_ylabel("column-steps / s / core")
    a.set_title("batching (ratio to 1 column)")
    a.legend(fontsize=8)
    a = ax[1]
    for runs, key, style, label in ((emu.get("runs", []), "efficiency", "o-", "emulated, wall"),
                                    (emu.get("runs", []), "loop_efficiency", "s--", "emulated, stepping only"),
                                    (real.get("runs", []), "efficiency", "D:", "real, wall")):
        ok = [r for r in runs if r.get(key) is not None]
        if ok:
            a.plot([r["p"] for r in ok], [r[key] for r in ok], style, label=label)
    a.axhline(1.0, color="gray", lw=0.5)
    a.axhline(AIM_EMU_EFF, color="gray", lw=0.5, ls=":")
    a.set_xscale("log", base=2)
    a.set_ylim(0, 1.2)
    a.set_xlabel("ranks p")
    a.set_ylabel("T1 / (p Tp)")
    a.set_title(f"strong scaling, {emu.get('columns', '?')} columns (emulated), {real.get('columns', '?')} (real)")
    a.legend(fontsize=8)
    a = ax[2]
    runs = [dict(r, label=f"real\n{r['p']}") for r in real.get("runs", []) if "wall" in r]
    runs += [r for r in emu.get("runs", []) if "wall" in r]
    x = np.arange(len(runs))
    bottom = np.zeros(len(runs))
    colors = {"macro_solve": "C1", "micro": "C2", "farm_comm": "C3", "idle": "C7", "io": "C4", "other": "C9"}
    for ph in (*PHASES, "other"):
        v = np.array([(r["other"] if ph == "other" else r["phases_max"].get(ph, 0.0)) / r["wall"] for r in runs])
        a.bar(x, v, bottom=bottom, color=colors[ph], label=ph)
        bottom += v
    a.set_xticks(x, [r.get("label", str(r["p"])) for r in runs])
    a.set_xlabel("ranks p (real, then emulated)")
    a.set_ylabel("share of wall (phase max over ranks / wall)")
    a.set_title("time breakdown")
    a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_tables(batch: dict, real: dict, emu: dict, aims: dict) -> None:
    """The tables of the docs (markdown)."""
    for g in batch.get("grids", []):
        print(f"\nbatching {g['grid'][0]} x {g['grid'][1]} (dt {g['dt']:g}, {g['steps']} steps, "
              f"spin-up vrms {g['spinup_vrms']:.0f})\n")
        print("| columns | column-steps/s/core | ratio to 1 |\n|---:|---:|---:|")
        for r in g["rows"]:
            print(f"| {r['columns']} | {r['column_steps_per_s']:.0f} | {r['ratio']:.2f} |")
    for name, src in (("real", real), ("emulated", emu)):
        runs = list(src.get("runs", [])) + ([src["distributed"]] if src.get("distributed") else [])
        if not runs:
            continue
        print(f"\n{name}, {src.get('columns')} columns, {src.get('steps')} coupling steps\n")
        print("| p | Poisson | wall | eff | loop eff | " + " | ".join(PHASES) + " | other | cores busy | foreign |")
        print("|---:|---|---:|---:|---:|" + "---:|" * len(PHASES) + "---:|---:|---:|")
        for r in runs:
            if "wall" not in r:
                print(f"| {r.get('p')} | error: {r.get('error')} |")
                continue
            e, le = r.get("efficiency"), r.get("loop_efficiency")
            print(f"| {r['p']} | {r.get('poisson', 'redundant')} | {r['wall']:.2f} | "
                  f"{'%.2f' % e if e is not None else '-'} | {'%.2f' % le if le is not None else '-'} | "
                  + " | ".join(f"{r['phases_max'].get(ph, 0.0):.3f}" for ph in PHASES)
                  + f" | {r['other']:.3f} | {r['cores_busy']:.2f} | {r['foreign_cores']:.2f} |")
    if batch.get("poisson"):
        print("\ncoarse Poisson solve, one process\n")
        print("| grid | poisson | set-up [s] | solve [ms] |\n|---|---|---:|---:|")
        for r in batch["poisson"]:
            print(f"| {r['grid'][0]} x {r['grid'][1]} | {r['poisson']} | {r['setup_seconds']:.3f} | "
                  f"{1e3 * r['solve_seconds']:.2f} |")
    print("\naims:")
    for k, v in aims.items():
        val = v["value"]
        print(f"  {k:<28} {('%.3f' % val) if val is not None else 'n/a':>8} {v['aim']:<8} "
              f"{'met' if v['met'] else 'MISSED'}")


def driver_main(args) -> int:
    """Parts 1-3, the JSON, the PNG and the tables."""
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "superparam_scaling" + ("" if args.mode == "default" else f"_{args.mode}")
    m = MODES[args.mode]
    P = m["max_ranks"]
    t0 = time.perf_counter()
    args.tmp = tempfile.mkdtemp(prefix="hmmpar-spscale-")
    commands: list[str] = []
    batch = real = emu = {}
    try:
        print(f"superparam scaling benchmark ({args.mode}): emulated up to {P} ranks", flush=True)
        batch = launch(args, "1. batching (one process)", ["--worker-run", "batch"], None, commands)
        real = launch(args, "2. real runs, calibration (mpirun -n 2)", ["--worker-run", "real"], 2, commands)
        cal = real.get("calibration")
        if cal:
            cal_path = Path(args.tmp) / "calibration.json"
            cal_path.write_text(json.dumps(cal))
            emu = launch(args, f"3. emulated runs (mpirun --oversubscribe -n {P})",
                         ["--worker-run", "emu", "--calibration", str(cal_path),
                          "--sleep-per-step", str(args.sleep_per_step)], P, commands)
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
    an, aims = analyse(batch, real, emu, P)
    report = {"benchmark": "superparam_scaling", "mode": args.mode, "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "host": platform.node(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
              "python": sys.version.split()[0],
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "launches": commands,
              "config": {"base": str(CONFIG.relative_to(REPO)), "max_ranks": P, "sleep_per_step": args.sleep_per_step,
                         "mode": {k: v for k, v in m.items()},
                         "breakdown": "per-phase maximum over ranks of timing.json; other = wall - their sum",
                         "efficiency": "T1/(p Tp), T = timing.json wall_seconds; loop: farm_total (time in app.advance)"},
              "aims": aims, "analysis": an, "batching": batch, "real": real, "emulated": emu,
              "wall_seconds": time.perf_counter() - t0}
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    try:
        plot(out_dir / f"{stem}.png", batch, real, emu)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not fail
        print(f"plot failed: {exc!r}")
    try:
        print_tables(batch, real, emu, aims)
    except Exception as exc:  # noqa: BLE001
        print(f"tables failed: {exc!r}")
    print(f"\nwrote {out_dir / (stem + '.json')} and {out_dir / (stem + '.png')} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: the driver, or (hidden options) one of its workers."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="< 2 min: emulated to 16 ranks, shorter runs")
    g.add_argument("--tiny", action="store_true", help="smoke test (seconds): emulated to 4 ranks, tiny problems")
    ap.add_argument("--sleep-per-step", type=float, default=None,
                    help="emulated seconds each rank sleeps per coupling step at the largest p "
                         "(default 0.4, quick 0.1, tiny 0.02)")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--mode", choices=sorted(MODES), help=argparse.SUPPRESS)
    ap.add_argument("--worker-run", choices=("batch", "real", "emu"), help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--calibration", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.mode = args.mode or ("quick" if args.quick else "tiny" if args.tiny else "default")
    args.sleep_per_step = args.sleep_per_step or MODES[args.mode]["sleep_per_step"]
    workers = {"batch": worker_batch, "real": worker_real, "emu": worker_emu}
    return self_launching_main(args, workers, driver_main, "superparam_scaling", JSON_TAG)


if __name__ == "__main__":
    sys.exit(main())
