"""What the models share: the row likelihood, the potential-field priors, and the derived V.

Likelihood convention (the same in every model, so evidences compare): each attempt is one
categorical draw from its source's row; no multinomial coefficient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from detailed_balance.modeldata import FieldPrior  # defined with the data: no JAX needed


# Each site names its axes where it is sampled, so the fit labels them without a table of its
# own: ``infer={"event_dims": ...}`` on a sample site (numpyro passes the dict through to the
# trace), plates around a deterministic one (how numpyro and ArviZ's converter name axes).
def deterministic(name: str, value, dim: str):
    """``numpyro.deterministic`` with its one axis named ``dim`` (by a plate; value unchanged)."""
    with numpyro.plate(dim, jnp.shape(value)[-1]):
        return numpyro.deterministic(name, value)


class CellCounts(dist.Distribution):
    """Log-likelihood ``count * log p`` of one (source, category) cell (pointwise values)."""

    support = constraints.nonnegative_integer

    def __init__(self, log_p, validate_args=None):
        self.log_p = log_p
        super().__init__(batch_shape=jnp.shape(log_p), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        raise NotImplementedError("cell counts are observed, never sampled")

    def log_prob(self, value):
        return value * self.log_p


def row_log_normaliser(arc_logit, data):
    """log of each source row's normaliser: logsumexp over its arcs (and rest, logit 0)."""
    n = data.n_states
    floor = 0.0 if data.has_rest else -jnp.inf
    # the shift m only keeps exp in range: the value does not depend on it, so neither does the
    # gradient, and differentiating segment_max cost a third of the potential's gradient time
    m = jax.ops.segment_max(jax.lax.stop_gradient(arc_logit), data.arc_source, num_segments=n)
    m = jnp.maximum(m, floor)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    shifted = jnp.exp(arc_logit - m[data.arc_source])
    total = jax.ops.segment_sum(shifted, data.arc_source, num_segments=n)
    if data.has_rest:
        total = total + jnp.exp(-m)
    return m + jnp.log(jnp.where(total > 0, total, 1.0))


def observe_rows(arc_logit, data, full: bool = False, pointwise: bool = True):
    """Condition on the counts of every observed cell, given arc logits (rest logit fixed at 0).

    Fixing the rest logit at 0 removes one redundant direction per row: a softmax is unchanged by
    adding a constant to a whole row.

    ``pointwise=True`` (the default): the observed site ``y``, one log-likelihood value per cell
    (what LOO and the stored ``log_likelihood`` read). ``False``: one factor site ``y_total``
    holding their sum, computed per arc and per row, ``sum_a n_a logit_a - sum_i N_i log Z_i``
    (``N_i`` the categorical draws from source ``i``): the same log density, to float rounding,
    and what the samplers use: the per-cell form's gathers made the potential's value and
    gradient ~1.35x as slow at 100 states (``docs/readme/bench-fit.md``, round 10).
    """
    log_z = row_log_normaliser(arc_logit, data)
    if not pointwise:
        rows = data.row_totals()
        dtype = jnp.result_type(arc_logit)
        count = jnp.asarray(data.arc_count, dtype)
        # arcs seen zero times drop out, as they do from the cells: 0 * (-inf) would be NaN
        # where an unconstrained model's arc probability underflows
        seen = jnp.where(data.arc_count > 0, count * arc_logit, 0.0)
        total = jnp.sum(seen) - jnp.dot(jnp.asarray(rows, dtype), log_z)
        numpyro.factor("y_total", total)
    if pointwise or full:
        log_p_arc = arc_logit - log_z[data.arc_source]
    if pointwise:
        log_p_rest = -log_z
        log_p_cell = jnp.concatenate([log_p_arc[data.cell_arc], log_p_rest[data.cell_rest]])
        counts = (data.arc_count[data.cell_arc], data.rest_count[data.cell_rest])
        with numpyro.plate("cell", log_p_cell.shape[0]):
            numpyro.sample("y", CellCounts(log_p_cell), obs=jnp.concatenate(counts))
    if full:
        deterministic("log_p_arc", log_p_arc, "arc")
        deterministic("log_p_rest", -log_z, "state")
    return log_z


