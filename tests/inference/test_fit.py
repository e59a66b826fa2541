"""fit(): recovery of known potentials, the fit object and its file, diagnostics, bad input, CLI."""

import json
import re
import warnings

import numpy as np
import pytest
from _fits import main_fit, truth_in_gauge, with_one_way_state

from detailed_balance import TransitionCounts, _arviz
from detailed_balance.errors import DataError, FitError
from detailed_balance.inference import (
    ConvergenceWarning,
    FieldPrior,
    IdentifiabilityWarning,
    counts_from_fit,
    fit,
    load_fit,
    posterior_kernel,
    read_features,
    rhat_ess,
    save_fit,
    summarise,
)
from detailed_balance.synthetic import reversible_chain, sample_counts


def draws_of(idata, name):
    x = np.asarray(_arviz.group(idata, "posterior")[name].values)
    return x.reshape((-1,) + x.shape[2:])


def coverage(chain, counts, idata):
    truth, identified = truth_in_gauge(chain, counts)
    lo, hi = _arviz.hdi(draws_of(idata, "V"), 0.94)
    return np.mean(((lo <= truth) & (truth <= hi))[identified])


# ---- recovery ---------------------------------------------------------------------------------
def test_hdis_cover_the_true_potential():
    chain, counts, idata = main_fit()
    assert coverage(chain, counts, idata) >= 0.8


@pytest.mark.slow
def test_hdi_coverage_across_seeds():
    """>= 85% of identified states covered, 30-state chains, 200 attempts/source, 5 seeds."""
    covered = [coverage(*main_fit(seed=s, draws=600, warmup=600)) for s in range(1, 6)]
    assert np.mean(covered) >= 0.85, covered


@pytest.mark.slow
def test_posterior_sd_shrinks_with_attempts():
    sd = []
    for attempts in (50, 200, 800):
        _, _, idata = main_fit(seed=7, attempts=attempts, n_states=12)
        sd.append(np.median(draws_of(idata, "V").std(axis=0)[:-1]))  # without the one-way state
    assert sd[0] > 1.4 * sd[1] > 1.4 * 1.4 * sd[2], sd


@pytest.mark.slow
def test_float32_trajectories_give_the_float64_posterior():
    """NUTS in float32 (the default) samples the same posterior as in float64: V means agree
    within 4 Monte Carlo standard errors, sds within 15%; stored draws are float64."""
    counts = sample_counts(reversible_chain(15, seed=3), attempts_per_source=150, seed=3)
    fits = {
        p: fit(counts, draws=1000, warmup=500, chains=2, seed=1, precision=p)
        for p in ("float32", "float64")
    }
    V = {p: draws_of(f, "V") for p, f in fits.items()}
    assert V["float32"].dtype == np.float64
    post = _arviz.group(fits["float32"], "posterior")["V"]
    _, ess = _arviz.rhat_ess(post.to_dataset())
    sd = V["float64"].std(axis=0)
    mcse = sd * np.sqrt(2 / np.asarray(ess["V"]))
    diff = np.abs(V["float32"].mean(axis=0) - V["float64"].mean(axis=0))
    assert np.all(diff < 4 * mcse + 1e-9), (diff / mcse).max()
    np.testing.assert_allclose(V["float32"].std(axis=0), sd, rtol=0.15)
    assert json.loads(_arviz.attrs(fits["float32"])["diagnostics"])["precision"] == "float32"


def test_unidentified_state_is_flagged_and_wide():
    _, counts, idata = main_fit()
    s = summarise(idata)
    by_name = {st["state"]: st for st in s["states"]}
    assert by_name["zz"]["identified"] is False
    assert sum(st["identified"] for st in s["states"]) == counts.n_states - 1
    width = {k: st["V"]["hdi_upper"] - st["V"]["hdi_lower"] for k, st in by_name.items()}
    typical = np.median([w for k, w in width.items() if k != "zz"])
    assert width["zz"] > 2.5 * typical, (width["zz"], typical)


