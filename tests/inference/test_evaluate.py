"""The float64 evaluation of a fit's draws: batched, padded, and equal to the model draw by draw."""

import jax
import numpy as np
from numpyro.infer.util import log_density

from detailed_balance.inference import _samplers
from detailed_balance.inference._fit import _bind
from detailed_balance.inference._samplers import _evaluate, _initial_trace, latent_sites
from detailed_balance.modeldata import FieldPrior, build_model_data
from detailed_balance.runtime import x64
from detailed_balance.synthetic import reversible_chain, sample_counts


def _draws(model_fn, names, chains, draws):
    """Distinct parameter values per (chain, draw): numpyro's random initial points."""
    keys = jax.random.split(jax.random.PRNGKey(1), chains * draws)
    traces = [_initial_trace(model_fn, k) for k in keys]
    return {
        k: np.stack([np.asarray(t[k]["value"]) for t in traces]).reshape(
            (chains, draws) + np.shape(traces[0][k]["value"])
        )
        for k in names
    }


@x64()
def test_batched_evaluation_equals_the_model_draw_by_draw(monkeypatch):
    counts = sample_counts(reversible_chain(7, seed=2), attempts_per_source=30, seed=2)
    model_fn = _bind("reversible", build_model_data(counts), FieldPrior())
    names = latent_sites(model_fn, 0)
    latent = _draws(model_fn, names, chains=2, draws=5)

    whole = _evaluate(model_fn, latent, keep=("V",))
    # batches of 3 draws over 10: the last batch padded with repeats, then cut off
    width = max(len(counts.states), int(whole[1].shape[-1]))
    monkeypatch.setattr(_samplers, "EVALUATE_BATCH_FLOATS", 3 * width)
    batched = _evaluate(model_fn, latent, keep=("V",))

    assert set(whole[0]) == {"V"}
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(batched), strict=True):
        assert a.shape[:2] == (2, 5)
        np.testing.assert_array_equal(a, b)
    for c, d in [(0, 0), (1, 4)]:  # against numpyro's own log density at single draws
        lp, tr = log_density(model_fn, (), {}, {k: v[c, d] for k, v in latent.items()})
        np.testing.assert_allclose(whole[2][c, d], lp, rtol=1e-12)
        np.testing.assert_allclose(whole[0]["V"][c, d], tr["V"]["value"], rtol=1e-12, atol=1e-12)
        y = tr["y"]
        np.testing.assert_allclose(whole[1][c, d], y["fn"].log_prob(y["value"]), rtol=1e-12)


def test_float32_model_data_builds_the_cycle_basis_only_when_a_model_reads_it():
    """The reversible model never reads the cycle-space basis (a QR: seconds at 1,000 states);
    the non-reversible model gets its float64 original's, cast to float32, computed once."""
    counts = sample_counts(reversible_chain(12, seed=0), attempts_per_source=50, seed=0)
    data = build_model_data(counts)
    narrow = _samplers._narrow(data)
    assert narrow.cycles._flow_basis is None and data.cycles._flow_basis is None
    assert narrow.cycles.edge.dtype == np.int32 and narrow.cycles.n_cycles == data.cycles.n_cycles
    q = narrow.cycles.flow_basis()
    assert q.dtype == np.float32 and q.shape == (data.n_edges, data.cycles.n_cycles)
    assert data.cycles._flow_basis is not None  # the original's, shared with the evaluation
    np.testing.assert_array_equal(q, data.cycles.flow_basis().astype(np.float32))


def test_the_float32_cycle_space_is_constructed_from_its_original_and_shares_its_factors():
    """``_NarrowCycleSpace(wide)``: an ordinary construction, a cycle space whose entries are 32-bit
    copies, whose fundamental cycles and sparse factors are the original's (not recomputed), and
    which leaves the original as it was."""
    from detailed_balance.graph import CycleSpace

    counts = sample_counts(reversible_chain(12, seed=0), attempts_per_source=50, seed=0)
    wide = build_model_data(counts).cycles
    before = {k: v.copy() for k, v in (("cycle_id", wide.cycle_id), ("sign", wide.sign))}
    space = _samplers._NarrowCycleSpace(wide)
    assert isinstance(space, CycleSpace) and type(wide) is CycleSpace
    assert space.basis is wide.basis and space.n_cycles == wide.n_cycles > 0
    assert (space.cycle_id.dtype, space.edge.dtype, space.sign.dtype) == (
        np.int32, np.int32, np.float32)  # fmt: skip
    assert wide.cycle_id.dtype == np.int64 and wide.sign.dtype == np.float64
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(wide, k), v)
        np.testing.assert_array_equal(getattr(space, k), v)
    assert space._cut_space() is wide._cut_space()  # the float64 factors, computed once
    assert space.gram_half_log_det() == wide.gram_half_log_det()
    flow = np.random.default_rng(0).normal(size=wide.n_edges)
    np.testing.assert_allclose(space.affinity(flow), wide.affinity(flow), rtol=1e-6, atol=1e-6)
    assert space._flow_basis is None and space.flow_basis().dtype == np.float32
    assert wide._flow_basis.dtype == np.float64  # built once, on the original
