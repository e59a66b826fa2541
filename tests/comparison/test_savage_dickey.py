"""The Savage–Dickey Bayes factor: a closed form, the quadrature, bridge sampling, invariance."""

import warnings
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from detailed_balance.models import MODELS
from scipy import integrate

from detailed_balance import TransitionCounts
from detailed_balance.comparison import bridge_sampling, savage_dickey
from detailed_balance.comparison._savage_dickey import _conditional_at_zero
from detailed_balance.errors import DataError
from detailed_balance.inference import FieldPrior
from detailed_balance.modeldata import build_model_data
from detailed_balance.runtime import x64
from detailed_balance.synthetic import driven_chain, relabel_counts, reversible_chain, sample_counts


# ---- (a) a closed form: y = mu + tau X w + noise, nested at tau = 0 ------------------------------
# the shape of the non-reversible model: a scale times an iid N(0, 1) vector, only their product
# enters the likelihood; mu and w are integrated analytically, tau by scipy quad
def scale_model(x, y, tail="normal"):
    """y_i ~ N(mu + tau (x w)_i, 1), mu ~ N(0, 1), w ~ N(0, I_K), tau ~ HalfNormal or HalfCauchy."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    prior = dist.HalfNormal(1.0) if tail == "normal" else dist.HalfCauchy(1.0)
    tau = numpyro.sample("tau", prior)
    numpyro.sample("y", dist.Normal(mu + tau * (x @ w), 1.0), obs=y)


def _toy(effect, n=40, k=6):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, k))
    return x, 0.3 + effect * (x @ rng.normal(size=k)) + rng.normal(size=n)


def _log_ratio(x, y, t):
    """log N(y; 0, S + t² x xᵀ) − log N(y; 0, S), S = I + 1 1ᵀ, vectorised over t."""
    s = np.eye(len(y)) + 1.0
    chol = np.linalg.cholesky(s)
    m = np.linalg.solve(chol, x)
    lam, vec = np.linalg.eigh(m @ m.T)
    proj = vec.T @ np.linalg.solve(chol, y)
    t2 = np.asarray(t, dtype=float)[..., None] ** 2
    return np.sum(-0.5 * np.log1p(t2 * lam) + 0.5 * proj**2 * t2 * lam / (1 + t2 * lam), axis=-1)


def _log_prior(t, tail):
    return (
        np.log(np.sqrt(2 / np.pi)) - t * t / 2
        if tail == "normal"
        else np.log(2 / np.pi) - np.log1p(t * t)
    )


def exact_log_bf(x, y, tail):
    """log BF(tau = 0 : full) = -log ∫ p(t) N(y; 0, S + t² x xᵀ) / N(y; 0, S) dt."""
    peak = np.max(_log_ratio(x, y, np.linspace(0, 30, 3001)))

    def f(t):
        return np.exp(_log_prior(t, tail) + _log_ratio(x, y, t) - peak)

    value = sum(
        integrate.quad(f, a, b, epsabs=0, epsrel=1e-12, limit=500)[0]
        for a, b in [(0, 1), (1, 10), (10, np.inf)]
    )
    return -(np.log(value) + peak)


def exact_draws(x, y, tail, n, seed):
    """iid posterior draws: tau by inverse CDF of its marginal, then (mu, w) | tau (Gaussian)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 40, 200_001)
    log_p = _log_prior(t, tail) + _log_ratio(x, y, t)
    cdf = np.cumsum(np.exp(log_p - log_p.max()))
    tau = np.interp(rng.uniform(0, cdf[-1], n), cdf, t)
    k = x.shape[1]
    mu, w = np.empty(n), np.empty((n, k))
    for i, ti in enumerate(tau):
        design = np.column_stack([np.ones(len(y)), ti * x])
        cov = np.linalg.inv(np.eye(k + 1) + design.T @ design)
        draw = rng.multivariate_normal(cov @ design.T @ y, cov)
        mu[i], w[i] = draw[0], draw[1:]
    return {"tau": tau.reshape(2, -1), "mu": mu.reshape(2, -1), "w": w.reshape(2, -1, k)}


