"""benchmarks/couplers.py --quick: it runs, writes its JSON and PNGs, and the couplers reach
the coarsest target error with less fast-scale work than the resolved run; the patch part
(patch dynamics vs the full-domain micro simulation) has both references, finite errors and
positive work."""
from __future__ import annotations

import json
import math
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
    # the patch benchmark: both references, finite errors and positive work for every run
    pt = r["patches"]
    assert (tmp_path / "couplers_quick_patches.png").stat().st_size > 10_000
    assert abs(pt["a_star_h_over_a_star"] - (1 - 1.65e-3)) < 1e-5, pt["a_star_h_over_a_star"]
    assert abs(pt["rate_fine"] / pt["rate_exact"] - pt["a_star_h_over_a_star"]) < 3e-4   # O((2 pi eps)^2)
    runs = pt["full_implicit"] + [pt["full_explicit"]] + pt["patch"]
    assert pt["full_implicit"] and pt["patch"]
    for run in runs:
        assert math.isfinite(run["error_fine"]) and math.isfinite(run["error_exact"]), run
        assert run["work"] > 0 and run["wall"] > 0, run
    # the converged full-domain run is the fine rate; the patches' rate is their known terms'
    assert abs(pt["rate_full_converged"] / pt["rate_fine"] - 1) < 1e-3
    for p in pt["patch"]:
        assert abs(p["rate"] / p["rate_known_terms"] - 1) < 1e-3, p
        assert 0 < p["domain_fraction"] < 1 and 0 < p["time_fraction"] < 1, p
    cost = {(t["reference"], t["target"]): t for t in pt["table"]}
    assert set(cost) == {(ref, tg) for ref in ("fine", "exact") for tg in (1e-2, 3e-3, 1e-3)}
    coarse = cost[("fine", 1e-2)]
    assert coarse["patch"] is not None and coarse["full_implicit"] is not None, coarse
    for key in ("work_patch_over_full", "wall_patch_over_full", "work_patch_over_explicit", "wall_patch_over_explicit"):
        assert math.isfinite(coarse[key]) and coarse[key] > 0, (key, coarse)
    # nothing beats the fine grid's own homogenization error against a* (2 pi)^2
    assert cost[("exact", 1e-3)]["patch"] is None and cost[("exact", 1e-3)]["full_implicit"] is None
    # at smaller eps the patches' work stays, the full domain's grows like 1/eps
    sc = pt["eps_scaling"]["rows"]
    assert len(sc) >= 2 and sc[0]["eps"] > sc[-1]["eps"]
    assert sc[-1]["patch"]["work"] == sc[0]["patch"]["work"]
    assert sc[-1]["full_implicit"]["work"] > sc[0]["full_implicit"]["work"]
    for row in sc:
        assert math.isfinite(row["patch"]["error_fine"]) and math.isfinite(row["full_implicit"]["error_fine"]), row
