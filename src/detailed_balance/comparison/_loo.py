"""PSIS-LOO with per-attempt pointwise values.

The fit stores one value per observed cell, ``count * log p``. Attempts in the same cell are
exchangeable, so the value of one attempt is ``log p`` and leaving one attempt out has the same
PSIS estimate for every attempt of the cell: we run PSIS once per cell and weight the result by
the cell's count (no replication).
"""

from __future__ import annotations

import numpy as np

PARETO_K_BAD = 0.7


def weighted_loo(loglik_cell: np.ndarray, cell_count: np.ndarray) -> dict:
    """PSIS-LOO over attempts from per-cell values ``count * log p`` (chains, draws, cells).

    Returns ``elpd``, ``se``, ``p_loo``, per-cell per-attempt ``elpd_i`` and ``pareto_k``,
    ``n_attempts``, ``k_max`` and ``bad_attempts`` (attempts whose cell has k > 0.7).

    Parameters
    ----------
    loglik_cell : (chains, draws, cells) array
        ``count * log p`` of each cell per draw.
    cell_count : (cells,) array
        Attempts in each cell.

    Returns
    -------
    dict
        The keys above.
    """
    import xarray as xr

    from .. import _arviz

    w = np.asarray(cell_count, dtype=float)
    per_attempt = np.asarray(loglik_cell, dtype=float) / w  # log p of one attempt of each cell
    ds = xr.Dataset({"y": (("chain", "draw", "cell"), per_attempt)})
    # ArviZ wants a posterior for the relative efficiency; the pointwise values serve
    obj = _arviz.make({"posterior": ds.rename({"y": "loglik"}), "log_likelihood": ds})
    res = _arviz.loo(obj, "y")
    e = res["elpd_i"]
    k = res["pareto_k"]
    flat = per_attempt.reshape(-1, per_attempt.shape[-1])
    from scipy.special import logsumexp

    lppd = logsumexp(flat, axis=0) - np.log(flat.shape[0])
    n = w.sum()
    return {
        "elpd": float(np.sum(w * e)),
        "se": weighted_se(e, w),
        "p_loo": float(np.sum(w * (lppd - e))),
        "elpd_i": e,
        "pareto_k": k,
        "weights": w,
        "n_attempts": int(n),
        "k_max": float(np.max(k)),
        "bad_attempts": int(np.sum(w[k > PARETO_K_BAD])),
    }


def weighted_se(values: np.ndarray, weights: np.ndarray) -> float:
    """Standard error of a sum of pointwise values, each counted ``weight`` times.

    ArviZ's ``sqrt(n var(elpd_i))`` over attempts, without replicating cells.

    Parameters
    ----------
    values : ndarray
        One value per cell (e.g. an elpd difference per observed count cell).
    weights : ndarray
        How many attempts each cell stands for.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> round(weighted_se(np.array([0.0, 1.0]), np.array([2.0, 2.0])), 6)
    1.0
    """
    n = weights.sum()
    mean = np.sum(weights * values) / n
    return float(np.sqrt(n * np.sum(weights * (values - mean) ** 2) / n))


def fit_loo(idata) -> dict:
    """:func:`weighted_loo` of a fit, from its stored log-likelihood and cell counts.

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit written by :func:`detailed_balance.fit`.

    Returns
    -------
    dict
        As :func:`weighted_loo`.

    Raises
    ------
    FitError
        When the fit has a single draw (a MAP fit).
    """
    from .. import _arviz
    from ..errors import FitError

    ll = np.asarray(_arviz.group(idata, "log_likelihood")["y"].values, dtype=float)  # f32 stored
    if ll.shape[0] * ll.shape[1] < 2:  # a MAP fit: PSIS has no draws to reweight (an IndexError)
        attrs = _arviz.attrs(idata)
        raise FitError(
            f"PSIS-LOO needs posterior draws: the {attrs.get('model', '?')} fit is a "
            f"{attrs.get('method', '?')} fit of {ll.shape[0] * ll.shape[1]} draw (fit with "
            "method='nuts' to compare models)"
        )
    cell_count = np.asarray(_arviz.group(idata, "observed_data")["y"].values)
    return weighted_loo(ll, cell_count)