@pytest.mark.parametrize(
    "effect, tail",
    [(0.1, "normal"), pytest.param(0.05, "cauchy", marks=pytest.mark.slow)],
)
def test_closed_form_bayes_factor_recovered_within_3_se(effect, tail):
    x, y = _toy(effect)
    exact = exact_log_bf(x, y, tail)
    draws = exact_draws(x, y, tail, 2000, seed=1)
    r = savage_dickey(scale_model, {"x": x, "y": y, "tail": tail}, draws)
    assert r.converged, r.note
    assert 0 < r.se < 0.2
    assert abs(r.log_bf - exact) < 3 * r.se, (r.log_bf, r.se, exact)
    assert r.method == "savage-dickey" and r.pareto_k < 0.5 and r.ess > 500
    assert r.quadrature_error < 1e-4
    d = r.to_dict()
    assert d["log_bf"] == pytest.approx(r.log_bf) and d["converged"] is True


@pytest.mark.slow
def test_far_tail_is_refused_with_what_can_be_said():
    x, y = _toy(1.0)  # tau = 0 far in the posterior's tail
    assert exact_log_bf(x, y, "normal") < -15
    r = savage_dickey(scale_model, {"x": x, "y": y}, exact_draws(x, y, "normal", 2000, seed=1))
    assert not r.converged and np.isnan(r.se) and r.pareto_k > 0.5
    assert "far beyond the decision threshold" in r.note and "not a number to report" in r.note
    assert r.to_dict()["se"] is None


def test_chains_that_disagree_give_no_number():
    """One chain of the posterior (tau = 0 far out: log BF -83) and one stuck where tau ~ 0 (the
    posterior of data without an effect): their mean of the per-draw terms said +3.2 ± 1.2,
    "converged" (as a universality control did with one chain at beta_3 -> 0). It must refuse."""
    x, y = _toy(1.0)
    _, y_null = _toy(0.0)
    assert exact_log_bf(x, y, "normal") < -50
    good = exact_draws(x, y, "normal", 300, seed=1)
    stuck = exact_draws(x, y_null, "normal", 300, seed=2)
    mixed = {k: np.stack([good[k][0], stuck[k][0]]) for k in good}
    r = savage_dickey(scale_model, {"x": x, "y": y}, mixed)
    assert not r.converged and np.isnan(r.log_bf) and np.isnan(r.se) and r.tail_side == 0
    assert r.rhat > 1.5 and "chains disagree" in r.note and "per chain" in r.note
    # the same draws as two chains of the posterior: they agree, and the far-tail call stands
    ok = savage_dickey(scale_model, {"x": x, "y": y}, good)
    assert ok.rhat < 1.05 and ok.tail_side == 1 and ok.log_bf < -3 * np.log(10)

# ---- the quadrature against scipy's adaptive quad, on the non-reversible model ------------------
def test_quadrature_matches_scipy_quad_on_narrow_and_wide_conditionals():
    chain = driven_chain(6, affinity=2.0, seed=2)
    counts = sample_counts(chain, attempts_per_source=3000, seed=2)  # narrow conditionals
    data = build_model_data(counts)
    kwargs = {"data": data, "prior": FieldPrior()}
    model = MODELS["nonreversible"]
    latent = ["sigma_phi", "phi_raw", "mu_u", "beta_u", "sigma_u", "u_z", "tau", "flow_z"]
    with x64():
        prior = numpyro.infer.Predictive(model, num_samples=6)(jax.random.PRNGKey(4), **kwargs)
        draws = {k: np.array(prior[k], dtype=float)[None] for k in latent}
        draws["flow_z"][0, :3] *= 0.02  # three draws whose conditional is wide (flow ~ 0)
        log_c, quad = _conditional_at_zero(model, kwargs, draws, latent, "tau", 6)
        lj = jax.jit(
            lambda one, t: numpyro.infer.util.log_density(model, (), kwargs, dict(one, tau=t))[0]
        )
        for s in range(6):
            one = {k: jnp.asarray(draws[k][0, s]) for k in latent if k != "tau"}
            l0 = float(lj(one, 1e-250))
            u = np.linspace(-40, 8, 20001)
            on_grid = jax.vmap(lambda v, one=one: lj(one, jnp.exp(v)))
            phi = np.array(on_grid(jnp.asarray(u))) + u - l0
            peak = u[np.argmax(phi)]
            scale = phi.max()

            def f(v, one=one, l0=l0, scale=scale):
                return np.exp(float(lj(one, np.exp(v))) + v - l0 - scale)

            width = 1e-3 + 0.05 * np.exp(-0.1 * scale) if scale > 50 else 2.0
            pieces = [(-60.0, peak - width), (peak - width, peak + width), (peak + width, 12.0)]
            total = sum(
                integrate.quad(f, a, b, epsabs=0, epsrel=1e-10, limit=400)[0] for a, b in pieces
            )
            expected = -(np.log(total) + scale)
            assert log_c[s] == pytest.approx(expected, abs=1e-5), (s, log_c[s], expected)
    assert np.max(quad) < 1e-3
    assert np.ptp(log_c) > 5  # narrow and wide conditionals both tested