def latent_field(data, prior: FieldPrior):
    """The potential field phi over states, centred per gauge group (removes the s/phi shift)."""
    n = data.n_states
    if prior.kind == "flat":
        raw = numpyro.sample(
            "phi_raw",
            dist.ImproperUniform(constraints.real, (), (n,)),
            infer={"event_dims": ("state",)},
        )
    elif prior.kind == "normal":
        sigma = numpyro.sample("sigma_phi", dist.HalfNormal(prior.scale))
        # iid Normal(0, sigma) seen modulo a constant (which no likelihood sees): no dead direction
        raw = numpyro.sample(
            "phi_raw", dist.ZeroSumNormal(sigma, event_shape=(n,)), infer={"event_dims": ("state",)}
        )
    elif prior.kind == "gp":
        x = jnp.asarray(data.features)
        amp = numpyro.sample("gp_amplitude", dist.HalfNormal(prior.scale))
        ell = numpyro.sample("gp_lengthscale", dist.LogNormal(jnp.log(prior.lengthscale), 1.0))
        sq = jnp.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
        cov = jnp.exp(-0.5 * sq / ell**2) + prior.jitter * jnp.eye(n)
        z = numpyro.sample(
            "phi_z", dist.Normal(0.0, 1.0).expand([n]).to_event(1), infer={"event_dims": ("state",)}
        )
        raw = amp * (jnp.linalg.cholesky(cov) @ z)
    else:
        raise ValueError(f"unknown field prior {prior.kind!r} (use 'normal', 'gp' or 'flat')")
    return deterministic("phi", centre(raw, data), "state")


def centre(values, data):
    """Subtract each gauge group's weighted mean (see ``modeldata.GAUGE``)."""
    n_groups = int(data.gauge_group.max()) + 1
    w = jnp.asarray(data.gauge_weight)
    offset = jax.ops.segment_sum(w * values, data.gauge_group, num_segments=n_groups)
    return values - offset[data.gauge_group]


def edge_term(data, prior: FieldPrior, phi):
    """Symmetric edge term u_e (a log conductance: how much traffic edge e carries).

    Hierarchical normal around a trend in the steepness of the edge,
    ``u_e = mu_u + beta_u |phi_a - phi_b| / 2 + sigma_u z_e``: kernels that saturate downhill
    moves (Metropolis-like, ``beta_u = -1``) carry less traffic on steep edges, symmetric ones
    (``beta_u = 0``) do not. Without the trend, shrinking ``u`` on steep edges would shrink the
    potential differences. Flat priors: ``u`` free.
    """
    if prior.kind == "flat":
        flat = dist.ImproperUniform(constraints.real, (), (data.n_edges,))
        return numpyro.sample("u", flat, infer={"event_dims": ("edge",)})
    a, b = data.arc_source[: data.n_edges], data.arc_target[: data.n_edges]
    mu = numpyro.sample("mu_u", dist.Normal(0.0, prior.edge_mean_scale))
    beta = numpyro.sample("beta_u", dist.Normal(0.0, prior.edge_trend_scale))
    sigma = numpyro.sample("sigma_u", dist.HalfNormal(prior.edge_scale))
    z = numpyro.sample(
        "u_z",
        dist.Normal(0.0, 1.0).expand([data.n_edges]).to_event(1),
        infer={"event_dims": ("edge",)},
    )
    return deterministic("u", mu + 0.5 * beta * jnp.abs(phi[a] - phi[b]) + sigma * z, "edge")


