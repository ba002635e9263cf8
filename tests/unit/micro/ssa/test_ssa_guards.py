"""Guards of the SSA kernels and the ssa app (issue 11): overflowing propensities, a clock that
cannot advance and int64 counts stop every kernel with a status instead of looping; fast
reactions without an equilibrium are refused (model partition) or left slow (automatic);
out-of-range numbers in model files are one-line errors; the app's memory estimate."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from mpi4py import MPI

from hmmpar.apps.nested_ssa import NestedSSA
from hmmpar.core.config import load_config
from hmmpar.core.errors import ConfigError
from hmmpar.core.timing import Timers
from hmmpar.micro.ssa.direct import SSAError, simulate
from hmmpar.micro.ssa.model import Reaction, ReactionNetwork
from hmmpar.micro.ssa.nested import NestedParameters, UnboundedFastError, WindowRunner, run_ensemble

# Every kernel on inputs that used to loop for ever, in a child process with a timeout. The
# rates are multiplied by 1e300 after validation (a model file cannot give them, MAX_RATE);
# the arrays stay read-only so that the compiled kernels are reused.
KERNELS = r"""
import json
import numpy as np
from hmmpar.micro.rng.xoshiro import seed_state
from hmmpar.micro.ssa import nested as ns
from hmmpar.micro.ssa.direct import ssa_kernel
from hmmpar.micro.ssa.model import Reaction, ReactionNetwork


def ro(a):
    a.setflags(write=False)
    return a


def direct(net, rates, t0, t_end, sorting, x=None):
    x = net.initial_counts.copy() if x is None else x
    status, n_ev, t = ssa_kernel(
        x, t0, t_end, np.zeros(0), net.reactants, rates, net.nu_ptr, net.nu_species, net.nu_change, net.dep_ptr,
        net.dep_idx, np.arange(net.n_reactions), np.zeros(0, np.int64), sorting, 2**62,
        seed_state(np.random.SeedSequence(1)), np.zeros((0, net.n_species), np.int64),
        np.zeros(net.n_reactions, np.int64), np.zeros(0))
    return [int(status), int(n_ev)]


def window(net, rates, levels, t_f):
    counters = np.zeros(6, np.int64)
    x = net.initial_counts.copy()
    if levels == 2:
        status, t = ns.nested_window_kernel(x, 0.0, 1.0, np.uint64(3), net.fast, False, 1e-3, 2, t_f, 0.5, 0.0,
                                            net.reactants, rates, net.nu, net.nu_ptr, net.nu_species, net.nu_change,
                                            net.dep_ptr, net.dep_idx, False, 2**62, counters, True)
    else:
        status, t = ns.nested3_window_kernel(x, 0.0, 1.0, np.uint64(3), net.level, False, 1e-3, 2, t_f, 0.5, 0.0,
                                             2, 0.0, 0.5, 0.0, net.reactants, rates, net.nu, net.nu_ptr,
                                             net.nu_species, net.nu_change, net.dep_ptr, net.dep_idx, False, 2**62,
                                             counters)
    return int(status)


out = {}
big = ReactionNetwork({"A": 4 * 10**18, "B": 4 * 10**18},
                      [Reaction.parse("A + B -> 2 A", 1.0), Reaction.parse("A -> B", 1.0)])
huge = ro(big.rates * 1e300)
for sorting in (False, True):
    out[f"overflow_sorting{sorting}"] = direct(big, huge, 0.0, 1.0, sorting)
const = ReactionNetwork({"A": 0}, [Reaction.parse("0 -> A", 1e15)])
out["stalled_at_entry"] = direct(const, const.rates, 1.0, 2.0, False)
jump = ReactionNetwork({"S": 0, "A": 0}, [Reaction.parse("0 -> S", 1.0), Reaction.parse("S -> S + A", 1e15)])
out["stalled_mid_run"] = direct(jump, jump.rates, 100.0, 200.0, False)
wrap = ReactionNetwork({"A": 0}, [Reaction.parse("0 -> 2305843009213693952 A", 1.0)])
for sorting in (False, True):
    x = wrap.initial_counts.copy()
    out[f"count_overflow_sorting{sorting}"] = direct(wrap, wrap.rates, 0.0, 100.0, sorting, x) + [int(x[0])]
