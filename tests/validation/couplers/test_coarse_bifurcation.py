"""Coarse bifurcation analysis (hmmpar.couplers.continuation): the fold of the 1D Bratu problem
u_t = (a(x/eps) u_x)_x + lambda e^u on (0, 1), u = 0 at both ends.

Exact reference: for a = 1 the steady branch is u = -2 ln(cosh(theta (x - 1/2) / 2) /
cosh(theta / 4)), lambda = theta^2 / (2 cosh^2(theta / 4)); it turns at theta/4 = coth(theta/4),
lambda_c = 3.513830719 (bratu_fold). Homogenized, a(x/eps) -> a* = sqrt(1.1^2 - 1) =
0.4582575695 (harmonic mean of a(y) = 1.1 + sin 2 pi y), and a* u'' + lambda e^u = 0 is the
same problem in lambda / a*: lambda_c = 3.513830719 a*.

Error budget of the fold, plain finite differences (3-point Laplacian, N cells, Dx = 1/N):
  * macro grid, exactly known at leading order: the truncation error tau = Dx^2/12 u'''' shifts
    the fold by  d lambda = -<phi, tau(u_c)> / <phi, e^{u_c}>  (phi = du/dtheta at theta_c,
    the null vector), C Dx^2 with C = -1.8281 (quadrature below): -7.141e-3 at N = 16,
    -1.785e-3 at N = 32. The next term is O(Dx^4), relative to the first about
    (theta_c Dx)^2 / 30 = 3e-3 at N = 16, so the measured shift must match C Dx^2 to 2 %.
  * fold location: the parabola through three bordered solves spaced 0.05 of the branch
    spacing around the vertex, error O(h^3) ~ 1e-7.

With patches (PatchDiffusion, boundary="dirichlet", quadratic lifting, N = 15 interior patches,
Dx = 1/16, eps = 1/512, h = 2 eps, H_b = 4 eps, 16 fine cells per period, tau = eps^2 / 2):
the patch-averaged scheme is the 3-point scheme of a*_h u'' + lambda e^u on box averages, so
  * known terms: the same macro shift C Dx^2 (-2.03e-3 relative) and the fine grid's
    a*_h = a* (1 - 1.65e-3) (midpoint rule of 1/a at the faces): lambda_c^FD(16) a*_h / a*
    relative to the homogenized value, -3.68e-3;
  * unknown terms, bounded by an estimate each: box average of e^u over the patch
    (h theta_c)^2 / 24 = 1.5e-5; homogenization (theta_c eps)^2 = 8.8e-5; healing remnant
    e^{-9} = 1.2e-4; buffer leakage 2e-6 (measured in test_patch_dynamics); Newton residual
    atol 1e-5 over |dF/dU| ~ 1: 1e-5. Sum 2.3e-4 of lambda_c.
The leading eigenvalue of the differenced coarse Jacobian at the fold vanishes up to the
differencing error, (fd_step (1 + |U|) / 2) * lambda_c max e^U (F_UU = lambda e^U), and up to the
error of the vertex; bound: 4 times the first.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from hmmpar.couplers.continuation import (CoarseNewtonError, ContinuationError, bratu_fold, coarse_newton,
                                          leading_eigenvalues, pseudo_arclength, slepc_available)
from hmmpar.couplers.patches import PatchDiffusion, bratu, steady_residual

LAM_C = 3.513830719
A_STAR = math.sqrt(1.1 ** 2 - 1.0)   # 0.4582575695
EPS, N_PATCH, PPP = 1.0 / 512, 15, 16


def a(y):
    return 1.1 + np.sin(2 * np.pi * y)


def fd_bratu(N: int):
    """u'' + lambda e^u on N cells, the N - 1 interior values."""
    Dx = 1.0 / N

    def F(U, lam):
        e = np.concatenate([[0.0], U, [0.0]])
        with np.errstate(over="ignore"):
            return (e[2:] - 2 * e[1:-1] + e[:-2]) / Dx ** 2 + lam * np.exp(U)
    return F


def fd_jacobian(U: np.ndarray, lam: float, N: int) -> np.ndarray:
    n = U.size
    return (np.diag(-2.0 + (lam / N ** 2) * np.exp(U)) + np.eye(n, k=1) + np.eye(n, k=-1)) * N ** 2


def fold_shift_coefficient() -> float:
    """C of lambda_c(Dx) - lambda_c = C Dx^2 (module docstring), by the midpoint rule."""
    lc, th = bratu_fold()
    z = (np.arange(100000) + 0.5) / 100000 - 0.5
    u = -2 * np.log(np.cosh(th * z / 2) / math.cosh(th / 4))
    up = -th * np.tanh(th * z / 2)
    phi = -z * np.tanh(th * z / 2) + 0.5 * math.tanh(th / 4)
    u4 = -lc * np.exp(u) * (up ** 2 - lc * np.exp(u))
    return float(-np.mean(phi * u4) / np.mean(phi * np.exp(u)) / 12)


@pytest.fixture(scope="module")
def fd_branches():
    out = {}
    for N in (16, 32):
        out[N] = pseudo_arclength(fd_bratu(N), np.zeros(N - 1), 0.5, 0.25, 0.3, points=40, after_fold=3, atol=1e-10)
    return out


@pytest.fixture(scope="module")
def patch_branch():
    st = PatchDiffusion(a, EPS, N_PATCH, 2 * EPS, 4 * EPS, 0.5 * EPS ** 2, PPP, 2, boundary="dirichlet",
                        reaction=bratu)
    t0 = time.perf_counter()
    br = pseudo_arclength(steady_residual(st), np.zeros(N_PATCH), 0.4 * A_STAR, 0.4 * A_STAR, 0.4, points=30,
                          after_fold=2, atol=1e-5, fd_step=1e-4)
    return st, br, time.perf_counter() - t0


def test_bratu_fold_constant():
    lc, th = bratu_fold()
    assert lc == pytest.approx(LAM_C, abs=1e-9)
    assert th ** 2 / (2 * math.cosh(th / 4) ** 2) == pytest.approx(lc, rel=1e-14)


def test_fd_fold_converges_at_second_order(fd_branches):
    C = fold_shift_coefficient()
    errs = {N: br.lam_c - LAM_C for N, br in fd_branches.items()}
    est = {N: C / N ** 2 for N in errs}
    print(f"C = {C:.5f}; " + "; ".join(f"N = {N}: lam_c = {fd_branches[N].lam_c:.9f}, error {errs[N]:+.4e}, "
                                       f"estimate {est[N]:+.4e}, F evaluations {fd_branches[N].total_evaluations}"
                                       for N in errs))
    # measured: C = -1.82810; errors -7.1496e-3 (estimate -7.1410e-3), -1.7858e-3 (-1.7853e-3)
    for N in errs:
        assert abs(errs[N] - est[N]) <= 0.02 * abs(est[N]) + 1e-6, (N, errs[N], est[N])
    assert errs[16] / errs[32] == pytest.approx(4.0, rel=0.02)
    richardson = (4 * fd_branches[32].lam_c - fd_branches[16].lam_c) / 3
    assert abs(richardson - LAM_C) < 0.02 * abs(est[32]), richardson


def test_leading_eigenvalue_changes_sign_at_the_fold(fd_branches):
    for N, br in fd_branches.items():
        fold = br.folds[0]
        j = fold["index"]
        mu = br.eigenvalues[:, 0].real
        assert np.all(mu[:j] < 0) and np.all(mu[j + 1:] > 0), mu        # lower branch stable, upper unstable
        assert np.all(br.eigenvalues[:, 0].imag == 0)
        bound = 4 * 1e-7 * (1 + np.linalg.norm(fold["U"])) / 2 * LAM_C * math.exp(fold["U"].max())
        print(f"N = {N}: leading eigenvalue {mu[j - 1]:+.4f}, {mu[j]:+.4f}, {mu[j + 1]:+.4f} around the fold, "
              f"{fold['eig_at_fold'][0].real:+.2e} at it (bound {bound:.1e}); zero of the interpolated eigenvalue "
              f"at lambda = {fold['eig_zero_lam']:.6f}")
        assert abs(fold["eig_at_fold"][0]) <= bound
        assert abs(fold["lam_at_vertex"] - fold["lam"]) < 1e-6


@pytest.mark.skipif(not slepc_available(), reason="slepc4py not installed (Debian python3-slepc4py)")
def test_slepc_and_arpack_agree_with_the_exact_jacobian(fd_branches):
    """Both eigensolvers on the differenced operator against the dense eigenvalues of the exact
    tridiagonal Jacobian; the differencing error is fd_step (1 + |U|) / 2 * lambda max e^U."""
    N, br = 16, fd_branches[16]
    F = fd_bratu(N)
    for i in (0, br.folds[0]["index"], len(br.lam) - 1):
        U, lam = br.U[i], br.lam[i]
        exact = np.sort(np.linalg.eigvalsh(fd_jacobian(U, lam, N)))[::-1][:2]
        s = leading_eigenvalues(F, U, lam, 2, method="slepc")
        r = leading_eigenvalues(F, U, lam, 2, method="arpack")
        bound = 1e-7 * (1 + np.linalg.norm(U)) / 2 * lam * math.exp(U.max()) + 1e-9 * N ** 2
        print(f"lambda = {lam:.4f}: exact {exact}, SLEPc {s.real}, ARPACK {r.real}, bound {bound:.1e}")
        np.testing.assert_allclose(s.real, exact, rtol=0, atol=bound)
        np.testing.assert_allclose(r.real, exact, rtol=0, atol=bound)
        np.testing.assert_allclose(s, r, rtol=0, atol=bound)


def test_patch_continuation_finds_the_homogenized_fold(patch_branch):
    st, br, seconds = patch_branch
    target = LAM_C * A_STAR
    C = fold_shift_coefficient()
    a_h = 1.0 / np.mean(1.0 / a(np.arange(PPP) / PPP))                  # faces sit at y = j / PPP
    known = (LAM_C + C / (N_PATCH + 1) ** 2) * a_h
    h = st.patch_width
    bound = target * ((h * 4.8) ** 2 / 24 + (4.8 * EPS) ** 2 + math.exp(-9) + 2e-6 + 1e-5)
    fold = br.folds[0]
    print(f"patches: lam_c = {br.lam_c:.7f}, {br.lam_c / target - 1:+.3e} relative to 3.513830719 a* = {target:.7f}; "
          f"known terms {known / target - 1:+.3e}, bound {bound / target:.1e}; domain fraction "
          f"{st.domain_fraction:.4f}; {len(br.lam)} branch points, {br.total_evaluations} F evaluations, "
          f"{seconds:.1f} s; leading eigenvalue at the fold {fold['eig_at_fold'][0].real:+.2e}")
    # measured: lam_c = 1.6043223, -3.675e-3 (known terms -3.682e-3), 921 evaluations
    assert st.domain_fraction == pytest.approx(15 * 10 / 512)       # 0.293 of the domain simulated
    assert abs(br.lam_c / target - 1) < 0.01
    assert abs(br.lam_c - known) <= bound, (br.lam_c, known, bound)
    # the arithmetic mean 1.1 would put the fold at 3.865: rejected
    assert abs(br.lam_c - LAM_C * 1.1) > 100 * bound


def test_patch_leading_eigenvalue_crosses_zero_at_the_fold(patch_branch):
    st, br, _ = patch_branch
    fold = br.folds[0]
    j = fold["index"]
    mu = br.eigenvalues[:, 0].real
    print(f"patch leading eigenvalues along the branch: {np.round(mu, 4)}; lambda {np.round(br.lam, 4)}")
    assert np.all(mu[:j] < 0) and np.all(mu[j + 1:] > 0), mu
    bound = 4 * 1e-4 * (1 + np.linalg.norm(fold["U"])) / 2 * br.lam_c * math.exp(fold["U"].max())
    assert abs(fold["eig_at_fold"][0]) <= bound, (fold["eig_at_fold"], bound)
    assert abs(fold["eig_at_fold"][0]) < 0.01 * min(abs(mu[j - 1]), abs(mu[j + 1]))


def test_snes_divergence_is_one_line():
    with pytest.raises(CoarseNewtonError, match=r"^coarse Newton did not converge at lambda = 2: \d+ iterations, "
                                                r"residual norm .* PETSc reason DIVERGED_") as err:
        coarse_newton(lambda U, lam: U ** 2 + lam, np.ones(4), 2.0)   # U^2 = -2 has no real root
    assert "\n" not in str(err.value)


def test_continuation_past_the_end_of_a_branch_is_one_line():
    """The branch U = sqrt(1 - lam) ends at lam = 1 (F is not finite beyond): after the allowed
    halvings of ds the continuation names the last branch point and PETSc's reason."""
    def F(U, lam):
        with np.errstate(invalid="ignore"):
            return U - np.sqrt(1.0 - lam) * np.ones_like(U) if lam <= 1 else np.full_like(U, np.nan)
    with pytest.raises(ContinuationError, match=r"^continuation failed after branch point \d+ \(lambda = "
                                                r"0\.9\d*\): the corrector did not converge with ds halved 2 times"
                                                r" .*PETSc reason DIVERGED_.*; F was not finite at \d+ trial "
                                                r"points$") as err:
        pseudo_arclength(F, np.ones(3), 0.0, 0.1, 0.2, max_halvings=2, points=50, eigenvalues=0)
    assert "\n" not in str(err.value)


