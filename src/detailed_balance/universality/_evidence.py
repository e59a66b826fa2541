"""Comparing the joint hypotheses: bridge-sampled evidence, the one-landscape Bayes factor
(Savage–Dickey at tau = 0), its decision, and PSIS-LOO over attempts."""

from __future__ import annotations

import math

import numpy as np

from ..errors import FitError
from ._fit import JointFit, _model_fn

LOG10 = math.log(10.0)


def joint_evidence(fit: JointFit, *, seed: int = 0):
    """Log evidence of a joint NUTS fit by bridge sampling (``evidence.bridge_sampling``).

    ``separate``: the datasets share nothing, so log Z is the sum of each dataset's reversible
    evidence (bridge sampling in each dataset's own, smaller, parameter space), errors added in
    quadrature. ``shared``/``pooled``: one bridge over all parameters.

    Parameters
    ----------
    fit : JointFit
        A joint fit.
    seed : int
        Seed of the bridge sampler.

    Returns
    -------
    Evidence
        log Z with its Monte Carlo error.
    """
    from ..comparison import Evidence, bridge_sampling
    from ..models import MODELS

    reversible = MODELS["reversible"]

    if fit.method != "nuts":
        return Evidence(np.nan, np.nan, "bridge", False, "evidence needs posterior draws (NUTS)")
    samples = {k: fit.posterior[k] for k in fit.latent_sites}
    if fit.model != "separate":
        fn = _model_fn(fit.model)
        return bridge_sampling(fn, fit.model_kwargs, samples, seed=seed)
    parts = []
    for k, data in enumerate(fit.joint.datasets):
        prefix = f"d{k}_"
        own = {n[len(prefix) :]: v for n, v in samples.items() if n.startswith(prefix)}
        parts.append(
            bridge_sampling(reversible, {"data": data, "prior": fit.model_kwargs["prior"]}, own)
        )
    bad = [p for p in parts if not p.converged]
    if bad:
        return Evidence(np.nan, np.nan, "bridge (sum over datasets)", False, bad[0].note)
    return Evidence(
        float(sum(p.log_z for p in parts)),
        float(math.sqrt(sum(p.se**2 for p in parts))),
        "bridge (sum over datasets)",
        True,
        "; ".join(p.note for p in parts),
        parts[0].n_draws,
    )


def one_landscape_bf(fit: JointFit):
    """log Bayes factor of one landscape (``shared``) against partial pooling, from a pooled fit.

    ``pooled`` at tau = 0 *is* ``shared``: the departures ``delta_k = tau z_k`` vanish, the
    likelihood is the shared one and the other priors (field, beta, edge terms) are the same and
    do not depend on tau (the departures' ``z_k`` then only have their prior). So the
    Savage–Dickey ratio ``p(tau = 0 | y) / p(tau = 0)`` of the pooled posterior is the Bayes
    factor shared vs pooled (:func:`detailed_balance.comparison.savage_dickey`), with no
    evidence to estimate: it works at any number of parameters, from the draws the fit has.

    Parameters
    ----------
    fit : JointFit
        A ``pooled`` NUTS fit.

    Returns
    -------
    SavageDickey
        ``log_bf`` (> 0 favours one shared landscape), ``se``, ``converged``, ``note``,
        ``pareto_k``, ``ess``.
    """
    if fit.model != "pooled" or fit.method != "nuts":
        raise FitError("the one-landscape Bayes factor needs a pooled NUTS fit")
    import copy

    from ..comparison import savage_dickey

    samples = {k: fit.posterior[k] for k in fit.latent_sites}
    # fresh arrays: jax caches constants per numpy array, and the fit's arrays, traced under
    # float32, then fail under savage_dickey's float64 (int32 + int64 index arithmetic)
    kwargs = copy.deepcopy(fit.model_kwargs)
    return savage_dickey(_model_fn("pooled"), kwargs, samples, site="tau")


def bf_call(log_bf, converged: bool, tail_side: int = 0) -> str | None:
    """Which side a shared-vs-pooled log BF takes at the log 10 threshold (None: neither).

    A converged estimate decides at ±log 10. One that did not converge because tau = 0 lies in
    the far tail of the posterior (the per-draw terms are dominated by a few draws) still
    decides for ``pooled`` when it is below -3 log 10: its size is unreliable, not its side.

    Parameters
    ----------
    log_bf : float or None
        log BF shared vs pooled.
    converged : bool
        Whether the estimate converged.
    tail_side : int
        ``SavageDickey.tail_side``: +1 when a refused estimate still calls the full (pooled)
        model, because every draw favours it beyond the threshold.

    Returns
    -------
    {"shared", "pooled"} or None
    """
    if log_bf is None or not np.isfinite(log_bf):
        return None
    if converged:
        return "shared" if log_bf > LOG10 else "pooled" if log_bf < -LOG10 else None
    return "pooled" if tail_side == 1 else None


def _loo(fit: JointFit) -> dict:
    from ..comparison import weighted_loo

    return weighted_loo(fit.loglik, fit.cell_count)


def _loo_diff(a: dict, b: dict) -> tuple[float, float]:
    """elpd(a) - elpd(b) over the same attempts, with its standard error."""
    from ..comparison import weighted_se

    return a["elpd"] - b["elpd"], weighted_se(a["elpd_i"] - b["elpd_i"], a["weights"])
