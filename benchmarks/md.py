#!/usr/bin/env python
r"""MD atom-steps per second per core: hmmpar's numba engine against LAMMPS (Debian build).

This is a measurement, not a test: it always exits 0 and only *reports* whether the aims
were met. Run it alone on a quiet machine::

    python benchmarks/md.py                # ~3 min on 2 cores
    python benchmarks/md.py --quick        # smoke run: 4000 atoms, 50 steps, 1 repeat

Systems (both 32,000 atoms: an fcc lattice of 20^3 cells, LJ cut at r_c = 2.5, not
shifted, skin 0.3, dt = 0.005, NVE, velocities from LAMMPS's ``velocity all create T
87287 loop geom``):

``liquid``
    LAMMPS's ``bench/in.lj``: rho* = 0.8442, T* = 1.44, 200 steps (the input's 100 steps
    doubled). LAMMPS runs it as written (``neigh_modify delay 0 every 20 check no``:
    rebuild every 20 steps, no displacement check) and, as a second reference, with
    ``every 1 check yes`` (rebuild when an atom moved more than half the skin, the rule of
    hmmpar's engine).
``gas``
    rho* = 0.3, T* = 1.5, 200 steps; LAMMPS with ``every 1 check yes`` (``every 20 check
    no`` would miss pairs here: atoms move ~0.2 > skin/2 in 20 steps).

Both engines run the *same* configuration: LAMMPS creates the lattice and the velocities,
hmmpar's engine starts from LAMMPS's positions and velocities (gathered by atom id).
Both are one process with one thread (``OMP_NUM_THREADS = NUMBA_NUM_THREADS = 1``; the
Debian LAMMPS has no OPENMP package). LAMMPS runs in this process through its Python
module on ``MPI.COMM_SELF``; the time of ``run N`` includes its setup (neighbour list and
first forces), and hmmpar's time likewise includes building its system
(``MDSystem(...)``: list and first forces). Times are CPU seconds of this process
(``time.process_time``), so other jobs on the machine distort them less than wall time;
the engines run interleaved (LAMMPS, hmmpar, LAMMPS, ...) ``--repeats`` times and the best
counts. Numba's first call (compilation or loading its cache) is made on a small system
before and reported separately (``numba_first_call_s``).

Phases of hmmpar's engine (numba, so cProfile sees nothing inside): the force kernel
(``compute_forces`` without energy, as on steps without a sample), the list build
(``neighbours.build``) and the integration (two half kicks, a drift and
``max_relative_displacement2`` per step, a copy of md_loop's arithmetic in this file) are
timed alone on the final configuration of the best run, best of 5; ``unaccounted`` is the
run time minus steps x force, builds x build and steps x integration (negative when other
jobs slowed the isolated timings more than the run). LAMMPS's own breakdown (Pair, Neigh,
Modify = integration, Comm = ghost atoms, Output, Other) and its number of list builds
are read from its log of the best run.

``lammps_instance_reuse``: setting up a 500-atom box (:class:`hmmpar.micro.md.lammps_engine.
LammpsSystem`) and running its first step with the process's instance reused (``clear``)
against a fresh instance per box (closed and created again), ms per box (wall, best of 5
interleaved sets of 20), and for scale a typical box (10,000 steps sampled every 10).

Output: ``benchmarks/results/md.json`` and ``md.png`` (``md_quick.*`` with ``--quick``).
Aims (from issue 12): hmmpar >= 0.5 x LAMMPS on the liquid (in.lj as written), >= 1 x on
the gas.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_usage import own_cpu, system_busy  # noqa: E402

HERE = Path(__file__).resolve().parent
AIMS = {"liquid": 0.5, "gas": 1.0}
SEED = 87287
DT = 0.005
RC = 2.5
SKIN = 0.3
AS_IN_LJ = "delay 0 every 20 check no"
CHECKED = "delay 0 every 1 check yes"
SYSTEMS = {
    "liquid": {"density": 0.8442, "temperature": 1.44,
               "lammps": {"in.lj": AS_IN_LJ, "check_yes": CHECKED}, "reference": "in.lj"},
    "gas": {"density": 0.3, "temperature": 1.5, "lammps": {"check_yes": CHECKED}, "reference": "check_yes"},
}
BREAKDOWN = ("Pair", "Neigh", "Comm", "Output", "Modify", "Other")


# ---------------------------------------------------------------------- LAMMPS
def lammps_setup(lmp, density: float, temperature: float, cells: int, neighbor: str) -> int:
    """LAMMPS's in.lj with the given lattice density, temperature, size and neigh_modify."""
    lmp.command("clear")
    lmp.commands_list([
        "units lj", "atom_style atomic", "atom_modify map array",
        f"lattice fcc {density}", f"region box block 0 {cells} 0 {cells} 0 {cells}",
        "create_box 1 box", "create_atoms 1 box", "mass 1 1.0",
        f"velocity all create {temperature} {SEED} loop geom",
        f"pair_style lj/cut {RC}", f"pair_coeff 1 1 1.0 1.0 {RC}",
        f"neighbor {SKIN} bin", f"neigh_modify {neighbor}",
        "fix 1 all nve", f"timestep {DT}", "thermo 0"])
    return int(lmp.get_natoms())


