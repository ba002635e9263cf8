#!/usr/bin/env python
r"""Strong and weak scaling of the applications, and the cost of checkpoints.

This is a benchmark, not a test: it always exits 0 and only *reports* whether the aims
were met. Run it without ``mpirun``; the script is its own driver::

    python benchmarks/scaling.py            # default (~4-5 min on 2 cores), up to 64 emulated ranks
    python benchmarks/scaling.py --quick    # smoke run (< 2 min), up to 16 emulated ranks

It writes ``benchmarks/results/scaling.json`` and ``scaling.png`` (``scaling_quick.*``).

Part 1, "real": ``mpirun -n 2``. For each application (``elliptic``: the demo config on a
    16x16 macro mesh in 2 batches, 1024 x-dependent cell problems; ``ssa``: the heat-shock
    config with 256 trajectories, t_end = 2 in 2 sample windows) a warm-up, then the run
    on 1 rank (rank 1 waits without spinning) and on 2 ranks, strong (same problem) and
    weak (problem x p). The 1-rank strong run is the *calibration*: ``solve`` is wrapped
    so that every task row is solved and timed on its own, which gives the distribution
    of micro task durations used by part 2 (and one real result row of elliptic).
    Finally each application's *default* config (``drivers/configs/*.toml``, its default
    ``checkpoint.every_steps``) is run on 2 ranks: checkpoint seconds / wall from its
    ``timing.json`` is the checkpoint overhead.
Part 2, "emulated": one ``mpirun --oversubscribe -n P`` (P = 64, quick 16). The class's
    ``solve`` is replaced, in the worker process only, by a sleep: each task row sleeps a
    duration drawn from the measured distribution (generator seeded by (step, task_id),
    so a task sleeps the same at every rank count) times a scale factor, and returns a
    real result row (elliptic: the A_H of a real cell problem from part 1; ssa: the input
    state unchanged, no events). The farm, the routing of rows and results, the macro
    solve (PETSc) and the checkpoints are the real ones, by ``hmmpar.core.runner.run``
    on a sub-communicator of the first p ranks (the others wait in a sleeping Ibarrier),
    p = 1, 2, 4, ..., P. The scale factor makes each rank sleep ``--sleep-per-step``
    seconds (0.25) per micro step at p = P in the strong runs, so that 64 processes on 2
    cores are not CPU bound; the CPU use of every run is recorded (cores busy = CPU
    seconds / wall) to show that they were not.
Part 3, "checkpoint": ``mpirun -n 2``. ``hmmpar.core.checkpoint.Checkpointer.write`` of
    one float64 field of ``--ckpt-mb`` MB (200, quick 50) on 1 and 2 ranks against a
    plain sequential ``open/write/close`` of the same bytes by one process into the same
    directory. Both *without* fsync of the data (Checkpointer fsyncs only the directory
    after its rename) and, separately, both followed by an fsync of the file (the time
    until the bytes are on the disk). Best of 3.

Efficiency: strong T1 / (p Tp), weak T1 / Tp, with T the run's wall time from
``timing.json`` (``wall_seconds``: whole ``run()``, set-up to report). The time breakdown
is the per-rank *maximum* of each phase of ``timing.json`` (``macro_assemble``,
``macro_solve``, ``micro``, ``farm_comm``, ``io``, ``idle``; the maximum over ranks is
what bounds the wall time).

Aims (JSON ``"aims"``): 2-rank real strong efficiency >= 0.9; emulated strong efficiency
at 64 ranks >= 0.8; checkpoint overhead < 2 % of the run at the default interval;
checkpoint bandwidth >= 0.5 x the plain write.
"""
from __future__ import annotations

import argparse
import json
import os
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
JSON_TAG = "SCALEBENCH_JSON "
CONFIGS = {"elliptic": REPO / "drivers" / "configs" / "elliptic.toml",
           "ssa": REPO / "drivers" / "configs" / "ssa_heat_shock.toml"}
