"""Non-reversible chain in the same family: the reversible model plus a circulating edge flow.

logit p_i(j) = s_ij − phi_j ± f_e/2 on the arc i→j of edge e (+ along e's a→b orientation), with
the flow f in the cycle space of the support graph (divergence-free: the gradient part of any
flow is a potential difference, already in phi). Its prior is isotropic there,
``f = tau Q w``, ``w ~ N(0, I)``, ``Q`` an orthonormal basis of the cycle space: the same
distribution for every basis, so for every naming and order of the states (Hodge decomposition,
as in HodgeRank; see ``_common.cycle_flow``, which takes the same prior in sparse
fundamental-cycle coordinates where a dense ``Q`` would be too large). The sum of
log T(j←i)/T(i←j) around a cycle is the signed sum of f along it, recorded as ``cycle_affinity``
for the fundamental cycles of ``graph.fundamental_cycles``; f = 0 is the reversible model.
"""

import jax.numpy as jnp

from ._common import (
    FieldPrior,
    cycle_flow,
    cycle_sums,
    deterministic,
    edge_term,
    latent_field,
    observe_rows,
    record_potentials,
    reversible_logits,
)


def nonreversible(
    data, *, prior: FieldPrior | None = None, full: bool = False, pointwise: bool = True
):
    """The non-reversible model: the reversible model plus one affinity per independent cycle.

    Parameters
    ----------
    data : ModelData
        The counts in the models' shared layout (``modeldata.build_model_data``).
    prior : FieldPrior, optional
        Priors of the potential field, the edge terms and the cycle affinities
        (``cycle_scale``); default ``FieldPrior()``.
    full : bool
        Also record the fitted transition probabilities as deterministic sites ``log_p_arc``
        and ``log_p_rest`` (the likelihood is the same either way).
    pointwise : bool
        Observe the counts as the site ``y``, one log-likelihood value per cell (default), or, if
        False, as one factor site ``y_total`` with their sum: the same log density, cheaper to
        differentiate (what the samplers run; see ``_common.observe_rows``).

    Notes
    -----
    Records ``cycle_affinity`` (one value per fundamental cycle, in nats) and ``V``, ``V_within``.
    ``cycle_affinity = 0`` is the reversible model.

    Examples
    --------
    >>> from numpyro.handlers import seed, trace
    >>> from detailed_balance.modeldata import build_model_data
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(6, seed=0), attempts_per_source=50, seed=0)
    >>> data = build_model_data(counts)
    >>> sites = trace(seed(nonreversible, 0)).get_trace(data)
    >>> data.n_chords, sites["cycle_affinity"]["value"].shape
    (7, (7,))
    """
    prior = prior or FieldPrior()
    phi = latent_field(data, prior)
    u = edge_term(data, prior, phi)
    arc_logit = reversible_logits(phi, u, data)
    if data.n_chords > 0:
        flow = cycle_flow(data, prior)
        arc_logit = arc_logit + 0.5 * jnp.concatenate([flow, -flow])  # arcs a→b, then b→a
        deterministic("cycle_affinity", cycle_sums(flow, data.cycles), "cycle")
    log_z = observe_rows(arc_logit, data, full=full, pointwise=pointwise)
    record_potentials(phi, arc_logit, log_z, data)
