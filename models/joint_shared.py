"""One landscape: a single field phi over the union of states, scaled per dataset.

Dataset k's field is ``beta_k * phi`` on its own states (beta_1 = 1 fixes the scale; beta_k acts
as an inverse temperature), with its own edge terms, attempts and rejections. Sampling a
quasi-symmetric chain at temperature T multiplies both its symmetric part and its field by 1/T,
so this is "the same landscape at different temperatures" (Song et al., arXiv:2512.10047, ask
whether the potential transcends models and prompts).
"""

from ._common import FieldPrior
from ._joint import dataset_rows, dataset_scope, shared_landscape


def joint_shared(
    joint,
    *,
    prior: FieldPrior | None = None,
    full: bool = False,
    beta_scale: float = 1.0,
    **_,
):
    """One shared landscape: ``phi_k = beta_k phi`` (a NumPyro model).

    Parameters
    ----------
    joint : JointData
        The datasets' arrays (``universality.build_joint_data``).
    prior : FieldPrior, optional
        Field and edge prior of every dataset; default ``FieldPrior()``.
    full : bool
        Also record the fitted transition probabilities as deterministic sites ``log_p_arc``
        and ``log_p_rest`` (the likelihood is the same either way).
    beta_scale : float
        ``log beta_k ~ Normal(0, beta_scale)`` for k >= 2 (beta_1 = 1).
    """
    prior, phi, beta = shared_landscape(joint, prior, beta_scale)
    for k, (data, index) in enumerate(zip(joint.datasets, joint.index, strict=True)):
        with dataset_scope(k):
            dataset_rows(data, beta[k] * phi[index], prior, full)