def test_continuation_without_a_start_solution_is_one_line():
    with pytest.raises(ContinuationError, match=r"^continuation failed at its start point 0 \(lambda = 1\): "
                                                r"coarse Newton did not converge") as err:
        pseudo_arclength(lambda U, lam: U ** 2 + lam, np.ones(3), 1.0, 0.1, 0.1, eigenvalues=0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw, match", [
    (dict(ds=0.0), r"^ds must be positive"),
    (dict(dlam=0.0), r"^dlam must be nonzero"),
    (dict(max_halvings=-1), r"^max_halvings must be a whole number >= 0"),
    (dict(fd_step=2.0), r"^fd_step must be in \(0, 1\)"),
    (dict(lam_range=(1.0, 2.0)), r"^lam_range must be \(lo, hi\)"),
    (dict(eigenvalues=20), r"^eigenvalues must be a whole number in \[0, n - 2\]"),
])
def test_bad_arguments_are_refused(kw, match):
    args = dict(F=fd_bratu(8), U0=np.zeros(7), lam0=0.5, dlam=0.1, ds=0.1)
    args.update(kw)
    with pytest.raises(ValueError, match=match) as err:
        pseudo_arclength(**args)
    assert "\n" not in str(err.value)


def test_dirichlet_patches_refuse_patches_outside_the_domain():
    with pytest.raises(ValueError, match=r"^patch_width \+ 2 buffer_width must be <= 2 Dx") as err:
        PatchDiffusion(a, EPS, 127, 2 * EPS, 4 * EPS, 0.5 * EPS ** 2, PPP, 2, boundary="dirichlet", reaction=bratu)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"^boundary must be 'periodic' or 'dirichlet'"):
        PatchDiffusion(a, EPS, 15, 2 * EPS, 4 * EPS, 0.5 * EPS ** 2, PPP, 2, boundary="neumann")


