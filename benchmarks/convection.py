#!/usr/bin/env python
r"""Time per step: hmmpar's 2D Boussinesq convection micro model against Dedalus 3.

This is a measurement, not a test: it always exits 0. Run it alone on a quiet machine::

    python benchmarks/convection.py            # ~3.5 min (+ 1.5-2.5 min install on the first run)
    python benchmarks/convection.py --quick    # smoke run, ~20 s with the venv in place

Equations (nondimensional with the depth d, the temperature drop and the thermal
diffusion time d^2/kappa; box periodic in x of width L = ``--aspect``, walls z = 0, 1)::

    dt u + u.grad u = -grad p + Pr lap u + Pr Ra T ez,   div u = 0,
    dt T + u.grad T = lap T,    T(z=0) = 1, T(z=1) = 0,  free-slip (w = 0, dz u = 0) or no-slip.

Velocities are in units of kappa/d, so Vrms is directly comparable with Blankenbach et al.
(1989). Nu_top = -<dT/dz>(z=1), Nu_bottom = -<dT/dz>(z=0) (x-averages),
Nu_volume = 1 + <w T> (volume average), Vrms = sqrt(<u.u>).

Dedalus (https://dedalus-project.org) lives in its own venv, ``benchmarks/.venv-dedalus``
(created here, idempotently, with ``python -m venv`` without system site packages and
``pip install dedalus``; Dedalus brings its own numpy/scipy/mpi4py/h5py wheels and builds
its Cython extensions against Debian's FFTW and OpenMPI, so libfftw3-dev libfftw3-mpi-dev
libopenmpi-dev python3-dev pkg-config are installed with apt-get when missing; the
include/library directories are passed as MPI_INCLUDE_PATH/MPI_LIBRARY_PATH (from
``mpicc --showme``) and FFTW_INCLUDE_PATH/FFTW_LIBRARY_PATH (from ``pkg-config fftw3``),
because Dedalus' setup.py looks only in <prefix>/include, and Debian keeps mpi.h in
/usr/lib/x86_64-linux-gnu/openmpi/include). Its part runs in a worker process with that
venv's Python: this same file with ``--worker``, which reads JSON commands on stdin and
answers with ``@@JSON`` lines on stdout. If installing fails, the error is recorded in the
JSON and hmmpar's numbers are still reported (and vice versa: without
``hmmpar.micro.convection`` the Dedalus numbers are reported alone).

Dedalus problem: RealFourier(x, nx) x ChebyshevT(z, nz), dealias 3/2, the first-order tau
formulation of Dedalus' ``examples/ivp_2d_rayleigh_benard`` (tau terms on grad u and grad T,
lifted to the first-derivative basis, tau_p in the divergence equation, integ(p) = 0).
That example uses free-fall units (kappa = (Ra Pr)^-1/2, nu = (Ra/Pr)^-1/2, buoyancy b ez);
here the same equations are written in thermal-diffusion units: kappa = 1, nu = Pr,
buoyancy Pr Ra T ez (time_ff = t_diff sqrt(Ra Pr), u_ff = u_diff / sqrt(Ra Pr)). Free slip is
``ez@u = 0`` and ``ex@(ez@grad_u) = 0`` (dz u_x on the first-order variable) at both walls.
IMEX RK222 (``--timestepper SBDF2`` possible): linear terms implicit, advection explicit.

Initial condition, the same function on both sides (:func:`initial_temperature`):
T = 1 - z + A * P(x, z), with P either ``cell`` = cos(2 pi x / L) sin(pi z) (one roll pair,
Blankenbach's start) or ``noise`` = a seeded sum of smooth modes
sum_{m=1..8, n=1..2} a_mn cos(2 pi m x / L + phi_mn) sin(n pi z) / 4 (a ~ N(0,1), phi ~ U(0, 2 pi)
drawn from ``np.random.default_rng(seed)`` in that order), u = 0. It is evaluated on each
code's own grid. hmmpar gets the field through :func:`impose_temperature` if its model offers a
way (see there); otherwise hmmpar starts from its own ``initial_states(rng, amplitude)`` and
the JSON says so (then only statistically steady quantities are comparable).

Protocol per grid (64x32 and 128x64; Ra 1e5, Pr 1, L 2, free slip by default):
  1. hmmpar: ``advance(states, t_spin)`` (spin-up into developed convection; includes the numba
     compilation), then ``--repeats`` timed ``advance(states, t_meas)``: s/step = wall /
     diag["steps"] (CPU likewise); its mean dt = t_meas / steps.
  2. Dedalus: build the solver (``build_s``: problem, solver, matrices), spin up to t_spin with
     Dedalus' CFL (safety ``--cfl`` 0.5, max dt 1e-3; untimed), then ``--repeats`` timed blocks of
     fixed-dt steps covering t_meas each, after ``--warmup`` untimed steps at that dt (the LHS
     factorization of a new dt is excluded). The fixed dt is hmmpar's mean dt of its fastest
     block when hmmpar ran, else Dedalus' own CFL dt at the end of the spin-up (recorded as
     ``dt_source``).
  Both end at the same simulated time t_spin + repeats * t_meas; Nu and Vrms are recorded there
  (and after the spin-up). ratio = dedalus_s_per_step / hmmpar_s_per_step (best of repeats;
  > 1 means hmmpar is faster per step); dt_ratio tells whether the steps are comparable.
Accuracy (``steady`` section): Ra = 1e4, free slip, L = 2, ``cell`` start, run to
t = ``--steady-t`` with the CFL dt; Dedalus at Pr = 1 (the same equations as hmmpar) and at
Pr = 1e4 (Dedalus' IVP needs dt(u), so Pr = infinity is approximated by Pr = 1e4; with free
slip the Stokes problem has a singular mean-flow mode), against Blankenbach case 1a
(Pr = infinity, free slip, aspect 1: Nu = 4.884409, Vrms = 42.864947; the periodic box of
width 2 holds that cell and its mirror image).

Timing: one core per code (OMP/NUMBA/OPENBLAS threads = 1; the Dedalus worker is a single
MPI process). Each timed block records wall and CPU time and ``other_cores``: CPU seconds
of every other process on the machine per wall second (/proc/stat minus the block's own CPU
time), because this machine is shared.

Output: ``benchmarks/results/convection.json`` and ``.png`` (``_quick`` with ``--quick``)
and a table on stdout.
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
import traceback
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "NUMEXPR_MAX_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-dedalus"
PREFIX = "@@JSON "  # worker protocol lines on stdout (Dedalus logs to stdout as well)
DEBS = ("libfftw3-dev", "libfftw3-mpi-dev", "libopenmpi-dev", "python3-dev", "pkg-config")
BLANKENBACH_1A = {"ra": 1e4, "nu": 4.884409, "vrms": 42.864947,
                  "source": "Blankenbach et al. 1989, GJI 98, case 1a (Pr = inf, free slip, aspect 1)"}


# ---------------------------------------------------------------------------------------
# the shared initial condition (plain numpy: runs in both interpreters)
# ---------------------------------------------------------------------------------------

def initial_temperature(x, z, *, aspect: float, amplitude: float, seed: int = 0, mode: str = "noise"):
    """T(x, z) = 1 - z + amplitude * P(x, z) at the points x, z (broadcast), see the module doc.

    ``mode="cell"``: P = cos(2 pi x / L) sin(pi z). ``mode="noise"``: P = sum over m = 1..8,
    n = 1..2 of a_mn cos(2 pi m x / L + phi_mn) sin(n pi z) / 4 with a_mn ~ N(0, 1) then
    phi_mn ~ U(0, 2 pi) from ``np.random.default_rng(seed)`` (arrays of shape (8, 2)).
    Smooth and zero on the walls, so every grid samples the same field.
    """
    import numpy as np
    x, z = np.asarray(x, float), np.asarray(z, float)
    k = 2.0 * np.pi / aspect
    if mode == "cell":
        pert = np.cos(k * x) * np.sin(np.pi * z)
    elif mode == "noise":
        rng = np.random.default_rng(seed)
        a = rng.normal(size=(8, 2))
        phi = rng.uniform(0.0, 2.0 * np.pi, size=(8, 2))
        pert = np.zeros(np.broadcast(x, z).shape)
        for m in range(8):
            for n in range(2):
                pert = pert + a[m, n] * np.cos(k * (m + 1) * x + phi[m, n]) * np.sin((n + 1) * np.pi * z)
        pert = pert / 4.0
    else:
        raise ValueError(f"unknown initial condition mode {mode!r}")
    return 1.0 - z + amplitude * pert


# ---------------------------------------------------------------------------------------
# worker (runs in the Dedalus venv)
# ---------------------------------------------------------------------------------------

def _worker() -> None:
    import logging

    import numpy as np
    import dedalus
    import dedalus.public as d3
    from mpi4py import MPI
    for h in logging.getLogger().handlers:  # Dedalus logs INFO lines to stdout
        h.setLevel(logging.WARNING)
    sys.path.insert(0, str(HERE))
    from cpu_usage import system_busy

    sims: dict = {}

    def reply(obj):
        sys.stdout.write(PREFIX + json.dumps(obj) + "\n")
        sys.stdout.flush()

    def build(c):
        nx, nz, L = int(c["nx"]), int(c["nz"]), float(c["aspect"])
        Ra, Pr = float(c["ra"]), float(c["pr"])
        coords = d3.CartesianCoordinates("x", "z")
        dist = d3.Distributor(coords, dtype=np.float64)
        xb = d3.RealFourier(coords["x"], size=nx, bounds=(0, L), dealias=c.get("dealias", 1.5))
        zb = d3.ChebyshevT(coords["z"], size=nz, bounds=(0, 1), dealias=c.get("dealias", 1.5))
        p = dist.Field(name="p", bases=(xb, zb))
        T = dist.Field(name="T", bases=(xb, zb))
        u = dist.VectorField(coords, name="u", bases=(xb, zb))
        tau_p = dist.Field(name="tau_p")
        tau_T1 = dist.Field(name="tau_T1", bases=xb)
        tau_T2 = dist.Field(name="tau_T2", bases=xb)
        tau_u1 = dist.VectorField(coords, name="tau_u1", bases=xb)
        tau_u2 = dist.VectorField(coords, name="tau_u2", bases=xb)
        ex, ez = coords.unit_vector_fields(dist)
        lift_basis = zb.derivative_basis(1)
        lift = lambda A: d3.Lift(A, lift_basis, -1)  # noqa: E731
        grad_u = d3.grad(u) + ez * lift(tau_u1)  # first-order reduction
        grad_T = d3.grad(T) + ez * lift(tau_T1)
        ns = dict(p=p, T=T, u=u, tau_p=tau_p, tau_T1=tau_T1, tau_T2=tau_T2, tau_u1=tau_u1, tau_u2=tau_u2,
                  ex=ex, ez=ez, lift=lift, grad_u=grad_u, grad_T=grad_T, Pr=Pr, PrRa=Pr * Ra)
        problem = d3.IVP([p, T, u, tau_p, tau_T1, tau_T2, tau_u1, tau_u2], namespace=ns)
        problem.add_equation("trace(grad_u) + tau_p = 0")
        problem.add_equation("dt(T) - div(grad_T) + lift(tau_T2) = - u@grad(T)")
        problem.add_equation("dt(u) - Pr*div(grad_u) + grad(p) - PrRa*T*ez + lift(tau_u2) = - u@grad(u)")
        problem.add_equation("T(z=0) = 1")
        problem.add_equation("T(z=1) = 0")
        if c["walls"] == "no-slip":
            problem.add_equation("u(z=0) = 0")
            problem.add_equation("u(z=1) = 0")
        elif c["walls"] == "free-slip":
            problem.add_equation("ez@u(z=0) = 0")
            problem.add_equation("ex@(ez@grad_u)(z=0) = 0")
            problem.add_equation("ez@u(z=1) = 0")
            problem.add_equation("ex@(ez@grad_u)(z=1) = 0")
        else:
            raise ValueError(f"walls must be free-slip or no-slip, not {c['walls']!r}")
        problem.add_equation("integ(p) = 0")  # pressure gauge
        kw = {"matsolver": c["matsolver"]} if c.get("matsolver") else {}
        solver = problem.build_solver(getattr(d3, c.get("timestepper", "RK222")), **kw)
        x, z = dist.local_grids(xb, zb)
        T.change_scales(1)
        T["g"] = initial_temperature(x, z, aspect=L, amplitude=float(c["amplitude"]), seed=int(c.get("seed", 0)),
                                     mode=c.get("ic", "noise"))
        u.change_scales(1)
        u["g"] = 0.0
        # diagnostics, evaluated only between timed blocks
        Tz = d3.Differentiate(T, coords["z"])
        flux = d3.Integrate(Tz, coords["x"])
        ops = {"nu_top": -flux(z=1) / L, "nu_bottom": -flux(z=0) / L,
               "wT": d3.Integrate((ez @ u) * T) / L, "uu": d3.Integrate(u @ u) / L,
               "w_mid": (ez @ u)(z=0.5)}
        sims[c["key"]] = dict(solver=solver, u=u, T=T, ops=ops, L=L, nx=nx, cfl=None)

    def value(op):
        f = op.evaluate()
        f.change_scales(1)
        return float(np.ravel(f["g"])[0])

    def diag(s):
        o = s["ops"]
        w = s["ops"]["w_mid"].evaluate()
        cw = np.ravel(w["c"])  # RealFourier: cos/sin pairs per wavenumber m
        power = cw[0::2] ** 2 + cw[1::2] ** 2
        m = int(np.argmax(power[1:]) + 1) if power.size > 1 and power[1:].max() > 0 else 0
        return {"t": float(s["solver"].sim_time), "iteration": int(s["solver"].iteration),
                "nu_top": value(o["nu_top"]), "nu_bottom": value(o["nu_bottom"]),
                "nu_volume": 1.0 + value(o["wT"]), "vrms": math.sqrt(max(value(o["uu"]), 0.0)),
                "cells": 2 * m}  # rolls across the box: 2 per dominant wavenumber of w(z=1/2)

    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            op = cmd["cmd"]
            if op == "quit":
                reply({"ok": True})
                break
            if op == "versions":
                import mpi4py
                import scipy
                reply({"ok": True, "dedalus": dedalus.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                       "mpi4py": mpi4py.__version__, "mpi": MPI.Get_library_version().splitlines()[0].strip(),
                       "mpi_size": MPI.COMM_WORLD.size, "python": platform.python_version(),
                       "dedalus_config": {sec: dict(dedalus.tools.config.config[sec]) for sec in
                                          ("transforms", "transforms-fftw", "linear algebra")}})
            elif op == "build":
                t = time.perf_counter()
                build(cmd)
                reply({"ok": True, "build_s": time.perf_counter() - t, "diag": diag(sims[cmd["key"]])})
            elif op == "spinup":
                s = sims[cmd["key"]]
                solver = s["solver"]
                if s["cfl"] is None:
                    s["cfl"] = d3.CFL(solver, initial_dt=float(cmd["max_dt"]), cadence=1, safety=float(cmd["cfl"]),
                                      threshold=0.05, max_change=1.5, min_change=0.5, max_dt=float(cmd["max_dt"]))
                    s["cfl"].add_velocity(s["u"])
                    s["cfl_handler"] = solver.evaluator.handlers[-1]
                elif s["cfl_handler"] not in solver.evaluator.handlers:
                    solver.evaluator.handlers.append(s["cfl_handler"])
                t_end, every = float(cmd["t_end"]), float(cmd.get("sample_every") or 0.0)
                samples, next_sample = [], solver.sim_time + every
                n0, t0, dt = solver.iteration, time.perf_counter(), float(cmd["max_dt"])
                while solver.sim_time < t_end * (1 - 1e-12):
                    dt = s["cfl"].compute_timestep()
                    solver.step(min(dt, t_end - solver.sim_time) if cmd.get("clip", True) else dt)
                    if every and solver.sim_time >= next_sample:
                        samples.append(diag(s))
                        next_sample += every
                    if not np.isfinite(solver.sim_time) or solver.iteration - n0 > int(cmd.get("max_steps", 10**7)):
                        break
                # the CFL's handler would be evaluated every step of the timed blocks: take it out
                solver.evaluator.handlers.remove(s["cfl_handler"])
                d = diag(s)
                reply({"ok": d["vrms"] == d["vrms"], "error": "NaN (unstable)" if d["vrms"] != d["vrms"] else None,
                       "steps": solver.iteration - n0, "wall_s": time.perf_counter() - t0, "last_cfl_dt": dt,
                       "diag": d, "samples": samples})
            elif op == "run":
                s = sims[cmd["key"]]
                solver, dt, n = s["solver"], float(cmd["dt"]), int(cmd["n_steps"])
                for _ in range(int(cmd.get("warmup", 5))):
                    solver.step(dt)
                busy0 = system_busy()
                c0, t0 = time.process_time(), time.perf_counter()
                for _ in range(n):
                    solver.step(dt)
                wall = time.perf_counter() - t0
                cpu = time.process_time() - c0
                others = max(0.0, (system_busy() - busy0 - cpu) / wall)
                d = diag(s)
                reply({"ok": d["vrms"] == d["vrms"], "error": "NaN (unstable)" if d["vrms"] != d["vrms"] else None,
                       "n_steps": n, "dt": dt, "wall_s": wall, "cpu_s": cpu, "s_per_step": wall / n,
                       "cpu_s_per_step": cpu / n, "other_cores": others, "loadavg_1min": os.getloadavg()[0], "diag": d})
            elif op == "drop":
                sims.pop(cmd["key"], None)
                reply({"ok": True})
            else:
                reply({"ok": False, "error": f"unknown command {op!r}"})
        except Exception as e:  # report, keep serving
            reply({"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})


# ---------------------------------------------------------------------------------------
# venv and worker handling (hmmpar's interpreter)
# ---------------------------------------------------------------------------------------

def venv_python() -> Path:
    return VENV / "bin" / "python"


def _out(cmd) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:
        return ""


def build_env() -> dict:
    """Where Dedalus' setup.py finds MPI and FFTW (it looks in <prefix>/include only)."""
    env = {}
    if shutil.which("mpicc"):
        inc = _out(["mpicc", "--showme:incdirs"]).split()
        lib = _out(["mpicc", "--showme:libdirs"]).split()
        if inc:
            env["MPI_INCLUDE_PATH"] = inc[0]
        if lib:
            env["MPI_LIBRARY_PATH"] = lib[0]
    if shutil.which("pkg-config"):
        inc = _out(["pkg-config", "--variable=includedir", "fftw3"])
        lib = _out(["pkg-config", "--variable=libdir", "fftw3"])
        if inc:
            env["FFTW_INCLUDE_PATH"] = inc
        if lib:
            env["FFTW_LIBRARY_PATH"] = lib
    return env


