"""Independent equations of state for Lennard-Jones fluids: test oracles for hmmpar's MD.

Everything here is in LJ reduced units (sigma = epsilon = k_B = m = 1): rho* = N sigma^3 / V,
T* = k_B T / epsilon, p* = p sigma^3 / epsilon, u* = U / (N epsilon). ``u`` is the total internal
energy per atom, residual (configurational) part plus the ideal-gas 3/2 T*.

* ``pets``: the PeTS EOS (Heier, Stephan, Liu, Chapman, Hasse & Langenbach, Mol. Phys. 116,
  2083 (2018), doi:10.1080/00268976.2018.1447153) for the Lennard-Jones potential truncated at
  r_c = 2.5 sigma and SHIFTED (u_LJTS(r) = u_LJ(r) - u_LJ(r_c) for r <= r_c, 0 beyond; their
  Eq. 2), as implemented in FeOs (PyPI ``feos``). Its residual energy is the mean of that
  shifted potential energy (tests/validation/micro/md/test_md_eos_oracles.py checks this in the
  low-density limit, where it is an integral over the pair potential).
* ``thol2016``, ``kolafa_nezbeda1994``, ``johnson1993``: EOS of the full (untruncated) LJ fluid
  (Thol, Rutkai, Koester, Lustig, Span & Vrabec, J. Phys. Chem. Ref. Data 45, 023101 (2016);
  Kolafa & Nezbeda, Fluid Phase Equilib. 100, 1 (1994); Johnson, Zollweg & Gubbins, Mol. Phys.
  78, 591 (1993)), as implemented in NIST's teqp (PyPI ``teqp``), whose LJ models work in reduced
  units (R = 1).

The libraries are test-only dependencies (pyproject extra ``test``, Makefile ``EOS_PIPS``);
hmmpar itself never imports them. They are imported lazily here so that this module can be
imported (and the tests skipped) where they are missing.

Uncertainties used by the MD-vs-EOS tests, relative to the EOS pressure and to the EOS
residual energy u_res (not to the total u = u_res + 3/2 T, which passes through zero near
rho* = 0.5, T* = 2; the 3/2 T part is exact):

* PeTS pressure, 5 %: Heier et al. 2018, Sec. 2.3.1 and Fig. 3: for the homogeneous stable states
  simulated by Thol et al. (Int. J. Thermophys. 36, 25 (2015)), "the relative deviation in the
  pressure is in most cases below 5 %" (states far above the critical point included).
* PeTS energy, 5 % of u_res: the PeTS paper states no deviation for the internal energy (it
  was fitted to vapour-liquid equilibrium data only). We use the pressure's 5 %; this is our
  choice, not a published number.
* Thol 2016 pressure and energy, 1 %: the paper's own uncertainty statement was not available
  to us, so this is our choice too. It is backed by checks in test_md_eos_oracles.py: against
  NIST's Monte Carlo results (r_c = 3 with long-range corrections) the Thol EOS is within
  0.004 in p* and 0.002 in u*_res, and at the MD states Thol, Kolafa-Nezbeda and Johnson et al.
  agree to 0.75 % in p* and 0.3 % in u*_res.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

PETS_P_REL_UNCERTAINTY = 0.05
PETS_U_REL_UNCERTAINTY = 0.05
THOL_P_REL_UNCERTAINTY = 0.01
THOL_U_REL_UNCERTAINTY = 0.01

PETS_CUTOFF = 2.5  # the PeTS EOS is for this cutoff only

# Any sigma and epsilon/k give the same reduced results (a test checks two choices); these are
# argon-like so that FeOs works at ordinary SI magnitudes.
PETS_SIGMA_ANGSTROM = 3.405
PETS_EPSILON_K = 119.8


@dataclass(frozen=True)
class EOSPoint:
    """EOS values at (rho*, T*), reduced units."""

    rho: float
    temperature: float
    pressure: float          # p*
    u_residual: float        # configurational energy per atom, U_pot / (N epsilon)
    compressibility: float   # Z = p / (rho k_B T)

    @property
    def u(self) -> float:
        """Total internal energy per atom: residual + 3/2 T* (ideal gas of point particles)."""
        return self.u_residual + 1.5 * self.temperature


# ------------------------------------------------------------------------------------- PeTS
@functools.lru_cache(maxsize=None)
def _pets_eos(sigma_angstrom: float, epsilon_k: float):
    import feos

    record = feos.PureRecord(feos.Identifier(name="LJTS rc=2.5"), 1.0,
                             sigma=sigma_angstrom, epsilon_k=epsilon_k)
    return feos.EquationOfState.pets(feos.Parameters.new_pure(record))


def pets(rho: float, temperature: float, *, sigma_angstrom: float = PETS_SIGMA_ANGSTROM,
         epsilon_k: float = PETS_EPSILON_K) -> EOSPoint:
    """PeTS (LJ truncated at 2.5 sigma and shifted) at reduced (rho*, T*).

    FeOs works in SI units: T = T* epsilon/k, molar density rho = rho* / (sigma^3 N_A),
    p* = p sigma^3 / (k_B epsilon/k), u* = U_molar / (R epsilon/k).
    """
    import feos
    import si_units as si

    eos = _pets_eos(float(sigma_angstrom), float(epsilon_k))
    sigma = sigma_angstrom * si.ANGSTROM
    eps_temperature = epsilon_k * si.KELVIN
    state = feos.State(eos, temperature=temperature * eps_temperature,
                       density=rho / (sigma**3 * si.NAV))
    p_star = float(state.pressure() * sigma**3 / (si.KB * eps_temperature))
    u_res = float(state.molar_internal_energy(feos.Contributions.Residual)
                  / (si.RGAS * eps_temperature))
    return EOSPoint(rho, temperature, p_star, u_res, float(state.compressibility()))


def pets_critical_point() -> tuple[float, float]:
    """(T*_c, rho*_c) of the PeTS EOS."""
    import feos
    import si_units as si

    eos = _pets_eos(PETS_SIGMA_ANGSTROM, PETS_EPSILON_K)
    crit = feos.State.critical_point(eos)
    return (float(crit.temperature / (PETS_EPSILON_K * si.KELVIN)),
            float(crit.density * si.NAV * (PETS_SIGMA_ANGSTROM * si.ANGSTROM) ** 3))


def pets_saturated_densities(temperature: float) -> tuple[float, float]:
    """(rho*_liquid, rho*_vapour) of PeTS's vapour-liquid equilibrium at T*."""
    import feos
    import si_units as si

    eos = _pets_eos(PETS_SIGMA_ANGSTROM, PETS_EPSILON_K)
    vle = feos.PhaseEquilibrium.pure(eos, temperature * PETS_EPSILON_K * si.KELVIN)
    to_reduced = si.NAV * (PETS_SIGMA_ANGSTROM * si.ANGSTROM) ** 3
    return float(vle.liquid.density * to_reduced), float(vle.vapor.density * to_reduced)


