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

    Parameters
    ----------
    source, target : (M,) int arrays
        Directed pairs ``source -> target``.

    Returns
    -------
    a, b : (E,) int arrays
        The edges, ``a < b``, sorted.

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

    Parameters
    ----------
    n : int
        Number of nodes.
    a, b : (E,) int arrays
        Undirected edges.

    Returns
    -------
    (n,) int array
        Component label of each node, numbered from 0.

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
        Each cycle is oriented so that it walks its chord a→b, then the tree path back.
    nodes : list of C lists of the nodes visited, in order (first node = chord's ``a``).
    parent, depth, parent_edge : (n,) int arrays
        The spanning forest: each node's parent (-1 at a root), depth (0 at a root) and the edge
        to its parent (-1 at a root).
    """

    chords: np.ndarray
    cycles: list[list[tuple[int, int]]]
    nodes: list[list[int]]
    parent: np.ndarray
    depth: np.ndarray
    parent_edge: np.ndarray

    @property
    def n_cycles(self) -> int:
        return len(self.chords)


def fundamental_cycles(n: int, a: np.ndarray, b: np.ndarray) -> CycleBasis:
    """Fundamental cycle basis from a BFS spanning forest: one cycle per chord.

    The number of cycles is ``E - n + (number of components)``, the dimension of the cycle space.

    Parameters
    ----------
    n : int
        Number of nodes.
    a, b : (E,) int arrays
        Undirected edges with ``a < b``.

    Returns
    -------
    CycleBasis
        One cycle per chord, each walking its chord a→b.

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
    parent_edge = np.full(n, -1, dtype=np.int64)
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
                    parent_edge[v] = edge_of[(min(u, v), max(u, v))]
                    in_tree[parent_edge[v]] = True
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
    return CycleBasis(chords=chords, cycles=cycles, nodes=nodes, parent=parent, depth=depth,
                      parent_edge=parent_edge)  # fmt: skip


@dataclass(frozen=True)
class ForestLevels:
    """Index arrays that apply the fundamental-cycle matrix ``Z`` and ``Z.T`` by gathers alone.

    ``Z v`` puts ``v_c`` on chord ``c`` and, on the tree edge above node ``x``, the net amount
    that the chords leaving ``x``'s subtree carry out of it (``orient · S(x)``, ``S`` the subtree
    sums of each node's chord ends, +v at a chord's ``a`` end, -v at its ``b`` end). ``Z.T g`` is
    ``g`` on the chord plus ``R(a) - R(b)``, ``R`` the root-to-node sums of ``orient · g`` over
    tree edges. Both run level by level over the BFS forest (depth ~ log n), touching each node
    once: no scatter, whose cost on XLA's CPU runtime is what a sparse product otherwise pays.
    Nodes are numbered in *level order* (depth 0 first, then 1, ...).

    Attributes
    ----------
    sizes : nodes per level (depth 0, 1, ..., D).
    children : for each level d < D, (n_d, m_d) positions in level d+1 of each node's children,
        padded with n_{d+1} (a zero).
    parent_pos : for each level d >= 1, (n_d,) position in level d-1 of each node's parent.
    tree_edge, orient : for each level d >= 1, (n_d,) the edge to the parent and +1 where that
        edge's a→b runs parent→child, else -1.
    chord_end, chord_end_sign : (n, k) each node's chord ends (indices into v, padded with C)
        and their signs (+1 at an ``a`` end, -1 at a ``b`` end, 0 padding), in level order.
    chord_edge : (C,) the chords' edges; chord_a, chord_b : (C,) level-order positions of ends.
    assemble : (E,) index of each edge's value in ``[v, orient·S(level 1), ..., orient·S(D)]``.
    """

    sizes: tuple[int, ...]
    children: tuple[np.ndarray, ...]
    parent_pos: tuple[np.ndarray, ...]
    tree_edge: tuple[np.ndarray, ...]
    orient: tuple[np.ndarray, ...]
    chord_end: np.ndarray
    chord_end_sign: np.ndarray
    chord_edge: np.ndarray
    chord_a: np.ndarray
    chord_b: np.ndarray
    assemble: np.ndarray


def _padded_rows(group: np.ndarray, n_rows: int, *columns) -> list[np.ndarray]:
    """Row ``r`` of each table: the values of the items with ``group == r``, in item order,
    then the column's pad (width at least 1). ``columns``: ``(values, pad)`` pairs."""
    counts = np.bincount(group, minlength=n_rows)
    order = np.argsort(group, kind="stable")
    rank = np.arange(len(group)) - np.repeat(np.cumsum(counts) - counts, counts)
    tables = []
    for values, pad in columns:
        table = np.full((n_rows, max(int(counts.max(initial=0)), 1)), pad, dtype=np.int32)
        table[group[order], rank] = values[order]
        tables.append(table)
    return tables


def forest_levels(n: int, a: np.ndarray, b: np.ndarray, basis: CycleBasis) -> ForestLevels:
    """The level-order index arrays of :class:`ForestLevels` for a fundamental cycle basis."""
    order = np.argsort(basis.depth, kind="stable")  # level order
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    sizes = np.bincount(basis.depth, minlength=int(basis.depth.max(initial=0)) + 1)
    start = np.concatenate([[0], np.cumsum(sizes)])
    level_of = lambda d: order[start[d] : start[d + 1]]  # noqa: E731
    children, parent_pos, tree_edge, orient = [], [], [], []
    for d in range(len(sizes)):
        nodes = level_of(d)
        if d + 1 < len(sizes):
            below = level_of(d + 1)
            slot = pos[basis.parent[below]] - start[d]  # each child's parent, within level d
            children += _padded_rows(slot, len(nodes), (np.arange(len(below)), len(below)))
        if d > 0:
            parent_pos.append(pos[basis.parent[nodes]] - start[d - 1])
            tree_edge.append(basis.parent_edge[nodes])
            orient.append(np.where(basis.parent[nodes] < nodes, 1, -1))
    chords = basis.chords
    ends = np.concatenate([a[chords], b[chords]])
    end_sign = np.concatenate([np.ones(len(chords)), -np.ones(len(chords))]).astype(np.int64)
    end_chord = np.concatenate([np.arange(len(chords))] * 2)
    chord_end, chord_end_sign = _padded_rows(pos[ends], n, (end_chord, len(chords)), (end_sign, 0))
    assemble = np.empty(len(a), dtype=np.int64)
    assemble[chords] = np.arange(len(chords))
    if tree_edge:
        assemble[np.concatenate(tree_edge)] = len(chords) + np.arange(n - sizes[0])
    # int32 indices: JAX's own index type whatever the x64 setting (int64 ones met an int32
    # size when the model was traced in float64 under vmap: "lax.add requires the same dtypes")
    i32 = lambda x: np.asarray(x, dtype=np.int32)  # noqa: E731
    return ForestLevels(
        sizes=tuple(int(x) for x in sizes), children=tuple(children),
        parent_pos=tuple(map(i32, parent_pos)), tree_edge=tuple(map(i32, tree_edge)),
        orient=tuple(map(i32, orient)), chord_end=chord_end, chord_end_sign=chord_end_sign,
        chord_edge=i32(chords), chord_a=i32(pos[a[chords]]), chord_b=i32(pos[b[chords]]),
        assemble=i32(assemble),
    )  # fmt: skip


# A dense (E, C) basis of the cycle space: 2**24 entries are 128 MiB in float64, its QR costs
# E·C² flops (about a minute at E = 4,500, C = 3,700 on one core), and every gradient of the
# non-reversible model is a product with it. Beyond that size the model takes the cycle space in
# its sparse fundamental coordinates instead (``CycleSpace.dense_basis_fits``).
MAX_FLOW_BASIS_ENTRIES = 2**24
#: the coordinates of the non-reversible model's flow (site ``flow_z``): ``w`` of ``f = tau Q w``
#: (an orthonormal basis ``Q``) or ``v`` of ``f = tau Z v`` (the fundamental cycles' chords)
FLOW_COORDINATES = ("orthonormal", "chord")


class CycleSpace:
    """The cycle space of the edge flows of an undirected graph, and its fundamental basis.

    An edge flow ``f`` gives each edge ``e = (a, b)`` a number ``f_e`` (positive: circulating
    a→b). With the node-edge incidence matrix ``B`` (``B[a, e] = 1``, ``B[b, e] = -1``), every flow
    splits orthogonally into a gradient part ``B.T @ g`` (a potential difference, zero around
    every cycle) and a cycle part in ``ker B`` (divergence-free: the curl + harmonic part of the
    Hodge decomposition). The cycle space has dimension ``C = E - n + components``.

    Parameters
    ----------
    n : number of nodes; ``a, b`` : (E,) edges with ``a < b``.

    Attributes
    ----------
    basis : CycleBasis
        The BFS fundamental cycles (which depend on the node order; the space does not).
    cycle_id, edge, sign : (nnz,) arrays
        The signed fundamental-cycle matrix in coordinate form: cycle ``cycle_id[k]`` walks
        ``edge[k]`` with ``sign[k]`` (+1 = a→b). The affinity of cycle ``c`` under a flow ``f`` is
        ``sum(sign * f[edge])`` over its entries.

    Examples
    --------
    >>> import numpy as np
    >>> space = CycleSpace(3, np.array([0, 0, 1]), np.array([1, 2, 2]))   # a triangle
    >>> space.n_cycles, space.flow_basis().shape
    (1, (3, 1))
    >>> space.affinity(np.array([1.0, 0.0, 0.0]))   # one unit a->b on edge 0-1, walked forwards
    array([1.])
    """

    def __init__(self, n: int, a: np.ndarray, b: np.ndarray):
        self.n_nodes, self.n_edges = int(n), len(a)
        self.a, self.b = np.asarray(a), np.asarray(b)
        self.basis = fundamental_cycles(n, self.a, self.b)
        entries = [(c, e, s) for c, cyc in enumerate(self.basis.cycles) for e, s in cyc]
        coo = np.array(entries, dtype=np.int64).reshape(-1, 3)
        self.cycle_id, self.edge, self.sign = coo[:, 0], coo[:, 1], coo[:, 2].astype(float)
        self._flow_basis: np.ndarray | None = None
        self._cut_lu = None
        self._levels: ForestLevels | None = None

    @property
    def n_cycles(self) -> int:
        return self.basis.n_cycles

    @property
    def dense_basis_fits(self) -> bool:
        """Whether ``flow_basis`` may be built: ``E * C <= MAX_FLOW_BASIS_ENTRIES``."""
        return self.n_edges * self.n_cycles <= MAX_FLOW_BASIS_ENTRIES

    def flow_coordinates(self, recorded: str | None = None) -> str:
        """The coordinates of the non-reversible model's flow on this space (site ``flow_z``).

        ``"orthonormal"`` (``w`` of ``f = tau Q w``, ``Q = flow_basis()``) where the dense basis
        fits (:attr:`dense_basis_fits`), ``"chord"`` (``v`` of ``f = tau Z v``) beyond it: the
        one rule for a fit and for the readers of a stored one, which pass the coordinates the
        fit recorded, so that a change of ``MAX_FLOW_BASIS_ENTRIES`` cannot misread its draws.

        Parameters
        ----------
        recorded : {"orthonormal", "chord"}, optional
            The coordinates a stored fit records (its ``flow_coordinates`` attribute); None (a
            fit written before they were recorded) applies the rule.

        Returns
        -------
        str
            One of :data:`FLOW_COORDINATES`.

        Raises
        ------
        FitError
            For a recorded value that is neither, or ``"orthonormal"`` beyond the dense basis.
        """
        if recorded is None:
            return "orthonormal" if self.dense_basis_fits else "chord"
        from .errors import FitError

        if recorded not in FLOW_COORDINATES:
            raise FitError(f"unknown flow coordinates {recorded!r} (a fit records "
                           f"{' or '.join(map(repr, FLOW_COORDINATES))})")  # fmt: skip
        if recorded == "orthonormal" and not self.dense_basis_fits:
            raise FitError(
                f"the fit's flow_z draws are in orthonormal coordinates, but a dense basis of its"
                f" {self.n_edges} edges x {self.n_cycles} cycles is over the limit"
                f" graph.MAX_FLOW_BASIS_ENTRIES = {MAX_FLOW_BASIS_ENTRIES:,}: raise it to read"
                " this fit"
            )
        return recorded

    def levels(self) -> ForestLevels:
        """:class:`ForestLevels` of the basis (computed once): ``Z`` and ``Z.T`` by gathers."""
        if self._levels is None:
            self._levels = forest_levels(self.n_nodes, self.a, self.b, self.basis)
        return self._levels

    def _cut_space(self):
        """Sparse LU factors of the reduced Laplacian ``L = B_r B_r.T`` (computed once) and ``B_r``.

        ``B_r`` is the node-edge incidence matrix without the forest's roots (one node per
        component): its rows span the gradient flows, and ``L`` (n - components square, ~n + 2E
        non-zeros) is positive definite. The cycles' own Gram matrix ``Z.T Z`` would serve too,
        but the fundamental cycles of a BFS forest share the edges near its roots: at 3,000
        states (``reversible_chain``) it is 57 % dense, and its LU took 68 s at 10,000.
        """
        if self._cut_lu is None:
            from scipy.sparse import csc_matrix
            from scipy.sparse.linalg import splu

            cols = np.arange(self.n_edges)
            inc = csc_matrix((np.r_[np.ones(self.n_edges), -np.ones(self.n_edges)],
                              (np.r_[self.a, self.b], np.r_[cols, cols])),
                             shape=(self.n_nodes, self.n_edges))  # fmt: skip
            b_r = inc[np.flatnonzero(self.basis.depth > 0)]
            lap = csc_matrix(b_r @ b_r.T)
            # symmetric positive definite: a symmetric ordering, no pivoting
            lu = splu(lap, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                      options={"SymmetricMode": True}) if lap.shape[0] else None  # fmt: skip
            self._cut_lu = (lu, csc_matrix(b_r))
        return self._cut_lu

    def gram_half_log_det(self) -> float:
        """``log det(Z.T Z) / 2``: the log-density constant of the chord coordinates' prior.

        With ``f = Z v`` and ``v ~ N(0, (Z.T Z)^-1)`` (precision ``Z.T Z``), ``f ~ N(0, P)``,
        ``P = Z (Z.T Z)^-1 Z.T`` the projector on the cycle space: the prior of ``Q w`` with
        ``w ~ N(0, I)``, in coordinates that need no dense basis.

        ``Z`` is totally unimodular, so by Cauchy-Binet ``det(Z.T Z)`` counts the sets of ``C``
        edges whose rows of ``Z`` are independent: those whose complement is a spanning forest.
        That count is ``det L`` of the reduced Laplacian (the matrix-tree theorem), whatever the
        basis: the determinant of a sparse n-square matrix instead of a dense-ish C-square one.
        """
        lu = self._cut_space()[0]
        # the LU of a positive-definite matrix: L has a unit diagonal, det = prod |U_ii|
        return 0.0 if lu is None else 0.5 * float(np.sum(np.log(np.abs(lu.U.diagonal()))))

    def chords_of_cycle_part(self, flow: np.ndarray) -> np.ndarray:
        """The chord coordinates ``v`` (..., C) of the cycle part ``P f = Z v`` of flows (..., E).

        ``P f = f - B_r.T L^-1 B_r f`` (the gradient part removed: one sparse solve), and ``Z``
        is the identity on the chords (each fundamental cycle walks its own chord a→b and no
        other), so ``v`` is ``P f`` there. With ``f ~ N(0, I)``, ``v ~ N(0, (Z.T Z)^-1)``.
        """
        lu, b_r = self._cut_space()
        flow = np.asarray(flow, dtype=float)
        flat = flow.reshape(-1, self.n_edges).T
        if lu is not None:
            flat = flat - b_r.T @ lu.solve(np.ascontiguousarray(b_r @ flat))
        return flat[self.basis.chords].T.reshape(flow.shape[:-1] + (self.n_cycles,))

    def cycle_matrix(self) -> np.ndarray:
        """Dense signed fundamental-cycle matrix ``Z`` (E, C): ``Z[e, c]`` = sign of e in c."""
        z = np.zeros((self.n_edges, self.n_cycles))
        z[self.edge, self.cycle_id] = self.sign
        return z

    def flow_basis(self) -> np.ndarray:
        """Orthonormal basis ``Q`` (E, C) of the cycle space ``ker B`` (computed once, cached).

        ``Q`` is the QR factor of the fundamental-cycle matrix. Any orthonormal basis ``Q'`` of
        the same space is ``Q O`` for an orthogonal ``O``, so ``Q w`` with ``w ~ N(0, s² I)``
        has the same distribution, ``N(0, s² P)`` with ``P = Q Q.T`` the projector on the cycle
        space, whatever the basis, node names or order.

        Raises
        ------
        FitError
            When ``E * C`` exceeds ``MAX_FLOW_BASIS_ENTRIES`` (2**24: 128 MiB of float64).
        """
        if self._flow_basis is None:
            size = self.n_edges * self.n_cycles
            if size > MAX_FLOW_BASIS_ENTRIES:
                from .errors import FitError

                raise FitError(
                    f"the non-reversible model's cycle-space basis would be {self.n_edges} edges"
                    f" x {self.n_cycles} cycles = {size:,} numbers (limit"
                    f" {MAX_FLOW_BASIS_ENTRIES:,}): drop rare states or edges first"
                )
            q, _ = np.linalg.qr(self.cycle_matrix())
            self._flow_basis = q
        return self._flow_basis

    def affinity(self, flow: np.ndarray) -> np.ndarray:
        """Affinity of every fundamental cycle under edge flows ``flow`` (..., E) -> (..., C)."""
        flow = np.asarray(flow, dtype=float)
        out = np.zeros(flow.shape[:-1] + (self.n_cycles,))
        np.add.at(out, (..., self.cycle_id), self.sign * flow[..., self.edge])
        return out
