"""Universality: joint fits of several datasets (models/joint_*.py, universality/)."""

import json
import math

import numpy as np
import pytest

from detailed_balance.cli import main
from detailed_balance.counts import TransitionCounts
from detailed_balance.errors import DataError
from detailed_balance.formats import write_counts
from detailed_balance.universality import (
    build_joint_data,
    common_sources,
    compare_universality,
    fit_joint,
    read_labels,
    synthetic_joint,
    temperature_slope,
)


def _counts(rows, states=None):
    src, tgt, cnt = zip(*rows, strict=True)
    return TransitionCounts.from_records(src, tgt, cnt, states=states)


# ---- data ------------------------------------------------------------------------------------
def test_joint_data_maps_each_dataset_into_the_union():
    a = _counts([("dog", "cat", 3), ("cat", "dog", 2), ("cat", None, 1)])
    b = _counts([("wolf", "dog", 4), ("dog", "wolf", 1), ("dog", "dog", 2)])
    joint = build_joint_data([a, b])
    assert joint.states == ("cat", "dog", "wolf")
    for c, idx in zip((a, b), joint.index, strict=True):
        assert [joint.states[i] for i in idx] == list(c.states)
    # the union's counts are the sums: dog's attempts are 3 (a) + 1 + 2 (b)
    u = joint.union
    assert int(u.attempts[joint.states.index("dog")]) == 3 + 1 + 2
    assert joint.datasets[0].n_states == 2 and joint.datasets[1].n_states == 2
    assert common_sources([a, b]) == ["dog"]


def test_joint_data_rejects_one_dataset_and_disjoint_states():
    a = _counts([("dog", "cat", 3), ("cat", "dog", 2)])
    b = _counts([("owl", "emu", 3), ("emu", "owl", 2)])
    with pytest.raises(DataError, match="at least two datasets"):
        build_joint_data([a])
    with pytest.raises(DataError, match="no state in common"):
        build_joint_data([a, b])


def test_synthetic_joint_relabelled_states_give_the_same_union():
    counts, truth = synthetic_joint(n_states=8, betas=(1.0, 2.0), attempts_per_source=30, seed=3)
    assert len(counts) == 2 and truth["betas"].tolist() == [1.0, 2.0]
    # reorder one dataset's states: the joint data must map them to the same union states
    c = counts[1]
    perm = np.arange(c.n_states)[::-1]
    labels = np.asarray(c.states, dtype=object)
    rows = list(zip(labels[c.source], labels[c.target], c.count, strict=True))
    rows += [(s, None, int(r)) for s, r in zip(c.states, c.rejected, strict=True) if r]
    shuffled = _counts(rows, states=[c.states[i] for i in perm])
    j1, j2 = build_joint_data(counts), build_joint_data([counts[0], shuffled])
    assert j1.states == j2.states
    np.testing.assert_array_equal(j1.union.attempts, j2.union.attempts)


def test_temperature_slope_is_minus_one_for_an_inverse_temperature():
    t = [1.0, 0.5, 2.0, None]
    beta = np.array([[1.0, 2.0, 0.5, 7.0]] * 10)  # the last (no temperature) is ignored
    s = temperature_slope(beta, t)
    assert s["datasets_used"] == 3
    assert s["mean"] == pytest.approx(-1.0)
    assert temperature_slope(beta, [1.0, 1.0, None, None]) is None


def test_read_labels_from_a_run_line(tmp_path):
    p = tmp_path / "run.jsonl"
    run = {"kind": "run", "run_id": "x", "config": {"model": "m", "template_hash": "h",
           "temperature": 0.5, "agent": "animals"}}  # fmt: skip
    p.write_text(json.dumps(run) + "\n")
    lab = read_labels(p)
    assert (lab["name"], lab["model"], lab["template"], lab["temperature"]) == (
        "run", "m", "h", 0.5,
    )  # fmt: skip
    assert read_labels(tmp_path / "x.csv") == {"name": "x", "file": str(tmp_path / "x.csv")}


# ---- fits --------------------------------------------------------------------------------------
def test_shared_map_recovers_the_scales():
    """MAP of the shared model on three datasets drawn from one field with beta = 1, 0.5, 2."""
    counts, _ = synthetic_joint(
        n_states=12, betas=(1.0, 0.5, 2.0), width=1.5, attempts_per_source=400, seed=1
    )
    fit = fit_joint(counts, "shared", method="map")
    beta = fit.posterior["beta"][0, 0]
    assert beta[0] == 1.0
    np.testing.assert_allclose(beta[1:], [0.5, 2.0], rtol=0.3)
    # every dataset's cells are in the pointwise log-likelihood, and the counts match
    assert fit.loglik.shape[-1] == len(fit.cell_count) == len(fit.cell_dataset)
    assert int(fit.cell_count.sum()) == sum(int(c.attempts.sum()) for c in counts)


