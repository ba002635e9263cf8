#!/usr/bin/env python
r"""Cost to reach a given error: a fully resolved run against the time-scale couplers (issue 14).

This is a measurement, not a test: it always exits 0. Run it on a quiet machine::

    .venv/bin/python benchmarks/couplers.py            # ~25 s
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

**Patch dynamics against the full-domain micro simulation** (the JSON's ``patches``, the PNG
``couplers_patches.png``): u_t = (a(x/eps) u_x)_x on the periodic [0, 1), a(y) = 1.1 +
sin(2 pi y), eps = 1/512, u(0) = sin(2 pi x), the decay rate of that mode fitted (log-linear
least squares) over [0, T], T = 0.048, as in ``tests/validation/couplers/test_patch_dynamics.py``:

* **full domain**: the fine finite-volume scheme of :class:`~hmmpar.couplers.PatchDiffusion`
  (16 cells per period, face values of a) on all 8192 cells, Crank--Nicolson with a Rannacher
  start-up (two backward-Euler half steps), k = T/3 to T/192, one ``scipy.sparse.linalg.splu``
  factorisation per run; and forward Euler at the step that keeps updates convex, whose ~1.3e7
  steps are counted exactly but timed only over 1e5 steps and extrapolated;
* **patch dynamics** (:func:`~hmmpar.couplers.patch_dynamics`) in the validated setting
  (patches 2 eps, buffers 4 eps, micro time eps^2/2, quartic lifting) with N = 8, 16, 32
  patches, outer RK4 and RK2 at several dt below each one's stability limit.

Errors are |rate / reference - 1| against two references: a* (2 pi)^2 (the homogenized limit)
and the fine scheme's own rate, the slow Bloch eigenvalue of the fine operator (= a*_h (2 pi)^2
up to O((2 pi eps)^2), a*_h = a* (1 - 1.65e-3) the harmonic mean of the face values). Both
methods discretise the same fine model, so neither gets closer to a* (2 pi)^2 than about
1.65e-3; the fine rate is the fair reference. Work is counted in fine cell-updates (cells
advanced x fine time steps; the patches: N x 160 cells x the fine steps of all slopes);
wall time is measured after a compile run. The table gives for each target the cheapest
run of each kind and the ratios patch / full, with the fraction of the domain (patches and
buffers) and of time (stages x micro time / dt) that the patches simulate. Last, one pair of
runs of similar error (N = 16 RK4 dt = 0.004 against Crank--Nicolson k = T/12) at eps = 1/512
to 1/32768: the patches' work does not depend on eps, the full domain's grows like 1/eps; the
JSON gives the eps where each ratio crosses 1 (the PNG's fourth panel).

Writes ``benchmarks/results/couplers.json``, ``.png`` and ``_patches.png`` (``couplers_quick*``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
import scipy.sparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmmpar.couplers import (EulerODE, SlowFastODE, amplification, classical_hmm,  # noqa: E402
                             projective_rk, seamless_hmm)
from hmmpar.couplers.patches import PatchDiffusion, harmonic_mean, macro_rate, patch_dynamics  # noqa: E402
from hmmpar.couplers.projective import TABLEAUX  # noqa: E402
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


# --- second benchmark: patch dynamics against the full-domain micro simulation --------------

PATCH_EPS = 1.0 / 512
PATCH_PPP = 16                      # fine cells per period eps
PATCH_K = 2.0 * np.pi               # the sin(2 pi x) mode
PATCH_T = 0.048                     # fit window [0, T], as in the validation (12 RK4 steps of 4e-3)
PATCH_TARGETS = (1e-2, 3e-3, 1e-3)


def best_wall(fn: Callable[[], Any], budget: float = 0.3, repeats: int = 5) -> tuple[Any, float]:
    """``fn()`` and its least wall time over up to ``repeats`` runs, repeated only while the
    runs so far took less than ``budget`` seconds in all (runs of milliseconds are noisy)."""
    walls: list[float] = []
    while not walls or (len(walls) < repeats and sum(walls) < budget):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return out, min(walls)


def a_medium(y: np.ndarray) -> np.ndarray:
    """The validation's 1-periodic coefficient a(y) = 1.1 + sin(2 pi y) (a* = sqrt(1.1^2 - 1))."""
    return 1.1 + np.sin(2.0 * np.pi * y)


