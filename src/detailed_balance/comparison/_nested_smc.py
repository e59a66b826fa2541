"""log BF(non-reversible : reversible) with its error by tempered SMC from the reversible fit's
draws (``nested-smc``): the shared parameters need no reference density.

The non-reversible model is the reversible one's parameters ``theta`` plus the cycle flow
(sites ``tau``, ``flow_z``: ``(log tau, w)`` in NumPyro's unconstrained space). With ``p~_rev``
and ``p~_nr`` the two unnormalised posteriors there (prior × likelihood × Jacobian), a shift
``d`` of theta and ``q`` a density of ``(log tau, w)`` *normalised* for every theta, the path

    π_0(theta, tau, w) = p~_rev(theta − d) q(tau, w | theta),   π_1 = p~_nr(theta, tau, w),
    π_β ∝ π_0^(1−β) π_1^β,

has ``Z(π_0) = Z_rev`` exactly and ``Z(π_1) = Z_nr``, so the log normaliser ratio the SMC
estimates IS the log Bayes factor. Particles at β = 0 are the reversible fit's draws of theta
(shifted by ``d``) beside draws of ``q`` given them. ``d`` and ``q`` are the variational bounds'
(``_variational._FlowProposal``; see :class:`_NestedReference`). The tempering loop is
:func:`._smc.temper`, the one laplace-smc runs (pilot, plan, independent runs, error, refusals).
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

    The SMC path runs from ``p~_rev(theta − d) q(tau, w | theta)`` (normaliser ``Z_rev``: ``d``
    is a shift of theta, ``q`` the variational bounds' proposal of the flow, normalised for every
    theta) to ``p~_nr(theta, tau, w)`` (normaliser ``Z_nr``) in NumPyro's unconstrained space of
    the non-reversible model, so its log normaliser ratio is the log Bayes factor: the thousands
    of parameters the two models share need no reference density. Particles at β = 0 are the
    reversible fit's draws of theta shifted by ``d``, beside draws of ``q`` given them (the pilot
    and each run take their particles from their own contiguous segment of the draws, without
    replacement while it lasts, so the runs' spread includes the draws' own Monte Carlo error);
    then the loop of :func:`smc_evidence` (a pilot plans each β, the mass matrix, step size and
    moves; ``runs`` independent runs follow it; the error is the larger of the runs' spread ×
    t-scale and their own error; the same refusals).

    Not caught by the error: the reversible draws are MCMC draws, not exact ones (a fit that did
    not mix biases the start); a segment smaller than ``particles`` repeats draws within a run
    (the note says so).

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
    >>> rev, nr = (fit(counts, m, draws=500, chains=2)
    ...            for m in ("reversible", "nonreversible"))  # doctest: +SKIP
    >>> bf = nested_smc_bf(fit_model_data(rev), fit_prior(rev), latent_draws(rev),
    ...                    latent_draws(nr))  # doctest: +SKIP
    >>> bf.converged, bf.log_bf > 0  # doctest: +SKIP
    (True, True)
    """
    import jax

    from ._smc import temper

    if runs < 2:
        raise ValueError(f"runs={runs}: at least 2 independent runs are needed for the error")
    if particles < 8:  # the command line's floor: fewer cannot estimate an ESS or a variance
        raise ValueError(f"particles={particles}: at least 8 per run")
    start = time.perf_counter()
    nan = float("nan")
    with x64():
        key = jax.random.PRNGKey(seed)
        ref = _NestedReference(data, prior, samples_rev, samples_nonrev, seed, runs + 1)
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
    """π_0 = p~_rev(theta − d) q(log tau, w | theta) on the non-reversible model's flat vector,
    for :func:`._smc.temper` (``dim``, ``draw``, ``log_q``, ``caveats``, ``label``).

    ``d`` and the flow's proposal are those of the variational bounds (``_FlowProposal``, fitted
    to all the draws): ``d`` the difference of the two posteriors' means of theta (a shift: unit
    Jacobian, so ``p~_rev(theta − d)`` still integrates to ``Z_rev``); ``f = tau w`` Gaussian
    around one Newton step from the posterior mean flow given theta (made linear in theta by the
    cross Hessian at the posterior mean: no second derivative of the model per move), its
    precision the negative Hessian there; ``log tau`` given ``f`` the Gaussian at the mode of
    its exact conditional (the bounds use a grid there, which has no gradient for the HMC
    moves). Normalised in ``(log tau, w)`` for every theta, so ``Z(π_0) = Z_rev``."""

    label = "the reversible posterior × the flow's proposal"

    def __init__(self, data, prior, samples_rev, samples_nonrev, seed, segments):
        import jax
        import jax.numpy as jnp
        from scipy.linalg import cho_solve

        from ..models import nonreversible, reversible
        from ._evidence import _flat_model
        from ._variational import _Densities, _FlowProposal, _Layout, _log_tau_prior

        kwargs = {"data": data, "prior": prior}
        key = jax.random.PRNGKey(seed)
        _, _, unravel_r, lp_r, x0_r = _flat_model(reversible, kwargs, key)
        trace_n, _, _, lp_n, x0_n = _flat_model(nonreversible, kwargs, key)
        self.layout = layout = _Layout(unravel_r, len(x0_r), len(x0_n))
        self.dim, self.log_p_nr, self.n_flow = layout.dim_n, lp_n, layout.n_flow
        z_r = _draws(reversible, kwargs, samples_rev, seed, layout.dim_r, "reversible")
        z_n = _draws(nonreversible, kwargs, samples_nonrev, seed, layout.dim_n, "non-reversible")
        self.pool = z_r.reshape(-1, layout.dim_r)  # chain after chain, in draw order
        self.segments = np.array_split(np.arange(len(self.pool)), segments)
        self._calls, self.short = 0, False
        n_nr = len(z_n.reshape(-1, layout.dim_n))
        self.problem = ""
        if min(len(self.pool), n_nr) < MIN_POOL:
            self.problem = (
                f"too few posterior draws ({len(self.pool)} reversible, {n_nr} non-reversible; "
                f"at least {MIN_POOL} each, from NUTS)"
            )
            return
        density = _Densities(lp_r, lp_n, layout, trace_n["flow_z"]["fn"])
        self.q = q = _FlowProposal(z_r, z_n, layout, density, _log_tau_prior(prior))
        if q.note:
            self.problem = q.note
            return
        n = self.n_flow
        perm_np = layout.theta_at[np.argsort(layout.theta_from)]
        perm = jnp.asarray(perm_np)  # x[perm]: theta in the reversible model's order
        tau_at, flow_at = layout.tau_at, jnp.asarray(layout.flow_at)
        # the Newton step's mean, linear in theta about the posterior mean: its slope is the
        # cross Hessian (flow, theta), the theta columns of the flow's Hessian rows that q
        # computed at that point, so each gradient of log q costs two dense products, not a
        # second derivative of the model
        theta_bar = q.at[0]
        cross = q.hess_rows[:, perm_np]
        self.m_bar = q._f_mean(theta_bar[None])[0]
        self.slope = cho_solve((q.chol, True), cross) / q.tau_bar  # d mean / d theta
        self.theta_bar = theta_bar
        shift, chol_t = jnp.asarray(q.shift), jnp.asarray(q.chol.T)
        c_slope = jnp.asarray(q.chol.T @ self.slope)
        m_bar, theta_bar_j = jnp.asarray(self.m_bar), jnp.asarray(theta_bar)
        const_f = q.half_log_det - 0.5 * n * math.log(2 * math.pi)
        log_tau_prior = _log_tau_prior(prior, jnp)
        d1 = jax.grad(log_tau_prior)
        d2 = jax.grad(d1)

        def log_tau_given_f(r2):
            """(mode, precision) of log tau given ``r2 = f' S^-1 f`` (``S`` flow_z's prior
            covariance): Newton steps on its exact (log-concave) conditional p(tau) N(f; 0, tau² S)
            tau."""
            s = 0.5 * jnp.log(jnp.maximum(r2, 1e-300) / max(n - 1, 0.5))
            for _ in range(6):
                e = r2 * jnp.exp(-2 * s)
                s = s - (d1(s) - (n - 1) + e) / (d2(s) - 2 * e)
            return s, 2 * r2 * jnp.exp(-2 * s) - d2(s)

        def log_pi0(x):
            theta, log_tau, w = x[perm], x[tau_at], x[flow_at]
            f = jnp.exp(log_tau) * w
            u = chol_t @ (f - m_bar) - c_slope @ (theta - theta_bar_j)
            mode, prec = log_tau_given_f(density.flow_r2(f))
            log_s = 0.5 * jnp.log(prec / (2 * jnp.pi)) - 0.5 * prec * (log_tau - mode) ** 2
            # q(log tau, w) = q_f(tau w) tau^n q(log tau | f): the Jacobian of w -> f = tau w
            log_q = const_f - 0.5 * jnp.dot(u, u) + n * log_tau + log_s
            return lp_r(theta - shift) + log_q

        self._log_q = jax.value_and_grad(log_pi0)
        self._tau_given_f = jax.jit(jax.vmap(log_tau_given_f))

    def draw(self, key, n: int) -> np.ndarray:
        """``n`` particles: reversible draws of theta from the next segment of the draws (the
        pilot's, then each run's: disjoint, contiguous in chain order, so the runs' spread sees
        the draws' autocorrelated error; without replacement while the segment lasts), shifted by
        ``d``, and draws of the flow's proposal given them."""
        import jax

        k_pick, k_f, k_s = jax.random.split(key, 3)
        segment = self.segments[self._calls % len(self.segments)]
        self._calls += 1
        self.short = self.short or n > len(segment)
        pick = segment[np.asarray(jax.random.choice(k_pick, len(segment), (n,),
                                                    replace=n > len(segment)))]  # fmt: skip
        theta = self.pool[pick] + self.q.shift
        z = np.asarray(jax.random.normal(k_f, (n, self.n_flow)))
        mean = self.m_bar + (theta - self.theta_bar) @ self.slope.T
        f = mean + np.linalg.solve(self.q.chol.T, z.T).T
        mode, prec = (np.asarray(v) for v in self._tau_given_f(self.q.density.flow_norm2(f)))
        log_tau = mode + np.asarray(jax.random.normal(k_s, (n,))) / np.sqrt(prec)
        return self.layout.join(theta, log_tau, f / np.exp(log_tau)[:, None])

    def log_q(self, x):
        return self._log_q(x)

    def caveats(self) -> str:
        return (
            f"; particles at β = 0 from {len(self.pool)} reversible draws (the pilot and each "
            f"run from their own segment of {len(self.segments[-1])}"
            + (", fewer than the particles: drawn with replacement" if self.short else "")
            + f") and the flow's proposal ({self.n_flow} flow coordinates)"
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
