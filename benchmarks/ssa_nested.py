#!/usr/bin/env python
"""Nested SSA against the exact SSA on the heat-shock model: cost to equal accuracy, profile, scaling.

This is a measurement, not a test: it always exits 0. Run it without ``mpirun``::

    python benchmarks/ssa_nested.py            # ~12 min on 2 cores
    python benchmarks/ssa_nested.py --quick    # ~1.5 min smoke run

Parts (results in ``benchmarks/results/ssa_nested[_quick].json`` and ``.png``):

1. **Profile of the nested inner loop** (in this process, CPU time, best of
   ``--repeats``): ns per event of the SSA kernel alone on the fast reactions with the
   slow propensities integrated (what an inner replica runs); ns per inner event inside
   Nested SSA steps (lambda = 1: N = 1, T_f = eps); the fixed cost of an outer step and
   of a replica, measured with T_f = 1e-9 (no inner events).
2. **Cost to the same standard error** on s32's mean and variance at T = 10: the ``ssa``
   app (drivers/configs/ssa_heat_shock.toml: 50 sample windows) under ``mpirun -n 2``
   with ``ensemble.method = "direct"`` (``--direct`` trajectories) and ``"nested"`` at
   each tolerance of ``--tolerances`` (``--nested`` trajectories). Per method: CPU
   seconds per trajectory c (measured around every trajectory-window in the app) and
   the per-trajectory variance of each estimator: sigma^2 for the mean,
   m4 - sigma^4 for the sample variance. Reaching a standard error s takes n = v / s^2
   trajectories, i.e. CPU c v / s^2, so the direct/nested cost ratio at equal standard
   error is (c_d v_d) / (c_n v_n). The nested bias (nested minus direct, with its
   standard error) is reported beside it: the ratio is only meaningful while the bias
   stays below the standard error one aims for.
3. **Ensemble scaling 1 -> 2 ranks**: the nested heat-shock run (``--scaling-trajectories``, 2048)
   under ``mpirun -n 1`` and ``-n 2``, ``--scaling-repeats`` pairs, best of each;
   efficiency = T1 / (2 T2) of the stepping loop (``farm_total`` in timing.json) and of
   the whole run. The two runs' ssa.h5 trajectories are compared bitwise.

4. **Replicas as tasks** (``ensemble.parallel = "replicas"``): ``--replica-trajectories``
   trajectories with ``--replica-n`` replicas per outer step (T_f = 4 eps) under
   ``mpirun -n 1`` and ``-n 2``; efficiency of the replica rounds (phase
   ``replica_rounds`` in timing.json), bitwise comparison of the two runs.

Other jobs on the machine are measured from /proc/stat during every launch
(``foreign_cores``) so that noisy numbers can be recognised. ``--parts`` runs a subset
and merges it into the existing JSON (e.g. to repeat the scaling on a quieter machine).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from cpu_usage import system_busy  # noqa: E402

CONFIG = REPO / "drivers" / "configs" / "ssa_heat_shock.toml"
MODEL = REPO / "drivers" / "configs" / "models" / "heat_shock.toml"
SPECIES = "s32"
PARTS = ("profile", "cost", "scaling", "replicas")


# ---------------------------------------------------------------------- part 1: profile
def profile(repeats: int) -> dict:
    """CPU-time profile of the kernel and of Nested SSA steps (in this process)."""
    from hmmpar.micro.ssa.direct import simulate
    from hmmpar.micro.ssa.model import ReactionNetwork
    from hmmpar.micro.ssa.nested import NestedParameters, WindowRunner
    net = ReactionNetwork.from_toml(MODEL)
    x0 = net.initial_counts

    def best(fn):
        fn()  # compile / warm up
        out = None
        for _ in range(repeats):
            c0 = time.process_time()
            r = fn()
            dt = time.process_time() - c0
            if out is None or dt < out[0]:
                out = (dt, r)
        return out

    dt, r = best(lambda: simulate(net, 0.5, seed_key=3, active=net.fast_reactions, integrate=net.slow_reactions))
    kernel_ns = dt / r.n_events * 1e9

    def nested(replicas, t_f, t_end):
        w = WindowRunner(net, "nested", NestedParameters(tolerance=1.0, replicas=replicas, averaging_time=t_f))
        return lambda: w.advance(x0.copy(), 0.0, t_end, 11)

    out = {"kernel_fast_only_ns_per_event": kernel_ns}
    for n in (1, 10):
        dt, c = best(nested(n, 0.0, 2.0))
        dt0, c0 = best(nested(n, 1e-9, 10.0))
        fixed = dt0 / c0[2]
        per_event = dt / c[0]
        out[f"N{n}"] = {
            "inner_events_per_step": c[0] / c[2], "ns_per_inner_event": per_event * 1e9,
            "step_seconds": dt / c[2], "fixed_seconds_per_step": fixed,
            "fixed_share": fixed / (dt / c[2]),
            "kernel_share": c[0] * kernel_ns * 1e-9 / dt,
        }
    return out


# ---------------------------------------------------------------------- launching the app
def _env() -> dict:
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_rmaps_base_oversubscribe": "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_app(args, label: str, ranks: int, out: Path, overrides: list[str]) -> dict:
    """``mpirun -n ranks python -m hmmpar.cli run CONFIG --set ...``; summary, timing, launch info."""
    cmd = [args.mpirun, "--oversubscribe", "-n", str(ranks), sys.executable, "-m", "hmmpar.cli", "run",
           str(CONFIG), "--quiet", "--set", f'run.output_dir="{out}"', "--set", "output.plots=false",
           "--set", "checkpoint.every_steps=0", "--set", "checkpoint.at_end=false", *sum((["--set", o] for o in overrides), [])]
    print(f"  {label:<44s}...", end="", flush=True)
    t0, busy0 = time.perf_counter(), system_busy()
    import resource
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    foreign = max(0.0, system_busy() - busy0 - ours)
    launch = {"wall": wall, "cpu_ours": ours, "foreign_cores": foreign / wall}
    if proc.returncode != 0:
        print(f" failed (exit {proc.returncode})", flush=True)
        return {"error": " | ".join(proc.stderr.strip().splitlines()[-3:]), "launch": launch}
    print(f" {wall:6.1f} s" + (f" (other jobs used {foreign / wall:.2f} cores)" if foreign > 0.05 * wall else ""),
          flush=True)
    summary = json.loads((out / "summary.json").read_text())
    timing = json.loads((out / "timing.json").read_text())
    return {"summary": summary, "timing": timing, "launch": launch, "dir": str(out)}


def _observable(out: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    import hmmpar  # noqa: F401 - MPI h5py
    import h5py
    with h5py.File(out / "ssa.h5", "r") as f:
        return np.array(f["times"]), np.array(f[f"observables/{name}/values"], dtype=float)


def per_trajectory_variances(values: np.ndarray) -> dict:
    """Estimates and per-trajectory variances of the mean and the sample variance."""
    n = values.size
    m = values.mean()
    var = values.var(ddof=1)
    m4 = ((values - m) ** 4).mean()
    v_var = max(m4 - var ** 2 * (n - 3) / (n - 1), 0.0)
    return {"n": n, "mean": m, "se_mean": math.sqrt(var / n), "variance": var,
            "se_variance": math.sqrt(v_var / n), "v_mean": var, "v_variance": v_var}


def accuracy_and_cost(args) -> dict:
    runs = {}
    runs["direct"] = run_app(args, f"2. direct SSA, {args.direct} trajectories, -n 2", 2,
                             Path(args.tmp) / "direct", ["ensemble.method=\"direct\"",
                                                         f"ensemble.trajectories={args.direct}"])
    for lam in args.tolerances:
        runs[f"nested_{lam:g}"] = run_app(args, f"2. nested lambda={lam:g}, {args.nested} trajectories, -n 2", 2,
                                          Path(args.tmp) / f"nested_{lam:g}",
                                          [f"ensemble.trajectories={args.nested}", f"nested.tolerance={lam}"])
    for lam in args.no_reuse:  # the paper's algorithm: every outer step runs its replicas
        runs[f"nested_{lam:g}_noreuse"] = run_app(
            args, f"2. nested lambda={lam:g} without reuse, {args.nested} trajectories, -n 2", 2,
            Path(args.tmp) / f"nested_{lam:g}_noreuse",
            [f"ensemble.trajectories={args.nested}", f"nested.tolerance={lam}", "nested.reuse_averages=false"])
    out = {"runs": {}, "series": {}}
    for name, r in runs.items():
        if "error" in r:
            out["runs"][name] = r
            continue
        times, values = _observable(Path(r["dir"]), SPECIES)
        s = r["summary"]
        stats = per_trajectory_variances(values[:, -1])
        cpu = s["cpu_seconds"]["per_trajectory"]
        out["runs"][name] = {"cpu_per_trajectory": cpu, "final": stats, "events": s["events"],
                             "parameters": s["parameters"], "launch": r["launch"],
                             "outer_steps_per_trajectory": s.get("outer_steps", 0) / s["trajectories"],
                             "reused_averages_per_trajectory": s.get("reused_averages", 0) / s["trajectories"]}
        out["series"][name] = {"times": times.tolist(), "mean": values.mean(axis=0).tolist(),
                               "se": (values.std(axis=0, ddof=1) / math.sqrt(values.shape[0])).tolist()}
    d = out["runs"].get("direct", {})
    for name, r in out["runs"].items():
        if name == "direct" or "final" not in r or "final" not in d:
            continue
        fd, fn = d["final"], r["final"]
        r["cost_ratio_mean"] = d["cpu_per_trajectory"] * fd["v_mean"] / (r["cpu_per_trajectory"] * fn["v_mean"])
        r["cost_ratio_variance"] = (d["cpu_per_trajectory"] * fd["v_variance"]
                                    / (r["cpu_per_trajectory"] * fn["v_variance"]))
        r["cpu_ratio_per_trajectory"] = d["cpu_per_trajectory"] / r["cpu_per_trajectory"]
        se_m = math.hypot(fd["se_mean"], fn["se_mean"])
        se_v = math.hypot(fd["se_variance"], fn["se_variance"])
        r["bias_mean"] = {"value": fn["mean"] - fd["mean"], "se": se_m, "z": (fn["mean"] - fd["mean"]) / se_m}
        r["bias_variance"] = {"value": fn["variance"] - fd["variance"], "se": se_v,
                              "z": (fn["variance"] - fd["variance"]) / se_v}
    return out


def best_of_pairs(args, part: str, stem: str, over: list[str], phase: str, key: str, extra) -> dict:
    """Runs on 1 and 2 ranks, ``--scaling-repeats`` pairs; per rank count the run with the
    least ``phase`` time (max over ranks, stored as ``key``; ``extra(run)`` adds entries).
    Returns {"T1", "T2", "bitwise_identical"} or {"error"}."""
    import hmmpar  # noqa: F401
    import h5py
    best = {}
    for rep in range(args.scaling_repeats):
        for ranks in (1, 2):
            r = run_app(args, f"{part}, {ranks} rank(s), repeat {rep + 1}", ranks,
                        Path(args.tmp) / f"{stem}{ranks}_{rep}", over)
            if "error" in r:
                return {"error": r["error"]}
            t = r["timing"]["phases"][phase]["max"]
            entry = {key: t, "wall": r["timing"]["wall_seconds"], "foreign_cores": r["launch"]["foreign_cores"],
                     "dir": r["dir"], **extra(r)}
            if ranks not in best or t < best[ranks][key]:
                best[ranks] = entry
    with h5py.File(Path(best[1]["dir"]) / "ssa.h5", "r") as a, h5py.File(Path(best[2]["dir"]) / "ssa.h5", "r") as b:
        same = np.array(a["trajectories"]).tobytes() == np.array(b["trajectories"]).tobytes()
    return {"T1": best[1], "T2": best[2], "bitwise_identical": same}


def scaling(args) -> dict:
    res = best_of_pairs(args, "3. scaling", "scale", [f"ensemble.trajectories={args.scaling_trajectories}"],
                        "farm_total", "loop",
                        lambda r: {"launch_wall": r["launch"]["wall"],
                                   "load_imbalance": r["timing"]["farm"]["load_imbalance"]})
    if "error" in res:
        return res
    t1, t2 = res["T1"], res["T2"]
    return {"trajectories": args.scaling_trajectories, **res,
            "efficiency_loop": t1["loop"] / (2 * t2["loop"]), "efficiency_wall": t1["wall"] / (2 * t2["wall"])}


def replica_mode(args) -> dict:
    over = [f"ensemble.trajectories={args.replica_trajectories}", f"nested.replicas={args.replica_n}",
            "nested.tolerance=0.25", 'ensemble.parallel="replicas"']
    res = best_of_pairs(args, "4. replica mode", "replicas", over, "replica_rounds", "rounds_seconds",
                        lambda r: {"farm_rounds": r["summary"]["replica_rounds"],
                                   "outer_steps": r["summary"]["outer_steps"],
                                   "inner_events": r["summary"]["events"]["inner"]})
    if "error" in res:
        return res
    t1, t2 = res["T1"], res["T2"]
    return {"trajectories": args.replica_trajectories, "replicas": args.replica_n, **res,
            "seconds_per_round_1": t1["rounds_seconds"] / t1["farm_rounds"],
            "efficiency": t1["rounds_seconds"] / (2 * t2["rounds_seconds"])}


# ---------------------------------------------------------------------- report
def plot(path: Path, acc: dict, scale: dict, prof: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    ax = axes[0]
    for name, s in acc.get("series", {}).items():
        t, m, se = map(np.asarray, (s["times"], s["mean"], s["se"]))
        ax.fill_between(t, m - 2 * se, m + 2 * se, alpha=0.25)
        ax.plot(t, m, label=name.replace("_", " lambda="))
    ax.set(xlabel="t", ylabel="E[s32] (band: 2 SE)", title="heat shock: s32 mean, nested vs direct")
    ax.legend(fontsize=8)
    ax = axes[1]
    names = [n for n, r in acc.get("runs", {}).items() if "cost_ratio_mean" in r]
    x = np.arange(len(names))
    ax.bar(x - 0.2, [acc["runs"][n]["cost_ratio_mean"] for n in names], 0.4, label="s32 mean")
    ax.bar(x + 0.2, [acc["runs"][n]["cost_ratio_variance"] for n in names], 0.4, label="s32 variance")
    ax.axhline(50, color="k", ls="--", lw=0.8, label="aim 50x")
    ax.set_xticks(x, [n.replace("nested_", "lambda=").replace("_noreuse", "\nno reuse") for n in names])
    ax.set(ylabel="direct CPU / nested CPU at equal SE", title="cost to the same standard error at T = 10")
    ax.legend(fontsize=8)
    ax = axes[2]
    if "error" not in scale:
        t1, t2 = scale["T1"]["loop"], scale["T2"]["loop"]
        ax.bar([0, 1], [t1, t2], color=["C0", "C1"])
        ax.plot([0, 1], [t1, t1 / 2], "k--", lw=0.8, label="ideal")
        ax.set_xticks([0, 1], ["1 rank", "2 ranks"])
        ax.set(ylabel="stepping loop [s]",
               title=f"{scale['trajectories']} nested trajectories: efficiency {scale['efficiency_loop']:.3f}")
        ax.legend(fontsize=8)
    fig.suptitle(f"Nested SSA benchmark (kernel {prof.get('kernel_fast_only_ns_per_event', float('nan')):.0f} "
                 "ns/event)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(acc: dict, scale: dict, prof: dict) -> None:
    print("\nprofile (CPU time):")
    print(f"  kernel, fast reactions + slow integrals: {prof['kernel_fast_only_ns_per_event']:.1f} ns/event")
    for n in ("N1", "N10"):
        p = prof[n]
        print(f"  nested {n}: {p['inner_events_per_step']:.0f} inner events/step, {p['ns_per_inner_event']:.1f} "
              f"ns/inner event, fixed {p['fixed_seconds_per_step'] * 1e6:.2f} us/step "
              f"({100 * p['fixed_share']:.1f}% of a step)")
    print("\ns32 at T = 10:")
    for name, r in acc["runs"].items():
        if "final" not in r:
            print(f"  {name}: {r.get('error')}")
            continue
        f = r["final"]
        line = (f"  {name:<12s} n={f['n']:<5d} mean {f['mean']:.3f} +- {f['se_mean']:.3f}  var {f['variance']:.2f} "
                f"+- {f['se_variance']:.2f}  cpu/traj {r['cpu_per_trajectory'] * 1e3:.1f} ms")
        if "cost_ratio_mean" in r:
            line += (f"  cost ratio mean {r['cost_ratio_mean']:.1f}x var {r['cost_ratio_variance']:.1f}x  "
                     f"bias mean {r['bias_mean']['value']:+.3f} (z {r['bias_mean']['z']:+.2f}) "
                     f"var {r['bias_variance']['value']:+.2f} (z {r['bias_variance']['z']:+.2f})")
        print(line)
    rep = acc.get("replica_mode", {})
    if rep and "error" not in rep:
        print(f"\nreplica mode ({rep['trajectories']} trajectories, N = {rep['replicas']}): rounds "
              f"{rep['T1']['rounds_seconds']:.2f} s -> {rep['T2']['rounds_seconds']:.2f} s, "
              f"{rep['seconds_per_round_1'] * 1e3:.1f} ms per round on 1 rank, efficiency {rep['efficiency']:.3f}, "
              f"bitwise identical: {rep['bitwise_identical']}")
    if "error" not in scale:
        print(f"\nscaling 1 -> 2 ranks ({scale['trajectories']} trajectories): loop {scale['T1']['loop']:.2f} s -> "
              f"{scale['T2']['loop']:.2f} s, efficiency {scale['efficiency_loop']:.3f} (whole run "
              f"{scale['efficiency_wall']:.3f}), bitwise identical: {scale['bitwise_identical']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: few trajectories, one repeat")
    ap.add_argument("--direct", type=int, default=None, help="direct SSA trajectories (default 400, quick 16)")
    ap.add_argument("--nested", type=int, default=None, help="nested trajectories per tolerance (default 2000, quick 200)")
    ap.add_argument("--tolerances", type=float, nargs="+", default=None,
                    help="nested tolerances lambda (default 1 2 0.5, quick 1)")
    ap.add_argument("--no-reuse", type=float, nargs="*", default=None,
                    help="tolerances also run with nested.reuse_averages = false (default 1, quick none)")
    ap.add_argument("--repeats", type=int, default=None, help="profile repeats (default 5, quick 2)")
    ap.add_argument("--scaling-trajectories", type=int, default=None, help="default 2048 (16 s of stepping on 1 rank), quick 64")
    ap.add_argument("--scaling-repeats", type=int, default=None, help="default 3, quick 1")
    ap.add_argument("--replica-trajectories", type=int, default=2)
    ap.add_argument("--replica-n", type=int, default=None, help="replicas in part 4 (default 32, quick 8)")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                    help="parts to run; the others are kept from the existing JSON")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    ap.add_argument("--timeout", type=float, default=3600.0)
    args = ap.parse_args(argv)
    q = args.quick
    args.direct = args.direct or (16 if q else 400)
    args.nested = args.nested or (200 if q else 2000)
    args.tolerances = args.tolerances or ([1.0] if q else [1.0, 2.0, 0.5])
    args.no_reuse = args.no_reuse if args.no_reuse is not None else ([] if q else [1.0])
    args.repeats = args.repeats or (2 if q else 5)
    args.scaling_trajectories = args.scaling_trajectories or (64 if q else 2048)
    args.scaling_repeats = args.scaling_repeats or (1 if q else 3)
    args.replica_n = args.replica_n or (8 if q else 32)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "ssa_nested" + ("_quick" if q else "")
    t0 = time.perf_counter()
    args.tmp = tempfile.mkdtemp(prefix="hmmpar-ssabench-")
    old = {}
    if set(args.parts) != set(PARTS) and (out_dir / f"{stem}.json").is_file():
        old = json.loads((out_dir / f"{stem}.json").read_text())
    try:
        print(f"Nested SSA benchmark{' (quick)' if q else ''}: parts {', '.join(args.parts)}")
        if "profile" in args.parts:
            print("  1. profile of the nested inner loop ...", flush=True)
        prof = profile(args.repeats) if "profile" in args.parts else old.get("profile", {})
        acc = accuracy_and_cost(args) if "cost" in args.parts else old.get("accuracy_and_cost", {})
        scale = scaling(args) if "scaling" in args.parts else old.get("scaling", {"error": "not run"})
        acc["replica_mode"] = (replica_mode(args) if "replicas" in args.parts
                               else old.get("accuracy_and_cost", {}).get("replica_mode", {"error": "not run"}))
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
    aims = {"cost_ratio_ge_50": {}, "efficiency_ge_0_9": {"value": scale.get("efficiency_loop"),
                                                        "met": bool(scale.get("efficiency_loop", 0) >= 0.9)}}
    for lam, suffix in [(lam, "") for lam in args.tolerances] + [(lam, "_noreuse") for lam in args.no_reuse]:
        r = acc.get("runs", {}).get(f"nested_{lam:g}{suffix}", {})
        if "cost_ratio_mean" in r:
            aims["cost_ratio_ge_50"][f"lambda={lam:g}{', no reuse' if suffix else ''}"] = {
                "mean": r["cost_ratio_mean"], "variance": r["cost_ratio_variance"],
                "bias_z_mean": r["bias_mean"]["z"], "bias_z_variance": r["bias_variance"]["z"],
                "met": bool(min(r["cost_ratio_mean"], r["cost_ratio_variance"]) >= 50)}
    report = {"benchmark": "hmmpar.apps.nested_ssa (heat shock)", "quick": q,
              "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(), "cpu_count": os.cpu_count(),
              "python": sys.version.split()[0], "config": str(CONFIG.relative_to(REPO)),
              "settings": {"parts_run_last": args.parts, "direct": args.direct, "nested": args.nested, "tolerances": args.tolerances, "no_reuse": args.no_reuse,
                           "repeats": args.repeats, "scaling_trajectories": args.scaling_trajectories,
                           "scaling_repeats": args.scaling_repeats, "replica_trajectories": args.replica_trajectories,
                           "replica_n": args.replica_n, "observable": SPECIES, "T": 10.0},
              "aims": aims, "profile": prof, "accuracy_and_cost": acc, "scaling": scale,
              "wall_seconds": time.perf_counter() - t0}
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    try:
        plot(out_dir / f"{stem}.png", acc, scale, prof)
    except Exception as exc:  # noqa: BLE001 - a benchmark never fails on its plot
        print(f"plot failed: {exc!r}")
    try:
        print_table(acc, scale, prof)
    except Exception as exc:  # noqa: BLE001
        print(f"table failed: {exc!r}")
    print(f"\nwrote {out_dir / (stem + '.json')} and .png ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
