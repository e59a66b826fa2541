"""Reversible chain (detailed balance), the quasi-symmetry model.

logit p_i(j) = s_ij − phi_j for each neighbour j, logit p_i(rest) = 0 (the reference category),
with s symmetric per undirected edge and phi the latent potential field. Every such chain obeys
detailed balance exactly, with equilibrium potential V_i = phi_i − log Z_i (recorded as ``V``).
"""

from ._common import (
    FieldPrior,
    edge_term,
    latent_field,
    observe_rows,
    record_potentials,
    reversible_logits,
)


def reversible(
    data, *, prior: FieldPrior | None = None, full: bool = False, pointwise: bool = True
):
    """The reversible (detailed-balance) model: a NumPyro model function.

    Parameters
    ----------
    data : ModelData
        The counts in the models' shared layout (``modeldata.build_model_data``).
    prior : FieldPrior, optional
        Priors of the potential field, the edge terms; default ``FieldPrior()``.
    full : bool
        Also record the fitted transition probabilities as deterministic sites ``log_p_arc``
        and ``log_p_rest`` (the likelihood is the same either way).
    pointwise : bool
        Observe the counts as the site ``y``, one log-likelihood value per cell (default), or, if
        False, as one factor site ``y_total`` with their sum: the same log density, cheaper to
        differentiate (what the samplers run; see ``_common.observe_rows``).

    Notes
    -----
    Records ``V`` (escape included) and ``V_within`` (conditional on staying among the modelled
    states) as deterministic sites, so each posterior draw carries its equilibrium potential.

    Examples
    --------
    >>> from numpyro.handlers import seed, trace
    >>> from detailed_balance.modeldata import build_model_data
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(6, seed=0), attempts_per_source=50, seed=0)
    >>> data = build_model_data(counts)
    >>> sites = trace(seed(reversible, 0)).get_trace(data)
    >>> sites["V"]["value"].shape, sites["y"]["type"]
    ((6,), 'sample')
    """
    prior = prior or FieldPrior()
    phi = latent_field(data, prior)
    u = edge_term(data, prior, phi)
    arc_logit = reversible_logits(phi, u, data)
    log_z = observe_rows(arc_logit, data, full=full, pointwise=pointwise)
    record_potentials(phi, arc_logit, log_z, data)
