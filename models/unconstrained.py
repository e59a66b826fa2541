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


def unconstrained(
    data, *, alpha: float = 1.0, prior=None, full: bool = False, pointwise: bool = True
):
    """The unconstrained model: independent Dirichlet rows over each source's categories.

    Parameters
    ----------
    data : ModelData
        The counts in the models' shared layout (``modeldata.build_model_data``).
    alpha : float
        Dirichlet concentration of every category.
    prior : None
        Ignored; accepted so that every model takes the same arguments.
    full : bool
        Also record the fitted transition probabilities as deterministic sites ``log_p_arc``
        and ``log_p_rest`` (the likelihood is the same either way).
    pointwise : bool
        Observe the counts as the site ``y``, one log-likelihood value per cell (default), or, if
        False, as one factor site ``y_total`` with their sum: the same log density, cheaper to
        differentiate (what the samplers run; see ``_common.observe_rows``).

    Notes
    -----
    Its evidence is exact (``evidence.log_evidence_dirichlet``); the bridge estimate from its NUTS
    draws is checked against it on every comparison.

    Examples
    --------
    >>> from numpyro.handlers import seed, trace
    >>> from detailed_balance.modeldata import build_model_data
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(6, seed=0), attempts_per_source=50, seed=0)
    >>> data = build_model_data(counts)
    >>> sites = trace(seed(unconstrained, 0)).get_trace(data)
    >>> sites["g_arc"]["value"].shape  # one Gamma variable per arc (2 per edge)
    (24,)
    """
    gamma_arc = dist.Gamma(alpha, 1.0).expand([2 * data.n_edges]).to_event(1)
    g_arc = numpyro.sample("g_arc", gamma_arc, infer={"event_dims": ("arc",)})
    if data.has_rest:
        gamma = dist.Gamma(alpha, 1.0).expand([data.n_states]).to_event(1)
        g_rest = numpyro.sample("g_rest", gamma, infer={"event_dims": ("state",)})
        log_rest = jnp.log(g_rest)
    else:
        log_rest = jnp.zeros(data.n_states)
    # logits relative to rest (rest logit 0), as the shared likelihood expects
    arc_logit = jnp.log(g_arc) - log_rest[data.arc_source]
    observe_rows(arc_logit, data, full=full, pointwise=pointwise)
