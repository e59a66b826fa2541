"""The non-reversible model's prior on the cycle space: exact invariance to the names and order of
the states, no gradient part, the reversible model nested at zero flow, and coverage of the
affinity intervals (slow)."""

import json

import jax
import numpy as np
import pytest
from detailed_balance.models import MODELS, FieldPrior
from numpyro import handlers
from numpyro.infer.util import log_density

from detailed_balance import TransitionCounts, _arviz, graph
from detailed_balance.errors import FitError
from detailed_balance.inference import fit  # noqa: F401  (also configures JAX: x64)
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import driven_chain, reversible_chain, sample_counts

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
PRIOR = FieldPrior()


def relabel(counts: TransitionCounts, pos: np.ndarray) -> TransitionCounts:
    """The same counts with old state ``k`` renamed and moved to index ``pos[k]``."""
    names = np.array([f"r{p:03d}" for p in pos], dtype=object)
    n = counts.n_states
    src = np.concatenate([names[counts.source], names, names])
    tgt = np.concatenate([names[counts.target], names, np.full(n, None, dtype=object)])
    cnt = np.concatenate([counts.count, counts.self_count, counts.rejected])
    keep = cnt > 0
    out = TransitionCounts.from_records(src[keep], tgt[keep], cnt[keep], states=sorted(names))
    assert [out.states.index(names[k]) for k in range(n)] == pos.tolist()
    return out


def two_components() -> TransitionCounts:
    # a driven-looking square with a diagonal, a one-way arc, and a separate triangle
    rows = [("a", "b", 9), ("b", "c", 7), ("c", "d", 8), ("d", "a", 6), ("b", "a", 2),
            ("c", "b", 3), ("d", "c", 1), ("a", "d", 2), ("a", "c", 4), ("d", "e", 2),
            ("x", "y", 5), ("y", "z", 4), ("z", "x", 6), ("y", "x", 1), ("x", None, 3)]  # fmt: skip
    s, t, c = zip(*rows, strict=True)
    return TransitionCounts.from_records(s, t, c)


DATASETS = {
    "driven": lambda: sample_counts(driven_chain(10, affinity=1.0, seed=3), attempts_per_source=60,
                                    seed=3),  # fmt: skip
    "sparse driven": lambda: sample_counts(driven_chain(20, affinity=1.5, seed=4),
                                           attempts_per_source=8, seed=4),  # fmt: skip
    "reversible": lambda: sample_counts(reversible_chain(12, seed=5), attempts_per_source=100,
                                        seed=5),  # fmt: skip
    "two components": two_components,
}


def incidence(data) -> np.ndarray:
    a, b = data.arc_source[: data.n_edges], data.arc_target[: data.n_edges]
    B = np.zeros((data.n_states, data.n_edges))
    B[a, np.arange(data.n_edges)] = 1.0
    B[b, np.arange(data.n_edges)] = -1.0
    return B


@pytest.mark.parametrize("name", list(DATASETS))
def test_flow_basis_spans_exactly_the_cycle_space(name):
    data = build_model_data(DATASETS[name]())
    space = data.cycles
    Q = space.flow_basis()
    B = incidence(data)
    assert Q.shape == (data.n_edges, data.n_chords) and data.n_chords > 0
    np.testing.assert_allclose(Q.T @ Q, np.eye(data.n_chords), atol=1e-12)
    # the projector Q Q^T is the one onto ker B computed independently: no gradient part left
    projector = np.eye(data.n_edges) - np.linalg.pinv(B) @ B
    np.testing.assert_allclose(Q @ Q.T, projector, atol=1e-10)
    # a pure gradient flow (a potential difference) has no component there and zero affinity
    g = B.T @ np.random.default_rng(0).normal(size=data.n_states)
    assert np.abs(Q.T @ g).max() < 1e-10 and np.abs(space.affinity(g)).max() < 1e-10
    # each fundamental cycle is in the space; its affinity has prior variance tau² x its length
    Z = space.cycle_matrix()
    np.testing.assert_allclose(Q @ (Q.T @ Z), Z, atol=1e-10)
    np.testing.assert_allclose(np.diag(Z.T @ Q @ Q.T @ Z), np.abs(Z).sum(axis=0))


