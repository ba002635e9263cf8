"""Every key of the runtime, elliptic and ou_averaging schemas against hostile values: each
is a ConfigError (exit 2) with a one-line message naming the key, found by the checks that
``hmmpar run`` and ``hmmpar validate`` share (:func:`hmmpar.core.preflight.prepare`),
before any micro work. Also: the TOML writer's round trip of arbitrary strings, the node
memory figure, and the elliptic memory estimate against a measured peak."""
from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from mpi4py import MPI

from hmmpar.core.config import _toml_string, load_config
from hmmpar.core.errors import ConfigError
from hmmpar.core.preflight import check_memory, node_memory, prepare

ELLIPTIC = """
[run]
app = "elliptic"
[macro]
cells = [4, 4]
[micro]
eps = 0.01
n = 8
batches = 2
"""

OU = """
[run]
app = "ou_averaging"
[model]
points = 8
[micro]
samples = 200
"""

INT64_MAX = "9223372036854775807"

#: (config, --set overrides, text the one-line message must hold)
CASES = {
    # runtime keys (with the elliptic app)
    "seed_2_64": (ELLIPTIC, ["run.seed=18446744073709551616"], f"config key run.seed must be <= {INT64_MAX}"),
    "seed_negative": (ELLIPTIC, ["run.seed=-1"], "config key run.seed must be >= 0"),
    "date": (ELLIPTIC, ["run.output_dir=2024-05-01"], "config key run.output_dir must be a string, got a date "
                                                       "2024-05-01; quote it"),
    "time": (ELLIPTIC, ["run.output_dir=07:32:00"], "run.output_dir must be a string, got a time 07:32:00"),
    "datetime": (ELLIPTIC, ["run.output_dir=1979-05-27T07:32:00Z"], "got a date-time 1979-05-27T07:32:00+00:00"),
    "table": (ELLIPTIC, ["run.output_dir={a = 1}"], "run.output_dir must be a string, got a table {a = 1}"),
    "array_of_tables": (ELLIPTIC, ["run.output_dir=[{a = 1}]"], "got an array of tables [{a = 1}]"),
    "empty_output_dir": (ELLIPTIC, ['run.output_dir=""'], "config key run.output_dir must not be empty"),
    "nul_in_path": (ELLIPTIC, ['run.output_dir="a\\u0000b"'], "run.output_dir must not contain a NUL"),
    "progress_inf": (ELLIPTIC, ["run.progress_interval=inf"], "config key run.progress_interval must be finite"),
    "min_chunk_huge": (ELLIPTIC, ["farm.min_chunk=99999999999999999999"], f"farm.min_chunk must be <= {INT64_MAX}"),
    "min_chunk_zero": (ELLIPTIC, ["farm.min_chunk=0"], "config key farm.min_chunk must be >= 1"),
    "time_limit_huge": (ELLIPTIC, ["farm.task_time_limit=1e300"], "farm.task_time_limit must be <= 100000000.0"),
    "keep_zero": (ELLIPTIC, ["checkpoint.keep=0"], "config key checkpoint.keep must be >= 1"),
    "every_steps_negative": (ELLIPTIC, ["checkpoint.every_steps=-1"], "checkpoint.every_steps must be >= 0"),
    "every_seconds_nan": (ELLIPTIC, ["checkpoint.every_seconds=nan"], "checkpoint.every_seconds must be finite"),
    "plots_string": (ELLIPTIC, ['output.plots="yes"'], "config key output.plots must be a boolean"),
    # elliptic
    "cells_empty": (ELLIPTIC, ["macro.cells=[]"], "config key macro.cells must have 2 or 3 entries, not 0"),
    "cells_four": (ELLIPTIC, ["macro.cells=[2, 2, 2, 2]"], "macro.cells must have 2 or 3 entries, not 4"),
    "cells_zero": (ELLIPTIC, ["macro.cells=[0, 0]"], "config key macro.cells: every entry must be >= 1"),
    "cells_nested": (ELLIPTIC, ["macro.cells=[[4], [4]]"], "config key macro.cells[0] must be an integer, got a list"),
    "cells_int64": (ELLIPTIC, ["macro.cells=[4, 99999999999999999999]"], f"macro.cells[1] must be <= {INT64_MAX}"),
    "cells_petsc_int": (ELLIPTIC, ["macro.cells=[50000, 50000]"], "macro.cells = [50000, 50000] gives 2500100001 "
                                                                   "nodes, more than this PETSc build's"),
    "lower_length": (ELLIPTIC, ["macro.lower=[0.0, 0.0, 0.0]"], "config key macro.lower must have 2 entries"),
    "upper_huge": (ELLIPTIC, ["macro.upper=[1e200, 1.0]"], "macro.lower / macro.upper: the box's side lengths"),
    "upper_below": (ELLIPTIC, ["macro.upper=[-1.0, 1.0]"], "config key macro.upper must exceed macro.lower"),
    "rtol_one": (ELLIPTIC, ["macro.rtol=1.0"], "config key macro.rtol must be <= 0.1"),
    "rtol_zero": (ELLIPTIC, ["macro.rtol=0"], "config key macro.rtol must be > 0.0"),
    "no_dirichlet": (ELLIPTIC, ["problem.dirichlet=[]"], "config key problem.dirichlet must not be empty"),
    "side_type": (ELLIPTIC, ['problem.dirichlet=["x-", 3]'], "config key problem.dirichlet[1] must be a string"),
    "side_name": (ELLIPTIC, ['problem.neumann=["w+"]'], "config key problem.neumann: unknown side 'w+'"),
    "empty_source": (ELLIPTIC, ['problem.source=""'], "config key problem.source must not be empty"),
    "axis_dim": (ELLIPTIC, ["coefficient.axis=2"], "coefficient.axis = 2 but the problem is 2D"),
    "checkerboard_phases": (ELLIPTIC, ['coefficient.kind="checkerboard"', "coefficient.values=[1.0]"],
                            "config key coefficient.values must have 2 entries (the two phases)"),
    "laminate_layers": (ELLIPTIC, ['coefficient.kind="laminate"', "coefficient.values=[]"],
                        "config key coefficient.values must have 2 entries (the two layers) for a laminate, got 0"),
    "coefficient_seed": (ELLIPTIC, ["coefficient.seed=-1"], "config key coefficient.seed must be >= 0"),
    "fraction": (ELLIPTIC, ["coefficient.fraction=1.5"], "config key coefficient.fraction must be <= 1.0"),
    "n_one": (ELLIPTIC, ["micro.n=1"], "config key micro.n must be >= 2"),
    "n_petsc_int": (ELLIPTIC, ["micro.n=100000"], "config key micro.n = 100000 (bc periodic, oversampling 0.5) "
                                                  "gives a cell matrix of"),
    "eps_tiny": (ELLIPTIC, ["micro.eps=1e-14"], "config key micro.eps = 1e-14 is too small for this domain"),
    "delta_overflow": (ELLIPTIC, ["micro.eps=1e300", "micro.delta_over_eps=1e300"], "delta overflows"),
    "oversampling_huge": (ELLIPTIC, ["micro.oversampling=1e300"], "config key micro.oversampling must be <= 10.0"),
    "batches_zero": (ELLIPTIC, ["micro.batches=0"], "config key micro.batches must be >= 1"),
    "batches_beyond_cells": (ELLIPTIC, ["micro.batches=65"], "config key micro.batches = 65 exceeds the 64 cell "
                                                             "problems"),
    # ou_averaging
    "points_petsc_int": (OU, ["model.points=3000000000"], "config key model.points = 3000000000 is more than"),
    "points_zero": (OU, ["model.points=0"], "config key model.points must be >= 1"),
    "steps_overflow": (OU, ["macro.dt=1e-300", "macro.t_end=1e300"], "config keys macro.t_end / macro.dt = inf "
                                                                     "steps"),
    "x0_inf": (OU, ["model.x0_max=inf"], "config key model.x0_max must be finite"),
    "x0_order": (OU, ["model.x0_max=0.1"], "config key model.x0_max must be >= model.x0_min"),
    "dt_over_eps_zero": (OU, ["micro.dt_over_eps=0"], "config key micro.dt_over_eps must be > 0.0"),
    "burn_in_int64": (OU, ["micro.burn_in=9223372036854775808"], f"micro.burn_in must be <= {INT64_MAX}"),
}


