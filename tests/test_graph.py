"""Graph utilities and the model data built on them."""

import numpy as np
import pytest

from detailed_balance import TransitionCounts
from detailed_balance.errors import FitError
from detailed_balance.graph import component_labels, fundamental_cycles, undirected_edges
from detailed_balance.modeldata import apply_gauge, build_model_data, gauge_reference


def test_cycle_basis_has_the_cycle_space_dimension_and_closes():
    # two triangles sharing an edge plus a pendant and a separate component with a square
    a = np.array([0, 0, 1, 1, 2, 3, 5, 5, 6, 7])
    b = np.array([1, 2, 2, 3, 3, 4, 6, 8, 7, 8])
    n = 9
    basis = fundamental_cycles(n, a, b)
    n_comp = len(np.unique(component_labels(n, a, b)))
    assert basis.n_cycles == len(a) - n + n_comp == 3
    for cycle, nodes in zip(basis.cycles, basis.nodes, strict=True):
        # walking the signed edges visits the listed nodes and returns to the start
        here = nodes[0]
        for e, sign in cycle:
            tail, head = (a[e], b[e]) if sign > 0 else (b[e], a[e])
            assert tail == here
            here = head
        assert here == nodes[0]
        # the chord appears exactly once in its own cycle, walked a -> b
        chords = [e for e, _ in cycle if e in basis.chords]
        assert len(chords) == 1 and (chords[0], 1) in cycle


def test_undirected_edges_dedupe_and_drop_self_pairs():
    a, b = undirected_edges(np.array([2, 1, 0, 3]), np.array([1, 2, 0, 0]))
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 3), (1, 2)]


def counts_from_matrix(m, rejected=None):
    n = len(m)
    src, tgt, cnt = [], [], []
    for i in range(n):
        for j in range(n):
            if m[i][j]:
                src.append(str(i))
                tgt.append(str(j))
                cnt.append(m[i][j])
        if rejected is not None and rejected[i]:
            src.append(str(i))
            tgt.append(None)
            cnt.append(rejected[i])
    return TransitionCounts.from_records(src, tgt, cnt, states=[str(i) for i in range(n)])


def test_model_data_arcs_cover_both_directions_and_rest_counts():
    m = [[0, 3, 0], [1, 0, 2], [0, 0, 4]]  # 2 -> 1 never seen: one-way edge, 2's moves are self
    counts = counts_from_matrix(m, rejected=[5, 0, 1])
    data = build_model_data(counts)
    assert data.n_edges == 2 and data.n_chords == 0
    arcs = {
        (int(s), int(t)): int(c)
        for s, t, c in zip(data.arc_source, data.arc_target, data.arc_count, strict=True)
    }
    assert arcs == {(0, 1): 3, (1, 0): 1, (1, 2): 2, (2, 1): 0}
    assert data.rest_count.tolist() == [5, 0, 5]
    moves = np.bincount(data.arc_source, data.arc_count, 3)
    assert (counts.attempts == moves + data.rest_count).all()


def test_gauge_reference_flags_states_outside_the_two_way_component():
    m = [[0, 3, 0, 0], [1, 0, 2, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    counts = counts_from_matrix(m, rejected=[1, 1, 1, 1])
    group, weight, identified = gauge_reference(counts)
    assert identified.tolist() == [True, True, False, False]
    assert np.allclose(weight, [0.5, 0.5, 0, 0])
    v = apply_gauge(np.array([3.0, 1.0, 7.0, -2.0]), group, weight)
    assert np.allclose(v, [1.0, -1.0, 5.0, -4.0])


def test_single_state_counts_are_refused():
    counts = TransitionCounts.from_records(["A"], ["A"], [4])
    with pytest.raises(FitError, match="single state"):
        build_model_data(counts)


def test_restrict_turns_moves_out_of_the_subset_into_rejections():
    m = [[0, 3, 2], [1, 0, 0], [0, 4, 0]]
    counts = counts_from_matrix(m, rejected=[1, 0, 0])
    sub = counts.restrict(["0", "1"])
    assert sub.states == ("0", "1")
    assert sub.attempts.tolist() == [6, 1]
    assert sub.rejected.tolist() == [3, 0]
    assert sub.dense().tolist() == [[0, 3], [1, 0]]
    assert counts.largest_two_way_component().states == ("0", "1")
