"""The paper's diagnostics of detailed balance, each with an error bar.

Song, Cao, Luo & Zhu (arXiv:2512.10047) judge detailed balance with a pairwise plot (log
forward/backward ratio against the fitted ΔV), a 3-cycle loop test, inequalities for pairs seen
one way only, the share of strong transitions that go downhill under a formula for V, the width
of V against S_min, and majority voting. Here each gets honest errors: Poisson (delta method) on
raw counts, or posterior draws (from a fit, or from the exact conjugate posterior of the
unconstrained model, :func:`unconstrained_posterior_kernel`). The χ² statistics are weighted by
those errors, and their degrees of freedom say whether V was fitted to the same counts.

Convention: log T(g←f) − log T(f←g) = V(f) − V(g); favoured moves go downhill in V.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import betainc

from .counts import TransitionCounts
from .graph import fundamental_cycles
from .kernel import TransitionKernel
from .modeldata import build_model_data


# ---- a posterior over T without a sampler -----------------------------------------------------
def unconstrained_posterior_kernel(
    counts: TransitionCounts, draws: int = 1000, *, alpha: float = 1.0, seed: int = 0
) -> TransitionKernel:
    """Exact posterior draws of T under the unconstrained model (Dirichlet(alpha) rows).

    Categories of row i are its support-graph neighbours plus ``rest`` (self + rejected), as in
    ``models/unconstrained.py``; the posterior of each row is Dirichlet(alpha + counts), drawn as
    normalised Gamma variables. Arcs: both directions of every support edge (``ModelData``).

    Parameters
    ----------
    counts : TransitionCounts
    draws : int
        Posterior draws.
    alpha : float
        Dirichlet concentration of every category.
    seed : int

    Returns
    -------
    TransitionKernel
        ``log_prob`` of shape (draws, arcs): a posterior over T without a sampler.

    Examples
    --------
    >>> import numpy as np
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=100, seed=0)
    >>> post = unconstrained_posterior_kernel(counts, draws=200, seed=0)
    >>> post.log_prob.shape
    (200, 20)
    >>> rows = np.zeros((200, 5))
    >>> np.add.at(rows.T, post.source, np.exp(post.log_prob).T)  # each row's arcs
    >>> bool((rows < 1).all())  # the rest of each row is the escape
    True
    """
    data = build_model_data(counts, rest=True)
    rng = np.random.default_rng(seed)
    g_arc = rng.gamma(alpha + data.arc_count, size=(draws, len(data.arc_count)))
    g_rest = rng.gamma(alpha + data.rest_count, size=(draws, data.n_states))
    # row totals by one matrix product: (draws, 2E) @ (2E, S)
    member = np.zeros((len(data.arc_source), data.n_states))
    member[np.arange(len(data.arc_source)), data.arc_source] = 1.0
    total = g_rest + g_arc @ member
    log_p = np.log(g_arc) - np.log(total[:, data.arc_source])
    return TransitionKernel(counts.states, data.arc_source, data.arc_target, log_p, "posterior")


def _draws(v) -> np.ndarray:
    """(draws, ...) view: a single estimate becomes one draw."""
    v = np.asarray(v, dtype=float)
    return v[None] if v.ndim == 1 else v


def _counts_lookup(counts: TransitionCounts):
    n = counts.n_states
    key = counts.source * n + counts.target
    order = np.argsort(key)

    def count(f, g):
        k = np.asarray(f) * n + np.asarray(g)
        pos = np.clip(np.searchsorted(key[order], k), 0, max(len(key) - 1, 0))
        hit = key[order][pos] == k if len(key) else np.zeros(np.shape(k), bool)
        return np.where(hit, counts.count[order][pos] if len(key) else 0, 0)

    return count


def _log_ratio(counts: TransitionCounts, f, g):
    """log[T(g←f)/T(f←g)] from counts (T = N/N0) and its Poisson (delta-method) variance."""
    count = _counts_lookup(counts)
    n_fg, n_gf = count(f, g).astype(float), count(g, f).astype(float)
    att = counts.attempts.astype(float)
    y = np.log(n_fg / att[f]) - np.log(n_gf / att[g])
    return y, 1.0 / n_fg + 1.0 / n_gf


def _kernel_log_ratio(kernel: TransitionKernel, f, g) -> np.ndarray:
    """(draws, P) log T(g←f) − log T(f←g) on a kernel's arcs (both directions must exist)."""
    n = kernel.n_states
    key = kernel.source * n + kernel.target
    order = np.argsort(key)
    lp = _draws(kernel.log_prob)

    def col(s, t):
        k = np.asarray(s) * n + np.asarray(t)
        pos = np.searchsorted(key[order], k)
        if np.any(pos >= len(key)) or np.any(key[order][np.minimum(pos, len(key) - 1)] != k):
            raise ValueError("the kernel lacks an arc of a requested pair")
        return lp[:, order[pos]]

    return col(f, g) - col(g, f)


