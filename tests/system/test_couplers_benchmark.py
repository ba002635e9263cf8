"""benchmarks/couplers.py --quick: it runs, writes its JSON and PNG, and the couplers reach
the coarsest target error with less fast-scale work than the resolved run."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_quick_run_writes_the_comparison(tmp_path):
    p = subprocess.run([sys.executable, "benchmarks/couplers.py", "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((tmp_path / "couplers_quick.json").read_text())
    assert (tmp_path / "couplers_quick.png").stat().st_size > 10_000
    assert "not_applicable" in r["problems"]["seed"]["projective"]
    rows = {(t["problem"], t["method"], t["target"]): t for t in r["table"]}
    for problem in ("seed", "dissipative"):
        seamless = rows[(problem, "seamless", 1e-2)]
        assert seamless["work"] is not None and seamless["work_over_resolved"] < 0.01, seamless
    # projective RK4 on the damped problem: the cheapest at 1e-3
    assert rows[("dissipative", "projective_rk4", 1e-3)]["work"] < rows[("dissipative", "seamless", 1e-2)]["work"]