def fitted_rate(t: np.ndarray, amp: np.ndarray) -> float:
    """Decay rate: minus the slope of the least-squares line through ``log(amp)`` against ``t``
    (the fit of ``tests/validation/couplers/test_patch_dynamics.py``)."""
    if not np.all(amp > 0):
        return float("nan")
    return float(-np.polyfit(t, np.log(amp), 1)[0])


def full_faces(eps: float, ppp: int) -> tuple[np.ndarray, float]:
    r"""Face coefficients ``a[j]`` = :math:`a(x_{j-1/2}/\varepsilon)` of the whole periodic
    domain's fine cells (face ``j`` is the left face of cell ``j``, at :math:`x = j\,\delta x`,
    where :class:`~hmmpar.couplers.PatchDiffusion` puts its faces too) and :math:`\delta x`."""
    n = round(ppp / eps)
    dx = 1.0 / n
    return np.asarray(a_medium(np.arange(n) * dx / eps), dtype=float), dx


def full_operator(af: np.ndarray, dx: float) -> scipy.sparse.csr_matrix:
    r"""The fine finite-volume operator on the periodic domain, a cyclic tridiagonal
    ``scipy.sparse`` CSR matrix: :math:`(Lu)_j = (a_{j+1/2}(u_{j+1} - u_j) - a_{j-1/2}(u_j - u_{j-1}))/\delta x^2`."""
    n = af.size
    j = np.arange(n)
    aL, aR = af, np.roll(af, -1)
    rows = np.concatenate([j, j, j])
    cols = np.concatenate([j, (j + 1) % n, (j - 1) % n])
    vals = np.concatenate([-(aL + aR), aR, aL]) / dx ** 2
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def bloch_rate(af: np.ndarray, dx: float, ppp: int, k: float) -> float:
    r"""The exact decay rate of the fine scheme's slow Bloch mode :math:`u_j = e^{ikx_j}\phi_j`
    (:math:`\phi` of period ``ppp`` cells): minus the eigenvalue of least modulus of the
    ``ppp`` x ``ppp`` Bloch matrix. It is the rate the full-domain semi-discretisation gives
    the mode, :math:`a^*_h k^2 (1 + O((k\varepsilon)^2))`."""
    aL = af[:ppp]
    aR = np.roll(af, -1)[:ppp] if af.size > ppp else np.roll(aL, -1)
    M = np.zeros((ppp, ppp), dtype=complex)
    for j in range(ppp):
        M[j, j] -= aL[j] + aR[j]
        M[j, (j + 1) % ppp] += aR[j] * np.exp(1j * k * dx)
        M[j, (j - 1) % ppp] += aL[j] * np.exp(-1j * k * dx)
    ev = np.linalg.eigvals(M / dx ** 2)
    return float(-ev[np.argmin(np.abs(ev))].real)


