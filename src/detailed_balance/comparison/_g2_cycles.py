"""The fixed-cycle kernel of the exact conditional G² test (``kernel="cycles"``, numpy).

The moves are ±1 around the fundamental cycles of random spanning forests of the testable edges,
grouped into edge-disjoint sets that one Metropolis step moves together (:class:`_Fiber`); the
Besag–Clifford draws come from :func:`_cycle_draws`. The fiber and the test are described in
``_g2_test``; the other kernel, a walk along the current table's arcs, is ``_g2_walk``.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.special import xlogy  # c log c, 0 where c == 0

MST_EVERY = 5  # every fifth spanning forest is a uniform-weight MST (any cycle can appear)
TREES = 10  # spanning forests whose fundamental cycles are the moves


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
