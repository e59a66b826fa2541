"""The G² test: the reversible MLE (batched fixed point, limits at infinity), the exact
conditional p-value (against full enumeration of small fibers), testable cycles, and size on
sparse data unlike the package's own generator."""

import itertools
import json
import warnings

import numpy as np
import pytest
from detailed_balance.models import FieldPrior

from detailed_balance import (
    _arviz,
    inference,  # noqa: F401  (configures JAX before it initialises)
)
from detailed_balance.comparison import (
    free_log_likelihood,
    likelihood_ratio_test,
    reversible_mle,
    simulate_counts,
    strong_class_edges,
)
from detailed_balance.counts import TransitionCounts
from detailed_balance.errors import FitError
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import (
    conductance_chain,
    driven_chain,
    relabel_counts,
    reversible_chain,
    sample_counts,
)


def _map_log_lik(counts) -> float:
    """The reversible model's flat-prior MAP (L-BFGS through ``inference.fit``): an oracle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = inference.fit(counts, "reversible", method="map", prior=FieldPrior(kind="flat"))
    return float(np.sum(_arviz.group(idata, "log_likelihood")["y"].values))


def test_mle_matches_the_map_fit():
    counts = sample_counts(driven_chain(9, affinity=0.5, seed=2), attempts_per_source=150, seed=3)
    mle = reversible_mle(build_model_data(counts))
    assert mle["converged"]
    assert mle["log_lik"] == pytest.approx(_map_log_lik(counts), abs=1e-5)
    # fitted rows are probability vectors
    data = build_model_data(counts)
    rows = np.bincount(data.arc_source, weights=mle["p_arc"], minlength=data.n_states)
    assert np.allclose(rows + mle["p_rest"], 1.0)


def test_mle_at_infinity_is_the_supremum():
    # D only ever stays put (all its attempts rest) but C and A move into it: the observed arcs are
    # not strongly connected, so the likelihood climbs forever as D's stationary weight grows.
    c = TransitionCounts.from_records(
        ["A", "B", "C", "A", "B", "C", "A", "C", "D", "A"],
        ["B", "C", "A", "C", "A", "B", "D", "D", "D", "A"],
        [20, 15, 12, 8, 9, 14, 5, 6, 30, 10],
    )
    data = build_model_data(c)
    mle = reversible_mle(data)
    ll_map = _map_log_lik(c)
    assert mle["converged"]
    assert mle["log_lik"] >= ll_map - 1e-6  # the supremum is above any finite point...
    assert mle["log_lik"] - ll_map < 0.05  # ...and an optimiser walking out gets close to it
    d_rows = data.arc_source == c.states.index("D")
    assert np.allclose(mle["p_arc"][d_rows], 0.0)  # D never leaves in the limit chain
    assert mle["log_lik"] <= free_log_likelihood(data) + 1e-9


def test_batch_equals_one_table_at_a_time():
    counts = sample_counts(reversible_chain(8, seed=5), attempts_per_source=40, seed=0)
    data = build_model_data(counts)
    mle = reversible_mle(data)
    arc, rest = simulate_counts(data, mle["p_arc"], mle["p_rest"], 12, seed=1)
    assert np.array_equal(arc.sum(1) + rest.sum(1), np.full(12, data.attempts.sum()))
    batch = reversible_mle(data, arc, rest)
    single = [reversible_mle(data, arc[k], rest[k])["log_lik"] for k in range(12)]
    assert np.allclose(batch["log_lik"], single, atol=1e-8)
    assert np.allclose(free_log_likelihood(data, arc, rest)[3], free_log_likelihood(
        data, arc[3], rest[3]))  # fmt: skip


def _fiber(counts):
    """Every table with the observed sufficient statistics, by brute force, and the observed one.

    Tables are the a -> b counts ``x`` of the support edges (b -> a holds ``total - x``); kept
    when every source's count of moves is the observed one. Returns (tables, total, observed).
    """
    data = build_model_data(counts)
    n_e = data.n_edges
    a, b = data.arc_source[:n_e], data.arc_target[:n_e]
    fwd, bwd = data.arc_count[:n_e], data.arc_count[n_e:]
    total = fwd + bwd

    def moves(x):
        return np.bincount(a, x, data.n_states) + np.bincount(b, total - x, data.n_states)

    target = moves(fwd)
    assert np.prod(total + 1.0) < 300_000  # keep the brute force small
    tables = [x for x in itertools.product(*[range(t + 1) for t in total])
              if np.array_equal(moves(np.array(x)), target)]  # fmt: skip
    return np.array(tables), total, fwd


def _exact_p(counts) -> tuple[float, int]:
    """Exact conditional p-value of G² and the dimension of the fiber, by enumeration."""
    from scipy.special import gammaln, xlogy

    x, total, obs = _fiber(counts)
    log_w = -np.sum(gammaln(x + 1) + gammaln(total - x + 1), axis=1)  # P ∝ Π 1/C!
    w = np.exp(log_w - log_w.max())
    stat = np.sum(xlogy(x, x) + xlogy(total - x, total - x), axis=1)  # G²/2 + const
    t_obs = np.sum(xlogy(obs, obs) + xlogy(total - obs, total - obs))
    p = float(w[stat >= t_obs - 1e-9].sum() / w.sum())
    dim = int(np.linalg.matrix_rank(x - x[0])) if len(x) > 1 else 0
    return p, dim


SMALL_TABLES = {
    # K4 with counts 1-3 and two arcs seen one way (inside one strongly connected class)
    "k4": (["A", "B", "A", "C", "A", "D", "B", "C", "C", "B", "D", "C", "D", "A", "A"],
           ["B", "A", "C", "A", "D", "A", "C", "B", "D", "D", "B", "A", "C", "C", None],
           [3, 1, 2, 2, 1, 2, 2, 1, 1, 2, 1, 1, 2, 1, 4]),
    # a one-way triangle A->B->C->A: one testable cycle, every arc seen one way
    "one-way triangle": (["A", "B", "C", "A", "B"], ["B", "C", "A", None, "A"], [3, 2, 3, 2, 1]),
    # two classes {A,B,C} and {D,E,F} joined by arcs seen one way (C->D, B->E): the two
    # cycles through them are not testable; each class has one testable cycle
    "two classes": (["A", "B", "C", "B", "C", "A", "C", "B", "D", "E", "F", "E", "D", "F"],
                    ["B", "C", "A", "A", "B", "C", "D", "E", "E", "F", "D", "D", "F", "E"],
                    [2, 2, 1, 1, 2, 1, 1, 2, 2, 1, 2, 1, 1, 2]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SMALL_TABLES))
def test_conditional_p_and_df_match_full_enumeration(name):
    counts = TransitionCounts.from_records(*SMALL_TABLES[name])
    p_exact, dim = _exact_p(counts)
    res = likelihood_ratio_test(counts, samples=1999, seed=1)
    assert res["df"] == dim > 0  # testable cycles = dimension of the fiber
    assert abs(res["p_value"] - p_exact) < 4 * res["p_value_se"] + 1 / 2000
    assert res["effective_samples"] > 1000


def test_df_counts_only_testable_cycles_on_random_tables():
    # random small tables on K4 / K5 with many zero cells: df = fiber dimension, every time
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(60):
        n = int(rng.integers(4, 6))
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        c = rng.poisson(0.7, len(pairs))
        src = [chr(65 + i) for (i, _), k in zip(pairs, c, strict=True) if k]
        tgt = [chr(65 + j) for (_, j), k in zip(pairs, c, strict=True) if k]
        counts = [int(k) for k in c if k]
        if len(counts) < 3:
            continue
        tc = TransitionCounts.from_records(src, tgt, counts)
        data = build_model_data(tc)
        if np.prod(data.arc_count[: data.n_edges] + data.arc_count[data.n_edges :] + 1.0) > 1e5:
            continue
        assert strong_class_edges(data)[1] == _exact_p(tc)[1]
        checked += 1
    assert checked >= 30


def _sparse_reversible(k: int):
    """Sparse data unlike the package's chains: log-normal conductances, relabelled states."""
    chain = conductance_chain(14, degree=3.5, seed=k)
    return relabel_counts(sample_counts(chain, attempts_per_source=12, seed=k), seed=k)


