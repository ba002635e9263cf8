#!/usr/bin/env python
"""Noise of the MD box fluxes: the standard error against atoms x averaging time.

This is a measurement, not a test (it always exits 0; the asserting version with a small
design is ``tests/validation/micro/md/test_flux_noise.py``). Run it without ``mpirun``::

    python benchmarks/md_noise.py            # ~4 min on a quiet core, ~9 min on a loaded one
    python benchmarks/md_noise.py --quick    # ~15 s smoke run

The state: LJ truncated at r_c = 2.5 and shifted, rho = 0.5, internal energy e = 0.38 per
atom (T = 2.0, supercritical), box moving with u = (1, 0, 0), as
:func:`hmmpar.micro.md.constrained_box` makes it (dt = 0.005, equilibration 5 with energy
rescaling, a sample every 10 steps). For each point of the design (atom counts ``--atoms``
at time ``--time``, and times ``--times`` at ``--atoms[0]`` atoms) and each of ``--seeds``
independent seeds it records, for the pressure p, the momentum flux Pi_xx and the energy
flux J_x, the blocking standard error and its own error (Flyvbjerg-Petersen:
se / sqrt(2 (n_blocks - 1)); :func:`hmmpar.micro.md.noise.flux_noise`). Then:

1. fits ln se = a + b ln(N t) to every (point, seed) with the Flyvbjerg-Petersen errors,
   and ln se = a + b_N ln N + b_t ln t (expected b = b_N = b_t = -1/2), with chi^2;
2. checks the error model with the seeds: at each point, the spread of the seeds' se
   against the Flyvbjerg-Petersen error of se, and the spread of the seeds' *means*
   against the reported se (both ratios should be 1 within sqrt(1/(2 (seeds - 1))));
3. reports the prefactor C of se = C / sqrt(N t) (the exponent fixed at -1/2; weighted mean
   of ln(se sqrt(N t))): reaching a standard error s costs N t = (C/s)^2 atom-time units.

4. estimates C without blocking, from the autocorrelation function of a few long runs
   (sampled every 2 steps): C = sqrt(2 tau N Var A), tau the integrated autocorrelation
   time up to a window of 2 time units (with the error of tau from Sokal's formula): a
   check of the blocking estimate and of how C depends on the box size.

``--reanalyse`` redoes the fits and the figure from the runs stored in the JSON;
``--acf-only`` runs part 4 alone and keeps the stored runs of parts 1-3.

Results: ``benchmarks/results/md_noise[_quick].json`` and ``.png``; the full run also
writes the figure to ``docs/img/md_noise.png`` (docs/md.md).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from hmmpar.micro.md import constrained_box, make_potential  # noqa: E402
from hmmpar.micro.md.estimators import COLUMN  # noqa: E402
from hmmpar.micro.md.noise import NOISE_QUANTITIES, fit_power_law, flux_noise  # noqa: E402

RHO, E_INT, U = 0.5, 0.38, np.array([1.0, 0.0, 0.0])
LABELS = {"pressure": "p", "pi_xx": r"$\Pi_{xx}$", "j_x": "$J_x$"}


def macro_state() -> tuple[float, np.ndarray, float]:
    """(rho, m, E) of the state: E = rho e + rho |u|^2 / 2."""
    return RHO, RHO * U, RHO * E_INT + 0.5 * RHO * float(U @ U)


def design(atoms: list[int], t_fixed: float, times: list[float]) -> list[tuple[int, float]]:
    """(N, t) points: every N at t_fixed, every t at atoms[0]; no duplicates, in run order."""
    points = [(n, t_fixed) for n in atoms] + [(atoms[0], t) for t in times]
    return list(dict.fromkeys(points))


def measure(points, seeds: int, t_equilibrate: float) -> list[dict]:
    """One constrained-box run per (point, seed); the noise of each quantity."""
    p = make_potential("lj", 2.5, shift=True)
    rho, m, energy = macro_state()
    rows = []
    for k, (n, t) in enumerate(points):
        for s in range(seeds):
            rng = np.random.default_rng([2024, k, s])
            t0 = time.perf_counter()
            r = constrained_box(rho, m, energy, p, n, rng, t_equilibrate=t_equilibrate, t_sample=t)
            noise = flux_noise(r)
            rows.append({"atoms": n, "time": t, "seed": s, "seconds": time.perf_counter() - t0,
                         "temperature": r.temperature, "two_phase": r.two_phase,
                         **{q: vars(v) for q, v in noise.items()}})
        last = rows[-1]
        print(f"  N = {n:5d}  t = {t:5g}: " + "  ".join(
            f"{q} se {np.mean([row[q]['stderr'] for row in rows[-seeds:]]):.3e}" for q in NOISE_QUANTITIES)
            + f"  ({last['seconds']:.1f} s per seed)", flush=True)
    return rows


#: windows (LJ time) at which the integrated autocorrelation time is reported
WINDOWS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
#: window whose tau gives the prefactor estimate (past the plateau, before the ACF noise)
C_WINDOW = 2.0


def autocorrelation(cases, seeds: int, t_equilibrate: float) -> list[dict]:
    """Prefactors without blocking: long runs sampled every 2 steps; per quantity the
    variance per atom N Var A, the integrated autocorrelation time
    tau(W) = int_0^W rho_A(s) ds (trapezoid at 0) and C = sqrt(2 tau(C_WINDOW) N Var A),
    the same C as se = C / sqrt(N t) when the run is long."""
    p = make_potential("lj", 2.5, shift=True)
    rho, m, energy = macro_state()
    out = []
    for k, (n, t) in enumerate(cases):
        acfs: dict[str, list] = {q: [] for q in NOISE_QUANTITIES}
        for s in range(seeds):
            r = constrained_box(rho, m, energy, p, n, np.random.default_rng([2025, k, s]),
                                t_equilibrate=t_equilibrate, t_sample=t, sample_every=2)
            for q in NOISE_QUANTITIES:
                x = r.samples[:, COLUMN[q]] - r.samples[:, COLUMN[q]].mean()
                f = np.fft.rfft(x, 2 * x.size)
                acfs[q].append(np.fft.irfft(f * np.conj(f))[:x.size] / np.arange(x.size, 0, -1))
        dt_sample = 2 * 0.005
        entry = {"atoms": n, "time": t, "seeds": seeds}
        for q in NOISE_QUANTITIES:
            a = np.mean(acfs[q], axis=0)
            tau = {w: float(dt_sample * (0.5 * a[0] + a[1:int(round(w / dt_sample))].sum()) / a[0]) for w in WINDOWS}
            entry[q] = {"n_var": float(a[0] * n), "tau": [tau[w] for w in WINDOWS],
                        "prefactor": math.sqrt(2.0 * tau[C_WINDOW] * a[0] * n)}
        out.append(entry)
        print(f"  autocorrelation N = {n:5d}  t = {t:5g}: " + "  ".join(
            f"{q} C {entry[q]['prefactor']:.3f}" for q in NOISE_QUANTITIES), flush=True)
    return out


def add_acf_errors(acf: list[dict]) -> None:
    """Standard error of each autocorrelation prefactor: tau(W) from n samples has relative
    variance 2 (2M + 1) / n with M = W / dt samples (Sokal 1997), i.e. about 4 W / (t seeds);
    C goes with sqrt(tau), so it has half that relative error."""
    for e in acf:
        for q in NOISE_QUANTITIES:
            e[q]["prefactor_err"] = 0.5 * e[q]["prefactor"] * math.sqrt(4.0 * C_WINDOW / (e["time"] * e["seeds"]))


def fit_dict(fit) -> dict:
    return {"exponents": fit.exponents.tolist(), "exponents_err": fit.exponents_err.tolist(),
            "log_prefactor": fit.log_prefactor, "log_prefactor_err": fit.log_prefactor_err,
            "chi2": fit.chi2, "dof": fit.dof, "p_value": fit.p_value}


def analyse(rows: list[dict], points, seeds: int) -> dict:
    out = {}
    n = np.array([r["atoms"] for r in rows], dtype=float)
    t = np.array([r["time"] for r in rows])
    for q in NOISE_QUANTITIES:
        se = np.array([r[q]["stderr"] for r in rows])
        se_err = np.array([r[q]["stderr_err"] for r in rows])
        joint = fit_power_law(n * t, se, se_err)
        # separate exponents of N and t (only when both vary)
        split = fit_power_law(np.column_stack([n, t]), se, se_err) if len(set(n)) > 1 and len(set(t)) > 1 else None
        per_point = []
        for (pn, pt) in points:
            sel = (n == pn) & (t == pt)
            means = np.array([r[q]["mean"] for r, s in zip(rows, sel) if s])
            entry = {"atoms": pn, "time": pt, "stderr_mean": float(se[sel].mean()),
                     "stderr_fp_err": float(np.sqrt(np.sum(se_err[sel] ** 2)) / sel.sum())}
            if seeds > 1:
                entry["stderr_seed_err"] = float(se[sel].std(ddof=1) / math.sqrt(sel.sum()))
                # error model checks: spread of se vs its F-P error; spread of means vs se
                entry["se_spread_over_fp"] = float(se[sel].std(ddof=1) / np.sqrt(np.mean(se_err[sel] ** 2)))
                entry["mean_spread_over_se"] = float(means.std(ddof=1) / np.sqrt(np.mean(se[sel] ** 2)))
            per_point.append(entry)
        # prefactor with the exponent fixed at -1/2: weighted mean of ln(se sqrt(N t))
        w = (se / se_err) ** 2
        log_c = float(np.sum(w * np.log(se * np.sqrt(n * t))) / np.sum(w))
        res = {"joint": fit_dict(joint), "split": fit_dict(split) if split else None, "points": per_point,
               "prefactor": math.exp(joint.log_prefactor), "prefactor_half": math.exp(log_c),
               "prefactor_half_err": math.exp(log_c) / math.sqrt(float(np.sum(w)))}
        if seeds > 1:
            # pooled checks over all points (each ratio^2 is a variance ratio with seeds - 1 dof)
            r1 = np.array([e["se_spread_over_fp"] for e in per_point])
            r2 = np.array([e["mean_spread_over_se"] for e in per_point])
            res["se_spread_over_fp"] = float(np.sqrt(np.mean(r1 ** 2)))
            res["mean_spread_over_se"] = float(np.sqrt(np.mean(r2 ** 2)))
            res["pooled_ratio_err"] = float(1.0 / math.sqrt(2 * len(per_point) * (seeds - 1)))
        out[q] = res
    return out


def plot(rows, analysis, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    colours = dict(zip(NOISE_QUANTITIES, ("C0", "C1", "C2")))
    t_fixed = max(rows, key=lambda r: r["atoms"])["time"]
    n_fixed = min(r["atoms"] for r in rows)
    for q in NOISE_QUANTITIES:
        a = analysis[q]
        pts = a["points"]
        nt = np.array([e["atoms"] * e["time"] for e in pts])
        se = np.array([e["stderr_mean"] for e in pts])
        err = np.array([e.get("stderr_seed_err", e["stderr_fp_err"]) for e in pts])
        by_n = np.array([e["time"] == t_fixed for e in pts])
        by_t = np.array([e["atoms"] == n_fixed for e in pts])
        b, db = a["joint"]["exponents"][0], a["joint"]["exponents_err"][0]
        c = colours[q]
        axes[0].errorbar(nt[by_n], se[by_n], err[by_n], fmt="o", color=c, mfc="none",
                         label=f"{LABELS[q]}: b = {b:.3f} $\\pm$ {db:.3f}")
        axes[0].errorbar(nt[by_t], se[by_t], err[by_t], fmt="s", color=c, ms=4)
        grid = np.geomspace(nt.min() / 1.3, nt.max() * 1.3, 50)
        axes[0].plot(grid, np.exp(a["joint"]["log_prefactor"]) * grid ** b, "-", color=c, lw=1)
        axes[1].errorbar(nt[by_n], se[by_n] * np.sqrt(nt[by_n]), err[by_n] * np.sqrt(nt[by_n]), fmt="o",
                         color=c, mfc="none", label=f"{LABELS[q]}, N varied (t = {t_fixed:g})")
        axes[1].errorbar(nt[by_t], se[by_t] * np.sqrt(nt[by_t]), err[by_t] * np.sqrt(nt[by_t]), fmt="s",
                         color=c, ms=4, label=f"{LABELS[q]}, t varied (N = {n_fixed})")
    axes[0].set(xscale="log", yscale="log", xlabel="atoms x averaging time  N t",
                ylabel="standard error (blocking)", title="se = C (N t)^b (fit over all runs)")
    axes[0].legend(fontsize=8)
    axes[1].set(xscale="log", xlabel="N t", ylabel=r"se $\sqrt{N t}$  (flat if b = -1/2)", title=title)
    axes[1].set_ylim(bottom=0)
    axes[1].legend(fontsize=7, ncol=3, loc="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, nargs="+", default=None, help="atom counts (default 256 500 864 1372 2048)")
    ap.add_argument("--time", type=float, default=None, help="sampling time of the atom series (default 40)")
    ap.add_argument("--times", type=float, nargs="+", default=None,
                    help="sampling times at the first atom count (default 5 10 20 40 80 160)")
    ap.add_argument("--seeds", type=int, default=None, help="independent runs per point (default 8)")
    ap.add_argument("--equilibrate", type=float, default=5.0, help="equilibration time per run")
    ap.add_argument("--quick", action="store_true", help="smoke run: 108..500 atoms, t 5..20, 3 seeds")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--reanalyse", action="store_true",
                    help="no runs: redo the fits and the figure from the runs in the existing JSON")
    ap.add_argument("--acf-only", action="store_true",
                    help="run only the autocorrelation part; keep the scaling runs of the existing JSON")
    args = ap.parse_args(argv)
    if args.quick:
        atoms, t_fixed, times, seeds = [108, 256, 500], 10.0, [5.0, 10.0, 20.0], 3
        acf_cases, acf_seeds = [(108, 40.0)], 1
    else:
        atoms, t_fixed, times, seeds = [256, 500, 864, 1372, 2048], 40.0, [5.0, 10.0, 20.0, 40.0, 80.0, 160.0], 8
        acf_cases, acf_seeds = [(256, 400.0), (1372, 100.0)], 2
    atoms = args.atoms or atoms
    t_fixed = args.time or t_fixed
    times = args.times or times
    seeds = args.seeds or seeds
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "md_noise" + ("_quick" if args.quick else "")
    acf = None
    if args.reanalyse or args.acf_only:
        old = json.loads((out_dir / f"{stem}.json").read_text())
        rows, wall, machine = old["runs"], old["wall_seconds"], old["machine"]
        atoms, t_fixed, times, seeds = (old["design"][k] for k in ("atoms", "time", "times", "seeds"))
        args.equilibrate = old["state"]["equilibrate"]
        points = design(atoms, t_fixed, times)
        acf = old.get("autocorrelation")
    else:
        points = design(atoms, t_fixed, times)
        print(f"md noise benchmark{' (quick)' if args.quick else ''}: {len(points)} points x {seeds} seeds",
              flush=True)
        t0 = time.perf_counter()
        rows = measure(points, seeds, args.equilibrate)
        wall, machine = time.perf_counter() - t0, platform.node()
    if not args.reanalyse:
        acf = autocorrelation(acf_cases, acf_seeds, args.equilibrate)
    analysis = analyse(rows, points, seeds)
    if acf:
        add_acf_errors(acf)
    report = {"benchmark": "hmmpar.micro.md noise scaling", "quick": args.quick,
              "state": {"potential": "lj r_c 2.5 shifted", "rho": RHO, "internal_energy": E_INT,
                        "velocity": U.tolist(), "dt": 0.005, "sample_every": 10, "equilibrate": args.equilibrate},
              "design": {"atoms": atoms, "time": t_fixed, "times": times, "seeds": seeds},
              "wall_seconds": wall, "machine": machine,
              "temperature_mean": float(np.mean([r["temperature"] for r in rows])),
              "two_phase_runs": int(sum(r["two_phase"] for r in rows)),
              "results": analysis, "autocorrelation": acf, "windows": list(WINDOWS), "c_window": C_WINDOW,
              "runs": rows}
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    title = f"LJ rho = {RHO}, T = {report['temperature_mean']:.2f}, u = (1, 0, 0); {seeds} seeds per point"
    plot(rows, analysis, out_dir / f"{stem}.png", title)
    if not args.quick:
        shutil.copyfile(out_dir / f"{stem}.png", REPO / "docs" / "img" / "md_noise.png")
    print(f"\n{'quantity':<9} {'b (N t)':>16} {'b_N':>16} {'b_t':>16} {'chi2/dof':>10} {'C (b=-1/2)':>16}"
          + ("  seed checks: sd(se)/FP, sd(mean)/se" if seeds > 1 else ""))
    for q in NOISE_QUANTITIES:
        a = analysis[q]
        j, s = a["joint"], a["split"]
        split = (f"{s['exponents'][0]:>8.4f} +- {s['exponents_err'][0]:.4f} "
                 f"{s['exponents'][1]:>8.4f} +- {s['exponents_err'][1]:.4f} ") if s else f"{'-':>16} {'-':>16} "
        line = (f"{q:<9} {j['exponents'][0]:>8.4f} +- {j['exponents_err'][0]:.4f} " + split
                + f"{j['chi2']:>5.1f}/{j['dof']:<4d} {a['prefactor_half']:>7.4f} +- {a['prefactor_half_err']:.4f}")
        if seeds > 1:
            line += (f"  {a['se_spread_over_fp']:.3f}, {a['mean_spread_over_se']:.3f}"
                     f" (+- {a['pooled_ratio_err']:.3f})")
        print(line)
    if acf:
        print(f"\nprefactor without blocking: C = sqrt(2 tau N Var) (tau to W = {C_WINDOW:g}); tau at W = "
              + ", ".join(f"{w:g}" for w in WINDOWS))
        for e in acf:
            for q in NOISE_QUANTITIES:
                v = e[q]
                print(f"  N = {e['atoms']:5d} t = {e['time']:5g} {q:<9} N Var {v['n_var']:8.3f}  "
                      f"C {v['prefactor']:.3f} +- {v['prefactor_err']:.3f}  tau "
                      + " ".join(f"{x:.3f}" for x in v["tau"]))
    print(f"wall {wall:.0f} s (scaling runs); results in {out_dir / stem}.json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