def reversible_logits(phi, u, data):
    """Arc logits ``u_e + (phi_i - phi_j)/2`` for the arc i→j of edge e; records ``s``.

    This is ``s_ij - phi_j`` with the symmetric ``s_ij = u_ij + (phi_i + phi_j)/2``. The prior sits
    on ``u`` rather than ``s`` so that shrinking the edge terms does not shift the potential: ``u``
    is what the total traffic on an edge measures, ``phi_i - phi_j`` what its direction measures.
    """
    a, b = data.arc_source[: data.n_edges], data.arc_target[: data.n_edges]
    deterministic("s", u + 0.5 * (phi[a] + phi[b]), "edge")
    # arcs a→b of every edge, then b→a (``build_model_data``'s layout): two gathers over edges
    # instead of three over arcs: the potential's value-and-gradient ~15% faster at 100 states
    half = 0.5 * (phi[a] - phi[b])
    return jnp.concatenate([u + half, u - half])


def record_potentials(phi, arc_logit, log_z, data):
    """Deterministic sites V (with escapes) and V_within (among modelled states), gauge-fixed.

    For a reversible row i: log T(j←i) − log T(i←j) = V_i − V_j with V_i = phi_i − log Z_i.
    """
    v = centre(phi - log_z, data)
    deterministic("V", v, "state")
    within = row_log_normaliser_without_rest(arc_logit, data)
    deterministic("V_within", centre(phi - within, data), "state")
    return v


def row_log_normaliser_without_rest(arc_logit, data):
    return row_log_normaliser(arc_logit, data._replace(has_rest=False))


def cycle_flow(data, prior: FieldPrior):
    """The non-reversible model's edge flow ``f = tau Q w`` on the cycle space (E,).

    ``Q`` (E, C) is an orthonormal basis of the cycle space of the support graph
    (``graph.CycleSpace.flow_basis``) and ``w ~ N(0, I_C)`` (site ``flow_z``), so ``f`` is
    ``N(0, tau² P)`` with ``P`` the projector on the cycle space: isotropic, with no gradient
    part (that would duplicate phi), and the same for any basis, so for any naming or order of
    the states. Per-cycle scales would not be: they depend on the basis. Given tau, every unit
    cycle-space direction has sd tau and a cycle of L edges has affinity sd ``tau sqrt(L)``.

    A cycle space too large for a dense ``Q`` (``CycleSpace.dense_basis_fits``) takes the same
    prior in its fundamental coordinates: ``f = tau Z v``, ``v ~ N(0, (Z.T Z)^-1)``
    (:class:`CycleSpaceNormal`, site ``flow_z`` too, its values then chord flows over tau), whose
    density and gradient cost a sparse product with ``Z`` instead of a dense one with ``Q``.
    Which one is ``data.flow_coordinates`` (``"orthonormal"`` or ``"chord"``), decided when the
    data is built and recorded by a fit, so that its stored draws are read in their own.
    """
    space = data.cycles
    if prior.cycle_tail == "normal":
        tau = numpyro.sample("tau", dist.HalfNormal(prior.cycle_scale))
    else:  # "cauchy" (checked by FieldPrior)
        tau = numpyro.sample("tau", dist.HalfCauchy(prior.cycle_scale))
    # its axis is a basis of the cycle space, not the fundamental cycles: left unnamed
    if data.flow_coordinates == "chord":
        return tau * edge_flow(numpyro.sample("flow_z", CycleSpaceNormal(space)), space)
    q = jnp.asarray(space.flow_basis())
    w = numpyro.sample("flow_z", dist.Normal(0.0, 1.0).expand([q.shape[1]]).to_event(1))
    return tau * (q @ w)


def edge_flow(coords, space):
    """``Z @ coords``: the edge flows (..., E) of fundamental-cycle coordinates (..., C)."""
    return _cycle_matrix_pair(space)[0](coords)


def cycle_sums(flow, space):
    """``Z.T @ flow``: each fundamental cycle's signed sum of edge flows (..., E) -> (..., C)."""
    return _cycle_matrix_pair(space)[1](flow)


