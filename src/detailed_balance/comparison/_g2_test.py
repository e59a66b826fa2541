"""The likelihood-ratio (G²) test of reversibility, with an exact conditional p-value.

Array code only (numpy/scipy).

The statistic. G² = 2 (log-likelihood of the row frequencies − that of the reversible MLE). The
reversible MLE is the classic fixed point for a symmetric flow matrix X with free diagonal (Bowman
et al. 2009; Prinz et al. 2011, the estimator deeptime uses): ``x_ab <- (c_ab + c_ba) / (c_a / x_a
+ c_b / x_b)`` with ``x_a = sum_b x_ab``, the rest category (self + rejected) of each source
playing the diagonal; batched over count tables.

The p-value (default): exact conditional, by Markov chain Monte Carlo over count tables. Row i is
Multinomial(n_i) over its support neighbours and ``rest``; the reversible chains form an
exponential family (quasi-symmetry) whose sufficient statistics are the edge totals C_ab + C_ba,
the rest counts and the row totals (the column sums follow from them). Given those, the null
distribution of the table is free of parameters, P(C | stats) ∝ Π 1/C_ab!, and the reversible MLE
is the same for every table with those statistics, so G² = 2 Σ C log C + const on that set (the
"fiber"): no refit per table. The fiber is the set of integer circulations z (z_e = change of
C_ab, −C_ab <= z_e <= C_ba) on the support graph; its constraint matrix is a network matrix
(totally unimodular), so the moves ±1 around simple cycles (its Graver basis) connect every fiber
(Diaconis & Sturmfels 1998). Metropolis over such moves, with the Besag & Clifford (1989)
parallel scheme (k steps from the observed table to a pivot, then k steps from the pivot in each
of M independent chains), gives a p-value that is exactly valid (P(p <= α) <= α under
reversibility) at any sparsity and any run length: poor mixing costs power, never size.
Two exact kernels: fixed cycles of random spanning forests (``kernel="cycles"``, numpy), and
from 1,000 testable edges on a walk along the current table's own arcs that closes a movable
loop (``kernel="walk"``, ``_g2_walk``): on large sparse tables a fixed cycle is rarely movable.

Testable cycles. Arcs between different strongly connected classes of the observed transitions
(arcs with C > 0) are identical on the whole fiber (the flow across a cut with no arc seen into
it is fixed), so only cycles inside those classes can carry a violation the data could show:
df = Σ over classes (edges inside − states inside + 1). With df = 0 there is nothing to test.

Why not the parametric bootstrap (``method="bootstrap"``, kept for comparison): replicates drawn at
the reversible MLE of sparse counts have smaller G² than the true null, so its p-value is
anticonservative on sparse data (42% rejections of reversible 40-state chains at 10 attempts per
source, 13% at 25: issue 10). The chi² p-value on the testable df is reported beside either.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.special import xlogy  # c log p, 0 where c == 0

from ..counts import TransitionCounts
from ..errors import FitError
from ..modeldata import ModelData, build_model_data

TREE_NOTE = (
    "the support graph has no cycles: every Markov chain on a tree is reversible, so these data "
    "cannot test detailed balance"
)
ONE_WAY_NOTE = (
    "no testable cycle: every cycle of the support graph passes through a transition seen one "
    "way only with no observed way back (the observed transitions have no directed cycle through "
    "three or more states), so no count table with these totals differs from the observed one "
    "and the data cannot show a violation of detailed balance"
)
METHODS = ("conditional", "bootstrap")
KERNELS = ("auto", "walk", "cycles")
# "auto" uses the cycle walk from this many testable edges on (a property of the fiber, so the
# choice keeps the p-value exact): measured faster per effective table at 645 states (2,947
# edges), slower at 40 and 200 states (benchmarks/bench_g2.py)
WALK_MIN_EDGES = 1000
MST_EVERY = 5  # every fifth spanning forest is a uniform-weight MST (any cycle can appear)
TREES = 10  # spanning forests whose fundamental cycles are the moves


def _segment_matrix(n: int, *indices: np.ndarray):
    """M with ``values @ M`` = per-segment sums: row k adds 1 at each ``index[k]`` (of each index).

    Dense while small (fast batched matmul), sparse otherwise (a 600-state graph's dense
    matrix made each fixed-point iteration 100 times slower).
    """
    rows = np.concatenate([np.arange(len(ix)) for ix in indices])
    cols = np.concatenate(indices)
    m = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(indices[0]), n))
    return m.toarray() if m.shape[0] * n <= 200_000 else m


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
    tol, max_iter : float, int
        Convergence tolerance and iteration limit of the fixed-point iteration.

    Returns
    -------
    dict
        ``log_lik`` (B,) or scalar, ``p_arc`` (.., 2E) and ``p_rest`` (.., S) (fitted
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


# ---- testable cycles ---------------------------------------------------------------------------
def strong_class_edges(data: ModelData, arc_count=None) -> tuple[np.ndarray, int]:
    """Edges whose counts can vary with the sufficient statistics fixed, and the testable df.

    An edge is testable when both its states lie in one strongly connected class of the observed
    transitions (arcs with count > 0); every other arc is fixed on the whole fiber. The df is the
    dimension of the fiber: Σ over classes (edges inside − states inside + 1).

    Parameters
    ----------
    data : ModelData
        The support graph and its counts.
    arc_count : (2E,) array, optional
        Other arc counts on the same graph.

    Returns
    -------
    inside : (E,) bool
    df : int
    """
    from scipy.sparse.csgraph import connected_components

    arc = np.asarray(data.arc_count if arc_count is None else arc_count)
    seen = arc > 0
    graph = sparse.csr_array(
        (np.ones(int(seen.sum())), (data.arc_source[seen], data.arc_target[seen])),
        shape=(data.n_states, data.n_states),
    )
    n_class, label = connected_components(graph, directed=True, connection="strong")
    n_e = data.n_edges
    inside = label[data.arc_source[:n_e]] == label[data.arc_target[:n_e]]
    # each class's inside edges connect it (it is strongly connected), so its cycle rank is
    # E_in - V_in + 1; summed over all classes (singletons add 0): E_in - S + classes
    return inside, int(inside.sum()) - data.n_states + int(n_class)


# ---- cycle moves -------------------------------------------------------------------------------
def _spanning_forest(n: int, a: np.ndarray, b: np.ndarray, rng, random_tree: bool):
    """Parent (-1 at a root) and depth of every node in a random spanning forest of (a, b).

    ``random_tree``: the minimum spanning forest under iid uniform edge weights, which is every
    spanning forest with positive probability (so every simple cycle is a fundamental cycle of
    one of them). Otherwise a breadth-first forest from random roots with a random neighbour
    order: short fundamental cycles, which sparse counts accept far more often.
    """
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    perm = rng.permutation(n)  # random labels randomise BFS roots and neighbour order
    pa, pb = perm[a], perm[b]
    if random_tree:
        w = sparse.coo_array((rng.random(len(a)) + 1e-3, (pa, pb)), shape=(n, n))
        t = sparse.coo_array(minimum_spanning_tree(w))
        pa, pb = t.row.astype(np.int64), t.col.astype(np.int64)
    # one virtual root n joined to the first (random) node of every component: one BFS
    from scipy.sparse.csgraph import connected_components

    _, comp = connected_components(
        sparse.coo_array((np.ones(len(pa)), (pa, pb)), shape=(n, n)), directed=False
    )
    roots = np.unique(comp, return_index=True)[1]
    ra = np.concatenate([pa, np.full(len(roots), n)])
    rb = np.concatenate([pb, roots])
    g = sparse.csr_array((np.ones(len(ra)), (ra, rb)), shape=(n + 1, n + 1))
    order, pred = breadth_first_order(g, n, directed=False, return_predecessors=True)
    depth = np.zeros(n + 1, dtype=np.int64)
    for v in order[1:].tolist():  # BFS order: a parent comes before its children
        depth[v] = depth[pred[v]] + 1
    inv = np.argsort(perm)
    parent = np.where(pred[perm] == n, -1, inv[np.clip(pred[perm], 0, n - 1)])
    parent = np.where(pred[perm] < 0, -1, parent)
    return parent, depth[perm]


def _edge_index(n: int, a: np.ndarray, b: np.ndarray):
    key = np.minimum(a, b) * n + np.maximum(a, b)
    order = np.argsort(key)
    sorted_key = key[order]

    def lookup(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        q = np.minimum(u, v) * n + np.maximum(u, v)
        return order[np.searchsorted(sorted_key, q)]

    return lookup


def _fundamental_cycles(n, a, b, parent, depth, lookup):
    """Fundamental cycles of the chords of a forest, vectorised: (cycle id, edge, sign) triples.

    Cycle c walks its chord a -> b, then from b up to the common ancestor and down to a; sign +1
    where it walks an edge a -> b (``a`` the edge's first state).
    """
    tree = np.zeros(len(a), dtype=bool)
    child = np.flatnonzero(parent >= 0)
    tree[lookup(child, parent[child])] = True
    chords = np.flatnonzero(~tree)
    ids = [np.arange(len(chords))]
    edges = [chords]
    signs = [np.ones(len(chords), dtype=np.int64)]
    x, y = b[chords].copy(), a[chords].copy()  # x climbs walking forward, y climbs backward
    cid = np.arange(len(chords))
    while len(cid):
        up_x = depth[x] >= depth[y]
        up_y = depth[y] >= depth[x]
        for climb, node, direction in ((up_x, x, 1), (up_y, y, -1)):
            nd, par = node[climb], parent[node[climb]]
            e = lookup(nd, par)
            ids.append(cid[climb])
            edges.append(e)
            # walking nd -> par is a -> b of edge e when nd is its first state
            signs.append(direction * np.where(a[e] == nd, 1, -1))
            node[climb] = par
        going = x != y
        x, y, cid = x[going], y[going], cid[going]
    ids, edges, signs = np.concatenate(ids), np.concatenate(edges), np.concatenate(signs)
    order = np.argsort(ids, kind="stable")
    return ids[order], edges[order], signs[order], len(chords)


def cycle_groups(
    n: int, a: np.ndarray, b: np.ndarray, *, trees: int = 10, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cycle moves, packed into groups of edge-disjoint cycles.

    The cycles are the fundamental cycles of ``trees`` random spanning forests of (a, b): most
    breadth-first from random roots (short cycles, which sparse counts accept far more often),
    every fifth a minimum spanning forest under iid uniform weights (any simple cycle can
    appear). Duplicates are dropped; a random first-fit packing puts them into groups whose
    cycles share no edge, so one step can move all of a group's cycles independently. Built
    from the graph alone, never from the counts: the same moves for every table of a fiber.

    Parameters
    ----------
    n : int
        Number of nodes.
    a, b : (E,) int arrays
        Undirected edges.
    trees : int
        Number of random spanning forests.
    seed : int
        Seed of the forests and the packing.

    Returns
    -------
    list of (edge, sign, start)
        A group's edges (cycle after cycle), their orientations (±1) and where each cycle starts.
    """
    rng = np.random.default_rng(seed)
    lookup = _edge_index(n, a, b)
    cycles, seen = [], set()
    for k in range(trees):
        parent, depth = _spanning_forest(n, a, b, rng, random_tree=k % MST_EVERY == 0)
        ids, e, s, n_cyc = _fundamental_cycles(n, a, b, parent, depth, lookup)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=n_cyc))])
        for c in range(n_cyc):
            ce, cs = e[bounds[c] : bounds[c + 1]], s[bounds[c] : bounds[c + 1]]
            key = tuple(np.sort(ce).tolist())
            if key not in seen:
                seen.add(key)
                cycles.append((ce, cs))
    used = np.zeros((8, len(a)), dtype=bool)  # used[g, e]: group g holds edge e
    members: list[list[int]] = []
    for c in rng.permutation(len(cycles)).tolist():
        ce = cycles[c][0]
        free = np.flatnonzero(~used[: len(members), ce].any(axis=1))
        if len(free):
            g = int(free[0])
        else:
            g = len(members)
            members.append([])
            if g == len(used):
                used = np.vstack([used, np.zeros_like(used)])
        used[g, ce] = True
        members[g].append(c)
    groups = []
    for cs in members:
        edge = np.concatenate([cycles[c][0] for c in cs])
        sign = np.concatenate([cycles[c][1] for c in cs])
        start = np.cumsum([0] + [len(cycles[c][0]) for c in cs[:-1]])
        groups.append((edge, sign, np.asarray(start, dtype=np.int64)))
    return groups