# ---- the fit object ---------------------------------------------------------------------------
def test_fit_object_file_round_trip_and_summary(tmp_path):
    _, counts, idata = main_fit()
    post = _arviz.group(idata, "posterior")
    assert list(post["state"].values) == list(counts.states)
    assert post["V"].dims == ("chain", "draw", "state")
    assert post["u_z"].dims == ("chain", "draw", "edge")
    # latent draws and log-likelihood in float32, the reported potential in float64; the
    # other deterministic sites only on request (derived=True)
    assert post["u_z"].dtype == np.float32 and post["V"].dtype == np.float64
    assert _arviz.group(idata, "log_likelihood")["y"].dtype == np.float32
    assert not {"phi", "s", "u", "log_p_arc"} & set(post.data_vars)
    ll = _arviz.group(idata, "log_likelihood")["y"]
    obs = _arviz.group(idata, "observed_data")["y"]
    assert ll.shape[2] == obs.shape[0] == int((obs.values > 0).sum())
    assert int(obs.values.sum()) == int(counts.attempts.sum())  # every attempt is in one cell
    a = _arviz.attrs(idata)
    assert a["model"] == "reversible" and a["method"] == "nuts" and "mean zero" in a["gauge"]
    assert json.loads(a["prior"])["kind"] == "normal"
    assert {"max_rhat", "min_ess", "divergences", "warnings"} <= set(json.loads(a["diagnostics"]))
    assert "lp" in _arviz.group(idata, "sample_stats")

    path = save_fit(idata, tmp_path / "fit.nc")
    back = load_fit(path)
    again = counts_from_fit(back)
    assert again.states == counts.states
    for field in ("source", "target", "count", "self_count", "rejected"):
        assert np.array_equal(getattr(again, field), getattr(counts, field))
    np.testing.assert_array_equal(draws_of(back, "V"), draws_of(idata, "V"))
    assert summarise(back) == summarise(idata)
    s = summarise(back)
    assert s["model"] == "reversible" and s["hdi_prob"] == 0.94
    v = s["states"][0]["V"]
    assert set(v) == {"mean", "sd", "hdi_lower", "hdi_upper", "rhat", "ess"}
    assert v["hdi_lower"] < v["mean"] < v["hdi_upper"] and v["rhat"] < 1.1 and v["ess"] > 50
    json.dumps(s)  # JSON-able
    loo = _arviz.loo(back)
    assert np.isfinite(loo["elpd"]) and len(loo["pareto_k"]) == ll.shape[2]


def test_derived_sites_on_request_equal_what_posterior_kernel_recomputes():
    counts = sample_counts(reversible_chain(6, seed=3), attempts_per_source=80, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 300 steps: still falling is fine
        plain = fit(counts, "nonreversible", method="svi", draws=40, svi_steps=300, seed=1)
        full = fit(counts, "nonreversible", method="svi", draws=40, svi_steps=300, seed=1,
                   derived=True)  # fmt: skip
    p, f = _arviz.group(plain, "posterior"), _arviz.group(full, "posterior")
    assert {"phi", "s", "u", "log_p_arc", "log_p_rest"} <= set(f.data_vars) - set(p.data_vars)
    np.testing.assert_array_equal(p["cycle_affinity"].values, f["cycle_affinity"].values)
    log_p = f["log_p_arc"].values.reshape(-1, f["log_p_arc"].shape[-1])
    np.testing.assert_allclose(posterior_kernel(plain).log_prob, log_p, rtol=0, atol=1e-12)


def test_map_and_svi_agree_with_nuts():
    _, counts, nuts = main_fit()
    ident = np.array([st["identified"] for st in summarise(nuts)["states"]])
    ref = draws_of(nuts, "V")[:, ident]
    with pytest.warns(IdentifiabilityWarning, match="seen one way only"):  # main_fit's "zz"
        m = draws_of(fit(counts, method="map"), "V")
    assert m.shape == (1, counts.n_states)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svi = fit(counts, method="svi", draws=300, svi_steps=2500)
    v = draws_of(svi, "V")
    assert v.shape == (300, counts.n_states) and v.std(axis=0).min() > 0.01
    for approx in (m[0, ident], v.mean(0)[ident]):
        assert np.corrcoef(approx, ref.mean(0))[0, 1] > 0.95
        assert np.mean(np.abs(approx - ref.mean(0)) < 2 * ref.std(0)) >= 0.9
    assert posterior_kernel(svi).log_prob.shape[0] == 300


def test_fit_sets_existing_objects_aside_from_the_collector_and_returns_them():
    import gc

    assert gc.get_freeze_count() == 0, "something else froze objects: this test cannot tell"
    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=30, seed=0)
    frozen_during = []

    def note(phase, info):
        if phase == "start":
            frozen_during.append(gc.get_freeze_count())

    gc.callbacks.append(note)
    try:
        fit(counts, method="map")
        assert frozen_during and min(frozen_during) > 0  # every collection in the fit skipped them
        assert gc.get_freeze_count() == 0  # and they are back afterwards
        frozen_during.clear()
        gc.freeze()  # a caller's own frozen objects stay frozen, and nothing is added to them
        mine = gc.get_freeze_count()  # (some are freed during the fit: refcounting still works)
        fit(counts, method="map")
        assert 0 < min(frozen_during) and max(frozen_during) <= mine
        assert 0 < gc.get_freeze_count() <= mine
    finally:
        gc.callbacks.remove(note)
        gc.unfreeze()


