"""Evidence: the exact Dirichlet evidence against an independent oracle, and bridge sampling
against closed forms (a conjugate Gamma-Poisson model and the Dirichlet model itself)."""

import os
import warnings

import numpy as np
import pytest
from _conjugate import gamma_poisson
from scipy.special import gammaln

from detailed_balance import inference  # noqa: F401  (configures JAX before it initialises)
from detailed_balance.comparison import (
    Evidence,
    annealed_evidence,
    bridge_from_draws,
    bridge_sampling,
    dirichlet_posterior_draws,
    log_evidence_dirichlet,
    pareto_khat,
)
from detailed_balance.counts import TransitionCounts
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import reversible_chain, sample_counts


def dirichlet_oracle(counts: TransitionCounts, alpha: float) -> float:
    """Dense, row by row: numpyro's DirichletMultinomial minus its multinomial coefficient."""
    import jax.numpy as jnp
    import numpyro.distributions as dist

    dense = counts.dense()  # (S, S) with zero diagonal
    adj = (dense + dense.T) > 0
    total = 0.0
    for i in range(counts.n_states):
        x = np.append(dense[i][adj[i]], counts.self_count[i] + counts.rejected[i])
        n = x.sum()
        if n == 0:
            continue
        dm = dist.DirichletMultinomial(jnp.full(len(x), alpha), total_count=n)
        coef = gammaln(n + 1) - gammaln(x + 1).sum()
        total += float(dm.log_prob(jnp.asarray(x))) - coef
    return total


def test_dirichlet_evidence_matches_dense_oracle():
    counts = sample_counts(reversible_chain(12, seed=3), attempts_per_source=40, seed=1)
    for alpha in (0.5, 1.0, 2.5):
        assert log_evidence_dirichlet(counts, alpha) == pytest.approx(
            dirichlet_oracle(counts, alpha), abs=1e-8
        )


def test_dirichlet_evidence_small_case_by_hand():
    # A: 2 -> B, 1 rejected; B: 1 -> A. Row A: categories {B, rest}; row B: {A, rest}.
    c = TransitionCounts.from_records(["A", "A", "B"], ["B", None, "A"], [2, 1, 1])
    # Dirichlet(1,1) on 2 categories: p(x) = B(1+x1, 1+x2)/B(1,1) = x1! x2! / (n+1)!
    expected = np.log(2 * 1 / 24) + np.log(1 / 2)
    assert log_evidence_dirichlet(c) == pytest.approx(expected)
    # a state that is only a target has no attempts: its row adds nothing
    c2 = TransitionCounts.from_records(["A", "A", "B", "B"], ["B", None, "A", "C"], [2, 1, 1, 0])
    assert np.isfinite(log_evidence_dirichlet(c2))
    with pytest.raises(ValueError, match="alpha"):
        log_evidence_dirichlet(c, alpha=0.0)


def test_bridge_on_conjugate_gamma_poisson():
    """Positive parameter (log transform): checks the Jacobian and the estimator, not our models."""
    import jax
    from numpyro.infer import MCMC, NUTS

    model, exact = gamma_poisson()

    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=2000, num_chains=2, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(1))
    ev = bridge_sampling(model, {}, mcmc.get_samples(group_by_chain=True))
    assert ev.converged
    assert abs(ev.log_z - exact) < max(3 * ev.se, 0.02)
    assert 0 < ev.se < 0.05


@pytest.mark.parametrize("n_states,attempts", [(4, 30), (8, 100), (12, 300)])
def test_bridge_reproduces_exact_unconstrained_evidence(n_states, attempts):
    """The issue's check: within the reported error and within 0.5 nats, three sizes."""
    from detailed_balance.comparison import model_evidence
    from detailed_balance.inference import latent_draws

    counts = sample_counts(reversible_chain(n_states, seed=n_states), attempts_per_source=attempts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = inference.fit(counts, "unconstrained", draws=1000, warmup=500, chains=2, seed=2)
    data = build_model_data(counts)
    exact, bridge = model_evidence("unconstrained", data, None, latent_draws(idata))
    assert exact.se == 0.0 and exact.log_z == log_evidence_dirichlet(counts)
    assert bridge.converged, bridge.note
    assert abs(bridge.log_z - exact.log_z) < 0.5
    assert abs(bridge.log_z - exact.log_z) < 3 * bridge.se  # within its reported error


def test_bridge_reports_failure_instead_of_a_number():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2, 10, 3))  # 5 draws per chain for the proposal: too few

    def density(x):
        return -0.5 * np.sum(x**2, axis=1)

    ev = bridge_from_draws(z, density)
    assert not ev.converged and np.isnan(ev.se) and "draws" in ev.note
    # a density that is -inf everywhere at the posterior draws cannot give an estimate
    ev = bridge_from_draws(rng.normal(size=(2, 100, 3)), lambda x: np.full(len(x), -np.inf))
    assert not ev.converged and np.isnan(ev.log_z)
    # a well-posed case: a standard normal kernel has log Z = (d/2) log(2 pi)
    ev = bridge_from_draws(rng.normal(size=(2, 2000, 3)), density)
    assert ev.converged and abs(ev.log_z - 1.5 * np.log(2 * np.pi)) < 3 * ev.se + 1e-3


