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