def prior_draw(data, seed: int) -> dict:
    """A point of the parameter space (any point will do: the identities are exact)."""
    rng = np.random.default_rng(seed)
    phi = rng.normal(0.0, 1.0, data.n_states)
    return {
        "sigma_phi": np.asarray(1.1), "phi_raw": phi - phi.mean(), "mu_u": np.asarray(-1.0),
        "beta_u": np.asarray(-0.5), "sigma_u": np.asarray(0.7),
        "u_z": rng.normal(0.0, 1.0, data.n_edges), "tau": np.asarray(1.3),
        "flow_z": rng.normal(0.0, 1.0, data.n_chords),
    }  # fmt: skip


def corresponding(params: dict, data, data2, pos: np.ndarray) -> dict:
    """The parameters of the relabelled model that give the same chain."""
    a, b = data.arc_source[: data.n_edges], data.arc_target[: data.n_edges]
    a2, b2 = data2.arc_source[: data2.n_edges], data2.arc_target[: data2.n_edges]
    edge2 = {(int(x), int(y)): e for e, (x, y) in enumerate(zip(a2, b2, strict=True))}
    pa, pb = pos[a], pos[b]
    to = np.array([edge2[(int(min(x, y)), int(max(x, y)))] for x, y in zip(pa, pb, strict=True)])
    sign = np.where(pa < pb, 1.0, -1.0)
    out = dict(params)
    out["phi_raw"] = np.empty_like(params["phi_raw"])
    out["phi_raw"][pos] = params["phi_raw"]
    out["u_z"] = np.empty_like(params["u_z"])
    out["u_z"][to] = params["u_z"]
    flow = data.cycles.flow_basis() @ params["flow_z"]
    flow2 = np.empty_like(flow)
    flow2[to] = sign * flow
    out["flow_z"] = data2.cycles.flow_basis().T @ flow2
    return out, flow, flow2


def joint(data, model="nonreversible"):
    """log prior x likelihood of ``model`` on ``data`` as a function of its parameters (jitted:
    one compile, where op-by-op evaluation recompiles for every new dataset)."""
    fn = jax.jit(lambda p: log_density(MODELS[model], (data,), {"prior": PRIOR}, p)[0])
    return lambda params: float(fn(params))


@pytest.mark.parametrize("name", [
    "sparse driven", "two components",
    pytest.param("driven", marks=pytest.mark.slow),
    pytest.param("reversible", marks=pytest.mark.slow),
])  # fmt: skip
def test_log_density_is_unchanged_when_states_are_renamed_and_reordered(name):
    counts = DATASETS[name]()
    data = build_model_data(counts)
    rng = np.random.default_rng(1)
    params = prior_draw(data, 0)
    ref = joint(data)(params)
    moved_basis = 0
    for _ in range(2):
        pos = rng.permutation(counts.n_states)
        data2 = build_model_data(relabel(counts, pos))
        params2, flow, flow2 = corresponding(params, data, data2, pos)
        # same chain, same prior density (the map between parameters is orthogonal: Jacobian 1),
        # so the evidence, an integral of this density, is the same too
        density2 = joint(data2)
        assert density2(params2) == pytest.approx(ref, abs=1e-8)
        # not by accident: the density does move with the flow, and a prior iid on the
        # fundamental cycles' affinities (the old model) would see different values here
        assert abs(density2({**params2, "flow_z": 2 * params2["flow_z"]}) - ref) > 1e-3
        old = np.sum(data.cycles.affinity(flow) ** 2)
        old2 = np.sum(data2.cycles.affinity(flow2) ** 2)
        moved_basis += abs(old - old2) > 1e-3
    if name != "two components":  # five states: few relabellings move its basis
        assert moved_basis > 0


@pytest.mark.parametrize("name", ["sparse driven", "two components"])
def test_zero_flow_is_the_reversible_model(name):
    import numpyro.distributions as dist

    data = build_model_data(DATASETS[name]())
    params = prior_draw(data, 2)
    zero = {**params, "flow_z": np.zeros(data.n_chords)}
    shared = {k: v for k, v in params.items() if k not in ("tau", "flow_z")}
    extra = float(dist.HalfNormal(PRIOR.cycle_scale).log_prob(params["tau"])) + float(
        dist.Normal(0.0, 1.0).log_prob(0.0) * data.n_chords
    )
    nonrev, rev = joint(data), joint(data, "reversible")(shared)
    assert nonrev(zero) - extra == pytest.approx(rev, abs=1e-9)
    assert abs(nonrev(params) - extra - rev) > 1e-3