# ---- bad input, trees ---------------------------------------------------------------------------
def _small():
    counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=40, seed=0)
    return {"data": build_model_data(counts), "prior": FieldPrior()}


def test_bad_input_one_clear_line():
    kwargs = _small()
    model = MODELS["nonreversible"]
    good = {
        "sigma_phi": np.ones((2, 10)), "phi_raw": np.zeros((2, 10, 5)), "mu_u": np.zeros((2, 10)),
        "beta_u": np.zeros((2, 10)), "sigma_u": np.ones((2, 10)),
        "u_z": np.zeros((2, 10, kwargs["data"].n_edges)), "tau": np.ones((2, 10)),
        "flow_z": np.zeros((2, 10, kwargs["data"].n_chords)),
    }  # fmt: skip
    cases = [
        ({k: v for k, v in good.items() if k != "flow_z"}, "lack the latent site"),
        (dict(good, tau=np.ones(20)), r"expected \(chains, draws\)"),
        (dict(good, flow_z=np.zeros((3, 10, kwargs["data"].n_chords))), "other sites"),
        (dict(good, tau=-np.ones((2, 10))), "negative"),
        (dict(good, mu_u=np.full((2, 10), np.nan)), "not all finite"),
    ]
    for samples, words in cases:
        with pytest.raises(DataError, match=words) as info:
            savage_dickey(model, kwargs, samples)
        assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="no sample site 'sigma'"):
        savage_dickey(model, kwargs, good, site="sigma")
    with pytest.raises(DataError, match="must be a scale"):
        savage_dickey(model, kwargs, good, site="mu_u")
    with pytest.raises(DataError, match="must be a dict"):
        savage_dickey(model, kwargs, [1, 2])
    with pytest.raises(DataError, match="must be a scalar"):
        savage_dickey(model, kwargs, good, site="phi_raw")


def test_prior_that_depends_on_the_site_is_refused():
    def centred(y):
        tau = numpyro.sample("tau", dist.HalfNormal(1.0))
        f = numpyro.sample("f", dist.Normal(0.0, tau + 0.1))  # the prior of f moves with tau
        numpyro.sample("y", dist.Normal(f, 1.0), obs=y)

    draws = {"tau": np.ones((2, 10)), "f": np.zeros((2, 10))}
    with pytest.raises(DataError, match="not independent"):
        savage_dickey(centred, {"y": np.zeros(3)}, draws)


def test_tree_support_graph_has_nothing_to_test():
    counts = TransitionCounts.from_records(
        ["a", "b", "b", "c", "a", "c"], ["b", "a", "c", "b", None, None], [5, 4, 3, 6, 2, 2]
    )
    kwargs = {"data": build_model_data(counts), "prior": FieldPrior()}
    r = savage_dickey(MODELS["nonreversible"], kwargs, {})
    assert r.log_bf == 0.0 and r.se == 0.0 and "tree" in r.note and "no cycle" in r.note


# ---- (b)-(d) NUTS fits at 10 states: bridge sampling, relabelling, the sign ---------------------
@cache
def _fits(kind: str, relabel: bool = False):
    from detailed_balance.comparison._compare import fit_model_data, fit_prior
    from detailed_balance.inference import fit, latent_draws

    chain = (
        reversible_chain(10, seed=5)
        if kind == "reversible"
        else driven_chain(10, affinity=float(kind.split("-")[1]), seed=5)
    )
    counts = sample_counts(chain, attempts_per_source=200, seed=5)
    if relabel:
        counts = relabel_counts(counts, seed=9)
    out = {}
    for name in ("reversible", "nonreversible"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = fit(counts, name, draws=1000, warmup=1000, chains=2, seed=0)
        kw = {"data": fit_model_data(idata), "prior": fit_prior(idata)}
        out[name] = (kw, latent_draws(idata))
    return out


def _sd(fits):
    kw, samples = fits["nonreversible"]
    return savage_dickey(MODELS["nonreversible"], kw, samples)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["reversible", "driven-0.3"])