def _prepare(tmp_path, text: str, overrides: list[str]):
    cfg_file = tmp_path / "c.toml"
    text = text.replace("[run]\n", f'[run]\noutput_dir = "{tmp_path / "out"}"\n', 1)
    cfg_file.write_text(text + '\n[output]\nplots = false\n')
    cfg = load_config(cfg_file, overrides)
    return prepare(cfg, MPI.COMM_WORLD)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_is_one_line_config_error(tmp_path, case):
    text, overrides, message = CASES[case]
    with pytest.raises(ConfigError) as info:
        _prepare(tmp_path, text, overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and info.value.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]  # nothing written


@pytest.mark.parametrize("text, overrides, keys", [
    (ELLIPTIC, ["macro.cells=[40000, 40000]"], "macro.cells"),   # ~2 TB of macro arrays
    (ELLIPTIC, ["micro.n=10000"], "micro.n"),                     # ~0.5 TB for one cell problem
    (OU, ["micro.samples=1000000000000000"], "micro.samples"),    # 8 PB of normal variates
])
def test_memory_beyond_the_node_is_refused(tmp_path, text, overrides, keys):
    with pytest.raises(ConfigError) as info:
        _prepare(tmp_path, text, overrides)
    msg = str(info.value)
    assert msg.startswith("this run needs about ") and "of memory on node" in msg and keys in msg
    assert "(MemAvailable in /proc/meminfo)" in msg or "(cgroup limit" in msg or "(MemTotal" in msg


