#!/usr/bin/env python
r"""Cost to reach a given error: a fully resolved run against the time-scale couplers (issue 14).

This is a measurement, not a test: it always exits 0. Run it on a quiet machine::

    .venv/bin/python benchmarks/couplers.py            # ~10 s
    .venv/bin/python benchmarks/couplers.py --quick    # smoke run, seconds

Two problems of :mod:`hmmpar.couplers.examples`, at eps = 1e-6, on [0, 1]; the error is
|X(1) - X_avg(1)| against the averaged equation's exact value (seed: X(1) = 1; dissipative:
1.1536286412):

* **resolved**: the whole system by RK4 at h = 0.1 eps (the step the fast scale demands;
  10^7 steps), compiled;
* **seamless HMM** (:func:`~hmmpar.couplers.seamless_hmm`, windowed estimator): macro steps dt
  from 0.1 to 1e-3 with n dtau = 1 (n = 10 micro RK4 steps of dtau = 0.1);
* **classical HMM** (:func:`~hmmpar.couplers.classical_hmm`): dt = 0.01, re-initialised
  every step (seed: at (y, z) = (1, 0); dissipative: at y = 1), windows of 10 to 3000 micro
  steps (dissipative: half of them to relax);
* **projective RK** (:func:`~hmmpar.couplers.projective_rk`, outer RK2 and RK4, dissipative
  only): inner forward Euler steps of h = eps, K = 3 before each slope. On the seed problem
  the fast modes rotate (eigenvalues +-i/eps): there is nothing for the inner steps to
  damp, and projective integration does not apply; the JSON says so.

Work is counted in evaluations of the fast right-hand side g (an RK4 step: 4; an inner
Euler step: 1), wall time is measured too (after a compile run); the table gives for each
method the least work that reaches each target error, and its ratio to the resolved run's.
The PNG shows error against work and the stability regions of projective forward Euler,
|rho^k ((M + 1) rho - M)| <= 1 in the complex rho = 1 + h lambda plane.

Writes ``benchmarks/results/couplers.json`` and ``.png`` (``couplers_quick.*``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmmpar.couplers import (EulerODE, SlowFastODE, amplification, classical_hmm,  # noqa: E402
                             projective_rk, seamless_hmm)
from hmmpar.couplers import examples as ex  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
EPS = 1e-6
TARGETS = (1e-2, 1e-3, 1e-4)


@numba.njit
def _rk4_full(rhs, u, t0, h, steps):
    n = u.size
    k1, k2, k3, k4, tmp = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    t = t0
    for _ in range(steps):
        rhs(t, u, k1)
        for i in range(n):
            tmp[i] = u[i] + 0.5 * h * k1[i]
        rhs(t + 0.5 * h, tmp, k2)
        for i in range(n):
            tmp[i] = u[i] + 0.5 * h * k2[i]
        rhs(t + 0.5 * h, tmp, k3)
        for i in range(n):
            tmp[i] = u[i] + h * k3[i]
        rhs(t + h, tmp, k4)
        for i in range(n):
            u[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
        t += h


def timed(fn):
    fn()                                   # compile
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def resolved(rhs, u0, exact: float, steps: int) -> dict:
    def run():
        u = np.array(u0, dtype=float)
        _rk4_full(rhs, u, 0.0, 1.0 / steps, steps)
        return u
    u, wall = timed(run)
    return {"error": abs(u[0] - exact), "work": 4 * steps, "wall": wall, "steps": steps}


def problem(name: str, quick: bool) -> dict:
    seed = name == "seed"
    f, g = (ex.f_seed, ex.g_seed) if seed else (ex.f_dissipative, ex.g_dissipative)
    y0 = ex.SEED_Y0 if seed else np.array([1.0])
    x0, exact = (0.0, 1.0) if seed else (1.0, ex.X1_DISSIPATIVE)
    full = ex.full_rhs_seed(EPS) if seed else ex.full_rhs_dissipative(EPS)
    u0 = [0.0, 1.0, 0.0] if seed else [1.0, 1.0]
    out: dict = {"exact_X1": exact, "eps": EPS}
    steps = 10 ** 6 if quick else 10 ** 7           # h = 0.1 eps for the default
    out["resolved"] = [resolved(full, u0, exact, steps)]
    print(f"  {name}: resolved, {steps} RK4 steps: error {out['resolved'][0]['error']:.2e}, "
          f"{out['resolved'][0]['wall']:.2f} s", flush=True)
    stepper = SlowFastODE(f, g, 1, y0.size, EPS, 0.1, y0)
    rows = []
    for dt in ((0.1, 0.01) if quick else (0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)):
        r, wall = timed(lambda: seamless_hmm(stepper, [x0], 0.0, 1.0, dt, 10))
        rows.append({"dt": dt, "n": 10, "dtau": 0.1, "error": abs(r.X[-1, 0, 0] - exact),
                     "work": 4 * r.micro_steps, "wall": wall})
    out["seamless"] = rows
    rows = []
    for window in ((10, 100) if quick else (10, 30, 100, 300, 1000, 3000)):
        relax = 0 if seed else window // 2
        r, wall = timed(lambda: classical_hmm(stepper, [x0], 0.0, 1.0, 0.01, relax, window))
        rows.append({"dt": 0.01, "relax": relax, "window": window, "error": abs(r.X[-1, 0, 0] - exact),
                     "work": 4 * r.micro_steps, "wall": wall})
    out["classical"] = rows
    if seed:
        out["projective"] = {"not_applicable": "the fast modes rotate (eigenvalues +-i/eps): the inner steps "
                                               "cannot damp them, there is no spectral gap to exploit"}
    else:
        for method in ("rk2", "rk4"):
            rows = []
            for dt in ((0.1, 0.05) if quick else (0.2, 0.1, 0.05, 0.025, 0.0125)):
                inner = EulerODE(full, EPS)
                r, wall = timed(lambda: projective_rk(inner, u0, 0.0, round(1.0 / dt), dt, 3, method))
                rows.append({"dt": dt, "K": 3, "h": EPS, "error": abs(r.U[-1, 0, 0] - exact),
                             "work": r.inner_steps, "wall": wall})
            out[f"projective_{method}"] = rows
    return out


def cheapest(rows: list[dict], target: float) -> dict | None:
    ok = [r for r in rows if r["error"] <= target]
    return min(ok, key=lambda r: r["work"]) if ok else None


def table(res: dict) -> list[dict]:
    out = []
    for name, p in res.items():
        ref = p["resolved"][0]
        for method, rows in p.items():
            if not isinstance(rows, list):
                continue
            for target in TARGETS:
                best = cheapest(rows, target)
                out.append({"problem": name, "method": method, "target": target,
                            "work": best["work"] if best else None,
                            "work_over_resolved": best["work"] / ref["work"] if best else None,
                            "wall_over_resolved": best["wall"] / ref["wall"] if best else None,
                            "error": best["error"] if best else None})
    return out


def plot(path: Path, res: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    style = {"resolved": ("k", "s"), "seamless": ("C3", "o"), "classical": ("C0", "^"),
             "projective_rk2": ("C2", "v"), "projective_rk4": ("C4", "D")}
    for a, (name, p) in zip(ax[:2], res.items()):
        for method, rows in p.items():
            if isinstance(rows, list):
                w = [r["work"] for r in rows]
                e = [max(r["error"], 1e-16) for r in rows]
                a.loglog(w, e, color=style[method][0], marker=style[method][1], label=method)
        a.set(xlabel="fast right-hand-side evaluations", ylabel="|X(1) - X_avg(1)|",
              title=f"{name} example, eps = {EPS:g}")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    x = np.linspace(-0.8, 1.3, 841)
    zz = x[None, :] + 1j * x[:, None]
    for (k, M), c in zip(((1, 3.0), (1, 6.0), (2, 10.0), (1, 20.0)), ("C0", "C1", "C2", "C3")):
        ax[2].contour(x, x, np.abs(amplification(zz, k, M)), levels=[1.0], colors=c)
        ax[2].plot([], [], color=c, label=f"k = {k}, M = {M:g}")
    ax[2].set(xlabel="Re rho", ylabel="Im rho", aspect="equal",
              title="projective forward Euler: |rho^k ((M+1) rho - M)| = 1")
    ax[2].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (seconds)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and PNG go")
    args = ap.parse_args(argv)
    tag = "couplers_quick" if args.quick else "couplers"
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = {name: problem(name, args.quick) for name in ("seed", "dissipative")}
    rows = table(res)
    result = {"benchmark": "couplers", "quick": args.quick,
              "command": ".venv/bin/python benchmarks/couplers.py" + (" --quick" if args.quick else ""),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(), "loadavg": os.getloadavg()},
              "work_unit": "evaluations of the fast right-hand side g (RK4 step: 4, Euler step: 1)",
              "problems": res, "table": rows, "seconds": time.perf_counter() - t0}
    (args.out / f"{tag}.json").write_text(json.dumps(result, indent=1))
    plot(args.out / f"{tag}.png", res)
    print(f"\n{'problem':12s} {'method':16s} {'target':>8s} {'work':>10s} {'work/resolved':>14s} "
          f"{'wall/resolved':>14s}")
    for r in rows:
        if r["method"] == "resolved":
            continue
        w = "-" if r["work"] is None else f"{r['work']:.3g}"
        wr = "not reached" if r["work"] is None else f"{r['work_over_resolved']:.2e}"
        tr = "" if r["work"] is None else f"{r['wall_over_resolved']:.2e}"
        print(f"{r['problem']:12s} {r['method']:16s} {r['target']:8.0e} {w:>10s} {wr:>14s} {tr:>14s}")
    print(f"wrote {args.out / (tag + '.json')} and .png ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