# bimolecular propensities of counts 4e18 at rate 1e300: inf (fixed T_f: the inner kernel sees it;
# derived T_f: eps is NaN, the step falls back to an exact one, whose outer draw sees it)
N = 4 * 10**18
two = ReactionNetwork({"A": N, "B": N, "C": 0, "D": 0},
                      [Reaction.parse("A + B -> C", 1.0, fast=True), Reaction.parse("C -> A + B", 1.0, fast=True),
                       Reaction.parse("C -> D", 1.0)])
for t_f in (0.0, 0.5):
    out[f"nested2_tf{t_f}"] = window(two, ro(two.rates * 1e300), 2, t_f)
three = ReactionNetwork({"A": N, "B": N, "C": 0, "E": 0, "D": 0},
                        [Reaction.parse("A + B -> C", 1.0, level=2), Reaction.parse("C -> A + B", 1.0, level=2),
                         Reaction.parse("C -> E", 1.0, fast=True), Reaction.parse("E -> C", 1.0, fast=True),
                         Reaction.parse("E -> D", 1.0)])
for t_f in (0.0, 0.5):
    out[f"nested3_tf{t_f}"] = window(three, ro(three.rates * 1e300), 3, t_f)
rates = np.array([np.inf, 1.0])
out["select_jump_inf"] = int(ns.select_jump(0.0, 1.0, rates, np.arange(2), np.zeros(4, np.uint64) + 1)[0])
out["select_jump_nan"] = int(ns.select_jump(0.0, 1.0, rates * np.nan, np.arange(2), np.zeros(4, np.uint64) + 1)[0])
out["select_jump_stall"] = int(ns.select_jump(1e6, 2e6, np.array([1e8]), np.arange(1), np.zeros(4, np.uint64) + 1)[0])
z = np.array([2**63 - 2, 0])
out["apply_jump"] = int(ns.apply_jump(0, z, np.zeros(2, np.int64), np.array([0, 1]), np.array([0]), np.array([5])))
print(json.dumps(out))
"""


def test_every_kernel_stops_on_overflow_and_stalled_clocks():
    """Each of these looped for ever (or ran ~1e12 events) before; now each returns its status."""
    from hmmpar.micro.ssa.direct import COUNT_OVERFLOW, NONFINITE, STALLED
    p = subprocess.run([sys.executable, "-c", KERNELS], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    for sorting in ("False", "True"):
        assert out[f"overflow_sorting{sorting}"] == [NONFINITE, 0]  # a0 = inf at t = 0: no event
        status, n_ev, a = out[f"count_overflow_sorting{sorting}"]
        assert status == COUNT_OVERFLOW and n_ev == 3 and a == 3 * 2**61  # the 4th birth would pass 2^63 - 1
    assert out["stalled_at_entry"] == [STALLED, 0]  # a0 t = 1e15 > 2^42 at t = 1
    status, n_ev = out["stalled_mid_run"]
    assert status == STALLED and 1 <= n_ev <= 1 + 128  # caught at the first re-summation after the jump
    for key in ("nested2_tf0.0", "nested2_tf0.5", "nested3_tf0.0", "nested3_tf0.5"):
        assert out[key] == NONFINITE, key
    assert out["select_jump_inf"] == NONFINITE and out["select_jump_nan"] == NONFINITE
    assert out["select_jump_stall"] == STALLED and out["apply_jump"] == COUNT_OVERFLOW


def test_simulate_raises_the_kernel_status():
    wrap = ReactionNetwork({"A": 0}, [Reaction.parse("0 -> 2305843009213693952 A", 1.0)])
    with pytest.raises(SSAError, match=r"a species count passed 2\^63 - 1 \(int64 overflow\) at t = "):
        simulate(wrap, 100.0)


# ------------------------------------------------------------------ fast reactions without equilibrium
def birth(k_fast: float, k_slow: float) -> ReactionNetwork:
    """The issue's model: 0 -> A fast and 0 -> A slow."""
    return ReactionNetwork({"A": 0}, [Reaction.parse("0 -> A", k_fast, fast=True), Reaction.parse("0 -> A", k_slow)])