# ---- pairwise test ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PairwiseTest:
    """Log ratio y = log T(g←f)/T(f←g) against ΔV = V(f) − V(g) on pairs seen both ways.

    ``y_err``/``dv_err`` are 1-sd errors (Poisson on counts, posterior sd on draws);
    ``chi2 = Σ (y − ΔV)² / (y_err² + dv_err²)`` on ``ndf`` degrees of freedom (pairs minus the
    free V differences when V was fitted to the same counts), ``p_value`` from χ²(ndf).
    """

    f: np.ndarray
    g: np.ndarray
    y: np.ndarray
    y_err: np.ndarray
    dv: np.ndarray
    dv_err: np.ndarray
    pearson_r: float
    chi2: float
    ndf: int
    p_value: float

    @property
    def chi2_ndf(self) -> float:
        return self.chi2 / self.ndf if self.ndf > 0 else float("nan")


def pairwise_test(
    counts: TransitionCounts,
    V,
    *,
    kernel: TransitionKernel | None = None,
    min_count: int = 2,
    fitted: bool = True,
) -> PairwiseTest:
    """The paper's pairwise plot as a weighted test.

    Parameters
    ----------
    counts : the data; pairs with at least ``min_count`` transitions each way are used (the
        paper uses n > 1).
    V : (S,) or (draws, S) potential; draws give ΔV a posterior mean and sd.
    kernel : optional draws of T (e.g. :func:`unconstrained_posterior_kernel`); y then has
        posterior errors instead of Poisson ones.
    min_count : int
        Transitions needed each way for a pair to be used.
    fitted : V was estimated from these counts: ndf = pairs − (states − components) of the
        graph of used pairs. Use False for an external V (a formula, the truth).

    Returns
    -------
    PairwiseTest
    """
    f, g = counts.two_way_edges()
    count = _counts_lookup(counts)
    keep = (count(f, g) >= min_count) & (count(g, f) >= min_count)
    f, g = f[keep], g[keep]
    if kernel is None:
        y, var = _log_ratio(counts, f, g)
        y_err = np.sqrt(var)
    else:
        yd = _kernel_log_ratio(kernel, f, g)
        y, y_err = yd.mean(0), yd.std(0, ddof=1) if len(yd) > 1 else np.zeros(len(f))
    vd = _draws(V)
    dvd = vd[:, f] - vd[:, g]
    dv = dvd.mean(0)
    dv_err = dvd.std(0, ddof=1) if len(vd) > 1 else np.zeros(len(f))
    chi2 = float(np.sum((y - dv) ** 2 / (y_err**2 + dv_err**2)))
    ndf = len(f)
    if fitted and len(f):
        used = np.unique(np.concatenate([f, g]))
        from .graph import component_labels

        remap = np.searchsorted(used, np.concatenate([f, g]))
        labels = component_labels(len(used), remap[: len(f)], remap[len(f) :])
        ndf -= len(used) - len(np.unique(labels))
    r = float(np.corrcoef(y, dv)[0, 1]) if len(f) > 2 else float("nan")
    p = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else float("nan")
    return PairwiseTest(f, g, y, y_err, dv, dv_err, r, chi2, ndf, p)


# ---- loops ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoopTest:
    """Forward vs backward log products around cycles (Kolmogorov's criterion).

    ``forward``/``backward``: Σ log T along / against each cycle; ``affinity = forward −
    backward`` with 1-sd ``error``. ``chi2`` on ``ndf``: for 3-cycles the paper's Σ (A/err)²
    over triplets (correlated: triplets share arcs); for a cycle basis the full quadratic form
    Aᵀ Cov⁻¹ A with the cycles' covariance, a proper χ² on ``ndf`` independent cycles.
    """

    nodes: list
    forward: np.ndarray
    backward: np.ndarray
    affinity: np.ndarray
    error: np.ndarray
    chi2: float
    ndf: int
    p_value: float
    draws: np.ndarray | None = None

    @property
    def chi2_ndf(self) -> float:
        return self.chi2 / self.ndf if self.ndf > 0 else float("nan")


def _two_way_with(counts: TransitionCounts, min_count: int):
    f, g = counts.two_way_edges()
    count = _counts_lookup(counts)
    keep = (count(f, g) >= min_count) & (count(g, f) >= min_count)
    return f[keep], g[keep]


