"""fit(method="mclmc"): BlackJAX's microcanonical Langevin sampler on the package's models."""

import json
import warnings

import numpy as np
import pytest
from _fits import main_fit, truth_in_gauge

from detailed_balance import _arviz
from detailed_balance.inference import ConvergenceWarning, fit
from detailed_balance.inference._diagnostics import _diagnose
from detailed_balance.synthetic import reversible_chain, sample_counts


def draws_of(idata, name):
    x = np.asarray(_arviz.group(idata, "posterior")[name].values)
    return x.reshape((-1,) + x.shape[2:])


def test_mclmc_recovers_a_known_potential():
    """10 states, 300 attempts each: the 94% HDIs cover the true V; the fit records its tuning."""
    chain = reversible_chain(10, seed=4)
    counts = sample_counts(chain, attempts_per_source=300, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = fit(counts, method="mclmc", draws=200, warmup=600, chains=2, seed=0)
    a = _arviz.attrs(idata)
    diag = json.loads(a["diagnostics"])
    assert a["method"] == "mclmc" and a["inference_library"] == "blackjax"
    assert diag["max_rhat"] < 1.05 and diag["min_ess"] > 100, diag
    for key in ("L", "step_size", "thin", "energy_error_per_chain", "gradients_per_chain"):
        assert key in diag
    # the tuning's three stages (0.3 each, a third of the second to re-tune) are the warm-up
    assert diag["tuning_steps"] == 600
    assert diag["gradients_per_chain"] == 2 * (600 + 200 * diag["thin"])
    assert diag["energy_error_mean"] < 2 * diag["desired_energy_var"]
    assert _arviz.group(idata, "sample_stats")["energy_error"].shape == (2, 200)
    truth, identified = truth_in_gauge(chain, counts)
    lo, hi = _arviz.hdi(draws_of(idata, "V"), 0.94)
    assert np.mean(((lo <= truth) & (truth <= hi))[identified]) >= 0.8
    v = draws_of(idata, "V")[:, identified]
    z = np.abs(v.mean(0) - truth[identified]) / v.std(0)  # ~0.8 on average if calibrated
    assert np.mean(z) < 1.5, z


@pytest.mark.slow
def test_mclmc_agrees_with_nuts():
    """30 states + a one-way state: HDIs cover the truth; means and sds agree with NUTS."""
    chain, counts, nuts = main_fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = fit(counts, method="mclmc", draws=400, warmup=1000, chains=2, seed=0)
    diag = json.loads(_arviz.attrs(idata)["diagnostics"])
    assert diag["max_rhat"] < 1.05 and diag["min_ess"] > 100
    assert diag["energy_error_mean"] < 2 * diag["desired_energy_var"]
    truth, identified = truth_in_gauge(chain, counts)
    v = draws_of(idata, "V")
    lo, hi = _arviz.hdi(v, 0.94)
    assert np.mean(((lo <= truth) & (truth <= hi))[identified]) >= 0.8
    # against NUTS: both ~300+ effective draws, so a mean differs by ~0.1 sd by chance
    ref = draws_of(nuts, "V")
    diff = np.abs(v.mean(0) - ref.mean(0))[identified]
    assert np.all(diff < 0.4 * ref.std(0)[identified]), (diff / ref.std(0)[identified]).max()
    np.testing.assert_allclose(v.std(0)[identified], ref.std(0)[identified], rtol=0.3)


def test_mclmc_energy_error_above_its_target_warns():
    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=20, seed=0)
    extra = {"energy_error_mean": 3e-3, "desired_energy_var": 5e-4}
    draws = {"x": np.random.default_rng(0).normal(size=(2, 200, 3))}
    with pytest.warns(ConvergenceWarning, match="MCLMC energy error 0.003 .* biased"):
        out = _diagnose(draws, {}, "mclmc", 2, 1.0, extra, counts, {})
    assert out["divergences"] == 0 and out["max_rhat"] < 1.05


def test_mclmc_rhat_warning_says_to_raise_its_tuning():
    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=20, seed=0)
    extra = {"energy_error_mean": 1e-5, "desired_energy_var": 1e-4}
    rng = np.random.default_rng(0)
    draws = {"x": rng.normal(size=(2, 200, 3)) + np.array([0.0, 3.0])[:, None, None]}  # apart
    with pytest.warns(ConvergenceWarning) as mclmc:  # R-hat and ESS both fail here
        _diagnose(draws, {}, "mclmc", 2, 1.0, extra, counts, {})
    rhat = [str(w.message) for w in mclmc if str(w.message).startswith("R-hat up to")]
    assert len(rhat) == 1 and "raise warmup (MCLMC's tuning steps" in rhat[0], rhat
    stats = {"diverging": np.zeros((2, 200), bool)}
    with pytest.warns(ConvergenceWarning) as nuts:  # NUTS's own advice is not MCLMC's
        _diagnose(draws, stats, "nuts", 2, 1.0, {}, counts, {}, warmup_tree_depth=5)
    assert not any("MCLMC" in str(w.message) for w in nuts)
    assert any("raise warmup (and NUTS's warmup_tree_depth)" in str(w.message) for w in nuts)
    # at numpyro's full depth (the default above 1,000 latent values) there is none to raise
    with pytest.warns(ConvergenceWarning) as full:
        _diagnose(draws, stats, "nuts", 2, 1.0, {}, counts, {}, warmup_tree_depth=10)
    rhat = [str(w.message) for w in full if str(w.message).startswith("R-hat up to")]
    assert len(rhat) == 1 and "raise warmup" in rhat[0] and "tree_depth" not in rhat[0], rhat


def test_mclmc_tunes_longer_than_nuts_warms_up_by_default():
    """Without ``warmup``, MCLMC tunes max(2000, states) steps (2,000 left R-hat 1.017 at 3,000
    states); the fit records the number, and BlackJAX's tuning ran that long, not NUTS's 1,000."""
    from detailed_balance.inference import summarise

    counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=50, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = fit(counts, method="mclmc", draws=20, chains=2, seed=0)
    assert summarise(idata)["warmup"] == 2000
    assert json.loads(_arviz.attrs(idata)["diagnostics"])["tuning_steps"] == 2000