def test_nuts_warmup_trees_are_capped_and_the_draws_are_not():
    # a unit mass matrix on scales 0.01 and 10 needs trees of hundreds of steps before its first
    # adaptation; the cap bounds every warm-up iteration's leapfrog steps, the draws' trees grow
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from detailed_balance.inference import run_nuts

    evaluations = []

    def model():
        x = numpyro.sample("x", dist.Normal(0.0, jnp.array([0.01, 10.0])).to_event(1))
        jax.debug.callback(lambda: evaluations.append(1))  # once per potential evaluation
        return x

    warmup = 300
    _, stats, _ = run_nuts(model, 50, warmup, 1, 0, False, 0.8, warmup_tree_depth=1)
    during_warmup = len(evaluations) - int(stats["n_steps"].sum())
    # one leapfrog step per warm-up iteration (depth 1), plus the step-size searches and the
    # replay of each draw (measured: 653)
    assert during_warmup <= 3 * warmup, during_warmup
    assert stats["n_steps"].max() > 1  # the draws' trees are not capped
    evaluations.clear()
    _, stats, _ = run_nuts(model, 50, warmup, 1, 0, False, 0.8, warmup_tree_depth=10)
    # numpyro's own limit: trees of up to 1,023 steps while unadapted (measured: 40,390)
    assert len(evaluations) - int(stats["n_steps"].sum()) > 20 * warmup


def test_a_fit_that_raises_leaves_no_import_thread_running(monkeypatch):
    # the background import (xarray, arviz's dependencies) started before the chains is joined
    # when the fit fails too; a sleep stands in for an import still running at the failure
    import threading
    import time

    from detailed_balance.inference import _fit

    started = []

    def import_in_background():
        thread = threading.Thread(target=time.sleep, args=(1.0,), name="detailed-balance-imports",
                                  daemon=True)  # fmt: skip
        thread.start()
        started.append(thread)
        return thread

    def sampler_that_fails(*args, **kwargs):
        raise FitError("the sampler failed")

    monkeypatch.setattr(_arviz, "import_in_background", import_in_background)
    monkeypatch.setattr(_fit, "run_nuts", sampler_that_fails)
    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=30, seed=0)
    with pytest.raises(FitError, match="the sampler failed"):
        fit(counts, draws=10, warmup=10)
    assert len(started) == 1 and not started[0].is_alive()


@pytest.mark.filterwarnings("ignore::UserWarning")  # 10 + 10 draws: not converged, not the point
def test_warmup_is_capped_for_small_models_only_and_the_depth_is_recorded(monkeypatch):
    from detailed_balance.inference import _samplers

    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=20, seed=0)
    small = fit(counts, draws=10, warmup=10)  # 3 + 6 edges' u_z + 4 hyper-parameters: capped
    assert int(_arviz.attrs(small)["warmup_tree_depth"]) == 5
    monkeypatch.setattr(_samplers, "CAPPED_WARMUP_MAX_LATENT", 10)  # now "large": numpyro's 10
    assert int(_arviz.attrs(fit(counts, draws=10, warmup=10))["warmup_tree_depth"]) == 10
    chosen = fit(counts, draws=10, warmup=10, warmup_tree_depth=3)  # the caller's choice wins
    assert int(_arviz.attrs(chosen)["warmup_tree_depth"]) == 3


