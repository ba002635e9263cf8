"""hmmpar gather: flattening, sorting by the swept key, and its errors."""
from __future__ import annotations

import json

import pytest

from hmmpar.core.errors import ConfigError
from hmmpar.gather import flatten, gather, markdown


def make_run(d, eps, l2):
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"cells": [8, 8], "n": [3], "err": {"l2": l2}}))
    (d / "run_config.toml").write_text(f"[micro]\neps = {eps}\n[run]\napp = \"elliptic\"\n")


def test_flatten_nested_and_lists():
    assert flatten({"a": {"b": 1, "c": {"d": 2.5}}, "l": [1, 2], "one": [3]}) == \
        {"a.b": 1, "a.c.d": 2.5, "l": "[1, 2]", "one": 3}


def test_rows_sorted_by_first_param_and_columns_selected(tmp_path):
    for name, eps, l2 in (("a", 0.04, 3e-2), ("b", 0.01, 1e-2), ("c", 0.02, 2e-2)):
        make_run(tmp_path / "sweep" / name, eps, l2)
    header, rows = gather([tmp_path / "sweep"], ["micro.eps"], ["err.l2"])
    assert header == ["run", "micro.eps", "err.l2"]
    assert [r["micro.eps"] for r in rows] == [0.01, 0.02, 0.04]
    assert [r["err.l2"] for r in rows] == [1e-2, 2e-2, 3e-2]
    table = markdown(header, rows).splitlines()
    assert table[0] == "| run | micro.eps | err.l2 |" and len(table) == 5


def test_errors_name_the_key_or_file(tmp_path):
    make_run(tmp_path / "r", 0.1, 1.0)
    with pytest.raises(ConfigError, match="config key micro.n is not in"):
        gather([tmp_path / "r"], ["micro.n"])
    with pytest.raises(ConfigError, match="no run has column 'err.h1'"):
        gather([tmp_path / "r"], [], ["err.h1"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no summary.json found"):
        gather([tmp_path / "empty"])
