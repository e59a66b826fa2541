"""Comparison: G² against deeptime's reversible MLE, weighted LOO against replicated ArviZ LOO,
the tree case, the end-to-end table/JSON/CLI, and the fast calibration."""

import csv
import importlib.util
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from detailed_balance import inference  # noqa: F401  (configures JAX before it initialises)
from detailed_balance.comparison import (
    free_log_likelihood,
    kass_raftery,
    likelihood_ratio_test,
    weighted_loo,
)
from detailed_balance.counts import TransitionCounts
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import driven_chain, sample_counts

ROOT = Path(__file__).resolve().parents[2]


def test_g2_matches_deeptime_reversible_mle():
    deeptime = pytest.importorskip("deeptime")
    counts = sample_counts(driven_chain(7, affinity=0.7, seed=4), attempts_per_source=300, seed=1)
    dense = counts.dense().astype(float)
    np.fill_diagonal(dense, counts.self_count + counts.rejected)  # rest = the free diagonal
    msm = deeptime.markov.msm.MaximumLikelihoodMSM(reversible=True, maxiter=100_000, maxerr=1e-12)
    T = msm.fit_fetch(dense).transition_matrix
    assert T.shape == dense.shape
    seen = dense > 0
    ll_rev = float(np.sum(dense[seen] * np.log(T[seen])))
    free = dense / dense.sum(axis=1, keepdims=True)
    ll_free = float(np.sum(dense[seen] * np.log(free[seen])))
    assert free_log_likelihood(build_model_data(counts)) == pytest.approx(ll_free, abs=1e-8)
    res = likelihood_ratio_test(counts)
    assert res["df"] == build_model_data(counts).n_chords > 0
    assert res["statistic"] == pytest.approx(2 * (ll_free - ll_rev), abs=1e-4)
    assert 0 <= res["p_value"] <= 1 and res["converged"]


def test_tree_support_has_no_test():
    c = TransitionCounts.from_records(
        ["A", "B", "B", "C", "A"], ["B", "A", "C", "B", None], [5, 3, 4, 2, 1]
    )
    res = likelihood_ratio_test(c)
    assert res["df"] == 0 and res["p_value"] is None and res["statistic"] is None
    assert "tree" in res["note"] and "reversible" in res["note"]


def test_kass_raftery_scale():
    assert kass_raftery(0.5) == "not worth more than a bare mention"
    assert kass_raftery(-2.0) == "positive"
    assert kass_raftery(4.0) == "strong"
    assert kass_raftery(6.0) == "very strong"


def test_weighted_loo_equals_loo_over_replicated_attempts():
    from detailed_balance import _arviz

    rng = np.random.default_rng(3)
    counts = np.array([1, 2, 5, 3])
    base = rng.normal(-1.5, 0.3, size=(2, 200, 4)) + rng.normal(0, 0.5, 4)  # log p per attempt
    res = weighted_loo(base * counts, counts)
    # oracle: one column per attempt, plain ArviZ LOO
    import xarray as xr

    rep = np.repeat(base, counts, axis=-1)
    ds = xr.Dataset({"y": (("chain", "draw", "obs"), rep)})
    oracle = _arviz.loo(_arviz.make({"posterior": ds.rename({"y": "ll"}), "log_likelihood": ds}))
    assert res["n_attempts"] == counts.sum()
    assert res["elpd"] == pytest.approx(oracle["elpd"], abs=0.05)
    assert res["se"] == pytest.approx(oracle["se"], rel=0.02)
    assert res["elpd_i"] == pytest.approx(oracle["elpd_i"][np.cumsum(counts) - 1], abs=0.02)