@pytest.mark.parametrize(
    ("model", "kind", "chord"),
    [("unconstrained", "flat", False), ("reversible", "normal", False), ("reversible", "gp", False),
     ("reversible", "flat", False), ("nonreversible", "normal", False),
     ("nonreversible", "gp", True)],
)  # fmt: skip
def test_the_warmup_depth_rule_counts_the_values_nuts_moves(model, kind, chord, monkeypatch):
    # the size the rule compares with CAPPED_WARMUP_MAX_LATENT is the dimension of NUTS's mass
    # matrix, numpyro's own unconstrained parameters: a ZeroSumNormal field over S states is
    # S - 1 of them; the non-reversible model in chord coordinates has as many as in the basis's
    import jax
    from numpyro.infer.util import initialize_model

    from detailed_balance import graph
    from detailed_balance.inference._fit import _bind
    from detailed_balance.inference._samplers import _abstract_sites
    from detailed_balance.modeldata import build_model_data

    if chord:
        monkeypatch.setattr(graph, "MAX_FLOW_BASIS_ENTRIES", 0)
    counts = sample_counts(reversible_chain(6, seed=0), attempts_per_source=30, seed=0)
    features = np.random.default_rng(0).normal(size=(6, 2)) if kind == "gp" else None
    data = build_model_data(counts, features=features)
    assert data.flow_coordinates == ("chord" if chord else "orthonormal")
    model_fn = _bind(model, data, FieldPrior(kind=kind))
    _, _, n_latent = _abstract_sites(model_fn, 0)
    z = initialize_model(jax.random.PRNGKey(0), model_fn).param_info.z
    assert n_latent == sum(int(np.size(v)) for v in z.values())


# ---- bad input --------------------------------------------------------------------------------
def test_warmup_tree_depth_out_of_range_is_refused():
    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=20, seed=0)
    for depth in (0, 11):
        with pytest.raises(FitError, match="warmup_tree_depth must be between 1 and 10"):
            fit(counts, warmup_tree_depth=depth)


@pytest.mark.parametrize("setting", [{"draws": 2.5}, {"warmup": 100.0}, {"chains": True},
                                     {"warmup_tree_depth": 4.5}, {"chains": 0}])  # fmt: skip
def test_fractional_or_boolean_sampler_settings_are_refused(setting):
    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=20, seed=0)
    name, value = next(iter(setting.items()))
    match = "must be >= 1" if value == 0 else f"{name} must be a whole number, not {value!r}"
    with pytest.raises(FitError, match=match) as err:
        fit(counts, **setting)
    assert "\n" not in str(err.value)


def test_posterior_kernel_refuses_counts_over_other_states():
    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=20, seed=0)
    idata = fit(counts, method="map")
    assert posterior_kernel(idata, counts).log_prob.shape[0] == 1  # its own counts: fine
    other = sample_counts(reversible_chain(5, seed=1), attempts_per_source=20, seed=1)
    with pytest.raises(FitError, match="other states than the ones the fit was made from") as err:
        posterior_kernel(idata, other)
    assert "\n" not in str(err.value)


def test_single_state_is_refused():
    counts = TransitionCounts.from_records(["A", "A"], ["A", None], [3, 1])
    with pytest.raises(FitError, match="single state"):
        fit(counts, method="map")


def test_state_without_attempts_and_separate_components_warn():
    counts = TransitionCounts.from_records(
        ["A", "B", "A", "C", "D", "C"], ["B", "A", None, "D", "C", "E"], [5, 4, 3, 6, 2, 1]
    )
    with pytest.warns(IdentifiabilityWarning) as record:
        idata = fit(counts, method="map")
    text = " | ".join(str(w.message) for w in record)
    assert "no attempts ('E')" in text and "2 separate components" in text
    groups = summarise(idata)["gauge_groups"]
    assert len(groups) == 2 and {g["example"] for g in groups} <= {"A", "B", "C", "D"}


def test_features_must_match_states(tmp_path):
    counts = sample_counts(reversible_chain(5, seed=1), attempts_per_source=40, seed=1)
    with pytest.raises(DataError, match="4 rows but the counts have 5 states"):
        fit(counts, method="map", features=np.zeros((4, 2)))
    bad = np.zeros((5, 2))
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match=r"'s3' \(row 4\) contain NaN or inf"):
        fit(counts, method="map", features=bad)
    with pytest.raises(FitError, match="needs state features"):
        fit(counts, prior=FieldPrior(kind="gp"))
    path = tmp_path / "f.csv"
    path.write_text("state,x\ns4,4\ns0,0\ns1,1\ns2,2\ns3,3\n")
    assert read_features(path, counts)[:, 0].tolist() == [0, 1, 2, 3, 4]
    path.write_text("state,x\ns0,0\ns1,1\n")
    with pytest.raises(DataError, match="f.csv: no features for 3 state"):
        read_features(path, counts)