def ensure_debs() -> dict:
    missing = [p for p in DEBS if "ok installed" not in _out(["dpkg-query", "-W", "-f=${Status}", p])]
    info = {"debian_packages": list(DEBS), "missing": missing}
    if missing:
        if os.geteuid() != 0:
            info["error"] = "need root to apt-get install " + " ".join(missing)
            return info
        t = time.perf_counter()
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                           capture_output=True, text=True, env=env)
        info["apt_s"] = time.perf_counter() - t
        if r.returncode != 0:
            info["error"] = "apt-get install failed: " + (r.stderr or r.stdout)[-2000:]
    return info


def ensure_venv(spec: str = "dedalus") -> dict:
    """Create ``benchmarks/.venv-dedalus`` with Dedalus unless ``dedalus.public`` already imports there."""
    info: dict = {"venv": os.path.relpath(VENV, HERE.parent), "spec": spec}
    py = venv_python()
    if py.exists() and subprocess.run([str(py), "-c", "import dedalus.public"], capture_output=True,
                                      cwd=tempfile.gettempdir()).returncode == 0:
        info["installed_now"] = False
        return info
    info["installed_now"] = True
    t = time.perf_counter()
    try:
        info["apt"] = ensure_debs()
        if "error" in info["apt"]:
            info["error"] = info["apt"]["error"]
            return info
        if not py.exists():
            # the base interpreter, not the system-site venv's: Dedalus brings its own numpy
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(VENV)], check=True, capture_output=True, text=True)
        benv = build_env()
        info["build_env"] = benv
        env = dict(os.environ, **benv)
        env.pop("PYTHONPATH", None)
        cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", spec]
        info["command"] = " ".join(f"{k}={v}" for k, v in benv.items()) + " " + " ".join(cmd[2:])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)
        info["pip_returncode"] = r.returncode
        if r.returncode != 0:
            info["error"] = f"pip install {spec} failed: " + (r.stderr or r.stdout)[-3000:]
        else:
            chk = subprocess.run([str(py), "-c", "import dedalus.public"], capture_output=True, text=True,
                                 cwd=tempfile.gettempdir())
            if chk.returncode != 0:
                info["error"] = "dedalus installed but does not import: " + chk.stderr[-3000:]
    except Exception as e:
        info["error"] = f"{type(e).__name__}: {e}"
    finally:
        info["install_s"] = time.perf_counter() - t
    return info


