"""Non-reversible chain in the same family: the reversible model plus a cycle term.

logit p_i(j) = s_ij − phi_j + theta_c/2 · sign for arcs on the chord of independent cycle c
(a fundamental cycle basis of the support graph). The sum of log T(j←i)/T(i←j) around cycle c is
exactly theta_c, recorded as ``cycle_affinity``; theta = 0 is the reversible model.
"""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from ._common import (
    FieldPrior,
    edge_term,
    latent_field,
    observe_rows,
    record_potentials,
    reversible_logits,
)


def nonreversible(data, *, prior: FieldPrior | None = None, full: bool = False):
    """The non-reversible model: the reversible model plus one affinity per independent cycle.

    Parameters
    ----------
    data : ModelData
        The counts in the models' shared layout (``modeldata.build_model_data``).
    prior : FieldPrior, optional
        Priors of the potential field, the edge terms and the cycle affinities
        (``cycle_scale``); default ``FieldPrior()``.
    full : bool
        Include the multinomial coefficient in the likelihood (off: the convention every evidence
        in this package uses).

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
        tau = numpyro.sample("tau", dist.HalfNormal(prior.cycle_scale))
        z = numpyro.sample("theta_z", dist.Normal(0.0, 1.0).expand([data.n_chords]).to_event(1))
        theta = numpyro.deterministic("cycle_affinity", tau * z)
        on_chord = jnp.asarray(data.arc_chord) >= 0
        arc_logit = arc_logit + jnp.where(
            on_chord, 0.5 * data.arc_chord_sign * theta[jnp.maximum(data.arc_chord, 0)], 0.0
        )
    log_z = observe_rows(arc_logit, data, full=full)
    record_potentials(phi, arc_logit, log_z, data)
