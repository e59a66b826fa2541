"""Variational bounds: ELBO ≤ log Z ≤ EUBO against the exact Dirichlet evidence; the nested
bracket of log BF (non-reversible vs reversible) against bridge sampling; a far-tail driven
chain (sparse, relabelled) gets a lower bound above the threshold, labelled a bound; failures
are notes."""

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from detailed_balance import inference  # noqa: F401  (configures JAX before it initialises)
from detailed_balance.comparison import (
    compare,
    dirichlet_posterior_draws,
    fit_bf_bounds,
    fit_evidence,
    fit_savage_dickey,
    fit_tau_path,
    log_evidence_dirichlet,
)
from detailed_balance.comparison._compare import nonreversible_bf  # private: tested without fits
from detailed_balance.comparison._variational import (
    BayesFactorBounds,
    bayes_factor_bounds,
    variational_bounds,
)
from detailed_balance.inference import fit
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import driven_chain, relabel_counts, reversible_chain, sample_counts


@pytest.mark.parametrize("n_states", [5, 12])
def test_evidence_bounds_bracket_the_exact_dirichlet_evidence(n_states):
    from detailed_balance.models import MODELS

    counts = relabel_counts(
        sample_counts(reversible_chain(n_states, seed=n_states), attempts_per_source=40, seed=1),
        seed=n_states,
    )
    data = build_model_data(counts)
    exact = log_evidence_dirichlet(data)
    draws = dirichlet_posterior_draws(data, chains=2, draws=400, seed=0)
    b = variational_bounds(MODELS["unconstrained"], {"data": data, "alpha": 1.0}, draws, n_q=800)
    assert b.converged, b.note
    assert b.elbo < exact + 3 * b.elbo_se and b.eubo > exact - 3 * b.eubo_se, (b, exact)
    assert b.eubo - b.elbo < 0.3 * b.n_draws  # and not vacuous (measured: ~0.1 nats per parameter)
    # two models' bounds bracket their difference
    bf = bayes_factor_bounds(b, b)
    assert bf.lower <= 0 <= bf.upper


def _pair(counts, draws, warmup=300):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: R-hat notes are not the point here
        return {m: fit(counts, m, draws=draws, warmup=warmup, chains=2, seed=1)
                for m in ("reversible", "nonreversible")}  # fmt: skip


@pytest.mark.slow  # two NUTS fits, bridge sampling and the bounds: 122 s at load 7
def test_nested_bounds_bracket_the_bridge_sampled_bayes_factor():
    """6-state chain driven at 1 nat per cycle: bridge sampling converges on 2 x 600 draws."""
    counts = sample_counts(driven_chain(6, affinity=1.0, seed=3), attempts_per_source=150, seed=3)
    fits = _pair(counts, draws=600)
    ev = {m: fit_evidence(f)[0] for m, f in fits.items()}
    assert all(e.converged for e in ev.values()), [e.note for e in ev.values()]
    bridge = ev["nonreversible"].log_z - ev["reversible"].log_z
    se = math.hypot(ev["nonreversible"].se, ev["reversible"].se)
    b = fit_bf_bounds(fits["reversible"], fits["nonreversible"])
    assert b.converged, b.note
    assert b.lower - 3 * math.hypot(b.lower_se, se) < bridge < b.upper + 3 * math.hypot(
        b.upper_se, se
    ), (b, bridge)
    assert b.upper - b.lower < 10  # informative at this size


@pytest.mark.slow  # two NUTS fits, compare and the bounds: 332 s at load 8 (~1 min quiet)
def test_far_tail_driven_chain_gets_a_lower_bound_labelled_as_a_bound():
    """A sparse graph (mean degree 3), relabelled states, driven at 4 nats per cycle: Savage–Dickey
    refuses (tau = 0 far in the tail, measured k̂ 2.5), bridge sampling is not run (2 x 100
    draws); the bound calls the side (measured 9.88 ± 0.36 ≤ log BF ≤ 31.0), and is labelled a
    bound in the table, the JSON and the verdict."""
    chain = driven_chain(8, affinity=4.0, degree=3, seed=5)
    counts = relabel_counts(sample_counts(chain, attempts_per_source=200, seed=5), seed=7)
    result = compare(_pair(counts, draws=100, warmup=200), lrt=False)
    row = result.table.set_index("model").loc["nonreversible"]
    assert row.bf_method == "variational lower bound", (row.bf_method, result.notes)
    assert row.log_bf_vs_reversible - 2 * row.log_bf_se > math.log(10)
    assert row.bf_lower == row.log_bf_vs_reversible and row.bf_upper >= row.bf_lower
    assert "lower bound, not an estimate" in result.verdict
    assert "favour a violation" in result.verdict
    assert "≥" in result.to_markdown() and "(variational lower bound)" in result.to_markdown()
    assert result.to_dict()["models"][1]["bf_method"] == "variational lower bound"