class Worker:
    """The Dedalus worker process; every call returns a dict with ``ok``."""

    def __init__(self):
        self.errlog = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
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
# hmmpar side (hmmpar's interpreter)
# ---------------------------------------------------------------------------------------

def hmmpar_available() -> str | None:
    """None if ``hmmpar.micro.convection`` imports, else the reason."""
    try:
        from hmmpar.micro.convection import ConvectionModel, ConvectionParams  # noqa: F401
    except Exception as e:
        return f"hmmpar convection model not available ({type(e).__name__}: {e})"
    return None


def _row(diag, key):
    """One number from a structured diagnostics row (numpy record / dict of arrays / mapping)."""
    import numpy as np
    v = np.asarray(diag[key], dtype=float).ravel()
    return float(v[0])


def _diag(diag) -> dict:
    """t, steps (of this advance), Nu's and Vrms of the first state of an ``advance`` result."""
    if isinstance(diag, (list, tuple)):
        diag = diag[0]
    out = {}
    for k in ("t", "steps", "nu_top", "nu_bottom", "nu_volume", "vrms"):
        try:
            out[k] = _row(diag, k)
        except Exception:
            pass
    return out


def impose_temperature(model, states, func) -> str:
    """Put ``func(x, z)`` into hmmpar's initial state if the model says how; return what was done.

    The convection model is written elsewhere; this uses, in this order, a model method
    ``set_temperature(states, func)`` (``func`` takes broadcastable x, z arrays of the model's
    own temperature points), or ``model.grid()`` / ``model.temperature_points()`` returning
    (x, z) arrays plus a state field ``states["T"]`` of a matching shape (last axes).
    """
    import numpy as np
    if hasattr(model, "set_temperature"):
        model.set_temperature(states, func)
        return "shared (model.set_temperature)"
    for name in ("temperature_points", "grid"):
        if hasattr(model, name):
            x, z = getattr(model, name)()
            T = np.asarray(func(x, z))
            tgt = states["T"]
            tgt[...] = np.broadcast_to(T, tgt.shape)
            return f"shared (model.{name}() + states['T'])"
    return "hmmpar's own initial_states perturbation (not the same field as Dedalus')"


