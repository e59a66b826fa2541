"""laplace-smc (tempered SMC from the Laplace fit) against exact evidences: closed forms, the
exact Dirichlet evidence of the unconstrained model at three sizes and on sparse, one-way,
relabelled data unlike the package's generator, and its refusals."""

import numpy as np
import pytest
from _conjugate import gamma_poisson

from detailed_balance import inference  # noqa: F401  (configures JAX before it initialises)
from detailed_balance.comparison import log_evidence_dirichlet, smc_evidence
from detailed_balance.counts import TransitionCounts
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import reversible_chain, sample_counts


def _check_exact(ev, exact):
    assert ev.converged and ev.method == "laplace-smc", ev.note
    assert np.isfinite(ev.se) and ev.se > 0
    # within its reported error (3 se: a 0.3 % two-sided miss for a correct se) and 0.5 nats
    assert abs(ev.log_z - exact) < min(3 * ev.se + 0.01, 0.5), (ev.log_z, ev.se, exact)


def test_smc_evidence_on_skewed_prior_only_model():
    """200 independent log-Gamma coordinates (a skewed, wider-than-Laplace target; the shape of
    the unconstrained model's rows): log Z = 0 exactly; refusals are notes, not numbers."""
    import numpyro
    import numpyro.distributions as dist

    a = np.random.default_rng(0).uniform(1.0, 5.0, 200)

    def model():
        numpyro.sample("g", dist.Gamma(a, 1.0).to_event(1))

    ev = smc_evidence(model, {}, particles=128, seed=0)
    _check_exact(ev, 0.0)
    refused = smc_evidence(model, {}, particles=64, ess=0.99999, max_temperatures=2)
    assert not refused.converged and np.isnan(refused.log_z) and "temperatures" in refused.note
    with pytest.raises(ValueError, match="runs"):
        smc_evidence(model, {}, runs=1)


@pytest.mark.parametrize("n_states", [4, 8, 16])
def test_smc_evidence_exact_unconstrained_three_sizes(n_states):
    """Issue 15's exactness check at three small sizes (16, 40, 80 parameters); the benchmark
    goes to 1,470 and ~3,000."""
    from detailed_balance.models import MODELS

    counts = sample_counts(reversible_chain(n_states, seed=n_states), attempts_per_source=50)
    data = build_model_data(counts)
    ev = smc_evidence(MODELS["unconstrained"], {"data": data}, particles=128, seed=1)
    _check_exact(ev, log_evidence_dirichlet(data))


def _sparse_one_way_counts(seed: int) -> TransitionCounts:
    """Unlike the generator: states relabelled in a shuffled order, sparse rows (0–3 targets,
    small counts), many pairs seen one way only, a state never a source, heavy rest rows."""
    rng = np.random.default_rng(seed)
    names = [f"q{k:02d}" for k in rng.permutation(14)]
    src, tgt, cnt = [], [], []
    for i, s in enumerate(names[:-1]):  # the last state is a target only
        for j in rng.choice(len(names), size=rng.integers(0, 4), replace=False):
            if j != i:
                src.append(s)
                tgt.append(names[j])
                cnt.append(int(rng.integers(1, 9)))
        if rng.uniform() < 0.7:
            src.append(s)
            tgt.append(None)  # rejections
            cnt.append(int(rng.integers(1, 30)))
    return TransitionCounts.from_records(src, tgt, cnt, states=names)


def test_smc_evidence_exact_on_sparse_one_way_relabelled_data():
    from detailed_balance.models import MODELS

    counts = _sparse_one_way_counts(7)
    data = build_model_data(counts)
    pairs = set(zip(counts.source.tolist(), counts.target.tolist(), strict=True))
    assert any((t, s) not in pairs for s, t in pairs)  # arcs seen one way
    ev = smc_evidence(MODELS["unconstrained"], {"data": data, "alpha": 0.5}, particles=128)
    _check_exact(ev, log_evidence_dirichlet(data, 0.5))


@pytest.mark.slow
def test_smc_evidence_exact_unconstrained_726_parameters():
    """150 states (726 parameters), where bridge sampling refuses; ~1–2 min."""
    from detailed_balance.models import MODELS

    counts = sample_counts(reversible_chain(150, seed=150), attempts_per_source=50, seed=151)
    data = build_model_data(counts)
    ev = smc_evidence(MODELS["unconstrained"], {"data": data}, seed=0)
    _check_exact(ev, log_evidence_dirichlet(data))


def test_smc_evidence_closed_form_gamma_poisson():
    """A positive parameter (log transform, Jacobian) with a closed-form evidence."""
    model, exact = gamma_poisson()
    ev = smc_evidence(model, {}, particles=256, seed=3)
    _check_exact(ev, exact)
    assert ev.se < 0.05


@pytest.mark.slow
def test_model_evidence_falls_back_to_laplace_smc():
    """Where bridge sampling cannot run (too few draws), ``fallback="laplace-smc"`` gives a
    number with its error and names the method (the draws' values are not used by it)."""
    from detailed_balance.models import FieldPrior

    from detailed_balance.comparison import model_evidence

    counts = sample_counts(reversible_chain(5, seed=5), attempts_per_source=50, seed=3)
    data = build_model_data(counts)
    few = {"x": np.zeros((1, 2, 20))}  # 2 draws for 20 parameters: bridge sampling is doomed
    ev, check = model_evidence("reversible", data, FieldPrior(), few, fallback="laplace-smc")
    assert check is None and ev.method == "laplace-smc" and ev.converged, ev.note
    assert np.isfinite(ev.se) and "bridge sampling refused" in ev.note


def test_laplace_reference_shifts_a_hessian_that_is_not_positive_definite():
    """Both estimators' reference: a positive definite Hessian is factored as it is; an
    indefinite one (a mode search stopped off the mode) is raised alike in every direction
    until its smallest eigenvalue is 1e-3 × the median |diagonal|, and the factor is exact."""
    from detailed_balance.comparison._tempering import shifted_cholesky

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    pd = q @ np.diag([0.5, 1.0, 3.0, 9.0]) @ q.T
    chol, shift = shifted_cholesky(pd)
    assert shift == 0.0 and np.allclose(chol @ chol.T, pd, atol=1e-12)
    bad = q @ np.diag([-2.0, 0.1, 3.0, 9.0]) @ q.T
    chol, shift = shifted_cholesky(bad)
    floor = 1e-3 * np.median(np.abs(np.diag(bad)))
    assert np.isclose(shift, floor + 2.0)
    assert np.allclose(chol @ chol.T, bad + shift * np.eye(4), atol=1e-12)
    assert np.isclose(np.linalg.eigvalsh(chol @ chol.T)[0], floor)
