"""Pareto k̂: does a set of importance weights have a finite variance?"""

from __future__ import annotations

import numpy as np


def pareto_khat(log_w: np.ndarray) -> float:
    """Shape k̂ of a generalised Pareto fitted to the largest importance weights.

    As in PSIS (Vehtari, Simpson, Gelman, Yao & Gabry 2024): the tail is the largest
    ``min(N/5, 3√N)`` weights, fitted by Zhang & Stephens (2009) with the weak prior of the
    ``loo`` package. k̂ < 0.5: finite variance; 0.5–0.7: usable, slower; > 0.7: unreliable.

    Parameters
    ----------
    log_w : (N,) array
        Log importance weights.

    Returns
    -------
    float
        k̂ (inf when the largest weights overflow: the heaviest tail).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> round(pareto_khat(np.log(rng.pareto(1 / 0.8, 20000) + 1)), 1)  # true shape 0.8
    0.8
    """
    x = np.sort(np.asarray(log_w, dtype=float)[np.isfinite(log_w)])
    n = len(x)
    m = int(min(0.2 * n, 3 * np.sqrt(n)))
    if m < 5:
        return float("nan")
    with np.errstate(over="ignore"):
        tail = np.expm1(x[-m:] - x[-m - 1])  # exceedances over the threshold, in its units
    if not np.isfinite(tail[-1]):
        return float("inf")  # weights spanning > e^709: as heavy a tail as can be
    if tail[-1] <= 0:
        return 0.0  # all tail weights equal: no tail at all
    return _gpd_shape(tail)


def _gpd_shape(ary: np.ndarray) -> float:
    """Zhang–Stephens profile-posterior estimate of the GPD shape (``ary`` sorted, > 0)."""
    n = len(ary)
    m_est = 30 + int(n**0.5)
    b = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
    b /= 3 * ary[int(n / 4 + 0.5) - 1]
    b += 1 / ary[-1]
    k = np.log1p(-b[:, None] * ary).mean(axis=1)
    len_scale = n * (np.log(-(b / k)) - k - 1)
    weights = 1 / np.exp(len_scale - len_scale[:, None]).sum(axis=1)
    keep = weights >= 10 * np.finfo(float).eps
    weights, b = weights[keep] / weights[keep].sum(), b[keep]
    k_post = np.log1p(-np.sum(b * weights) * ary).mean()
    return float((n * k_post + 10 * 0.5) / (n + 10))  # weak prior towards 0.5
