r"""The micro side of the gas-dynamics app: task and result rows, and the micro models.

Every flux value the macro finite-volume scheme uses is a micro task (a farm row); the
``ideal`` model answers with the exact Euler flux of an ideal gas, an MD model (to come)
will answer with time and ensemble averages of a molecular-dynamics cell set up at the
macro state. The app does not know which: it calls :meth:`GasMicroModel.state_flux` or
:meth:`GasMicroModel.interface_flux` on the rows and reads the result fields.

Rows (``nvar = dim + 2`` conserved variables ``(rho, m_1 .. m_dim, E)``)
--------------------------------------------------------------------
State task (staggered central schemes: one per cell or corner and farm round)
    ``task_id`` i8, ``U`` (nvar,) f8 -- the state whose fluxes are wanted.
State result
    ``flux`` (dim, nvar) f8 -- :math:`F_d(U)` for every direction ``d``;
    ``flux_stderr`` (dim, nvar) f8 -- standard error of each component (0 for ``ideal``);
    ``sound_speed`` f8 -- the adiabatic sound speed :math:`c(U)` (the CFL time step);
    ``sound_speed_stderr`` f8; ``atom_steps`` i8 -- MD atom-steps spent (0 for ``ideal``).
Interface task (kinetic scheme: one per face and farm round)
    ``task_id`` i8, ``axis`` i8 (the face normal: 0 = x, 1 = y), ``UL``, ``UR`` (nvar,) f8 --
    the states on the low and high side of the face.
Interface result
    ``flux`` (nvar,) f8 -- the split flux :math:`F^+(U_L) + F^-(U_R)` along ``axis``;
    ``flux_stderr`` (nvar,) f8; ``sound_speed`` (2,) f8 -- :math:`c(U_L), c(U_R)`;
    ``sound_speed_stderr`` (2,) f8; ``atom_steps`` i8.

Task ids are global and do not depend on the rank count: ``(round * dim + axis) * S +
point``, with ``point`` the natural number of the cell / corner / face in its DMDA, ``axis``
0 for state tasks, ``round`` the farm round within the macro step (0..3) and
``S = prod(cells + 1)``. Distinct within a step, so a stochastic micro model draws
independent streams ``(seed, step, task_id)`` in every round.

Adding a micro model
--------------------
A class with ``name``, ``eos`` (initial data ``(rho, u, p) -> E`` and the pressure of the
outputs, :mod:`hmmpar.macro.finite_volume.euler`), ``state_flux(rows, ctx)`` and
``interface_flux(rows, ctx)`` returning the result rows above, registered in
:data:`MICRO_MODELS` and allowed in the app's ``micro.model`` choices. Its sound speed may
be estimated from the micro data (e.g. :math:`c^2 = \partial p/\partial\rho|_s` from
finite differences of measured pressures, or the bound :math:`\gamma_{\rm eff} = 1 +
p/(\rho e)`); the app uses whatever ``sound_speed`` the rows hold.
"""
from __future__ import annotations

import numpy as np

from hmmpar.core.farm import TaskContext
from hmmpar.macro.finite_volume.euler import IdealGas, all_fluxes, inadmissible, n_vars, primitive
from hmmpar.macro.finite_volume.kfvs import interface_flux

__all__ = ["state_task_dtype", "state_result_dtype", "interface_task_dtype", "interface_result_dtype",
           "IdealGasModel", "MICRO_MODELS"]


def state_task_dtype(dim: int) -> np.dtype:
    return np.dtype([("task_id", "i8"), ("U", "f8", (n_vars(dim),))])


def state_result_dtype(dim: int) -> np.dtype:
    nv = n_vars(dim)
    return np.dtype([("flux", "f8", (dim, nv)), ("flux_stderr", "f8", (dim, nv)),
                     ("sound_speed", "f8"), ("sound_speed_stderr", "f8"), ("atom_steps", "i8")])


def interface_task_dtype(dim: int) -> np.dtype:
    nv = n_vars(dim)
    return np.dtype([("task_id", "i8"), ("axis", "i8"), ("UL", "f8", (nv,)), ("UR", "f8", (nv,))])


def interface_result_dtype(dim: int) -> np.dtype:
    nv = n_vars(dim)
    return np.dtype([("flux", "f8", (nv,)), ("flux_stderr", "f8", (nv,)),
                     ("sound_speed", "f8", (2,)), ("sound_speed_stderr", "f8", (2,)), ("atom_steps", "i8")])


class IdealGasModel:
    """``micro.model = "ideal"``: exact fluxes of a calorically perfect gas, no noise.

    Stands in for the micro simulation so that the whole HMM path (farm rounds, task
    rows, checkpoints) runs and is validated against exact solutions.
    """

    name = "ideal"

    def __init__(self, gamma: float) -> None:
        self.eos = IdealGas(gamma)
        self.exact_gamma = gamma

    def describe(self) -> dict:
        return {"model": self.name, "gamma": self.eos.gamma}

    @staticmethod
    def inadmissible(U: np.ndarray) -> np.ndarray:
        """Mask of states an ideal gas cannot have (:func:`~hmmpar.macro.finite_volume.euler.inadmissible`)."""
        return inadmissible(U)

    def state_flux(self, rows: np.ndarray, ctx: TaskContext) -> np.ndarray:  # noqa: ARG002 - no randomness
        """Fluxes in every direction and the sound speed of each row's state ``U``."""
        U = rows["U"]
        dim = U.shape[-1] - 2
        out = np.zeros(rows.shape[0], dtype=state_result_dtype(dim))
        out["flux"] = all_fluxes(U, self.eos)
        rho, _, p = primitive(U, self.eos)
        out["sound_speed"] = self.eos.sound_speed(rho, p)
        return out

    def interface_flux(self, rows: np.ndarray, ctx: TaskContext) -> np.ndarray:  # noqa: ARG002
        """KFVS flux through each row's face and the sound speeds of its two states."""
        UL, UR = rows["UL"], rows["UR"]
        dim = UL.shape[-1] - 2
        out = np.zeros(rows.shape[0], dtype=interface_result_dtype(dim))
        for axis in range(dim):
            sel = rows["axis"] == axis
            if sel.any():
                out["flux"][sel] = interface_flux(UL[sel], UR[sel], axis, self.eos)
        for k, U in enumerate((UL, UR)):
            rho, _, p = primitive(U, self.eos)
            out["sound_speed"][:, k] = self.eos.sound_speed(rho, p)
        return out


#: micro.model -> constructor from the [micro] section
MICRO_MODELS = {
    "ideal": lambda micro: IdealGasModel(micro["gamma"]),
    "md": lambda micro: _md_model(micro),
}


def _md_model(micro: dict):
    from hmmpar.apps.gas_md import MDGasModel  # imports the MD engine only when asked for
    return MDGasModel(micro)
