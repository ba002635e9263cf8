r"""Predicted stability of projective integration, checked before any micro work.

Linearised about a state, an inner forward Euler step of size :math:`h` multiplies the
mode of eigenvalue :math:`\lambda` of the Jacobian by :math:`\rho = 1 + h\lambda`, and an
outer projective step with ``(k, M)`` by :math:`\sigma(\rho) = \rho^k((M + 1)\rho - M)`
(Gear & Kevrekidis 2003; telescopic levels compose, :func:`~.projective.telescopic_amplification`).
The outer step spans :math:`\Delta = (k + 1 + M)h` per level.

Two verdicts, computed from the Jacobian's eigenvalues at the initial state:

* **unstable (k, M)** (a warning: the run may still be what the user wants, e.g. a short
  run): a mode that the true dynamics do not grow, :math:`\mathrm{Re}\,\lambda \le 0`, is
  amplified, :math:`|\sigma| > 1`; the message names the mode, :math:`|\sigma|` and the
  growth over the run;
* **no spectral gap** (an error): a fast mode, :math:`|\lambda|\Delta > 1`, that rotates
  rather than decays, :math:`|\mathrm{Im}\,\lambda| > |\mathrm{Re}\,\lambda|`. The inner steps
  cannot damp it and extrapolating over it is meaningless at any ``(k, M)``; the method needs
  fast modes that relax (the HMM methods average rotating ones instead).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .projective import telescopic_amplification


def jacobian_eigenvalues(rhs: Callable, t: float, u: np.ndarray, rel: float = 1e-7) -> np.ndarray:
    r"""Eigenvalues of :math:`\partial F/\partial u` of ``rhs(t, u, out)`` at ``u`` by central
    differences (step ``rel * max(1, |u_j|)``); for the small ODE systems the check is for."""
    u = np.asarray(u, dtype=float)
    n = u.size
    J = np.empty((n, n))
    fp, fm = np.empty(n), np.empty(n)
    for j in range(n):
        d = rel * max(1.0, abs(u[j]))
        up, um = u.copy(), u.copy()
        up[j] += d
        um[j] -= d
        rhs(float(t), up, fp)
        rhs(float(t), um, fm)
        J[:, j] = (fp - fm) / (2 * d)
    return np.linalg.eigvals(J)


def no_gap_mode(eigs: np.ndarray, step: float) -> complex | None:
    """The first fast mode (``|lambda| step > 1``) that rotates faster than it decays, or None."""
    eigs = np.asarray(eigs, dtype=complex)
    bad = (np.abs(eigs) * step > 1.0) & (np.abs(eigs.imag) > np.abs(eigs.real))
    return complex(eigs[np.flatnonzero(bad)[0]]) if bad.any() else None


def fit_amplification(rho: np.ndarray, k: int, M: float, window: int) -> np.ndarray:
    r"""The amplification of projective Euler with the least-squares slope over the last
    ``window`` of its :math:`k + 1` inner steps (:func:`~.ssa_stepper.projective_fit_step`):
    the restrictions are :math:`\rho^p`, :math:`p = k + 2 - w, \dots, k + 1`, and
    :math:`\sigma = \rho^{k+1} + M\sum_i \tilde w_i\rho^{p_i}` with the step-free weights
    :math:`\tilde w_i = h w_i` of :func:`~.ssa_stepper.fit_weights` (``window = 2`` is
    :func:`~.projective.amplification`)."""
    from .ssa_stepper import fit_weights
    rho = np.asarray(rho, dtype=complex)
    w = fit_weights(int(window), 1.0)
    powers = np.arange(k + 2 - window, k + 2)
    return rho ** (k + 1) + M * sum(wi * rho ** int(p) for wi, p in zip(w, powers))


def worst_mode(eigs: np.ndarray, h: float, levels: list[tuple[int, float]], *, inner: str = "euler",
               window: int = 0) -> tuple[complex, float] | None:
    r"""The non-growing mode (:math:`\mathrm{Re}\,\lambda \le 0`) with the largest projective
    amplification :math:`|\sigma| > 1` under ``levels`` (innermost first), or None if every
    such mode is damped.

    ``inner``: the inner step's factor :math:`\rho`, ``"euler"`` :math:`1 + h\lambda` (an
    ODE stepper's forward Euler) or ``"exact"`` :math:`e^{h\lambda}` (a stepper that follows
    the flow, e.g. an SSA ensemble's mean under linear rate equations). ``window >= 2``: one
    level whose slope is the least-squares fit over that many values
    (:func:`fit_amplification`)."""
    eigs = np.asarray(eigs, dtype=complex)
    if inner not in ("euler", "exact"):
        raise ValueError(f"inner must be 'euler' or 'exact', got {inner!r}")
    rho = 1.0 + h * eigs if inner == "euler" else np.exp(h * eigs)
    if window >= 2:
        (k, M), = levels
        sigma = np.abs(fit_amplification(rho, k, M, window))
    else:
        sigma = np.abs(telescopic_amplification(rho, levels))
    bad = (eigs.real <= 0) & (sigma > 1.0 + 1e-12)
    if not bad.any():
        return None
    i = np.flatnonzero(bad)[np.argmax(sigma[bad])]
    return complex(eigs[i]), float(sigma[i])
