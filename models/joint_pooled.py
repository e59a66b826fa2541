"""Partially pooled landscapes: phi_k = beta_k (phi + delta_k), delta_k ~ Normal(0, tau^2).

A shared field phi over the union of states, a per-dataset scale beta_k (beta_1 = 1) and a
per-dataset departure delta_k on each of its states (centred in the dataset's gauge, so that it
carries no constant the likelihood cannot see). tau measures how far the datasets depart from one
landscape; tau -> 0 is ``joint_shared``, a large tau approaches ``joint_separate``.
"""

import numpyro
import numpyro.distributions as dist

from ._common import FieldPrior, centre
from ._joint import dataset_rows, dataset_scope, shared_landscape


def joint_pooled(
    joint,
    *,
    prior: FieldPrior | None = None,
    full: bool = False,
    beta_scale: float = 1.0,
    tau_scale: float = 1.0,
    **_,
):
    """Partially pooled landscapes: ``phi_k = beta_k (phi + delta_k)`` (a NumPyro model).

    Parameters
    ----------
    joint, prior, full, beta_scale
        As in :func:`~detailed_balance.models.joint_shared.joint_shared`.
    tau_scale : float
        ``tau ~ HalfNormal(tau_scale)``.
    """
    prior, phi, beta = shared_landscape(joint, prior, beta_scale)
    tau = numpyro.sample("tau", dist.HalfNormal(tau_scale))
    for k, (data, index) in enumerate(zip(joint.datasets, joint.index, strict=True)):
        with dataset_scope(k):
            z = numpyro.sample("delta_z", dist.Normal(0.0, 1.0).expand([data.n_states]).to_event(1))
            delta = numpyro.deterministic("delta", centre(tau * z, data))
            dataset_rows(data, beta[k] * (phi[index] + delta), prior, full)
