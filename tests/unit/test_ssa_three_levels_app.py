"""The ``ssa`` application with three time scales (``nested.levels = 3``): config keys and errors."""
from __future__ import annotations

from pathlib import Path

import pytest
from mpi4py import MPI

from hmmpar.apps.nested_ssa import NestedSSA
from hmmpar.core.config import load_config
from hmmpar.core.errors import ConfigError
from hmmpar.core.timing import Timers

MODELS = Path(__file__).resolve().parents[2] / "drivers" / "configs" / "models"
TS = f'[model]\nfile = "{MODELS / "three_scales.toml"}"\n'
FS = f'[model]\nfile = "{MODELS / "four_species.toml"}"\n'


def app(tmp_path, text: str) -> NestedSSA:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\napp = "ssa"\n' + text)
    return NestedSSA(load_config(cfg), MPI.COMM_SELF, Timers())


CASES = {
    "bad_levels": (TS + "[nested]\nlevels = 4\n", "config key nested.levels must be one of 2, 3"),
    "ultrafast_key_with_two_levels": (TS + "[nested]\nultrafast_replicas = 3\n",
                                      "config key nested.ultrafast_replicas applies only with nested.levels = 3"),
    "ultrafast_time_with_two_levels": (TS + "[nested]\nultrafast_averaging_time = 1e-6\n",
                                       "config key nested.ultrafast_averaging_time applies only with nested.levels = 3"),
    "negative_ultrafast_replicas": (TS + "[nested]\nlevels = 3\nultrafast_replicas = -2\n",
                                    "config key nested.ultrafast_replicas must be >= 0, got -2"),
    "negative_ultrafast_tolerance": (TS + "[nested]\nlevels = 3\nultrafast_tolerance = -0.1\n",
                                     "config key nested.ultrafast_tolerance must be >= 0.0"),
    "no_ultrafast_tolerance": (TS + "[nested]\nlevels = 3\ntolerance = 0.0\nreplicas = 2\naveraging_time = 1e-3\n",
                               "config key nested.ultrafast_tolerance must be > 0 when nested.ultrafast_replicas "
                               "is 0 and nested.tolerance is 0"),
    "two_level_model": (FS + "[nested]\nlevels = 3\n", "config key nested.levels = 3 but "),
    "unknown_key": (TS + "[nested]\nlevels = 3\nultrafast_replica = 3\n",
                    "unknown config key nested.ultrafast_replica"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_three_level_config_names_the_key(tmp_path, case):
    text, message = CASES[case]
    with pytest.raises(ConfigError) as info:
        app(tmp_path, text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    if case == "two_level_model":
        assert "marks no reaction ultrafast (add level = 2" in str(info.value)


def test_three_level_parameters_as_applied(tmp_path):
    a = app(tmp_path, TS + "[nested]\nlevels = 3\ntolerance = 0.25\nultrafast_tolerance = 0.5\n")
    p = a.parameters()
    assert p["levels"] == 3 and p["replicas"] == 4 and p["ultrafast_replicas"] == 2
    assert p["levels_initial"] == [2, 2, 1, 1, 0, 0] and p["step_initial"] == "three-level"
    assert p["eps1_initial"] == pytest.approx(1e-3) and p["averaging_time_initial"] == pytest.approx(4e-3)
    assert p["eps2_initial"] == pytest.approx(1e-6) and p["ultrafast_averaging_time_initial"] == pytest.approx(2e-6)
    # lambda2 defaults to the tolerance; fixed times are reported as such
    b = app(tmp_path, TS + "[nested]\nlevels = 3\ntolerance = 0.5\nultrafast_averaging_time = 3e-6\n"
            "averaging_time = 1e-3\n")
    q = b.parameters()
    assert q["ultrafast_replicas"] == 2 and q["ultrafast_averaging_time"] == 3e-6 and q["averaging_time"] == 1e-3
    # the direct SSA ignores the levels; a two-level run of a three-level model treats level 2 as fast
    assert app(tmp_path, TS + '[ensemble]\nmethod = "direct"\n[nested]\nlevels = 3\n').parameters() == \
        {"engine": "direct"}
    assert "levels" not in app(tmp_path, TS).parameters()
    # automatic partition with one gap at the start (four species): a two-level step
    d = app(tmp_path, FS + '[nested]\nlevels = 3\npartition = "auto"\n').parameters()
    assert d["step_initial"] == "two-level" and d["levels_initial"] == [2, 2, 0, 0, 2, 2]
    # replicas as farm tasks are available with three levels
    c = app(tmp_path, TS + '[ensemble]\nparallel = "replicas"\n[nested]\nlevels = 3\n')
    assert c.replica_mode
