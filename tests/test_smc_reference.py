"""draws-smc (tempered SMC from a Gaussian of posterior draws, ``smc_evidence(...,
reference=draws)``): exact where the evidence is a closed form, and shorter than tempering from the
Laplace fit on a hierarchical model, where the joint mode is far from the posterior."""

import re
import warnings

import numpy as np
import pytest
from _conjugate import gamma_poisson
from detailed_balance.models import MODELS, FieldPrior

from detailed_balance import inference  # first: configures JAX before it initialises
from detailed_balance.comparison import (
    dirichlet_posterior_draws,
    fit_evidence,
    log_evidence_dirichlet,
    smc_evidence,
)
from detailed_balance.errors import DataError
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import reversible_chain, sample_counts


def _check_exact(ev, exact):
    assert ev.converged and ev.method == "draws-smc", ev.note
    assert np.isfinite(ev.se) and ev.se > 0
    # within its reported error (3 se: a 0.3 % two-sided miss for a correct se) and 0.5 nats
    assert abs(ev.log_z - exact) < min(3 * ev.se + 0.01, 0.5), (ev.log_z, ev.se, exact)


def _temperatures(ev) -> float:
    return float(re.search(r"(\d+) temperatures", ev.note).group(1))


def test_draws_smc_closed_form_gamma_poisson():
    """A positive parameter (log transform, Jacobian): draws of its exact Gamma posterior."""
    model, exact = gamma_poisson()
    rng = np.random.default_rng(0)
    y_sum, n_obs = 24, 7  # the counts of gamma_poisson: Gamma(2 + 24, 0.5 + 7) posterior
    lam = rng.gamma(2.0 + y_sum, 1.0 / (0.5 + n_obs), size=(2, 300))
    ev = smc_evidence(model, {}, particles=256, seed=3, reference={"lam": lam})
    _check_exact(ev, exact)
    assert ev.se < 0.05


def test_draws_smc_exact_unconstrained_model():
    """The unconstrained model against its exact Dirichlet evidence, from its exact posterior
    draws (12 states, 60 parameters); the reference is so close that one step nearly suffices."""
    counts = sample_counts(reversible_chain(12, seed=4), attempts_per_source=50, seed=4)
    data = build_model_data(counts)
    draws = dirichlet_posterior_draws(data, chains=2, draws=500, seed=1)
    ev = smc_evidence(MODELS["unconstrained"], {"data": data}, particles=128, seed=1,
                      reference=draws)  # fmt: skip
    _check_exact(ev, log_evidence_dirichlet(data))


def test_draws_reference_is_the_shrunk_gaussian_or_its_rank_k_factor_form():
    """The reference's log density and gradient, O(D k): at full rank the Ledoit–Wolf Gaussian
    of the variational bounds, at rank k a normalised Gaussian whose covariance keeps the draws'
    variances; its draws have that covariance (fewer draws than parameters: 40 of 60)."""
    import jax
    from scipy.stats import multivariate_normal

    from detailed_balance.comparison._draws_reference import DrawsReference
    from detailed_balance.comparison._variational import _ShrunkGaussian

    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 60)) / 8
    z = rng.normal(size=(40, 60)) @ a.T + rng.normal(size=60)
    x = rng.normal(size=(3, 60))
    full = DrawsReference(z)
    assert full.rank == 39  # centred draws: rank n - 1
    np.testing.assert_allclose([float(full.log_q(xi)[0]) for xi in x],
                               _ShrunkGaussian(z).log_pdf(x), rtol=1e-10)  # fmt: skip
    for k in (0, 5):
        ref = DrawsReference(z, rank=k)
        cov = ref._sd[:, None] * (np.diag(ref._psi) + ref._w @ ref._w.T) * ref._sd
        np.testing.assert_allclose(np.diag(cov), z.var(axis=0), rtol=1e-10)
        exact = multivariate_normal(z.mean(axis=0), cov).logpdf(x)
        np.testing.assert_allclose([float(ref.log_q(xi)[0]) for xi in x], exact, rtol=1e-10)
        grad = jax.grad(lambda y, r=ref: r.log_q(y)[0])(x[0])
        np.testing.assert_allclose(ref.log_q(x[0])[1], grad, rtol=1e-8, atol=1e-10)
        draws = ref.draw(jax.random.PRNGKey(0), 100_000)
        assert np.max(np.abs(np.cov(draws.T) - cov)) < 0.05 * np.max(np.diag(cov))