def test_dirichlet_gap_tooth_in_a_homogeneous_medium_is_the_three_point_scheme():
    """a = 1, quadratic lifting, no reaction, buffer wider than the steps per lift (as in
    test_patch_dynamics): one gap-tooth step is exactly U + tau (U_{i+1} - 2 U_i + U_{i-1}) / Dx^2
    with the boundary values U_0 = U_{N+1} = 0."""
    eps, n = 1.0 / 64, 7
    tau = 9 * eps ** 2 / (4 * math.pi ** 2)
    one = lambda y: np.ones_like(y)   # noqa: E731
    probe = PatchDiffusion(one, eps, n, eps, 2 * eps, tau, 8, 2, boundary="dirichlet")
    st = PatchDiffusion(one, eps, n, eps, (probe.steps_per_lift + 1) * eps / 8, tau, 8, 2, boundary="dirichlet")
    np.testing.assert_allclose(st.centres, np.arange(1, 8) / 8)
    U = np.sin(math.pi * st.centres)[None] + 0.3 * st.centres[None]
    S = st.lift(U, 0.0)
    np.testing.assert_allclose(st.restrict(S), U, rtol=0, atol=1e-14)     # restrict o lift = identity
    st.evolve(S, 0.0, st.steps_per_lift)
    e = np.hstack([[[0.0]], U, [[0.0]]])
    np.testing.assert_allclose(st.restrict(S), U + tau * (e[:, 2:] - 2 * U + e[:, :-2]) * 64, rtol=0, atol=1e-13)