def test_improper_prior_has_no_evidence():
    from detailed_balance.models import MODELS, FieldPrior

    counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=20)
    data = build_model_data(counts)
    with pytest.raises(ValueError, match="improper"):
        bridge_sampling(MODELS["reversible"], {"data": data, "prior": FieldPrior(kind="flat")}, {})


def test_evidence_to_dict_never_hides_failure():
    d = Evidence(float("nan"), float("nan"), "bridge", False, "did not converge").to_dict()
    assert d["log_z"] is None and d["se"] is None and d["converged"] is False


def test_dirichlet_posterior_draws_are_the_posterior():
    """Row probabilities of the exact draws have the Dirichlet(alpha + counts) mean."""
    counts = sample_counts(reversible_chain(6, seed=2), attempts_per_source=30, seed=4)
    data = build_model_data(counts)
    d = dirichlet_posterior_draws(data, 1.0, chains=1, draws=20000, seed=0)
    row = np.zeros((1, 20000, data.n_states))
    np.add.at(row, (..., data.arc_source), d["g_arc"])
    row += d["g_rest"]
    p_arc = (d["g_arc"] / row[..., data.arc_source]).mean(axis=(0, 1))
    n_cat = np.bincount(data.arc_source, minlength=data.n_states) + 1
    n_row = np.bincount(data.arc_source, weights=data.arc_count, minlength=6) + data.rest_count
    expected = (1.0 + data.arc_count) / (n_cat + n_row)[data.arc_source]
    assert np.allclose(p_arc, expected, atol=0.01)


def test_pareto_khat_recovers_known_tail_shapes():
    rng = np.random.default_rng(1)
    for k in (0.2, 0.5, 0.9):
        log_w = np.log(rng.pareto(1 / k, 20000) + 1)  # generalised Pareto tail of shape k
        assert abs(pareto_khat(log_w) - k) < 0.1
    assert pareto_khat(rng.normal(size=20000)) < 0.3  # log-normal weights of sd 1: light
    assert np.isnan(pareto_khat(np.zeros(10)))  # too few weights for a tail
    assert pareto_khat(np.append(np.zeros(99), 1000.0)) == np.inf  # one weight e^1000 times more


def _log_gamma_case(dim: int, shape: float, seed: int):
    """Draws of y = log g, g ~ Gamma(shape, 1) iid in ``dim`` dimensions: a skewed posterior
    whose normalised density has log Z = 0 exactly."""
    from scipy.special import gammaln

    rng = np.random.default_rng(seed)
    z = np.log(rng.gamma(shape, size=(2, 1000, dim)))

    def density(x):
        return np.sum(shape * x - np.exp(x), axis=1) - dim * gammaln(shape)

    return z, density


def test_bridge_error_covers_truth_and_refuses_without_overlap():
    """Low dimension: the error covers log Z = 0; 160 skewed dimensions: the Gaussian proposal
    does not overlap the posterior and the bridge refuses instead of giving a number."""
    z, density = _log_gamma_case(5, 1.0, seed=0)
    ev = bridge_from_draws(z, density)
    assert ev.converged and abs(ev.log_z) < 2 * ev.se and ev.overlap > 0.1
    z, density = _log_gamma_case(160, 1.0, seed=0)
    ev = bridge_from_draws(z, density)
    assert not ev.converged and "overlap" in ev.note


