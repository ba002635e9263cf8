"""benchmarks/superparam.py: its exact column means, and a smoke run of --quick."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import superparam as bench  # noqa: E402


@pytest.mark.parametrize("n", [32, 48])
def test_column_averages_of_a_trigonometric_polynomial_are_exact(n):
    lx, ncol = 8.0, 4
    x = np.arange(n) * lx / n
    k1, k2 = 2 * np.pi / lx, 2 * np.pi * 5 / lx
    f = 0.3 + np.cos(k1 * x) + 0.5 * np.sin(k2 * x)
    a = np.arange(ncol) * lx / ncol
    b = a + lx / ncol
    exact = 0.3 + (np.sin(k1 * b) - np.sin(k1 * a)) / (k1 * (b - a)) \
        - 0.5 * (np.cos(k2 * b) - np.cos(k2 * a)) / (k2 * (b - a))
    assert np.allclose(bench.column_average_operator(n, lx, ncol) @ f, exact, rtol=0, atol=1e-13)
    # a product on the twice finer grid is the product of the interpolants (no aliasing)
    g = np.cos(k1 * x * 7)
    fine = np.arange(2 * n) * lx / (2 * n)
    assert np.allclose(bench.finer(g), np.cos(k1 * fine * 7), atol=1e-12)


def test_quick_run_writes_the_comparison(tmp_path):
    p = subprocess.run([sys.executable, "benchmarks/superparam.py", "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((tmp_path / "superparam_quick.json").read_text())
    assert (tmp_path / "superparam_quick.png").stat().st_size > 10_000
    runs = r["runs"]
    for name in ("reference", "SP", "coarse alone"):
        assert np.array(runs[name]["column_T"]).shape == (8, 8)
        assert np.array(runs[name]["heat_flux"]).shape == (8, 9)
        assert np.isfinite(runs[name]["heat_flux"]).all()
    assert runs["SP"]["heat_exchange_defect_max"] < 1e-13
    for key in ("T_rms", "mean_F_rms", "nusselt_bottom_rms"):
        assert r["errors"]["SP"][key] > 0 and r["errors"]["coarse alone"][key] > 0
    # the reference starts from conduction (mean bottom flux 1, the mean of T_b) and its
    # convection grows: the window's mean flux lies above 1, below the steady Nu(2e4) ~ 6;
    # the warm middle's column passes more heat than the cool side's
    F0 = np.array(runs["reference"]["heat_flux"])[:, 0]
    assert 1.0 < F0.mean() < 3.0
    assert F0[3] > F0[0]
    assert r["table"][-1]["quantity"].startswith("cost")