class _Fiber:
    """Metropolis over the tables of one fiber, M chains in lock-step (arrays (M, E)).

    State: ``x[m, e]`` = count of edge e's a -> b arc (its b -> a arc holds ``total[e] - x``).
    Target ∝ Π 1 / (x! (total - x)!), a product over edges, so Metropolis moves on edge-disjoint
    cycles commute and one step moves every cycle of a group at once, each with its own
    direction (±1, uniform: a symmetric proposal) and its own accept/reject.
    """

    def __init__(self, total: np.ndarray, groups, seed: int):
        self.total = total
        # each group with the index of every edge's cycle (to spread a cycle's direction)
        self.groups = [
            (e, s, st, np.repeat(np.arange(len(st)), np.diff(np.append(st, len(e)))))
            for e, s, st in groups
        ]
        top = int(total.max()) + 2
        with np.errstate(divide="ignore"):
            self.log = np.log(np.arange(top, dtype=float))  # log 0 = -inf: infeasible moves
        self.xlx = xlogy(np.arange(top), np.arange(top))
        self.rng = np.random.default_rng(seed)
        self.accepted = 0
        self.proposed = 0

    def statistic(self, x: np.ndarray) -> np.ndarray:
        """Σ C log C over both arcs of every edge (G² / 2 up to a constant of the fiber)."""
        return np.sum(self.xlx[x] + self.xlx[self.total - x], axis=-1)

    def run(self, x: np.ndarray, sequence, record: int = 0) -> np.ndarray:
        """Apply the groups of ``sequence`` in order to every chain (in place).

        Returns ``record`` snapshots of the statistic, evenly spaced, the last at the end:
        (record, M).
        """
        m = x.shape[0]
        rng, log = self.rng, self.log
        marks = set(np.linspace(0, len(sequence), record + 1).round().astype(int)[1:].tolist())
        trace = []
        for step, g in enumerate(sequence, start=1):
            edge, sign, start, cycle = self.groups[g]
            d = 2 * rng.integers(0, 2, size=(m, len(start))) - 1
            s = sign * d[:, cycle]
            old = x[:, edge]
            t = self.total[edge]
            # log π(new) - log π(old), cell by cell: -inf when a count would leave [0, total]
            delta = np.where(s > 0, log[t - old] - log[old + 1], log[old] - log[t - old + 1])
            accept = np.log(rng.random((m, len(start)))) < np.add.reduceat(delta, start, axis=1)
            self.proposed += accept.size
            self.accepted += int(accept.sum())
            x[:, edge] = old + s * accept[:, cycle]
            if step in marks:
                trace.append(self.statistic(x))
        return np.array(trace).reshape(-1, m)


