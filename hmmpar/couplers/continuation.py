r"""Coarse bifurcation analysis: Newton--Krylov fixed points, pseudo-arclength continuation and
the leading eigenvalues of the coarse Jacobian, all matrix-free on a residual
:math:`F(U, \lambda)`.

Everything here sees the model only through a numpy callable ``F(U, lam) -> ndarray`` (a
coarse time derivative or a coarse-map residual, e.g. a patch-dynamics evaluation,
:func:`hmmpar.couplers.patches.steady_residual`). The solves are replicated: every MPI rank
runs the same deterministic solve on ``PETSc.COMM_SELF`` (``F`` itself may farm its work
over the ranks, as long as it returns the same array on every rank).

*Which residual for patch dynamics.* The time derivative (the chord slope after healing,
:func:`~hmmpar.couplers.patches.steady_residual`), not the fixed-point residual
:math:`U - \Phi_T(U)` of the coarse time-:math:`T` map (Shroff & Keller, SIAM J. Numer. Anal.
30 (1993) 1099--1120; Kevrekidis et al. 2003): one gap-tooth step carries the healing change of
the patch averages, a fixed amount per lift, which shifts the fixed points of :math:`\Phi_\tau`
by that amount over :math:`\tau \sim \varepsilon^2` (0.18 in rate units against terms of
1.45 on the Bratu validation case), and diluting it with a long :math:`T`
needs buffers :math:`\propto\sqrt T`. The slope's zeros are the patch-dynamics steady states
and the eigenvalues of its Jacobian cross zero at a fold (those of :math:`\Phi_T` would cross
one); its rounding noise (a one-step difference over :math:`\delta t`) sets ``fd_step``.

*Coarse Newton--Krylov* (Kelley, Kevrekidis & Qiao 2004; Kevrekidis et al., *Equation-free,
coarse-grained multiscale computation*, Commun. Math. Sci. 1 (2003) 715--762): PETSc SNES
(``newtonls``) whose Jacobian is a python shell matrix applying the forward difference

.. math::

    J v \approx \frac{F(U + \delta v, \lambda) - F(U, \lambda)}{\delta},\qquad
    \delta = \eta\,\frac{1 + \lVert U\rVert}{\lVert v\rVert},

(``fd_step`` :math:`\eta`: the square root of the relative noise of :math:`F`, ``1e-7`` for
a residual accurate to rounding; a patch-dynamics chord slope is noisier), and the Newton
steps are solved by unpreconditioned GMRES (full, restart = the dimension).

*Pseudo-arclength continuation* (Keller, *Numerical solution of bifurcation and nonlinear
eigenvalue problems*, in Applications of Bifurcation Theory, Academic Press 1977,
359--384): a branch point :math:`X = (U, \lambda)` solves the bordered system

.. math::

    F(U, \lambda) = 0,\qquad \langle \dot X, X - X_k\rangle - \Delta s = 0,

with the secant tangent :math:`\dot X = (X_k - X_{k-1})/\lVert X_k - X_{k-1}\rVert`, the
predictor :math:`X_k + \Delta s\,\dot X` and the inner product :math:`\langle X, Y\rangle =
U\cdot V/n + \lambda\mu` (``n`` unknowns: the mean square of :math:`U`, so the arclength
does not grow with the grid). The bordered Jacobian is again differenced (its last row is
linear, so exact), by the same SNES. Through a fold the bordered Jacobian stays regular while
:math:`\partial F/\partial U` is singular. A failed corrector halves :math:`\Delta s` (at most
``max_halvings`` times, then :class:`ContinuationError`); ``grow`` lengthens it after easy steps.

*Folds.* :math:`d\lambda/ds` changes sign between two branch points. A first estimate is
the vertex of the parabola :math:`\lambda(s)` through the three points around the largest (or
smallest) :math:`\lambda`; it is refined by bordered solves on four hyperplanes
:math:`\langle t, X - X_j\rangle = \sigma` spaced :math:`h \ll \Delta s` around the estimate
(centred secant :math:`t`), re-centred on the extremum of the cubic :math:`\lambda(\sigma)`
through them until it lies inside (error :math:`O(h^4)` in :math:`\lambda_c`,
:math:`O(h^3)` in the fold's location); the fold point itself is solved once more and its
leading eigenvalue reported (zero up to the differencing error).

*Eigenvalues* of :math:`\partial F/\partial U` at each branch point, of the same differenced
operator: SLEPc's Krylov--Schur (Hernandez, Roman & Vidal, ACM TOMS 31 (2005) 351--362) on a
shell matrix if ``slepc4py`` imports, else ARPACK's implicitly restarted Arnoldi (Lehoucq,
Sorensen & Yang 1998) through :func:`scipy.sparse.linalg.eigs`, both for the largest real
part and both from the same starting vector (deterministic). At a simple fold the leading
eigenvalue crosses zero.

For the 1D Bratu problem :math:`u'' + \lambda e^u = 0`, :math:`u(0) = u(1) = 0`, the branch is
:math:`u = -2\ln\bigl(\cosh(\theta(x - 1/2)/2)/\cosh(\theta/4)\bigr)`,
:math:`\lambda = \theta^2/(2\cosh^2(\theta/4))`, with the fold at
:math:`\theta/4 = \coth(\theta/4)`: :math:`\lambda_c = 3.513830719` (:func:`bratu_fold`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from petsc4py import PETSc

__all__ = ["Branch", "Continuation", "ContinuationError", "CoarseNewtonError", "NewtonResult", "bratu_fold", "coarse_newton",
           "leading_eigenvalues", "pseudo_arclength", "slepc_available"]

Residual = Callable[[np.ndarray, float], np.ndarray]

_REASONS = {getattr(PETSc.SNES.ConvergedReason, k): k for k in dir(PETSc.SNES.ConvergedReason) if k.isupper()}


class CoarseNewtonError(RuntimeError):
    """The coarse Newton--Krylov solve did not converge (one line: lambda, iterations, residual
    norm, PETSc's converged reason)."""


class ContinuationError(RuntimeError):
    """Pseudo-arclength continuation could not take a step (one line: where and why)."""


def bratu_fold() -> tuple[float, float]:
    r"""``(lambda_c, theta_c)`` of the 1D Bratu problem on (0, 1) (module docstring), by Newton on
    :math:`t = \coth t`, :math:`t = \theta/4`: :math:`\lambda_c = 8t^2/\cosh^2 t`."""
    t = 1.2
    for _ in range(50):
        g = t - 1.0 / math.tanh(t)
        t -= g / (1.0 + 1.0 / math.sinh(t) ** 2)
    return 8.0 * t * t / math.cosh(t) ** 2, 4.0 * t


def slepc_available() -> bool:
    """Whether ``slepc4py`` imports (Debian: python3-slepc4py with libslepc-real-dev)."""
    try:
        from slepc4py import SLEPc  # noqa: F401
    except ImportError:
        return False
    return True


class _Counted:
    """``F`` with a count of its evaluations and a finiteness check."""

    def __init__(self, F: Residual) -> None:
        self.F, self.count = F, 0

    def __call__(self, U: np.ndarray, lam: float) -> np.ndarray:
        self.count += 1
        r = np.asarray(self.F(U, float(lam)), dtype=float)
        if r.shape != U.shape:
            raise ValueError(f"F must return an array of the shape of U {U.shape}, got {r.shape}")
        return r


class _Differenced:
    """Shell-matrix context: ``J v = (G(X + d v) - G(X)) / d`` around the base point set by
    :meth:`set_base` (``G`` maps a 1D array to one of the same length)."""

    def __init__(self, G: Callable[[np.ndarray], np.ndarray], fd_step: float) -> None:
        self.G, self.fd_step = G, fd_step
        self.X: np.ndarray | None = None
        self.GX: np.ndarray | None = None

    def set_base(self, X: np.ndarray, GX: np.ndarray | None = None) -> None:
        self.X = X.copy()
        self.GX = self.G(self.X) if GX is None else GX.copy()

    def apply(self, v: np.ndarray) -> np.ndarray:
        nv = float(np.linalg.norm(v))
        if nv == 0.0:
            return np.zeros_like(v)
        d = self.fd_step * (1.0 + float(np.linalg.norm(self.X))) / nv
        return (self.G(self.X + d * v) - self.GX) / d

    def mult(self, mat, x, y) -> None:  # petsc4py shell-matrix protocol
        y.setArray(self.apply(x.getArray(readonly=True)))


def _shell(ctx: _Differenced, n: int) -> PETSc.Mat:
    J = PETSc.Mat().createPython([n, n], ctx, comm=PETSc.COMM_SELF)
    J.setUp()
    return J


@dataclass
class NewtonResult:
    """A coarse Newton solve: the solution ``U``, Newton ``iterations``, final residual 2-norm
    ``residual``, total GMRES iterations ``linear_iterations``, F evaluations ``evaluations``."""

    U: np.ndarray
    iterations: int
    residual: float
    linear_iterations: int
    evaluations: int


def _snes_solve(G: Callable[[np.ndarray], np.ndarray], X0: np.ndarray, fd_step: float, atol: float, rtol: float,
                max_it: int, what: str) -> tuple[np.ndarray, int, float, int]:
    """Newton--Krylov (SNES newtonls, differenced shell Jacobian, GMRES without preconditioner)
    on ``G(X) = 0`` from ``X0``; raises :class:`CoarseNewtonError` naming ``what``."""
    n = X0.size
    cache: dict[str, np.ndarray] = {}
    nonfinite = [0]

    def G_cached(X: np.ndarray) -> np.ndarray:
        r = G(X)
        cache["X"], cache["G"] = X.copy(), r.copy()
        return r

    ctx = _Differenced(G, fd_step)

    def function(snes, x, f) -> None:
        r = G_cached(x.getArray(readonly=True))
        if not np.all(np.isfinite(r)):
            nonfinite[0] += 1
            r = np.full_like(r, np.inf)  # SNES stops with DIVERGED_FNORM_NAN / line search failure
        f.setArray(r)

    def jacobian(snes, x, J, P) -> None:
        X = x.getArray(readonly=True)
        if "X" in cache and np.array_equal(cache["X"], X):
            ctx.set_base(X, cache["G"])
        else:
            ctx.set_base(X)
        J.assemble()

    J = _shell(ctx, n)
    snes = PETSc.SNES().create(comm=PETSc.COMM_SELF)
    f = PETSc.Vec().createSeq(n, comm=PETSc.COMM_SELF)
    x = PETSc.Vec().createSeq(n, comm=PETSc.COMM_SELF)
    try:
        snes.setType("newtonls")  # with its default backtracking line search
        snes.setFunction(function, f)
        snes.setJacobian(jacobian, J, J)
        snes.setTolerances(rtol=rtol, atol=atol, stol=0.0, max_it=max_it)
        ksp = snes.getKSP()
        ksp.setType("gmres")
        ksp.setGMRESRestart(n + 1)
        ksp.getPC().setType("none")
        ksp.setTolerances(rtol=1e-6, atol=0.1 * atol, max_it=2 * n + 10)
        x.setArray(X0)
        snes.solve(None, x)
        reason, its = snes.getConvergedReason(), snes.getIterationNumber()
        norm, lits = float(snes.getFunctionNorm()), snes.getLinearSolveIterations()
        X = x.getArray().copy()
    finally:
        for o in (snes, J, f, x):
            o.destroy()
    if reason <= 0:
        raise CoarseNewtonError(f"coarse Newton did not converge at {what}: {its} iterations, residual norm "
                                f"{norm:.3e} (atol {atol:g}), PETSc reason {_REASONS.get(reason, reason)}"
                                + (f"; F was not finite at {nonfinite[0]} trial points" if nonfinite[0] else ""))
    return X, its, norm, lits


def _check_common(fd_step: float, atol: float, rtol: float, max_it: int) -> None:
    if not (math.isfinite(fd_step) and 0 < fd_step < 1):
        raise ValueError(f"fd_step must be in (0, 1), got {fd_step!r}")
    if not (math.isfinite(atol) and atol > 0):
        raise ValueError(f"atol must be a positive finite number, got {atol!r}")
    if not (math.isfinite(rtol) and 0 <= rtol < 1):
        raise ValueError(f"rtol must be in [0, 1), got {rtol!r}")
    if int(max_it) != max_it or max_it < 1:
        raise ValueError(f"max_it must be a whole number >= 1, got {max_it!r}")


def _as_state(U0: np.ndarray) -> np.ndarray:
    U = np.array(U0, dtype=float).ravel()
    if U.size < 1 or not np.all(np.isfinite(U)):
        raise ValueError(f"U0 must be a non-empty finite array, got shape {np.shape(U0)}")
    return U


def coarse_newton(F: Residual, U0: np.ndarray, lam: float, *, fd_step: float = 1e-7, atol: float = 1e-9,
                  rtol: float = 0.0, max_it: int = 30) -> NewtonResult:
    r"""A coarse fixed point :math:`F(U, \lambda) = 0` at fixed ``lam`` by matrix-free
    Newton--Krylov from ``U0`` (module docstring).

    Parameters
    ----------
    F
        The residual ``F(U, lam) -> ndarray`` (1D ``U``).
    fd_step
        Relative differencing step :math:`\eta` of the Jacobian-vector products.
    atol, rtol
        SNES converges when :math:`\lVert F\rVert_2 \le \max(\mathrm{atol},
        \mathrm{rtol}\lVert F(U_0)\rVert_2)`.
    max_it
        Newton iterations at most.

    Raises
    ------
    CoarseNewtonError
        One line with ``lam``, the iterations, the residual norm and PETSc's converged reason.
    """
    _check_common(fd_step, atol, rtol, max_it)
    if not math.isfinite(lam):
        raise ValueError(f"lam must be a finite number, got {lam!r}")
    Fc = _Counted(F)
    U, its, norm, lits = _snes_solve(lambda X: Fc(X, lam), _as_state(U0), fd_step, atol, rtol, int(max_it),
                                     f"lambda = {lam:.8g}")
    return NewtonResult(U, its, norm, lits, Fc.count)


def leading_eigenvalues(F: Residual, U: np.ndarray, lam: float, k: int = 1, *, method: str = "auto",
                        fd_step: float = 1e-7, tol: float = 1e-10, FU: np.ndarray | None = None) -> np.ndarray:
    r"""The ``k`` eigenvalues of largest real part of :math:`\partial F/\partial U` at
    ``(U, lam)``, of the differenced Jacobian-vector product (module docstring), sorted by
    decreasing real part (complex array).

    Parameters
    ----------
    method
        ``"slepc"`` (Krylov--Schur, slepc4py), ``"arpack"`` (scipy's ``eigs``) or ``"auto"``
        (SLEPc if it imports).
    tol
        Relative residual tolerance of the eigensolver.
    FU
        :math:`F(U, \lambda)` if known (saves an evaluation).
    """
    if method not in ("auto", "slepc", "arpack"):
        raise ValueError(f"method must be 'auto', 'slepc' or 'arpack', got {method!r}")
    U = _as_state(U)
    n = U.size
    if int(k) != k or not 1 <= k <= n - 2:
        raise ValueError(f"k must be a whole number in [1, n - 2] = [1, {n - 2}], got {k!r}")
    if not (math.isfinite(fd_step) and 0 < fd_step < 1):
        raise ValueError(f"fd_step must be in (0, 1), got {fd_step!r}")
    if method == "auto":
        method = "slepc" if slepc_available() else "arpack"
    ctx = _Differenced(lambda X: np.asarray(F(X, lam), dtype=float), fd_step)
    ctx.set_base(U, FU)
    v0 = np.ones(n) / math.sqrt(n)
    if method == "arpack":
        from scipy.sparse.linalg import LinearOperator, eigs
        op = LinearOperator((n, n), matvec=lambda v: ctx.apply(np.asarray(v, dtype=float).ravel()), dtype=float)
        vals = eigs(op, k=int(k), which="LR", v0=v0, tol=tol, ncv=min(n, max(2 * int(k) + 1, 20)),
                    return_eigenvectors=False)
    else:
        from slepc4py import SLEPc
        J = _shell(ctx, n)
        eps = SLEPc.EPS().create(comm=PETSc.COMM_SELF)
        try:
            eps.setOperators(J)
            eps.setProblemType(SLEPc.EPS.ProblemType.NHEP)
            eps.setType(SLEPc.EPS.Type.KRYLOVSCHUR)
            eps.setWhichEigenpairs(SLEPc.EPS.Which.LARGEST_REAL)
            eps.setDimensions(nev=int(k), ncv=min(n, max(2 * int(k) + 1, 20)))
            eps.setTolerances(tol=tol, max_it=1000)
            start = J.createVecRight()
            start.setArray(v0)
            eps.setInitialSpace([start])
            eps.solve()
            nconv = eps.getConverged()
            if nconv < k:
                raise RuntimeError(f"SLEPc found {nconv} of {k} eigenvalues at lambda = {lam:.8g}")
            vals = np.array([eps.getEigenvalue(i) for i in range(nconv)], dtype=complex)
            start.destroy()
        finally:
            eps.destroy()
            J.destroy()
    vals = np.asarray(vals, dtype=complex)
    return vals[np.lexsort((-vals.imag, -vals.real))][:int(k)]


@dataclass
class Branch:
    r"""A continued branch: per point the parameter ``lam``, the state ``U`` ``(m, n)``, the
    arclength ``s``, the norms ``norm_max`` (max norm) and ``norm_l2`` (RMS), the leading
    eigenvalues ``eigenvalues`` ``(m, k)`` of :math:`\partial F/\partial U` (empty if not
    computed), Newton ``iterations`` and ``evaluations`` of F per point (eigenvalues included);
    the folds found, ``folds``: dicts with ``lam`` (the parabola's vertex), ``s``,
    ``index`` (the branch point with the extreme lambda), ``eig_zero_s`` and ``eig_zero_lam``
    (where the leading eigenvalue's real part, linearly interpolated, crosses zero; None if it
    does not between neighbouring points), ``lam_coarse`` (the vertex through the branch points
    alone); if refined, ``refine_h`` (the refinement's spacing), ``U`` and ``lam_at_vertex``
    (the branch point solved at the vertex) and ``eig_at_fold`` (its leading eigenvalues);
    ``method`` the eigensolver
    used; ``total_evaluations`` all F evaluations (fold refinement included)."""

    lam: np.ndarray
    U: np.ndarray
    s: np.ndarray
    norm_max: np.ndarray
    norm_l2: np.ndarray
    eigenvalues: np.ndarray
    iterations: np.ndarray
    evaluations: np.ndarray
    folds: list[dict] = field(default_factory=list)
    method: str = ""
    total_evaluations: int = 0

    @property
    def lam_c(self) -> float:
        """The first fold's lambda (``ValueError`` if none was found)."""
        if not self.folds:
            raise ValueError("the branch has no fold")
        return float(self.folds[0]["lam"])


def _fold(s: np.ndarray, lam: np.ndarray, eig: np.ndarray | None, j: int) -> dict:
    """The fold around branch point ``j`` (an extreme of ``lam``): parabola vertex through
    ``j - 1, j, j + 1`` and the zero of the leading eigenvalue's real part nearby."""
    c2, c1, c0 = np.polyfit(s[j - 1:j + 2] - s[j], lam[j - 1:j + 2], 2)
    ds = -c1 / (2 * c2)
    out = {"lam": float(c0 - c1 * c1 / (4 * c2)), "s": float(s[j] + ds), "index": int(j), "eig_zero_s": None,
           "eig_zero_lam": None}
    if eig is not None and eig.size:
        mu = eig[:, 0].real
        for i in range(max(j - 2, 0), min(j + 2, len(mu) - 1)):
            if mu[i] == 0.0 or mu[i] * mu[i + 1] < 0:
                sz = s[i] + (s[i + 1] - s[i]) * mu[i] / (mu[i] - mu[i + 1])
                out["eig_zero_s"] = float(sz)
                out["eig_zero_lam"] = float(np.polyval([c2, c1, c0], sz - s[j]))
                break
    return out


def _refine(Xs: list[np.ndarray], j: int, w: np.ndarray, sigma: float, h: float, bordered, fd_step: float,
            atol: float, rtol: float, max_it: int, eig: Callable[[np.ndarray], np.ndarray] | None) -> dict:
    r"""Bordered solves near the fold around branch point ``j``: on the hyperplanes
    :math:`\langle t, X - X_j\rangle = \sigma^* + h\{-\tfrac32, -\tfrac12, \tfrac12,
    \tfrac32\}` with the centred secant :math:`t \propto X_{j+1} - X_{j-1}` (a good local
    parameter through the fold), and :math:`\sigma^*` moved to the extremum of the cubic
    :math:`\lambda(\sigma)` through them until it lies within :math:`h` of the centre (at most 4
    rounds); the extremum's value is the refined :math:`\lambda_c` (error :math:`O(h^4)` in the
    value, :math:`O(h^3)` in the location, ``h`` small; a parabola through three points would
    misplace the fold by :math:`O(h^2)`).
    Then one more solve at the vertex: the fold point ``U`` and, if ``eig``, its leading
    eigenvalues ``eig_at_fold``."""
    Xj = Xs[j]
    d = Xs[j + 1] - Xs[j - 1]
    t = d / math.sqrt(float(np.dot(w * d, d)))

    def solve(sg: float) -> np.ndarray:
        try:
            return _snes_solve(bordered(Xj, t, sg), Xj + sg * t, fd_step, atol, rtol, max_it,
                               f"the fold refinement near branch point {j} (sigma = {sg:.4g})")[0]
        except CoarseNewtonError as err:
            raise ContinuationError(str(err)) from None

    centre = float(sigma)
    for _ in range(4):
        x = h * np.array([-1.5, -0.5, 0.5, 1.5])
        cubic = np.polyfit(x, [solve(centre + xi)[-1] for xi in x], 3)
        crit = np.roots(np.polyder(cubic))
        crit = crit[np.isreal(crit)].real
        if crit.size:
            vertex = float(crit[np.argmin(np.abs(crit))])
        else:  # no real extremum of the cubic: the parabola's vertex
            c2, c1, _ = np.polyfit(x, np.polyval(cubic, x), 2)
            vertex = -c1 / (2 * c2)
        lam_c = float(np.polyval(cubic, vertex))
        centre += vertex
        if abs(vertex) <= h:
            break
    X = solve(centre)
    out = {"lam": lam_c, "refine_h": float(h), "U": X[:-1], "lam_at_vertex": float(X[-1])}
    if eig is not None:
        out["eig_at_fold"] = eig(X)
    return out


def pseudo_arclength(F: Residual, U0: np.ndarray, lam0: float, dlam: float, ds: float, *, points: int = 40,
                     lam_range: tuple[float, float] = (-math.inf, math.inf), ds_max: float | None = None,
                     grow: float = 1.5, easy: int = 3, max_halvings: int = 5, after_fold: int | None = None,
                     eigenvalues: int = 1, eig_method: str = "auto", fd_step: float = 1e-7, atol: float = 1e-9,
                     rtol: float = 0.0, max_it: int = 10, refine: float = 0.05) -> Branch:
    r"""Keller's pseudo-arclength continuation of :math:`F(U, \lambda) = 0` (module docstring).

    The first two points are natural-parameter Newton solves at ``lam0`` (from ``U0``) and
    ``lam0 + dlam`` (from the first); then secant predictor, bordered corrector.

    Parameters
    ----------
    F
        The residual ``F(U, lam) -> ndarray``.
    U0
        Initial guess at ``lam0``.
    dlam
        Parameter step to the second point (its sign sets the direction).
    ds
        Initial arclength step (in the norm :math:`\sqrt{U\cdot U/n + \lambda^2}`).
    points
        Branch points at most (the two starting ones included).
    lam_range
        Stop when :math:`\lambda` leaves it.
    ds_max
        Largest step (default ``4 ds``); after a corrector needing at most ``easy`` Newton
        iterations the step grows by ``grow``.
    max_halvings
        Halvings of ``ds`` after failed correctors before :class:`ContinuationError`.
    after_fold
        Stop this many points after the first fold (``None``: do not).
    eigenvalues
        How many leading eigenvalues of :math:`\partial F/\partial U` to compute per point
        (0: none).
    eig_method
        ``"auto"``, ``"slepc"`` or ``"arpack"`` (:func:`leading_eigenvalues`).
    fd_step, atol, rtol, max_it
        As in :func:`coarse_newton`, for every corrector.
    refine
        If nonzero, each fold's :math:`\lambda_c` is refined by rounds of four bordered solves
        spaced ``refine`` times the branch spacing (:func:`_refine`); 0 keeps the parabola
        through the branch points (``lam_coarse`` holds it either way).

    Raises
    ------
    ContinuationError
        One line: the branch point and lambda where the step failed, the last ds and the
        Newton failure.
    """
    c = Continuation(F, U0, lam0, dlam, ds, points=points, lam_range=lam_range, ds_max=ds_max, grow=grow,
                     easy=easy, max_halvings=max_halvings, after_fold=after_fold, eigenvalues=eigenvalues,
                     eig_method=eig_method, fd_step=fd_step, atol=atol, rtol=rtol, max_it=max_it, refine=refine)
    while not c.done:
        c.advance()
    return c.branch()


class Continuation:
    """:func:`pseudo_arclength` one branch point at a time, for a driver that checkpoints
    between points (the ``couplers`` app): :meth:`advance` adds a point (the first two calls
    the two starting Newton solves), :attr:`done` says when the branch ends, :meth:`branch`
    finds and refines the folds. :meth:`state` / :meth:`restore` save and reload everything a
    continuation carries, so a restarted one takes the same path bitwise. Parameters and
    errors as :func:`pseudo_arclength`."""

    def __init__(self, F: Residual, U0: np.ndarray, lam0: float, dlam: float, ds: float, *, points: int = 40,
                 lam_range: tuple[float, float] = (-math.inf, math.inf), ds_max: float | None = None,
                 grow: float = 1.5, easy: int = 3, max_halvings: int = 5, after_fold: int | None = None,
                 eigenvalues: int = 1, eig_method: str = "auto", fd_step: float = 1e-7, atol: float = 1e-9,
                 rtol: float = 0.0, max_it: int = 10, refine: float = 0.05) -> None:
        _check_common(fd_step, atol, rtol, max_it)
        U0 = _as_state(U0)
        n = U0.size
        for name, val in (("lam0", lam0), ("dlam", dlam), ("ds", ds)):
            if not math.isfinite(val):
                raise ValueError(f"{name} must be a finite number, got {val!r}")
        if dlam == 0:
            raise ValueError("dlam must be nonzero")
        if not ds > 0:
            raise ValueError(f"ds must be positive, got {ds!r}")
        if int(points) != points or points < 3:
            raise ValueError(f"points must be a whole number >= 3, got {points!r}")
        if int(max_halvings) != max_halvings or max_halvings < 0:
            raise ValueError(f"max_halvings must be a whole number >= 0, got {max_halvings!r}")
        if eig_method not in ("auto", "slepc", "arpack"):
            raise ValueError(f"eig_method must be 'auto', 'slepc' or 'arpack', got {eig_method!r}")
        if int(easy) != easy or easy < 0:
            raise ValueError(f"easy must be a whole number >= 0, got {easy!r}")
        if not (math.isfinite(refine) and 0 <= refine < 1):
            raise ValueError(f"refine must be in [0, 1), got {refine!r}")
        if not (math.isfinite(grow) and grow >= 1):
            raise ValueError(f"grow must be a finite number >= 1, got {grow!r}")
        if int(eigenvalues) != eigenvalues or not 0 <= eigenvalues <= n - 2:
            raise ValueError(f"eigenvalues must be a whole number in [0, n - 2] = [0, {n - 2}], got {eigenvalues!r}")
        if after_fold is not None and (int(after_fold) != after_fold or after_fold < 1):
            raise ValueError(f"after_fold must be None or a whole number >= 1, got {after_fold!r}")
        lo, hi = lam_range
        if not lo < hi or not lo <= lam0 <= hi:
            raise ValueError(f"lam_range must be (lo, hi) with lo < hi containing lam0 = {lam0!r}, got {lam_range!r}")
        if eigenvalues and eig_method == "auto":
            eig_method = "slepc" if slepc_available() else "arpack"
        self.n, self.U0, self.lam0, self.dlam = n, U0, float(lam0), float(dlam)
        self.points, self.lam_range, self.after_fold = int(points), (lo, hi), after_fold
        self.ds_max = 4.0 * ds if ds_max is None else float(ds_max)
        self.grow, self.easy, self.max_halvings = float(grow), int(easy), int(max_halvings)
        self.eigenvalues, self.eig_method = int(eigenvalues), eig_method
        self.fd_step, self.atol, self.rtol, self.max_it, self.refine = fd_step, atol, rtol, int(max_it), refine
        self.Fc = _Counted(F)
        self.w = np.append(np.full(n, 1.0 / n), 1.0)           # the inner product's weights
        #: branch points (U, lam), Newton iterations and F evaluations per point, eigenvalues
        self.Xs: list[np.ndarray] = []
        self.its: list[int] = []
        self.evals: list[int] = []
        self.eig: list[np.ndarray] = []
        #: the arclength step of the next corrector
        self.step = float(ds)
        self.fold_at: int | None = None
        #: the branch has ended (``points`` reached, lambda left ``lam_range``, ``after_fold``)
        self.done = False

    def _eig_at(self, X: np.ndarray) -> np.ndarray:
        n = self.n
        return leading_eigenvalues(self.Fc, X[:n], X[n], self.eigenvalues, method=self.eig_method,
                                   fd_step=self.fd_step)

    def _record(self, X: np.ndarray, it: int, before: int) -> None:
        self.Xs.append(X)
        self.its.append(it)
        if self.eigenvalues:
            self.eig.append(self._eig_at(X))
        self.evals.append(self.Fc.count - before)

    def _bordered(self, Xk: np.ndarray, tangent: np.ndarray, step: float) -> Callable[[np.ndarray], np.ndarray]:
        n, w, Fc = self.n, self.w, self.Fc
        return lambda X: np.append(Fc(X[:n], X[n]), np.dot(w * tangent, X - Xk) - step)

    def advance(self) -> None:
        """Add one branch point (collective if ``F`` is); sets :attr:`done` at the end."""
        if self.done:
            raise ValueError("the continuation is done")
        n, Xs, Fc = self.n, self.Xs, self.Fc
        if len(Xs) < 2:  # the two natural-parameter starting points
            lam = self.lam0 if not Xs else self.lam0 + self.dlam
            before = Fc.count
            start = self.U0 if not Xs else Xs[-1][:n]
            try:
                U, it, _, _ = _snes_solve(lambda X, lam=lam: Fc(X, lam), start, self.fd_step, self.atol, self.rtol,
                                          self.max_it, f"lambda = {lam:.8g}")
            except CoarseNewtonError as err:
                raise ContinuationError(f"continuation failed at its start point {len(Xs)} (lambda = {lam:.8g}): "
                                        f"{err}") from None
            self._record(np.append(U, lam), it, before)
            return
        Xk, Xprev = Xs[-1], Xs[-2]
        d = Xk - Xprev
        tangent = d / math.sqrt(float(np.dot(self.w * d, d)))
        before = Fc.count
        step = self.step
        for halving in range(self.max_halvings + 1):
            try:
                X, it, _, _ = _snes_solve(self._bordered(Xk, tangent, step), Xk + step * tangent, self.fd_step,
                                          self.atol, self.rtol, self.max_it,
                                          f"branch point {len(Xs)} (ds = {step:.4g})")
                break
            except CoarseNewtonError as err:
                last = err
                step *= 0.5
        else:
            raise ContinuationError(f"continuation failed after branch point {len(Xs) - 1} (lambda = {Xk[n]:.8g}): "
                                    f"the corrector did not converge with ds halved {self.max_halvings} times to "
                                    f"{2 * step:.4g}; last: {last}")
        self._record(X, it, before)
        self.step = min(step * self.grow, self.ds_max) if it <= self.easy else step
        lam = np.array([x[n] for x in Xs])
        m = len(lam)
        if self.fold_at is None and m >= 3 and (lam[-1] - lam[-2]) * (lam[-2] - lam[-3]) < 0:
            self.fold_at = m - 2
        self.done = self._ended()

    def _ended(self) -> bool:
        """``points`` reached, lambda out of ``lam_range``, or ``after_fold`` points past the fold."""
        m = len(self.Xs)
        if m < 3:
            return False
        lo, hi = self.lam_range
        return bool(m >= self.points or not lo <= self.Xs[-1][self.n] <= hi
                    or (self.fold_at is not None and self.after_fold is not None
                        and m - 1 - self.fold_at >= self.after_fold))

    def state(self) -> dict[str, np.ndarray | float | int]:
        """Everything :meth:`restore` needs (arrays and numbers; the eigenvalues complex)."""
        k = self.eigenvalues
        return {"X": np.array(self.Xs).reshape(len(self.Xs), self.n + 1), "iterations": np.array(self.its, dtype=np.int64),
                "evaluations": np.array(self.evals, dtype=np.int64),
                "eigenvalues": np.array(self.eig, dtype=complex).reshape(len(self.Xs), k) if k else
                np.empty((len(self.Xs), 0), dtype=complex),
                "step": self.step, "fold_at": -1 if self.fold_at is None else self.fold_at,
                "count": self.Fc.count}

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state`'s output."""
        X = np.asarray(state["X"], dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n + 1:
            raise ValueError(f"the saved branch has shape {X.shape}, this continuation {self.n + 1} unknowns")
        self.Xs = [x.copy() for x in X]
        self.its = [int(i) for i in state["iterations"]]
        self.evals = [int(e) for e in state["evaluations"]]
        self.eig = [np.asarray(e, dtype=complex) for e in state["eigenvalues"]] if self.eigenvalues else []
        self.step = float(state["step"])
        self.fold_at = None if int(state["fold_at"]) < 0 else int(state["fold_at"])
        self.Fc.count = int(state["count"])
        # the stopping rules are this continuation's (a restart may allow more points)
        self.done = self._ended()

    def branch(self) -> Branch:
        """The branch so far, its folds found and (``refine``) refined (collective if ``F`` is)."""
        n, Xs, w = self.n, self.Xs, self.w
        lam = np.array([x[n] for x in Xs])
        Us = np.array([x[:n] for x in Xs])
        s = np.concatenate([[0.0], np.cumsum([math.sqrt(float(np.dot(w * (b - a), b - a)))
                                              for a, b in zip(Xs[:-1], Xs[1:])])])
        E = np.array(self.eig) if self.eigenvalues else np.empty((len(Xs), 0), dtype=complex)
        folds: list[dict] = []
        for j in range(1, len(lam) - 1):
            if (lam[j + 1] - lam[j]) * (lam[j] - lam[j - 1]) < 0:
                fold = _fold(s, lam, E if self.eigenvalues else None, j)
                fold["lam_coarse"] = fold["lam"]
                if self.refine:
                    fold.update(_refine(Xs, j, w, fold["s"] - s[j],
                                        self.refine * min(s[j + 1] - s[j], s[j] - s[j - 1]), self._bordered,
                                        self.fd_step, self.atol, self.rtol, self.max_it,
                                        self._eig_at if self.eigenvalues else None))
                folds.append(fold)
        return Branch(lam, Us, s, np.abs(Us).max(axis=1), np.sqrt((Us ** 2).mean(axis=1)), E, np.array(self.its),
                      np.array(self.evals), folds, self.eig_method if self.eigenvalues else "", self.Fc.count)