def test_good_configs_pass(tmp_path):
    assert _prepare(tmp_path, ELLIPTIC, []).memory_estimate() > 0
    assert _prepare(tmp_path, OU, []).memory_estimate() > 0


def test_lone_surrogate_from_the_command_line(tmp_path):
    """A non-UTF-8 argv byte arrives as a lone surrogate (surrogateescape): refused."""
    (tmp_path / "c.toml").write_text(OU)
    with pytest.raises(ConfigError, match=r"config key run.output_dir: lone surrogate U\+DCFF"):
        load_config(tmp_path / "c.toml", ["run.output_dir=out\udcff"])


def test_toml_string_round_trip_of_arbitrary_text():
    """Random strings of every control character, quotes, backslashes, DEL, BMP and astral
    code points (no surrogates: TOML cannot hold them) come back exactly."""
    rng = random.Random(11)
    pools = [range(0x00, 0x20), [0x22, 0x5C, 0x7F, 0x27], range(0x20, 0x7F), range(0x80, 0xD800),
             range(0xE000, 0x110000)]
    for _ in range(2000):
        text = "".join(chr(rng.choice(rng.choice(pools))) for _ in range(rng.randrange(0, 40)))
        assert tomllib.loads(f"v = {_toml_string(text)}")["v"] == text
    for code in (0xD800, 0xDBFF, 0xDC00, 0xDFFF):
        with pytest.raises(ValueError, match=f"lone surrogate U\\+{code:04X}"):
            _toml_string(f"a{chr(code)}b")


def test_config_with_control_characters_restores_from_its_text(tmp_path):
    """The checkpoint stores cfg.dumps(): a restart re-reads it as TOML."""
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(OU)
    name = "out\t\x01\x1b[31m\x7f\"'\\\u2028\U0001F600\r\n"
    cfg = load_config(cfg_file, [f"run.output_dir={_toml_string(name)}"])
    assert cfg["run.output_dir"] == str(Path.cwd() / name)  # an output path given with --set: cwd-relative
    again = load_config(cfg.dumps(), is_text=True)
    assert again.data == cfg.data