def test_model_partition_refuses_a_fast_reaction_without_equilibrium():
    with pytest.raises(UnboundedFastError, match=r"reaction 0 \(0 -> A\) is fast but raises 'A', which no fast "
                                                 r"reaction consumes"):
        WindowRunner(birth(1e12, 1.4), "nested", NestedParameters(tolerance=0.5))
    three = ReactionNetwork({"A": 0, "B": 0}, [Reaction.parse("0 -> A", 10.0, level=2),
                                               Reaction.parse("A -> B", 1.0, fast=True), Reaction.parse("B -> 0", 1.0)])
    with pytest.raises(UnboundedFastError, match=r"reaction 0 \(0 -> A\) is ultrafast \(level 2\) but raises 'A', "
                                                 r"which no ultrafast reaction consumes"):
        WindowRunner(three, "nested", NestedParameters(tolerance=0.5, levels=3))


def test_auto_partition_leaves_an_unbounded_reaction_slow_and_gets_the_birth_mean():
    """0 -> A (k_f) and 0 -> A (k_s), automatic partition: k_f passes the ratio test but has no
    equilibrium, so it stays slow and every step is exact: E[A(t)] = (k_f + k_s) t, Var = E
    (Poisson). 64 trajectories: the mean is within 4 standard errors."""
    k_f, k_s, t, n = 1e4, 1.4, 1.0, 64
    params = NestedParameters(tolerance=0.5, partition="auto")
    states, counters = run_ensemble(birth(k_f, k_s), "nested", params, [0.0, t], n, seed=5)
    a = states[:, -1, 0]
    mean = (k_f + k_s) * t
    assert abs(a.mean() - mean) < 4 * np.sqrt(mean / n)
    assert counters[:, 0].sum() == 0 and counters[:, 1].sum() == a.sum()  # no inner event; every birth an outer one


def test_three_levels_whose_middle_reactions_consume_nothing_average_over_both():
    """U: A -> 0 (ultrafast), F: 0 -> A (fast), S: A -> B. ε₁ (F against S) is 0, since F
    consumes nothing; the step used to be an exact step of S alone (B stayed 0). It is now the
    two-level step of F ∪ U: A relaxes (time ε = 1/k_U) to Poisson(k_F / (k_U + k_S)), so B(t)
    is Poisson with mean k_S k_F t / (k_U + k_S) = 1.998 at t = 20. λ = 0.05 and a burn-in of
    5 ε make the relaxation bias below 0.1 % (E, Liu & Vanden-Eijnden's bound); 100
    trajectories, within 4 standard errors."""
    net = ReactionNetwork({"A": 0, "B": 0}, [Reaction.parse("A -> 0", 1e3, level=2),
                                             Reaction.parse("0 -> A", 1e2, fast=True), Reaction.parse("A -> B", 1.0)])
    params = NestedParameters(tolerance=0.05, burn_in=5e-3, levels=3)
    states, counters = run_ensemble(net, "nested", params, [0.0, 20.0], 100, seed=2)
    b = states[:, -1, 1]
    mean = 1.0 * 1e2 * 20.0 / (1e3 + 1.0)
    assert abs(b.mean() - mean) < 4 * np.sqrt(mean / 100)
    assert counters[:, 0].sum() > 0  # the fast and ultrafast reactions fired in inner runs


# ------------------------------------------------------------------ model files and the app
def make_app(tmp_path, model: str, *overrides: str) -> NestedSSA:
    (tmp_path / "m.toml").write_text(model)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\napp = "ssa"\n[model]\nfile = "m.toml"\n[ensemble]\ntrajectories = 4\nt_end = 1.0\n')
    return NestedSSA(load_config(cfg, overrides), MPI.COMM_SELF, Timers())