def test_pooled_chains_start_at_each_datasets_own_field():
    """The pooled start (from the separate mode) gives every dataset its own field, beta = 1
    and tau > 0, also a dataset whose field is anti-correlated with the shared one (where a
    chain from numpyro's default start settled at beta_3 = 0.017, tau ~ 0: the slow test's
    data)."""
    from detailed_balance.models.joint_pooled import joint_pooled
    from numpyro.handlers import seed, substitute, trace

    from detailed_balance.modeldata import FieldPrior
    from detailed_balance.universality._fit import _pooled_start

    counts, truth = synthetic_joint(
        n_states=10, betas=(1.0, 1.0, 1.0), width=1.5, attempts_per_source=300,
        independent=(2,), seed=7,
    )  # fmt: skip
    assert np.corrcoef(truth["phi"], truth["phi_k"][2])[0, 1] < -0.3
    joint = build_joint_data(counts)
    start = _pooled_start(joint, FieldPrior(), seed=0)
    assert start["tau"] > 0.5 and np.all(start["log_beta"] == 0)
    tr = trace(substitute(seed(lambda: joint_pooled(joint=joint), 0), start)).get_trace()
    for k, idx in enumerate(joint.index):
        field = np.asarray(tr["phi"]["value"])[idx] + np.asarray(tr[f"d{k}_delta"]["value"])
        assert np.corrcoef(field, truth["phi_k"][k][idx])[0, 1] > 0.95, k


