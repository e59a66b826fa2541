"""Synthetic chains: exact detailed balance, exact affinities, sampling converges to the truth."""

import time

import numpy as np
import pytest

from detailed_balance.errors import DataError
from detailed_balance.graph import component_labels, fundamental_cycles
from detailed_balance.synthetic import driven_chain, reversible_chain, sample_counts


def log_ratio(chain):
    """log T(b<-a) - log T(a<-b) for every undirected edge (a, b) of the chain."""
    n = chain.n_states
    logp = dict(
        zip((chain.source * n + chain.target).tolist(), np.log(chain.prob).tolist(), strict=True)
    )
    a, b = chain.edges
    return np.array(
        [logp[x * n + y] - logp[y * n + x] for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    )


def cycle_sums(chain):
    """Affinity of every fundamental cycle, summed by hand from the kernel."""
    lr = log_ratio(chain)
    basis = fundamental_cycles(chain.n_states, *chain.edges)
    return np.array([sum(sign * lr[e] for e, sign in cyc) for cyc in basis.cycles])


def test_reversible_chain_satisfies_detailed_balance_exactly():
    chain = reversible_chain(60, width=1.5, degree=4, escape=0.3, seed=3)
    a, b = chain.edges
    np.testing.assert_allclose(log_ratio(chain), chain.V[a] - chain.V[b], atol=1e-12)
    np.testing.assert_allclose(cycle_sums(chain), 0.0, atol=1e-12)
    np.testing.assert_allclose(chain.cycle_affinity, 0.0)
    assert abs(chain.V.mean()) < 1e-12
    # a proper kernel: rows sum to one with the escape, every escape at least the asked one
    np.testing.assert_allclose(chain.dense().sum(axis=1), 1.0)
    assert chain.escape.min() >= 0.3 - 1e-12 and np.isclose(chain.escape.min(), 0.3)
    # sparse, connected, about the asked degree
    assert len(np.unique(component_labels(60, a, b))) == 1
    assert 2 * len(a) / 60 == pytest.approx(4, abs=0.1)


def test_given_potential_is_used_up_to_its_mean():
    v = np.array([0.0, 1.0, 2.0, 3.0])
    chain = reversible_chain(4, potential=v, seed=0)
    np.testing.assert_allclose(chain.V, v - 1.5)
    with pytest.raises(DataError, match="shape"):
        reversible_chain(4, potential=[1.0, 2.0])


@pytest.mark.parametrize("affinity", [0.7, -2.0])
def test_driven_chain_has_the_asked_cycle_affinities(affinity):
    chain = driven_chain(80, affinity=affinity, width=1.0, seed=5)
    sums = cycle_sums(chain)
    assert len(sums) == len(chain.edges[0]) - 80 + 1 > 10
    np.testing.assert_allclose(sums, affinity, atol=1e-12)
    np.testing.assert_allclose(chain.cycle_affinity, affinity)
    np.testing.assert_allclose(chain.dense().sum(axis=1), 1.0)
    assert chain.escape.min() >= 0.5 - 1e-12


def test_driven_chain_per_cycle_affinities():
    n_cycles = fundamental_cycles(30, *reversible_chain(30, seed=1).edges).n_cycles
    wanted = np.linspace(-1, 1, n_cycles)
    chain = driven_chain(30, affinity=wanted, seed=1)
    np.testing.assert_allclose(cycle_sums(chain), wanted, atol=1e-12)


def test_generators_and_samples_are_deterministic_under_a_seed():
    one, two, other = (driven_chain(50, seed=s) for s in (7, 7, 8))
    for f in ("source", "target", "prob", "escape", "V"):
        np.testing.assert_array_equal(getattr(one, f), getattr(two, f))
    assert not np.array_equal(one.V, other.V)
    for design in ("budget", "discovered", "trajectory"):
        x = sample_counts(one, design=design, attempts_per_source=30, seed=1)
        y = sample_counts(two, design=design, attempts_per_source=30, seed=1)
        z = sample_counts(one, design=design, attempts_per_source=30, seed=2)
        assert x.states == y.states
        for f in ("source", "target", "count", "self_count", "rejected"):
            np.testing.assert_array_equal(getattr(x, f), getattr(y, f))
        assert not np.array_equal(x.rejected, z.rejected) or not np.array_equal(x.count, z.count)


@pytest.mark.parametrize("design", ["budget", "discovered", "trajectory"])
def test_row_frequencies_converge_to_the_true_kernel(design):
    chain = reversible_chain(12, width=0.8, escape=0.2, seed=2)
    counts = sample_counts(
        chain, design=design, attempts_per_source=20_000, seed=4, self_fraction=0.5
    )
    idx = chain.index_of(counts.states)
    truth = chain.dense()[np.ix_(idx, np.append(idx, chain.n_states))]
    n0 = counts.attempts[:, None].astype(float)
    observed = np.zeros_like(truth)
    observed[counts.source, counts.target] = counts.count
    observed[np.arange(len(idx)), -1] = counts.self_count + counts.rejected
    z = (observed / n0 - truth) / np.sqrt(truth * (1 - truth) / n0 + 1e-12)
    assert np.abs(z).max() < 5
    assert counts.attempts.sum() == 12 * 20_000
    # escapes split into self and rejected as asked
    assert counts.self_count.sum() / (counts.self_count + counts.rejected).sum() == pytest.approx(
        0.5, abs=0.02
    )


def test_trajectory_visits_follow_the_boltzmann_distribution():
    # detailed balance with stay-put escapes: pi_i T(j<-i) = pi_j T(i<-j)  =>  pi ~ exp(-V)
    chain = reversible_chain(8, width=1.0, escape=0.1, seed=9)
    counts = sample_counts(chain, design="trajectory", total_attempts=400_000, seed=1)
    pi = np.exp(-chain.V) / np.exp(-chain.V).sum()
    np.testing.assert_allclose(
        counts.attempts / counts.attempts.sum(), pi[chain.index_of(counts.states)], atol=0.01
    )


def test_discovered_design_starts_from_one_state_and_grows():
    chain = reversible_chain(200, seed=0)
    small = sample_counts(chain, design="discovered", total_attempts=5, seed=0, start=17)
    assert "s017" in small.states and small.attempts[small.index("s017")] >= 1
    # each new source must first have been reached as a target (or be the seed)
    reached = (small.in_count + small.self_count) > 0
    sources = small.attempts > 0
    assert np.all(reached | ~sources | (np.array(small.states) == "s017"))
    big = sample_counts(chain, design="discovered", attempts_per_source=50, seed=0, start=17)
    assert big.n_states > 150 and big.attempts.sum() == 200 * 50


def test_three_thousand_states_are_quick():
    start = time.perf_counter()
    chain = driven_chain(3000, affinity=0.5, degree=4, seed=0)
    counts = sample_counts(chain, attempts_per_source=100, seed=0)
    assert counts.n_states == 3000 and counts.attempts.sum() == 300_000
    assert time.perf_counter() - start < 10


def test_bad_arguments():
    with pytest.raises(DataError, match="design"):
        sample_counts(reversible_chain(5), design="walk")
    with pytest.raises(DataError, match="escape"):
        reversible_chain(5, escape=1.0)
    with pytest.raises(DataError, match="at least 2"):
        reversible_chain(1)


@pytest.mark.parametrize("design", ["budget", "discovered", "trajectory"])
def test_samples_only_use_arcs_of_the_chain_even_without_escape(design):
    chain = driven_chain(40, affinity=1.0, escape=0.0, seed=4)
    counts = sample_counts(chain, design=design, attempts_per_source=300, seed=0)
    idx = chain.index_of(counts.states)
    arcs = set(zip(chain.source.tolist(), chain.target.tolist(), strict=True))
    moves = zip(idx[counts.source].tolist(), idx[counts.target].tolist(), strict=True)
    assert all(m in arcs for m in moves)
    # escape 0 at the fullest row: that row never escapes
    full = idx[chain.escape[idx] < 1e-12]
    assert counts.rejected[np.isin(idx, full)].sum() == 0
