"""log BF(non-reversible : reversible) with its error by tempered SMC from the reversible fit's
draws (``nested-smc``): the shared parameters need no reference density.

The non-reversible model is the reversible one's parameters ``theta`` plus the cycle flow
(sites ``tau``, ``flow_z``: ``(log tau, w)`` in NumPyro's unconstrained space). With ``p~_rev``
and ``p~_nr`` the two unnormalised posteriors there (prior × likelihood × Jacobian) and ``q`` a
*normalised* density of ``(log tau, w)``, the path

    π_0(theta, tau, w) = p~_rev(theta) q(tau, w),   π_1 = p~_nr(theta, tau, w),
    π_β ∝ π_0^(1−β) π_1^β,

has ``Z(π_0) = Z_rev`` exactly (``q`` integrates to 1) and ``Z(π_1) = Z_nr``, so the log
normaliser ratio the SMC estimates IS the log Bayes factor. π_0 is a product of the reversible
posterior and ``q``: particles at β = 0 are the reversible fit's draws of theta (a random subset
of them for each run) beside fresh draws of ``q``. ``q`` is the Gaussian fitted to the
non-reversible fit's draws of ``(log tau, w)`` (their correlation shrunk towards the identity,
Ledoit–Wolf, as the variational bounds' ``q``). The tempering loop is :func:`._smc.temper`,
the one laplace-smc runs (pilot, plan, independent runs, error, refusals).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import DataError
from ..formats import json_safe
from ..runtime import x64

MIN_POOL = 100  # reversible draws at least (the particles at β = 0 are drawn from them)


@dataclass(frozen=True)
class NestedBayesFactor:
    """log BF(non-reversible : reversible) by nested SMC, with its Monte Carlo error.

    ``converged`` is False (``log_bf`` NaN or not trusted, ``note`` says why) when the SMC
    refused (its runs disagree, the ESS collapsed, the moves stalled, too many temperatures) or
    the inputs could not support it (too few draws).
    """

    log_bf: float
    se: float
    converged: bool
    note: str = ""
    particles: int = 0
    runs: int = 0
    seconds: float = float("nan")

    def to_dict(self) -> dict:
        """JSON-able dict (NaN and inf -> None)."""
        return json_safe(asdict(self))


def nested_smc_bf(
    data,
    prior,
    samples_rev: dict,
    samples_nonrev: dict,
    *,
    particles: int = 256,
    runs: int = 4,
    leapfrog: int = 10,
    ess: float = 0.8,
    max_moves: int = 30,
    max_temperatures: int = 400,
    seed: int = 0,
) -> NestedBayesFactor:
    """log BF(non-reversible : reversible) by tempered SMC from the reversible posterior.

    The SMC path runs from ``p~_rev(theta) q(tau, w)`` (normaliser ``Z_rev``: ``q`` is a
    normalised Gaussian of the flow's ``(log tau, w)`` fitted to the non-reversible draws) to
    ``p~_nr(theta, tau, w)`` (normaliser ``Z_nr``) in NumPyro's unconstrained space of the
    non-reversible model, so its log normaliser ratio is the log Bayes factor: the thousands of
    parameters the two models share need no reference density. Particles at β = 0 are the
    reversible fit's draws of theta (drawn without replacement for each run while the draws
    last) beside fresh draws of ``q``; then the loop of :func:`smc_evidence` (a pilot plans each
    β, the mass matrix, step size and moves; ``runs`` independent runs follow it; the error is
    the larger of the runs' spread × t-scale and their own error; the same refusals).

    Not caught by the error: the reversible draws are MCMC draws, not exact ones (a fit that did
    not mix biases the start); the runs share the pool of draws (a pool smaller than
    ``runs × particles`` repeats draws across runs, noted).

    Parameters
    ----------
    data : ModelData
    prior : FieldPrior
        The prior both fits were made with.
    samples_rev, samples_nonrev : dict
        Site -> (chains, draws, ...) posterior draws of the reversible and non-reversible models
        (NUTS; every latent site).
    particles, runs, leapfrog, ess, max_moves, max_temperatures, seed
        As in :func:`smc_evidence`.

    Returns
    -------
    NestedBayesFactor
        ``converged=False`` with a note on a refusal or too few draws.

    Raises
    ------
    DataError
        When the draws do not fit the data (another number of states or edges).

    Examples
    --------
    >>> from detailed_balance.inference import fit, latent_draws
    >>> from detailed_balance.synthetic import driven_chain, sample_counts
    >>> from detailed_balance.comparison import fit_model_data, fit_prior
    >>> counts = sample_counts(driven_chain(6, affinity=1.0, seed=3), attempts_per_source=150)
    >>> rev, nr = (fit(counts, m, draws=500, chains=2) for m in ("reversible", "nonreversible"))
    >>> bf = nested_smc_bf(fit_model_data(rev), fit_prior(rev), latent_draws(rev),
    ...                    latent_draws(nr))  # doctest: +SKIP
    >>> bf.converged, bf.log_bf > 0  # doctest: +SKIP
    (True, True)
    """
    import jax

    from ._smc import temper

    if runs < 2:
        raise ValueError(f"runs={runs}: at least 2 independent runs are needed for the error")
    start = time.perf_counter()
    nan = float("nan")
    with x64():
        key = jax.random.PRNGKey(seed)
        ref = _NestedReference(data, prior, samples_rev, samples_nonrev, seed)
        if ref.problem:
            return NestedBayesFactor(nan, nan, False, ref.problem, particles, runs,
                                     time.perf_counter() - start)  # fmt: skip
        ev = temper(
            ref.log_p_nr, ref, particles, runs, leapfrog, ess, 1.0, max_moves, max_temperatures,
            key, "nested-smc", start,
        )  # fmt: skip
    return NestedBayesFactor(ev.log_z, ev.se, ev.converged, ev.note, particles, runs,
                             time.perf_counter() - start)  # fmt: skip


class _NestedReference:
    """π_0 = p~_rev(theta) q(log tau, w) on the non-reversible model's flat vector, for
    :func:`._smc.temper` (``dim``, ``draw``, ``log_q``, ``caveats``, ``label``)."""

    label = "the reversible posterior × a Gaussian of the flow"

    def __init__(self, data, prior, samples_rev, samples_nonrev, seed):
        import jax
        import jax.numpy as jnp
        from scipy.linalg import solve_triangular

        from ..models import nonreversible, reversible
        from ._evidence import _flat_model
        from ._variational import _Layout, _ShrunkGaussian

        kwargs = {"data": data, "prior": prior}
        key = jax.random.PRNGKey(seed)
        _, _, unravel_r, lp_r, x0_r = _flat_model(reversible, kwargs, key)
        _, _, _, lp_n, x0_n = _flat_model(nonreversible, kwargs, key)
        self.layout = layout = _Layout(unravel_r, len(x0_r), len(x0_n))
        self.dim, self.log_p_nr = layout.dim_n, lp_n
        z_r = _draws(reversible, kwargs, samples_rev, seed, layout.dim_r, "reversible")
        z_n = _draws(nonreversible, kwargs, samples_nonrev, seed, layout.dim_n, "non-reversible")
        self.pool = z_r.reshape(-1, layout.dim_r)
        self.problem = ""
        if len(self.pool) < MIN_POOL or len(z_n.reshape(-1, layout.dim_n)) < MIN_POOL:
            self.problem = (
                f"too few posterior draws ({len(self.pool)} reversible, "
                f"{len(z_n.reshape(-1, layout.dim_n))} non-reversible; at least {MIN_POOL} each "
                "from NUTS)"
            )
            return
        _, log_tau, w = layout.split(z_n.reshape(-1, layout.dim_n))
        flow = np.column_stack([log_tau, w])
        g = _ShrunkGaussian(flow)
        # the dense covariance diag(sd) (rho I + U Uᵀ) diag(sd): a few thousand flow coordinates
        cov = g.sd[:, None] * (g.rho * np.eye(len(g.sd)) + g.u @ g.u.T) * g.sd[None, :]
        self.mean, self.chol = g.mean, np.linalg.cholesky(cov)
        inv_chol = solve_triangular(self.chol, np.eye(len(cov)), lower=True)
        n_flow = len(g.mean)
        const = -float(np.sum(np.log(np.diag(self.chol)))) - 0.5 * n_flow * math.log(2 * math.pi)
        perm = jnp.asarray(layout.theta_at[np.argsort(layout.theta_from)])
        flow_at = jnp.asarray(np.concatenate([[layout.tau_at], layout.flow_at]))
        mean_j, inv_j = jnp.asarray(g.mean), jnp.asarray(inv_chol)

        def log_pi0(x):
            u = inv_j @ (x[flow_at] - mean_j)
            return lp_r(x[perm]) + const - 0.5 * jnp.dot(u, u)

        self._log_q = jax.value_and_grad(log_pi0)
        self.n_flow = n_flow

    def draw(self, key, n: int) -> np.ndarray:
        """``n`` particles: reversible draws of theta (without replacement while they last)
        beside fresh draws of ``q``."""
        import jax

        k_pick, k_q = jax.random.split(key)
        pick = jax.random.choice(k_pick, len(self.pool), (n,), replace=n > len(self.pool))
        theta = self.pool[np.asarray(pick)]
        y = self.mean + np.asarray(jax.random.normal(k_q, (n, self.n_flow))) @ self.chol.T
        return self.layout.join(theta, y[:, 0], y[:, 1:])

    def log_q(self, x):
        return self._log_q(x)

    def caveats(self) -> str:
        return (
            f"; particles at β = 0 from {len(self.pool)} reversible draws, {self.n_flow} flow "
            "coordinates from the Gaussian q"
        )


def _draws(model, kwargs, samples, seed, dim, name) -> np.ndarray:
    """The draws in the model's unconstrained space, (chains, draws, D); a one-line DataError
    when they are not draws of this model on these data."""
    from ._evidence import unconstrained_draws

    try:
        z, _ = unconstrained_draws(model, kwargs, samples, seed=seed)
    except (ValueError, TypeError) as exc:
        raise DataError(f"the {name} draws do not fit these data: {exc}") from None
    if z.ndim != 3 or z.shape[-1] != dim:
        raise DataError(f"the {name} draws do not fit these data ({z.shape[-1]} unconstrained "
                        f"parameters, the model on these data has {dim})")  # fmt: skip
    return np.asarray(z, dtype=float)