def lammps_configuration(lmp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = int(lmp.get_natoms())
    x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
    v = np.ctypeslib.as_array(lmp.gather_atoms("v", 1, 3)).reshape(n, 3).copy()
    lo, hi = lmp.extract_box()[:2]
    return x, v, np.array(hi) - np.array(lo)


def lammps_timed_run(lmp, steps: int, log: Path) -> tuple[float, dict]:
    """CPU seconds of ``run steps`` (setup included) and LAMMPS's timing breakdown (s)."""
    lmp.command(f"log {log}")
    c = time.process_time()
    lmp.command(f"run {steps}")
    cpu = time.process_time() - c
    lmp.command("log none")
    parts = {}
    for line in log.read_text().splitlines():
        m = re.match(r"^(\w+)\s*\|\s*([0-9.eE+-]+)\s*\|", line)
        if m and m.group(1) in BREAKDOWN:
            parts[m.group(1)] = float(m.group(2))
    text = log.read_text()
    m = re.search(r"Loop time of ([0-9.eE+-]+)", text)
    if m:
        parts["loop"] = float(m.group(1))
    m = re.search(r"Neighbor list builds = (\d+)", text)
    if m:
        parts["builds"] = int(m.group(1))
    return cpu, parts


# ---------------------------------------------------------------------- hmmpar
def hmmpar_potential():
    from hmmpar.micro.md.potentials import make_potential
    return make_potential("lj", cutoff=RC, shift=False)


def hmmpar_timed_run(x, v, box, steps: int):
    """CPU seconds of building the system + ``run(steps)``, the run alone, and the system."""
    from hmmpar.micro.md.engine import MDSystem
    c = time.process_time()
    system = MDSystem(x, v, box, hmmpar_potential(), skin=SKIN)
    c1 = time.process_time()
    system.run(steps, DT)
    c2 = time.process_time()
    return c2 - c, c2 - c1, system


@numba.njit(cache=True)
def _verlet_steps(x, v, f, x_ref, dt, n_steps, displacement2):
    """The integration part of hmmpar's md_loop alone: two half kicks, a drift and the
    displacement check per step, with fixed forces."""
    n = x.shape[0]
    worst = 0.0
    for _ in range(n_steps):
        for i in range(n):
            for d in range(3):
                v[i, d] += 0.5 * dt * f[i, d]
                x[i, d] += dt * v[i, d]
        worst = max(worst, displacement2(x, x_ref))
        for i in range(n):
            for d in range(3):
                v[i, d] += 0.5 * dt * f[i, d]
    return worst


def hmmpar_phases(system, steps: int, run_cpu: float, repeats: int = 5) -> dict:
    """Force kernel, list build and integration + displacement check, each timed alone on
    the final configuration of a run (best of ``repeats``), and what the run spent besides."""
    from hmmpar.micro.md import engine, neighbours
    s = system
    sh = neighbours.shift_table(s.box)
    f = np.empty_like(s.x)
    force = build = integrate = np.inf
    _verlet_steps(s.x.copy(), s.v.copy(), s.f, s.x.copy(), 1e-6, 1, neighbours.max_relative_displacement2)
    for _ in range(repeats):
        x, vv = s.x.copy(), s.v.copy()
        c = time.process_time()
        _verlet_steps(x, vv, s.f, s.x, 1e-6, 10, neighbours.max_relative_displacement2)
        integrate = min(integrate, (time.process_time() - c) / 10)
    for _ in range(repeats):
        c = time.process_time()
        for _ in range(10):  # the run computes no energy on steps without a sample
            engine.compute_forces(s.x, f, s.potential.kind, s.potential.params, s.start, s.nbr, s.img, sh, False)
        force = min(force, (time.process_time() - c) / 10)
    for _ in range(repeats):
        x, vv, ids, x_ref = s.x.copy(), s.v.copy(), s.ids.copy(), s.x_ref.copy()
        start, nbr, img = s.start.copy(), s.nbr.copy(), s.img.copy()
        c = time.process_time()
        neighbours.build(x, vv, ids, s.box, s.reach, x_ref, start, nbr, img)
        build = min(build, time.process_time() - c)
    builds = s.n_builds - 1  # the first one belongs to the construction
    parts = {"force": steps * force, "neighbour": builds * build, "integrate_and_check": steps * integrate}
    parts["unaccounted"] = run_cpu - sum(parts.values())
    return {"run_s": run_cpu, "phases_s": parts, "force_s_per_step": force, "build_s": build,
            "integrate_s_per_step": integrate, "builds_in_run": builds, "pairs": int(s.stats[engine.S_PAIRS]),
            "ns_per_atom_step": {k: val / (steps * s.n_atoms) * 1e9 for k, val in parts.items()}}


def lammps_ns_per_atom_step(parts: dict, atoms: int, steps: int) -> dict:
    return {k: val / (atoms * steps) * 1e9 for k, val in parts.items() if k in BREAKDOWN or k == "loop"}


def numba_first_call() -> float:
    """Seconds of the first small run in this process (numba compilation or cache load)."""
    from hmmpar.micro.md.engine import MDSystem
    from hmmpar.micro.md.lattice import fcc_positions
    x, box = fcc_positions(4, 0.8442)
    v = np.random.default_rng(0).normal(size=x.shape)
    c = time.perf_counter()
    MDSystem(x, v, box, hmmpar_potential(), skin=SKIN).run(10, DT)
    return time.perf_counter() - c


# ---------------------------------------------------------------------- instance reuse
def instance_reuse(tasks: int = 20) -> dict:
    """ms per small box task with this process's LAMMPS instance reused against a fresh one."""
    from hmmpar.micro.md import lammps_engine as le
    from hmmpar.micro.md.lattice import fcc_positions
    from hmmpar.micro.md.potentials import make_potential
    x, box = fcc_positions(5, 0.5)
    v = np.random.default_rng(1).normal(size=x.shape) * np.sqrt(2.0)
    pot = make_potential("lj", cutoff=RC, shift=True)

    def task() -> None:
        le.LammpsSystem(x, v, box, pot, skin=SKIN).run(1, DT)

    task()
    out = {}
    for _ in range(5):  # interleaved, best of 5
        for mode in ("reused", "fresh"):
            t = time.perf_counter()
            for _ in range(tasks):
                if mode == "fresh":
                    le.close_instance()
                task()
            ms = (time.perf_counter() - t) / tasks * 1e3
            out[mode + "_ms"] = min(out.get(mode + "_ms", np.inf), ms)
    out["saving_ms_per_box"] = out["fresh_ms"] - out["reused_ms"]
    t = time.perf_counter()
    le.LammpsSystem(x, v, box, pot, skin=SKIN).run(10000, DT, sample_every=10)
    out["typical_box_ms"] = (time.perf_counter() - t) * 1e3
    out["atoms"] = len(x)
    return out


# ---------------------------------------------------------------------- main
def measure(cells: int, steps: int, repeats: int, tmp: Path) -> dict:
    from hmmpar.micro.md.lammps_engine import lammps_instance
    lmp = lammps_instance()
    results = {}
    for name, spec in SYSTEMS.items():
        runs = {k: [] for k in spec["lammps"]}
        runs["hmmpar"] = []
        breakdown, phases = {}, None
        n = 0
        for r in range(repeats):
            for variant, neighbor in spec["lammps"].items():
                n = lammps_setup(lmp, spec["density"], spec["temperature"], cells, neighbor)
                cpu, parts = lammps_timed_run(lmp, steps, tmp / f"log.{name}.{variant}")
                if not runs[variant] or cpu < min(runs[variant]):
                    breakdown[variant] = parts
                runs[variant].append(cpu)
            n = lammps_setup(lmp, spec["density"], spec["temperature"], cells, CHECKED)
            x, v, box = lammps_configuration(lmp)
            total, run_cpu, system = hmmpar_timed_run(x, v, box, steps)
            if not runs["hmmpar"] or total < min(runs["hmmpar"]):
                phases = hmmpar_phases(system, steps, run_cpu)
                phases["construct_s"] = total - run_cpu
            runs["hmmpar"].append(total)
            print(f"  {name} repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()),
                  flush=True)
        rate = {k: n * steps / min(v) for k, v in runs.items()}
        res = {"atoms": n, "steps": steps, "density": spec["density"], "temperature": spec["temperature"],
               "lammps_neigh_modify": spec["lammps"], "cpu_s": runs,
               "atom_steps_per_cpu_s": rate,
               "ratio_hmmpar_over_lammps": {k: rate["hmmpar"] / rate[k] for k in spec["lammps"]},
               "reference": spec["reference"], "aim": AIMS[name],
               "lammps_breakdown_s": breakdown, "hmmpar_phases": phases,
               "lammps_ns_per_atom_step": {k: lammps_ns_per_atom_step(p, n, steps) for k, p in breakdown.items()}}
        res["met"] = res["ratio_hmmpar_over_lammps"][spec["reference"]] >= AIMS[name]
        results[name] = res
    return results


def plot(path: Path, report: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = report["systems"]
    fig, (ax_r, ax_q) = plt.subplots(1, 2, figsize=(12, 4.8))
    labels, values, colors = [], [], []
    for i, (name, res) in enumerate(systems.items()):
        for k, val in res["atom_steps_per_cpu_s"].items():
            labels.append(f"{name}\n{'hmmpar' if k == 'hmmpar' else 'LAMMPS ' + k}")
            values.append(val / 1e6)
            colors.append("C0" if k == "hmmpar" else ("C1" if k == res["reference"] else "C7"))
    ax_r.bar(range(len(values)), values, color=colors)
    ax_r.set_xticks(range(len(values)), labels, fontsize=8)
    ax_r.set(ylabel="million atom-steps per CPU second (1 core)",
             title=f"{next(iter(systems.values()))['atoms']} atoms, LJ r_c = {RC}, skin {SKIN}")
    for i, val in enumerate(values):
        ax_r.text(i, val, f"{val:.2f}", ha="center", va="bottom", fontsize=8)
    names = list(systems)
    ratios = [systems[n]["ratio_hmmpar_over_lammps"][systems[n]["reference"]] for n in names]
    ax_q.bar(names, ratios, color=["C2" if systems[n]["met"] else "C3" for n in names])
    for i, n in enumerate(names):
        ax_q.hlines(AIMS[n], i - 0.4, i + 0.4, colors="k", linestyles="--")
        ax_q.text(i, ratios[i], f"{ratios[i]:.2f}\n(aim {AIMS[n]:g})", ha="center", va="bottom", fontsize=9)
    ax_q.set(ylabel="hmmpar / LAMMPS (atom-steps per second)",
             title="ratio against LAMMPS (liquid: in.lj as written; gas: check yes)",
             ylim=(0, max(ratios + [1.0]) * 1.35))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4000 atoms, 50 steps, 1 repeat")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats, best counts (default 3)")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    args = ap.parse_args()
    cells, steps = (10, 50) if args.quick else (20, 200)
    repeats = args.repeats or (1 if args.quick else 3)
    from hmmpar.micro.md.lammps_engine import check_available, lammps_instance
    check_available()
    lmp = lammps_instance()
    report = {"benchmark": "MD engines: hmmpar (numba) vs LAMMPS", "quick": args.quick,
              "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
              "numba": numba.__version__, "numpy": np.__version__, "lammps_version": lmp.version(),
              "threads": 1, "repeats": repeats, "dt": DT, "rc": RC, "skin": SKIN,
              "timing": "CPU time of this process (time.process_time), best of the repeats",
              "aims": AIMS}
    busy0, own0, wall0 = system_busy(), own_cpu(), time.perf_counter()
    report["numba_first_call_s"] = numba_first_call()
    print(f"numba first call (compile or cache load): {report['numba_first_call_s']:.2f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        report["systems"] = measure(cells, steps, repeats, Path(tmp))
    report["lammps_instance_reuse"] = instance_reuse(5 if args.quick else 20)
    wall = time.perf_counter() - wall0
    report["other_cores"] = max(0.0, (system_busy() - busy0 - (own_cpu() - own0)) / wall)
    print(f"\n{'system':8s} {'engine':18s} {'M atom-steps/cpu-s':>19s} {'hmmpar/this':>12s}")
    for name, res in report["systems"].items():
        for k, rate in res["atom_steps_per_cpu_s"].items():
            ratio = res["ratio_hmmpar_over_lammps"].get(k)
            print(f"{name:8s} {('hmmpar' if k == 'hmmpar' else 'LAMMPS ' + k):18s} {rate / 1e6:19.3f} "
                  f"{'' if ratio is None else f'{ratio:12.2f}'}")
        print(f"{name:8s} aim hmmpar/LAMMPS({res['reference']}) >= {res['aim']}: "
              f"{'met' if res['met'] else 'NOT met'}")
    ru = report["lammps_instance_reuse"]
    print(f"LAMMPS box set-up + first step ({ru['atoms']} atoms): reused instance {ru['reused_ms']:.2f} ms, "
          f"fresh {ru['fresh_ms']:.2f} ms (a 10,000-step box takes {ru['typical_box_ms']:.0f} ms)")
    print(f"other processes used {report['other_cores']:.2f} cores on average (of {os.cpu_count()})")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "md" + ("_quick" if args.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    plot(out / f"{stem}.png", report)
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.png')}")


if __name__ == "__main__":
    main()
