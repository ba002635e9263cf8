"""Fast Ornstein-Uhlenbeck micro model, sampled exactly, in numba.

The micro process is dY = -(Y - x)/eps dt + sqrt(2/eps) dW with x frozen. Its
transition over a micro step dtau is exact (no discretisation error):

    Y_{k+1} = x + (Y_k - x) a + sqrt(1 - a^2) xi_k,   a = exp(-dtau/eps),  xi_k ~ N(0, 1),

and its invariant law is N(x, 1), so E[Y^2] = x^2 + 1.
"""
from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def second_moment_time_average(x: float, a: float, n_burn: int, xi: np.ndarray) -> float:
    """Time average of Y_k^2 over the samples after ``n_burn`` steps, starting at Y_0 = x.

    ``xi`` holds the standard normals, one per micro step.
    """
    b = math.sqrt(1.0 - a * a)
    y = x
    acc = 0.0
    n = xi.shape[0]
    for k in range(n):
        y = x + (y - x) * a + b * xi[k]
        if k >= n_burn:
            acc += y * y
    return acc / (n - n_burn)


def integrated_autocorrelation_y2(x: float, a: float) -> float:
    r"""Integrated autocorrelation time of Y_k^2 for the exact OU chain at stationarity.

    With rho_k = (2 a^{2k} + 4 x^2 a^k) / (2 + 4 x^2),
    tau = 1 + 2 sum_{k>=1} rho_k = 1 + 2 (2 a^2/(1-a^2) + 4 x^2 a/(1-a)) / (2 + 4 x^2).
    The variance of an M-sample time average of Y^2 is then (2 + 4 x^2) tau / M.
    """
    return 1.0 + 2.0 * (2.0 * a * a / (1.0 - a * a) + 4.0 * x * x * a / (1.0 - a)) / (2.0 + 4.0 * x * x)