SPECIES = '[species]\nA = 5\nB = 0\n'
BAD_MODELS = {
    "coefficient": (SPECIES + '[[reactions]]\nequation = "A -> 99999999999999999999 B"\nrate = 1.0\nfast = true\n',
                    r"reaction 0 \(A -> 99999999999999999999 B\): coefficient 99999999999999999999 of 'B' is above 2\^62"),
    "huge_rate": (SPECIES + '[[reactions]]\nequation = "A -> B"\nrate = 1e300\nfast = true\n',
                  r"reaction 0 \(A -> B\): the rate constant 1e\+300 is above 1e\+250"),
    "integer_rate": (SPECIES + '[[reactions]]\nequation = "A -> B"\nrate = 1' + '0' * 400 + '\nfast = true\n',
                     r"reaction 0 \(A -> B\): the rate constant must be a finite number >= 0, got 10{400}"),
    "nan_rate": (SPECIES + '[[reactions]]\nequation = "A -> B"\nrate = nan\nfast = true\n',
                 r"reaction 0 \(A -> B\): the rate constant must be a finite number >= 0, got nan"),
    "negative_rate": (SPECIES + '[[reactions]]\nequation = "A -> B"\nrate = -1.0\nfast = true\n',
                      r"reaction 0 \(A -> B\): the rate constant must be a finite number >= 0, got -1.0"),
    "count": ('[species]\nA = 9223372036854775807\nB = 0\n[[reactions]]\nequation = "A -> B"\nrate = 1.0\n',
              r"species 'A': initial count 9223372036854775807 is above 2\^62"),
    "unbounded_fast": ('[species]\nA = 0\n[[reactions]]\nequation = "0 -> A"\nrate = 1e12\nfast = true\n'
                       '[[reactions]]\nequation = "0 -> A"\nrate = 1.4\n',
                       r"config key nested.partition = \"model\": .*m.toml: reaction 0 \(0 -> A\) is fast but "
                       r"raises 'A', which no fast reaction consumes"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_out_of_range_model_numbers_are_one_line_config_errors(tmp_path, case):
    model, message = BAD_MODELS[case]
    with pytest.raises(ConfigError) as info:
        make_app(tmp_path, model)
    text = str(info.value)
    assert "\n" not in text and "m.toml" in text
    assert __import__("re").search(message, text), text


def test_a_clock_that_cannot_reach_t_end_is_refused_before_micro_work(tmp_path):
    model = '[species]\nA = 0\nE = 1\n[[reactions]]\nequation = "E -> E + A"\nrate = 1e13\n' \
            '[[reactions]]\nequation = "A -> 0"\nrate = 1.0\n'
    with pytest.raises(ConfigError, match=r"config key ensemble.t_end: .*m.toml: no reaction consumes the reactants "
                                          r"of reaction 0 \(E -> E \+ A\), so their total propensity stays >= 1e\+13 "
                                          r"and a span of 1 needs more than 1e\+13 SSA events"):
        make_app(tmp_path, model, 'ensemble.method="direct"')
    make_app(tmp_path, model.replace("1e13", "1e12"), 'ensemble.method="direct"')  # 1e12 events: allowed


def test_constructor_allocates_nothing_per_trajectory_and_estimates_it(tmp_path):
    model = '[species]\nA = 10\nB = 0\n[[reactions]]\nequation = "A -> B"\nrate = 1.0\n'
    app = make_app(tmp_path, model, 'ensemble.method="direct"', "ensemble.trajectories=1000000000000")
    assert app.state is None and app.samples is None
    assert app.memory_estimate() > 10**12 * 21 * 2 * 8  # 21 samples x 2 species of int64 each
    from hmmpar.core.preflight import check_memory
    with pytest.raises(ConfigError, match=r"needs about [0-9.]+ PB .* estimate driven by ensemble.trajectories, "
                                          r"ensemble.samples, the species of model.file, nested.replicas\) but the "
                                          r"node has 1.0 TB \(test\)"):
        check_memory(MPI.COMM_SELF, app, memory=lambda: (10**12, "test"))


def test_memory_estimate_is_within_a_factor_2_of_the_allocations(tmp_path):
    """tracemalloc (NumPy reports its buffers to it) over a whole 1-rank run of 4000
    trajectories of 30 species, minus the same run with 20: the per-trajectory part, against
    the estimate's."""
    from hmmpar.core.runner import run
    model = '[species]\nA = 3\n' + "".join(f"S{i} = 0\n" for i in range(29)) + \
        '[[reactions]]\nequation = "A -> S0"\nrate = 1.0\n'
    (tmp_path / "m.toml").write_text(model)

    def measured(n: int) -> tuple[int, int]:
        cfg = tmp_path / f"c{n}.toml"
        out = tmp_path / str(n)
        shutil.rmtree(out, ignore_errors=True)
        cfg.write_text(f'[run]\napp = "ssa"\noutput_dir = "{out}"\nprogress_interval = 0.0\n'
                       '[model]\nfile = "m.toml"\n[ensemble]\nmethod = "direct"\n'
                       f'trajectories = {n}\nt_end = 0.01\nsamples = 2\n[output]\nplots = false\n')
        config = load_config(cfg)
        estimate = NestedSSA(config, MPI.COMM_SELF, Timers()).memory_estimate()
        tracemalloc.start()
        run(config, MPI.COMM_SELF)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return estimate, peak

    measured(20)  # loads the compiled kernels: one-time allocations
    e_small, p_small = measured(20)
    e_big, p_big = measured(4000)
    ratio = (e_big - e_small) / (p_big - p_small)
    assert 0.5 < ratio < 2.0, (e_big - e_small, p_big - p_small)


@pytest.mark.parametrize("setting, message", [
    ("nested.tolerance=1e-12", "config key nested.tolerance (N = ceil(1/lambda)) gives 1000000000000 replicas"),
    ("nested.replicas=4294967296", "config key nested.replicas gives 4294967296 replicas per step, above 2147483648"),
])
def test_replica_counts_beyond_any_array_are_refused(tmp_path, setting, message):
    model = '[species]\nA = 10\nB = 0\n[[reactions]]\nequation = "A -> B"\nrate = 1.0\nfast = true\n' \
            '[[reactions]]\nequation = "B -> A"\nrate = 1.0\nfast = true\n[[reactions]]\nequation = "B -> 0"\nrate = 0.1\n'
    with pytest.raises(ConfigError) as info:
        make_app(tmp_path, model, setting)
    assert message in str(info.value)


def test_allocation_failure_is_a_config_error_naming_the_key(tmp_path):
    """Without the runner's memory check (or on a node that lied about its memory),
    initialize() fails with the key named, on this rank only (abort path, exit 2)."""
    model = '[species]\nA = 10\nB = 0\n[[reactions]]\nequation = "A -> B"\nrate = 1.0\n'
    app = make_app(tmp_path, model, 'ensemble.method="direct"', "ensemble.trajectories=1000000000000000")
    with pytest.raises(ConfigError, match=r"config key ensemble.trajectories = 1000000000000000: this rank cannot "
                                          r"allocate its 1000000000000000 trajectories x 21 samples x 2 species") as info:
        app.initialize()
    assert info.value.collective is False and info.value.exit_code == 2


def test_more_samples_than_macro_steps_can_serve_is_refused(tmp_path):
    """ensemble.samples sizes the sample-time array the constructor makes (8 GB at 10^9):
    bounded in the schema, so the refusal comes before any allocation."""
    model = '[species]\nA = 10\nB = 0\n[[reactions]]\nequation = "A -> B"\nrate = 1.0\n'
    with pytest.raises(ConfigError, match=r"^config key ensemble.samples must be <= 10000000, got 1000000000$"):
        make_app(tmp_path, model, "ensemble.samples=1000000000", 'ensemble.method="direct"')
    assert make_app(tmp_path, model, "ensemble.samples=10000000", 'ensemble.method="direct"').times.size == 10**7 + 1