PHASES = ("macro_assemble", "macro_solve", "micro", "farm_comm", "io", "idle")
AIM_REAL_EFF = 0.9
AIM_EMU_EFF = 0.8
AIM_CKPT_OVERHEAD = 0.02
AIM_CKPT_BW = 0.5


# ---------------------------------------------------------------------- problems
def overrides(app: str, kind: str, p: int, mode: str, quick: bool) -> list[str]:
    """Config overrides of one run. kind: strong/weak/default; mode: real/emu."""
    if app == "elliptic":
        base = ["output.plots=false"]
        if kind == "default":
            return base + (["macro.cells=[12, 12]"] if quick else [])
        base += ["micro.batches=2"]
        if kind == "strong":
            return base + ["macro.cells=[16, 16]"]
        # weak: cell problems proportional to p (16 x 16p macro cells, emulated 4 x 4p)
        w = 16 if mode == "real" else 4
        return base + [f"macro.cells=[{w}, {w * p}]"]
    if app == "ssa":
        base: list[str] = []
        if kind == "default":
            return base + (["ensemble.trajectories=64"] if quick else [])
        base += ["ensemble.t_end=2.0", "ensemble.samples=2"]
        if kind == "strong":
            return base + ["ensemble.trajectories=256"]
        n = 128 if mode == "real" else 8
        return base + [f"ensemble.trajectories={n * p}"]
    raise ValueError(app)


def n_tasks(app: str, kind: str, p: int, mode: str) -> int:
    """Micro tasks of a run (for the emulation's scale factor and the tables)."""
    if app == "elliptic":
        if kind == "strong":
            return 16 * 16 * 4
        w = 16 if mode == "real" else 4
        return w * w * p * 4
    if kind == "strong":
        return 256 * 2
    return (128 if mode == "real" else 8) * p * 2


MICRO_STEPS = 2  # micro steps of the strong/weak problems (elliptic batches, ssa windows)


# ---------------------------------------------------------------------- worker helpers
def _emit(result: dict) -> None:
    emit(JSON_TAG, result)


def _idle_wait(comm, pause: float = 0.01) -> None:
    idle_wait(comm, pause)


