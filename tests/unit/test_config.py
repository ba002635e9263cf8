import pytest

from hmmpar.core.config import RUNTIME_SCHEMA, Field, load_config, parse_override, validate
from hmmpar.core.errors import ConfigError

SCHEMA = {**RUNTIME_SCHEMA, "model": {"n": Field(int, 4, min=1), "h": Field(float, 0.5, min=0.0, min_exclusive=True),
                                      "names": Field(list, [], item_type=str)}}


def test_defaults_filled_and_int_accepted_for_float():
    data = validate({"run": {"app": "x"}, "model": {"h": 1}}, SCHEMA)
    assert data["model"] == {"n": 4, "h": 1.0, "names": []}
    assert isinstance(data["model"]["h"], float)
    assert data["farm"]["mode"] == "dynamic"


@pytest.mark.parametrize("raw, message", [
    ({"run": {"app": "x"}, "model": {"nn": 1}}, "unknown config key model.nn in t; did you mean 'n'?"),
    ({"run": {"app": "x"}, "model": {"mode": 1}}, "did you mean 'farm.mode'?"),
    ({"run": {"app": "x"}, "model": {"n": 1.5}}, "config key model.n must be an integer, got a number 1.5"),
    ({"run": {"app": "x"}, "model": {"h": 0}}, "config key model.h must be > 0.0, got 0.0"),
    ({"run": {"app": "x"}, "model": {"names": ["a", 2]}}, "config key model.names[1] must be a string"),
    ({"run": {"app": "x"}, "model": {"h": float("nan")}}, "config key model.h must be finite"),
    ({"run": {}}, "config key run.app is required but missing in t"),
    ({"run": {"app": "x"}, "model": 3}, "config entry model in t must be a [section] table"),
])
def test_errors_name_the_key(raw, message):
    with pytest.raises(ConfigError) as info:
        validate(raw, SCHEMA, "t")
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_override_parsing():
    assert parse_override("a.b=3") == ("a", "b", 3)
    assert parse_override("a.b=hello") == ("a", "b", "hello")
    assert parse_override('a.b="x y"') == ("a", "b", "x y")
    assert parse_override("a.b=[1, 2]") == ("a", "b", [1, 2])
    with pytest.raises(ConfigError, match="section.key"):
        parse_override("ab=3")


def test_dumps_round_trips_and_physics_differences(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[run]\napp = "ou_averaging"\n[micro]\nsamples = 10\n')
    cfg = load_config(f, ["macro.t_end=2", 'run.output_dir="a b"'])
    again = load_config(cfg.dumps(), is_text=True)
    assert again.data == cfg.data
    other = load_config(f, ["micro.samples=11", "macro.t_end=5", "farm.mode=static"])
    assert cfg.physics_differences(other) == ["micro.samples = 11 (now 10)"]