def hmmpar_side(nx: int, nz: int, ra: float, pr: float, *, aspect: float = 2.0, walls: str = "free-slip",
                cfl: float = 0.5, seed: int = 0, amplitude: float = 1e-3, ic: str = "noise",
                t_spin: float = 0.1, t_meas: float = 0.01, repeats: int = 3) -> dict:
    """hmmpar's convection model: spin-up to t_spin (with the numba compilation), then ``repeats``
    timed ``advance(states, t_meas)``; s/step = wall / steps of each block."""
    import numpy as np
    sys.path.insert(0, str(HERE))
    from cpu_usage import system_busy
    from hmmpar.micro.convection import ConvectionModel, ConvectionParams

    res: dict = {"nx": nx, "nz": nz, "ra": ra, "pr": pr, "aspect": aspect, "walls": walls, "cfl": cfl}
    t = time.perf_counter()
    p = ConvectionParams(ra=ra, pr=pr, aspect=aspect, nx=nx, nz=nz, walls=walls, bottom="temperature",
                         cfl=cfl, dt_max=None)
    model = ConvectionModel(p)
    states = model.initial_states([np.random.default_rng(seed)], amplitude=amplitude)
    try:
        res["initial_condition"] = impose_temperature(
            model, states, lambda x, z: initial_temperature(x, z, aspect=aspect, amplitude=amplitude, seed=seed,
                                                            mode=ic))
    except Exception as e:
        res["initial_condition"] = f"hmmpar's own initial_states (imposing the shared field failed: {e})"
    res["build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    d = model.advance(states, t_spin)  # includes the numba compilation
    res["spinup"] = {"wall_s": time.perf_counter() - t, "diag": _diag(d)}
    res["timings"] = []
    for _ in range(repeats):
        busy0 = system_busy()
        c0, t0 = time.process_time(), time.perf_counter()
        d = model.advance(states, t_meas)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        dd = _diag(d)
        steps = max(int(round(dd.get("steps", 0))), 1)
        res["timings"].append({"steps": steps, "wall_s": wall, "cpu_s": cpu, "s_per_step": wall / steps,
                               "cpu_s_per_step": cpu / steps, "dt_mean": t_meas / steps,
                               "other_cores": max(0.0, (system_busy() - busy0 - cpu) / wall),
                               "loadavg_1min": os.getloadavg()[0], "diag": dd})
    best = min(res["timings"], key=lambda r: r["s_per_step"])
    res["s_per_step"] = best["s_per_step"]
    res["cpu_s_per_step"] = min(r["cpu_s_per_step"] for r in res["timings"])
    res["dt_mean"] = best["dt_mean"]
    res["final"] = res["timings"][-1]["diag"]
    return res


def hmmpar_steady(nx, nz, ra, pr, *, aspect, t_end, cfl, amplitude) -> dict:
    """hmmpar to t_end from the ``cell`` start (accuracy check); untimed."""
    import numpy as np
    from hmmpar.micro.convection import ConvectionModel, ConvectionParams
    model = ConvectionModel(ConvectionParams(ra=ra, pr=pr, aspect=aspect, nx=nx, nz=nz, walls="free-slip",
                                             bottom="temperature", cfl=cfl, dt_max=None))
    states = model.initial_states([np.random.default_rng(0)], amplitude=amplitude)
    try:
        ic = impose_temperature(model, states, lambda x, z: initial_temperature(
            x, z, aspect=aspect, amplitude=amplitude, mode="cell"))
    except Exception as e:
        ic = f"hmmpar's own initial_states (imposing the shared field failed: {e})"
    t = time.perf_counter()
    d = model.advance(states, t_end)
    return {"initial_condition": ic, "wall_s": time.perf_counter() - t, "diag": _diag(d)}


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 32x16 and 64x32, short times, 1 repeat")
    ap.add_argument("--repeats", type=int, default=None, help="timed blocks per code and grid (default 3, quick 1)")
    ap.add_argument("--grids", default=None, help="comma-separated NXxNZ (default 64x32,128x64; quick 32x16,64x32)")
    ap.add_argument("--ra", type=float, default=1e5)
    ap.add_argument("--pr", type=float, default=1.0)
    ap.add_argument("--aspect", type=float, default=2.0)
    ap.add_argument("--walls", choices=("free-slip", "no-slip"), default="free-slip")
    ap.add_argument("--timestepper", choices=("RK222", "SBDF2"), default="RK222")
    ap.add_argument("--cfl", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--amplitude", type=float, default=1e-3, help="initial perturbation amplitude (noise start)")
    ap.add_argument("--t-spin", type=float, default=None, help="spin-up time (default 0.1, quick 0.05)")
    ap.add_argument("--t-meas", type=float, default=None, help="simulated time per timed block (default 0.01, quick 0.002)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed Dedalus steps at the fixed dt before timing")
    ap.add_argument("--steady-t", type=float, default=None, help="end time of the Ra=1e4 accuracy runs (default 0.5, quick 0.3)")
    ap.add_argument("--no-steady", dest="steady", action="store_false", help="skip the Ra=1e4 accuracy runs")
    ap.add_argument("--dedalus-matsolver", default=None,
                    help="Dedalus matsolver for the timestep LHS (default: its config, SuperLUColamdFactorizedTranspose)")
    ap.add_argument("--dedalus-spec", default="dedalus>=3,<4", help="pip requirement for the venv")
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
    import numpy as np

    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    suffix = "_quick" if quick else ""
    grids = [tuple(int(v) for v in g.split("x")) for g in
             (args.grids or ("32x16,64x32" if quick else "64x32,128x64")).split(",")]
    t_spin = args.t_spin if args.t_spin is not None else (0.05 if quick else 0.1)
    t_meas = args.t_meas if args.t_meas is not None else (0.002 if quick else 0.01)
    steady_t = args.steady_t if args.steady_t is not None else (0.3 if quick else 0.5)
    max_dt = 1e-3
    common = dict(ra=args.ra, pr=args.pr, aspect=args.aspect, walls=args.walls)

    versions = {"python_hmmpar": platform.python_version(), "numpy": np.__version__}
    try:
        import numba
        versions["numba"] = numba.__version__
    except Exception:
        pass
    report: dict = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "quick": quick, "repeats": repeats,
        "parameters": {**common, "timestepper": args.timestepper, "cfl": args.cfl, "seed": args.seed,
                       "amplitude": args.amplitude, "ic": "noise", "t_spin": t_spin, "t_meas": t_meas,
                       "warmup_steps": args.warmup, "dedalus_spinup_max_dt": max_dt, "dealias": 1.5,
                       "dedalus_matsolver": args.dedalus_matsolver or "config default"},
        "threads_env": {v: os.environ[v] for v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "versions": versions,
        "method": ("s/step = wall time of a timed block / its steps, best of repeats; hmmpar: advance(states, t_meas) "
                   "after an advance(t_spin) spin-up (numba compilation excluded), CFL dt; Dedalus: RealFourier x "
                   "ChebyshevT, dealias 3/2, first-order tau formulation, fixed dt (hmmpar's mean dt when hmmpar ran, "
                   "else Dedalus' CFL dt after the spin-up), after its own CFL spin-up to t_spin and warm-up steps "
                   "(solver build and LHS factorization excluded); ratio = dedalus / hmmpar s/step"),
        "cases": {},
    }
    print(f"Ra={args.ra:g} Pr={args.pr:g} L={args.aspect:g} {args.walls}, grids "
          + ", ".join(f"{a}x{b}" for a, b in grids) + f", t_spin={t_spin:g}, t_meas={t_meas:g}, repeats={repeats}",
          flush=True)

    hm_err = hmmpar_available()
    report["hmmpar_error"] = hm_err
    if hm_err:
        print(f"  {hm_err}")

    print("setting up the Dedalus venv ...", flush=True)
    report["dedalus_install"] = inst = ensure_venv(args.dedalus_spec)
    if "install_s" in inst:
        print(f"  installed in {inst['install_s']:.0f} s" + (f"; ERROR {inst['error'][-500:]}" if "error" in inst else ""))
    worker = None
    de_err = inst.get("error")
    if not de_err:
        worker = Worker()
        v = worker(cmd="versions")
        if v.pop("ok"):
            versions["dedalus_venv"] = v
            print(f"  Dedalus {v['dedalus']} (numpy {v['numpy']}, scipy {v['scipy']}, mpi4py {v['mpi4py']}, "
                  f"{v['mpi'][:40]})", flush=True)
        else:
            de_err = v["error"]
    report["dedalus_error"] = de_err

    def de(**cmd):
        """A worker call; None (and the error recorded) if Dedalus is not available."""
        if worker is None:
            return None
        r = worker(**cmd)
        if not r.pop("ok"):
            print(f"  Dedalus error: {str(r.get('error'))[:500]}")
            report.setdefault("dedalus_errors", []).append({"cmd": cmd, "error": r.get("error"),
                                                            "tb": r.get("traceback")})
            return None
        return r

    try:
        # ----- timing cases --------------------------------------------------------------
        for nx, nz in grids:
            name = f"{nx}x{nz}"
            case: dict = {"nx": nx, "nz": nz}
            print(f"{name}:", flush=True)
            hm = None
            if not hm_err:
                try:
                    hm = hmmpar_side(nx, nz, args.ra, args.pr, aspect=args.aspect, walls=args.walls, cfl=args.cfl,
                                     seed=args.seed, amplitude=args.amplitude, t_spin=t_spin, t_meas=t_meas,
                                     repeats=repeats)
                    for r in hm["timings"]:
                        print(f"  hmmpar  {r['steps']:5d} steps {r['wall_s']:6.2f} s  {r['s_per_step'] * 1e3:8.3f} "
                              f"ms/step (cpu/wall {r['cpu_s'] / r['wall_s']:.2f}, other {r['other_cores']:.2f} "
                              f"cores) dt {r['dt_mean']:.3g}", flush=True)
                except Exception as e:
                    hm = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
                    print(f"  hmmpar error: {hm['error'][:300]}")
            case["hmmpar"] = hm
            dd = None
            if worker is not None:
                key = name
                b = de(cmd="build", key=key, nx=nx, nz=nz, **common, timestepper=args.timestepper,
                       amplitude=args.amplitude, seed=args.seed, ic="noise", matsolver=args.dedalus_matsolver)
                # with hmmpar's dt known, the untimed warm-up steps at that dt are the end of the spin-up,
                # so that both codes end at t_spin + repeats * t_meas
                t_sp = t_spin - args.warmup * hm["dt_mean"] if hm and "dt_mean" in hm else t_spin
                sp = de(cmd="spinup", key=key, t_end=t_sp, cfl=args.cfl, max_dt=max_dt) if b else None
                if sp:
                    dd = {"build_s": b["build_s"], "spinup": {k: sp[k] for k in ("steps", "wall_s", "last_cfl_dt",
                                                                                 "diag")}}
                    print(f"  Dedalus build {b['build_s']:.2f} s; spin-up to t={t_spin:g}: {sp['steps']} steps "
                          f"{sp['wall_s']:.1f} s, CFL dt {sp['last_cfl_dt']:.3g}, Nu {sp['diag']['nu_top']:.3f} "
                          f"Vrms {sp['diag']['vrms']:.2f}", flush=True)
                    if hm and "dt_mean" in hm:
                        dt, src = hm["dt_mean"], "hmmpar mean dt"
                    else:
                        dt, src = sp["last_cfl_dt"], "Dedalus CFL dt at the end of the spin-up"
                    n_steps = max(10, int(round(t_meas / dt)))
                    dt = t_meas / n_steps if src.startswith("hmmpar") else dt
                    dd.update(dt=dt, dt_source=src, n_steps=n_steps, timings=[])
                    for rep in range(repeats):
                        r = de(cmd="run", key=key, dt=dt, n_steps=n_steps, warmup=args.warmup if rep == 0 else 0)
                        if r is None:  # e.g. NaN: Dedalus unstable at this fixed dt (recorded in dedalus_errors)
                            dd["failed_at_dt"] = dt
                            break
                        dd["timings"].append(r)
                        print(f"  Dedalus {n_steps:5d} steps {r['wall_s']:6.2f} s  {r['s_per_step'] * 1e3:8.3f} "
                              f"ms/step (cpu/wall {r['cpu_s'] / r['wall_s']:.2f}, other {r['other_cores']:.2f} "
                              f"cores) dt {dt:.3g}  Nu {r['diag']['nu_top']:.3f} Vrms {r['diag']['vrms']:.2f}",
                              flush=True)
                    if dd["timings"]:
                        dd["s_per_step"] = min(r["s_per_step"] for r in dd["timings"])
                        dd["cpu_s_per_step"] = min(r["cpu_s_per_step"] for r in dd["timings"])
                        dd["final"] = dd["timings"][-1]["diag"]
                de(cmd="drop", key=key)
            case["dedalus"] = dd
            if hm and dd and "s_per_step" in hm and "s_per_step" in dd:
                case["ratio_dedalus_over_hmmpar"] = dd["s_per_step"] / hm["s_per_step"]
                case["ratio_cpu_dedalus_over_hmmpar"] = dd["cpu_s_per_step"] / hm["cpu_s_per_step"]
                case["dt_ratio_dedalus_over_hmmpar"] = dd["dt"] / hm["dt_mean"]
                case["dt_cfl_dedalus_over_hmmpar"] = dd["spinup"]["last_cfl_dt"] / hm["dt_mean"]
                case["accuracy_same_time"] = {k: {"hmmpar": hm["final"].get(k), "dedalus": dd["final"][k]}
                                              for k in ("t", "nu_top", "nu_bottom", "nu_volume", "vrms")}
            report["cases"][name] = case

        # ----- accuracy: Ra = 1e4 free-slip steady state ---------------------------------------
        if args.steady:
            st: dict = {"ra": 1e4, "aspect": 2.0, "walls": "free-slip", "ic": "cell", "amplitude": 0.1,
                        "t_end": steady_t, "reference": BLANKENBACH_1A, "runs": {}}
            sgrids = [(32, 16)] if quick else [(32, 16), (64, 32)]
            for pr in (1.0, 1e4):
                for nx, nz in sgrids:
                    key = f"dedalus_pr{pr:g}_{nx}x{nz}"
                    b = de(cmd="build", key=key, nx=nx, nz=nz, ra=1e4, pr=pr, aspect=2.0, walls="free-slip",
                           timestepper=args.timestepper, amplitude=0.1, ic="cell")
                    sp = de(cmd="spinup", key=key, t_end=steady_t, cfl=args.cfl, max_dt=max_dt,
                            sample_every=steady_t / 6) if b else None
                    de(cmd="drop", key=key)
                    if sp:
                        st["runs"][key] = {"code": "dedalus", "pr": pr, "nx": nx, "nz": nz, "steps": sp["steps"],
                                           "wall_s": sp["wall_s"], "diag": sp["diag"], "history": sp["samples"]}
                        d = sp["diag"]
                        print(f"  steady Ra=1e4 Pr={pr:g} {nx}x{nz} Dedalus t={d['t']:.3g}: Nu top {d['nu_top']:.6f} "
                              f"bottom {d['nu_bottom']:.6f} volume {d['nu_volume']:.6f} Vrms {d['vrms']:.6f} "
                              f"cells {d['cells']} ({sp['steps']} steps {sp['wall_s']:.1f} s)", flush=True)
            if not hm_err:
                for nx, nz in sgrids:
                    key = f"hmmpar_pr1_{nx}x{nz}"
                    try:
                        h = hmmpar_steady(nx, nz, 1e4, 1.0, aspect=2.0, t_end=steady_t, cfl=args.cfl, amplitude=0.1)
                        st["runs"][key] = {"code": "hmmpar", "pr": 1.0, "nx": nx, "nz": nz, **h}
                        print(f"  steady Ra=1e4 Pr=1 {nx}x{nz} hmmpar: {h['diag']}", flush=True)
                    except Exception as e:
                        st["runs"][key] = {"code": "hmmpar", "error": f"{type(e).__name__}: {e}"}
            for r in st["runs"].values():
                if "diag" in r and r["diag"].get("vrms") is not None:
                    r["rel_err_vs_blankenbach"] = {
                        "nu_top": r["diag"]["nu_top"] / BLANKENBACH_1A["nu"] - 1,
                        "vrms": r["diag"]["vrms"] / BLANKENBACH_1A["vrms"] - 1}
            report["steady"] = st
    finally:
        if worker is not None:
            worker.close()
    report["loadavg_end"] = os.getloadavg()

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jpath = out / f"convection{suffix}.json"
    jpath.write_text(json.dumps(report, indent=1, default=float) + "\n")
    table(report)
    try:
        plot(report, out / f"convection{suffix}.png")
        print(f"wrote {jpath} and {out / f'convection{suffix}.png'}")
    except Exception as e:
        print(f"wrote {jpath}; plot failed: {e}")


def table(report: dict) -> None:
    print(f"\n{'grid':>8s} {'hmmpar ms/step':>15s} {'Dedalus ms/step':>16s} {'Dedalus/hmmpar':>15s} {'dt ratio':>9s}"
          f"   Nu_top hmmpar / Dedalus     Vrms hmmpar / Dedalus")
    for name, c in report["cases"].items():
        hm, dd = c.get("hmmpar") or {}, c.get("dedalus") or {}
        h = f"{hm['s_per_step'] * 1e3:15.3f}" if "s_per_step" in hm else f"{'-':>15s}"
        d = f"{dd['s_per_step'] * 1e3:16.3f}" if "s_per_step" in dd else f"{'-':>16s}"
        r = f"{c['ratio_dedalus_over_hmmpar']:15.2f}" if "ratio_dedalus_over_hmmpar" in c else f"{'-':>15s}"
        q = f"{c['dt_ratio_dedalus_over_hmmpar']:9.2f}" if "dt_ratio_dedalus_over_hmmpar" in c else f"{'-':>9s}"
        fh, fd = hm.get("final", {}), dd.get("final", {})
        nu = f"{fh.get('nu_top', float('nan')):10.4f} / {fd.get('nu_top', float('nan')):10.4f}"
        vr = f"{fh.get('vrms', float('nan')):10.3f} / {fd.get('vrms', float('nan')):10.3f}"
        print(f"{name:>8s} {h} {d} {r} {q}   {nu}   {vr}")
    st = report.get("steady")
    if st:
        ref = st["reference"]
        print(f"steady Ra=1e4 free slip at t={st['t_end']:g} (Blankenbach 1a, Pr=inf: Nu {ref['nu']}, "
              f"Vrms {ref['vrms']}):")
        for k, r in st["runs"].items():
            if "diag" in r:
                d = r["diag"]
                print(f"  {k:26s} Nu_top {d.get('nu_top', float('nan')):.6f}  Nu_vol "
                      f"{d.get('nu_volume', float('nan')):.6f}  Vrms {d.get('vrms', float('nan')):.6f}")
            else:
                print(f"  {k:26s} {r.get('error')}")
    if report.get("hmmpar_error"):
        print(f"hmmpar not measured: {report['hmmpar_error']}")
    if report.get("dedalus_error"):
        print(f"Dedalus not measured: {report['dedalus_error'][-300:]}")


def plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(report["cases"])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [1.6, 1]})
    w = 0.38
    for i, (code, color) in enumerate((("hmmpar", "#1f77b4"), ("dedalus", "#d62728"))):
        ys = [((report["cases"][n].get(code) or {}).get("s_per_step") or 0.0) * 1e3 for n in names]
        bars = ax.bar([k + (i - 0.5) * w for k in range(len(names))], ys, w, color=color,
                      label="hmmpar convection" if code == "hmmpar" else
                      f"Dedalus {report['versions'].get('dedalus_venv', {}).get('dedalus', '?')} "
                      f"({report['parameters']['timestepper']})")
        ax.bar_label(bars, labels=[f"{y:.2f}" if y else "n/a" for y in ys], fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n} (nx x nz)" for n in names])
    ax.set_ylabel(f"ms per time step (one core, best of {report['repeats']})")
    p = report["parameters"]
    ax.set_title(f"2D Boussinesq convection, Ra={p['ra']:g}, Pr={p['pr']:g}, L={p['aspect']:g}, {p['walls']}",
                 fontsize=10)
    ax.legend(fontsize=8)
    rat = [report["cases"][n].get("ratio_dedalus_over_hmmpar") for n in names]
    if any(r is not None for r in rat):
        bars = ax2.bar(range(len(names)), [r or 0.0 for r in rat], 0.5, color="#7f7f7f")
        ax2.bar_label(bars, labels=[f"{r:.2f}" if r else "n/a" for r in rat], fontsize=8)
        ax2.axhline(1.0, color="k", lw=0.8, ls=":")
    else:
        why = report.get("hmmpar_error") or report.get("dedalus_error") or "not measured"
        ax2.text(0.5, 0.5, "ratio not available:\n" + "\n".join(why[i:i + 38] for i in range(0, min(len(why), 152), 38)),
                 ha="center", va="center", fontsize=8, transform=ax2.transAxes)
    ax2.set_xticks(range(len(names)))
    ax2.set_xticklabels(names)
    ax2.set_xlim(-0.6, len(names) - 0.4)
    ax2.set_title("Dedalus s/step / hmmpar s/step", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
    sys.exit(0)
