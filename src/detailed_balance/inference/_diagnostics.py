"""Convergence diagnostics of a fit: R-hat, bulk ESS, divergences, optimiser status."""

from __future__ import annotations

import warnings

import numpy as np

from ..modeldata import MAX_TREE_DEPTH, SAMPLERS

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100  # the usual rule: bulk ESS >= 100 per chain
# unadjusted MCLMC: its bias grows with the energy error per step, which tuning sets to a target
# (1e-4 per dimension, see inference/_mclmc.py); runs well above it were not tuned to this
# posterior (at 3,000 states, 15-50x the target went with a shifted sigma_u)
ENERGY_ERROR_RATIO_MAX = 2.0


class ConvergenceWarning(UserWarning):
    """The sampler or optimiser may not have converged (R-hat, ESS, divergences, optimiser)."""


def _diagnose(
    posterior, stats, method, chains, seconds, extra, counts, dims, warmup_tree_depth=None
) -> dict:
    # ``warmup_tree_depth``: NUTS's, to advise raising it only where it can still go up
    out = {"method": method, "fit_seconds": round(seconds, 3), "warnings": [], **extra}
    if method in SAMPLERS:
        rhat, ess = rhat_ess(posterior)
        worst = _worst(rhat, counts, dims, largest=True)
        poorest = _worst(ess, counts, dims, largest=False)
        max_rhat = worst[0][1] if worst else float("nan")
        min_ess = poorest[0][1] if poorest else float("nan")
        divergences = int(np.sum(stats["diverging"])) if "diverging" in stats else 0
        out.update(
            max_rhat=_json_number(max_rhat),
            min_ess=_json_number(min_ess),
            divergences=divergences,
            ess_per_second=_json_number(min_ess / seconds) if seconds > 0 else None,
        )
        if chains > 1 and max_rhat > RHAT_MAX:
            if method == "mclmc":
                # measured at 3,000 states: 2,000 tuning steps left R-hat 1.017, 3,000 gave 1.006
                advice = "raise warmup (MCLMC's tuning steps; ~1 per state at thousands of states)"
            elif (warmup_tree_depth or MAX_TREE_DEPTH) < MAX_TREE_DEPTH:
                advice = "draw more, or raise warmup (and NUTS's warmup_tree_depth)"
            else:  # the warm-up's trees already go as deep as the draws'
                advice = "draw more, or raise warmup"
            out["warnings"].append(
                f"R-hat up to {max_rhat:.3f} > {RHAT_MAX} (worst: {_names(worst)}); {advice}"
            )
        if min_ess < ESS_PER_CHAIN_MIN * chains:
            out["warnings"].append(
                f"bulk ESS down to {min_ess:.0f} < {ESS_PER_CHAIN_MIN * chains} "
                f"({ESS_PER_CHAIN_MIN} per chain × {chains} chains; worst: {_names(poorest)}); "
                "draw more"
            )
        target = extra.get("desired_energy_var", np.inf)
        if method == "mclmc" and extra["energy_error_mean"] > ENERGY_ERROR_RATIO_MAX * target:
            out["warnings"].append(
                f"MCLMC energy error {extra['energy_error_mean']:.2g} per step and dimension, "
                f"over {ENERGY_ERROR_RATIO_MAX:g}x its tuned target {target:.2g}: "
                "the step size is too large for this posterior and the draws may be biased; "
                "raise warmup or use NUTS"
            )
        if divergences:
            out["warnings"].append(
                f"{divergences} divergent transitions: intervals may be biased; "
                "raise target_accept or simplify the model"
            )
    elif method == "svi" and not extra["optimizer_converged"]:
        out["warnings"].append(
            f"SVI loss still falling ({extra['loss_drift_last_tenth']:.1f} over the last tenth of "
            f"{extra['svi_steps']} steps): raise svi_steps"
        )
    elif not extra.get("optimizer_converged", True):
        out["warnings"].append(f"MAP optimiser stopped early: {extra['optimizer_message']}")
    for w in out["warnings"]:
        warnings.warn(w, ConvergenceWarning, stacklevel=4)
    return out


def rhat_ess(draws: dict) -> tuple[dict, dict]:
    """Rank-normalised split R-hat and bulk ESS of every ``(chain, draw, ...)`` array in ``draws``.

    ArviZ's estimators (Vehtari et al. 2021, as ``arviz.rhat`` / ``arviz.ess`` compute them, to
    rounding) vectorised over parameters: ArviZ loops over scalars in Python, which took 20 s of a
    1,000-state fit.

    Parameters
    ----------
    draws : dict
        Name -> array of shape (chains, draws, ...); at least 4 draws per chain, else NaN.

    Returns
    -------
    rhat, ess : dict
        Name -> array with each input's parameter shape (NaN where a chain holds NaN).

    Examples
    --------
    >>> import numpy as np
    >>> rhat, ess = rhat_ess({"x": np.random.default_rng(0).normal(size=(4, 500, 3))})
    >>> bool(np.all(np.abs(rhat["x"] - 1) < 0.01)), bool(np.all(ess["x"] > 1000))
    (True, True)
    """
    rhat, ess = {}, {}
    for name, v in draws.items():
        v = np.asarray(v, dtype=float)
        x = v.reshape(v.shape[:2] + (-1,))
        r, e = _rhat_ess_flat(x) if x.shape[1] >= 4 else (np.full(x.shape[2], np.nan),) * 2
        rhat[name], ess[name] = r.reshape(v.shape[2:]), e.reshape(v.shape[2:])
    return rhat, ess


