"""Separate landscapes: an independent reversible chain per dataset.

Dataset k is the single-dataset ``reversible`` model with its own field, edge terms and
hyperparameters (sites under the scope ``d{k}_``). The datasets share nothing, so the evidence is
the sum of the single-dataset evidences.
"""

from ._common import FieldPrior
from ._joint import dataset_scope
from .reversible import reversible


def joint_separate(joint, *, prior: FieldPrior | None = None, full: bool = False, **_):
    """Separate landscapes: an independent reversible field per dataset (a NumPyro model).

    Parameters
    ----------
    joint, prior, full
        As in :func:`~detailed_balance.models.joint_shared.joint_shared`.
    """
    prior = prior or FieldPrior()
    for k, data in enumerate(joint.datasets):
        with dataset_scope(k):
            reversible(data, prior=prior, full=full)