def test_cli_compare_table_json_and_verdict(tmp_path, capsys):
    """A strongly driven chain: the rules see the violation; JSON = table; verdict says so."""
    from detailed_balance.cli import main
    from detailed_balance.formats import write_counts

    counts = sample_counts(driven_chain(6, affinity=3.0, seed=2), attempts_per_source=300, seed=0)
    path = tmp_path / "counts.csv"
    write_counts(counts, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["compare", str(path), "--models", "reversible", "nonreversible",
                     "--sensitivity", "--draws", "300", "--warmup", "200", "--json",
                     "--target-accept", "0.85", "--warmup-tree-depth", "6",
                     "--out", str(tmp_path / "out"),
                     "--tau-path", "--nested-smc"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "fit 1/2: reversible (main prior)" in captured.err  # staged progress
    assert "fit 2/2: nonreversible (main prior)" in captured.err
    printed = json.loads(captured.out)
    saved = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert printed == saved
    # the depth each fit used (recorded by the fits) is in compare's settings
    assert saved["settings"]["warmup_tree_depth"] == {"reversible": 6, "nonreversible": 6}
    rows = {r["model"]: r for r in saved["models"]}
    assert set(rows) == {"reversible", "nonreversible"}
    nr = rows["nonreversible"]
    assert nr["log_bf_vs_reversible"] > math.log(10) + 2 * nr["log_bf_se"]
    assert nr["log_bf_vs_reversible"] == pytest.approx(nr["log_z"] - rows["reversible"]["log_z"])
    assert nr["bf_method"] == "bridge"  # bridge gave a number: --tau-path, --nested-smc idle
    assert nr["elpd_vs_reversible"] > 2 * nr["elpd_vs_reversible_se"]
    assert saved["likelihood_ratio_test"]["p_value"] < 0.05
    assert "favours a violation of detailed balance" in saved["verdict"]
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "models.csv").set_index("model")
    assert table.loc["nonreversible", "log_z"] == pytest.approx(nr["log_z"], rel=1e-12)
    assert "| nonreversible |" in (tmp_path / "out" / "comparison.md").read_text()


def test_cli_compare_bad_input_one_line(tmp_path, capsys):
    from detailed_balance.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_text("source,target,count\nA,B,-3\n")
    assert main(["compare", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.csv" in err


@pytest.mark.slow
def test_compare_all_models_with_sensitivity():
    from detailed_balance.comparison import compare

    counts = sample_counts(driven_chain(6, affinity=0.0, seed=5), attempts_per_source=200, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compare(counts, draws=1000, warmup=500, sensitivity_scales=(1 / 3, 3.0))
    t = res.table.set_index("model")
    assert list(t.index) == ["unconstrained", "reversible", "nonreversible"]
    # the built-in check: the bridge estimate of the unconstrained model matches its exact value
    un = t.loc["unconstrained"]
    assert abs(un.bridge_check - un.log_z) < max(3 * un.bridge_check_se, 0.05)
    assert len(res.sensitivity) == 3
    assert res.sensitivity["log_bf_nonreversible"].notna().all()
    d = res.to_dict()
    assert json.loads(json.dumps(d)) == d  # JSON-able as is
    assert "Kass–Raftery" in res.verdict or "inconclusive" in res.verdict


def _calibration():
    spec = importlib.util.spec_from_file_location("calibration", ROOT / "benchmarks/calibration.py")
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    return cal


def _has_savage_dickey() -> bool:
    from detailed_balance import comparison

    return hasattr(comparison, "savage_dickey")


@pytest.mark.slow
def test_fast_calibration(tmp_path):
    """The calibration script's fast version: a reversible and a strongly driven 8-state chain,
    NUTS pass (LOO, G², stored draws) then the Savage–Dickey pass from the stored draws."""
    cal = _calibration()
    out = tmp_path / "calibration_rows.csv"
    rows = cal.run(cal.plan(False), {"warmup": 300, "draws": 600}, out,
                   log=lambda m: None, draws_dir=tmp_path / cal.DRAWS_DIR)  # fmt: skip
    rev, driven = rows
    assert rev["loo"] != "nonrev" and driven["loo"] == driven["g2_pick"] == "nonrev"
    assert (tmp_path / cal.DRAWS_DIR / driven["draws_file"]).exists()
    if _has_savage_dickey():
        assert cal.fill_savage_dickey(out, log=lambda m: None) == 2
        rev, driven = cal.with_sd(cal.read_rows(out), cal.read_sd(cal.sd_path(out)))
        assert rev["bf"] != "nonrev" and driven["bf"] == "nonrev"
    table = cal.summarise(cal.with_sd(cal.read_rows(out), cal.read_sd(cal.sd_path(out))))
    assert {(e["truth"], e["generator"]) for e in table} >= {("reversible", "all"),
                                                              ("driven, 2 nat", "all")}
    assert "LOO > 2 se" in cal.markdown(table)


@pytest.mark.slow  # two Savage–Dickey compilations: ~30 s on a quiet 2-core machine
def test_savage_dickey_pass_reads_stored_draws(tmp_path):
    """The second pass rebuilds the counts from the row's seeds, reads the float32 draws and gives
    exactly what savage_dickey gives on them (counts regenerated here without the script)."""
    if not _has_savage_dickey():
        pytest.skip("detailed_balance.comparison.savage_dickey is not merged yet")
    import jax
    from detailed_balance.models import MODELS
    from detailed_balance.models._common import FieldPrior
    from numpyro.infer import Predictive

    from detailed_balance.comparison import savage_dickey

    cal = _calibration()
    job = cal.plan(False)[1]  # driven, 8 states, 2 nats per cycle, 500 attempts per source
    counts = sample_counts(driven_chain(8, affinity=2.0, seed=1000), attempts_per_source=500,
                           seed=0)  # fmt: skip
    kwargs = {"data": build_model_data(counts), "prior": FieldPrior()}
    model = MODELS["nonreversible"]
    # draws of every latent site (from the prior: the pass must reproduce, whatever the draws)
    prior = Predictive(model, num_samples=2 * 8)(jax.random.PRNGKey(0), **kwargs)
    latent = ["beta_u", "flow_z", "mu_u", "phi_raw", "sigma_phi", "sigma_u", "tau", "u_z"]
    samples = {k: np.asarray(prior[k]).reshape((2, 8) + prior[k].shape[1:]) for k in latent}
    cal.store_draws(tmp_path / cal.DRAWS_DIR / "d.npz", samples)
    out = tmp_path / "calibration_rows.csv"
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, cal.NUTS_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerow({**job, "draws_file": "d.npz", "bf": ""})
    assert cal.fill_savage_dickey(out, log=lambda m: None) == 1
    (row,) = cal.with_sd(cal.read_rows(out), cal.read_sd(cal.sd_path(out)))
    stored = {k: v.astype(np.float32).astype(np.float64) for k, v in samples.items()}
    ref = savage_dickey(model, kwargs, stored)
    assert row["log_bf"] == pytest.approx(-ref.log_bf, rel=1e-12, abs=1e-12)
    assert int(row["bf_converged"]) == int(ref.converged)


def _verdict_of(log_bf, log_bf_se, elpd, elpd_se, log_z_alt=-10.0, lrt=None, rev=None, **bf):
    """write_verdict on a hand-made comparison table (no fit); ``rev``: the reversible row's
    values of the ``bf`` columns (default "")."""
    from types import SimpleNamespace

    import pandas as pd

    from detailed_balance.comparison import write_verdict

    table = pd.DataFrame(
        {
            "model": ["reversible", "nonreversible"],
            "log_z": [-12.0, log_z_alt],
            "log_bf_vs_reversible": [0.0, log_bf],
            "log_bf_se": [0.0, log_bf_se],
            "elpd_vs_reversible": [0.0, elpd],
            "elpd_vs_reversible_se": [0.0, elpd_se],
            "pareto_k_bad_attempts": [0, 0],
            **{k: [(rev or {}).get(k, ""), v] for k, v in bf.items()},
        }
    )
    result = SimpleNamespace(
        table=table, settings={"n_cycles": 3}, sensitivity=pd.DataFrame(), lrt=lrt
    )
    return write_verdict(result)


def test_verdict_sentences_match_the_numbers():
    against = _verdict_of(-1.4, 0.2, -0.5, 0.8)
    assert "log BF = -1.4 ± 0.2 (nonreversible vs reversible; difference of log" in against
    assert "favours detailed balance" in against
    assert "Evidence for detailed balance means" in against  # the caveat, only here
    driven = _verdict_of(5.0, 0.3, 9.0, 2.0)
    assert "favours a violation" in driven and "Evidence for detailed balance" not in driven
    assert "z = 4.5 > 2" in driven
    unclear = _verdict_of(0.2, 0.3, 0.94, 0.92)
    assert "inconclusive" in unclear and "Evidence for detailed balance" not in unclear
    assert "z = 1.0 ≤ 2" in unclear  # 0.94 vs 0.92 is not 'prefers'
    failed = _verdict_of(np.nan, np.nan, 0.0, 1.0, log_z_alt=np.nan)
    assert "evidence of the nonreversible model could not be estimated" in failed
    assert "reversible model and" not in failed  # names only the model that failed


def test_verdict_names_the_savage_dickey_estimator_and_the_far_tail():
    sd = _verdict_of(3.1, 0.4, 2.0, 1.0, bf_method="savage-dickey", bf_bridge=2.9,
                     bf_bridge_se=0.2, bf_tail=0)  # fmt: skip
    assert "log BF = 3.1 ± 0.4 (nonreversible vs reversible; Savage–Dickey" in sd
    assert "bridge sampling gives 2.9 ± 0.2" in sd and "favours a violation" in sd
    far = _verdict_of(np.nan, np.nan, 9.0, 2.0, bf_method="savage-dickey", bf_bridge=np.nan,
                      bf_bridge_se=np.nan, bf_tail=1)  # fmt: skip
    assert "favours a violation of detailed balance far beyond the decision threshold" in far
    assert "nan" not in far and "log BF =" not in far
    refused = _verdict_of(np.nan, np.nan, 0.0, 1.0, bf_method="savage-dickey",
                          bf_bridge=np.nan, bf_bridge_se=np.nan, bf_tail=0)  # fmt: skip
    assert "Savage–Dickey estimate was refused" in refused


def test_verdict_names_the_tau_path():
    path = _verdict_of(9.4, 0.2, 9.0, 2.0, bf_method="tau-path", bf_bridge=np.nan,
                       bf_bridge_se=np.nan, bf_tail=0)  # fmt: skip
    assert "log BF = 9.4 ± 0.2 (nonreversible vs reversible; thermodynamic integration" in path
    assert "favours a violation" in path


def test_nonreversible_bf_takes_the_tau_path_only_where_nothing_else_gave_a_number():
    from detailed_balance.comparison import Evidence, PathBayesFactor, SavageDickey
    from detailed_balance.comparison._compare import nonreversible_bf

    far = SavageDickey(-14.3, np.nan, converged=False, tail_side=1)
    failed = Evidence(np.nan, np.nan, "bridge", converged=False)
    path = PathBayesFactor(9.42, 0.21, 0.18, 0.11, True)  # log BF reversible : nonreversible
    row = nonreversible_bf(far, failed, failed, path)
    assert row["bf_method"] == "tau-path" and row["bf_tail"] == 0
    assert row["log_bf_vs_reversible"] == -9.42 and row["log_bf_se"] == 0.21
    refused = PathBayesFactor(np.nan, np.nan, np.nan, np.nan, False, note="R-hat")
    row = nonreversible_bf(far, failed, failed, refused)
    assert np.isnan(row["log_bf_vs_reversible"]) and row["bf_tail"] == 1  # the far-tail call
    ok = Evidence(-100.0, 0.05, "bridge")
    row = nonreversible_bf(far, Evidence(-90.0, 0.05, "bridge"), ok, path)
    assert row["bf_method"] == "bridge" and row["log_bf_vs_reversible"] == 10.0
    sd = SavageDickey(1.5, 0.03)
    assert nonreversible_bf(sd, failed, failed, path)["bf_method"] == "savage-dickey"


def test_evidences_from_a_fallback_are_not_called_bridge_sampling():
    """With ``evidence_fallback`` the log evidences may be draws-smc's: the Bayes factor from
    their difference, and the check beside Savage–Dickey, name their estimators."""
    from detailed_balance.comparison import Evidence, SavageDickey
    from detailed_balance.comparison._compare import _savage_dickey_notes, nonreversible_bf

    refused = SavageDickey(-3.0, np.nan, converged=False)
    smc, bridge = Evidence(-90.0, 0.1, "draws-smc"), Evidence(-100.0, 0.1, "bridge")
    assert nonreversible_bf(refused, smc, bridge)["bf_method"] == "evidences"
    assert nonreversible_bf(refused, smc, Evidence(-95.0, 0.1, "draws-smc"))["bf_method"] == (
        "evidences"
    )
    assert nonreversible_bf(refused, Evidence(-90.0, 0.1, "bridge"), bridge)["bf_method"] == (
        "bridge"
    )
    (note,) = _savage_dickey_notes(SavageDickey(-3.0, 0.1), smc, bridge)  # -3 vs -10: disagree
    assert "the difference of log evidences (draws-smc; reversible: bridge) (-10.00 ±" in note
    smc_rev = {"evidence_method": "draws-smc"}
    by_smc = _verdict_of(10.0, 0.14, 9.0, 2.0, bf_method="evidences",
                         evidence_method="draws-smc", rev=smc_rev)  # fmt: skip
    assert "(nonreversible vs reversible; difference of log evidences (draws-smc), ±" in by_smc
    mixed = _verdict_of(10.0, 0.14, 9.0, 2.0, bf_method="evidences",
                        evidence_method="draws-smc", rev={"evidence_method": "bridge"})  # fmt: skip
    assert "difference of log evidences (draws-smc; reversible: bridge), ±" in mixed
    sd = _verdict_of(3.1, 0.4, 2.0, 1.0, bf_method="savage-dickey", bf_bridge=2.9,
                     bf_bridge_se=0.2, bf_tail=0, evidence_method="draws-smc",
                     rev=smc_rev)  # fmt: skip
    assert "the difference of draws-smc log evidences gives 2.9 ± 0.2" in sd
    assert "bridge sampling" not in sd


@pytest.mark.slow  # 4 fits and the tau path's ~20 NUTS runs at 10 states: 17 min at load 5
def test_compare_tau_path_where_savage_dickey_and_bridge_give_no_number():
    from detailed_balance.models import MODELS, FieldPrior

    from detailed_balance.comparison import BOUND_METHODS, bridge_sampling, compare
    from detailed_balance.inference import fit, latent_draws

    counts = sample_counts(driven_chain(10, affinity=1.5, seed=10), attempts_per_source=200,
                           seed=3)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # 2 x 150 draws: too few for bridge sampling at 46 parameters (it is not even tried)
        short = {m: fit(counts, m, draws=150, warmup=300, chains=2, seed=1)
                 for m in ("reversible", "nonreversible")}  # fmt: skip
        without = compare(short, lrt=False)
        result = compare(short, lrt=False, tau_path=True)
        long = {m: latent_draws(fit(counts, m, draws=1000, warmup=1000, chains=2, seed=1))
                for m in ("reversible", "nonreversible")}  # fmt: skip
    row = without.table.set_index("model").loc["nonreversible"]
    # without the tau path (or nested SMC) the row holds no estimate: at most a bound, so named
    assert not np.isfinite(row.log_bf_vs_reversible) or row.bf_method in BOUND_METHODS
    assert any("--tau-path" in n for n in without.notes)
    row = result.table.set_index("model").loc["nonreversible"]
    assert row.bf_method == "tau-path" and 0 < row.log_bf_se < 0.5
    assert "thermodynamic integration" in result.verdict and "favours a violation" in result.verdict
    # an independent number: bridge sampling on 2 x 1000 draws of each model
    kw = {"data": build_model_data(counts), "prior": FieldPrior()}
    ev = {m: bridge_sampling(MODELS[m], kw, d, seed=0) for m, d in long.items()}
    bridge = ev["nonreversible"].log_z - ev["reversible"].log_z
    se = math.hypot(row.log_bf_se, ev["nonreversible"].se, ev["reversible"].se)
    assert bridge > math.log(10) and abs(row.log_bf_vs_reversible - bridge) < 3 * se, (
        row.log_bf_vs_reversible, row.log_bf_se, bridge)  # fmt: skip