def full_initial(n: int, dx: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres and the exact cell averages of sin(2 pi x)."""
    xc = (np.arange(n) + 0.5) * dx
    return xc, np.sin(PATCH_K * xc) * np.sinc(PATCH_K * dx / (2 * np.pi))


def full_implicit(L: scipy.sparse.csr_matrix, u0: np.ndarray, xc: np.ndarray, steps: int) -> dict:
    r"""Crank--Nicolson on the whole domain, ``steps`` steps of :math:`k = T/\text{steps}`,
    the first one replaced by two backward-Euler half steps (Rannacher start-up, which damps
    the fine scale's stiff modes that Crank--Nicolson alone would carry along with factor
    :math:`\approx -1` per step). One SuperLU factorisation of the cyclic tridiagonal
    :math:`I - \tfrac{k}{2}L` serves both (``scipy.sparse.linalg.splu``)."""
    from scipy.sparse.linalg import splu
    sp = scipy.sparse
    n = u0.size
    k = PATCH_T / steps

    def run() -> list[float]:
        lu = splu((sp.identity(n, format="csc") - 0.5 * k * L).tocsc())
        B = (sp.identity(n, format="csr") + 0.5 * k * L).tocsr()
        u = u0.copy()
        amp = [u @ s]
        u = lu.solve(lu.solve(u))
        amp.append(u @ s)
        for _ in range(steps - 1):
            u = lu.solve(B @ u)
            amp.append(u @ s)
        return amp

    s = np.sin(PATCH_K * xc) * 2.0 / n
    amp, wall = best_wall(run)
    t = k * np.arange(steps + 1)
    return {"method": "crank_nicolson", "k": k, "steps": steps, "rate": fitted_rate(t, np.array(amp)),
            "work": (steps + 1) * n, "wall": wall}


@numba.njit
def _explicit_full(u, aL, aR, c, steps):
    n = u.size
    new = np.empty(n)
    for _ in range(steps):
        for j in range(n):
            jm = j - 1 if j > 0 else n - 1
            jp = j + 1 if j < n - 1 else 0
            new[j] = u[j] + c * (aR[j] * (u[jp] - u[j]) - aL[j] * (u[j] - u[jm]))
        u[:] = new


def full_explicit(af: np.ndarray, dx: float, u0: np.ndarray, lam: float, timed_steps: int) -> dict:
    r"""Forward Euler on the whole domain at the step that keeps every update a convex
    combination, :math:`\delta t = \delta x^2/\max_j(a_{j-1/2} + a_{j+1/2})`. The run to
    :math:`T` (about :math:`10^7` steps) is not affordable here: ``timed_steps`` steps are
    timed (after a compile run) and the wall time is extrapolated linearly; the work is
    counted exactly. Its rate error is the time discretisation's, :math:`\lambda\,\delta t/2`
    (amplification :math:`1 - \lambda\delta t`), not measured."""
    aL, aR = af, np.roll(af, -1)
    h = dx * dx / float(np.max(aL + aR))
    steps = math.ceil(PATCH_T / h)
    c = h / dx ** 2
    _explicit_full(u0.copy(), aL, aR, c, 2)
    u = u0.copy()
    t0 = time.perf_counter()
    _explicit_full(u, aL, aR, c, timed_steps)
    per_step = (time.perf_counter() - t0) / timed_steps
    return {"method": "forward_euler", "h": h, "steps": steps, "rate": lam * (1 + 0.5 * lam * h),
            "rate_measured": False, "work": steps * af.size, "wall": per_step * steps,
            "wall_extrapolated_from_steps": timed_steps}


def patch_run(N: int, method: str, dt: float, eps: float = PATCH_EPS) -> dict:
    """Patch dynamics in the validated setting (patches 2 eps, buffers 4 eps, micro time eps^2/2,
    quartic lifting) with ``N`` patches and outer ``method`` steps of ``dt`` over [0, T]."""
    st = PatchDiffusion(a_medium, eps, N, 2 * eps, 4 * eps, 0.5 * eps ** 2, PATCH_PPP, 4)
    s = np.sin(PATCH_K * st.centres)
    steps = round(PATCH_T / dt)
    r, wall = best_wall(lambda: patch_dynamics(st, s[None], 0.0, steps, dt, method))
    stages = len(TABLEAUX[method].b)
    return {"N": N, "method": method, "dt": dt, "outer_steps": steps, "eps": eps,
            "rate": fitted_rate(r.t, r.U[:, 0, :] @ s * 2.0 / N),
            "work": r.inner_steps * N * st.nf, "wall": wall, "fine_steps": r.inner_steps,
            "domain_fraction": st.domain_fraction, "patch_fraction": st.domain_fraction * st.n_in / st.nf,
            "time_fraction": stages * st.micro_time / dt,
            "cells_per_patch": st.nf, "fine_dt": st.h}


def patch_problem(quick: bool) -> dict:
    """Both runs, the two references, the errors and the cost-to-error table."""
    af, dx = full_faces(PATCH_EPS, PATCH_PPP)
    n = af.size
    a_star = harmonic_mean(a_medium)
    a_star_h = float(1.0 / np.mean(1.0 / af[:PATCH_PPP]))
    lam_exact = a_star * PATCH_K ** 2
    lam_fine = bloch_rate(af, dx, PATCH_PPP, PATCH_K)
    L = full_operator(af, dx)
    xc, u0 = full_initial(n, dx)
    full_implicit(L, u0, xc, 3)                                    # import and warm-up
    cn = [full_implicit(L, u0, xc, m) for m in ((3, 12) if quick else (3, 6, 12, 24, 48, 96, 192))]
    expl = full_explicit(af, dx, u0, lam_fine, 2000 if quick else 100_000)
    settings = ([(8, "rk4", 0.016)] if quick else
                [(8, "rk4", 0.016), (8, "rk4", 0.008), (8, "rk2", 0.012), (8, "rk2", 0.006), (8, "rk2", 0.003),
                 (16, "rk4", 0.004), (16, "rk4", 0.002), (16, "rk2", 0.003), (16, "rk2", 0.0015),
                 (32, "rk4", 0.001), (32, "rk2", 0.00075)])
    patch_run(8, "rk2", PATCH_T / 2)                                # numba compile
    pd = []
    for N, method, dt in settings:
        pd.append(patch_run(N, method, dt))
        print(f"  patches: N = {N}, {method}, dt = {dt:g}: rate {pd[-1]['rate']:.5f}, "
              f"{pd[-1]['wall']:.2f} s", flush=True)
    for row in pd:
        # the known terms relative to the fine rate: the macro scheme and the slope lag
        lam = macro_rate(PATCH_K, lam_fine / PATCH_K ** 2, 1.0 / row["N"], 2 * PATCH_EPS, 4)
        row["rate_known_terms"] = lam * math.exp(-lam * 0.5 * PATCH_EPS ** 2)
    for row in cn + [expl] + pd:
        row["error_fine"] = abs(row["rate"] / lam_fine - 1)
        row["error_exact"] = abs(row["rate"] / lam_exact - 1)
    rows = []
    for ref in ("fine", "exact"):
        for target in PATCH_TARGETS:
            key = f"error_{ref}"
            p = min((r for r in pd if r[key] <= target), key=lambda r: r["work"], default=None)
            f = min((r for r in cn if r[key] <= target), key=lambda r: r["work"], default=None)
            rows.append({"reference": ref, "target": target, "patch": p, "full_implicit": f,
                         "work_patch_over_full": p["work"] / f["work"] if p and f else None,
                         "wall_patch_over_full": p["wall"] / f["wall"] if p and f else None,
                         "work_patch_over_explicit": p["work"] / expl["work"] if p else None,
                         "wall_patch_over_explicit": p["wall"] / expl["wall"] if p else None})
    return {"eps": PATCH_EPS, "points_per_period": PATCH_PPP, "fine_cells": n, "T": PATCH_T,
            "a_star": a_star, "a_star_h": a_star_h, "a_star_h_over_a_star": a_star_h / a_star,
            "rate_exact": lam_exact, "rate_fine": lam_fine,
            "rate_full_converged": cn[-1]["rate"],
            "work_unit": "fine cell-updates (cells advanced x fine time steps; a Crank-Nicolson step "
                         "updates every cell once, by one sparse solve)",
            "full_implicit": cn, "full_explicit": expl, "patch": pd, "table": rows,
            "eps_scaling": eps_scaling(quick)}


def eps_scaling(quick: bool) -> dict:
    """The same pair of runs (Crank--Nicolson with k = T/12 against one patch setting of
    similar error) at decreasing eps: the patches' work does not depend on eps (a fixed number
    of periods per patch, a micro time and fine step proportional to eps^2), the full
    domain's grows like 1/eps (implicit; 1/eps^3 explicit). The crossover, where a ratio
    reaches 1, is from :func:`crossover`."""
    N, method, dt = (8, "rk4", 0.016) if quick else (16, "rk4", 0.004)
    rows = []
    for eps in ((1 / 512, 1 / 1024) if quick else (1 / 512, 1 / 2048, 1 / 8192, 1 / 32768)):
        af, dx = full_faces(eps, PATCH_PPP)
        lam_fine = bloch_rate(af, dx, PATCH_PPP, PATCH_K)
        xc, u0 = full_initial(af.size, dx)
        f = full_implicit(full_operator(af, dx), u0, xc, 12)
        p = patch_run(N, method, dt, eps)
        explicit_steps = math.ceil(PATCH_T * float(np.max(af + np.roll(af, -1))) / dx ** 2)
        rows.append({"eps": eps, "fine_cells": af.size, "rate_fine": lam_fine,
                     "full_implicit": {**f, "error_fine": abs(f["rate"] / lam_fine - 1)},
                     "patch": {**p, "error_fine": abs(p["rate"] / lam_fine - 1)},
                     "work_full_explicit": explicit_steps * af.size,
                     "work_patch_over_full": p["work"] / f["work"], "wall_patch_over_full": p["wall"] / f["wall"]})
        print(f"  eps = 1/{round(1 / eps)}: patch / full-domain CN work {rows[-1]['work_patch_over_full']:.3g}, "
              f"wall {rows[-1]['wall_patch_over_full']:.3g}", flush=True)
    return {"patch_setting": {"N": N, "method": method, "dt": dt}, "full_setting": {"k": PATCH_T / 12},
            "rows": rows, "crossover_eps_work": crossover([r["eps"] for r in rows],
                                                          [r["work_patch_over_full"] for r in rows]),
            "crossover_eps_wall": crossover([r["eps"] for r in rows], [r["wall_patch_over_full"] for r in rows])}


def crossover(eps: list[float], ratio: list[float]) -> float:
    """The eps where ``ratio`` (measured at decreasing ``eps``) reaches 1: interpolated
    log-log between the two measurements around it, else extrapolated proportional to eps
    from the smallest eps."""
    for i in range(1, len(eps)):
        if ratio[i - 1] > 1.0 >= ratio[i]:
            s = math.log(ratio[i] / ratio[i - 1]) / math.log(eps[i] / eps[i - 1])
            return float(eps[i] * math.exp(-math.log(ratio[i]) / s))
    return float(eps[-1] / ratio[-1])


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


def plot_patches(path: Path, res: dict) -> None:
    """Rate error against fine cell-updates (both references) and against wall time; the
    patch / full-domain ratios against eps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(2, 2, figsize=(13, 10))
    ax = ax.ravel()
    floor = abs(res["rate_fine"] / res["rate_exact"] - 1)
    for a, (key, ref, label) in zip(ax, (("work", "fine", "fine cell-updates"),
                                         ("wall", "fine", "wall time [s]"),
                                         ("work", "exact", "fine cell-updates"))):
        e = f"error_{ref}"
        cn = res["full_implicit"]
        a.loglog([r[key] for r in cn], [max(r[e], 1e-12) for r in cn], "ks-",
                 label="full domain, Crank-Nicolson (k = T/3 ... T/192)")
        ex_ = res["full_explicit"]
        a.loglog([ex_[key]], [max(ex_[e], 1e-12)], "kx", ms=9,
                 label="full domain, forward Euler at the stable step (work counted, wall extrapolated)")
        for (N, method), c, m in zip(((8, "rk4"), (8, "rk2"), (16, "rk4"), (16, "rk2"), (32, "rk4"), (32, "rk2")),
                                     ("C0", "C0", "C3", "C3", "C2", "C2"), ("o", "v", "o", "v", "o", "v")):
            rows = [r for r in res["patch"] if r["N"] == N and r["method"] == method]
            if rows:
                a.loglog([r[key] for r in rows], [max(r[e], 1e-12) for r in rows], color=c, marker=m,
                         ls="--" if method == "rk2" else "-", label=f"patch dynamics, N = {N}, {method}")
        if ref == "exact":
            a.axhline(floor, color="0.5", ls=":", label="fine-grid floor |a*_h / a* - 1| (approx.)")
        a.set(xlabel=label, ylabel=f"|rate / rate_{ref} - 1|",
              title=("against the fine scheme's rate" if ref == "fine" else "against a* (2 pi)^2")
              + f", eps = 1/{round(1 / res['eps'])}")
        a.grid(True, which="both", alpha=0.3)
    handles, labels = ax[0].get_legend_handles_labels()
    h2, l2 = ax[2].get_legend_handles_labels()
    fig.legend(handles + h2[-1:], labels + l2[-1:], loc="lower center", ncol=3, fontsize=8)
    sc = res["eps_scaling"]
    eps = [r["eps"] for r in sc["rows"]]
    ax[3].loglog(eps, [r["work_patch_over_full"] for r in sc["rows"]], "ko-", label="fine cell-updates")
    ax[3].loglog(eps, [r["wall_patch_over_full"] for r in sc["rows"]], "C1s-", label="wall time")
    ax[3].axhline(1.0, color="0.5", ls=":")
    s, f = sc["patch_setting"], sc["full_setting"]
    ax[3].set(xlabel="eps", ylabel="patch / full domain",
              title=f"N = {s['N']} {s['method']} dt = {s['dt']:g} vs Crank-Nicolson k = {f['k']:g}")
    ax[3].grid(True, which="both", alpha=0.3)
    ax[3].legend(fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_patches(res: dict) -> None:
    """The cost-to-error table of the patch benchmark."""
    print(f"\npatch dynamics vs full domain (rates: a* (2 pi)^2 = {res['rate_exact']:.4f}, fine scheme "
          f"{res['rate_fine']:.4f}, full CN converged {res['rate_full_converged']:.4f})")
    print(f"{'ref':6s} {'target':>7s} {'patch setting':>20s} {'full CN k':>10s} {'work p/f':>9s} {'wall p/f':>9s} "
          f"{'work p/expl':>11s} {'wall p/expl':>11s} {'domain':>7s} {'time':>8s}")
    for r in res["table"]:
        p, f = r["patch"], r["full_implicit"]
        ps = "not reached" if p is None else f"N={p['N']} {p['method']} dt={p['dt']:g}"
        fs = "not reached" if f is None else f"{f['k']:.3g}"
        g = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
        print(f"{r['reference']:6s} {r['target']:7.0e} {ps:>20s} {fs:>10s} {g(r['work_patch_over_full']):>9s} "
              f"{g(r['wall_patch_over_full']):>9s} {g(r['work_patch_over_explicit']):>11s} "
              f"{g(r['wall_patch_over_explicit']):>11s} {g(p and p['domain_fraction']):>7s} "
              f"{g(p and p['time_fraction']):>8s}")
    sc = res["eps_scaling"]
    print(f"at decreasing eps ({sc['patch_setting']} vs CN k = {sc['full_setting']['k']:g}):")
    for r in sc["rows"]:
        print(f"  eps = 1/{round(1 / r['eps'])}: errors (fine) patch {r['patch']['error_fine']:.2e}, full "
              f"{r['full_implicit']['error_fine']:.2e}; work patch/full {r['work_patch_over_full']:.3g}, "
              f"wall {r['wall_patch_over_full']:.3g}")
    print(f"  crossover (ratio 1; interpolated, or extrapolated proportional to eps): work eps = "
          f"{sc['crossover_eps_work']:.2g}, wall eps = {sc['crossover_eps_wall']:.2g}")


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
    print("  patch dynamics vs the full-domain micro simulation", flush=True)
    patches = patch_problem(args.quick)
    result = {"benchmark": "couplers", "quick": args.quick,
              "command": ".venv/bin/python benchmarks/couplers.py" + (" --quick" if args.quick else ""),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(), "loadavg": os.getloadavg()},
              "work_unit": "evaluations of the fast right-hand side g (RK4 step: 4, Euler step: 1)",
              "problems": res, "table": rows, "patches": patches, "seconds": time.perf_counter() - t0}
    (args.out / f"{tag}.json").write_text(json.dumps(result, indent=1))
    plot(args.out / f"{tag}.png", res)
    plot_patches(args.out / f"{tag}_patches.png", patches)
    print(f"\n{'problem':12s} {'method':16s} {'target':>8s} {'work':>10s} {'work/resolved':>14s} "
          f"{'wall/resolved':>14s}")
    for r in rows:
        if r["method"] == "resolved":
            continue
        w = "-" if r["work"] is None else f"{r['work']:.3g}"
        wr = "not reached" if r["work"] is None else f"{r['work_over_resolved']:.2e}"
        tr = "" if r["work"] is None else f"{r['wall_over_resolved']:.2e}"
        print(f"{r['problem']:12s} {r['method']:16s} {r['target']:8.0e} {w:>10s} {wr:>14s} {tr:>14s}")
    print_patches(patches)
    print(f"wrote {args.out / (tag + '.json')}, .png and _patches.png ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
