"""The models against closed forms and an external oracle: exactness of detailed balance in every
draw, cycle affinities, deeptime's reversible MLE, empirical frequencies."""

import warnings

import numpy as np
import pytest
from _fits import main_fit

from detailed_balance import _arviz
from detailed_balance.graph import fundamental_cycles
from detailed_balance.inference import FieldPrior, fit, posterior_kernel
from detailed_balance.synthetic import driven_chain, reversible_chain, sample_counts

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def posterior(idata, name):
    x = np.asarray(_arviz.group(idata, "posterior")[name].values)
    return x.reshape((-1,) + x.shape[2:])


@pytest.fixture(scope="module")
def reversible_fit():
    _, counts, idata = main_fit()  # shared with test_fit (one NUTS run per session)
    return counts, idata


@pytest.fixture(scope="module")
def driven():
    chain = driven_chain(12, affinity=1.5, seed=2)
    counts = sample_counts(chain, attempts_per_source=1500, seed=2)
    return chain, counts, fit(counts, "nonreversible", draws=300, warmup=300, chains=2, seed=2)


def test_every_reversible_draw_obeys_detailed_balance_exactly(reversible_fit):
    counts, idata = reversible_fit
    kernel = posterior_kernel(idata)
    e = len(kernel.source) // 2
    assert np.array_equal(kernel.source[:e], kernel.target[e:])  # arc e+E reverses arc e
    V = posterior(idata, "V")
    assert kernel.log_prob.shape == (V.shape[0], 2 * e)
    ratio = kernel.log_prob[:, :e] - kernel.log_prob[:, e:]
    dv = V[:, kernel.source[:e]] - V[:, kernel.target[:e]]
    assert np.max(np.abs(ratio - dv)) < 1e-10
    # and the draws really vary: this is not one point repeated
    assert np.std(V, axis=0).min() > 0.01


def test_cycle_affinities_are_sums_of_log_ratios_and_cover_the_truth(driven):
    chain, counts, idata = driven
    a, b = counts.support_edges()
    assert np.array_equal(a, chain.edges[0]) and np.array_equal(b, chain.edges[1])
    basis = fundamental_cycles(counts.n_states, a, b)
    kernel = posterior_kernel(idata)
    e = len(a)
    log_ratio = kernel.log_prob[:, :e] - kernel.log_prob[:, e:]  # log T(b<-a) / T(a<-b)
    sums = np.stack(
        [sum(sign * log_ratio[:, edge] for edge, sign in cycle) for cycle in basis.cycles], axis=1
    )
    theta = posterior(idata, "cycle_affinity")
    assert np.max(np.abs(sums - theta)) < 1e-10
    lo, hi = _arviz.hdi(theta, 0.94)
    covered = (lo <= chain.cycle_affinity) & (chain.cycle_affinity <= hi)
    assert covered.mean() >= 0.8, (covered, theta.mean(0))
    # the drive is detected: the affinities are clearly away from zero on average
    assert theta.mean() > 0.5


def test_reversible_map_equals_deeptime_mle():
    deeptime = pytest.importorskip("deeptime.markov.msm")
    counts = sample_counts(reversible_chain(12, seed=5), attempts_per_source=800, seed=5)
    dense = counts.dense().astype(float)
    np.fill_diagonal(dense, 0.0)  # rest=False: self-replies are not modelled
    assert len(counts.two_way_edges()[0]) == len(counts.support_edges()[0])
    msm = deeptime.MaximumLikelihoodMSM(reversible=True, maxerr=1e-14, maxiter=10_000_000)
    T = msm.fit(dense).fetch_model().transition_matrix
    idata = fit(counts, method="map", prior=FieldPrior(kind="flat"), rest=False)
    k = posterior_kernel(idata)
    ours = np.exp(k.log_prob[0])
    assert np.max(np.abs(ours - T[k.source, k.target])) < 1e-6

    # with rest: the escape is deeptime's self-loop, and V (with escapes) gives pi ∝ exp(-V)
    dense[np.arange(counts.n_states), np.arange(counts.n_states)] = (
        counts.self_count + counts.rejected
    )
    pi = msm.fit(dense).fetch_model().stationary_distribution
    V = posterior(fit(counts, method="map", prior=FieldPrior(kind="flat")), "V")[0]
    assert np.max(np.abs(np.exp(-V) / np.exp(-V).sum() - pi)) < 1e-6


def test_unconstrained_map_equals_empirical_frequencies():
    counts = sample_counts(reversible_chain(10, seed=6), attempts_per_source=100, seed=6)
    idata = fit(counts, "unconstrained", method="map")
    k = posterior_kernel(idata)
    empirical = counts.dense()[k.source, k.target] / counts.attempts[k.source]
    assert np.max(np.abs(np.exp(k.log_prob[0]) - empirical)) < 1e-6