def triangles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All 3-cycles (i < j < k) of an undirected graph given as edges a < b: (T, 3) array.

    Parameters
    ----------
    a, b : (E,) int arrays
        Undirected edges with ``a < b``.

    Returns
    -------
    (T, 3) int array
        Each triangle's nodes ``i < j < k``.

    Examples
    --------
    >>> import numpy as np
    >>> triangles(np.array([0, 0, 1, 3]), np.array([1, 2, 2, 4])).tolist()
    [[0, 1, 2]]
    """
    nbrs: dict[int, set[int]] = {}
    for u, v in zip(a.tolist(), b.tolist(), strict=True):
        nbrs.setdefault(u, set()).add(v)
        nbrs.setdefault(v, set()).add(u)
    out = [
        (u, v, w)
        for u, v in zip(a.tolist(), b.tolist(), strict=True)
        for w in nbrs[u] & nbrs[v]
        if w > v
    ]
    return np.array(sorted(out), dtype=np.int64).reshape(-1, 3)


def _cycle_arcs(cycles_nodes):
    """Forward arcs (f → g) of each cycle given as a node list."""
    return [(np.asarray(c), np.roll(np.asarray(c), -1)) for c in cycles_nodes]


def loop_test(
    counts: TransitionCounts,
    *,
    cycles: str = "triangles",
    kernel: TransitionKernel | None = None,
    min_count: int = 1,
) -> LoopTest:
    """Kolmogorov's criterion on cycles whose every arc was seen both ways.

    Parameters
    ----------
    counts : TransitionCounts
        The data.
    cycles : "triangles" (the paper's 3-cycle test) or "basis" (a fundamental cycle basis of the
        two-way graph, :func:`detailed_balance.graph.fundamental_cycles`: independent cycles of
        any length, tested jointly with their covariance).
    kernel : optional posterior draws of T (e.g. :func:`unconstrained_posterior_kernel`) for
        posterior errors; default Poisson errors from the counts.
    min_count : int
        Transitions needed on every arc of a cycle, each way.

    Returns
    -------
    LoopTest
    """
    a, b = _two_way_with(counts, min_count)
    if cycles == "triangles":
        nodes = [list(t) for t in triangles(a, b)]
    elif cycles == "basis":
        nodes = fundamental_cycles(counts.n_states, a, b).nodes
    else:
        raise ValueError(f"unknown cycles {cycles!r} (use 'triangles' or 'basis')")
    if not nodes:
        e = np.zeros(0)
        return LoopTest([], e, e, e, e, 0.0, 0, float("nan"))
    # edge log ratios y_e = log T(b←a) − log T(a←b); a cycle's affinity is Σ ± y_e
    index = {(int(u), int(v)): k for k, (u, v) in enumerate(zip(a, b, strict=True))}
    incidence = np.zeros((len(nodes), len(a)))
    for c, (f, g) in enumerate(_cycle_arcs(nodes)):
        for s, t in zip(f.tolist(), g.tolist(), strict=True):
            incidence[c, index[(min(s, t), max(s, t))]] += 1.0 if s < t else -1.0
    if kernel is None:
        y, var = _log_ratio(counts, a, b)
        att = counts.attempts.astype(float)
        count = _counts_lookup(counts)
        fwd_arc = np.log(count(a, b) / att[a])
        bwd_arc = np.log(count(b, a) / att[b])
        cov = incidence @ np.diag(var) @ incidence.T
        draws = None
    else:
        yd = _kernel_log_ratio(kernel, a, b)
        lp = _draws(kernel.log_prob).mean(0)
        lookup = {
            (int(s), int(t)): k
            for k, (s, t) in enumerate(zip(kernel.source, kernel.target, strict=True))
        }
        fwd_arc = np.array([lp[lookup[(int(s), int(t))]] for s, t in zip(a, b, strict=True)])
        bwd_arc = np.array([lp[lookup[(int(t), int(s))]] for s, t in zip(a, b, strict=True)])
        draws = yd @ incidence.T
        y = yd.mean(0)
        cov = np.atleast_2d(np.cov(draws, rowvar=False))
    pos, neg = np.clip(incidence, 0, None), np.clip(-incidence, 0, None)
    forward = pos @ fwd_arc + neg @ bwd_arc
    backward = pos @ bwd_arc + neg @ fwd_arc
    affinity = incidence @ y if draws is None else draws.mean(0)
    error = np.sqrt(np.diag(cov))
    if cycles == "triangles":
        chi2, ndf = float(np.sum(affinity**2 / error**2)), len(nodes)
    else:
        chi2 = float(affinity @ np.linalg.solve(cov, affinity))
        ndf = len(nodes)
    return LoopTest(
        [list(map(int, c)) for c in nodes],
        forward,
        backward,
        affinity,
        error,
        chi2,
        ndf,
        float(stats.chi2.sf(chi2, ndf)),
        draws,
    )


# ---- one-way pairs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OneWayBounds:
    """Pairs seen f → g only: detailed balance then implies ΔV = V(f) − V(g) ≥ ``bound``.

    With N(f←g) = 0 in N0(g) attempts, T(f←g) ≤ 1 − (1 − level)^{1/N0(g)} at ``level``; so
    ΔV = log T(g←f) − log T(f←g) ≥ log(N(g←f)/N0(f)) − log of that upper limit.
    """

    f: np.ndarray
    g: np.ndarray
    bound: np.ndarray
    dv: np.ndarray
    satisfied: np.ndarray
    level: float

    @property
    def fraction_satisfied(self) -> float:
        known = ~np.isnan(self.dv)
        return float(self.satisfied[known].mean()) if known.any() else float("nan")


def one_way_bounds(counts: TransitionCounts, V=None, *, level: float = 0.95) -> OneWayBounds:
    """Inequalities for pairs seen one way only, and whether a potential ``V`` meets them.

    Pairs whose reverse source g was never tried (N0(g) = 0) give no inequality and are skipped.
    ``V`` may hold ±inf (least-action runaways); the mean over draws is used when it has draws.

    Parameters
    ----------
    counts : TransitionCounts
    V : array_like, optional
        (S,) or (draws, S) potential to check against the bounds.
    level : float
        Confidence level of the upper limit on the unseen reverse probability.

    Returns
    -------
    OneWayBounds
    """
    count = _counts_lookup(counts)
    one = count(counts.target, counts.source) == 0
    f, g = counts.source[one], counts.target[one]
    att = counts.attempts.astype(float)
    tried = att[g] > 0
    f, g = f[tried], g[tried]
    upper = 1.0 - (1.0 - level) ** (1.0 / att[g])
    bound = np.log(count(f, g) / att[f]) - np.log(upper)
    if V is None:
        dv = np.full(len(f), np.nan)
    else:
        v = np.asarray(V, dtype=float)
        v = v.mean(0) if v.ndim == 2 else v
        with np.errstate(invalid="ignore"):
            dv = v[f] - v[g]
    with np.errstate(invalid="ignore"):
        satisfied = dv >= bound
    return OneWayBounds(f, g, bound, dv, satisfied, level)


# ---- directionality under a formula for V -----------------------------------------------------
def downhill_fraction(
    kernel: TransitionKernel, potential: Callable[[str], float], *, threshold: float = 0.05
) -> dict:
    """Share of strong transitions (T(g←f) > threshold) that go downhill under ``potential``.

    ``potential`` maps a state label to V (e.g. a formula over expressions); downhill means
    potential(g) < potential(f). With posterior draws of T the set of strong transitions is taken
    per draw and the result has a posterior (mean, sd, 94% HDI); a single kernel gets a binomial
    standard error. Ties count as not downhill and are reported.

    Parameters
    ----------
    kernel : TransitionKernel
        One kernel or posterior draws of it.
    potential : callable
        ``state -> V``.
    threshold : float
        Transitions with T above it are strong.

    Returns
    -------
    dict
        ``threshold``, ``strong`` (strong transitions, mean over draws), ``ties``, ``fraction``
        and its ``se`` (one kernel) or ``sd`` and ``hdi`` (94%, posterior draws).

    Examples
    --------
    >>> import numpy as np
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> chain = reversible_chain(8, width=2.0, seed=0)
    >>> counts = sample_counts(chain, attempts_per_source=400, seed=0)
    >>> true_v = dict(zip(chain.states, chain.V))
    >>> d = downhill_fraction(counts.kernel("escape"), true_v.get, threshold=0.05)
    >>> d["fraction"] > 0.5  # strong moves of a reversible chain mostly go downhill
    True
    """
    from . import _arviz

    v = np.array([float(potential(s)) for s in kernel.states])
    down = v[kernel.target] < v[kernel.source]
    tie = v[kernel.target] == v[kernel.source]
    strong = np.exp(_draws(kernel.log_prob)) > threshold
    n = strong.sum(1)
    frac = (strong & down).sum(1) / np.maximum(n, 1)
    out = {
        "threshold": threshold,
        "strong": int(np.round(n.mean())),
        "ties": int((strong & tie).sum(1).max()),
    }
    if len(frac) == 1:
        p = float(frac[0])
        out.update(fraction=p, se=float(np.sqrt(p * (1 - p) / max(n[0], 1))))
    else:
        lo, hi = _arviz.hdi(frac, _arviz.HDI_PROB)
        out.update(
            fraction=float(frac.mean()), sd=float(frac.std(ddof=1)), hdi=(float(lo), float(hi))
        )
    return out


# ---- Gaussian width vs S_min --------------------------------------------------------------------
def gaussian_width(V, K: str | Callable = "exp", S_min=None) -> dict:
    """Width σ of V across states and the paper's S_min ≈ K(0)/(√π σ).

    ``V`` (S,) or (draws, S) over the states with finite V (runaways are dropped). Returns σ
    (mean over draws and its sd), the predicted S_min per draw and, if given, the measured one.

    Parameters
    ----------
    V : array_like
        (S,) or (draws, S) potential.
    K : {"exp", "softplus"} or callable
        The least-action kernel.
    S_min : float or array_like, optional
        The measured minimum action (per draw), to compare with the prediction.

    Returns
    -------
    dict
        ``sigma``, ``sigma_sd``, ``mean``, ``states``, ``S_predicted`` and, with ``S_min``,
        ``S_min`` and ``ratio`` (measured / predicted).
    """
    from .least_action import resolve_kernel

    _, fn = resolve_kernel(K)
    vd = _draws(V)
    finite = np.all(np.isfinite(vd), axis=0)
    sigma = vd[:, finite].std(axis=1, ddof=1)
    k0 = float(fn(0.0))
    predicted = k0 / (np.sqrt(np.pi) * sigma)
    out = {
        "sigma": float(sigma.mean()),
        "sigma_sd": float(sigma.std(ddof=1)) if len(sigma) > 1 else 0.0,
        "mean": float(vd[:, finite].mean()),
        "states": int(finite.sum()),
        "S_predicted": float(predicted.mean()),
    }
    if S_min is not None:
        s = np.atleast_1d(np.asarray(S_min, dtype=float))
        out["S_min"] = float(s.mean())
        out["ratio"] = float(np.mean(s / predicted))
    return out


# ---- majority voting ----------------------------------------------------------------------------
def majority_vote_prob(p, n: int, M: int):
    """P(a state of single-draw probability p appears at least n times in M draws).

    = P(Binomial(M, p) ≥ n) = I_p(n, M − n + 1), the regularised incomplete beta function.
    For small p it is ≈ C(M, n) pⁿ, so log-ratios scale by n: V → ≈ nV.

    Parameters
    ----------
    p : float or array
        Single-draw probability of the state.
    n : int
        Votes needed, ``1 <= n <= M``.
    M : int
        Number of draws.

    Returns
    -------
    float or array
        The probability, same shape as ``p``.

    Examples
    --------
    A state drawn with probability 1/2 appears at least twice in three draws half the time:

    >>> float(majority_vote_prob(0.5, 2, 3))
    0.5
    """
    if not 1 <= n <= M:
        raise ValueError("majority voting needs 1 <= n <= M")
    return betainc(n, M - n + 1, np.asarray(p, dtype=float))


def simulate_majority_vote(p, n: int, M: int, trials: int = 100_000, seed: int = 0) -> np.ndarray:
    """Monte Carlo of :func:`majority_vote_prob`: share of trials with ≥ n hits in M draws.

    Parameters
    ----------
    p : float or array_like
        Single-draw probability of the state.
    n, M : int
        Accept when the state appears at least ``n`` times in ``M`` draws.
    trials : int
    seed : int

    Returns
    -------
    ndarray
        The simulated probability (shape of ``p``).
    """
    rng = np.random.default_rng(seed)
    hits = rng.binomial(M, np.asarray(p, dtype=float)[..., None], size=np.shape(p) + (trials,))
    return (hits >= n).mean(axis=-1)


def majority_vote_kernel(kernel: TransitionKernel, n: int, M: int) -> TransitionKernel:
    """The kernel after majority voting, arc by arc: T'(g←f) = I_T(n, M − n + 1).

    Parameters
    ----------
    kernel : TransitionKernel
    n, M : int
        Accept a state seen at least ``n`` times in ``M`` draws.

    Returns
    -------
    TransitionKernel
        With convention ``"majority"``.
    """
    t = np.exp(np.asarray(kernel.log_prob, dtype=float))
    with np.errstate(divide="ignore"):
        log_t = np.log(majority_vote_prob(t, n, M))
    return TransitionKernel(kernel.states, kernel.source, kernel.target, log_t, "majority")
