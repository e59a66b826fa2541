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


def reversible(data, *, prior: FieldPrior | None = None, full: bool = False):
    prior = prior or FieldPrior()
    phi = latent_field(data, prior)
    u = edge_term(data, prior, phi)
    arc_logit = reversible_logits(phi, u, data)
    log_z = observe_rows(arc_logit, data, full=full)
    record_potentials(phi, arc_logit, log_z, data)
