"""Graph algorithms on the state graph, as plain array code (no labels).

States are integers ``0..n-1``; an undirected edge list is two arrays ``a < b``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def undirected_edges(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges ``(a, b)``, ``a < b``, from directed pairs (self-pairs dropped).

    Examples
    --------
    >>> a, b = undirected_edges(np.array([0, 1, 1, 2, 3]), np.array([1, 0, 2, 0, 4]))
    >>> a.tolist(), b.tolist()
    ([0, 0, 1, 3], [1, 2, 2, 4])
    """
    a = np.minimum(source, target)
    b = np.maximum(source, target)
    keep = a != b
    pairs = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0)
    pairs = pairs.reshape(-1, 2)
    return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)


def component_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of every node of an undirected graph (isolated nodes alone).

    Examples
    --------
    >>> component_labels(5, np.array([0, 0, 1, 3]), np.array([1, 2, 2, 4])).tolist()
    [0, 0, 0, 1, 1]
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    adj = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(adj, directed=False)
    return labels.astype(np.int64)


@dataclass(frozen=True)
class CycleBasis:
    """A fundamental cycle basis of an undirected graph.

    Attributes
    ----------
    chords : (C,) edge indices not in the BFS spanning forest; cycle ``c`` closes chord ``c``.
    cycles : list of C lists of ``(edge_index, sign)``; sign +1 when the cycle walks the edge a→b.
        Each cycle is oriented so that it walks its chord a→b.
    nodes : list of C lists of the nodes visited, in order (first node = chord's ``a``).
    """

    chords: np.ndarray
    cycles: list[list[tuple[int, int]]]
    nodes: list[list[int]]

    @property
    def n_cycles(self) -> int:
        return len(self.chords)


def fundamental_cycles(n: int, a: np.ndarray, b: np.ndarray) -> CycleBasis:
    """Fundamental cycle basis from a BFS spanning forest: one cycle per chord.

    The number of cycles is ``E - n + (number of components)``, the dimension of the cycle space.

    Examples
    --------
    A triangle 0-1-2 plus the edge 3-4 has one independent cycle:

    >>> basis = fundamental_cycles(5, np.array([0, 0, 1, 3]), np.array([1, 2, 2, 4]))
    >>> basis.nodes
    [[1, 2, 0]]
    """
    edge_of: dict[tuple[int, int], int] = {}
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for e, (u, v) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        edge_of[(u, v)] = e
        nbrs[u].append(v)
        nbrs[v].append(u)
    parent = np.full(n, -1, dtype=np.int64)
    depth = np.full(n, -1, dtype=np.int64)
    in_tree = np.zeros(len(a), dtype=bool)
    for root in range(n):
        if depth[root] >= 0:
            continue
        depth[root] = 0
        queue = deque([root])
        while queue:
            u = queue.popleft()
            for v in nbrs[u]:
                if depth[v] < 0:
                    depth[v] = depth[u] + 1
                    parent[v] = u
                    in_tree[edge_of[(min(u, v), max(u, v))]] = True
                    queue.append(v)
    chords = np.flatnonzero(~in_tree)
    cycles, nodes = [], []
    for e in chords.tolist():
        u, v = int(a[e]), int(b[e])
        # tree paths u -> lca and v -> lca
        pu, pv = [u], [v]
        x, y = u, v
        while depth[x] > depth[y]:
            x = int(parent[x])
            pu.append(x)
        while depth[y] > depth[x]:
            y = int(parent[y])
            pv.append(y)
        while x != y:
            x, y = int(parent[x]), int(parent[y])
            pu.append(x)
            pv.append(y)
        # walk: u -> v along the chord, then v up to lca, then down to u
        walk = [u] + pv + pu[-2::-1]
        steps = []
        for s, t in zip(walk[:-1], walk[1:], strict=True):
            steps.append((edge_of[(min(s, t), max(s, t))], 1 if s < t else -1))
        cycles.append(steps)
        nodes.append(walk[:-1])
    return CycleBasis(chords=chords, cycles=cycles, nodes=nodes)
