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


def worst_mode(eigs: np.ndarray, h: float, levels: list[tuple[int, float]]) -> tuple[complex, float] | None:
    r"""The non-growing mode (:math:`\mathrm{Re}\,\lambda \le 0`) with the largest projective
    amplification :math:`|\sigma| > 1` under ``levels`` (innermost first), or None if every
    such mode is damped."""
    eigs = np.asarray(eigs, dtype=complex)
    sigma = np.abs(telescopic_amplification(1.0 + h * eigs, levels))
    bad = (eigs.real <= 0) & (sigma > 1.0 + 1e-12)
    if not bad.any():
        return None
    i = np.flatnonzero(bad)[np.argmax(sigma[bad])]
    return complex(eigs[i]), float(sigma[i])