def _cycle_matrix_pair(space):
    """``v -> Z v`` and ``g -> Z.T g`` by gathers over the spanning forest, each the other's VJP.

    The levels' gathers (``graph.ForestLevels``) cost a few per node; a product through
    ``.at[].add`` or ``segment_sum`` would scatter once per non-zero of ``Z`` forwards and again
    backwards (at 3,000 states, 35,673 non-zeros: 77 against 17 ms per gradient of 64 particles).
    """
    lv = space.levels()

    def pad(x):  # one zero appended on the last axis: the target of every padded index
        return jnp.concatenate([x, jnp.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1)

    def signed(sign, x):
        return jnp.asarray(sign, dtype=x.dtype)

    def z_of(v):
        q = jnp.sum(pad(v)[..., lv.chord_end] * signed(lv.chord_end_sign, v), axis=-1)
        starts = np.cumsum((0,) + lv.sizes)
        sums = q[..., starts[-2] : starts[-1]]  # the deepest level: its own ends only
        tree = []
        for d in range(len(lv.sizes) - 2, -1, -1):
            tree.append(signed(lv.orient[d], v) * sums)  # level d + 1's tree edges
            sums = q[..., starts[d] : starts[d + 1]] + jnp.sum(pad(sums)[..., lv.children[d]], -1)
        return jnp.concatenate([v, *tree[::-1]], axis=-1)[..., lv.assemble]

    def zt_of(g):
        r = jnp.zeros(g.shape[:-1] + (lv.sizes[0],), g.dtype)
        levels = [r]
        for d in range(1, len(lv.sizes)):
            step = signed(lv.orient[d - 1], g) * g[..., lv.tree_edge[d - 1]]
            r = r[..., lv.parent_pos[d - 1]] + step
            levels.append(r)
        r = jnp.concatenate(levels, axis=-1)
        return g[..., lv.chord_edge] + r[..., lv.chord_a] - r[..., lv.chord_b]

    z, zt = jax.custom_vjp(z_of), jax.custom_vjp(zt_of)
    z.defvjp(lambda v: (z_of(v), None), lambda _, ct: (zt_of(ct),))
    zt.defvjp(lambda g: (zt_of(g), None), lambda _, ct: (z_of(ct),))
    return z, zt


class CycleSpaceNormal(dist.Distribution):
    """``N(0, (Z.T Z)^-1)`` over fundamental-cycle coordinates ``v``: ``Z v ~ N(0, P)``.

    ``Z`` (E, C) is the signed fundamental-cycle matrix (``graph.CycleSpace``) and ``P`` the
    projector on the cycle space: ``Z v`` has the distribution of ``Q w``, ``w ~ N(0, I)``. The
    log density ``-|Z v|²/2 + log det(Z.T Z)/2 - C log(2 pi)/2`` needs the sparse product only;
    the constant is computed once on the host (sparse LU of the reduced Laplacian), as is a
    draw's solve.
    """

    support = constraints.real_vector
    # kept through jax's pytree flattening (jit, vmap over a distribution): without it the
    # rebuilt distribution has no space
    pytree_aux_fields = ("space",)

    def __init__(self, space, validate_args=None):
        self.space = space
        super().__init__(event_shape=(space.n_cycles,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        # the chords of P g, g ~ N(0, I_E): Z v = P g ~ N(0, P) (CycleSpace.chords_of_cycle_part)
        g = jax.random.normal(key, sample_shape + (self.space.n_edges,))
        shape = jax.ShapeDtypeStruct(sample_shape + self.event_shape, g.dtype)
        chords = lambda x: self.space.chords_of_cycle_part(x).astype(x.dtype)  # noqa: E731
        return jax.pure_callback(chords, shape, g, vmap_method="expand_dims")

    def log_prob(self, value):
        c = self.space.n_cycles
        const = self.space.gram_half_log_det() - 0.5 * c * jnp.log(2 * jnp.pi)
        return const - 0.5 * jnp.sum(edge_flow(value, self.space) ** 2, axis=-1)
