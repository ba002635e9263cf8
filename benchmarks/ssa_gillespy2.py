#!/usr/bin/env python
"""Events per second per core: hmmpar's SSA engines against GillesPy2's compiled SSA (SSACSolver).

This is a measurement, not a test: it always exits 0. Run it alone on a quiet machine::

    python benchmarks/ssa_gillespy2.py            # ~5 min (+ ~30 s install on the first run)
    python benchmarks/ssa_gillespy2.py --quick    # smoke run, ~45 s with the venv in place

GillesPy2 (https://github.com/StochSS/GillesPy2) lives in its own venv,
``benchmarks/.venv-gillespy2`` (created here, idempotently, with ``python -m venv`` and
``pip install gillespy2``; it brings its own numpy and SCons, and needs ``g++``). Its part
runs in a worker process with that venv's Python: this same file with ``--worker``, which
reads JSON commands on stdin. If installing or compiling fails, the error is recorded in
the JSON and hmmpar's numbers are still reported.

Models (hmmpar TOML, converted by :func:`gillespy2_spec`)
    ``four_species`` (``drivers/configs/models/four_species.toml``, a_0 = 1e7) to t = 1 and
    ``heat_shock`` (``drivers/configs/models/heat_shock.toml``, a_0 = 3.0e6) to t = 3.3:
    about 1e7 events per trajectory each.

Rate constants. hmmpar: a = c, c x, c x_A x_B, c x (x-1)/2 for 0, 1, A + B, 2 A reactants.
GillesPy2 1.8 (``core/reaction.py``, ``Reaction._create_mass_action``) builds the SSA
propensity k, k x, k x_A x_B / vol, k x (x-1) / vol, with vol = 1 here (zero order:
k vol). So k = c except k = c/2 for ``2 A``. The conversion is checked statistically
(means of every species and every reaction's firing count at t_end, Welch z, |z| < 3) on
a small network with every reaction order, on which a deliberately wrong conversion
(k = c for ``2 A``) must fail, and on both benchmark models.

Counting events. SSACSolver reports no event count, so GillesPy2's events per trajectory
are counted on an *instrumented* copy of the model: every reaction j also produces one
molecule of a counter species ``EV<j>`` that is no reactant of anything (same propensities,
same dependency graph; the counter at t_end is the number of firings of j). That copy is
run once, untimed (built with -O3 only to save time), with the same t_end; its mean
events per trajectory E times the trajectories of a timed run of the *plain* model,
divided by that run's wall time, is GillesPy2's rate. E is a property of the process, not
of the engine (and its relative spread is ~1e-3 here), so it must agree with hmmpar's own
count: that agreement is reported as a z-score. hmmpar's rate uses the exact event count
of the timed run itself.

Timing. One core each (OMP_NUM_THREADS=1, NUMBA_NUM_THREADS=1; both engines are serial).
Same t_end for every engine; trajectories per timed run: 10 for hmmpar and GillesPy2 -O3,
2 for the default GillesPy2 build (5-8x slower), so each run takes ~3-10 s.
hmmpar: ``ensemble(network, n, t_end, 11 sample times, method=...)`` after a warm-up call
(numba compilation excluded). GillesPy2: ``SSACSolver(model=model)`` compiles once
(timed separately as ``compile_s``); the timed call is ``solver.run(number_of_trajectories=n,
seed=...)`` on that compiled solver, wall time including the simulator process start and
the decoding of 11 output points per trajectory (``gillespy2_overhead_s`` is that fixed
cost, from a run with t_end ~ 0). Best of ``--repeats`` (3) per method, methods interleaved
(the order rotates each repeat). Each run also records CPU time (hmmpar: the process;
GillesPy2: the simulator child process), so a run slowed by other jobs on the machine
shows cpu/wall < 1; ``best_events_per_cpu_s`` is the same rate per CPU second. Each run
records ``other_cores``: the CPU seconds of every other process on the machine per wall
second of the run (/proc/stat minus the run's own CPU time; for GillesPy2 this includes
its worker's decoding of the output, a few ms).
GillesPy2's SConstruct passes no ``-O`` flag to g++ (only ``-std=c++14``, recorded as
``gxx_compile_example``), so it runs at g++'s default -O0; as a sensitivity check the
plain model is also built with a ``g++`` wrapper adding ``-O3`` (``gillespy2_O3``, not
what users get).

Output: ``benchmarks/results/ssa_gillespy2.json`` and ``.png`` (``_quick`` with ``--quick``)
and a table on stdout.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "drivers" / "configs" / "models"
VENV = HERE / ".venv-gillespy2"
PREFIX = "@@JSON "  # worker protocol lines on stdout (GillesPy2 may print other things)
N_POINTS = 11


# ---------------------------------------------------------------------------------------
# model conversion (runs in hmmpar's interpreter; the result is plain JSON for the worker)
# ---------------------------------------------------------------------------------------

def gillespy2_spec(net, *, count_events: bool = False, dimer_factor: float = 0.5) -> dict:
    """A hmmpar ``ReactionNetwork`` as plain data for a ``gillespy2.Model`` with the same SSA.

    Species become ``S<i>``, reactions ``R<j>`` with the parameter ``k<j>`` as mass-action
    rate (volume 1). GillesPy2's SSA propensity of ``2 A`` is k x (x-1) (no 1/2), hmmpar's
    c x (x-1)/2, so k = ``dimer_factor`` * c there (0.5 is right; 1.0 is the wrong
    conversion used as a negative control); k = c for every other order. With
    ``count_events`` reaction j also produces a counter species ``EV<j>`` (initially 0).
    """
    ids = {s: f"S{i}" for i, s in enumerate(net.species)}
    species = [{"id": ids[s], "name": s, "initial": int(n)} for s, n in zip(net.species, net.initial_counts)]
    reactions = []
    for j, r in enumerate(net.reactions):
        reac = {ids[s]: int(k) for s, k in r.reactants}
        prod = {ids[s]: int(k) for s, k in r.products}
        dimer = any(k == 2 for _, k in r.reactants)
        c = float(r.rate)
        k = c * dimer_factor if dimer else c
        if count_events:
            prod[f"EV{j}"] = 1
        reactions.append({"id": f"R{j}", "equation": r.equation, "order": r.order, "reactants": reac,
                          "products": prod, "rate_hmmpar": c, "rate_gillespy2": k})
    if count_events:
        species += [{"id": f"EV{j}", "name": f"events of R{j}", "initial": 0} for j in range(net.n_reactions)]
    return {"name": net.name or "model", "volume": 1.0, "species": species, "reactions": reactions,
            "n_model_species": net.n_species, "count_events": count_events}


def check_network():
    """A small network with every reaction order (incl. ``2 A``) for the conversion check."""
    from hmmpar.micro.ssa.model import Reaction, ReactionNetwork
    return ReactionNetwork({"A": 20, "B": 5, "C": 0}, [
        Reaction.parse("0 -> A", 10.0), Reaction.parse("A -> 0", 0.1),
        Reaction.parse("2 A -> B", 0.02), Reaction.parse("B -> 2 A", 0.5),
        Reaction.parse("A + B -> C", 0.005), Reaction.parse("C -> 0", 0.3),
        Reaction.parse("B -> B + C", 0.2)], name="conversion_check")


# ---------------------------------------------------------------------------------------
# worker (runs in the GillesPy2 venv)
# ---------------------------------------------------------------------------------------

def _worker() -> None:
    import resource

    import numpy as np
    import gillespy2
    from gillespy2 import SSACSolver
    from gillespy2.solvers.cpp.build.template_gen import SanitizedModel

    solvers: dict = {}
    wrap_dir = Path(tempfile.mkdtemp(prefix="gpy2_gxx_"))
    gxx = shutil.which("g++")
    wrap_log = wrap_dir / "calls.log"
    for sub, extra in (("plain", ""), ("O3", "-O3 ")):  # g++ wrappers that log their arguments
        (wrap_dir / sub).mkdir()
        w = wrap_dir / sub / "g++"
        w.write_text(f'#!/bin/sh\necho "$@" >> "{wrap_log}"\nexec "{gxx}" {extra}"$@"\n')
        w.chmod(0o755)

    def build_model(spec):
        m = gillespy2.Model(name="m_" + "".join(ch if ch.isalnum() else "_" for ch in spec["name"]))
        m.add_species([gillespy2.Species(name=s["id"], initial_value=s["initial"], mode="discrete")
                       for s in spec["species"]])
        m.add_parameter([gillespy2.Parameter(name=f"k{j}", expression=repr(r["rate_gillespy2"]))
                         for j, r in enumerate(spec["reactions"])])
        m.add_reaction([gillespy2.Reaction(name=r["id"], reactants=r["reactants"], products=r["products"],
                                           rate=f"k{j}") for j, r in enumerate(spec["reactions"])])
        m.timespan(np.linspace(0.0, 1.0, N_POINTS))
        return m

    def reply(obj):
        sys.stdout.write(PREFIX + json.dumps(obj) + "\n")
        sys.stdout.flush()

    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            op = cmd["cmd"]
            if op == "quit":
                reply({"ok": True})
                break
            if op == "versions":
                gv = subprocess.run([gxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
                import SCons
                reply({"ok": True, "gillespy2": gillespy2.__version__, "numpy": np.__version__,
                       "python": platform.python_version(), "gxx": gv,
                       "scons": getattr(SCons, "__version__", "?")})
            elif op == "build":
                spec = cmd["spec"]
                model = build_model(spec)
                old_path = os.environ["PATH"]
                sub = "O3" if cmd.get("O3") else "plain"
                os.environ["PATH"] = f"{wrap_dir / sub}{os.pathsep}{old_path}"
                wrap_log.unlink(missing_ok=True)
                t = time.perf_counter()
                try:
                    solver = SSACSolver(model=model)
                finally:
                    os.environ["PATH"] = old_path
                dt = time.perf_counter() - t
                out = {"ok": True, "compile_s": dt, "extra_flags": "-O3" if cmd.get("O3") else ""}
                calls = wrap_log.read_text().splitlines() if wrap_log.exists() else []
                comp = [c for c in calls if " -c " in f" {c} "]
                out["gxx_compile_calls"] = len(comp)
                out["gxx_compile_example"] = (("g++ -O3 " if cmd.get("O3") else "g++ ") + comp[0]) if comp else None
                san = SanitizedModel(model)
                out["propensities_cpp"] = {spec["reactions"][i]["equation"]: p
                                           for i, p in enumerate(san.propensities.values())}
                solvers[cmd["key"]] = (solver, spec)
                reply(out)
            elif op == "run":
                solver, spec = solvers[cmd["key"]]
                t_end, n = float(cmd["t_end"]), int(cmd["n_traj"])
                solver.model.timespan(np.linspace(0.0, t_end, N_POINTS))
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                res = solver.run(number_of_trajectories=n, seed=int(cmd["seed"]))
                dt = time.perf_counter() - t
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
                ids = [s["id"] for s in spec["species"]]
                final = np.array([[float(res[i][sid][-1]) for sid in ids] for i in range(n)])
                mid = np.array([[float(res[i][sid][N_POINTS // 2]) for sid in ids] for i in range(n)])
                out = {"ok": True, "wall_s": dt, "sim_cpu_s": cpu, "n_traj": n, "t_end": t_end,
                       "time_last": float(res[0]["time"][-1]), "time_mid": float(res[0]["time"][N_POINTS // 2])}
                nm = spec["n_model_species"]
                if cmd.get("stats"):
                    out["final"] = final[:, :nm].tolist()
                    out["mid"] = mid[:, :nm].tolist()
                if spec["count_events"]:
                    out["events"] = final[:, nm:].astype(np.int64).tolist()
                reply(out)
            else:
                reply({"ok": False, "error": f"unknown command {op!r}"})
        except Exception as e:  # report, keep serving
            reply({"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
    shutil.rmtree(wrap_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# venv and worker handling (hmmpar's interpreter)
# ---------------------------------------------------------------------------------------

def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv(spec: str = "gillespy2") -> dict:
    """Create ``benchmarks/.venv-gillespy2`` with GillesPy2 unless it already imports."""
    info: dict = {"venv": os.path.relpath(VENV, HERE.parent)}
    py = venv_python()
    if py.exists() and subprocess.run([str(py), "-c", "import gillespy2"], capture_output=True).returncode == 0:
        info["installed_now"] = False
        return info
    info["installed_now"] = True
    t = time.perf_counter()
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, text=True)
        r = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", spec],
                           capture_output=True, text=True, timeout=1800)
        info["pip_returncode"] = r.returncode
        if r.returncode != 0:
            info["error"] = f"pip install {spec} failed: " + (r.stderr or r.stdout)[-3000:]
    except Exception as e:
        info["error"] = f"{type(e).__name__}: {e}"
    info["install_s"] = time.perf_counter() - t
    return info


class Worker:
    """The GillesPy2 worker process; every call returns a dict with ``ok``."""

    def __init__(self):
        self.errlog = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        # GillesPy2 runs "scons" from PATH, else "<resolved sys.executable> -m SCons": the resolved
        # path is the base interpreter, outside the venv, which has no SCons. Put the venv's bin first.
        env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        self.proc = subprocess.Popen([str(venv_python()), str(Path(__file__).resolve()), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errlog,
                                     text=True, env=env, cwd=tempfile.gettempdir())

    def __call__(self, **cmd) -> dict:
        if self.proc.poll() is not None:
            return {"ok": False, "error": f"worker exited with {self.proc.returncode}: {self.stderr_tail()}"}
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX):])
        return {"ok": False, "error": f"worker died: {self.stderr_tail()}"}

    def stderr_tail(self) -> str:
        self.errlog.seek(0)
        return self.errlog.read()[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self(cmd="quit")
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()


# ---------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------

def welch(a, b) -> dict:
    """Means of two samples and z = (mean_a - mean_b) / SE; z = 0 if both are the same constant."""
    import numpy as np
    a, b = np.asarray(a, float), np.asarray(b, float)
    ma, mb = a.mean(), b.mean()
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size) if min(a.size, b.size) > 1 else math.nan
    if se == 0.0:
        z = 0.0 if ma == mb else math.inf
    else:
        z = (ma - mb) / se
    return {"mean_hmmpar": float(ma), "mean_gillespy2": float(mb), "se": se, "z": z}


def compare(labels, hm, gp, kind) -> dict:
    """Welch z per column of two (n, k) samples."""
    out = {}
    for i, lab in enumerate(labels):
        out[f"{kind} {lab}"] = welch([row[i] for row in hm], [row[i] for row in gp])
    return out


def max_abs_z(d: dict) -> float:
    zs = [abs(v["z"]) for v in d.values() if not math.isnan(v["z"])]
    return max(zs) if zs else math.nan


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short smoke run (1 repeat, short times)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per method (default 3, quick 1)")
    ap.add_argument("--no-O3", dest="o3", action="store_false", help="skip the GillesPy2 -O3 sensitivity build")
    ap.add_argument("--gillespy2-spec", default="gillespy2", help="pip requirement for the venv")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker()
        return
    try:
        run(args)
    except Exception:  # a measurement: report and exit 0
        traceback.print_exc()


def run(args) -> None:
    import numba
    import numpy as np

    from hmmpar.micro.ssa.direct import ensemble
    from hmmpar.micro.ssa.model import ReactionNetwork

    sys.path.insert(0, str(HERE))
    from cpu_usage import system_busy

    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    suffix = "_quick" if quick else ""
    # t_end (~1e7 events per trajectory) and trajectories per timed run: GillesPy2 as built by
    # default is ~5x slower, so it runs fewer trajectories of the same length (~5-10 s each);
    # "count" is the instrumented run giving GillesPy2's events per trajectory
    n_traj = dict.fromkeys(("hmmpar", "gillespy2", "gillespy2_O3", "count"), 2) if quick else \
        {"hmmpar": 10, "gillespy2": 2, "gillespy2_O3": 10, "count": 10}
    cases = {"four_species": dict(t_end=0.2 if quick else 1.0, n_traj=n_traj),
             "heat_shock": dict(t_end=0.5 if quick else 3.3, n_traj=n_traj)}
    check_n, check_t = (1000, 5.0) if quick else (10000, 5.0)

    report: dict = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "quick": quick, "repeats": repeats,
        "n_points": N_POINTS, "threads_env": {v: os.environ[v] for v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
        "versions": {"python_hmmpar": platform.python_version(), "numba": numba.__version__, "numpy": np.__version__},
        "method": ("events/s = events / wall time of one timed run (n trajectories to t_end, 11 output points); "
                   "best of repeats, methods interleaved; hmmpar counts its own events; GillesPy2's events = "
                   "n * mean events per trajectory of an instrumented copy (a counter species per reaction) "
                   "run with the same t_end; compilation excluded (numba warm-up; SSACSolver compiled once); "
                   "gillespy2 = as installed (g++ without -O), gillespy2_O3 = same sources built with -O3"),
        "cases": {},
    }
    print("setting up the GillesPy2 venv ...", flush=True)
    report["gillespy2_install"] = inst = ensure_venv(args.gillespy2_spec)
    if "install_s" in inst:
        print(f"  installed in {inst['install_s']:.0f} s" + (f"; ERROR {inst['error'][:300]}" if "error" in inst else ""))
    worker = None
    gp_error = inst.get("error")
    if not gp_error:
        worker = Worker()
        v = worker(cmd="versions")
        if v.pop("ok"):
            report["versions"]["gillespy2_venv"] = v
            print(f"  GillesPy2 {v['gillespy2']} (numpy {v['numpy']}, {v['gxx']}, SCons {v['scons']})")
        else:
            gp_error = v["error"]
    report["gillespy2_error"] = gp_error

    def gp(**cmd):
        """A worker call; None (and the error recorded) if GillesPy2 is not available."""
        if worker is None:
            return None
        r = worker(**cmd)
        if not r.pop("ok"):
            print(f"  GillesPy2 error: {r['error'][:500]}")
            report.setdefault("gillespy2_errors", []).append({"cmd": {k: v for k, v in cmd.items() if k != "spec"},
                                                              "error": r["error"], "tb": r.get("traceback")})
            return None
        return r

    try:
        # ----- conversion check on a small network with every order ------------------------
        cnet = check_network()
        sample = np.linspace(0.0, check_t, N_POINTS)
        print(f"conversion check: {cnet.n_species} species, {cnet.n_reactions} reactions, "
              f"{check_n} trajectories each to t={check_t}", flush=True)
        chk: dict = {"network": cnet.to_dict(), "n_traj": check_n, "t_end": check_t}
        e = ensemble(cnet, check_n, check_t, sample, seed_key=(7, 0), method="direct")
        hm_final, hm_mid, hm_ev = e.states[:, -1, :].tolist(), e.states[:, N_POINTS // 2, :].tolist(), e.events.tolist()
        for label, factor in (("right", 0.5), ("wrong_dimer_factor_1", 1.0)):
            spec = gillespy2_spec(cnet, count_events=True, dimer_factor=factor)
            b = gp(cmd="build", key=f"check_{label}", spec=spec)
            if b is None:
                break
            r = gp(cmd="run", key=f"check_{label}", t_end=check_t, n_traj=check_n, seed=11, stats=True)
            if r is None:
                break
            z = {**compare(cnet.species, hm_final, r["final"], f"x(t={check_t:g})"),
                 **compare(cnet.species, hm_mid, r["mid"], f"x(t={r['time_mid']:g})"),
                 **compare([x.equation for x in cnet.reactions], hm_ev, r["events"], "firings")}
            chk[label] = {"rates_gillespy2": [x["rate_gillespy2"] for x in spec["reactions"]],
                          "propensities_cpp": b["propensities_cpp"], "compile_s": b["compile_s"],
                          "comparisons": z, "max_abs_z": max_abs_z(z)}
            print(f"  {label:22s} max |z| = {chk[label]['max_abs_z']:.2f} over {len(z)} means")
        report["conversion_check"] = chk

        # ----- benchmark models -------------------------------------------------------------
        nets = {m: ReactionNetwork.from_toml(MODELS / f"{m}.toml") for m in cases}
        methods = ["hmmpar_direct", "hmmpar_sorting", "gillespy2"] + (["gillespy2_O3"] if args.o3 else [])
        for mi, (mname, case) in enumerate(cases.items()):
            net, t_end, ntr = nets[mname], case["t_end"], case["n_traj"]
            st = np.linspace(0.0, t_end, N_POINTS)
            res: dict = {"t_end": t_end, "n_traj": ntr, "a0_initial": float(net.propensities().sum()),
                         "n_species": net.n_species, "n_reactions": net.n_reactions, "timings": {}}
            print(f"{mname}: t_end={t_end}, trajectories per run {ntr}", flush=True)
            for meth in ("direct", "sorting"):  # numba compile / warm-up
                ensemble(net, 1, t_end * 1e-3, st * 1e-3, seed_key=0, method=meth)
            active = list(methods)
            builds = {}
            # the instrumented copy is untimed: built with -O3 (if allowed) only to save time
            for key, o3, count in (("plain", False, False), ("count", args.o3, True), ("O3", True, False)):
                if key == "O3" and not args.o3:
                    continue
                b = gp(cmd="build", key=f"{mname}_{key}", spec=gillespy2_spec(net, count_events=count), O3=o3)
                builds[key] = b
                if b is not None:
                    print(f"  GillesPy2 build {key}: {b['compile_s']:.1f} s, {b['gxx_compile_calls']} g++ "
                          f"compilations, e.g. {(b['gxx_compile_example'] or '')[:60]}", flush=True)
            res["gillespy2_builds"] = {k: ({kk: vv for kk, vv in b.items() if kk != "propensities_cpp"}
                                           if b else None) for k, b in builds.items()}
            if builds.get("plain"):
                res["propensities_cpp"] = builds["plain"]["propensities_cpp"]
            if not builds.get("plain"):
                active = [m for m in active if m != "gillespy2"]
            if not builds.get("O3"):
                active = [m for m in active if m != "gillespy2_O3"]

            # events per trajectory: GillesPy2's instrumented copy vs hmmpar (from its first timed run)
            cnt = gp(cmd="run", key=f"{mname}_count", t_end=t_end, n_traj=ntr["count"], seed=1000 + mi, stats=True) \
                if builds.get("count") else None
            ov = gp(cmd="run", key=f"{mname}_plain", t_end=t_end * 1e-6, n_traj=1, seed=5) \
                if builds.get("plain") else None
            res["gillespy2_overhead_s"] = ov["wall_s"] if ov else None
            if cnt is None:
                active = [m for m in active if not m.startswith("gillespy2")]
            hm_first = None
            for rep in range(repeats):
                order = active[rep % len(active):] + active[:rep % len(active)]
                for meth in order:
                    n = ntr["hmmpar" if meth.startswith("hmmpar") else meth]
                    busy0 = system_busy()
                    if meth.startswith("hmmpar"):
                        c0, t0 = time.process_time(), time.perf_counter()
                        e = ensemble(net, n, t_end, st, seed_key=(2025, mi, rep), method=meth.split("_")[1])
                        dt = time.perf_counter() - t0
                        cpu = time.process_time() - c0
                        ev = int(e.events.sum())
                        if hm_first is None and meth == "hmmpar_direct":
                            hm_first = e
                    else:
                        r = gp(cmd="run", key=f"{mname}_{'O3' if meth.endswith('O3') else 'plain'}",
                               t_end=t_end, n_traj=n, seed=100 + 10 * mi + rep)
                        if r is None:
                            continue
                        dt, cpu = r["wall_s"], r["sim_cpu_s"]
                        ev = n * float(np.mean(np.sum(cnt["events"], axis=1)))
                    others = max(0.0, (system_busy() - busy0 - cpu) / dt)
                    res["timings"].setdefault(meth, []).append({"n_traj": n, "wall_s": dt, "cpu_s": cpu, "events": ev,
                                                                "events_per_s": ev / dt, "events_per_cpu_s": ev / cpu,
                                                                "loadavg_1min": os.getloadavg()[0],
                                                                "other_cores": others})
                    print(f"  {meth:15s} rep {rep}: {n:2d} traj. {dt:6.2f} s (cpu/wall {cpu / dt:4.2f}, other "
                          f"processes {others:4.2f} cores)  {ev / dt / 1e6:6.2f} M events/s, "
                          f"{ev / cpu / 1e6:6.2f} M events/cpu-s", flush=True)
            if hm_first is not None and cnt is not None:
                hm_tot = hm_first.events.sum(axis=1)
                gp_tot = np.sum(cnt["events"], axis=1)
                res["events_per_trajectory"] = welch(hm_tot, gp_tot)
                res["events_per_trajectory"]["sd_hmmpar"] = float(np.std(hm_tot, ddof=1)) if hm_tot.size > 1 else None
                z = {**compare(net.species, hm_first.states[:, -1, :].tolist(), cnt["final"], f"x(t={t_end:g})"),
                     **compare([x.equation for x in net.reactions], hm_first.events.tolist(), cnt["events"], "firings")}
                res["process_check"] = {"comparisons": z, "max_abs_z": max_abs_z(z),
                                        "n_traj_hmmpar": int(hm_tot.size), "n_traj_gillespy2": int(gp_tot.size)}
                print(f"  events/trajectory hmmpar {res['events_per_trajectory']['mean_hmmpar']:.6g}, GillesPy2 "
                      f"{res['events_per_trajectory']['mean_gillespy2']:.6g} (z = {res['events_per_trajectory']['z']:.2f});"
                      f" species/reaction means max |z| = {res['process_check']['max_abs_z']:.2f}")
            best = {m: max(x["events_per_s"] for x in v) for m, v in res["timings"].items()}
            res["best_events_per_s"] = best
            bcpu = {m: max(x["events_per_cpu_s"] for x in v) for m, v in res["timings"].items()}
            res["best_events_per_cpu_s"] = bcpu
            res["cpu_over_wall_of_best"] = {m: max(v, key=lambda x: x["events_per_s"])["cpu_s"]
                                            / max(v, key=lambda x: x["events_per_s"])["wall_s"]
                                            for m, v in res["timings"].items()}
            res["median_events_per_s"] = {m: statistics.median(x["events_per_s"] for x in v)
                                          for m, v in res["timings"].items()}
            res["ratios"], res["ratios_cpu"] = {}, {}
            for ref in ("gillespy2", "gillespy2_O3"):
                if ref in best:
                    for m in ("hmmpar_direct", "hmmpar_sorting"):
                        if m in best:
                            res["ratios"][f"{m}/{ref}"] = best[m] / best[ref]
                            res["ratios_cpu"][f"{m}/{ref}"] = bcpu[m] / bcpu[ref]
            report["cases"][mname] = res
    finally:
        if worker is not None:
            worker.close()
    report["loadavg_end"] = os.getloadavg()
    report["other_cores_mean_timed_runs"] = statistics.mean(
        x["other_cores"] for r in report["cases"].values() for v in r["timings"].values() for x in v) \
        if report["cases"] else None

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jpath = out / f"ssa_gillespy2{suffix}.json"
    jpath.write_text(json.dumps(report, indent=1, default=float) + "\n")
    table(report)
    try:
        plot(report, out / f"ssa_gillespy2{suffix}.png")
        print(f"wrote {jpath} and {out / f'ssa_gillespy2{suffix}.png'}")
    except Exception as e:
        print(f"wrote {jpath}; plot failed: {e}")


LABELS = {"hmmpar_direct": "hmmpar direct", "hmmpar_sorting": "hmmpar sorting",
          "gillespy2": "GillesPy2 SSACSolver", "gillespy2_O3": "GillesPy2 SSACSolver -O3"}


def table(report: dict) -> None:
    cols = list(LABELS)
    print(f"\n{'model':14s} {'events/traj':>12s} " + " ".join(f"{LABELS[c]:>25s}" for c in cols)
          + "  direct/GillesPy2  direct/GillesPy2-O3")
    for m, r in report["cases"].items():
        b = r["best_events_per_s"]
        ept = r.get("events_per_trajectory", {}).get("mean_hmmpar")
        ept = f"{ept:12.4g}" if ept else f"{'':12s}"
        cells = " ".join(f"{b[c] / 1e6:>20.2f} M/s" if c in b else f"{'-':>25s}" for c in cols)
        rat = r["ratios"]
        r1 = f"{rat['hmmpar_direct/gillespy2']:16.2f}" if "hmmpar_direct/gillespy2" in rat else f"{'-':>16s}"
        r2 = f"{rat['hmmpar_direct/gillespy2_O3']:19.2f}" if "hmmpar_direct/gillespy2_O3" in rat else f"{'-':>19s}"
        print(f"{m:14s} {ept} {cells}  {r1}  {r2}")
    low = [f"{m}/{k} ({v:.2f})" for m, r in report["cases"].items() for k, v in r["cpu_over_wall_of_best"].items()
           if v < 0.9]
    if low:
        print("note: best runs with cpu/wall < 0.9 (other jobs competed for the core): " + ", ".join(low))
    print("per CPU second (M events/s; ratios direct/GillesPy2, direct/GillesPy2-O3):")
    for m, r in report["cases"].items():
        b, q = r["best_events_per_cpu_s"], r["ratios_cpu"]
        print(f"  {m:14s} " + "  ".join(f"{LABELS[c]} {b[c] / 1e6:.2f}" for c in LABELS if c in b)
              + "  ratios " + ", ".join(f"{q[k]:.2f}" for k in ("hmmpar_direct/gillespy2", "hmmpar_direct/gillespy2_O3")
                                       if k in q))
    if report.get("other_cores_mean_timed_runs") is not None:
        print(f"other processes used {report['other_cores_mean_timed_runs']:.2f} cores on average during the "
              f"timed runs (of {report['cpu_count']})")
    if report.get("gillespy2_error"):
        print(f"GillesPy2 not measured: {report['gillespy2_error'][:300]}")


def plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(report["cases"])
    cols = [c for c in LABELS if any(c in report["cases"][m]["best_events_per_s"] for m in models)]
    colors = {"hmmpar_direct": "#1f77b4", "hmmpar_sorting": "#6baed6", "gillespy2": "#d62728",
              "gillespy2_O3": "#ff9896"}
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    w = 0.8 / max(len(cols), 1)
    for i, c in enumerate(cols):
        xs = [k + (i - (len(cols) - 1) / 2) * w for k in range(len(models))]
        ys = [report["cases"][m]["best_events_per_s"].get(c, 0.0) / 1e6 for m in models]
        bars = ax.bar(xs, ys, w, label=LABELS[c], color=colors[c])
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    for k, m in enumerate(models):
        rat = report["cases"][m]["ratios"]
        txt = []
        if "hmmpar_direct/gillespy2" in rat:
            txt.append(f"direct / GillesPy2 = {rat['hmmpar_direct/gillespy2']:.2f}x")
        if "hmmpar_direct/gillespy2_O3" in rat:
            txt.append(f"direct / GillesPy2 -O3 = {rat['hmmpar_direct/gillespy2_O3']:.2f}x")
        if txt:
            ymax = max(report["cases"][m]["best_events_per_s"].values()) / 1e6
            ax.text(k, ymax * 1.08, "\n".join(txt), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels([f"{m}\n(t_end={report['cases'][m]['t_end']:g}, "
                        f"{report['cases'][m]['events_per_trajectory']['mean_hmmpar']:.2g} events/traj.)"
                        if "events_per_trajectory" in report["cases"][m] else m for m in models])
    ax.set_ylabel("million events / s (one core, best of %d)" % report["repeats"])
    top = max((v for m in models for v in report["cases"][m]["best_events_per_s"].values()), default=1.0) / 1e6
    ax.set_ylim(0, top * 1.3)
    gv = report["versions"].get("gillespy2_venv", {}).get("gillespy2", "?")
    ax.set_title(f"Direct SSA throughput: hmmpar (numba {report['versions']['numba']}) vs GillesPy2 {gv}",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
    sys.exit(0)
