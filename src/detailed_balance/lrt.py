"""The likelihood-ratio (G²) test of reversibility, with a parametric-bootstrap p-value.

Array code only (numpy/scipy). The reversible MLE is the classic fixed point for a symmetric
flow matrix X with free diagonal (Bowman et al. 2009; Prinz et al. 2011, the estimator deeptime
uses): ``x_ab <- (c_ab + c_ba) / (c_a / x_a + c_b / x_b)`` with ``x_a = sum_b x_ab``, the rest
category (self + rejected) of each source playing the diagonal. It runs on a batch of count
vectors at once, which is what makes the bootstrap cheap.

Why a bootstrap: G² is chi² with df = independent cycles only asymptotically. The sparse support
graphs of agent data (cells with one or two counts, one-way arcs) make the chi² p-value
anticonservative: on reversible 30-state chains at 200 attempts per source it rejected 11.7% of
datasets at the 5% level. The bootstrap draws count tables from the fitted reversible chain with
the observed attempts per source, refits, and compares.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.special import xlogy  # c log p, 0 where c == 0

from .counts import TransitionCounts
from .errors import FitError
from .modeldata import ModelData, build_model_data

TREE_NOTE = (
    "the support graph has no cycles: every Markov chain on a tree is reversible, so these data "
    "cannot test detailed balance"
)


def _segment_matrix(n: int, *indices: np.ndarray):
    """M with ``values @ M`` = per-segment sums: row k adds 1 at each ``index[k]`` (of each index).

    Dense while small (fast batched matmul), sparse for large graphs.
    """
    rows = np.concatenate([np.arange(len(ix)) for ix in indices])
    cols = np.concatenate(indices)
    m = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(indices[0]), n))
    return m.toarray() if m.shape[0] * n <= 4_000_000 else m


def _row_totals(data: ModelData, arc_count: np.ndarray, rest_count: np.ndarray) -> np.ndarray:
    return arc_count @ _segment_matrix(data.n_states, data.arc_source) + rest_count


def free_log_likelihood(data: ModelData, arc_count=None, rest_count=None) -> np.ndarray:
    """Maximum log-likelihood of the unconstrained chain (row frequencies); batched over ``...``.

    Parameters
    ----------
    data : ModelData
    arc_count, rest_count : ndarray, optional
        (..., 2E) and (..., S) count tables (default: the data's own).

    Returns
    -------
    ndarray
        Shape ``...``: one log-likelihood per table.
    """
    arc = np.asarray(data.arc_count if arc_count is None else arc_count, dtype=float)
    rest = np.asarray(data.rest_count if rest_count is None else rest_count, dtype=float)
    n_row = _row_totals(data, arc, rest)
    ll = xlogy(arc, arc / np.maximum(n_row[..., data.arc_source], 1e-300)).sum(-1)
    return ll + xlogy(rest, rest / np.maximum(n_row, 1e-300)).sum(-1)


def _pool_crossing_arcs(data: ModelData, arc: np.ndarray, rest: np.ndarray):
    """Move arcs between strongly connected classes of the observed graph into a free pool.

    When the arcs seen (count > 0) do not form one strongly connected graph, the reversible MLE
    lies at infinity: the stationary weight of each downstream class grows without bound
    relative to the classes that feed it, so the arcs from upstream to downstream become free
    (probabilities = row frequencies) and their reverse directions get probability zero. Inside
    each class the MLE is finite. This returns, for one count table, the counts with those arcs
    moved into the source's rest category (an equivalent free category), the constant the
    merge drops (the split of the pool), and which arcs cross.
    """
    from scipy.sparse.csgraph import connected_components

    seen = arc > 0
    graph = sparse.csr_array(
        (np.ones(int(seen.sum())), (data.arc_source[seen], data.arc_target[seen])),
        shape=(data.n_states, data.n_states),
    )
    _, label = connected_components(graph, directed=True, connection="strong")
    crossing = label[data.arc_source] != label[data.arc_target]
    moved = np.bincount(data.arc_source[crossing], weights=arc[crossing], minlength=data.n_states)
    pooled = rest + moved
    split = (
        np.sum(xlogy(arc[crossing], arc[crossing]))
        + np.sum(xlogy(rest, rest))
        - np.sum(xlogy(pooled, pooled))
    )
    return np.where(crossing, 0.0, arc), pooled, float(split), crossing


def reversible_mle(
    data: ModelData,
    arc_count=None,
    rest_count=None,
    *,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> dict:
    """Reversible maximum-likelihood chain on the support graph of ``data``; batched over rows.

    The supremum of the likelihood over reversible chains: where it is reached only in a limit
    (the observed arcs are not strongly connected), the limit chain is returned.

    Parameters
    ----------
    data : ModelData
        The support graph (arcs, edges); its counts are used unless others are given.
    arc_count, rest_count : array (2E,) and (S,), or (B, 2E) and (B, S), optional
        Count tables on the same graph (e.g. bootstrap replicates).

    Returns
    -------
    dict with ``log_lik`` (B,) or scalar, ``p_arc`` (.., 2E) and ``p_rest`` (.., S) (fitted
    transition probabilities), ``iterations`` (the most any table needed) and ``converged``.
    """
    arc = np.asarray(data.arc_count if arc_count is None else arc_count, dtype=float)
    rest = np.asarray(data.rest_count if rest_count is None else rest_count, dtype=float)
    single = arc.ndim == 1
    arc, rest = np.atleast_2d(arc), np.atleast_2d(rest)
    pooled = [_pool_crossing_arcs(data, arc[k], rest[k]) for k in range(len(arc))]
    arc_in = np.stack([p[0] for p in pooled])
    rest_in = np.stack([p[1] for p in pooled])
    n_e = data.n_edges
    a, b = data.arc_source[:n_e], data.arc_target[:n_e]
    c_edge = arc_in[:, :n_e] + arc_in[:, n_e:]
    n_row = _row_totals(data, arc_in, rest_in)
    to_ends = _segment_matrix(data.n_states, a, b)  # an edge's flow counts at both ends
    x, x_rest = c_edge.copy(), rest_in.copy()  # the symmetrised counts: the usual start
    active = np.arange(len(arc))  # tables still iterating (each stops at its own tolerance)
    iterations = 0
    while len(active) and iterations < max_iter:
        iterations += 1
        xa, ce, nr = x[active], c_edge[active], n_row[active]
        x_row = xa @ to_ends + x_rest[active]
        r = np.divide(nr, x_row, out=np.zeros_like(nr), where=x_row > 0)
        x_new = np.divide(ce, r[:, a] + r[:, b], out=np.zeros_like(ce), where=ce > 0)
        x_rest[active] = np.divide(rest_in[active], r, out=np.zeros_like(nr), where=r > 0)
        change = np.max(np.abs(x_new - xa) / np.maximum(x_new, 1e-300), axis=1, initial=0.0)
        x[active] = x_new
        active = active[change >= tol]
    x_row = np.maximum(x @ to_ends + x_rest, 1e-300)
    p_arc = np.concatenate([x, x], axis=1) / x_row[:, data.arc_source]
    p_pool = x_rest / x_row  # rest and the pooled crossing arcs share it by their counts
    share = np.divide(p_pool, rest_in, out=np.zeros_like(p_pool), where=rest_in > 0)
    crossing = np.stack([p[3] for p in pooled])
    p_arc = np.where(crossing, arc * share[:, data.arc_source], p_arc)
    p_rest = rest * share
    split = np.array([p[2] for p in pooled])
    log_lik = xlogy(arc_in, p_arc).sum(1) + xlogy(rest_in, p_pool).sum(1) + split
    out = {
        "log_lik": log_lik,
        "p_arc": p_arc,
        "p_rest": p_rest,
        "iterations": iterations,
        "converged": len(active) == 0,
    }
    if single:
        out.update(log_lik=float(log_lik[0]), p_arc=p_arc[0], p_rest=p_rest[0])
    return out


def simulate_counts(
    data: ModelData, p_arc: np.ndarray, p_rest: np.ndarray, replicates: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Count tables drawn from a chain with the observed attempts per source (multinomial rows).

    Parameters
    ----------
    data : ModelData
        Gives the arcs and the attempts per source.
    p_arc, p_rest : ndarray
        (2E,) and (S,) probabilities of the chain to draw from.
    replicates : int
    seed : int

    Returns
    -------
    arc_count, rest_count : ndarray
        (replicates, 2E) and (replicates, S).
    """
    rng = np.random.default_rng(seed)
    n_row = _row_totals(data, np.asarray(data.arc_count, float), np.asarray(data.rest_count, float))
    arc = np.zeros((replicates, 2 * data.n_edges))
    rest = np.zeros((replicates, data.n_states))
    for i in np.flatnonzero(n_row > 0):
        arcs = np.flatnonzero(data.arc_source == i)
        p = np.append(p_arc[arcs], p_rest[i] if data.has_rest else 0.0)
        draws = rng.multinomial(int(round(n_row[i])), p / p.sum(), size=replicates)
        arc[:, arcs] = draws[:, :-1]
        rest[:, i] = draws[:, -1]
    return arc, rest


def likelihood_ratio_test(
    counts: TransitionCounts, *, rest: bool = True, bootstrap: int = 999, seed: int = 0
) -> dict:
    """G² test of reversibility: row frequencies against the reversible MLE.

    Parameters
    ----------
    counts : TransitionCounts
    rest : bool
        Model the rest category (self + rejected) of each source, as the models do.
    bootstrap : int
        Parametric-bootstrap replicates (0: chi² p-value only).
    seed : int

    Returns
    -------
    dict with ``statistic``, ``df`` (independent cycles of the support graph), ``p_value`` (the
    bootstrap's when ``bootstrap > 0``, else chi²'s), ``p_value_chi2``, ``p_value_bootstrap``,
    ``p_value_bootstrap_se`` (Monte Carlo), ``bootstrap``, ``bootstrap_mean_statistic`` (the
    replicates' mean G², which chi² puts at df), ``log_lik_free``,
    ``log_lik_reversible``, ``converged`` and ``note``.

    Examples
    --------
    >>> from detailed_balance.synthetic import driven_chain, sample_counts
    >>> chain = driven_chain(8, affinity=2.0, seed=1)  # every cycle driven by 2 nats
    >>> res = likelihood_ratio_test(sample_counts(chain, attempts_per_source=1000), bootstrap=199)
    >>> res["df"], res["p_value"] <= 0.005  # no replicate reached the observed G²
    (9, True)
    """
    from scipy.stats import chi2

    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise FitError(f"bootstrap must be a whole number of replicates >= 0, got {bootstrap!r}")
    data = build_model_data(counts, rest=rest)
    ll_free = float(free_log_likelihood(data))
    out = {
        "statistic": None,
        "df": int(data.n_chords),
        "p_value": None,
        "p_value_chi2": None,
        "p_value_bootstrap": None,
        "p_value_bootstrap_se": None,
        "bootstrap": int(bootstrap),
        "bootstrap_mean_statistic": None,
        "log_lik_free": ll_free,
        "log_lik_reversible": None,
        "converged": True,
        "note": "",
    }
    if data.n_chords == 0:
        out["note"] = TREE_NOTE
        return out
    mle = reversible_mle(data)
    ll_rev = float(mle["log_lik"])
    g2 = max(2.0 * (ll_free - ll_rev), 0.0)
    out.update(
        statistic=g2,
        log_lik_reversible=ll_rev,
        converged=mle["converged"],
        p_value_chi2=float(chi2.sf(g2, data.n_chords)),
    )
    if not mle["converged"]:
        out["note"] = "the reversible MLE did not converge: the statistic is unreliable"
        return out
    out["p_value"] = out["p_value_chi2"]
    if bootstrap > 0:
        arc, rest = simulate_counts(data, mle["p_arc"], mle["p_rest"], bootstrap, seed)
        rep = reversible_mle(data, arc, rest)
        g2_rep = 2.0 * (free_log_likelihood(data, arc, rest) - rep["log_lik"])
        exceed = int(np.sum(g2_rep >= g2 - 1e-9 * max(1.0, g2)))
        p = (1 + exceed) / (bootstrap + 1)
        out.update(
            p_value=p,
            p_value_bootstrap=p,
            p_value_bootstrap_se=float(np.sqrt(p * (1 - p) / (bootstrap + 1))),
            bootstrap_mean_statistic=float(np.mean(g2_rep)),  # vs df: how far chi² is off
        )
        if not rep["converged"]:
            out["note"] = "some bootstrap refits stopped at the iteration cap"
    return out