def test_agrees_with_bridge_sampling(kind):
    fits = _fits(kind)
    ev = {m: bridge_sampling(MODELS[m], *fits[m]) for m in fits}
    assert all(e.converged for e in ev.values())
    bridge = ev["reversible"].log_z - ev["nonreversible"].log_z
    bridge_se = np.hypot(ev["reversible"].se, ev["nonreversible"].se)
    r = _sd(fits)
    assert r.converged, r.note
    assert abs(r.log_bf - bridge) < 2 * np.hypot(r.se, bridge_se), (r.log_bf, r.se, bridge)


@pytest.mark.slow
def test_relabelled_states_give_the_same_bayes_factor():
    a, b = _sd(_fits("reversible")), _sd(_fits("reversible", relabel=True))
    assert a.converged and b.converged
    assert abs(a.log_bf - b.log_bf) < 2 * np.hypot(a.se, b.se), (a.log_bf, b.log_bf)


@pytest.mark.slow
def test_sign_reversible_positive_strongly_driven_negative():
    rev = _sd(_fits("reversible"))
    assert rev.converged and rev.log_bf > 0
    driven = _sd(_fits("driven-2.0"))
    # far in the tail: either a converged, strongly negative number, or a refusal that says so
    if driven.converged:
        assert driven.log_bf < -np.log(10) - 2 * driven.se
    else:
        assert driven.pareto_k > 0.5 and np.isnan(driven.se)
        assert "far beyond the decision threshold" in driven.note


# ---- an independent route: thermodynamic integration over tau's prior scale ---------------------
def _toy_model(data, prior):
    scale_model(*data)  # tau ~ HalfNormal(1) = FieldPrior().cycle_scale


@pytest.mark.slow
@pytest.mark.parametrize("effect", [0.1, 0.3])
def test_tau_path_recovers_the_closed_form(effect):
    from detailed_balance.comparison import tau_path_log_bf

    x, y = _toy(effect)
    exact = exact_log_bf(x, y, "normal")
    r = tau_path_log_bf((x, y), FieldPrior(), model=_toy_model, draws=500, warmup=500, seed=1)
    assert r.converged, r.note
    assert 0 < r.se < 0.3 and r.se_grid < r.se
    assert abs(r.log_bf - exact) < max(3 * r.se, 0.05), (r.log_bf, r.se, exact)
    # the integrand E[tau²/s²] − 1 is ~0 at the smallest scale (the tail below the grid is small)
    assert abs(r.integrand[0]) < 0.1 and len(r.integrand) == len(r.log_scales) >= 15
    # the refinement left no neighbouring pair further apart than its step (or used its budget)
    assert np.max(np.abs(np.diff(r.integrand))) <= 0.1 or len(r.log_scales) == 15 + 6


def test_tau_path_grid_refines_where_the_integrand_climbs():
    from detailed_balance.comparison._tau_path import REFINE_STEP, next_scale

    grid = np.linspace(-7.0, 0.0, 15)
    g = np.exp(2 * grid) * 3.0  # ~a s²: flat below, climbing over the last unit of log s
    assert next_scale(grid, g) == pytest.approx(-0.25)  # between the last two points
    steps = 0
    while (extra := next_scale(grid, g)) is not None and steps < 50:
        grid = np.sort(np.append(grid, extra))
        g = np.exp(2 * grid) * 3.0
        steps += 1
    assert 0 < steps < 50 and np.max(np.abs(np.diff(g))) <= REFINE_STEP
    assert next_scale(np.array([-1.0, 0.0]), np.array([0.0, REFINE_STEP])) is None


def test_tau_path_refuses_bad_input_in_one_line():
    from detailed_balance.comparison import tau_path_log_bf

    x, y = _toy(0.1)
    with pytest.raises(DataError, match="HalfNormal"):
        tau_path_log_bf((x, y), FieldPrior(cycle_tail="cauchy"), model=_toy_model)
    with pytest.raises(DataError, match="log_scales"):
        tau_path_log_bf((x, y), FieldPrior(), model=_toy_model, log_scales=np.array([-1.0, 0.5]))
