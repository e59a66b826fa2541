"""Evidence: the exact Dirichlet evidence against an independent oracle, and bridge sampling
against closed forms (a conjugate Gamma-Poisson model and the Dirichlet model itself)."""

import warnings

import numpy as np
import pytest
from scipy.special import gammaln

from detailed_balance import inference  # noqa: F401  (configures JAX before it initialises)
from detailed_balance.counts import TransitionCounts
from detailed_balance.evidence import (
    Evidence,
    bridge_from_draws,
    bridge_sampling,
    log_evidence_dirichlet,
)
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
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    y = np.array([3, 5, 2, 4, 6, 1, 3])
    a, b = 2.0, 0.5

    def model():
        lam = numpyro.sample("lam", dist.Gamma(a, b))
        numpyro.sample("y", dist.Poisson(lam), obs=y)

    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=2000, num_chains=2, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(1))
    ev = bridge_sampling(model, {}, mcmc.get_samples(group_by_chain=True))
    n, s = len(y), y.sum()
    exact = a * np.log(b) - gammaln(a) + gammaln(a + s) - (a + s) * np.log(b + n)
    exact -= gammaln(y + 1).sum()
    assert ev.converged
    assert abs(ev.log_z - exact) < max(3 * ev.se, 0.02)
    assert 0 < ev.se < 0.05


@pytest.mark.parametrize("n_states,attempts", [(4, 30), (8, 100), (12, 300)])
def test_bridge_reproduces_exact_unconstrained_evidence(n_states, attempts):
    """The issue's check: within the reported error and within 0.5 nats, three sizes."""
    from detailed_balance.compare import _latent_samples, model_evidence

    counts = sample_counts(reversible_chain(n_states, seed=n_states), attempts_per_source=attempts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = inference.fit(counts, "unconstrained", draws=1000, warmup=500, chains=2, seed=2)
    data = build_model_data(counts)
    exact, bridge = model_evidence("unconstrained", data, None, _latent_samples(idata))
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
    from detailed_balance.models import MODELS
    from detailed_balance.models._common import FieldPrior

    counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=20)
    data = build_model_data(counts)
    with pytest.raises(ValueError, match="improper"):
        bridge_sampling(MODELS["reversible"], {"data": data, "prior": FieldPrior(kind="flat")}, {})


def test_evidence_to_dict_never_hides_failure():
    d = Evidence(float("nan"), float("nan"), "bridge", False, "did not converge").to_dict()
    assert d["log_z"] is None and d["se"] is None and d["converged"] is False