def _on_cycles(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Edges on some cycle (not bridges): the edges of the fundamental cycles of one forest.

    A forest edge lies on a cycle exactly when some chord's fundamental cycle crosses it.
    """
    parent, depth = _spanning_forest(n, a, b, np.random.default_rng(0), random_tree=False)
    _, edges, _, _ = _fundamental_cycles(n, a, b, parent, depth, _edge_index(n, a, b))
    return np.isin(np.arange(len(a)), edges)


def integrated_time(trace: np.ndarray) -> float:
    """Integrated autocorrelation time, in records, of a statistic traced over parallel chains.

    Geyer's (1992) initial positive sequence on the autocorrelation averaged over the chains,
    with one grand mean. ``trace`` is (records, chains); at least 1.
    """
    x = np.asarray(trace, dtype=float)
    x = x - x.mean()
    n = len(x)
    var = float(np.mean(x**2))
    if n < 2 or var <= 0:
        return 1.0
    rho = np.array([np.mean(x[h:] * x[: n - h]) / var for h in range(n)])
    tau, h = -1.0, 0
    while h + 1 < n and rho[h] + rho[h + 1] > 0:
        tau += 2.0 * (rho[h] + rho[h + 1])
        h += 2
    return max(tau, 1.0)


def _walk_draws(data: ModelData, idx: np.ndarray, samples: int, moves: int, seed: int):
    """Besag–Clifford draws with the cycle-walk kernel of ``_g2_walk``.

    The kernel is π-reversible, so the pivot is ``moves`` moves from the observed table and the
    M tables are ``moves`` moves from the pivot each. The acceptance returned is the share of
    moves that changed the table.
    """
    from ._g2_walk import WalkFiber

    n_e = data.n_edges
    a, b = data.arc_source[:n_e][idx], data.arc_target[:n_e][idx]
    # bridges carry no circulation (fixed on the fiber) and only lead walks into dead ends
    keep = _on_cycles(data.n_states, a, b)
    idx, a, b = idx[keep], a[keep], b[keep]
    count = np.concatenate([data.arc_count[:n_e][idx], data.arc_count[n_e:][idx]])
    fiber = WalkFiber(data.n_states, np.concatenate([a, b]), np.concatenate([b, a]),
                      np.rint(count).astype(np.int64), seed + 1)  # fmt: skip
    t_obs = float(fiber.statistic(fiber.arc_count))
    slot, arc, _ = fiber.run(fiber.slot_arc[None], fiber.arc_count[None], moves)
    slot, arc = np.repeat(slot, samples, axis=0), np.repeat(arc, samples, axis=0)
    slot, arc, trace = fiber.run(slot, arc, moves, record=True)
    t_draw = fiber.statistic(arc)
    trace[-1] = t_draw  # the running sums are float32; the p-value uses exact ones
    return t_obs, t_draw, trace.astype(float), fiber.flips / max(fiber.moves, 1)


def _cycle_draws(data, a, b, total, forward, samples: int, sweeps: int, seed: int):
    """Besag–Clifford draws with Metropolis moves on fixed groups of cycles (the older kernel)."""
    groups = cycle_groups(data.n_states, a, b, trees=TREES, seed=seed)
    fiber = _Fiber(total, groups, seed + 1)
    # a group is picked in proportion to its cycles (groups of many short cycles do most of the
    # work); the law of the sequence is fixed by the graph, so the chain stays exact
    size = np.array([len(g[2]) for g in groups], dtype=float)
    sequence = fiber.rng.choice(len(groups), size=sweeps, p=size / size.sum())
    t_obs = float(fiber.statistic(forward))
    pivot = forward[None, :].copy()
    # Besag & Clifford: the pivot is the observed table run backwards in time, i.e. through the
    # adjoint kernel (the same reversible group moves in reverse order); the M tables run
    # forwards from it. Given the sequence, observed and drawn tables are exchangeable under
    # reversibility, whatever the mixing.
    fiber.run(pivot, sequence[::-1])
    x = np.repeat(pivot, samples, axis=0)
    trace = fiber.run(x, sequence, record=min(40, sweeps))
    return t_obs, trace[-1], trace, fiber.accepted / max(fiber.proposed, 1)


def conditional_test(
    data: ModelData,
    *,
    samples: int = 999,
    sweeps: int = 1000,
    seed: int = 0,
    kernel: str = "auto",
) -> dict:
    """Exact conditional (Besag–Clifford parallel MCMC) p-value of G² on one count table.

    Parameters
    ----------
    data : ModelData
    samples : int
        M, the number of tables drawn from the pivot (independent chains).
    sweeps : int
        Chain length k. ``kernel="walk"``: cycle-walk moves (one unit reversed around one cycle
        each, when accepted); ``"cycles"``: Metropolis steps, each on one group of
        edge-disjoint fixed cycles. Fixed in advance, not from the counts, so the p-value
        stays exact; too short a chain only costs power (the result says so).
    seed : int
    kernel : {"auto", "walk", "cycles"}
        ``"auto"`` (default): ``"walk"`` when the fiber has at least ``WALK_MIN_EDGES``
        testable edges, else ``"cycles"``. ``"walk"``: the cycle-walk kernel of ``_g2_walk``
        (a count-weighted non-backtracking walk closes a loop of the current table; one unit
        is reversed around it after an exact Metropolis–Hastings check), which finds the few
        movable cycles of large sparse tables. ``"cycles"``: Metropolis on the fundamental
        cycles of random spanning forests (the older kernel; cheap steps, but it rejects ~99%
        of them on large sparse tables).

    Returns
    -------
    dict with ``df`` (testable cycles), ``p_value`` = (1 + #{T_m >= T_obs}) / (M + 1),
    ``p_value_se``, ``null_mean_shift`` (mean of G²_m − G²_obs), ``steps`` (k), ``acceptance``
    (share of proposed cycle moves accepted; for the walk, share of moves that changed the table),
    ``autocorrelation_steps`` (of the statistic, from the M chains), ``effective_samples``,
    ``kernel`` (the one used), ``note``; ``p_value`` is None when df = 0.
    """
    if kernel not in KERNELS:
        raise FitError(f"unknown G² kernel {kernel!r} (use one of {', '.join(KERNELS)})")
    inside, df = strong_class_edges(data)
    out = {"df": df, "p_value": None, "p_value_se": None, "null_mean_shift": None, "steps": 0,
           "acceptance": None, "autocorrelation_steps": None, "effective_samples": None,
           "kernel": None,
           "note": ""}  # fmt: skip
    if df == 0:
        return out
    n_e = data.n_edges
    idx = np.flatnonzero(inside)
    a, b = data.arc_source[:n_e][idx], data.arc_target[:n_e][idx]
    forward = np.asarray(data.arc_count[:n_e][idx], dtype=np.int64)
    total = forward + np.asarray(data.arc_count[n_e:][idx], dtype=np.int64)
    if kernel == "auto":
        kernel = "walk" if len(idx) >= WALK_MIN_EDGES else "cycles"
    out["kernel"] = kernel
    if kernel == "walk":
        t_obs, t_draw, trace, acceptance = _walk_draws(data, idx, samples, sweeps, seed)
    else:
        t_obs, t_draw, trace, acceptance = _cycle_draws(data, a, b, total, forward, samples,
                                                        sweeps, seed)  # fmt: skip
    tol = 1e-9 * max(1.0, abs(t_obs))
    p = (1 + int(np.sum(t_draw >= t_obs - tol))) / (samples + 1)
    # Mixing. The M draws share the pivot; two of them correlate about ρ(2k), ρ(h) the
    # autocorrelation of the statistic at lag h, read off the chains' second halves with one
    # grand mean (so that any leftover pull of the pivot counts as correlation) as
    # exp(-2k / τ): τ the larger of an AR(1) fit's time and the integrated autocorrelation
    # time (Geyer's initial positive sequence). The AR(1) fit alone misses slow components: at
    # 645 states it gave 394 steps where the integrated time over longer runs is ~2,900.
    half = trace[len(trace) // 2 :]
    lag = sweeps / len(trace)
    dev = half - half.mean()
    var = float(np.mean(dev**2))
    flat = var <= (1e-9 * max(1.0, abs(t_obs))) ** 2  # G² never moved: nothing to correlate
    rho1 = float(np.mean(dev[1:] * dev[:-1]) / var) if not flat and len(half) > 2 else 0.0
    if rho1 <= 0:
        tau, r = 0.0, 0.0
    else:
        tau = max(lag / -np.log(min(rho1, 1 - 1e-12)), lag * integrated_time(half))
        r = float(np.exp(-2 * sweeps / tau))
    ess = samples / (1 + (samples - 1) * r)
    out.update(
        p_value=p,
        p_value_se=float(np.sqrt(p * (1 - p) / ess)),
        null_mean_shift=float(2 * (t_draw.mean() - t_obs)),
        steps=int(sweeps),
        acceptance=acceptance,
        autocorrelation_steps=float(tau),
        effective_samples=float(ess),
    )
    if np.all(np.abs(trace - t_obs) <= tol):
        out["note"] = (
            "every sampled table with these totals has the same G² as the observed one: these "
            "counts cannot show a violation (p = 1 here is no evidence for reversibility)"
        )
    elif ess < samples / 2:
        out["note"] = (
            f"the conditional samplers mixed slowly ({ess:.0f} effective of {samples} tables): "
            "the p-value is still valid but noisy and conservative; raise likelihood_ratio_test's "
            "sweeps"
        )
    return out


def likelihood_ratio_test(
    counts: TransitionCounts,
    *,
    rest: bool = True,
    samples: int = 999,
    method: str = "conditional",
    sweeps: int = 1000,
    seed: int = 0,
    kernel: str = "auto",
) -> dict:
    """G² test of reversibility: row frequencies against the reversible MLE.

    Parameters
    ----------
    counts : TransitionCounts
    rest : bool
        Model the rest category (self + rejected) of each source, as the models do.
    samples : int
        Monte Carlo tables for the p-value (0: the chi² approximation only).
    method : {"conditional", "bootstrap"}
        ``"conditional"`` (default): the exact conditional test (:func:`conditional_test`),
        valid at any sparsity. ``"bootstrap"``: parametric bootstrap at the reversible MLE,
        kept for comparison only: anticonservative on sparse data (it rejected 42% of reversible
        40-state datasets at 10 attempts per source).
    sweeps : int
        Length of the conditional samplers (see :func:`conditional_test`).
    seed : int
    kernel : {"auto", "walk", "cycles"}
        The conditional samplers' moves (see :func:`conditional_test`).

    Returns
    -------
    dict with ``statistic`` (G²), ``df`` (testable independent cycles), ``df_support``
    (independent cycles of the support graph), ``p_value`` (the Monte Carlo one when
    ``samples > 0``, else chi²'s; None when nothing is testable), ``p_value_se`` (its Monte
    Carlo error), ``p_value_chi2`` (chi² on ``df``), ``method``, ``samples``,
    ``null_mean_statistic`` (mean G² of the Monte Carlo tables; chi² puts it at df),
    ``steps``, ``acceptance``, ``autocorrelation_steps``, ``effective_samples`` (conditional
    only), ``log_lik_free``, ``log_lik_reversible``, ``converged`` and ``note`` (why there is
    no test, or what to distrust).

    Examples
    --------
    >>> from detailed_balance.synthetic import driven_chain, sample_counts
    >>> chain = driven_chain(8, affinity=2.0, seed=1)  # every cycle driven by 2 nats
    >>> res = likelihood_ratio_test(sample_counts(chain, attempts_per_source=1000), samples=199)
    >>> res["df"], res["p_value"] <= 0.005  # no conditional table reached the observed G²
    (9, True)
    """
    from scipy.stats import chi2

    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 0:
        raise FitError(f"G² samples must be a whole number >= 0, got {samples!r}")
    if kernel not in KERNELS:
        raise FitError(f"unknown G² kernel {kernel!r} (use one of {', '.join(KERNELS)})")
    if method not in METHODS:
        raise FitError(f"unknown G² method {method!r} (use one of {', '.join(METHODS)})")
    if isinstance(sweeps, bool) or not isinstance(sweeps, int | np.integer) or sweeps < 1:
        raise FitError(f"G² sweeps must be a whole number >= 1, got {sweeps!r}")
    data = build_model_data(counts, rest=rest)
    ll_free = float(free_log_likelihood(data))
    out = {
        "statistic": None, "df": int(data.n_chords), "df_support": int(data.n_chords),
        "p_value": None, "p_value_se": None, "p_value_chi2": None, "method": method,
        "samples": int(samples), "null_mean_statistic": None, "steps": None, "acceptance": None,
        "kernel": None,
        "autocorrelation_steps": None, "effective_samples": None, "log_lik_free": ll_free,
        "log_lik_reversible": None, "converged": True, "note": "",
    }  # fmt: skip
    if data.n_chords == 0:
        out["df"] = 0
        out["note"] = TREE_NOTE
        return out
    _, df = strong_class_edges(data)
    out["df"] = df
    if df == 0:
        out["note"] = ONE_WAY_NOTE
        return out
    mle = reversible_mle(data)
    ll_rev = float(mle["log_lik"])
    g2 = max(2.0 * (ll_free - ll_rev), 0.0)
    out.update(
        statistic=g2,
        log_lik_reversible=ll_rev,
        converged=mle["converged"],
        p_value_chi2=float(chi2.sf(g2, df)),
    )
    out["p_value"] = out["p_value_chi2"]
    if samples == 0:
        if not mle["converged"]:
            out["note"] = "the reversible MLE did not converge: G² and its chi² p are unreliable"
        return out
    if method == "conditional":
        # the p-value needs no MLE (Σ C log C orders the fiber as G² does)
        res = conditional_test(data, samples=samples, sweeps=sweeps, seed=seed, kernel=kernel)
        keys = ("p_value", "p_value_se", "steps", "acceptance", "kernel",
                "autocorrelation_steps", "effective_samples", "note")  # fmt: skip
        out.update({k: res[k] for k in keys})
        out["null_mean_statistic"] = g2 + res["null_mean_shift"]
        if not mle["converged"]:
            out["note"] = "; ".join(filter(None, [out["note"], "the reversible MLE did not "
                                    "converge: the G² value shown is approximate (the "
                                    "conditional p-value does not use it)"]))  # fmt: skip
        return out
    if not mle["converged"]:
        out["note"] = "the reversible MLE did not converge: the statistic is unreliable"
        return out
    arc, rest_rep = simulate_counts(data, mle["p_arc"], mle["p_rest"], samples, seed)
    rep = reversible_mle(data, arc, rest_rep)
    g2_rep = 2.0 * (free_log_likelihood(data, arc, rest_rep) - rep["log_lik"])
    exceed = int(np.sum(g2_rep >= g2 - 1e-9 * max(1.0, g2)))
    p = (1 + exceed) / (samples + 1)
    out.update(
        p_value=p,
        p_value_se=float(np.sqrt(p * (1 - p) / (samples + 1))),
        null_mean_statistic=float(np.mean(g2_rep)),
        note="parametric bootstrap: anticonservative on sparse data (use the conditional test)",
    )
    if not rep["converged"]:
        out["note"] += "; some bootstrap refits stopped at the iteration cap"
    return out