# ----------------------------------------------------------------------- full LJ via teqp
TEQP_KINDS = {
    "thol2016": "LJ126_TholJPCRD2016",
    "kolafa_nezbeda1994": "LJ126_KolafaNezbeda1994",
    "johnson1993": "LJ126_Johnson1993",
}


@functools.lru_cache(maxsize=None)
def _teqp_model(kind: str):
    import teqp

    model = teqp.make_model({"kind": kind, "model": {}})
    gas_constant = model.get_R(np.array([1.0]))
    if gas_constant != 1.0:  # the LJ models are in reduced units; anything else is a surprise
        raise RuntimeError(f"teqp {kind}: R = {gas_constant}, expected 1 (reduced units)")
    return model


def teqp_lj(kind: str, rho: float, temperature: float) -> EOSPoint:
    """Full-LJ EOS ``kind`` (a key of TEQP_KINDS) at reduced (rho*, T*).

    teqp's Ar_nm = (1/T)^n rho^m d^(n+m) alpha_r / d(1/T)^n d rho^m with alpha_r = a_r / (R T),
    so Z = 1 + Ar01 and u_res / (R T) = Ar10.
    """
    model = _teqp_model(TEQP_KINDS[kind])
    z = np.array([1.0])
    compressibility = 1.0 + model.get_Ar01(temperature, rho, z)
    u_res = model.get_Ar10(temperature, rho, z) * temperature
    return EOSPoint(rho, temperature, rho * temperature * compressibility, u_res, compressibility)


def thol2016(rho: float, temperature: float) -> EOSPoint:
    return teqp_lj("thol2016", rho, temperature)


def kolafa_nezbeda1994(rho: float, temperature: float) -> EOSPoint:
    return teqp_lj("kolafa_nezbeda1994", rho, temperature)


def johnson1993(rho: float, temperature: float) -> EOSPoint:
    return teqp_lj("johnson1993", rho, temperature)


def teqp_alphar_derivatives(kind: str, rho: float, temperature: float) -> tuple[float, ...]:
    """(Ar00, Ar10, Ar01) of teqp model ``kind``: for checks against published values."""
    model = _teqp_model(TEQP_KINDS[kind])
    z = np.array([1.0])
    return (model.get_Ar00(temperature, rho, z), model.get_Ar10(temperature, rho, z),
            model.get_Ar01(temperature, rho, z))


# ------------------------------------------------- exact low-density limits (numerical)
def lj_pair(r, cutoff: float | None = None, shifted: bool = False):
    """LJ pair energy; beyond ``cutoff`` zero; ``shifted`` subtracts u_LJ(cutoff) inside."""
    r = np.asarray(r, dtype=float)
    u = 4.0 * (r**-12 - r**-6)
    if cutoff is not None:
        shift = 4.0 * (cutoff**-12 - cutoff**-6) if shifted else 0.0
        u = np.where(r <= cutoff, u - shift, 0.0)
    return u


def low_density_limits(temperature: float, cutoff: float | None = None,
                       shifted: bool = False) -> tuple[float, float]:
    """Exact (B2, lim u_res/rho for rho -> 0) of a (truncated) LJ pair potential at T*.

    B2 = -2 pi int (exp(-u/T) - 1) r^2 dr and u_res/rho -> 2 pi int u exp(-u/T) r^2 dr.
    """
    from scipy.integrate import quad

    def pair(r):
        return float(lj_pair(r, cutoff, shifted))

    def integrate(f):
        upper = cutoff if cutoff is not None else 60.0
        breaks = [b for b in (0.8, 1.0, 1.12, 1.5, 2.0, 3.0) if b < upper]
        total = quad(f, 0.3, upper, points=breaks, limit=500)[0]
        if cutoff is None:
            total += quad(f, upper, np.inf)[0]
        return total

    # below r = 0.3 the Boltzmann factor is 0 to double precision: (exp - 1) r^2 = -r^2 there
    b2 = -2.0 * np.pi * (integrate(lambda r: (np.exp(-pair(r) / temperature) - 1.0) * r * r)
                         - 0.3**3 / 3.0)
    u_over_rho = 2.0 * np.pi * integrate(lambda r: pair(r) * np.exp(-pair(r) / temperature) * r * r)
    return b2, u_over_rho
