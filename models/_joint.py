"""What the joint (several-dataset) models share: per-dataset rows and dataset scales.

A joint model reads a ``JointData`` (``detailed_balance.universality.build_joint_data``):
``datasets`` (one ``ModelData`` per dataset, each with its own attempts, rejections and support
graph), ``index`` (each dataset's states as indices into the union of states) and ``union`` (a
``ModelData`` over the union, for the shared field's gauge). Each dataset's sites live under the
scope ``d{k}_`` (``d0_u``, ``d1_y``...), so every dataset keeps its own likelihood, observed with
the single-dataset convention of ``_common.observe_rows``: evidences and LOO of the joint models
compare with each other and with the sum over the single-dataset ladder.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.handlers import scope

from ._common import (
    FieldPrior,
    edge_term,
    latent_field,
    observe_rows,
    record_potentials,
    reversible_logits,
)


def dataset_scope(k: int):
    """The name scope of dataset ``k``'s sites: ``d{k}_``."""
    return scope(prefix=f"d{k}", divider="_")


def shared_landscape(joint, prior: FieldPrior | None, beta_scale: float):
    """The prior (default ``FieldPrior()``), the shared field phi over the union of states and
    the datasets' scales beta (beta_1 = 1): what ``joint_shared`` and ``joint_pooled`` build
    before their per-dataset rows."""
    prior = prior or FieldPrior()
    phi = latent_field(joint.union, prior)
    return prior, phi, dataset_scales(len(joint.datasets), beta_scale)


def dataset_rows(data, phi, prior, full: bool = False):
    """One dataset's reversible rows given its field ``phi``: own edge terms, own likelihood."""
    u = edge_term(data, prior, phi)
    arc_logit = reversible_logits(phi, u, data)
    log_z = observe_rows(arc_logit, data, full=full)
    record_potentials(phi, arc_logit, log_z, data)


def dataset_scales(n_datasets: int, scale: float):
    """beta_k, the field's scale in dataset k (an inverse temperature): beta_1 = 1 fixes the
    scale of the shared field, log beta_k ~ Normal(0, scale) for the others."""
    if n_datasets == 1:
        return numpyro.deterministic("beta", jnp.ones(1))
    log_beta = numpyro.sample(
        "log_beta", dist.Normal(0.0, scale).expand([n_datasets - 1]).to_event(1)
    )
    return numpyro.deterministic("beta", jnp.exp(jnp.concatenate([jnp.zeros(1), log_beta])))