def test_bound_failures_are_notes_and_a_straddling_bracket_is_no_number():
    import jax
    from detailed_balance.models import MODELS, FieldPrior
    from numpyro.infer import Predictive

    from detailed_balance.comparison import Evidence, SavageDickey
    from detailed_balance.comparison._variational import nested_bf_bounds

    counts = sample_counts(driven_chain(5, affinity=1.0, seed=1), attempts_per_source=50, seed=1)
    data, prior = build_model_data(counts), FieldPrior()


    def draws(name):  # 2 x 8 prior draws: too few for the halves the bounds need
        out = Predictive(MODELS[name], num_samples=16)(jax.random.PRNGKey(0), data, prior=prior)
        return {k: np.asarray(v).reshape((2, 8) + np.shape(v)[1:]) for k, v in out.items()}

    b = nested_bf_bounds(data, prior, draws("reversible"), draws("nonreversible"))
    assert not b.converged and np.isnan(b.lower) and "too few posterior draws" in b.note
    maps = [SimpleNamespace(attrs={"model": m, "method": "map"})
            for m in ("reversible", "nonreversible")]  # fmt: skip
    b = fit_bf_bounds(*maps)
    assert not b.converged and "two NUTS fits" in b.note
    far = SavageDickey(np.nan, np.nan, converged=False, tail_side=1)
    failed = Evidence(np.nan, np.nan, "bridge", converged=False)
    straddle = BayesFactorBounds(-3.0, 0.2, 8.0, 0.3)
    row = nonreversible_bf(far, failed, failed, None, straddle)
    assert np.isnan(row["log_bf_vs_reversible"]) and row["bf_tail"] == 1
    assert row["bf_lower"] == -3.0 and row["bf_upper"] == 8.0
    below = nonreversible_bf(far, failed, failed, None, BayesFactorBounds(-9.0, 0.2, -4.0, 0.3))
    assert below["bf_method"] == "variational upper bound" and below["log_bf_vs_reversible"] == -4.0
    assert below["bf_tail"] == 0


def test_public_estimators_on_stored_fits_refuse_the_wrong_fits_in_one_line():
    """fit_savage_dickey / fit_bf_bounds / fit_tau_path (public): a fit of the wrong model is a
    FitError naming it; fits without posterior draws are a refusal with a note that says NUTS is
    needed."""
    from detailed_balance.errors import FitError

    counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=50, seed=0)
    rev, nonrev = (fit(counts, m, method="map") for m in ("reversible", "nonreversible"))
    with pytest.raises(FitError, match="needs a fit of the nonreversible model"):
        fit_savage_dickey(rev)
    with pytest.raises(FitError, match="tau path needs a fit of the nonreversible model"):
        fit_tau_path(rev)  # before any NUTS run of the path
    sd = fit_savage_dickey(nonrev)
    assert not sd.converged and "needs a NUTS fit" in sd.note and "\n" not in sd.note
    bounds = fit_bf_bounds(rev, nonrev)
    assert not bounds.converged and "need two NUTS fits" in bounds.note
    assert math.isnan(bounds.lower) and math.isnan(bounds.upper)


@pytest.mark.parametrize("chords", [False, True])
def test_flow_proposal_takes_the_models_own_conditional_of_tau_given_the_flow(chords, monkeypatch):
    # q(log tau | f), f = tau * flow_z, must be the model's exact conditional in either
    # coordinates of the flow (orthonormal: flow_z ~ N(0, I); chords, beyond the dense basis:
    # flow_z ~ N(0, (Z'Z)^-1)): the likelihood sees f alone, so along w = f / tau the model's
    # log density minus C log tau (the Jacobian of w -> f) and log q minus the same differ by a
    # constant. With |f|² in place of the prior's quadratic form, the chord coordinates' q sat
    # several of its own sds away (and beyond its grid at thousands of cycles: no finite bound)
    import jax
    from detailed_balance.models import FieldPrior, nonreversible, reversible

    from detailed_balance import graph
    from detailed_balance.comparison._evidence import _flat_model
    from detailed_balance.comparison._variational import (
        _Densities,
        _FlowProposal,
        _Layout,
        _log_tau_prior,
    )
    from detailed_balance.runtime import x64

    if chords:
        monkeypatch.setattr(graph, "MAX_FLOW_BASIS_ENTRIES", 0)
    counts = sample_counts(driven_chain(8, affinity=0.8, seed=2), attempts_per_source=30, seed=2)
    data, prior = build_model_data(counts), FieldPrior()
    kwargs = {"data": data, "prior": prior}
    rng = np.random.default_rng(0)
    with x64():
        key = jax.random.PRNGKey(0)
        _, _, unravel_r, lp_r, x0_r = _flat_model(reversible, kwargs, key)
        trace, _, _, lp_n, x0_n = _flat_model(nonreversible, kwargs, key)
        layout = _Layout(unravel_r, len(x0_r), len(x0_n))
        density = _Densities(lp_r, lp_n, layout, trace["flow_z"]["fn"])
        z_r = x0_r + 0.1 * rng.normal(size=(2, 20, len(x0_r)))
        z_n = x0_n + 0.1 * rng.normal(size=(2, 20, len(x0_n)))
        q = _FlowProposal(z_r, z_n, layout, density, _log_tau_prior(prior))
        assert not q.note
        theta, _, _ = layout.split(z_n[0, :1])
        c = layout.n_flow
        for f in (q.f_mean, q.f_mean + rng.normal(0, 0.3, c)):
            # the model's conditional of s = log tau given f, on a wide grid: its mode and sd
            s = np.linspace(-6, 3, 4001)
            x = layout.join(np.repeat(theta, len(s), 0), s, f[None] / np.exp(s)[:, None])
            exact = density.nonrev(x) - c * s
            mode = s[np.argmax(exact)]
            sd = 1 / math.sqrt(2 * max(c - 1, 0.5))
            near = np.abs(s - mode) < 2 * sd
            gap = q._log_q(s[near], f[None] / np.exp(s[near])[:, None], f[None]) - c * s[near]
            gap -= exact[near]
            assert np.all(np.isfinite(gap))
            assert np.ptp(gap) < 0.1, (np.ptp(gap), chords)