def test_annealed_evidence_on_conjugate_gamma_poisson():
    """A positive parameter (log transform, Jacobian) with a closed-form evidence; and the
    refusal when the schedule cannot reach the posterior."""
    model, exact = gamma_poisson()
    ev = annealed_evidence(model, {}, particles=512, seed=3)
    assert ev.converged and ev.method == "laplace-ais", ev.note
    assert abs(ev.log_z - exact) < max(3 * ev.se, 0.01) and ev.se < 0.05
    refused = annealed_evidence(model, {}, cess=0.99999, max_temperatures=2)
    assert not refused.converged and np.isnan(refused.log_z) and "temperatures" in refused.note


@pytest.mark.slow
def test_annealed_evidence_reproduces_exact_unconstrained_evidence():
    counts = sample_counts(reversible_chain(5, seed=5), attempts_per_source=40, seed=2)
    data = build_model_data(counts)
    from detailed_balance.models import MODELS

    ev = annealed_evidence(MODELS["unconstrained"], {"data": data}, seed=0)
    exact = log_evidence_dirichlet(data)
    assert ev.converged, ev.note
    assert abs(ev.log_z - exact) < min(3 * ev.se + 0.02, 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("n_states,attempts", [(8, 50), (16, 50), (25, 50)])
def test_annealed_evidence_exact_unconstrained_three_sizes(n_states, attempts):
    """The issue's check at three small sizes (the benchmark goes to thousands of parameters)."""
    from detailed_balance.models import MODELS

    counts = sample_counts(reversible_chain(n_states, seed=n_states), attempts_per_source=attempts)
    data = build_model_data(counts)
    ev = annealed_evidence(MODELS["unconstrained"], {"data": data}, seed=1)
    exact = log_evidence_dirichlet(data)
    assert ev.converged, ev.note
    assert abs(ev.log_z - exact) < min(3 * ev.se, 0.5)


@pytest.mark.slow
@pytest.mark.xfail(
    reason="issue 15, open: laplace-ais does not mix on the hierarchical models at 10 states "
    "and refuses (Pareto k̂ 0.93, runs 2 nats below the bridge); see bench-evidence.md",
    strict=False,
)
@pytest.mark.parametrize("name", ["reversible", "nonreversible"])
def test_annealed_evidence_agrees_with_bridge_on_ladder_models(name):
    """Independent estimators on a 10-state dataset agree within 2 combined se."""
    from detailed_balance.models import MODELS, FieldPrior

    from detailed_balance.inference import latent_draws

    counts = sample_counts(reversible_chain(10, seed=10), attempts_per_source=50, seed=3)
    data = build_model_data(counts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = inference.fit(counts, name, draws=2000, warmup=1000, chains=2, seed=1)
    kwargs = {"data": data, "prior": FieldPrior()}
    bridge = bridge_sampling(MODELS[name], kwargs, latent_draws(idata))
    ais = annealed_evidence(MODELS[name], kwargs, seed=1)
    assert bridge.converged and ais.converged, (bridge.note, ais.note)
    assert abs(bridge.log_z - ais.log_z) < 2 * np.hypot(bridge.se, ais.se)


def test_failed_evidence_is_not_printed_as_exact():
    from detailed_balance.comparison._verdict import _format_log_z

    assert _format_log_z(float("nan"), float("nan"), "bridge") == "n/a (bridge failed, see notes)"
    assert _format_log_z(-12.0, 0.0, "exact (Dirichlet)") == "-12.00 (exact)"
    assert _format_log_z(-12.0, 0.25, "laplace-ais") == "-12.00 ± 0.25 (laplace-ais)"


def test_bridge_runs_in_float64_without_configure():
    """A Python user who never calls configure() (float32 process) still gets the exact evidence."""
    import subprocess
    import sys

    code = """
import jax, numpy as np
from detailed_balance.comparison import (
    bridge_sampling, dirichlet_posterior_draws, log_evidence_dirichlet)
from detailed_balance.modeldata import build_model_data
from detailed_balance.models import MODELS
from detailed_balance.synthetic import reversible_chain, sample_counts
assert not jax.config.jax_enable_x64
data = build_model_data(sample_counts(reversible_chain(6, seed=1), attempts_per_source=200))
ev = bridge_sampling(MODELS["unconstrained"], {"data": data},
                     dirichlet_posterior_draws(data, 1.0, chains=2, draws=1000, seed=0))
exact = log_evidence_dirichlet(data)
assert ev.converged and abs(ev.log_z - exact) < max(3 * ev.se, 0.05), (ev, exact)
assert not jax.config.jax_enable_x64
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