def _import_all() -> None:
    # PetscInitialize is collective on COMM_WORLD: import on every rank before sub-comms
    import importlib
    for name in ("petsc4py.PETSc", "h5py", "hmmpar.apps.elliptic", "hmmpar.apps.nested_ssa",
                 "hmmpar.macro.box_q1"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _run_on(world, p: int, app: str, over: list[str], outdir: Path) -> dict | None:
    """hmmpar.core.runner.run on the first p ranks of world; the report on world rank 0."""
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
    if sub != MPI.COMM_NULL:
        try:
            cfg = load_config(CONFIGS[app], [f'run.output_dir="{outdir}"', *over])
            run(cfg, sub, log=RankLog(sub, quiet=True))
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
    return {"p": p, "wall": timing["wall_seconds"], "outer_wall": dt,
            "phases_max": {k: ph[k]["max"] for k in ph}, "phases_mean": {k: ph[k]["mean"] for k in ph},
            "checkpoint": timing.get("checkpoint", {}),
            "tasks_per_rank": timing["farm"]["tasks_per_rank"],
            "load_imbalance": timing["farm"]["load_imbalance"],
            "cpu_seconds": sum(cpu), "cores_busy": sum(cpu) / dt,
            "foreign_cores": max(0.0, system_busy() - busy0 - sum(cpu)) / dt}


# ---------------------------------------------------------------------- solve wrappers
_CAL: dict = {"durations": [], "row": None}


def install_timing(cls) -> None:
    """solve one row at a time and record each row's seconds (calibration)."""
    orig = cls.solve
    if getattr(orig, "_bench", None):
        orig = orig._bench

    def timed(self, rows, ctx):
        outs = []
        for i in range(rows.shape[0]):
            t0 = time.perf_counter()
            outs.append(orig(self, rows[i:i + 1], ctx))
            _CAL["durations"].append(time.perf_counter() - t0)
        out = np.concatenate(outs) if outs else orig(self, rows, ctx)
        if _CAL["row"] is None and out.shape[0] and "A" in (out.dtype.names or ()):
            _CAL["row"] = out["A"][0].tolist()
        return out
    timed._bench = orig
    cls.solve = timed


def restore(cls) -> None:
    if getattr(cls.solve, "_bench", None):
        cls.solve = cls.solve._bench


def install_emulation(cls, app: str, durations: np.ndarray, scale: float, a_row) -> None:
    """solve -> sleep a measured duration x scale per row, return a real-looking row."""
    orig = getattr(cls.solve, "_bench", None) or cls.solve
    a_row = np.asarray(a_row) if a_row is not None else None

    def emulated(self, rows, ctx):
        n = rows.shape[0]
        total = 0.0
        for tid in rows["task_id"]:
            g = np.random.default_rng([int(ctx.step), int(tid), 7])
            total += float(durations[g.integers(durations.size)]) * scale
        t_end = time.perf_counter() + total
        while True:  # sleep to an absolute deadline (oversleeping is not repeated)
            left = t_end - time.perf_counter()
            if left <= 0:
                break
            time.sleep(left)
        out = np.zeros(n, dtype=self.result_dtype)
        if app == "elliptic":
            out["A"][:] = a_row
        else:
            out["x"] = rows["x"]
            out["cpu"] = total / max(n, 1)
        return out
    emulated._bench = orig
    cls.solve = emulated


# ---------------------------------------------------------------------- workers
def worker_real(args) -> dict | None:
    from mpi4py import MPI
    from hmmpar.apps import app_class
    _import_all()
    world = MPI.COMM_WORLD
    tmp = Path(args.tmp)
    out: dict = {}
    for app in args.apps:
        cls = app_class(app)
        res: dict = {"strong": [], "weak": []}
        # warm-up (numba, PETSc, h5py) on both communicators
        for p in (1, 2):
            _run_on(world, p, app, overrides(app, "weak", 1, "emu", args.quick), tmp / f"{app}_warm{p}")
        for kind in ("strong", "weak"):
            for p in (1, 2):
                best = None
                extra = 1 if kind == "strong" and p == 1 else 0  # + the calibration run
                for rep in range(args.repeats + extra):
                    calib = extra and rep == 0
                    if calib:
                        install_timing(cls)
                    r = _run_on(world, p, app, overrides(app, kind, p, "real", args.quick),
                                tmp / f"{app}_{kind}{p}_{rep}")
                    if calib:
                        restore(cls)
                        if world.rank == 0:
                            d = np.array(_CAL["durations"])
                            res["calibration"] = {
                                "tasks": int(d.size), "mean": float(d.mean()), "median": float(np.median(d)),
                                "p10": float(np.percentile(d, 10)), "p90": float(np.percentile(d, 90)),
                                "max": float(d.max()), "durations": d.tolist(), "a_row": _CAL["row"],
                                "wall_row_by_row": r.get("wall") if r else None}
                        _CAL["durations"], _CAL["row"] = [], None
                        continue  # the calibration run's wall time includes the row-by-row timing
                    if world.rank == 0 and r and (best is None or r.get("wall", 1e99) < best.get("wall", 1e99)):
                        best = r
                if world.rank == 0:
                    best = best or {"p": p, "error": "no run"}
                    best["tasks"] = n_tasks(app, kind, p, "real")
                    res[kind].append(best)
        # checkpoint overhead at the default interval, default config, 2 ranks
        r = _run_on(world, 2, app, overrides(app, "default", 2, "real", args.quick), tmp / f"{app}_default")
        if world.rank == 0:
            res["default"] = r
        out[app] = res
    return out if world.rank == 0 else None


def worker_emu(args) -> dict | None:
    from mpi4py import MPI
    from hmmpar.apps import app_class
    _import_all()
    world = MPI.COMM_WORLD
    tmp = Path(args.tmp)
    cal = json.loads(Path(args.calibration).read_text())
    out: dict = {}
    ps = [p for p in (1, 2, 4, 8, 16, 32, 64) if p <= world.size]
    for app in args.apps:
        c = cal[app]
        durations = np.array(c["durations"])
        # strong runs: each of P ranks sleeps sleep_per_step per micro step
        target = args.sleep_per_step * world.size / (n_tasks(app, "strong", 1, "emu") / MICRO_STEPS)
        scale = target / float(durations.mean())
        install_emulation(app_class(app), app, durations, scale, c.get("a_row"))
        res: dict = {"scale": scale, "mean_task_seconds": target, "strong": [], "weak": []}
        _run_on(world, min(2, world.size), app, overrides(app, "weak", 1, "emu", args.quick), tmp / f"{app}_ewarm")
        for kind in ("strong", "weak"):
            for p in ps:
                r = _run_on(world, p, app, overrides(app, kind, p, "emu", args.quick), tmp / f"{app}_e{kind}{p}")
                if world.rank == 0:
                    r["tasks"] = n_tasks(app, kind, p, "emu")
                    res[kind].append(r)
                    print(f"    {app} {kind} p={p}: {r.get('wall', float('nan')):.2f} s "
                          f"(cores busy {r.get('cores_busy', float('nan')):.2f})", file=sys.stderr, flush=True)
                    shutil.rmtree(tmp / f"{app}_e{kind}{p}", ignore_errors=True)  # rank 0 only: it reads it
        restore(app_class(app))
        out[app] = res
    return out if world.rank == 0 else None


def worker_ckpt(args) -> dict | None:
    from mpi4py import MPI
    from hmmpar.core.checkpoint import Block, Checkpointer
    world = MPI.COMM_WORLD
    tmp = Path(args.tmp)
    total = int(args.ckpt_mb * 1e6) // 8
    res: dict = {"bytes": total * 8, "runs": []}
    for p in (1, 2):
        sub = world.Split(0 if world.rank < p else MPI.UNDEFINED, world.rank)
        entry: dict = {"ranks": p}
        if sub != MPI.COMM_NULL:
            lo, hi = total * sub.rank // p, total * (sub.rank + 1) // p
            data = np.random.default_rng(sub.rank).random(hi - lo)
            d = tmp / f"ck{p}"
            ck = Checkpointer(sub, d, keep=1)
            step = 0
            for fsync in (False, True):
                times = []
                for rep in range(3):
                    sub.Barrier()
                    t0 = time.perf_counter()
                    step += 1  # increasing: keep=1 prunes all but the newest step
                    path = ck.write(step, 0.0, app="bench", seed=0, config_text="",
                                    fields={"u": Block(data, lo, total)})
                    if fsync:
                        if sub.rank == 0:
                            fd = os.open(path, os.O_RDONLY)
                            os.fsync(fd)
                            os.close(fd)
                        sub.Barrier()
                    times.append(time.perf_counter() - t0)
                entry["checkpoint_fsync" if fsync else "checkpoint"] = times
                entry["file_bytes"] = os.path.getsize(path) if sub.rank == 0 else None
            sub.Free()
        _idle_wait(world)
        if world.rank == 0:
            res["runs"].append(entry)
            shutil.rmtree(tmp / f"ck{p}", ignore_errors=True)
    if world.rank == 0:  # the plain sequential write of the same bytes, one process
        buf = np.random.default_rng(0).random(total).tobytes()
        plain: dict = {}
        for fsync in (False, True):
            times = []
            for rep in range(3):
                path = tmp / f"plain{rep}.bin"
                t0 = time.perf_counter()
                with open(path, "wb") as f:
                    f.write(buf)
                    if fsync:
                        f.flush()
                        os.fsync(f.fileno())
                times.append(time.perf_counter() - t0)
                path.unlink()
            plain["plain_fsync" if fsync else "plain"] = times
        res["plain"] = plain
    _idle_wait(world)
    return res if world.rank == 0 else None


# ---------------------------------------------------------------------- driver
def _env() -> dict:
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_mpi_yield_when_idle": "1", "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def launch(args, label: str, worker_args: list[str], ranks: int) -> dict:
    cmd = [args.mpirun, "--oversubscribe", "-n", str(ranks), sys.executable, str(Path(__file__).resolve()),
           *worker_args, "--tmp", args.tmp, "--apps", *args.apps]
    if args.quick:
        cmd.append("--quick")
    return run_json_worker(cmd, _env(), label, args.timeout, JSON_TAG)


def efficiencies(runs: list[dict], kind: str) -> list[float | None]:
    ok = [r for r in runs if "wall" in r]
    if not ok or ok[0]["p"] != 1:
        return [None] * len(runs)
    t1 = ok[0]["wall"]
    return [(t1 / (r["p"] * r["wall"]) if kind == "strong" else t1 / r["wall"]) if "wall" in r else None
            for r in runs]


def analyse(real: dict, emu: dict, ckpt: dict, apps: list[str]) -> dict:
    out: dict = {"apps": {}}
    for app in apps:
        a: dict = {}
        for src, name in ((real, "real"), (emu, "emulated")):
            r = src.get(app, {})
            for kind in ("strong", "weak"):
                if r.get(kind):
                    for run, e in zip(r[kind], efficiencies(r[kind], kind)):
                        run["efficiency"] = e
                    a[f"{name}_{kind}"] = {run["p"]: run.get("efficiency") for run in r[kind]}
        d = real.get(app, {}).get("default") or {}
        if "wall" in d:
            a["checkpoint_overhead"] = {"fraction": d["checkpoint"].get("seconds", 0.0) / d["wall"],
                                        "count": d["checkpoint"].get("count"),
                                        "seconds": d["checkpoint"].get("seconds"),
                                        "bytes": d["checkpoint"].get("bytes"), "wall": d["wall"]}
        out["apps"][app] = a
    if "runs" in ckpt:
        nb = ckpt["bytes"]
        bw = {}
        for fs in ("", "_fsync"):
            plain = min(ckpt["plain"]["plain" + fs])
            bw["plain" + fs] = nb / plain / 1e6
            for e in ckpt["runs"]:
                if "checkpoint" + fs in e:
                    bw[f"checkpoint{fs}_{e['ranks']}r"] = nb / min(e["checkpoint" + fs]) / 1e6
        out["checkpoint_bandwidth_MBps"] = bw
    return out


def aims(an: dict, pmax: int) -> dict:
    res = {}
    for app, a in an["apps"].items():
        e = (a.get("real_strong") or {}).get(2)
        res[f"{app}_real_strong_eff_2"] = {"value": e, "aim": f">= {AIM_REAL_EFF}",
                                           "met": e is not None and e >= AIM_REAL_EFF}
        e = (a.get("emulated_strong") or {}).get(pmax)
        res[f"{app}_emulated_strong_eff_{pmax}"] = {"value": e, "aim": f">= {AIM_EMU_EFF}",
                                                    "met": e is not None and e >= AIM_EMU_EFF}
        f = (a.get("checkpoint_overhead") or {}).get("fraction")
        res[f"{app}_checkpoint_overhead"] = {"value": f, "aim": f"< {AIM_CKPT_OVERHEAD}",
                                             "met": f is not None and f < AIM_CKPT_OVERHEAD}
    bw = an.get("checkpoint_bandwidth_MBps")
    if bw:
        for fs in ("", "_fsync"):
            for r in (1, 2):
                k = f"checkpoint{fs}_{r}r"
                if k in bw:
                    v = bw[k] / bw["plain" + fs]
                    res[f"checkpoint_bw_ratio{fs}_{r}r"] = {"value": v, "aim": f">= {AIM_CKPT_BW}",
                                                            "met": v >= AIM_CKPT_BW}
    return res


def plot(path: Path, real: dict, emu: dict, apps: list[str]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1 + len(apps), 2, figsize=(11, 3.6 * (1 + len(apps))))
    marks = {"elliptic": "o", "ssa": "s"}
    for j, kind in enumerate(("strong", "weak")):
        a = ax[0, j]
        for app in apps:
            for src, name, ls in ((emu, "emulated", "-"), (real, "real", ":")):
                runs = [r for r in src.get(app, {}).get(kind, []) if r.get("efficiency") is not None]
                if runs:
                    a.plot([r["p"] for r in runs], [r["efficiency"] for r in runs], ls, marker=marks.get(app, "x"),
                           label=f"{app} ({name})")
        a.axhline(1.0, color="gray", lw=0.5)
        a.set_xscale("log", base=2)
        a.set_ylim(0, 1.15)
        a.set_xlabel("ranks p")
        a.set_ylabel("T1/(p Tp)" if kind == "strong" else "T1/Tp")
        a.set_title(f"{kind} scaling efficiency")
        a.legend(fontsize=8)
    colors = {"macro_assemble": "C0", "macro_solve": "C1", "micro": "C2", "farm_comm": "C3",
              "io": "C4", "idle": "C7"}
    for i, app in enumerate(apps):
        for j, kind in enumerate(("strong", "weak")):
            a = ax[i + 1, j]
            runs = [r for r in emu.get(app, {}).get(kind, []) if "wall" in r]
            x = np.arange(len(runs))
            bottom = np.zeros(len(runs))
            for ph in PHASES:
                v = np.array([r["phases_max"].get(ph, 0.0) for r in runs])
                a.bar(x, v, bottom=bottom, color=colors[ph], label=ph)
                bottom += v
            a.plot(x, [r["wall"] for r in runs], "k_", ms=20, label="wall")
            a.set_xticks(x, [str(r["p"]) for r in runs])
            a.set_xlabel("ranks p (emulated)")
            a.set_ylabel("seconds (max over ranks)")
            a.set_title(f"{app}, {kind}: time breakdown")
            if i == 0 and j == 0:
                a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(real: dict, emu: dict, an: dict, am: dict, apps: list[str]) -> None:
    for app in apps:
        for src, name in ((real, "real"), (emu, "emulated")):
            for kind in ("strong", "weak"):
                runs = src.get(app, {}).get(kind, [])
                if not runs:
                    continue
                print(f"\n{app} {name} {kind}" + (f" (sleep scale {src[app]['scale']:.1f})" if name == "emulated" else ""))
                print(f"  {'p':>3} {'tasks':>6} {'wall':>7} {'eff':>6} " + " ".join(f"{ph[:10]:>10}" for ph in PHASES)
                      + f" {'cores':>6}")
                for r in runs:
                    if "wall" not in r:
                        print(f"  {r['p']:>3} error {r.get('error')}")
                        continue
                    e = r.get("efficiency")
                    print(f"  {r['p']:>3} {r.get('tasks', 0):>6} {r['wall']:>7.2f} {e if e is not None else float('nan'):>6.3f} "
                          + " ".join(f"{r['phases_max'].get(ph, 0.0):>10.3f}" for ph in PHASES)
                          + f" {r.get('cores_busy', 0.0):>6.2f}")
    print("\ncheckpoint overhead (default config, 2 ranks):")
    for app, a in an["apps"].items():
        c = a.get("checkpoint_overhead")
        if c:
            print(f"  {app}: {c['count']} checkpoint(s), {c['seconds']:.3f} s of {c['wall']:.2f} s = "
                  f"{100 * c['fraction']:.2f} %")
    if an.get("checkpoint_bandwidth_MBps"):
        print("checkpoint bandwidth [MB/s]: " + ", ".join(f"{k} {v:.0f}" for k, v in an["checkpoint_bandwidth_MBps"].items()))
    print("\naims:")
    for k, v in am.items():
        val = v["value"]
        print(f"  {k:<36} {('%.3f' % val) if val is not None else 'n/a':>8} {v['aim']:<8} "
              f"{'met' if v['met'] else 'MISSED'}")


def driver_main(args) -> int:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "scaling" + ("_quick" if args.quick else "")
    t0 = time.perf_counter()
    args.tmp = tempfile.mkdtemp(prefix="hmmpar-scalebench-")
    real = emu = ckpt = {}
    try:
        print(f"scaling benchmark{' (quick)' if args.quick else ''}: apps {', '.join(args.apps)}, "
              f"emulated up to {args.max_ranks} ranks")
        real = launch(args, "1. real runs, calibration, checkpoint overhead (mpirun -n 2)",
                      ["--worker-run", "real", "--repeats", str(args.repeats)], 2)
        cal = {app: real[app]["calibration"] for app in args.apps if "calibration" in real.get(app, {})}
        if cal:
            cal_path = Path(args.tmp) / "calibration.json"
            cal_path.write_text(json.dumps(cal))
            emu = launch(args, f"2. emulated runs (mpirun --oversubscribe -n {args.max_ranks})",
                         ["--worker-run", "emu", "--calibration", str(cal_path),
                          "--sleep-per-step", str(args.sleep_per_step)], args.max_ranks)
        ckpt = launch(args, "3. checkpoint bandwidth (mpirun -n 2)",
                      ["--worker-run", "ckpt", "--ckpt-mb", str(args.ckpt_mb)], 2)
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
    an = analyse(real, emu, ckpt, args.apps)
    am = aims(an, args.max_ranks)
    for app in args.apps:  # the raw durations are long; keep a summary
        c = real.get(app, {}).get("calibration")
        if c:
            c["durations"] = f"{len(c['durations'])} values (dropped)"
    import platform
    report = {"benchmark": "scaling", "quick": args.quick, "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "host": platform.node(), "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
              "config": {"apps": args.apps, "max_ranks": args.max_ranks, "sleep_per_step": args.sleep_per_step,
                         "repeats": args.repeats, "ckpt_mb": args.ckpt_mb,
                         "breakdown": "per-phase maximum over ranks of timing.json",
                         "overrides": {app: {k: overrides(app, k, 1, "real", args.quick)
                                             for k in ("strong", "weak", "default")} for app in args.apps}},
              "aims": am, "analysis": an, "real": real, "emulated": emu, "checkpoint": ckpt,
              "wall_seconds": time.perf_counter() - t0}
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    try:
        plot(out_dir / f"{stem}.png", real, emu, args.apps)
    except Exception as exc:  # noqa: BLE001
        print(f"plot failed: {exc!r}")
    try:
        print_table(real, emu, an, am, args.apps)
    except Exception as exc:  # noqa: BLE001
        print(f"table failed: {exc!r}")
    print(f"\nwrote {out_dir / (stem + '.json')} and {out_dir / (stem + '.png')} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 16 emulated ranks, 50 MB checkpoint")
    ap.add_argument("--apps", nargs="+", default=["elliptic", "ssa"], choices=sorted(CONFIGS))
    ap.add_argument("--max-ranks", type=int, default=None, help="emulated ranks (default 64, quick 16)")
    ap.add_argument("--sleep-per-step", type=float, default=None,
                    help="emulated seconds each rank sleeps per micro step at max ranks (default 0.25, quick 0.1)")
    ap.add_argument("--repeats", type=int, default=None, help="real runs per point, best counts (default 3, quick 1)")
    ap.add_argument("--ckpt-mb", type=float, default=None, help="checkpoint field size (default 200, quick 50)")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--worker-run", choices=("real", "emu", "ckpt"), help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--calibration", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    q = args.quick
    args.max_ranks = args.max_ranks or (16 if q else 64)
    args.sleep_per_step = args.sleep_per_step or (0.1 if q else 0.25)
    args.repeats = args.repeats or (1 if q else 3)
    args.ckpt_mb = args.ckpt_mb or (50.0 if q else 200.0)
    workers = {"real": worker_real, "emu": worker_emu, "ckpt": worker_ckpt}
    return self_launching_main(args, workers, driver_main, "scaling", JSON_TAG)


if __name__ == "__main__":
    sys.exit(main())