def test_size_on_sparse_reversible_tables():
    p = []
    for k in range(40):
        res = likelihood_ratio_test(_sparse_reversible(k), samples=199, sweeps=200, seed=k)
        if res["p_value"] is not None:
            p.append(res["p_value"])
    assert len(p) >= 25
    assert np.mean(np.array(p) < 0.05) <= 0.15
    assert np.mean(p) > 0.35  # not piled up near 0, as the bootstrap's were on sparse data


@pytest.mark.slow
def test_size_on_sparse_reversible_tables_large():
    p = []
    for k in range(200):
        res = likelihood_ratio_test(_sparse_reversible(1000 + k), samples=499, seed=k)
        if res["p_value"] is not None:
            p.append(res["p_value"])
    rate = np.mean(np.array(p) < 0.05)
    assert len(p) >= 150 and 0.01 <= rate <= 0.09


def test_short_chains_keep_the_size():
    # Besag-Clifford: the p-value is exact however short the chains (mixing costs power only)
    p = [likelihood_ratio_test(_sparse_reversible(500 + k), samples=99, sweeps=2,
                               seed=k)["p_value"] for k in range(30)]  # fmt: skip
    p = [v for v in p if v is not None]
    assert np.mean(np.array(p) < 0.05) <= 0.15


def test_driven_cycles_are_rejected():
    for chain in (driven_chain(10, affinity=1.5, seed=1), conductance_chain(12, affinity=1.5)):
        res = likelihood_ratio_test(sample_counts(chain, attempts_per_source=300, seed=1),
                                    samples=199, sweeps=200)  # fmt: skip
        assert res["p_value"] <= 0.01 and res["p_value_chi2"] < 0.01
        assert res["null_mean_statistic"] < res["statistic"] / 2


