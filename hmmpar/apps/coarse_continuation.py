r"""Coarse bifurcation analysis run from a config: ``run.app = "couplers"`` with
``coupler.method = "continuation"``.

The steady states of the coarse time-stepper (patch dynamics' slope :math:`F(U; \lambda)`,
every patch a farm task) are continued in the parameter :math:`\lambda` by
:class:`~hmmpar.couplers.continuation.Continuation` (matrix-free Newton--Krylov with PETSc
SNES, Keller's pseudo-arclength), one branch point per "step" of the runner, with the
leading eigenvalues of the coarse Jacobian at every point and the folds refined at the end.
A checkpoint holds the branch so far (points, eigenvalues, Newton counts, the arclength
step) and the farm-call counter: a restart continues bitwise on any number of ranks.

The class shares the schema, the models and the farm of :class:`~hmmpar.apps.couplers.Couplers`
(which hands a continuation config to it); only the run differs: the number of points is
not known in advance (:attr:`steps_estimated`), "time" is :math:`\lambda`, the output is the
branch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hmmpar.apps.couplers import Couplers
from hmmpar.core.checkpoint import CheckpointReader
from hmmpar.core.errors import CheckpointError, ConfigError, HmmparError


class CoarseContinuation(Couplers):
    """Pseudo-arclength continuation of the coarse steady states (module docstring)."""

    steps_estimated = True

    def _set_up(self, config) -> None:
        """The continuation's keys, checked before any micro work."""
        st = self.model.stepper
        if not (self.is_patch and getattr(st, "reaction", None) is not None):
            raise ConfigError(f"config key coupler.method = 'continuation' needs a patch model with a parameter "
                              f"(model.name = 'bratu'), not model.name = {config['model.name']!r}")
        k = config.section("continuation")
        if k["dlam"] == 0:
            raise ConfigError("config key continuation.dlam must be nonzero")
        if not k["lam_min"] <= k["lam0"] <= k["lam_max"] or not k["lam_min"] < k["lam_max"]:
            raise ConfigError(f"config keys continuation.lam_min = {k['lam_min']:g} < lam_max = {k['lam_max']:g} must "
                              f"contain continuation.lam0 = {k['lam0']:g}")
        if not k["eigenvalues"] <= st.N - 2:
            raise ConfigError(f"config key continuation.eigenvalues = {k['eigenvalues']} must be <= n_patches - 2 = "
                              f"{st.N - 2}")
        if k["eig_method"] == "slepc":
            from hmmpar.couplers.continuation import slepc_available
            if not slepc_available():
                raise ConfigError("config key continuation.eig_method = 'slepc': slepc4py does not import here "
                                  "(Debian: python3-slepc4py libslepc-real-dev); use 'auto' or 'arpack'")
        self.steps = k["points"]
        self.dt = 1.0
        self.cont = None
        self.folds: list[dict] = []

    @property
    def n_steps(self) -> int:
        """Most branch points (``continuation.points``), or the points taken once done."""
        return len(self.cont.Xs) if self.cont is not None and self.cont.done else self.steps

    @property
    def sim_time(self) -> float:
        r"""The parameter :math:`\lambda` of the last branch point."""
        return float(self.cont.Xs[-1][-1]) if self.cont is not None and self.cont.Xs else 0.0

    def more_steps(self, done: int) -> bool:
        return not self.cont.done

    def _continuation(self):
        """The continuation over the farmed patch-dynamics slope (every rank the same)."""
        from hmmpar.couplers.continuation import Continuation
        from hmmpar.couplers.patches import slope
        k = self.config.section("continuation")
        st, w = self.model.stepper, self.wrapped

        def F(U: np.ndarray, p: float) -> np.ndarray:
            st.reaction_parameter = float(p)  # every rank sets it before the farm runs the patches
            return slope(w, np.asarray(U, dtype=float)[None], 0.0)[0]
        return Continuation(F, self.model.U0[0], k["lam0"], k["dlam"], k["ds"], points=k["points"],
                            lam_range=(k["lam_min"], k["lam_max"]), after_fold=k["after_fold"] or None,
                            eigenvalues=k["eigenvalues"], eig_method=k["eig_method"], fd_step=k["fd_step"],
                            atol=k["atol"], max_halvings=k["max_halvings"], refine=k["refine"])

    def initialize(self) -> None:
        self._wrap()
        self.cont = self._continuation()
        self.step = 0

    def advance(self, step: int) -> int:
        """One branch point; after the last, the folds (their refinement is more micro work)."""
        from hmmpar.couplers.continuation import CoarseNewtonError, ContinuationError
        before = self.wrapped.submitted
        try:
            self.cont.advance()
            if self.cont.done:
                self.folds = self.cont.branch().folds
        except (ContinuationError, CoarseNewtonError) as exc:
            raise HmmparError(f"continuation: {exc}") from None
        self.step = step + 1
        return self.wrapped.submitted - before

    def checkpoint_data(self) -> dict:
        c = self.cont.state()
        E = c["eigenvalues"]
        fields = {"branch": self._block(c["X"]), "branch_eigenvalues": self._block(np.concatenate([E.real, E.imag], axis=1)),
                  "branch_counts": self._block(np.column_stack([c["iterations"], c["evaluations"]]))}
        return {"fields": fields, "attrs": {**self._counts(), "ds": c["step"], "fold_at": c["fold_at"],
                                            "evaluations": c["count"]}}

    def load_checkpoint(self, reader: CheckpointReader) -> None:
        self._wrap()
        m = reader.rows("fields", "branch")
        X = reader.read_block("fields", "branch", 0, m)
        if X.ndim != 2 or X.shape[1] != self.model.stepper.N + 1:
            raise CheckpointError(f"checkpoint {reader.path} holds a branch of {X.shape[-1] - 1} unknowns, this "
                                  f"config {self.model.stepper.N} (patches.n_patches)")
        E = reader.read_block("fields", "branch_eigenvalues", 0, m)
        k = E.shape[1] // 2
        counts = reader.read_block("fields", "branch_counts", 0, m)
        a = reader.attrs
        self.cont = self._continuation()
        self.cont.restore({"X": X, "iterations": counts[:, 0], "evaluations": counts[:, 1],
                           "eigenvalues": E[:, :k] + 1j * E[:, k:], "step": float(a["ds"]), "fold_at": int(a["fold_at"]),
                           "count": int(a["evaluations"])})
        self._restore_counts(reader)
        if self.cont.done:  # restarted at the end: the folds again (collective micro work)
            self.folds = self.cont.branch().folds

    def finalize(self, outdir: Path) -> dict | None:
        if self.comm.rank != 0:
            return None
        c = self.cont
        lam = np.array([x[-1] for x in c.Xs])
        U = np.array([x[:-1] for x in c.Xs])
        E = np.array(c.eig) if c.eig else np.empty((len(lam), 0), dtype=complex)
        summary = {"app": self.name, "method": self.method, "model": self.config["model.name"],
                   "branch_points": len(lam), "F_evaluations": int(c.Fc.count),
                   "micro_unit_steps": int(self.wrapped.unit_steps), "eigensolver": c.eig_method if c.eigenvalues else "",
                   **self.model.info, "folds": []}
        for f in self.folds:
            entry = {"lam_c": f["lam"], "lam_c_branch_points": f["lam_coarse"], "eig_zero_lam": f["eig_zero_lam"]}
            if "eig_at_fold" in f:
                entry["leading_eigenvalue_at_fold"] = float(np.real(f["eig_at_fold"][0]))
            if "lam_c_hom" in self.model.info:
                entry["rel_error_vs_hom"] = f["lam"] / self.model.info["lam_c_hom"] - 1.0
            summary["folds"].append(entry)
        if summary["folds"]:
            summary["lam_c"] = summary["folds"][0]["lam_c"]
        summary["leading_eigenvalue_sign_changes"] = int(np.sum(np.diff(np.sign(E[:, 0].real)) != 0)) if E.size else 0
        import h5py
        with h5py.File(outdir / "couplers.h5", "w") as f:
            f["lambda"], f["U"], f["eigenvalues"] = lam, U, E
            f["x"] = self.model.stepper.centres
            f.attrs["method"] = self.method
        if self.config["output.plots"]:
            self._plot_branch(outdir / "couplers.png", lam, U, E)
        return summary

    def _plot_branch(self, path: Path, lam: np.ndarray, U: np.ndarray, E: np.ndarray) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        umax = np.abs(U).max(axis=1)
        ax1.plot(lam, umax, "-", color="0.6")
        if E.size:
            stable = E[:, 0].real < 0
            ax1.plot(lam[stable], umax[stable], "o", label="leading eigenvalue < 0 (stable)")
            ax1.plot(lam[~stable], umax[~stable], "s", mfc="none", label="leading eigenvalue > 0")
            ax2.plot(lam, E[:, 0].real, "o-")
            ax2.axhline(0, color="k", lw=0.5)
        ref = self.model.info.get("lam_c_hom")
        for ax in (ax1, ax2):
            if ref is not None:
                ax.axvline(ref, color="k", ls=":", label=r"$3.5138\,a^*$ (homogenized fold)" if ax is ax1 else None)
            for f in self.folds:
                ax.axvline(f["lam"], color="r", lw=0.8, label="fold found" if ax is ax1 else None)
        ax1.set(xlabel=r"$\lambda$", ylabel=r"$\max_i |U_i|$", title="steady branch (patches)")
        ax1.legend(fontsize=8)
        ax2.set(xlabel=r"$\lambda$", ylabel="leading eigenvalue of the coarse Jacobian")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