def test_flat_prior_refused_for_sampling():
    from detailed_balance.errors import FitError

    counts = sample_counts(reversible_chain(5, seed=1), attempts_per_source=20, seed=1)
    with pytest.raises(FitError, match="flat prior is improper"):
        fit(counts, prior=FieldPrior(kind="flat"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FitError, match="unknown prior"):
            fit(counts, prior=FieldPrior(kind="cauchy"))


@pytest.mark.parametrize("prior", [FieldPrior(), FieldPrior(kind="gp")], ids=["normal", "gp"])
def test_every_sample_site_declares_its_event_dims(prior):
    """A vector site is one event (``.to_event``), not a batch of independent scalars: its log
    density is one number per draw, as bridge sampling and the unconstrained Jacobian assume."""
    from detailed_balance.models import MODELS
    from numpyro.handlers import seed, trace

    from detailed_balance.modeldata import build_model_data

    counts = sample_counts(driven_chain(5, affinity=1.0, seed=0), attempts_per_source=30, seed=0)
    features = np.arange(10.0).reshape(5, 2) if prior.kind == "gp" else None
    data = build_model_data(counts, features=features)
    for name, model in MODELS.items():
        tr = trace(seed(model, 0)).get_trace(data, prior=prior)
        for site, s in tr.items():
            if s["type"] == "sample" and not s["is_observed"]:
                assert s["fn"].event_dim == np.ndim(s["value"]), (name, site)
                assert s["fn"].batch_shape == (), (name, site)


def _equality_counts(name):
    """Counts unlike the generator's default: dense and sparse rows, one-way arcs (a state only
    left, arcs seen one way), relabelled and reordered states, with and without the rest cells."""
    from _fits import with_one_way_state

    from detailed_balance.synthetic import relabel_counts

    if name == "dense":
        return sample_counts(reversible_chain(8, seed=1), attempts_per_source=400, seed=1), True
    if name.startswith("sparse"):
        chain = driven_chain(40, affinity=1.0, seed=3)
        return sample_counts(chain, attempts_per_source=6, seed=3), name == "sparse"
    if name == "one-way, relabelled":
        counts = sample_counts(reversible_chain(20, seed=4), attempts_per_source=15, seed=4)
        return relabel_counts(with_one_way_state(counts, to="s03"), seed=7), True
    counts = sample_counts(reversible_chain(150, seed=5), attempts_per_source=30, seed=5)
    return relabel_counts(counts, seed=8), True


def _both_likelihoods(model, data):
    """Potential energy and its gradient, V and V_within, the summed cells and the factor, for
    ``pointwise=True`` and ``False`` at three random unconstrained points."""
    import jax
    from detailed_balance.models import MODELS
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import constrain_fn, log_density, potential_energy

    from detailed_balance.inference._samplers import _unconstrained_start

    forms = [lambda: MODELS[model](data), lambda: MODELS[model](data, pointwise=False)]
    x0, unravel = _unconstrained_start(forms[0], 0)

    @jax.jit
    @jax.vmap
    def evaluate(x):
        u = unravel(x)
        out = [jax.value_and_grad(potential_energy, 3)(m, (), {}, u) for m in forms]
        params = constrain_fn(forms[0], (), {}, u, return_deterministic=False)
        cells, rows = (log_density(m, (), {}, params)[1] for m in forms)
        for tr in (cells, rows):
            out.append({k: tr[k]["value"] for k in ("V", "V_within") if k in tr})
        out.append(cells["y"]["fn"].log_prob(cells["y"]["value"]).sum())
        out.append(rows["y_total"]["fn"].log_factor)
        return out

    scale = np.array([0.5, 1.5, 3.0])[:, None]
    out = evaluate(x0 + jax.random.normal(jax.random.PRNGKey(0), (3, x0.size)) * scale)
    flat = jax.vmap(lambda g: ravel_pytree(g)[0])
    return [(e, flat(g)) for e, g in out[:2]], out[2:4], out[4:]


@pytest.mark.parametrize("model", ["unconstrained", "reversible", "nonreversible"])
@pytest.mark.parametrize(
    "dataset",
    [
        "dense",
        "one-way, relabelled",
        # ~4 s each: the default suite checks the two above
        pytest.param("sparse", marks=pytest.mark.slow),
        pytest.param("sparse, no rest", marks=pytest.mark.slow),
        pytest.param("150 states, relabelled", marks=pytest.mark.slow),
    ],
)
def test_row_summed_likelihood_is_the_pointwise_one(model, dataset):
    """``pointwise=False`` (one factor site, the cells' log-likelihood summed per arc and per
    row: what the samplers run) gives the same log density and gradient as the per-cell site
    ``y`` at random points, and the same V and V_within; its factor is the cells' sum."""
    from detailed_balance.modeldata import build_model_data
    from detailed_balance.runtime import x64

    counts, rest = _equality_counts(dataset)
    with x64():
        ((e1, g1), (e2, g2)), (d1, d2), (y_sum, factor) = _both_likelihoods(
            model, build_model_data(counts, rest=rest)
        )
    assert np.all(np.isfinite(e1)) and np.all(np.abs(e1) > 1)
    np.testing.assert_allclose(e2, e1, rtol=1e-12)
    np.testing.assert_allclose(factor, y_sum, rtol=1e-12)
    np.testing.assert_allclose(g2, g1, rtol=1e-9, atol=1e-9 * np.abs(g1).max())
    assert set(d1) == set(d2) == ({"V", "V_within"} if model != "unconstrained" else set())
    for k in d1:
        np.testing.assert_array_equal(d2[k], d1[k])


@pytest.mark.parametrize("rest", [True, False])
def test_reversible_logits_follow_every_arc_of_build_model_data(rest):
    """``reversible_logits`` builds the arcs as ``u ± (phi_a - phi_b) / 2`` per edge, trusting
    ``build_model_data``'s layout (arcs a→b of every edge, then b→a); each arc's logit must be
    ``u[its edge] + (phi[source] - phi[target]) / 2`` whatever the data: edges seen only b→a,
    a state never a source, a self-only state, states given out of order, relabelled states."""
    import jax.numpy as jnp
    from detailed_balance.models._common import reversible_logits

    from detailed_balance.counts import TransitionCounts
    from detailed_balance.modeldata import build_model_data
    from detailed_balance.synthetic import relabel_counts

    src = ["s2", "s1", "s3", "s0", "s0", "s4", "s4", "s5", "s3", "s6"]
    tgt = ["s0", "s0", "s1", "s1", None, "s4", None, "s2", "s2", "s6"]
    order = ["s5", "s3", "s0", "s6", "s4", "s2", "s1", "s7"]  # s7: never seen
    hand = TransitionCounts.from_records(src, tgt, [5, 3, 4, 2, 7, 6, 2, 3, 1, 4], states=order)
    sparse = sample_counts(driven_chain(12, affinity=1.0, seed=3), attempts_per_source=3, seed=3)
    rng = np.random.default_rng(0)
    for counts in (hand, relabel_counts(hand, seed=1), relabel_counts(sparse, seed=2)):
        data = build_model_data(counts, rest=rest)
        phi = jnp.asarray(rng.normal(size=data.n_states))
        u = jnp.asarray(rng.normal(size=data.n_edges))
        src_, tgt_ = data.arc_source, data.arc_target
        expected = u[data.arc_edge] + 0.5 * (phi[src_] - phi[tgt_])
        np.testing.assert_allclose(reversible_logits(phi, u, data), expected, rtol=1e-6)
        # and the layout itself: arc e + E reverses arc e, both on edge e
        e = data.n_edges
        assert np.array_equal(src_[:e], tgt_[e:]) and np.array_equal(tgt_[:e], src_[e:])
        assert np.array_equal(data.arc_edge, np.tile(np.arange(e), 2))
        assert {(int(a), int(b)) for a, b in zip(src_, tgt_, strict=True)} >= {
            (int(a), int(b)) for a, b in zip(counts.source, counts.target, strict=True) if a != b
        }


@pytest.mark.slow  # ~30 s on a loaded machine: six models traced eagerly in both precisions
def test_row_summed_likelihood_in_float32_on_the_narrow_copy():
    """What float32 NUTS runs (``pointwise=False`` on ``_narrow``'s 32-bit copy of the data: int32
    counts cast to float32 in the dot products) is the float64 per-cell potential to float32
    rounding, for the three models, with and without rest, on one-way relabelled rows."""
    from functools import partial

    import jax
    import jax.numpy as jnp
    from detailed_balance.models import MODELS
    from numpyro.infer.util import potential_energy

    from detailed_balance.inference._samplers import _narrow, _unconstrained_start
    from detailed_balance.modeldata import build_model_data
    from detailed_balance.runtime import x64

    counts, _ = _equality_counts("one-way, relabelled")
    for rest in (True, False):
        with x64():
            data = build_model_data(counts, rest=rest)
        narrow = _narrow(data)
        for name in ("unconstrained", "reversible", "nonreversible"):
            model = MODELS[name]
            with x64():
                x0, unravel = _unconstrained_start(partial(model, data), 0)
                u64 = unravel(x0 + 0.5)
                e64 = float(potential_energy(model, (data,), {}, u64))
            u32 = jax.tree.map(lambda v: jnp.asarray(np.asarray(v), jnp.float32), u64)
            with x64(False):  # as ``fit`` samples in float32
                e32 = potential_energy(model, (narrow,), {"pointwise": False}, u32)
            assert e32.dtype == jnp.float32
            assert abs(float(e32) - e64) < 1e-5 * abs(e64), (name, rest)
