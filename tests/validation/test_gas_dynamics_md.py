"""The gas-dynamics app with molecular-dynamics fluxes (``micro.model = "md"``).

Free particles (``potential = "none"``) are exactly a monatomic ideal gas, so the HMM with
free-particle MD must converge to the same scheme run with the exact ideal-gas flux
(gamma = 5/3) as the MD noise falls: the deviation from the ``ideal`` run must shrink like
1/sqrt(atoms) (16 times more atoms: 4 times smaller; asserted < 0.5, which a biased flux
would not give). The finite-volume update is conservative whatever the fluxes are, so
with periodic boundaries mass and energy are conserved to round-off with MD fluxes too.

Runs in-process on one rank (``make test``'s serial pass); rank independence and restarts
with MD are tests/mpi/test_gas_dynamics_mpi.py's job.
"""
from __future__ import annotations

import numpy as np
import pytest

from test_gas_dynamics import run_gas

FREE = dict(micro__potential='"none"', micro__eos_points="[3, 2]", micro__eos_atoms=32, micro__eos_t_sample=0.1,
            problem__name='"sod"', macro__cells="[16]", macro__order=1, macro__cfl=0.4, macro__t_end=0.1,
            micro__t_equilibrate=0.0)


def deviation(a: dict, b: dict) -> float:
    """L1 distance of two density fields on [0, 1]."""
    return float(np.mean(np.abs(a["rho"] - b["rho"])))


@pytest.mark.parametrize("scheme", ["staggered", "kinetic"])
def test_free_particle_md_converges_to_the_ideal_gas_scheme(tmp_path, scheme):
    """Sod, 16 cells, first order, t = 0.1: the same scheme with ideal (gamma = 5/3) and with
    free-particle MD fluxes from boxes of N and 16 N atoms (staggered: state boxes of 100
    and 1600 atoms; kinetic: interface boxes of 500 and 8000). Measured L1 deviations
    (one seed): staggered 0.0101 -> 0.0019, kinetic 0.0356 -> 0.0067 (ratios 0.18, 0.19)."""
    ideal, f_ideal = run_gas(tmp_path, f"{scheme}_ideal", macro__scheme=f'"{scheme}"', micro__gamma=5 / 3,
                             **{k: v for k, v in FREE.items() if not k.startswith("micro__")})
    key = "micro__atoms" if scheme == "staggered" else "micro__interface_atoms"
    small, large = (100, 1600) if scheme == "staggered" else (500, 8000)
    devs = []
    for n in (small, large):
        summary, fields = run_gas(tmp_path, f"{scheme}_md_{n}", macro__scheme=f'"{scheme}"', micro__model='"md"',
                                  micro__t_sample=0.1, micro__interface_t_sample=0.1, **{key: n}, **FREE)
        assert summary["time"] == pytest.approx(0.1)
        assert summary["md_atom_steps"] > 0 and summary["flux_stderr"]["max"] > 0
        devs.append(deviation(fields, f_ideal))
    assert devs[1] < 0.5 * devs[0], devs
    # and the larger boxes are as close to the exact solution as the ideal-flux scheme
    # (its discretisation error dominates) within the remaining noise
    assert summary["l1_error_vs_exact"]["rho"] < ideal["l1_error_vs_exact"]["rho"] + 2 * devs[1]


def test_md_fluxes_conserve_mass_and_energy_to_round_off(tmp_path):
    """Periodic density wave, free-particle MD on both schemes: relative defects < 1e-13."""
    for scheme in ("staggered", "kinetic"):
        summary, _ = run_gas(tmp_path, f"wave_{scheme}", macro__scheme=f'"{scheme}"', micro__model='"md"',
                             problem__name='"density_wave"', macro__bc='["periodic"]', micro__atoms=64,
                             micro__interface_atoms=500, micro__t_sample=0.1, micro__interface_t_sample=0.05,
                             **{k: v for k, v in FREE.items() if k != "problem__name"})
        for name in ("mass", "energy"):
            c = summary["conservation"][name]
            assert abs(c["relative_defect"]) < 1e-13, (scheme, name, c)
        assert summary["flux_stderr"]["max"] > 0  # the fluxes were noisy, yet nothing leaked


def test_lj_tube_runs_with_its_tabulated_equation_of_state(tmp_path):
    """LJ (r_c = 2.5, shifted) Riemann tube at supercritical states, 8 cells: the run ends,
    the EOS table covers the data, the pressures written are those of the initial data at
    the ends of the tube (no wave has reached them), and the fluxes carry error bars."""
    summary, fields = run_gas(tmp_path, "lj", micro__model='"md"', problem__name='"riemann"',
                              problem__left="[0.5, 0.0, 1.8]", problem__right="[0.1, 0.0, 0.15]",
                              macro__cells="[8]", macro__order=1, macro__t_end=0.02, micro__atoms=108,
                              micro__t_equilibrate=0.2, micro__t_sample=0.3, micro__eos_points="[3, 3]",
                              micro__eos_atoms=108, micro__eos_t_sample=1.0, micro__eos_temperatures="[1.5, 6.0]")
    assert summary["time"] == pytest.approx(0.02)
    assert summary["micro"]["potential"].startswith("lj")
    assert "l1_error_vs_exact" not in summary  # no exact solution for an LJ fluid
    # the ends keep their initial pressure to the table's interpolation error (its points
    # carry MD noise of about 1 %; linear interpolation in e and rho adds a few %)
    assert fields["p"][0] == pytest.approx(1.8, rel=0.05)
    assert fields["p"][-1] == pytest.approx(0.15, rel=0.05)
    assert summary["flux_stderr"]["max"] > 0 and summary["md_atom_steps"] > 0


@pytest.mark.parametrize("name", ["gas_dynamics_md", "gas_dynamics_lj"])
def test_md_driver_configs_run_at_a_small_size(tmp_path, name):
    """The documented MD configs, shrunk (cells, boxes, time), run to their end: they do
    not rot. The full sizes are the docs' numbers (minutes)."""
    from pathlib import Path

    from mpi4py import MPI

    from hmmpar.core.config import load_config
    from hmmpar.core.log import RankLog
    from hmmpar.core.runner import run

    small = ["macro.cells=[6]", "macro.t_end=0.02", "micro.atoms=108", "micro.interface_atoms=1000",
             "micro.eos_atoms=108", "micro.eos_points=[3, 2]", "micro.eos_t_sample=0.2", "micro.t_sample=0.2",
             "micro.t_equilibrate=0.1", f'run.output_dir="{tmp_path / name}"', "output.plots=false"]
    for scheme in ("staggered", "kinetic"):
        root = Path(__file__).resolve().parents[2]
        cfg = load_config(root / "drivers" / "configs" / f"{name}.toml", small + [f'macro.scheme="{scheme}"',
                                                                                 f'run.output_dir="{tmp_path / scheme}"'])
        summary = run(cfg, MPI.COMM_WORLD, log=RankLog(MPI.COMM_WORLD, quiet=True))
        assert summary["time"] == pytest.approx(0.02) and summary["md_atom_steps"] > 0