def test_draws_smc_exact_unconstrained_model_fewer_draws_than_parameters():
    """The default rank-k reference from fewer draws than parameters (2 × 30 exact posterior
    draws, 20 states, more parameters than draws or components) is still exact within its
    error: the draws only place the reference."""
    counts = sample_counts(reversible_chain(20, seed=5), attempts_per_source=50, seed=5)
    data = build_model_data(counts)
    draws = dirichlet_posterior_draws(data, chains=2, draws=30, seed=2)
    ev = smc_evidence(MODELS["unconstrained"], {"data": data}, particles=128, seed=2,
                      reference=draws)  # fmt: skip
    _check_exact(ev, log_evidence_dirichlet(data))
    dim = int(re.search(r"(\d+) unconstrained dimensions", ev.note).group(1))
    assert dim > 60 and "fewer draws than the" in ev.note, ev.note


def test_draws_smc_fewer_temperatures_than_laplace_on_a_hierarchical_model():
    """Reversible model at 10 states (33 parameters): from a NUTS fit's draws tempering needs a
    few temperatures; from the Laplace fit, whose joint mode has a large sigma_u where the
    posterior's is small, more than three times as many (its pilot is stopped there, refused:
    the property measured, not a timing). The estimate agrees with bridge sampling on the same
    draws (an independent estimator) within 3 combined se."""
    counts = sample_counts(reversible_chain(10, seed=2), attempts_per_source=100, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = inference.fit(counts, "reversible", draws=500, warmup=500, seed=0)
    kwargs = {"data": build_model_data(counts), "prior": FieldPrior()}
    ev = smc_evidence(MODELS["reversible"], kwargs, particles=128, seed=0,
                      reference=inference.latent_draws(idata))  # fmt: skip
    assert ev.converged and ev.method == "draws-smc", ev.note
    few = _temperatures(ev)
    laplace = smc_evidence(MODELS["reversible"], kwargs, particles=128, seed=0,
                           max_temperatures=int(3 * few))  # fmt: skip
    assert not laplace.converged and "did not reach the posterior" in laplace.note, laplace.note
    bridge, _ = fit_evidence(idata)
    assert bridge.converged, bridge.note
    z = (ev.log_z - bridge.log_z) / np.hypot(ev.se, bridge.se)
    assert abs(z) < 3, (ev.log_z, ev.se, bridge.log_z, bridge.se)


def test_draws_smc_refuses_bad_references():
    """One line naming the problem: an unknown reference, draws lacking a site, too few draws."""
    model, _ = gamma_poisson()
    with pytest.raises(ValueError, match="reference='nuts'"):
        smc_evidence(model, {}, reference="nuts")
    with pytest.raises(ValueError, match="reference=NoneType: use 'laplace'"):
        smc_evidence(model, {}, reference=None)
    with pytest.raises(ValueError, match="lack the latent site"):
        smc_evidence(model, {}, reference={"mu": np.ones((2, 50))})
    with pytest.raises(DataError, match="site 'lam' have shape \\(3,\\) per draw"):  # other data
        smc_evidence(model, {}, reference={"lam": np.ones((2, 50, 3))})
    ev = smc_evidence(model, {}, reference={"lam": np.ones((1, 3))})
    assert not ev.converged and "too few" in ev.note
    ev = smc_evidence(model, {}, reference={"lam": np.full((2, 50), 3.0)})  # a stuck chain
    assert not ev.converged and ev.note == (
        "the posterior draws do not vary in 1 of their 1 unconstrained coordinates"
    )
    ev = smc_evidence(model, {}, reference={"lam": np.full((2, 50), np.nan)})
    assert not ev.converged and "not finite" in ev.note
