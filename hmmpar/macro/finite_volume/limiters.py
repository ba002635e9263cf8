r"""Slope limiting: the minmod limiter and limited one-sided differences.

.. math::

    \operatorname{minmod}(a, b) = \tfrac12\big(\operatorname{sgn} a + \operatorname{sgn} b\big)\,
    \min(|a|, |b|),

zero where :math:`a` and :math:`b` differ in sign (an extremum: no slope, so no new
extremum is created), else the smaller in magnitude. It is the limiter of
Nessyahu & Tadmor (J. Comput. Phys. 87 (1990) 408, eq. (2.9)) and of van Leer's MUSCL.
"""
from __future__ import annotations

import numpy as np

__all__ = ["minmod", "limited_differences"]


def minmod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise minmod of two arrays (a NaN propagates)."""
    return 0.5 * (np.sign(a) + np.sign(b)) * np.minimum(np.abs(a), np.abs(b))


def _along(axis: int, ndim: int, sl: slice) -> tuple:
    index = [slice(None)] * ndim
    index[axis] = sl
    return tuple(index)


def limited_differences(q: np.ndarray, axis: int) -> np.ndarray:
    r"""Undivided limited slopes :math:`q'_i = \operatorname{minmod}(q_i - q_{i-1}, q_{i+1} - q_i)`
    along array axis ``axis`` (componentwise on the other axes).

    The first and last entries along ``axis`` have only one neighbour and get slope 0;
    callers use only entries with both neighbours in the array.
    """
    d = np.diff(q, axis=axis)
    s = np.zeros_like(q)
    n = q.ndim
    s[_along(axis, n, slice(1, -1))] = minmod(d[_along(axis, n, slice(None, -1))], d[_along(axis, n, slice(1, None))])
    return s