def test_memory_error_while_setting_up_is_exit_2(tmp_path, monkeypatch):
    """An app whose estimate misses (or that has none) and runs out of memory while it is
    constructed: a ConfigError naming the keys, not an internal error."""
    from hmmpar.apps.ou_averaging import OUAveraging

    def boom(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(OUAveraging, "__init__", boom)
    with pytest.raises(ConfigError, match=r"setting up the ou_averaging run on rank 0 ran out of memory; make "
                                          r"the problem smaller \(model.points, micro.burn_in, micro.samples\)"):
        _prepare(tmp_path, OU, [])


def test_node_memory_sources(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000 kB\nMemFree:  100 kB\nMemAvailable:    8000 kB\n")
    assert node_memory(meminfo, tmp_path / "none") == (8000 * 1024, f"MemAvailable in {meminfo}")
    meminfo.write_text("MemTotal:       16000 kB\nMemFree:  100 kB\n")  # a kernel before 3.14
    assert node_memory(meminfo, tmp_path / "none") == (16000 * 1024, f"MemTotal in {meminfo}")
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "memory.max").write_text("4096000\n")
    (cg / "memory.current").write_text("1024000\n")
    assert node_memory(meminfo, cg)[0] == 3072000
    (cg / "memory.max").write_text("max\n")
    assert node_memory(meminfo, cg)[0] == 16000 * 1024
    assert node_memory(tmp_path / "absent", tmp_path / "none") is None


def test_check_memory_sums_the_ranks_of_a_node():
    class App:
        memory_keys = ("model.points",)

        def memory_estimate(self):
            return 1000

    comm = MPI.COMM_WORLD
    check_memory(comm, App(), memory=lambda: (1000 * comm.size, "test"))  # exactly fits
    with pytest.raises(ConfigError, match=rf"needs about .* \({comm.size} rank\(s\), estimate driven by "
                                          r"model.points\) but the node has .* \(test\)"):
        check_memory(comm, App(), memory=lambda: (1000 * comm.size - 1, "test"))


MEASURE = textwrap.dedent("""
    import sys, json, time

    def hwm():
        # this process's peak RSS (VmHWM of its own address space): getrusage's ru_maxrss
        # would start at the parent's RSS when it was forked (Linux keeps it across exec)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    t0 = time.perf_counter()
    import numpy as np
    from mpi4py import MPI
    from hmmpar.core.config import load_config
    from hmmpar.core.preflight import prepare
    from hmmpar.micro.cells.coefficients import Sine
    from hmmpar.micro.cells.problem import CellSpec, effective_tensor
    effective_tensor(Sine(), np.zeros(2), CellSpec(2, 2), eps=1.0, delta=1.0)  # numba compiled
    effective_tensor(Sine(), np.zeros(3), CellSpec(3, 2), eps=1.0, delta=1.0)
    before = hwm()
    cfg = load_config(sys.argv[1], sys.argv[2:])
    app = prepare(cfg, MPI.COMM_WORLD)
    app.initialize()
    rows = app.tasks(0)[:1]
    from hmmpar.core.farm import TaskContext
    app.solve(rows, TaskContext(0, 0, 0, 0))
    peak = hwm()
    print(json.dumps({"seconds": time.perf_counter() - t0, "estimate": app.memory_estimate(),
                      "measured": peak - before}))
""")


def test_elliptic_estimate_matches_measured_peak(tmp_path):
    """One cell problem (2D periodic n = 160: 25599 unknowns) in a fresh process: the
    estimate is within a factor 2.5 of the peak RSS it adds (measured 48.6 MB estimated
    against 55.3 MB; 3D Dirichlet n = 20: 81.1 against 58.0 MB, not run here to save
    the 8 s of a second process)."""
    import json
    cfg = tmp_path / "c.toml"
    cfg.write_text(ELLIPTIC + "\n[output]\nplots = false\n")
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    # a first process at micro.n = 8 fills numba's on-disk cache: compiling in the measured
    # process would raise its peak RSS above what the cell problem adds
    for n in (8, 160):
        out = subprocess.run([sys.executable, str(script), str(cfg), f"micro.n={n}"], capture_output=True,
                             text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["measured"] > 20e6  # the cell problem dominates the process's growth
    assert 1 / 2.5 <= r["estimate"] / r["measured"] <= 2.5, r


def test_planned_checkpoints_counts_without_a_loop():
    """The closed form equals counting the steps one by one (it must not loop over 1e12 steps)."""
    from hmmpar.core.runner import planned_checkpoints

    class Cfg(dict):
        pass

    for every in (0, 1, 3, 7):
        for first in range(0, 12):
            for n_steps in range(first, 25):
                for at_end in (True, False):
                    cfg = Cfg({"checkpoint.every_seconds": 0.0, "checkpoint.every_steps": every,
                               "checkpoint.at_end": at_end})
                    loop = sum(1 for d in range(first + 1, n_steps) if every and d % every == 0)
                    loop += 1 if at_end and first < n_steps else 0
                    assert planned_checkpoints(cfg, first, n_steps) == max(1, loop)
    cfg = Cfg({"checkpoint.every_seconds": 0.0, "checkpoint.every_steps": 1, "checkpoint.at_end": True})
    assert planned_checkpoints(cfg, 0, 10**12) == 10**12


def test_longest_time_limit_arms_the_timers():
    """farm.task_time_limit at its maximum on a call of a million rows: the deadline is
    clamped below what setitimer and faulthandler accept, and arming them works."""
    import faulthandler
    import signal

    import numpy as np

    from hmmpar.core.farm import MAX_CALL_SECONDS, Farm

    farm = Farm(MPI.COMM_SELF, task_time_limit=1e8)
    assert farm._call_deadline(10**6) == MAX_CALL_SECONDS
    rows = np.zeros(3, dtype=[("task_id", "i8")])
    with farm._time_limit(rows, step=0) as call:
        assert call(lambda r, c: r.size, rows, None) == 3
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    farm._release_process_guard()
    faulthandler.cancel_dump_traceback_later()