def test_cli_needs_two_datasets(tmp_path, capsys):
    counts, _ = synthetic_joint(n_states=5, betas=(1.0, 1.0), attempts_per_source=10)
    write_counts(counts[0], tmp_path / "a.csv")
    assert main(["universality", str(tmp_path / "a.csv")]) == 2
    assert "at least two datasets" in capsys.readouterr().err
    write_counts(counts[1], tmp_path / "b.csv")
    argv = ["universality", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert main([*argv, "--temperatures", "1,x"]) == 2
    assert "--temperatures" in capsys.readouterr().err


# ---- the one-landscape Bayes factor (Savage–Dickey at tau = 0 of the pooled model) -------------
def _site_log_probs(model, kwargs, values):
    from numpyro.handlers import substitute, trace

    tr = trace(substitute(lambda: model(**kwargs), values)).get_trace()
    return {
        k: float(np.sum(s["fn"].log_prob(s["value"])))
        for k, s in tr.items()
        if s["type"] == "sample"
    }


@pytest.mark.filterwarnings("ignore:Out-of-support")  # tau = 0: HalfNormal's support is (0, inf)
def test_pooled_at_tau_zero_is_exactly_the_shared_model():
    """Savage–Dickey needs an exact nesting: at tau = 0 the pooled model's likelihood and the
    priors of the sites it shares with the shared model are the shared model's, whatever the
    departures' z, and tau's prior does not depend on them."""
    from detailed_balance.models.joint_pooled import joint_pooled
    from detailed_balance.models.joint_shared import joint_shared
    from numpyro.handlers import seed, trace

    counts, _ = synthetic_joint(n_states=7, betas=(1.0, 0.5, 2.0), attempts_per_source=40, seed=5)
    joint = build_joint_data(counts)
    kw = {"joint": joint}
    rng = np.random.default_rng(0)
    for draw in (0,):  # a random parameter point of the pooled prior
        tr = trace(seed(lambda: joint_pooled(**kw), draw)).get_trace()
        values = {k: s["value"] for k, s in tr.items() if s["type"] == "sample" and not
                  s["is_observed"]}  # fmt: skip
        values["tau"] = np.float32(0.0)
        for k in range(len(counts)):  # departures of any size: irrelevant at tau = 0
            values[f"d{k}_delta_z"] = rng.normal(0, 3, np.shape(values[f"d{k}_delta_z"]))
        pooled = _site_log_probs(joint_pooled, kw, values)
        shared = _site_log_probs(joint_shared, kw, values)
        assert set(shared) < set(pooled)
        assert set(pooled) - set(shared) == {"tau", *(f"d{k}_delta_z" for k in range(3))}
        for site, lp in shared.items():  # priors of phi, beta, edge terms and the likelihoods
            assert pooled[site] == pytest.approx(lp, rel=1e-6, abs=1e-3), site
        assert any(site.endswith("_y") for site in shared)
        # and at tau > 0 the likelihood differs (the test can fail)
        values["tau"] = np.float32(0.5)
        moved = _site_log_probs(joint_pooled, kw, values)
        assert moved["d0_y"] != pytest.approx(shared["d0_y"], rel=1e-6, abs=1e-3)


def test_bf_call_thresholds():
    from detailed_balance.universality import bf_call

    assert bf_call(3.0, True) == "shared" and bf_call(-3.0, True) == "pooled"
    assert bf_call(1.0, True) is None and bf_call(None, True) is None
    # not converged: only a far-tail estimate well below the threshold decides (for pooled)
    assert bf_call(-3.0, False) is None and bf_call(-50.0, False, 1) == "pooled"
    assert bf_call(-50.0, False) is None  # refused for another reason: no side
    assert bf_call(50.0, False) is None


@pytest.mark.slow
def test_one_landscape_bf_sign_on_shared_and_independent_truth():
    from detailed_balance.universality import one_landscape_bf

    out = {}
    for kind in ("shared", "independent"):
        counts, _ = synthetic_joint(
            n_states=10, betas=(1.0, 0.5, 2.0) if kind == "shared" else (1.0, 1.0, 1.0),
            width=1.5, attempts_per_source=300, independent=() if kind == "shared" else (2,),
            seed=7,
        )  # fmt: skip
        fit = fit_joint(counts, "pooled", draws=300, warmup=300, chains=2, seed=1)
        out[kind] = one_landscape_bf(fit)
    sh, ind = out["shared"], out["independent"]
    assert sh.converged and sh.log_bf > 0 and np.isfinite(sh.se) and sh.se < 1, sh
    assert ind.log_bf < -3 * math.log(10), ind


# ---- recovery and decisions (NUTS, Savage–Dickey, LOO) -----------------------------------------
NUTS = {"draws": 600, "warmup": 500, "chains": 2}


def _covers(iv, value):
    return iv["hdi_low"] <= value <= iv["hdi_high"]


@pytest.mark.slow
def test_shared_truth_is_recovered_and_preferred():
    counts, _ = synthetic_joint(
        n_states=12, betas=(1.0, 0.5, 2.0), width=1.5, attempts_per_source=300, seed=2
    )
    res = compare_universality(counts, temperatures=[1.0, 2.0, 0.5], **NUTS)
    for iv, true in zip(res.beta["shared"], (1.0, 0.5, 2.0), strict=True):
        assert _covers(iv, true), iv
    assert res.tau["hdi_low"] < 0.3  # tau -> 0 is the truth
    bf = res.bayes_factor  # Savage–Dickey, shared vs pooled
    assert bf["converged"] and bf["log_bf"] > 0 and bf["call"] != "pooled", bf
    assert _covers(res.slope, -1.0)  # beta = 1/T exactly in this truth
    md = res.to_markdown()
    assert "log BF" in md and "94% HDI" in md


@pytest.mark.slow
def test_an_independent_field_is_rejected(tmp_path):
    counts, _ = synthetic_joint(
        n_states=12, betas=(1.0, 1.0, 1.0), width=1.5, attempts_per_source=300,
        independent=(2,), seed=4,
    )  # fmt: skip
    for k, c in enumerate(counts):
        write_counts(c, tmp_path / f"d{k}.csv")
    out = tmp_path / "out"
    argv = ["universality", *(str(tmp_path / f"d{k}.csv") for k in range(3))]
    argv += ["--draws", "600", "--warmup", "500", "--chains", "2", "--out", str(out)]
    assert main(argv) == 0
    res = json.loads((out / "universality.json").read_text())
    assert res["bayes_factor"]["log_bf"] < -math.log(10)
    assert res["bayes_factor"]["call"] == "pooled"
    assert res["tau"]["hdi_low"] > 0.2
    assert (out / "fields.png").exists() and (out / "universality.md").exists()


def test_shipped_series_is_an_untruncated_temperature_series_over_common_sources():
    from detailed_balance.formats import read_counts
    from detailed_balance.universality import series_paths

    labels = [read_labels(p) for p in series_paths()]
    assert [lab["temperature"] for lab in labels] == [0.5, 1.0, 1.5, 1.0]
    assert all(lab["top_p"] == 1.0 for lab in labels)
    assert all(lab["extra_body"] == {"top_k": 0, "min_p": 0} for lab in labels)
    assert len({lab["template"] for lab in labels}) == 2  # the last one is another template
    counts = [read_counts(p) for p in series_paths()]
    assert all(int(c.attempts.sum()) >= 4000 for c in counts)  # the issue asks >= 4,000
    assert len(common_sources(counts)) == 40