def test_recorded_affinity_is_the_signed_sum_of_log_ratios_around_each_cycle():
    data = build_model_data(DATASETS["sparse driven"]())
    params = prior_draw(data, 3)
    def sites(p):
        model = handlers.substitute(handlers.seed(MODELS["nonreversible"], 0), p)
        trace = handlers.trace(model).get_trace(data, prior=PRIOR, full=True)
        return trace["log_p_arc"]["value"], trace["cycle_affinity"]["value"]

    lp, affinity = map(np.asarray, jax.jit(sites)(params))
    e = data.n_edges
    log_ratio = lp[:e] - lp[e:]  # log T(b<-a) - log T(a<-b) per edge
    basis = graph.fundamental_cycles(data.n_states, data.arc_source[:e], data.arc_target[:e])
    sums = [sum(sign * log_ratio[edge] for edge, sign in cycle) for cycle in basis.cycles]
    np.testing.assert_allclose(affinity, sums, atol=1e-10)
    assert np.abs(sums).max() > 0.1


def test_a_cycle_space_too_large_for_a_dense_basis_is_one_clear_error(monkeypatch):
    counts = DATASETS["driven"]()
    monkeypatch.setattr(graph, "MAX_FLOW_BASIS_ENTRIES", 50)
    with pytest.raises(FitError, match=r"cycle-space basis would be \d+ edges x \d+ cycles"):
        build_model_data(counts).cycles.flow_basis()
    assert not build_model_data(counts).cycles.dense_basis_fits  # the model goes sparse instead


def random_cycle_spaces(rng, tries: int):
    """Cycle spaces (with at least one cycle) of random multigraphs: several components,
    isolated nodes, trees and dense parts."""
    for _ in range(tries):
        n = int(rng.integers(2, 40))
        a, b = graph.undirected_edges(*rng.integers(0, n, (2, int(rng.integers(1, 3 * n)))))
        space = graph.CycleSpace(n, a, b)
        if space.n_cycles > 0:
            yield space


def test_cycle_matrix_products_by_gathers_equal_the_dense_matrix():
    # Z v and Z.T g level by level over the spanning forest (and each one's VJP, the other)
    # against the dense signed cycle matrix, on random multigraphs with several components,
    # isolated nodes, trees and dense parts
    from detailed_balance.models._common import cycle_sums, edge_flow

    rng = np.random.default_rng(0)
    tested = 0
    for space in random_cycle_spaces(rng, 10):
        z = space.cycle_matrix()
        v, g = rng.normal(size=(3, space.n_cycles)), rng.normal(size=(3, space.n_edges))

        def products(v, g, s=space):  # one compiled program per graph (op by op: ~5 s each)
            sin_sum = lambda f: lambda x: jax.numpy.sum(jax.numpy.sin(f(x, s)))  # noqa: E731
            return (edge_flow(v, s), cycle_sums(g, s), jax.grad(sin_sum(edge_flow))(v[0]),
                    jax.grad(sin_sum(cycle_sums))(g[0]))  # fmt: skip

        zv, ztg, grad_v, grad_g = jax.jit(products)(v, g)
        np.testing.assert_allclose(zv, v @ z.T, atol=1e-12)
        np.testing.assert_allclose(ztg, g @ z, atol=1e-12)
        np.testing.assert_allclose(grad_v, z.T @ np.cos(z @ v[0]), atol=1e-12)
        np.testing.assert_allclose(grad_g, z @ np.cos(z.T @ g[0]), atol=1e-12)
        tested += 1
    assert tested >= 4


def test_chord_coordinates_constant_and_draws_from_the_laplacian_equal_the_gram_matrix():
    # log det(Z'Z) / 2 and (Z'Z)^-1 Z' g, which the chord coordinates' density and draws need,
    # computed from the reduced Laplacian (matrix-tree theorem; the gradient part removed) on
    # random multigraphs with several components, isolated nodes, trees and dense parts
    rng = np.random.default_rng(3)
    tested = 0
    for space in random_cycle_spaces(rng, 12):
        z = space.cycle_matrix()
        gram = z.T @ z
        assert space.gram_half_log_det() == pytest.approx(0.5 * np.linalg.slogdet(gram)[1],
                                                          abs=1e-9)  # fmt: skip
        g = rng.normal(size=(2, 3, space.n_edges))
        np.testing.assert_allclose(space.chords_of_cycle_part(g),
                                   np.linalg.solve(gram, (g @ z)[..., None])[..., 0],
                                   atol=1e-10)  # fmt: skip
        tested += 1
    assert tested >= 4


