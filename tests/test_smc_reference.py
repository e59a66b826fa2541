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
