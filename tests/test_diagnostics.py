"""The paper's diagnostics with error bars: calibrated on chains whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from detailed_balance import TransitionCounts
from detailed_balance.diagnostics import (
    downhill_fraction,
    gaussian_width,
    loop_test,
    majority_vote_kernel,
    majority_vote_prob,
    one_way_bounds,
    pairwise_test,
    simulate_majority_vote,
    unconstrained_posterior_kernel,
)
from detailed_balance.least_action import minimise_action
from detailed_balance.modeldata import apply_gauge, build_model_data, gauge_reference
from detailed_balance.synthetic import driven_chain, reversible_chain, sample_counts


def test_unconstrained_posterior_is_the_dirichlet_posterior():
    counts = sample_counts(reversible_chain(8, seed=0), attempts_per_source=50, seed=0)
    k = unconstrained_posterior_kernel(counts, draws=20000, alpha=1.0, seed=1)
    data = build_model_data(counts)
    n_cat = np.bincount(data.arc_source, minlength=8) + 1
    expect = (data.arc_count + 1.0) / (counts.attempts[data.arc_source] + n_cat[data.arc_source])
    np.testing.assert_allclose(np.exp(k.log_prob).mean(0), expect, rtol=0.03)
    # rows are probabilities: arcs plus rest sum to one, so the arc mass is below one
    row = np.stack([np.bincount(k.source, weights=t, minlength=8) for t in np.exp(k.log_prob[:5])])
    assert np.all(row < 1) and np.all(row > 0)


def test_pairwise_chi2_is_calibrated_under_detailed_balance_and_rejects_a_drive():
    external, fitted = [], []
    for seed in range(6):
        chain = reversible_chain(30, width=1.0, seed=seed)
        counts = sample_counts(chain, attempts_per_source=2000, seed=seed)
        true_v = chain.V[chain.index_of(counts.states)]
        res = pairwise_test(counts, true_v, fitted=False)
        external.append(res.chi2_ndf)
        assert res.pearson_r > 0.9 and res.ndf == len(res.f) > 30
        # V fitted to the same counts: fewer degrees of freedom (one per state, less the gauge)
        fit = pairwise_test(counts, minimise_action(counts.kernel(), "softplus").V)
        assert fit.ndf == len(fit.f) - (counts.n_states - 1)
        fitted.append(fit.chi2_ndf)
    # means of 6 χ²/ndf with ndf ≈ 30-60: sd ≈ 0.1, so 1 ± 0.25 is a wide but real check
    assert abs(np.mean(external) - 1) < 0.25 and abs(np.mean(fitted) - 1) < 0.25
    # a driven chain has no potential: the best V cannot explain the ratios
    drv = driven_chain(30, affinity=2.0, seed=0)
    counts = sample_counts(drv, attempts_per_source=2000, seed=0)
    res = pairwise_test(counts, minimise_action(counts.kernel(), "softplus").V)
    assert res.chi2_ndf > 3 and res.p_value < 1e-6


def test_pairwise_with_posterior_draws_has_posterior_errors():
    chain = reversible_chain(15, seed=2)
    counts = sample_counts(chain, attempts_per_source=300, seed=2)
    post = unconstrained_posterior_kernel(counts, draws=256, seed=0)
    la = minimise_action(post, "exp")
    res = pairwise_test(counts, la.V, kernel=post)
    assert np.all(res.dv_err > 0) and np.all(res.y_err > 0)
    poisson = pairwise_test(counts, la.V)
    # posterior sd of the log ratio is close to the Poisson (delta-method) error
    np.testing.assert_allclose(res.y_err, poisson.y_err, rtol=0.35)


@pytest.mark.parametrize("cycles", ["triangles", "basis"])
def test_loop_test_finds_the_true_affinities(cycles):
    drv = driven_chain(25, affinity=1.0, degree=5, seed=4)
    counts = sample_counts(drv, attempts_per_source=3000, seed=4)
    res = loop_test(counts, cycles=cycles)
    assert res.ndf > 5
    np.testing.assert_allclose(res.forward - res.backward, res.affinity)
    if cycles == "basis":
        # every edge seen both ways: the same graph, hence the same fundamental cycles as truth
        a, b = counts.two_way_edges()
        assert np.array_equal(a, drv.edges[0]) and np.array_equal(b, drv.edges[1])
        z = (res.affinity - drv.cycle_affinity) / res.error
        assert abs(z.mean()) < 0.6 and 0.5 < z.std() < 1.6
    assert res.p_value < 1e-6
    rev = sample_counts(reversible_chain(25, degree=5, seed=4), attempts_per_source=3000, seed=4)
    null = loop_test(rev, cycles=cycles)
    assert null.chi2_ndf < 2.0 and null.ndf > 5


def test_loop_test_on_posterior_draws():
    drv = driven_chain(12, affinity=1.5, degree=4, seed=1)
    counts = sample_counts(drv, attempts_per_source=2000, seed=1)
    post = unconstrained_posterior_kernel(counts, draws=500, seed=0)
    res = loop_test(counts, cycles="basis", kernel=post)
    poisson = loop_test(counts, cycles="basis")
    assert res.draws.shape == (500, res.ndf)
    np.testing.assert_allclose(res.affinity, poisson.affinity, atol=3 * poisson.error.max())
    np.testing.assert_allclose(res.error, poisson.error, rtol=0.3)


def test_one_way_bounds_by_hand():
    # A->B 4 of 10 attempts, never back in B's 20 attempts; B->C and C->B both seen
    c = TransitionCounts.from_records(
        ["A", "A", "B", "B", "C", "C"], ["B", None, "C", None, "B", None], [4, 6, 5, 15, 2, 8]
    )
    res = one_way_bounds(c, V=np.array([5.0, 0.0, 1.0]), level=0.95)
    assert res.f.tolist() == [0] and res.g.tolist() == [1]
    upper = 1 - 0.05 ** (1 / 20)
    assert res.bound[0] == pytest.approx(np.log(0.4) - np.log(upper))
    assert res.satisfied[0] == (5.0 >= res.bound[0]) and res.fraction_satisfied == 1.0
    # least-action runaways (+inf) satisfy the bound trivially
    la = minimise_action(c.kernel(), "exp")
    assert la.V[0] == np.inf and one_way_bounds(c, la.V).satisfied[0]


def test_downhill_fraction_under_the_true_potential():
    chain = reversible_chain(40, width=1.5, seed=3, escape=0.3)
    kernel = chain.kernel()
    truth = dict(zip(chain.states, chain.V, strict=True))
    # Metropolis: downhill arcs all have the top probability c, uphill ones c·e^{-ΔV} < c
    c = np.exp(kernel.log_prob).max()
    res = downhill_fraction(kernel, truth.get, threshold=0.999 * c)
    assert res["fraction"] == 1.0 and res["strong"] == len(chain.source) // 2
    flipped = downhill_fraction(kernel, lambda s: -truth[s], threshold=0.999 * c)
    assert flipped["fraction"] == 0.0
    counts = sample_counts(chain, attempts_per_source=400, seed=0)
    post = downhill_fraction(unconstrained_posterior_kernel(counts, 400), truth.get, threshold=0.05)
    exact = downhill_fraction(kernel, truth.get, threshold=0.05)["fraction"]
    assert 0.5 < exact < 1 and post["hdi"][0] <= exact <= post["hdi"][1]


def test_gaussian_width_and_paper_relation():
    rng = np.random.default_rng(0)
    v = rng.normal(0, 2.0, size=(50, 400))
    out = gaussian_width(v, "exp", S_min=np.full(50, 0.1))
    assert out["sigma"] == pytest.approx(2.0, rel=0.05)
    assert out["S_predicted"] == pytest.approx(1 / (np.sqrt(np.pi) * out["sigma"]), rel=0.01)
    assert out["ratio"] == pytest.approx(0.1 / out["S_predicted"], rel=0.01)
    assert gaussian_width(np.r_[v[0], np.inf])["states"] == 400  # runaways are dropped


def test_majority_vote_formula_matches_simulation_and_scales_V():
    p = np.array([0.01, 0.05, 0.2, 0.5])
    for n, M in [(2, 5), (3, 7), (1, 4)]:
        exact = majority_vote_prob(p, n, M)
        sim = simulate_majority_vote(p, n, M, trials=200_000, seed=n)
        se = np.sqrt(exact * (1 - exact) / 200_000)
        assert np.all(np.abs(sim - exact) < 5 * se + 1e-12)
    # small probabilities: V_LA of the voted kernel ≈ n · V_LA of the original
    chain = reversible_chain(20, width=1.0, seed=1, escape=0.98)
    for n, M in [(2, 5), (3, 9)]:
        v1 = minimise_action(chain.kernel(), "exp").V
        vn = minimise_action(majority_vote_kernel(chain.kernel(), n, M), "exp").V
        slope = np.polyfit(v1, vn, 1)[0]
        assert slope == pytest.approx(n, rel=0.05)


def test_unconstrained_posterior_least_action_covers_true_V():
    # posterior of V_LA (both kernels) covers the true V for >= 85% of identified states
    from detailed_balance import _arviz

    covered = {"exp": [], "softplus": []}
    for seed, design in [(0, "budget"), (1, "discovered")]:
        chain = reversible_chain(30, seed=seed)
        kw = {"attempts_per_source": 200} if design == "budget" else {"total_attempts": 3000}
        counts = sample_counts(chain, design=design, seed=seed, **kw)
        group, weight, ident = gauge_reference(counts)
        truth = apply_gauge(chain.V[chain.index_of(counts.states)], group, weight)
        post = unconstrained_posterior_kernel(counts, draws=256, seed=seed)
        for K in covered:
            res = minimise_action(post, K, gauge=(group, weight))
            lo, hi = _arviz.hdi(res.V, 0.94)
            covered[K] += ((truth >= lo) & (truth <= hi))[ident].tolist()
    for K, hits in covered.items():
        assert np.mean(hits) >= 0.85, K