def with_qr_coordinates(params: dict, data) -> dict:
    """The chord coordinates ``v = R^-1 w`` of the same flow: ``Z v = Q R R^-1 w = Q w``."""
    _, r = np.linalg.qr(data.cycles.cycle_matrix())  # the QR that gives ``flow_basis``
    return {**params, "flow_z": np.linalg.solve(r, params["flow_z"])}


@pytest.mark.parametrize("name", ["sparse driven", "two components"])
def test_chord_coordinates_are_the_same_model_up_to_the_jacobian(name, monkeypatch):
    # beyond MAX_FLOW_BASIS_ENTRIES the flow is f = tau Z v, v ~ N(0, (Z'Z)^-1), instead of
    # f = tau Q w, w ~ N(0, I). With Q R = Z the two meet at v = R^-1 w, where the densities
    # must differ by log |det R| = log det(Z'Z) / 2 for every parameter: then the two are one
    # model (the same flow prior, likelihood and evidence), only its coordinates differ
    data = build_model_data(DATASETS[name]())
    assert data.flow_coordinates == "orthonormal"
    points = [prior_draw(data, seed) for seed in (0, 1)]
    dense = [joint(data)(params) for params in points]
    monkeypatch.setattr(graph, "MAX_FLOW_BASIS_ENTRIES", 0)
    assert build_model_data(DATASETS[name]()).flow_coordinates == "chord"
    sparse = joint(data._replace(flow_coordinates="chord"))
    gram = data.cycles.cycle_matrix().T @ data.cycles.cycle_matrix()
    half_log_det = 0.5 * np.linalg.slogdet(gram)[1]
    assert data.cycles.gram_half_log_det() == pytest.approx(half_log_det, abs=1e-10)
    assert half_log_det > 1.0  # not the identity: the fundamental cycles overlap
    for params, value in zip(points, dense, strict=True):
        moved = sparse(with_qr_coordinates(params, data))
        assert moved - value == pytest.approx(half_log_det, abs=1e-8)
    # and not by accident: elsewhere the difference moves
    assert abs(sparse(points[0]) - dense[0] - half_log_det) > 1e-3


def test_chord_coordinates_draws_give_the_projector_covariance(monkeypatch):
    from detailed_balance.models._common import CycleSpaceNormal, edge_flow

    data = build_model_data(DATASETS["sparse driven"]())
    space = data.cycles
    draws = CycleSpaceNormal(space).sample(jax.random.PRNGKey(0), (40_000,))
    flows = np.asarray(edge_flow(draws, space))
    q = space.flow_basis()
    # Z v ~ N(0, P): the covariance of the flows is the projector on the cycle space
    np.testing.assert_allclose(np.cov(flows.T), q @ q.T, atol=0.03)
    # the same under vmap (a batch of keys): pure_callback's batched solve
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    batch = jax.vmap(lambda k: CycleSpaceNormal(space).sample(k))(keys)
    assert batch.shape == (3, space.n_cycles) and np.all(np.isfinite(batch))


def test_chord_coordinates_prior_survives_jax_transformations_as_an_argument():
    # numpyro distributions are pytrees: one passed into jit (or vmap) is flattened and rebuilt
    from detailed_balance.models._common import CycleSpaceNormal

    space = build_model_data(DATASETS["two components"]()).cycles
    prior, v = CycleSpaceNormal(space), np.linspace(-1.0, 1.0, space.n_cycles)
    rebuilt = jax.jit(lambda d, x: d.log_prob(x))(prior, v)
    assert float(rebuilt) == pytest.approx(float(prior.log_prob(v)), abs=1e-12)


def evaluated(data, draw: dict) -> dict:
    """The non-reversible model's sites at one draw of its latent sites, on ``data``."""
    from detailed_balance.runtime import x64

    model = handlers.substitute(MODELS["nonreversible"], data=draw)
    with x64():
        tr = handlers.trace(model).get_trace(data, prior=PRIOR, full=True)
    return {k: np.asarray(site["value"]) for k, site in tr.items()}