@pytest.mark.slow
def test_gp_prior_narrows_one_way_states():
    """A smooth potential over a feature: the GP bounds states seen one way only, iid does not."""
    n = 16
    x = np.linspace(0, 3, n)
    chain = reversible_chain(n, potential=np.sin(2 * x), seed=11)
    counts = sample_counts(chain, attempts_per_source=300, seed=11)
    for k, name in enumerate(("zz1", "zz2")):  # one-way states between their neighbours
        to = f"s{4 + 6 * k:02d}"
        counts = with_one_way_state(counts, name=name, to=to, moves=20, rejected=80)
    pos = {s: x[int(s[1:])] for s in chain.states}
    pos.update(zz1=x[4] + 0.05, zz2=x[10] + 0.05)
    feats = np.array([[pos[s]] for s in counts.states])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iid = fit(counts, draws=400, warmup=400, chains=2, seed=1)
        gp = fit(counts, features=feats, draws=400, warmup=400, chains=2, seed=1)
    one_way = [counts.states.index(s) for s in ("zz1", "zz2")]
    w_iid = np.diff(_arviz.hdi(draws_of(iid, "V")[:, one_way]), axis=0)
    w_gp = np.diff(_arviz.hdi(draws_of(gp, "V")[:, one_way]), axis=0)
    assert np.all(w_gp < 0.7 * w_iid), (w_gp, w_iid)