def test_relabelling_leaves_statistic_and_df_unchanged():
    counts = sample_counts(conductance_chain(20, seed=3), attempts_per_source=30, seed=3)
    base = likelihood_ratio_test(counts, samples=999, sweeps=300, seed=0)
    for k in range(3):
        res = likelihood_ratio_test(relabel_counts(counts, seed=k), samples=999, sweeps=300,
                                    seed=k)
        assert res["statistic"] == pytest.approx(base["statistic"], abs=1e-7)
        assert (res["df"], res["df_support"]) == (base["df"], base["df_support"])
        assert abs(res["p_value"] - base["p_value"]) < 4 * np.hypot(
            res["p_value_se"], base["p_value_se"])  # fmt: skip


def test_cycles_through_one_way_arcs_are_not_a_test():
    # Gemini-like: the support graph has cycles, but every cycle passes through a transition seen
    # one way only with no way back; only A <-> B is seen both ways.
    c = TransitionCounts.from_records(
        ["A", "B", "A", "B", "C", "A", "D", "B", "C", "A"],
        ["B", "A", "C", "C", "D", "D", "E", "E", None, None],
        [5, 4, 3, 2, 6, 1, 2, 1, 3, 2],
    )
    res = likelihood_ratio_test(c)
    assert res["df_support"] > 0 and res["df"] == 0
    assert res["p_value"] is None and res["statistic"] is None
    assert res["note"].startswith("no testable cycle") and "one way" in res["note"]


def test_tree_support_is_not_a_test():
    c = TransitionCounts.from_records(["A", "B", "B", "C"], ["B", "A", "C", "B"], [5, 3, 4, 2])
    res = likelihood_ratio_test(c)
    assert res["df"] == 0 and res["p_value"] is None and "tree" in res["note"]


def test_chi2_only_when_asked_and_bootstrap_on_request():
    counts = sample_counts(driven_chain(6, affinity=1.0, seed=0), attempts_per_source=100, seed=0)
    res = likelihood_ratio_test(counts, samples=0)
    assert res["p_value"] == res["p_value_chi2"] and res["p_value_se"] is None
    boot = likelihood_ratio_test(counts, samples=99, method="bootstrap")
    assert boot["method"] == "bootstrap" and "anticonservative" in boot["note"]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"samples": -1}, "G² samples"), ({"samples": 2.5}, "G² samples"),
     ({"samples": True}, "G² samples"), ({"method": "perm"}, "unknown G² method"),
     ({"sweeps": 0}, "G² sweeps")],
)  # fmt: skip
def test_bad_settings_are_one_clear_error(kwargs, match):
    counts = sample_counts(driven_chain(6, affinity=1.0, seed=0), attempts_per_source=50, seed=0)
    with pytest.raises(FitError, match=match):
        likelihood_ratio_test(counts, **kwargs)


@pytest.mark.slow
def test_cli_g2_samples_flag_reaches_the_test(tmp_path, capsys):
    from detailed_balance.cli import main
    from detailed_balance.formats import write_counts

    path = tmp_path / "c.csv"
    write_counts(
        sample_counts(driven_chain(6, affinity=1.0, seed=0), attempts_per_source=80, seed=0), path
    )
    args = ["compare", str(path), "--models", "reversible", "--draws", "100", "--warmup", "100"]
    assert main([*args, "--sensitivity", "--g2-samples", "0", "--json"]) == 0
    lrt = json.loads(capsys.readouterr().out)["likelihood_ratio_test"]
    assert lrt["samples"] == 0 and lrt["p_value_se"] is None
    assert lrt["p_value"] == pytest.approx(lrt["p_value_chi2"])


