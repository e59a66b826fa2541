"""Synthetic chains with known truth: reversible and driven kernels on sparse random graphs.

The true kernel lives on the arcs of a sparse symmetric proposal graph (about ``degree`` neighbours
per state, always connected) plus one escape per state (self-replies and rejections). Sampling is
vectorised over attempts except for the single-trajectory design, which is sequential by nature.

Convention (the package's): ``log T(j<-i) - log T(i<-j) = V_i - V_j`` (downhill moves favoured).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

# the collection designs have one list, the collect stage's (it imports nothing of this module)
from .collect import DESIGNS
from .counts import TransitionCounts
from .errors import DataError
from .graph import fundamental_cycles


@dataclass(frozen=True, eq=False)
class SyntheticChain:
    """A true kernel T(target<-source) with its potential and cycle affinities.

    Attributes
    ----------
    states : tuple of str
        Labels ``s0000, s0001, ...`` (zero-padded so label order is index order).
    source, target, prob : (M,) arrays
        Arcs of the true kernel, sorted by ``(source, target)``; both directions of every edge.
    escape : (S,) array
        Per-state remainder ``1 - sum_j T(j<-i)``: the self + rejected mass.
    V : (S,) array
        True potential, mean zero (for a driven chain: the potential of its gradient part).
    edges : tuple of two (E,) int arrays
        Undirected proposal graph ``a < b``, sorted.
    cycle_affinity : (C,) array
        True affinity (nats) of each cycle of ``graph.fundamental_cycles(S, *edges)``.
    """

    states: tuple[str, ...]
    source: np.ndarray
    target: np.ndarray
    prob: np.ndarray
    escape: np.ndarray
    V: np.ndarray
    edges: tuple[np.ndarray, np.ndarray]
    cycle_affinity: np.ndarray

    @property
    def n_states(self) -> int:
        return len(self.states)

    def dense(self) -> np.ndarray:
        """Dense ``(S, S+1)`` kernel: ``T[i, j]`` for moves, escape in the last column."""
        n = self.n_states
        t = np.zeros((n, n + 1))
        t[self.source, self.target] = self.prob
        t[:, n] = self.escape
        return t

    def kernel(self):
        """The true kernel as a :class:`~detailed_balance.kernel.TransitionKernel` ("escape")."""
        from .kernel import TransitionKernel

        return TransitionKernel(self.states, self.source, self.target, np.log(self.prob), "escape")

    def index_of(self, labels) -> np.ndarray:
        """Indices into this chain of state labels (e.g. ``counts.states`` of a sample)."""
        lookup = {s: i for i, s in enumerate(self.states)}
        return np.array([lookup[s] for s in labels], dtype=np.int64)


def random_graph(
    n_states: int, degree: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Connected sparse random graph with mean degree about ``degree``: edges ``a < b``, sorted.

    A random recursive tree makes it connected; uniform random extra edges fill up to
    ``n * degree / 2`` edges (capped at the complete graph).

    Parameters
    ----------
    n_states : int
        Number of states.
    degree : float
        Target mean degree.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    a, b : (E,) int arrays
        Endpoints of each undirected edge, ``a < b``, sorted.
    """
    n = n_states
    perm = rng.permutation(n)
    k = np.arange(1, n)
    parent = perm[(rng.random(n - 1) * k).astype(np.int64)]
    keys = set(_edge_keys(perm[1:], parent, n).tolist())
    wanted = min(int(round(n * degree / 2)), n * (n - 1) // 2)
    while len(keys) < wanted:
        m = 2 * (wanted - len(keys)) + 8
        u, v = rng.integers(0, n, m), rng.integers(0, n, m)
        ok = u != v
        for key in _edge_keys(u[ok], v[ok], n).tolist():
            if len(keys) >= wanted:
                break
            keys.add(key)
    arr = np.sort(np.fromiter(keys, dtype=np.int64, count=len(keys)))
    return arr // n, arr % n


def _edge_keys(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(u, v) * n + np.maximum(u, v)


def _check_setup(n_states: int, width: float, degree: float, escape: float) -> None:
    if n_states < 2:
        raise DataError("a synthetic chain needs at least 2 states")
    if not 0 <= escape < 1:
        raise DataError(f"escape must be in [0, 1), got {escape}")
    if width < 0 or degree < 1:
        raise DataError("width must be >= 0 and degree >= 1")


def _build(n_states, potential, width, degree, escape, seed, affinity) -> SyntheticChain:
    _check_setup(n_states, width, degree, escape)
    rng = np.random.default_rng(seed)
    a, b = random_graph(n_states, degree, rng)
    if potential is None:
        V = rng.normal(0.0, width, n_states)
    else:
        V = np.asarray(potential, dtype=float)
        if V.shape != (n_states,):
            raise DataError(f"potential must have shape ({n_states},), got {V.shape}")
    V = V - V.mean()
    basis = fundamental_cycles(n_states, a, b)
    aff = np.zeros(basis.n_cycles)
    if affinity is not None:
        aff = np.broadcast_to(np.asarray(affinity, dtype=float), (basis.n_cycles,)).copy()
    # arcs a->b then b->a; Metropolis weights give T_ij / T_ji = exp(V_i - V_j) exactly
    src = np.concatenate([a, b])
    tgt = np.concatenate([b, a])
    log_w = np.minimum(0.0, V[src] - V[tgt])
    # drive: +A/2 on the chord's a->b arc, -A/2 on b->a; each fundamental cycle walks its own
    # chord a->b and no other chord, so its affinity is exactly A (the V terms telescope)
    drive = np.zeros(len(a))
    drive[basis.chords] = aff / 2
    log_w = log_w + np.concatenate([drive, -drive])
    w = np.exp(log_w)
    row = np.bincount(src, weights=w, minlength=n_states)
    # ONE global scale keeps every ratio exact and every escape >= the asked escape
    prob = w * (1.0 - escape) / row.max()
    order = np.lexsort((tgt, src))
    src, tgt, prob = src[order], tgt[order], prob[order]
    esc = 1.0 - np.bincount(src, weights=prob, minlength=n_states)
    width_digits = len(str(n_states - 1))
    states = tuple(f"s{i:0{width_digits}d}" for i in range(n_states))
    return SyntheticChain(states, src, tgt, prob, np.clip(esc, 0.0, 1.0), V, (a, b), aff)


def reversible_chain(
    n_states: int,
    *,
    potential=None,
    width: float = 1.0,
    degree: float = 4,
    escape: float = 0.5,
    seed: int = 0,
) -> SyntheticChain:
    """A chain that satisfies detailed balance with potential ``V`` exactly.

    ``T(j<-i) = c * min(1, exp(V_i - V_j))`` on the arcs of a connected random graph with mean
    degree ``degree``; ``V ~ Normal(0, width)`` unless ``potential`` is given; the single global
    constant ``c`` leaves every state an escape probability of at least ``escape``.

    Parameters
    ----------
    n_states : int
        Number of states (at least 2).
    potential : (S,) array_like, optional
        The potential; centred to mean zero. Drawn from ``Normal(0, width)`` if None.
    width : float
        Standard deviation of the random potential.
    degree : float
        Mean degree of the proposal graph (at least 1).
    escape : float
        Lower bound on every state's escape probability, in ``[0, 1)``.
    seed : int
        Seed of the graph and the potential.

    Returns
    -------
    SyntheticChain
        The chain with its true potential (``cycle_affinity`` all zero).

    Examples
    --------
    Every arc obeys detailed balance with the chain's potential,
    log T(j←i) − log T(i←j) = V_i − V_j:

    >>> import numpy as np
    >>> chain = reversible_chain(6, seed=0)
    >>> T = dict(zip(zip(chain.source.tolist(), chain.target.tolist()), chain.prob))
    >>> all(np.isclose(np.log(T[i, j] / T[j, i]), chain.V[i] - chain.V[j]) for i, j in T)
    True
    """
    return _build(n_states, potential, width, degree, escape, seed, None)


def driven_chain(
    n_states: int,
    *,
    affinity=1.0,
    width: float = 1.0,
    degree: float = 4,
    escape: float = 0.5,
    seed: int = 0,
    potential=None,
) -> SyntheticChain:
    """A non-reversible chain: the reversible chain times ``exp(±A/2)`` on each cycle's chord.

    Every cycle of ``graph.fundamental_cycles(S, *chain.edges)`` has affinity
    ``sum log T(fwd)/T(bwd) = affinity`` nats (a scalar, or one value per cycle).

    Parameters
    ----------
    n_states : int
        Number of states (at least 2).
    affinity : float or (C,) array_like
        Affinity in nats of each fundamental cycle.
    width, degree, escape, seed, potential
        As in :func:`reversible_chain`.

    Returns
    -------
    SyntheticChain
        The chain; ``V`` is the potential of its gradient part.

    Examples
    --------
    >>> import numpy as np
    >>> chain = driven_chain(6, affinity=1.0, seed=0)
    >>> np.allclose(chain.cycle_affinity, 1.0)  # every fundamental cycle carries 1 nat
    True
    """
    return _build(n_states, potential, width, degree, escape, seed, affinity)


# ---- sampling ----------------------------------------------------------------------------------
class _Sampler:
    """Vectorised categorical draws from the sparse rows (arcs sorted by source)."""

    def __init__(self, chain: SyntheticChain):
        n = chain.n_states
        self.target = chain.target
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(chain.source, minlength=n))])
        cs = np.cumsum(chain.prob)
        start = np.concatenate([[0.0], cs])[self.indptr[:-1]]
        # row i's cumulative probabilities live in (i, i+1]: one searchsorted serves every row
        self.key = cs - start[chain.source] + chain.source

    def draw(self, sources: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Target index of each attempt, -1 for an escape."""
        pos = np.searchsorted(self.key, sources + u, side="right")
        # rounding can leave the previous row's last key a hair above ``sources``
        pos = np.maximum(pos, self.indptr[sources])
        hit = pos < self.indptr[sources + 1]
        return np.where(hit, self.target[np.minimum(pos, len(self.target) - 1)], -1)


def sample_counts(
    chain: SyntheticChain,
    *,
    design: str = "budget",
    attempts_per_source: int = 200,
    total_attempts: int | None = None,
    seed: int = 0,
    self_fraction: float = 0.0,
    start: int | None = None,
) -> TransitionCounts:
    """Sample attempts from ``chain`` with one of the three designs; deterministic under ``seed``.

    Parameters
    ----------
    chain : SyntheticChain
        The true chain to sample from.
    design : {"budget", "discovered", "trajectory"}
        ``"budget"``: every state gets ``attempts_per_source`` attempts (or ``total_attempts``
        spread evenly). ``"discovered"`` (the paper's): each attempt's source is drawn uniformly
        from the states discovered so far, starting from one seed state. ``"trajectory"``: one
        walk; a move goes to its target, an escape stays put.
    attempts_per_source : int
        Attempts per state when ``total_attempts`` is None.
    total_attempts : int, optional
        Total attempts; defaults to ``attempts_per_source * n_states``.
    seed : int
        Seed of the draws.
    self_fraction : float
        Share of escapes recorded as self-transitions; the rest are rejections.
    start : int, optional
        Seed state of the "discovered" and "trajectory" designs (random under ``seed`` if None).

    Returns
    -------
    TransitionCounts
        Over all states for "budget"; over the states seen (in chain order) otherwise. Map them
        to the truth with ``chain.index_of(counts.states)``.

    Examples
    --------
    >>> chain = reversible_chain(6, seed=0)
    >>> sample_counts(chain, attempts_per_source=50, seed=1)  # "budget": 50 attempts per state
    TransitionCounts(6 states, 300 attempts, 23 distinct moves, 179 rejected)
    >>> sample_counts(chain, design="discovered", total_attempts=300, start=0, seed=1).n_states
    6
    """
    if design not in DESIGNS:
        raise DataError(f"unknown design {design!r} (use one of {', '.join(DESIGNS)})")
    n = chain.n_states
    total = attempts_per_source * n if total_attempts is None else int(total_attempts)
    rng = np.random.default_rng(seed)
    sampler = _Sampler(chain)
    first = int(rng.integers(n)) if start is None else int(start)
    if design == "budget":
        per = np.full(n, total // n)
        per[: total % n] += 1
        src = np.repeat(np.arange(n), per)
        tgt = sampler.draw(src, rng.random(len(src)))
    elif design == "discovered":
        src, tgt = _discovered(sampler, n, total, first, rng)
    else:
        src, tgt = _trajectory(sampler, total, first, rng)
    is_self = (tgt < 0) & (rng.random(len(tgt)) < self_fraction)
    tgt = np.where(is_self, src, tgt)
    return _to_counts(chain, src, tgt, all_states=design == "budget")


def _discovered(
    sampler: _Sampler, n: int, total: int, first: int, rng
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's design, exact: the discovered set is constant between discoveries."""
    found = np.zeros(n, dtype=bool)
    found[first] = True
    order = [first]
    src_parts, tgt_parts = [], []
    done = 0
    while done < total:
        block = total - done if len(order) == n else min(total - done, 32 + 2 * len(order))
        pool = np.asarray(order)
        s = pool[rng.integers(0, len(pool), block)]
        t = sampler.draw(s, rng.random(block))
        new = (t >= 0) & ~found[np.maximum(t, 0)]
        stop = int(np.argmax(new)) + 1 if new.any() else block
        src_parts.append(s[:stop])
        tgt_parts.append(t[:stop])
        done += stop
        if new.any():
            found[t[stop - 1]] = True
            order.append(int(t[stop - 1]))
    return np.concatenate(src_parts), np.concatenate(tgt_parts)


def _trajectory(sampler: _Sampler, total: int, first: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """One walk; sequential by nature, so plain Python floats and bisect keep each step cheap."""
    key = sampler.key.tolist()
    indptr = sampler.indptr.tolist()
    targets = sampler.target.tolist()
    u = rng.random(total).tolist()
    src = np.empty(total, dtype=np.int64)
    tgt = np.empty(total, dtype=np.int64)
    s = first
    for k in range(total):
        pos = max(bisect_right(key, s + u[k]), indptr[s])
        src[k] = s
        if pos < indptr[s + 1]:
            s = targets[pos]
            tgt[k] = s
        else:
            tgt[k] = -1
    return src, tgt


def _to_counts(chain: SyntheticChain, src, tgt, *, all_states: bool) -> TransitionCounts:
    """Aggregate integer attempts first, so TransitionCounts sees one record per distinct cell."""
    n = chain.n_states
    code, cnt = np.unique(src * (n + 1) + (tgt + 1), return_counts=True)
    s, t = code // (n + 1), code % (n + 1) - 1
    labels = np.asarray(chain.states, dtype=object)
    seen = np.arange(n) if all_states else np.unique(np.concatenate([s, t[t >= 0]]))
    targets = np.where(t >= 0, labels[np.maximum(t, 0)], None)
    return TransitionCounts.from_records(labels[s], targets, cnt, states=labels[seen].tolist())


# ---- an independent generator and relabelling (for calibration on data unlike the above) -------
def conductance_chain(
    n_states: int,
    *,
    degree: float = 3,
    spread: float = 1.0,
    move: tuple[float, float] = (0.2, 0.9),
    affinity=None,
    seed: int = 0,
) -> SyntheticChain:
    """A reversible chain built unlike :func:`reversible_chain`: T(b<-a) = x_ab / m_a.

    Symmetric conductances ``x_ab ~ LogNormal(0, spread)`` on a connected random graph of mean
    degree ``degree``; per-state masses ``m_a`` chosen so each state moves with a probability
    drawn uniformly from ``move`` (so escapes vary from state to state). Detailed balance holds
    with ``π ∝ m``, i.e. V = −log m (heavy-tailed, not Gaussian, and tied to the degree).
    ``affinity`` (nats per fundamental cycle of ``graph.fundamental_cycles``) drives it as
    :func:`driven_chain` does, by ``exp(±A/2)`` on each chord's arcs.

    Parameters
    ----------
    n_states : int
        Number of states (at least 2).
    degree : float
        Mean degree of the proposal graph.
    spread : float
        Log-scale standard deviation of the conductances.
    move : (float, float)
        Range of each state's total move probability.
    affinity : float or (C,) array_like, optional
        Drive in nats per fundamental cycle; None for a reversible chain.
    seed : int
        Seed of the graph, conductances and masses.

    Returns
    -------
    SyntheticChain
        The chain with ``V = -log m`` (mean zero).
    """
    _check_setup(n_states, 0.0, degree, 0.0)
    rng = np.random.default_rng(seed)
    a, b = random_graph(n_states, degree, rng)
    x = rng.lognormal(0.0, spread, len(a))
    basis = fundamental_cycles(n_states, a, b)
    drive = np.zeros(len(a))
    if affinity is not None:
        drive[basis.chords] = np.broadcast_to(np.asarray(affinity, float), (basis.n_cycles,)) / 2
    src, tgt = np.concatenate([a, b]), np.concatenate([b, a])
    w = np.concatenate([x * np.exp(drive), x * np.exp(-drive)])
    moving = rng.uniform(*move, n_states)
    m = np.bincount(src, weights=w, minlength=n_states) / moving
    prob = w / m[src]
    order = np.lexsort((tgt, src))
    src, tgt, prob = src[order], tgt[order], prob[order]
    esc = 1.0 - np.bincount(src, weights=prob, minlength=n_states)
    V = -np.log(m)
    digits = len(str(n_states - 1))
    states = tuple(f"s{i:0{digits}d}" for i in range(n_states))
    aff = drive[basis.chords] * 2
    return SyntheticChain(states, src, tgt, prob, np.clip(esc, 0.0, 1.0), V - V.mean(), (a, b), aff)


def relabel_counts(counts: TransitionCounts, seed: int = 0) -> TransitionCounts:
    """The same counts under random state names in a random order (for invariance checks).

    Parameters
    ----------
    counts : TransitionCounts
        The counts to relabel.
    seed : int
        Seed of the new names and their order.

    Returns
    -------
    TransitionCounts
        The same transitions under names ``q<8 hex digits>``.
    """
    rng = np.random.default_rng(seed)
    n = counts.n_states
    names = np.array([f"q{v:08x}" for v in rng.choice(16**8, n, replace=False)], dtype=object)
    order = rng.permutation(n)
    src = names[counts.source].tolist() + names[np.arange(n)].tolist() * 2
    tgt = names[counts.target].tolist() + names[np.arange(n)].tolist() + [None] * n
    cnt = counts.count.tolist() + counts.self_count.tolist() + counts.rejected.tolist()
    keep = [k for k, c in enumerate(cnt) if c > 0]
    return TransitionCounts.from_records(
        [src[k] for k in keep],
        [tgt[k] for k in keep],
        [cnt[k] for k in keep],
        states=names[order].tolist(),
    )
