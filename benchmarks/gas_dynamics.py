#!/usr/bin/env python
r"""Cost of HMM gas dynamics with MD fluxes: time per macro step against cells and ranks,
and the HMM shock tube against a direct MD of the whole tube.

This is a measurement, not a test: it always exits 0. Run it without ``mpirun``; the
script is its own driver::

    python benchmarks/gas_dynamics.py            # ~3-5 min on 2 cores (more when they are shared)
    python benchmarks/gas_dynamics.py --quick    # smoke run (< 1 min with numba's cache warm)

It writes ``benchmarks/results/gas_dynamics.json`` and ``gas_dynamics.png``
(``gas_dynamics_quick.*`` with ``--quick``) and prints a table.

The problem: a Sod-type shock tube of a Lennard-Jones fluid (``problem.name = "riemann"``,
:math:`(\rho, u, p) = (0.5, 0, 1.8)` for x < 0.5 and :math:`(0.1, 0, 0.15)` after, in LJ
units; both sides supercritical, T = 1.8 and 1.6 by the run's EOS table -- Sod's own data
would put the right side in the liquid-vapour region), outflow boundaries, the staggered Lax-Friedrichs scheme
(``macro.order = 1``: two farm rounds per macro step, 2N + 1 micro tasks), CFL 0.4, and
``micro.model = "md"``: a constrained periodic LJ box per cell and corner state
(``micro.atoms = 256``, r_c = 2.5 shifted, dt = 0.005, ``t_equilibrate = 1``,
``t_sample = 1``: 400 MD steps, 102 400 atom-steps per task), ``farm.mode = "dynamic"``.
Checkpoints, snapshots and plots are off.

Part 1, "hmm" (one ``mpirun --oversubscribe -n 2``): ``hmmpar.core.runner.run`` in-process,
    on a sub-communicator of 1 rank (the other rank waits in a sleeping ``Ibarrier``) and on
    2 ranks, for N = 8, 16, 32 cells (quick: 8, 16), after a warm-up run on each
    communicator (numba's first calls, imports). Each run goes to ``macro.t_end`` = 0.05
    (quick 0.03): 3 to 9 macro steps; the cost of a step does not depend on t_end. The EOS
    table of MD state points is built at the start of every run (``micro.eos_points``
    [5, 6], quick [3, 3]); it is *not* part of the step times: ``GasDynamics.tasks`` and
    ``GasDynamics.finalize`` are wrapped (in the worker only) to time-stamp every macro
    step, so "loop" is the wall time from the first step's task rows to the end of the
    last step, and "wall per step" = loop / steps (every step costs the same, also a
    shortened last one). Recorded per run: loop wall and CPU seconds (per rank, CPU of
    the process, ``getrusage``), micro tasks and MD atom-steps per step (``summary.json``),
    the EOS phase (``micro_solve`` of ``timing.json``), and the CPU the *other* processes
    on the machine used meanwhile (``/proc/stat`` minus ours: ``foreign_cores``). The
    runs are made in ``--repeats`` interleaved passes (default 2, quick 1); per (N, ranks)
    the pass with the shortest loop counts.
    Speed-up 1 -> 2 ranks = loop wall on 1 rank / loop wall on 2 ranks. On this 2-core
    machine, shared with other jobs, that ratio is bounded by the cores the others leave
    free: it equals (cores our ranks obtained, loop CPU / loop wall, 2 ranks over 1 rank)
    / (CPU seconds per step, 2 ranks over 1 rank). The second factor, the parallel
    overhead in work (waiting ranks poll, so it includes the waiting), is the
    load-independent part; ``projected_on_free_cores`` = 2 / that ratio estimates the
    speed-up on 2 dedicated cores.
Part 2, "direct" (this process, one core): a direct MD of the whole tube with hmmpar's
    engine (:class:`hmmpar.micro.md.engine.MDSystem`, the same potential, dt and skin).
    Mapping (an assumption: the HMM's macro cell width is a free scale): the macro domain
    [0, 1] is L sigma long, and since velocities, densities and pressures are in LJ units
    on both levels, macro time t is L t in LJ time. The tube has the cross-section of the
    micro box at the tube's mean density (side :math:`a = (256/\bar\rho)^{1/3}` = 9.49
    sigma for :math:`\bar\rho` = 0.3) and is periodic in y and z (and in x: a doubled
    Riemann problem, the same cost); each half is filled at its density
    (:math:`N = \rho A L / 2` atoms, random sequential addition) with Maxwell-Boltzmann
    velocities at the side's temperature from the HMM's EOS table. It runs to macro time
    t_end = 0.2: :math:`0.2 L / dt` steps. Measured for L = 25, 50, 100, 200 sigma (quick
    25, 50): CPU seconds of building the system + the run (``time.process_time``),
    atom-steps per CPU second r_D.
Part 3, the comparison, in core-seconds (CPU) to macro time t_end = 0.2:
    HMM with N cells: C_H(N) = (CPU seconds per macro step on 1 rank) x (steps to 0.2 =
    0.2 / the simulated time of a full macro step of the run). Direct MD of a tube of
    length L: C_D(L) = (rho_mean A L) (0.2 L / dt) / r_D, i.e. atoms ~ L and steps ~ L, so
    C_D ~ L^2, whatever the resolution. The HMM's cost depends on N only: tasks per step
    ~ 2N, steps ~ N (CFL), so C_H ~ N^2, whatever L. They are equal at L*(N) = N h*: the
    HMM is cheaper for a tube longer than L*(N), i.e. when a macro cell is wider than h*.
    In closed form (:math:`\Delta t_{1/2}` = CFL h / s the half step of the staggered
    scheme, s the largest wave speed, r_H the atom-steps per CPU second inside the HMM):
    C_H / C_D = [n_box / (rho_mean A h)] x [(t_eq + t_sample) / Delta t_1/2] x r_D / r_H,
    atoms of a box over atoms of a cell, times MD time per task over the macro half step.
    The cost is compared at equal macro resolution, not at equal accuracy (the HMM's
    fluxes carry the boxes' statistical noise; a direct MD resolves the shock structure).

The plot: (a) wall seconds per macro step against N on 1 and 2 ranks (with the line
~ N), (b) HMM core-seconds to t = 0.2 against N (measured, fit ~ N^2) with the direct MD
at a fixed cell width h = L/N for several h, (c) core-seconds to t = 0.2 against the tube
length L: direct MD (measured points, model ~ L^2) and the HMM with N cells (independent
of L), the crossovers L*(N) marked.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from cpu_usage import own_cpu, system_busy  # noqa: E402

CONFIG = REPO / "drivers" / "configs" / "gas_dynamics.toml"
JSON_TAG = "GASBENCH_JSON "
LEFT = (0.5, 0.0, 1.8)      # rho, u, p
RIGHT = (0.1, 0.0, 0.15)
X0 = 0.5
ATOMS = 256                 # atoms per state box
T_EQ, T_SAMPLE, DT_MD = 1.0, 1.0, 0.005
CFL = 0.4
T_COMPARE = 0.2             # macro time of the cost comparison (the Sod tube's usual end)
CUTOFF = 2.5


def overrides(cells: int, t_end: float, quick: bool) -> list[str]:
    """The config of one HMM run (on top of drivers/configs/gas_dynamics.toml)."""
    eos = "[3, 3]" if quick else "[5, 6]"
    return ["problem.name=riemann", f"problem.left={list(LEFT)}", f"problem.right={list(RIGHT)}",
            f"problem.x0={X0}", "macro.scheme=staggered", "macro.order=1", f"macro.cells=[{cells}]",
            f"macro.cfl={CFL}", f"macro.t_end={t_end}", "micro.model=md", "micro.potential=lj",
            f"micro.cutoff={CUTOFF}", f"micro.atoms={ATOMS}", f"micro.dt={DT_MD}",
            f"micro.t_equilibrate={T_EQ}", f"micro.t_sample={T_SAMPLE}", f"micro.eos_atoms={ATOMS}",
            f"micro.eos_points={eos}", "micro.eos_t_sample=2", "micro.eos_temperatures=[1.3, 6.0]",
            "farm.mode=dynamic", "output.plots=false", "output.snapshot_interval=0",
            "checkpoint.every_steps=0", "checkpoint.at_end=false", "run.progress_interval=0"]


# ---------------------------------------------------------------------- worker (under mpirun -n 2)
def _emit(result: dict) -> None:
    print(JSON_TAG + json.dumps(result), flush=True)


def _idle_wait(comm, pause: float = 0.01) -> None:
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(pause)


_STEPS: dict = {}


def install_step_clock(cls) -> None:
    """Time-stamp every macro step (``tasks`` is called once per step, ``finalize`` after
    the last) and read the EOS at the end; wall, own CPU and the simulated time."""
    tasks, finalize = cls.tasks, cls.finalize

    def timed_tasks(self, step):
        _STEPS["marks"].append((time.perf_counter(), own_cpu(), float(self.time)))
        return tasks(self, step)

    def timed_finalize(self, outdir):
        _STEPS["end"] = (time.perf_counter(), own_cpu(), float(self.time))
        try:
            eos = self.eos
            states = {}
            for name, (rho, _, p) in (("left", LEFT), ("right", RIGHT)):
                e = float(eos.energy_of(np.array([rho]), np.array([p]))[0])
                states[name] = {"rho": rho, "p": p, "e": e,
                                "temperature": float(eos.temperature_of(np.array([rho]), np.array([e]))[0]),
                                "sound_speed": float(eos.sound_speed(np.array([rho]), np.array([p]))[0])}
            _STEPS["states"] = states
        except Exception as exc:  # noqa: BLE001 - only informative
            _STEPS["states"] = {"error": repr(exc)}
        return finalize(self, outdir)

    cls.tasks, cls.finalize = timed_tasks, timed_finalize


def run_on(world, p: int, cells: int, t_end: float, outdir: Path, quick: bool) -> dict | None:
    """One HMM run on the first p ranks of world; its record on world rank 0."""
    from mpi4py import MPI
    from hmmpar.core.config import load_config
    from hmmpar.core.log import RankLog
    from hmmpar.core.runner import run
    sub = world.Split(0 if world.rank < p else MPI.UNDEFINED, world.rank)
    _STEPS.clear()
    _STEPS["marks"] = []
    _idle_wait(world)
    busy0 = system_busy() if world.rank == 0 else 0.0
    cpu0 = own_cpu()
    t0 = time.perf_counter()
    error = None
    if sub != MPI.COMM_NULL:
        try:
            cfg = load_config(CONFIG, [f'run.output_dir="{outdir}"', *overrides(cells, t_end, quick)])
            run(cfg, sub, log=RankLog(sub, quiet=True))
        except Exception as exc:  # noqa: BLE001 - reported, the benchmark goes on
            error = repr(exc)
        sub.Free()
    _idle_wait(world)
    outer = time.perf_counter() - t0
    cpu_total = own_cpu() - cpu0
    marks, end = _STEPS.get("marks", []), _STEPS.get("end")
    loop = None
    if marks and end:
        loop = {"wall": end[0] - marks[0][0], "cpu": end[1] - marks[0][1],
                "step_walls": [b[0] - a[0] for a, b in zip(marks, marks[1:] + [end])],
                "step_sim": [b[2] - a[2] for a, b in zip(marks, marks[1:] + [end])]}
    loops = world.gather(loop, root=0)
    cpus = world.gather(cpu_total, root=0)
    errors = world.gather(error, root=0)
    if world.rank != 0:
        return None
    errors = [e for e in errors if e]
    if errors:
        return {"cells": cells, "ranks": p, "error": errors[0]}
    summary = json.loads((outdir / "summary.json").read_text())
    timing = json.loads((outdir / "timing.json").read_text())
    ph = timing["phases"]
    steps = int(summary["steps"])
    lp = [x for x in loops[:p] if x]
    loop_wall = loops[0]["wall"]
    loop_cpu = sum(x["cpu"] for x in lp)
    sim = loops[0]["step_sim"]
    full = sim[:-1] if len(sim) > 1 else sim  # the last step may be shortened to end at t_end
    return {
        "cells": cells, "ranks": p, "t_end": t_end, "steps": steps, "time": summary["time"],
        "loop_wall": loop_wall, "wall_per_step": loop_wall / steps,
        "loop_cpu": loop_cpu, "cpu_per_step": loop_cpu / steps,
        "loop_cpu_per_rank": [x["cpu"] for x in lp],
        "step_walls": loops[0]["step_walls"], "step_sim_times": sim,
        "macro_step_time": float(np.median(full)),
        "micro_tasks": summary["micro_tasks"], "tasks_per_step": summary["micro_tasks"] / steps,
        "farm_rounds": summary["farm_rounds"],
        "md_atom_steps": summary["md_atom_steps"], "atom_steps_per_step": summary["md_atom_steps"] / steps,
        "atom_steps_per_cpu_s": summary["md_atom_steps"] / loop_cpu if loop_cpu > 0 else None,
        "dt_min": summary["dt_min"], "dt_max": summary["dt_max"], "max_courant": summary["max_courant"],
        "flux_stderr": summary["flux_stderr"], "eos_table": summary.get("eos_table"),
        "eos_seconds": ph.get("micro_solve", {}).get("max"),
        "run_wall": timing["wall_seconds"], "outer_wall": outer,
        "tasks_per_rank": timing["farm"]["tasks_per_rank"], "load_imbalance": timing["farm"]["load_imbalance"],
        "phases_max": {k: v["max"] for k, v in ph.items()},
        "cpu_all_ranks": sum(cpus),
        "foreign_cores": max(0.0, system_busy() - busy0 - sum(cpus)) / outer,
        "states": _STEPS.get("states"),
    }


def worker(args) -> dict | None:
    from mpi4py import MPI
    import importlib
    for name in ("petsc4py.PETSc", "h5py", "hmmpar.apps.gas_dynamics"):
        importlib.import_module(name)  # PetscInitialize is collective on COMM_WORLD
    from hmmpar.apps import app_class
    world = MPI.COMM_WORLD
    tmp = Path(args.tmp)
    install_step_clock(app_class("gas_dynamics"))
    out: dict = {"runs": [], "warmup": []}
    for p in (1, 2):  # numba's first calls, imports, on both communicators
        r = run_on(world, p, 8, 0.01, tmp / f"warm{p}", True)
        if world.rank == 0:
            out["warmup"].append({k: r.get(k) for k in ("ranks", "outer_wall", "error")})
    best: dict = {}
    walls: dict = {}
    for rep in range(args.repeats):  # interleaved: every (N, ranks) once per pass
        for cells in args.cells:
            for p in (1, 2):
                d = tmp / f"n{cells}_p{p}_{rep}"
                r = run_on(world, p, cells, args.t_end, d, args.quick)
                if world.rank == 0:
                    key = (cells, p)
                    msg = r.get("error") or (f"{r['steps']} steps, {r['wall_per_step']:.2f} s/step wall, "
                                             f"{r['cpu_per_step']:.2f} s/step CPU, other jobs "
                                             f"{r['foreign_cores']:.2f} cores")
                    print(f"    pass {rep + 1}, N = {cells:3d}, {p} rank(s): {msg}", file=sys.stderr, flush=True)
                    if "error" not in r:
                        walls.setdefault(key, []).append(r["loop_wall"])
                    if key not in best or ("error" in best[key] and "error" not in r) or (
                            "error" not in r and r["loop_wall"] < best[key]["loop_wall"]):
                        best[key] = r
                    shutil.rmtree(d, ignore_errors=True)
    if world.rank == 0:
        for key in sorted(best):
            best[key]["repeat_loop_walls"] = walls.get(key, [])
            out["runs"].append(best[key])
    return out if world.rank == 0 else None


# ---------------------------------------------------------------------- direct MD of the tube
def tube_system(length: float, side: float, states: dict, seed: int):
    """The whole tube: [0, L) x [0, a)^2, left half at the left state, right half at the
    right one (random sequential addition, minimum image across both seams)."""
    from hmmpar.micro.md.engine import DEFAULT_SKIN, MDSystem
    from hmmpar.micro.md.lattice import maxwell_boltzmann, random_positions_in_slabs
    from hmmpar.micro.md.potentials import make_potential
    rng = np.random.default_rng(seed)
    box = np.array([length, side, side])
    half = 0.5 * length
    n_left = int(round(states["left"]["rho"] * side * side * half))
    n_right = int(round(states["right"]["rho"] * side * side * half))
    d_min = min(0.9, 0.7 * max(states["left"]["rho"], states["right"]["rho"]) ** (-1.0 / 3.0))
    placed = random_positions_in_slabs([n_left, n_right], box, rng, d_min)
    v = np.concatenate([maxwell_boltzmann(n_left, states["left"]["temperature"], rng),
                        maxwell_boltzmann(n_right, states["right"]["temperature"], rng)])
    pot = make_potential("lj", cutoff=CUTOFF, shift=True)
    return placed, v, box, pot, DEFAULT_SKIN, MDSystem


def direct_md(lengths: list[float], side: float, states: dict) -> list[dict]:
    """CPU seconds of a direct MD of the tube to macro time T_COMPARE, per length."""
    out = []
    x, v, box, pot, skin, MDSystem = tube_system(20.0, side, states, 0)
    MDSystem(x, v, box, pot, skin=skin).run(10, DT_MD)  # numba's first call
    for length in lengths:
        x, v, box, pot, skin, MDSystem = tube_system(length, side, states, int(length))
        steps = int(round(T_COMPARE * length / DT_MD))
        busy0, own0 = system_busy(), own_cpu()
        c0, t0 = time.process_time(), time.perf_counter()
        system = MDSystem(x, v, box, pot, skin=skin)
        system.run(steps, DT_MD)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        foreign = max(0.0, system_busy() - busy0 - (own_cpu() - own0)) / wall
        n = len(x)
        r = {"length": length, "atoms": n, "steps": steps, "atom_steps": n * steps, "cpu": cpu, "wall": wall,
             "atom_steps_per_cpu_s": n * steps / cpu, "neighbour_builds": int(system.n_builds),
             "foreign_cores": foreign}
        print(f"    L = {length:5.0f} sigma: {n} atoms x {steps} steps, {cpu:.2f} s CPU "
              f"({r['atom_steps_per_cpu_s'] / 1e6:.2f} M atom-steps/s)", flush=True)
        out.append(r)
    return out


# ---------------------------------------------------------------------- analysis
def analyse(hmm: dict, direct: list[dict], geometry: dict) -> dict:
    runs = [r for r in hmm.get("runs", []) if "error" not in r]
    by = {(r["cells"], r["ranks"]): r for r in runs}
    cells = sorted({r["cells"] for r in runs})
    speedup = {}
    for n in cells:
        a, b = by.get((n, 1)), by.get((n, 2))
        if a and b:
            speedup[n] = {"wall": a["loop_wall"] / b["loop_wall"],
                          "cpu_ratio_2_over_1": b["cpu_per_step"] / a["cpu_per_step"],
                          "cores_obtained": [a["loop_cpu"] / a["loop_wall"], b["loop_cpu"] / b["loop_wall"]],
                          "projected_on_free_cores": 2.0 * a["cpu_per_step"] / b["cpu_per_step"],
                          "foreign_cores": [a["foreign_cores"], b["foreign_cores"]],
                          "note": "wall = (cores obtained, 2 ranks / 1 rank) / cpu_ratio_2_over_1; "
                                  "projected_on_free_cores = 2 / cpu_ratio_2_over_1 (an estimate: 2 dedicated "
                                  "cores, waiting counted as CPU)"}
    rate_d = (sum(d["atom_steps"] for d in direct) / sum(d["cpu"] for d in direct)) if direct else None
    rho_a = geometry["rho_mean"] * geometry["cross_section"]  # atoms per sigma of tube

    def c_direct(length):
        return rho_a * length * (T_COMPARE * length / DT_MD) / rate_d

    hmm_cost = {}
    for n in cells:
        r = by.get((n, 1))
        if not r:
            continue
        steps = T_COMPARE / r["macro_step_time"]
        c = r["cpu_per_step"] * steps
        entry = {"cpu_per_step": r["cpu_per_step"], "macro_step_time": r["macro_step_time"],
                 "steps_to_t": steps, "core_seconds": c,
                 "atom_steps": r["atom_steps_per_step"] * steps}
        if rate_d:
            entry["L_star"] = math.sqrt(c * rate_d * DT_MD / (rho_a * T_COMPARE))
            entry["h_star"] = entry["L_star"] / n
            # the closed form: (h*)^2 = s n_box (t_eq + t_sample) r_D / (CFL rho_mean A r_H) x (2N+1)/(2N),
            # s = the wave speed of the run's CFL step (macro step = 2 half steps of CFL h / s)
            s = 2.0 * CFL / (n * r["macro_step_time"])
            entry["wave_speed"] = s
            entry["h_star_closed_form"] = math.sqrt(
                s * ATOMS * (T_EQ + T_SAMPLE) * rate_d / (CFL * rho_a * r["atom_steps_per_cpu_s"])
                * (2 * n + 1) / (2 * n))
            entry["direct_at_h"] = {str(h): c_direct(n * h) for h in (10, 100, 1000)}
        hmm_cost[n] = entry
    fit = {}
    if len(hmm_cost) >= 2:
        x = np.log(list(hmm_cost))
        y = np.log([e["core_seconds"] for e in hmm_cost.values()])
        slope, icpt = np.polyfit(x, y, 1)
        k2 = float(np.exp(np.mean(y - 2 * x)))
        fit = {"exponent": float(slope), "prefactor": float(np.exp(icpt)), "k_N2": k2,
               "note": "C_H = prefactor N^exponent (least squares); k_N2: C_H = k N^2 through the points"}
        wps = [by[(n, 1)]["wall_per_step"] for n in hmm_cost]
        s1, _ = np.polyfit(x, np.log(wps), 1)
        fit["wall_per_step_exponent_1rank"] = float(s1)
    out = {"speedup_1_to_2": speedup, "direct_rate_atom_steps_per_cpu_s": rate_d, "hmm_cost_to_t": hmm_cost,
           "hmm_fit": fit, "t_compare": T_COMPARE}
    if rate_d and fit:
        # closed form of the crossover width from the HMM's own rate and a wave speed
        r_h = [by[(n, 1)]["atom_steps_per_cpu_s"] for n in hmm_cost]
        out["hmm_rate_atom_steps_per_cpu_s"] = float(np.mean(r_h))
        hs = [e["h_star"] for e in hmm_cost.values()]
        out["h_star_mean"] = float(np.mean(hs))
        out["crossover"] = (
            f"a direct MD of the tube (cost ~ L^2) costs as much as the HMM with N cells (cost ~ N^2, independent of L) "
            f"at L* = N h*, h* = {min(hs):.1f} .. {max(hs):.1f} sigma for N = {min(hmm_cost)} .. {max(hmm_cost)} "
            f"(micro box side {geometry['side']:.2f} sigma): the HMM is cheaper once a macro cell is wider than "
            f"about {np.mean(hs):.0f} sigma (e.g. N = {max(hmm_cost)} cells: tube longer than "
            f"{hmm_cost[max(hmm_cost)]['L_star']:.0f} sigma); at cell width h its cost is (h*/h)^2 of the direct MD's")
    return out


# ---------------------------------------------------------------------- plot and table
def plot(path: Path, report: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [r for r in report["hmm"].get("runs", []) if "error" not in r]
    an = report["analysis"]
    fig, ax = plt.subplots(1, 3, figsize=(17, 5.2))
    # (a) wall per step vs cells, 1 and 2 ranks
    a = ax[0]
    for p, mk in ((1, "o"), (2, "s")):
        rr = sorted((r for r in runs if r["ranks"] == p), key=lambda r: r["cells"])
        if rr:
            a.plot([r["cells"] for r in rr], [r["wall_per_step"] for r in rr], "-" + mk, label=f"{p} rank(s), wall")
            a.plot([r["cells"] for r in rr], [r["cpu_per_step"] for r in rr], ":" + mk, color=a.lines[-1].get_color(),
                   alpha=0.6, label=f"{p} rank(s), CPU (sum over ranks)")
    one = sorted((r for r in runs if r["ranks"] == 1), key=lambda r: r["cells"])
    if one:
        n = np.array([r["cells"] for r in one], float)
        k = np.mean([r["wall_per_step"] / r["cells"] for r in one])
        a.plot(n, k * n, "k--", lw=0.8, label="~ N")
    lines = ["speed-up 1 -> 2 ranks (wall)      on 2 free cores"]
    for n, s in an["speedup_1_to_2"].items():
        lines.append(f"N = {int(n):>3}: x{s['wall']:.2f} (our cores {s['cores_obtained'][0]:.2f} -> "
                     f"{s['cores_obtained'][1]:.2f})   x{s['projected_on_free_cores']:.2f} (est.)")
    if len(lines) > 1:
        a.text(0.98, 0.03, "\n".join(lines), transform=a.transAxes, ha="right", va="bottom", fontsize=7,
               family="monospace", bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set(xlabel="macro cells N", ylabel="seconds per macro step (EOS table excluded)",
          title="HMM step cost (LxF, 2N+1 MD boxes/step)\nspeed-up 1 -> 2 ranks in the box (2 cores shared with other jobs)")
    a.legend(fontsize=7)
    # (b) HMM cost to t vs N, with direct MD at fixed cell width
    a = ax[1]
    hc = an["hmm_cost_to_t"]
    if hc:
        n = np.array([int(k) for k in hc], float)
        c = np.array([e["core_seconds"] for e in hc.values()])
        a.plot(n, c, "o", color="C0", ms=7, label="HMM (measured cost/step x steps)")
        ng = np.geomspace(4, 1024, 50)
        fit = an["hmm_fit"]
        if fit:
            a.plot(ng, fit["k_N2"] * ng ** 2, "-", color="C0", lw=1, label="HMM model ~ N^2")
        rate = an["direct_rate_atom_steps_per_cpu_s"]
        geo = report["geometry"]
        if rate:
            for h, ls in ((10, ":"), (100, "--"), (1000, "-.")):
                length = ng * h
                cd = geo["rho_mean"] * geo["cross_section"] * length * (T_COMPARE * length / DT_MD) / rate
                a.plot(ng, cd, ls, color="C3", lw=1, label=f"direct MD, cell width h = {h} sigma (L = N h)")
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set(xlabel="macro cells N", ylabel=f"core-seconds to t = {T_COMPARE}",
          title="cost vs resolution: both ~ N^2 at a fixed cell width;\nthe ratio HMM/direct ~ 1/h^2")
    a.legend(fontsize=7)
    # (c) cost vs tube length L
    a = ax[2]
    d = report["direct"]
    rate = an["direct_rate_atom_steps_per_cpu_s"]
    geo = report["geometry"]
    if d and rate:
        lg = np.geomspace(10, 1e5, 60)
        cd = geo["rho_mean"] * geo["cross_section"] * lg * (T_COMPARE * lg / DT_MD) / rate
        a.plot(lg, cd, "-", color="C3", lw=1.2, label="direct MD model ~ L^2 (measured rate)")
        a.plot([x["length"] for x in d], [x["cpu"] for x in d], "o", color="C3", ms=7, label="direct MD (measured)")
    for i, (nk, e) in enumerate(hc.items()):
        col = f"C{i}" if i < 3 else f"C{i + 1}"
        a.axhline(e["core_seconds"], color=col, ls="-", lw=1, label=f"HMM N = {nk} (measured; any L)")
        if "L_star" in e:
            a.plot([e["L_star"]], [e["core_seconds"]], "x", color="k", ms=9)
            a.annotate(f"L* = {e['L_star']:.0f}", (e["L_star"], e["core_seconds"]), textcoords="offset points",
                       xytext=(6, 4), fontsize=8)
    fit = an["hmm_fit"]
    if fit and rate:
        for nk in (128, 1024):
            c = fit["k_N2"] * nk ** 2
            a.axhline(c, color="gray", ls=":", lw=1)
            ls = math.sqrt(c * rate * DT_MD / (geo["rho_mean"] * geo["cross_section"] * T_COMPARE))
            a.plot([ls], [c], "x", color="gray", ms=8)
            a.annotate(f"HMM N = {nk} (model ~ N^2), L* = {ls:.0f}", (ls, c), textcoords="offset points",
                       xytext=(-6, 4), ha="right", fontsize=8, color="gray")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set(xlabel="tube length L (sigma); macro domain [0, 1] -> L sigma", ylabel=f"core-seconds to t = {T_COMPARE}",
          title=f"HMM vs direct MD of the tube (cross-section {geo['cross_section']:.0f} sigma^2)\n"
                f"HMM cheaper right of L* = N h*, h* ~ {an.get('h_star_mean', float('nan')):.0f} sigma")
    a.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(report: dict) -> None:
    runs = report["hmm"].get("runs", [])
    print(f"\nHMM, LJ shock tube, staggered LxF order 1, {ATOMS}-atom boxes, t_end = {report['config']['t_end']}")
    print(f"  {'N':>4} {'ranks':>5} {'steps':>5} {'tasks/step':>10} {'Matom-st/step':>13} {'wall/step':>9} "
          f"{'CPU/step':>8} {'EOS s':>6} {'other cores':>11}")
    for r in runs:
        if "error" in r:
            print(f"  {r['cells']:>4} {r['ranks']:>5} error: {r['error']}")
            continue
        print(f"  {r['cells']:>4} {r['ranks']:>5} {r['steps']:>5} {r['tasks_per_step']:>10.1f} "
              f"{r['atom_steps_per_step'] / 1e6:>13.2f} {r['wall_per_step']:>9.3f} {r['cpu_per_step']:>8.3f} "
              f"{(r['eos_seconds'] or 0):>6.2f} {r['foreign_cores']:>11.2f}")
    an = report["analysis"]
    for n, s in an["speedup_1_to_2"].items():
        print(f"  N = {n}: speed-up 1 -> 2 ranks {s['wall']:.2f} (wall, 2 shared cores: our ranks got "
              f"{s['cores_obtained'][0]:.2f} -> {s['cores_obtained'][1]:.2f} cores), CPU per step 2 ranks / 1 rank "
              f"{s['cpu_ratio_2_over_1']:.2f}, projected on 2 free cores {s['projected_on_free_cores']:.2f}")
    print("\ndirect MD of the tube (one core):")
    for d in report["direct"]:
        print(f"  L = {d['length']:6.0f} sigma: {d['atoms']:>6} atoms x {d['steps']:>6} steps, {d['cpu']:7.2f} s CPU, "
              f"{d['atom_steps_per_cpu_s'] / 1e6:.2f} M atom-steps/s")
    print(f"\ncost to t = {T_COMPARE} (core-seconds):")
    for n, e in an["hmm_cost_to_t"].items():
        print(f"  HMM N = {n:>3}: {e['steps_to_t']:.1f} steps x {e['cpu_per_step']:.3f} s = {e['core_seconds']:.1f} s; "
              f"equal to a direct MD of L* = {e.get('L_star', float('nan')):.0f} sigma (h* = {e.get('h_star', float('nan')):.1f}, "
              f"closed form {e.get('h_star_closed_form', float('nan')):.1f})")
    if an.get("hmm_fit"):
        print(f"  HMM cost ~ N^{an['hmm_fit']['exponent']:.2f}; wall per step ~ N^{an['hmm_fit']['wall_per_step_exponent_1rank']:.2f}")
    if an.get("crossover"):
        print("  " + an["crossover"])


# ---------------------------------------------------------------------- driver
def _env() -> dict:
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_mpi_yield_when_idle": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def launch(args) -> dict:
    cmd = [args.mpirun, "--oversubscribe", "-n", "2", sys.executable, str(Path(__file__).resolve()),
           "--worker", "--tmp", args.tmp, "--t-end", str(args.t_end),
           "--repeats", str(args.repeats), "--cells", *map(str, args.cells)]
    if args.quick:
        cmd.append("--quick")
    print("  1. HMM runs (mpirun --oversubscribe -n 2) ...", flush=True)
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = system_busy()
    try:
        proc = subprocess.run(cmd, env=_env(), stdout=subprocess.PIPE, stderr=None, text=True, timeout=args.timeout)
        stdout, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc = f"timeout after {args.timeout} s"
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    print(f"    {wall:.1f} s", flush=True)
    for line in stdout.splitlines():
        if line.startswith(JSON_TAG):
            r = json.loads(line[len(JSON_TAG):])
            r["launch"] = {"wall": wall, "cpu": ours, "foreign_cores": max(0.0, system_busy() - busy0 - ours) / wall}
            return r
    print(f"    failed (exit {rc})", flush=True)
    return {"error": f"exit {rc}", "runs": []}


def driver_main(args) -> int:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "gas_dynamics" + ("_quick" if args.quick else "")
    t0 = time.perf_counter()
    args.tmp = tempfile.mkdtemp(prefix="hmmpar-gasbench-")
    print(f"gas dynamics benchmark{' (quick)' if args.quick else ''}: N = {args.cells} on 1 and 2 ranks, "
          f"direct MD L = {args.lengths} sigma")
    try:
        hmm = launch(args)
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
    rho_mean = X0 * LEFT[0] + (1 - X0) * RIGHT[0]
    side = (ATOMS / rho_mean) ** (1.0 / 3.0)
    geometry = {"rho_mean": rho_mean, "side": side, "cross_section": side * side,
                "mapping": "macro [0, 1] -> L sigma, macro time t -> L t (LJ units on both levels)"}
    states = next((r["states"] for r in hmm.get("runs", []) if isinstance(r.get("states"), dict)
                   and "left" in r["states"]), None)
    if states is None:  # without the HMM's EOS: the ideal-gas temperatures p / rho
        states = {"left": {"rho": LEFT[0], "temperature": LEFT[2] / LEFT[0]},
                  "right": {"rho": RIGHT[0], "temperature": RIGHT[2] / RIGHT[0]}}
    geometry["states"] = states
    print("  2. direct MD of the tube (this process, one core) ...", flush=True)
    direct: list[dict] = []
    try:
        direct = direct_md(args.lengths, side, states)
    except Exception as exc:  # noqa: BLE001 - benchmarks never fail
        print(f"    direct MD failed: {exc!r}", flush=True)
    report = {"benchmark": "gas_dynamics: HMM (MD fluxes) cost vs cells and ranks, vs direct MD of the tube",
              "quick": args.quick, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
              "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
              "config": {"cells": args.cells, "t_end": args.t_end, "lengths": args.lengths, "repeats": args.repeats,
                         "left": LEFT, "right": RIGHT, "x0": X0, "atoms_per_box": ATOMS, "t_equilibrate": T_EQ,
                         "t_sample": T_SAMPLE, "dt_md": DT_MD, "cfl": CFL, "t_compare": T_COMPARE,
                         "overrides": overrides(args.cells[0], args.t_end, args.quick),
                         "timing": "wall per step = loop wall (first step's rows to the end of the last step) / "
                                   "steps, EOS table excluded; CPU = getrusage of the rank processes, summed; "
                                   "costs in core-seconds (CPU) of 1-rank runs"},
              "geometry": geometry, "hmm": hmm, "direct": direct}
    report["analysis"] = analyse(hmm, direct, geometry)
    report["wall_seconds"] = time.perf_counter() - t0
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    try:
        plot(out_dir / f"{stem}.png", report)
    except Exception as exc:  # noqa: BLE001
        print(f"plot failed: {exc!r}")
    try:
        print_table(report)
    except Exception as exc:  # noqa: BLE001
        print(f"table failed: {exc!r}")
    print(f"\nwrote {out_dir / (stem + '.json')} and {out_dir / (stem + '.png')} ({time.perf_counter() - t0:.0f} s)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: N = 8, 16, t_end 0.03, direct L = 25, 50")
    ap.add_argument("--cells", type=int, nargs="+", default=None, help="macro cells (default 8 16 32)")
    ap.add_argument("--t-end", type=float, default=None, help="macro t_end of the HMM runs (default 0.05)")
    ap.add_argument("--lengths", type=float, nargs="+", default=None,
                    help="tube lengths of the direct MD in sigma (default 25 50 100 200)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved passes over the HMM runs, the fastest loop counts (default 2, quick 1)")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    q = args.quick
    args.cells = args.cells or ([8, 16] if q else [8, 16, 32])
    args.t_end = args.t_end or (0.03 if q else 0.05)
    args.repeats = args.repeats or (1 if q else 2)
    args.lengths = args.lengths or ([25.0, 50.0] if q else [25.0, 50.0, 100.0, 200.0])
    if args.worker:
        result = worker(args)
        if result is not None:
            _emit(result)
        return 0
    if any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")):
        print("benchmarks/gas_dynamics.py: run it without mpirun; it launches mpirun itself", file=sys.stderr)
        return 0
    try:
        return driver_main(args)
    except Exception as exc:  # noqa: BLE001 - benchmarks never fail
        print(f"gas dynamics benchmark error: {exc!r}", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main())