@pytest.mark.parametrize("bad", ["-3", "2.5", "many"])
def test_cli_bad_g2_samples_fails_at_parse_time(bad, capsys, write):
    from detailed_balance.cli import main

    counts = write("c.csv", "source,target,count\nA,B,3\nB,A,2\n")
    assert main(["compare", str(counts), "--g2-samples", bad]) == 2  # one line, no fit
    err = capsys.readouterr().err
    assert "argument --g2-samples:" in err and len(err.strip().splitlines()) == 1


def _walk_fiber(counts):
    """The cycle-walk sampler on the testable edges of ``counts``, and those edges."""
    from detailed_balance.comparison._g2_walk import WalkFiber

    data = build_model_data(counts)
    idx = np.flatnonzero(strong_class_edges(data)[0])
    n_e = data.n_edges
    a, b = data.arc_source[:n_e][idx], data.arc_target[:n_e][idx]
    count = np.concatenate([data.arc_count[:n_e][idx], data.arc_count[n_e:][idx]]).astype(int)
    fiber = WalkFiber(data.n_states, np.concatenate([a, b]), np.concatenate([b, a]), count, 3)
    return fiber, idx


@pytest.mark.parametrize("name", ["k4", "one-way triangle"])
def test_walk_kernel_leaves_the_exact_fiber_law_invariant(name):
    # tables drawn from the exact law P ∝ Π 1/C! (by enumeration), one cycle-walk move each:
    # the moved tables must still follow the exact law (chi² goodness of fit), and the move must
    # actually move (an identity kernel would pass the first check)
    from scipy.special import gammaln
    from scipy.stats import chi2

    counts = TransitionCounts.from_records(*SMALL_TABLES[name])
    x, total, _ = _fiber(counts)
    log_w = -np.sum(gammaln(x + 1) + gammaln(total - x + 1), axis=1)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    fiber, idx = _walk_fiber(counts)
    rng = np.random.default_rng(0)
    m = 20_000
    k0 = rng.choice(len(x), size=m, p=w)
    slot, arc = fiber.state(np.concatenate([x[k0][:, idx], total[idx] - x[k0][:, idx]], axis=1))
    slot, arc, _ = fiber.run(slot, arc, 1)
    where = {tuple(r): k for k, r in enumerate(x[:, idx].tolist())}
    k1 = np.array([where[tuple(r)] for r in arc[:, : len(idx)].tolist()])  # still in the fiber
    stat = np.sum((np.bincount(k1, minlength=len(x)) - m * w) ** 2 / (m * w))
    assert chi2.sf(stat, len(x) - 1) > 0.001
    assert np.mean(k1 != k0) > 0.3
    assert fiber.flips / fiber.moves > 0.3


@pytest.mark.slow
def test_walk_and_cycles_kernels_agree_on_sparse_relabelled_data():
    # two different exact samplers of the same conditional law: same p-value within Monte Carlo
    # error, on sparse data unlike the package's generator (log-normal conductances, relabelled)
    counts = relabel_counts(
        sample_counts(conductance_chain(30, degree=3.0, seed=4), attempts_per_source=12, seed=4),
        seed=4,
    )
    walk = likelihood_ratio_test(counts, samples=999, sweeps=2000, seed=1, kernel="walk")
    cycles = likelihood_ratio_test(counts, samples=999, sweeps=2000, seed=1, kernel="cycles")
    assert walk["kernel"] == "walk" and cycles["kernel"] == "cycles"
    assert walk["df"] == cycles["df"] > 5
    assert walk["acceptance"] > cycles["acceptance"]  # moves that changed the table
    assert 0.02 < cycles["p_value"] < 0.98  # an informative comparison, not both at a bound
    se = np.hypot(walk["p_value_se"], cycles["p_value_se"])
    assert abs(walk["p_value"] - cycles["p_value"]) < 4 * se + 0.01


@pytest.mark.slow
def test_walk_kernel_p_matches_full_enumeration():
    counts = TransitionCounts.from_records(*SMALL_TABLES["k4"])
    p_exact, _ = _exact_p(counts)
    res = likelihood_ratio_test(counts, samples=1999, sweeps=300, seed=2, kernel="walk")
    assert res["kernel"] == "walk"
    assert abs(res["p_value"] - p_exact) < 4 * res["p_value_se"] + 1 / 2000


def test_unknown_kernel_is_one_clear_error():
    counts = sample_counts(driven_chain(6, affinity=1.0, seed=0), attempts_per_source=50, seed=0)
    with pytest.raises(FitError, match="unknown G² kernel"):
        likelihood_ratio_test(counts, kernel="gibbs")