def test_a_stored_fit_is_read_in_the_flow_coordinates_it_recorded(monkeypatch, tmp_path):
    # a fit records the coordinates of its flow_z draws, and the readers take them whatever the
    # basis limit is when they read: a fit made in chord coordinates (limit 0 while it ran) read
    # back under today's limit, by whose rule the same numbers would be orthonormal coordinates
    from detailed_balance.comparison import fit_model_data
    from detailed_balance.inference import latent_draws, load_fit, posterior_kernel, save_fit

    counts = DATASETS["driven"]()
    monkeypatch.setattr(graph, "MAX_FLOW_BASIS_ENTRIES", 0)
    idata = fit(counts, "nonreversible", method="map", derived=True)
    assert _arviz.attrs(idata)["flow_coordinates"] == "chord"
    path = save_fit(idata, tmp_path / "chord.nc")
    monkeypatch.undo()
    assert build_model_data(counts).flow_coordinates == "orthonormal"  # today's rule
    stored = load_fit(path)
    data = fit_model_data(stored)
    assert data.flow_coordinates == "chord"
    post = _arviz.group(stored, "posterior")
    draw = {k: v[0, 0] for k, v in latent_draws(stored).items()}
    sites = evaluated(data, draw)
    for name in ("V", "cycle_affinity", "log_p_arc"):
        np.testing.assert_allclose(sites[name], post[name].values[0, 0], atol=1e-10)
    log_p = posterior_kernel(stored).log_prob
    np.testing.assert_allclose(log_p[0], post["log_p_arc"].values[0, 0], atol=1e-10)
    # by today's rule the same draw is another chain: what the readers did before the record
    wrong = evaluated(data._replace(flow_coordinates="orthonormal"), draw)["cycle_affinity"]
    assert np.abs(wrong - post["cycle_affinity"].values[0, 0]).max() > 0.1


def test_recorded_flow_coordinates_that_cannot_be_honoured_are_one_clear_error(
    monkeypatch, tmp_path
):
    from detailed_balance.comparison import fit_model_data
    from detailed_balance.inference import load_fit, posterior_kernel, save_fit

    counts = DATASETS["driven"]()
    idata = fit(counts, "nonreversible", method="map")
    assert _arviz.attrs(idata)["flow_coordinates"] == "orthonormal"
    stored = load_fit(save_fit(idata, tmp_path / "orthonormal.nc"))
    monkeypatch.setattr(graph, "MAX_FLOW_BASIS_ENTRIES", 50)  # now beyond the dense basis
    for read in (fit_model_data, posterior_kernel):
        with pytest.raises(FitError, match="in orthonormal coordinates, but a dense basis") as err:
            read(stored)
        assert "\n" not in str(err.value) and "MAX_FLOW_BASIS_ENTRIES = 50" in str(err.value)
    # a fit written before the coordinates were recorded is read by the rule of the day; the
    # attribute goes from every group in place (_arviz.group's Dataset is a copy under arviz 1.x)
    # and from a DataTree's root, which arviz 1.x's attrs are read from
    tree = hasattr(stored, "children")
    for name in stored.children if tree else stored.groups():
        stored[name].attrs.pop("flow_coordinates", None)
    if tree:
        stored.attrs.pop("flow_coordinates", None)
    assert "flow_coordinates" not in _arviz.attrs(stored)
    assert fit_model_data(stored).flow_coordinates == "chord"
    with pytest.raises(FitError, match=r"unknown flow coordinates 'qr' \(a fit records"):
        build_model_data(counts, flow_coordinates="qr")


def test_unknown_cycle_tail_is_refused():
    with pytest.raises(ValueError, match="unknown cycle_tail 'student'"):
        FieldPrior(cycle_tail="student")


# ---- slow: NUTS fits ----------------------------------------------------------------------------
def affinity_draws(idata) -> np.ndarray:
    d = np.asarray(_arviz.group(idata, "posterior")["cycle_affinity"].values)
    return d.reshape(-1, d.shape[-1])


