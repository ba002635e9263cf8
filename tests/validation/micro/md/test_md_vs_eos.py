"""hmmpar's MD (``state_point``) against independent equations of state at supercritical states.

* LJ truncated at r_c = 2.5 and shifted against the PeTS EOS (FeOs), which describes exactly
  that potential (Heier et al. 2018; energies are those of the shifted potential).
* Full LJ, simulated as LJ truncated at r_c = 4 (unshifted) with the standard tail
  corrections, against the Thol et al. 2016 EOS (teqp). Why that setting estimates the full LJ
  fluid: MD integrates forces only, so it samples the truncated-and-shifted potential's
  ensemble; the full potential differs from that one by u_LJ(r_c) inside r_c and by u_LJ(r)
  beyond, a continuous perturbation whose first-order effect (g = 1 beyond r_c) is the tail
  correction in p, and the unshifted energy plus the tail correction in U.

States (rho*, T*): (0.3, 2.0), (0.5, 2.0), (0.7, 1.5), all above both critical temperatures
(PeTS 1.09, LJ 1.32). N = 500, default run lengths of ``state_point`` (equilibration by
velocity rescaling, then NVE sampling with blocked standard errors).

The NVE production settles at a mean temperature T_MD a little off the target, so the EOS is
evaluated at (rho, T_MD). The comparison for a quantity X (p*, or u* = u*_pot + 3/2 T*, whose
3/2 T* part is the same on both sides) is

    |X_MD - X_EOS(T_MD)| <= 3 (se_X + |dX_EOS/dT| se_T) + eps_EOS,

with se the blocked standard errors (added linearly, not in quadrature: in NVE, u_pot and
T are fully anticorrelated through the conserved energy) and eps_EOS the EOS uncertainty of
lj_eos.py (PeTS: 5 % of p and of u_res; Thol: 1 %).

Run ``python tests/validation/micro/md/test_md_vs_eos.py`` for the table of docs/md_validation.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("teqp")
pytest.importorskip("feos")
from hmmpar.micro.md import make_potential, state_point  # noqa: E402

import lj_eos  # noqa: E402  (tests/validation/micro/md is on sys.path)

STATES = ((0.3, 2.0), (0.5, 2.0), (0.7, 1.5))
N_ATOMS = 500
SEED = 20261207
FULL_LJ_CUTOFF = 4.0   # L = 8.9 at rho = 0.7, N = 500: above 2 (r_c + skin) = 8.6
# run lengths (LJ time units) pinned here: about 20 s for all six runs on one core, with
# standard errors of about 0.5-0.8 % on p* (asserted below)
RUN = dict(dt=0.005, t_equilibrate=5.0, t_sample=20.0)


@dataclass(frozen=True)
class Model:
    name: str
    potential: object
    eos: object
    p_rel: float
    u_rel: float


def models() -> dict[str, Model]:
    return {
        "LJTS 2.5 vs PeTS": Model("LJTS 2.5 vs PeTS", make_potential("lj", 2.5, shift=True),
                                  lj_eos.pets, lj_eos.PETS_P_REL_UNCERTAINTY,
                                  lj_eos.PETS_U_REL_UNCERTAINTY),
        "full LJ vs Thol 2016": Model("full LJ vs Thol 2016",
                                      make_potential("lj", FULL_LJ_CUTOFF, shift=False,
                                                     tail_correction=True),
                                      lj_eos.thol2016, lj_eos.THOL_P_REL_UNCERTAINTY,
                                      lj_eos.THOL_U_REL_UNCERTAINTY),
    }


@dataclass(frozen=True)
class Comparison:
    """One quantity of one MD run against the EOS at the run's mean temperature."""

    quantity: str
    md: float
    md_err: float       # the MD's blocked standard error of this quantity
    eos: float          # at (rho, T_MD)
    eos_err: float      # |dX_EOS/dT| se_T: the EOS value's spread through T_MD
    allowance: float    # the EOS's own uncertainty

    @property
    def tolerance(self) -> float:
        return 3.0 * (self.md_err + self.eos_err) + self.allowance

    @property
    def ok(self) -> bool:
        return abs(self.md - self.eos) <= self.tolerance


def compare(model: Model, rho: float, temperature: float):
    result = state_point(rho, potential=model.potential, n_atoms=N_ATOMS,
                         rng=np.random.default_rng(SEED), temperature=temperature, **RUN)
    t_md, t_err = float(result.temperature), float(result.temperature_err)
    at = model.eos(rho, t_md)
    h = 1e-4
    hi, lo = model.eos(rho, t_md + h), model.eos(rho, t_md - h)
    dp_dt = (hi.pressure - lo.pressure) / (2 * h)
    du_dt = (hi.u - lo.u) / (2 * h)
    pressure = Comparison("p", float(result.pressure), float(result.pressure_err), at.pressure,
                          abs(dp_dt) * t_err, model.p_rel * abs(at.pressure))
    u_md = float(result.potential_energy) + 1.5 * t_md
    energy = Comparison("u", u_md, float(result.potential_energy_err), at.u,
                        abs(du_dt) * t_err, model.u_rel * abs(at.u_residual))
    return result, pressure, energy


@pytest.mark.parametrize("rho, temperature", STATES)
@pytest.mark.parametrize("model_name", sorted(models()))
def test_md_pressure_and_energy_match_the_eos(model_name, rho, temperature):
    model = models()[model_name]
    result, pressure, energy = compare(model, rho, temperature)
    assert not result.two_phase
    assert result.converged
    assert abs(result.temperature - temperature) < 0.05 * temperature
    # the statistics are as good as the tolerances assume (about 1 % on p)
    assert result.pressure_err < 0.015 * abs(result.pressure)
    for c in (pressure, energy):
        assert c.ok, (f"{model.name}, rho={rho}, T={result.temperature:.4f}: {c.quantity}_MD = "
                      f"{c.md:.4f} +- {c.md_err:.4f}, EOS {c.eos:.4f} +- {c.eos_err:.4f} "
                      f"(|diff| {abs(c.md - c.eos):.4f} > tolerance {c.tolerance:.4f})")


def markdown_table() -> str:
    rows = ["| model | rho* | T* target | T*_MD ± se | | EOS at T*_MD | MD ± se | MD − EOS | tolerance |",
            "|---|---|---|---|---|---|---|---|---|"]
    for model in models().values():
        for rho, temperature in STATES:
            result, pressure, energy = compare(model, rho, temperature)
            for c in (pressure, energy):
                rows.append(f"| {model.name} | {rho} | {temperature} | {result.temperature:.4f} "
                            f"± {result.temperature_err:.4f} | {c.quantity}* | {c.eos:.4f} | "
                            f"{c.md:.4f} ± {c.md_err:.4f} | {c.md - c.eos:+.4f} | {c.tolerance:.4f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