def _rhat_ess_flat(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R-hat and bulk ESS of ``x`` (chains, draws, k): one value per column k."""
    from scipy import special

    half = x.shape[1] // 2
    split = np.concatenate([x[:, :half], x[:, -half:]], axis=0)  # each chain in two halves
    m, n, k = split.shape

    def z_scale(a):
        ranks = _average_ranks(a.reshape(m * n, k))
        # ndtri is what norm.ppf computes, without the distribution's argument checks
        return special.ndtri((ranks - 0.375) / (m * n + 0.25)).reshape(a.shape)

    def rhat(z):
        between = n * np.var(z.mean(axis=1), axis=0, ddof=1)
        within = np.mean(np.var(z, axis=1, ddof=1), axis=0)
        return np.sqrt((between / within + n - 1) / n)

    bad = np.isnan(x).any(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = z_scale(split)
        folded = np.abs(split - np.median(split.reshape(m * n, k), axis=0))
        r = np.maximum(rhat(z), rhat(z_scale(folded))) if x.shape[0] > 1 else np.full(k, np.nan)
        e = _ess_geyer(z)
    const = np.ptp(z.reshape(m * n, k), axis=0) < np.finfo(float).resolution
    e = np.where(const, m * n, e)
    return np.where(bad, np.nan, r), np.where(bad, np.nan, e)


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..N of each column of ``a`` (N, k), ties given their mean rank.

    What ``scipy.stats.rankdata(a, method="average", axis=0)`` computes, NaN columns included
    (all NaN, as scipy's default ``nan_policy="propagate"``: the folded draws of a column holding
    infinities are NaN, and its R-hat must stay NaN, not rank them at random), without importing
    scipy.stats: 0.3-0.4 s of a process's first fit, and the only use of it in a fit under
    arviz 1.x.
    """
    b = np.ascontiguousarray(a.T)  # (k, N): each column's sort runs over contiguous memory
    n = b.shape[1]
    order = np.argsort(b, axis=1)
    s = np.take_along_axis(b, order, axis=1)
    pos = np.arange(n)
    starts = np.ones(s.shape, dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]  # a new value: a tie group starts here
    ends = np.ones(s.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, pos, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(s.shape)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    ranks[np.isnan(s[:, -1:]).any(axis=1)] = np.nan  # argsort sorts NaN last
    return ranks.T


def _ess_geyer(z: np.ndarray) -> np.ndarray:
    """ESS of (chains, draws, k) by Geyer's initial monotone sequence, as ``arviz`` computes it."""
    import scipy.fft

    m, n, k = z.shape
    c = z - z.mean(axis=1, keepdims=True)
    size = scipy.fft.next_fast_len(2 * n)
    f = np.fft.rfft(c, n=size, axis=1)
    acov = np.fft.irfft(f * np.conjugate(f), n=size, axis=1)[:, :n] / n
    mean_var = acov[:, 0].mean(axis=0) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(z.mean(axis=1), axis=0, ddof=1)
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus  # (n, k)
    rho_t = np.zeros((n, k))
    rho_t[0] = 1.0
    rho_t[1] = rho[1]
    even, odd = np.ones(k), rho[1].copy()
    last = np.ones(k, dtype=int)  # the t at which each column's loop stopped
    active = np.ones(k, dtype=bool)
    t = 1
    while t < n - 3:
        active &= (even + odd) > 0
        if not active.any():
            break
        even, odd = np.where(active, rho[t + 1], even), np.where(active, rho[t + 2], odd)
        keep = active & (even + odd >= 0)
        rho_t[t + 1] = np.where(keep, even, rho_t[t + 1])
        rho_t[t + 2] = np.where(keep, odd, rho_t[t + 2])
        last = np.where(active, t + 2, last)
        t += 2
    max_t = last - 2
    cols = np.arange(k)
    rho_t[max_t + 1, cols] = np.where(even > 0, even, rho_t[max_t + 1, cols])
    for t in range(1, int(max_t.max(initial=0)) - 1, 2):  # initial monotone sequence
        on = (t <= max_t - 2) & (rho_t[t + 1] + rho_t[t + 2] > rho_t[t - 1] + rho_t[t])
        mean_pair = (rho_t[t - 1] + rho_t[t]) / 2.0
        rho_t[t + 1] = np.where(on, mean_pair, rho_t[t + 1])
        rho_t[t + 2] = np.where(on, mean_pair, rho_t[t + 2])
    upto = np.cumsum(rho_t, axis=0)[max_t, cols]
    upto = np.where(max_t >= 0, upto, 0.0)
    tau = -1.0 + 2.0 * upto + rho_t[max_t + 1, cols]
    tau = np.maximum(tau, 1.0 / np.log10(m * n))
    return np.where(np.isnan(rho_t).any(axis=0), np.nan, m * n / tau)


def _worst(values: dict, counts, dims: dict, largest: bool, k: int = 3) -> list[tuple[str, float]]:
    """The k parameters with the largest (R-hat) or smallest (ESS) finite values, named."""
    a, b = counts.support_edges()
    names = {
        "state": list(counts.states),
        "edge": [f"{counts.states[i]}<->{counts.states[j]}" for i, j in zip(a, b, strict=True)],
    }
    items = []
    for name, arr in values.items():
        arr = np.atleast_1d(arr)
        labels = names.get(dims.get(name, (None,))[-1], [])
        for idx in np.flatnonzero(np.isfinite(arr)):
            label = name
            if arr.size > 1:
                label = f"{name}[{labels[idx] if arr.size == len(labels) else idx}]"
            items.append((label, float(arr.flat[idx])))
    items.sort(key=lambda t: -t[1] if largest else t[1])
    return items[:k]


def _names(items) -> str:
    return ", ".join(f"{n} ({v:.3g})" for n, v in items)


def _json_number(v):
    v = float(v)
    return v if np.isfinite(v) else None