@pytest.mark.slow
def test_bridge_evidence_is_unchanged_when_a_driven_dataset_is_relabelled():
    from detailed_balance.comparison import model_evidence

    counts = sample_counts(driven_chain(8, affinity=1.0, seed=7), attempts_per_source=80, seed=7)
    rng = np.random.default_rng(7)
    evid = []
    for pos in (np.arange(counts.n_states), rng.permutation(counts.n_states)):
        c = relabel(counts, pos)
        idata = fit(c, "nonreversible", draws=1000, warmup=500, chains=2, seed=1)
        post = _arviz.group(idata, "posterior")
        names = json.loads(_arviz.attrs(idata)["latent_sites"])
        assert "flow_z" in names
        samples = {k: np.asarray(post[k].values) for k in names}
        ev, _ = model_evidence("nonreversible", build_model_data(c), PRIOR, samples)
        assert ev.converged, ev.note
        evid.append(ev)
    assert abs(evid[0].log_z - evid[1].log_z) < 2 * np.hypot(evid[0].se, evid[1].se) + 0.05


@pytest.mark.slow
def test_affinity_intervals_cover_on_driven_chains():
    # uniform drive, per-cycle drive of random sign and size, and states relabelled (so the
    # fitted fundamental cycles are not the generator's)
    n_cycles = graph.CycleSpace(12, *driven_chain(12, seed=2).edges).n_cycles
    drive = np.random.default_rng(2).normal(0.0, 1.0, n_cycles)
    cases = [
        (driven_chain(10, affinity=1.0, seed=1), None),
        (driven_chain(12, affinity=drive, seed=2), None),
        (driven_chain(12, affinity=1.0, seed=3), np.random.default_rng(3).permutation(12)),
    ]
    inside = []
    for chain, pos in cases:
        counts = sample_counts(chain, attempts_per_source=400, seed=4)
        original = chain.index_of(counts.states)
        if pos is not None:
            counts, original = relabel(counts, pos), original[np.argsort(pos)]
        data = build_model_data(counts)
        e = data.n_edges
        t = chain.dense()
        a, b = original[data.arc_source[:e]], original[data.arc_target[:e]]
        truth = data.cycles.affinity(np.log(t[a, b]) - np.log(t[b, a]))
        idata = fit(counts, "nonreversible", draws=500, warmup=500, chains=2, seed=4)
        lo, hi = _arviz.hdi(affinity_draws(idata), 0.94)
        inside += ((lo <= truth) & (truth <= hi)).tolist()
    assert np.mean(inside) >= 0.85, np.mean(inside)


@pytest.mark.slow
def test_chord_coordinates_give_the_same_posterior_evidence_and_bayes_factors(monkeypatch):
    # the non-reversible model in its two coordinates (orthonormal basis; sparse chord
    # coordinates, forced by a zero basis limit), fitted by NUTS: the same affinity posterior,
    # the same bridge log Z, and the same Savage-Dickey and nested-SMC Bayes factors, within
    # their Monte Carlo errors (these estimators read the draws of whatever coordinates fit used)
    from detailed_balance.comparison import fit_evidence, fit_nested_smc, fit_savage_dickey

    counts = sample_counts(driven_chain(8, affinity=0.6, seed=7), attempts_per_source=80, seed=7)
    rev = fit(counts, "reversible", draws=1000, warmup=500, chains=2, seed=1)
    out = {}
    for limit in (graph.MAX_FLOW_BASIS_ENTRIES, 0):
        monkeypatch.setattr(graph, "MAX_FLOW_BASIS_ENTRIES", limit)
        idata = fit(counts, "nonreversible", draws=1000, warmup=500, chains=2, seed=1)
        evidence, _ = fit_evidence(idata)
        assert evidence.converged, evidence.note
        out[limit] = (affinity_draws(idata), evidence, fit_savage_dickey(idata),
                      fit_nested_smc(rev, idata, particles=128, runs=3))  # fmt: skip
    (aff_d, ev_d, sd_d, ns_d), (aff_s, ev_s, sd_s, ns_s) = out.values()
    se = np.hypot(aff_d.std(0), aff_s.std(0)) / np.sqrt(400)  # ESS ~400 of 2,000 draws at least
    assert np.all(np.abs(aff_d.mean(0) - aff_s.mean(0)) < 4 * se)
    assert abs(ev_d.log_z - ev_s.log_z) < 2 * np.hypot(ev_d.se, ev_s.se) + 0.05
    for a, b in ((sd_d, sd_s), (ns_d, ns_s)):
        assert a.converged and b.converged, (a.note, b.note)
        assert abs(a.log_bf - b.log_bf) < 3 * np.hypot(a.se, b.se) + 0.05