# ---- CLI --------------------------------------------------------------------------------------
def test_cli_fit_and_summary_with_a_nonconverged_fit(tmp_path, capsys):
    from detailed_balance.cli import main
    from detailed_balance.formats import write_counts

    counts = sample_counts(reversible_chain(6, seed=5), attempts_per_source=80, seed=5)
    write_counts(counts, tmp_path / "c.csv")
    out = tmp_path / "fit.nc"
    args = ["fit", str(tmp_path / "c.csv"), "--out", str(out), "--quiet"]
    assert main(args + ["--draws", "8", "--warmup", "8", "--chains", "2"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    # warnings go to stderr, one line each, like every command's (issue 16)
    assert re.search(r"warning: (R-hat|bulk ESS).*worst: \w+", captured.err), captured.err
    assert f"wrote {out}" in printed
    assert main(["summary", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["method"] == "nuts" and [st["state"] for st in s["states"]] == list(counts.states)
    assert s["diagnostics"]["warnings"] and s["draws"] == 8
    assert main(["summary", str(out)]) == 0
    assert "identified" in capsys.readouterr().out
    assert main(args + ["--prior", "flat"]) == 2
    assert "flat prior is improper" in capsys.readouterr().err
    assert main(["summary", str(tmp_path / "missing.nc")]) == 2


# ---- JAX set-up: nothing global on import; the CLI configures parallel chains ------------------
def _clean_env(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env["DETAILED_BALANCE_JAX_CACHE"] = str(tmp_path / "jax-cache")
    return env


def test_import_changes_no_global_jax_state(tmp_path):
    import subprocess
    import sys

    code = """
import jax
import detailed_balance
from detailed_balance import inference, least_action, models  # noqa: F401
from detailed_balance.synthetic import reversible_chain, sample_counts
counts = sample_counts(reversible_chain(5, seed=1), attempts_per_source=40, seed=1)
idata = inference.fit(counts, method="map")  # float64 inside the fit only
v = detailed_balance._arviz.group(idata, "posterior")["V"].values
print(jax.config.jax_enable_x64, jax.device_count(), v.dtype)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(tmp_path), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "1", "float64"]


@pytest.mark.slow
def test_cli_runs_two_parallel_chains_and_caches_compilations(tmp_path):
    import subprocess
    import sys

    from detailed_balance.formats import write_counts

    counts = sample_counts(reversible_chain(6, seed=5), attempts_per_source=80, seed=5)
    write_counts(counts, tmp_path / "c.csv")
    out = tmp_path / "fit.nc"
    cmd = [sys.executable, "-m", "detailed_balance.cli", "fit", str(tmp_path / "c.csv"),
           "--out", str(out), "--quiet", "--draws", "20", "--warmup", "20"]  # fmt: skip
    done = subprocess.run(cmd, env=_clean_env(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    diagnostics = json.loads(_arviz.attrs(_arviz.from_netcdf(out))["diagnostics"])
    assert diagnostics["chain_method"] == "parallel"
    assert any((tmp_path / "jax-cache").iterdir())  # compiled programs kept for the next run


def test_float32_nuts_with_a_progress_bar_runs():
    """The progress bar is a host callback on another thread: float32 sampling must not break it."""
    counts = sample_counts(reversible_chain(5, seed=3), attempts_per_source=40, seed=3)
    with pytest.warns(ConvergenceWarning) as caught:  # (R-hat too, on this machine)
        idata = fit(counts, draws=30, warmup=30, chains=2, progress=True)
    assert any("bulk ESS" in str(w.message) for w in caught)  # 60 draws cannot reach 200
    assert np.isfinite(np.asarray(_arviz.group(idata, "posterior")["V"])).all()


def test_vectorised_rhat_ess_equal_arviz():
    """fit's own R-hat / bulk ESS (vectorised over parameters) reproduce ArviZ's to rounding:
    mixing from white noise to rho = 0.98, anti-correlated draws, a shifted chain, a constant."""
    import xarray as xr

    rng = np.random.default_rng(1)
    rho = np.concatenate([np.linspace(0.0, 0.98, 12), [-0.6]])
    x = np.zeros((3, 151, rho.size))
    for t in range(1, 151):
        x[:, t] = rho * x[:, t - 1] + rng.normal(size=(3, rho.size))
    x[1] += np.linspace(0, 2, rho.size)  # later columns: one chain off, R-hat well above 1
    x = np.concatenate([np.exp(x), np.ones((3, 151, 1))], axis=-1)
    ds = xr.Dataset({"x": (("chain", "draw", "k"), x), "y": (("chain", "draw"), x[..., 3])})
    r0, e0 = _arviz.rhat_ess(ds)
    r1, e1 = rhat_ess({"x": x, "y": x[..., 3]})
    for k in ("x", "y"):
        np.testing.assert_allclose(r1[k], r0[k], rtol=1e-10, equal_nan=True)
        np.testing.assert_allclose(e1[k], e0[k], rtol=1e-10, equal_nan=True)
    assert r1["x"][-2] > 1.1 and e1["x"][0] > 5 * e1["x"][11]


def test_average_ranks_equal_scipy_rankdata_with_ties():
    """The rank normalisation's ranks (numpy, no scipy.stats import) are scipy's "average"
    ranks exactly: continuous draws, float32-rounded draws (ties), small integers, a constant,
    infinities, NaN (a column holding one is all NaN, as scipy's), one row, no row."""
    from scipy.stats import rankdata

    from detailed_balance.inference._diagnostics import _average_ranks

    rng = np.random.default_rng(3)
    special = rng.normal(size=(9, 4))
    special[[1, 4], 0] = np.inf
    special[[2, 3], 1] = -np.inf
    special[5, 2] = np.nan
    special[:, 3] = [np.nan, 1.0, np.inf, np.nan, 0.0, -0.0, 2.0, np.inf, 1.0]
    for a in (
        rng.normal(size=(400, 6)),
        rng.normal(size=(400, 6)).astype(np.float32).round(2).astype(float),
        rng.integers(0, 4, size=(37, 5)).astype(float),
        np.ones((8, 2)),
        special,
        np.zeros((1, 3)),
        np.zeros((0, 3)),
    ):
        np.testing.assert_array_equal(_average_ranks(a), rankdata(a, method="average", axis=0))


def test_rhat_of_draws_with_infinities_is_nan_not_a_number_from_arbitrary_ranks():
    """Draws mostly +inf (or one chain at -inf): the folded draws |x - median| hold NaN
    (inf - inf), so their R-hat is NaN, as it was with scipy's ranks; numpy's argsort would
    have ranked those NaN in memory order and made up a finite R-hat (2.8, 3.3 on these)."""
    from detailed_balance.inference import rhat_ess

    x = np.random.default_rng(0).normal(size=(2, 50, 3))
    x[:, :30, 0] = np.inf
    x[1, :, 1] = -np.inf
    rhat, ess = rhat_ess({"x": x})
    assert np.isnan(rhat["x"][0]) and np.isnan(rhat["x"][1])
    assert np.isfinite(rhat["x"][2]) and np.all(np.isfinite(ess["x"]))


def test_fit_draws_and_diagnostics_read_a_fit_and_name_what_is_missing():
    from detailed_balance.inference import fit_diagnostics, fit_draws

    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=50, seed=0)
    idata = fit(counts, method="map")
    V = fit_draws(idata, "V")
    assert V.shape == (1, 1, 4) and np.all(np.isfinite(V))
    assert fit_draws(idata, "y", "log_likelihood").shape[:2] == (1, 1)
    assert fit_diagnostics(idata)["method"] == "map"
    with pytest.raises(FitError, match="has no variable 'nope'"):
        fit_draws(idata, "nope")
    with pytest.raises(FitError, match="has no 'warmup' group"):
        fit_draws(idata, "V", "warmup")