def test_dirichlet_quartic_lifting_is_fourth_order_for_an_odd_profile():
    """sin(pi x) is odd about both ends, so the ghost averages U_{-m} = -U_m are exact and the
    quartic lifting keeps its order up to the ends: the error of the lifted cell averages (against
    the exact ones) drops by about 2^5 per halving of Dx (interpolation error O(Dx^5) at fixed
    h / Dx would be 2^5; here the lifted region is fixed, 2^4; measured 18.1). For a profile whose u''
    does not vanish at the ends the odd reflection has a kink there (measured for x(1 - x): a
    ratio of 2.0), which this test would catch."""
    errs = []
    for n in (7, 15):
        eps = 1.0 / 256
        st = PatchDiffusion(lambda y: np.ones_like(y), eps, n, 8 * eps, 4 * eps, 0.5 * eps ** 2, 8, 4,
                            boundary="dirichlet")
        avg = lambda lo, hi: (np.cos(math.pi * lo) - np.cos(math.pi * hi)) / (math.pi * (hi - lo))  # noqa: E731
        U = avg(st.centres - st.patch_width / 2, st.centres + st.patch_width / 2)
        S = st.lift(U[None], 0.0)[0]
        half = st.nf * st.dx / 2
        faces = st.centres[:, None] - half + st.dx * np.arange(st.nf + 1)[None, :]
        errs.append(np.abs(S[:, 1:-1] - avg(faces[:, :-1], faces[:, 1:])).max())
    print(f"quartic Dirichlet lifting errors {errs[0]:.2e}, {errs[1]:.2e}: ratio {errs[0] / errs[1]:.1f}")
    assert errs[0] / errs[1] > 12
