"""The G² test's reversible MLE (batched fixed point, limits at infinity) and its bootstrap."""

import json
import warnings

import numpy as np
import pytest
from detailed_balance.models._common import FieldPrior

from detailed_balance import (
    _arviz,
    inference,  # noqa: F401  (configures JAX before it initialises)
)
from detailed_balance.counts import TransitionCounts
from detailed_balance.errors import FitError
from detailed_balance.lrt import (
    free_log_likelihood,
    likelihood_ratio_test,
    reversible_mle,
    simulate_counts,
)
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import driven_chain, reversible_chain, sample_counts


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


def test_bootstrap_size_and_power_on_sparse_chains():
    # Sparse 10-state data (40 attempts per source): the rejection rate of reversible datasets
    # at 5% must be near 5%, and a driven chain must be rejected.
    rejected, p_values = 0, []
    for s in range(30):
        counts = sample_counts(reversible_chain(10, seed=s), attempts_per_source=40, seed=s)
        res = likelihood_ratio_test(counts, bootstrap=199, seed=s)
        if res["p_value"] is None:
            continue
        p_values.append(res["p_value"])
        rejected += res["p_value"] < 0.05
        assert res["p_value"] == res["p_value_bootstrap"]
        assert 0 < res["p_value_bootstrap_se"] < 0.04
    assert len(p_values) >= 25
    assert rejected / len(p_values) <= 0.15
    assert 0.35 < np.mean(p_values) < 0.65  # roughly uniform under the null
    driven = sample_counts(driven_chain(10, affinity=2.0, seed=1), attempts_per_source=200, seed=1)
    res = likelihood_ratio_test(driven, bootstrap=199, seed=0)
    assert res["p_value"] < 0.01 and res["p_value_chi2"] < 0.01


def test_chi2_only_when_asked():
    counts = sample_counts(driven_chain(6, affinity=1.0, seed=0), attempts_per_source=100, seed=0)
    res = likelihood_ratio_test(counts, bootstrap=0)
    assert res["p_value"] == res["p_value_chi2"] and res["p_value_bootstrap"] is None


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_bad_bootstrap_size_is_one_clear_error(bad):
    counts = sample_counts(driven_chain(6, affinity=1.0, seed=0), attempts_per_source=50, seed=0)
    with pytest.raises(FitError, match="bootstrap must be a whole number of replicates >= 0"):
        likelihood_ratio_test(counts, bootstrap=bad)


def test_cli_bootstrap_flag_reaches_the_test(tmp_path, capsys):
    from detailed_balance.cli import main
    from detailed_balance.formats import write_counts

    path = tmp_path / "c.csv"
    write_counts(
        sample_counts(driven_chain(6, affinity=1.0, seed=0), attempts_per_source=80, seed=0), path
    )
    args = ["compare", str(path), "--models", "reversible", "--draws", "100", "--warmup", "100"]
    assert main([*args, "--sensitivity", "--bootstrap", "0", "--json"]) == 0
    lrt = json.loads(capsys.readouterr().out)["likelihood_ratio_test"]
    assert lrt["bootstrap"] == 0 and lrt["p_value_bootstrap"] is None
    assert lrt["p_value"] == pytest.approx(lrt["p_value_chi2"])
    assert main([*args, "--sensitivity", "--bootstrap", "-3"]) != 0
    assert "bootstrap must be a whole number" in capsys.readouterr().err
