"""Unconstrained Markov chain: independent Dirichlet rows over each source's categories.

Row i's categories are its support-graph neighbours plus ``rest``;
p_i ~ Dirichlet(alpha, ..., alpha).
A Dirichlet vector is drawn as normalised Gamma(alpha, 1) variables (the ragged rows stay sparse);
the likelihood depends only on p, so the evidence is that of the Dirichlet model.
"""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from ._common import observe_rows


def unconstrained(data, *, alpha: float = 1.0, prior=None, full: bool = False):
    g_arc = numpyro.sample("g_arc", dist.Gamma(alpha, 1.0).expand([2 * data.n_edges]).to_event(1))
    if data.has_rest:
        gamma = dist.Gamma(alpha, 1.0).expand([data.n_states]).to_event(1)
        g_rest = numpyro.sample("g_rest", gamma)
        log_rest = jnp.log(g_rest)
    else:
        log_rest = jnp.zeros(data.n_states)
    # logits relative to rest (rest logit 0), as the shared likelihood expects
    arc_logit = jnp.log(g_arc) - log_rest[data.arc_source]
    observe_rows(arc_logit, data, full=full)
