"""Posterior summaries of joint fits with 94% HDIs: field correlations, departures, the slope of
log beta against log T."""

from __future__ import annotations

import numpy as np

from .._arviz import HDI_PROB
from ._fit import JointFit


def _interval(draws) -> dict:
    from .._arviz import hdi

    x = np.asarray(draws, dtype=float).ravel()
    lo, hi = hdi(x, HDI_PROB)
    return {"mean": float(np.mean(x)), "hdi_low": float(lo), "hdi_high": float(hi)}


def _flat(x) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape((-1,) + x.shape[2:])


def field_correlations(fit: JointFit) -> list[dict]:
    """Per pair of datasets: correlation of their fields over the states identified in both.

    Pearson correlation of ``d{j}_phi`` and ``d{k}_phi`` per posterior draw (posterior noise
    attenuates it: even identical landscapes give less than 1), with its 94% HDI.

    Parameters
    ----------
    fit : JointFit
        A joint fit.

    Returns
    -------
    list of dict
        One per pair of datasets: the correlation's posterior summary and 94% HDI.
    """
    joint, out = fit.joint, []
    for j in range(len(joint.datasets)):
        for k in range(j + 1, len(joint.datasets)):
            pos_j = {s: i for i, s in enumerate(joint.index[j])}
            common = [
                (pos_j[u], i)
                for i, u in enumerate(joint.index[k])
                if u in pos_j and joint.identified[j][pos_j[u]] and joint.identified[k][i]
            ]
            row = {"a": fit.labels[j], "b": fit.labels[k], "n_common": len(common)}
            if len(common) >= 3:
                ij, ik = np.array(common).T
                x = _flat(fit.posterior[f"d{j}_phi"])[:, ij]
                y = _flat(fit.posterior[f"d{k}_phi"])[:, ik]
                x = x - x.mean(1, keepdims=True)
                y = y - y.mean(1, keepdims=True)
                r = np.sum(x * y, 1) / np.sqrt(np.sum(x * x, 1) * np.sum(y * y, 1))
                row.update(_interval(r))
            out.append(row)
    return out


def departures(fit: JointFit, top: int = 10) -> list[dict]:
    """Per dataset of a pooled fit: states whose departure delta_k has a 94% HDI excluding 0.

    Parameters
    ----------
    fit : JointFit
        A ``pooled`` fit.
    top : int
        At most this many states per dataset.

    Returns
    -------
    list of dict
        One per departing state.
    """
    from .._arviz import hdi

    out = []
    for k, idx in enumerate(fit.joint.index):
        d = _flat(fit.posterior[f"d{k}_delta"])
        lo, hi = hdi(d, HDI_PROB)
        mean = d.mean(0)
        ident = fit.joint.identified[k]
        away = np.flatnonzero(((lo > 0) | (hi < 0)) & ident)
        order = away[np.argsort(-np.abs(mean[away]))][:top]
        out.append(
            {
                "dataset": fit.labels[k],
                "n_states": int(len(idx)),
                "n_identified": int(ident.sum()),
                "n_away_from_zero": int(len(away)),
                "largest": [
                    {
                        "state": fit.joint.states[idx[i]],
                        "mean": float(mean[i]),
                        "hdi_low": float(lo[i]),
                        "hdi_high": float(hi[i]),
                    }
                    for i in order
                ],
            }
        )
    return out


def temperature_slope(beta_draws: np.ndarray, temperatures) -> dict | None:
    """Slope of log beta_k against log T_k per draw (least squares), with its 94% HDI.

    ``beta_draws`` is (draws, K); datasets whose temperature is None are left out. -1 means
    temperature acts as an inverse temperature on the field.

    Parameters
    ----------
    beta_draws : (draws, K) array
        Posterior draws of each dataset's beta.
    temperatures : sequence of float or None
        Each dataset's sampling temperature.

    Returns
    -------
    dict or None
        The slope's summary and 94% HDI, the datasets used and their temperatures; None when
        fewer than two distinct positive temperatures are known.
    """
    t = np.array([np.nan if v is None else float(v) for v in temperatures])
    use = np.isfinite(t) & (t > 0)
    if len(np.unique(t[use])) < 2:
        return None
    x = np.log(t[use])
    y = np.log(np.asarray(beta_draws)[:, use])
    xc = x - x.mean()
    slope = (y - y.mean(1, keepdims=True)) @ xc / np.sum(xc**2)
    return {**_interval(slope), "datasets_used": int(use.sum()), "temperatures": t[use].tolist()}
