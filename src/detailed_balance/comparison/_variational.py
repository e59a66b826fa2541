"""Variational bounds: on a log evidence (ELBO, EUBO), and on the log Bayes factor of a nested pair.

For any normalised density ``q`` on NumPyro's unconstrained space and the unnormalised posterior
``p~`` there (prior × likelihood × Jacobian, ``log Z = log ∫ p~``):

    ELBO(q) = E_q[log p~ − log q] = log Z − KL(q ‖ p)  ≤ log Z,
    EUBO(q) = E_p[log p~ − log q] = log Z + KL(p ‖ q)  ≥ log Z.

The ELBO averages over fresh draws of ``q`` (plain Monte Carlo error), the EUBO over posterior
draws (Monte Carlo error from their effective sample size); ``q`` must not depend on the draws
that average it, so each half of every chain fits a Gaussian ``q`` that the other half's
draws and its own fresh draws average (cross-fitting), and the two halves' bounds are averaged
(an average of bounds is a bound). Both bounds hold in expectation only: each is a Monte Carlo
estimate with its standard error, never an estimate of ``log Z`` itself.

``q`` is the Gaussian moment-matched to half the draws (which minimises KL(p ‖ q) among
Gaussians, the EUBO's gap), its correlation matrix shrunk towards the identity by the
Ledoit–Wolf (2004) weight: with fewer draws than parameters the sample covariance is singular,
and the shrunk one is the identity plus a rank-``n`` term, so its density, draws and determinant
cost O(n D) (Woodbury). For the ELBO, whose gap KL(q ‖ p) is mode-seeking, the same Gaussian
with its covariance scaled by a factor ≤ 1 chosen on pilot draws of ``q`` (not used again) is
tighter.

Two models' bounds bracket their log Bayes factor:
``ELBO_1 − EUBO_0 ≤ log Z_1 − log Z_0 ≤ EUBO_1 − ELBO_0`` (:func:`bayes_factor_bounds`). Measured
on the demo's data (2,211 and 4,149 parameters, 2 × 500 draws) their gaps are ~1,000 nats each:
no use there. :func:`nested_bf_bounds` bounds the reversible/non-reversible Bayes factor
directly, where the parameters the two models share cancel (docs/readme/compare.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import logsumexp

from ..formats import json_safe
from ..runtime import x64
from ._evidence import unconstrained_draws

# covariance factors tried for the ELBO's q (chosen on pilot draws of q, then fresh draws)
ELBO_SCALES = (1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12)


@dataclass(frozen=True)
class EvidenceBounds:
    """A lower (ELBO) and an upper (EUBO) bound on a log evidence, each with its Monte Carlo se.

    Bounds in expectation: ``elbo ≤ log Z ≤ eubo`` up to their Monte Carlo errors; neither is an
    estimate of ``log Z``. ``converged`` is False (with a ``note``) when a bound is not finite.
    """

    elbo: float
    elbo_se: float
    eubo: float
    eubo_se: float
    converged: bool = True
    note: str = ""
    n_draws: int = 0
    n_q: int = 0
    elbo_scale: float = float("nan")
    seconds: float = float("nan")

    def to_dict(self) -> dict:
        """JSON-able dict (NaN and inf -> None)."""
        return json_safe(asdict(self))


@dataclass(frozen=True)
class BayesFactorBounds:
    """``lower ≤ log BF(model 1 : model 0) ≤ upper``, each bound with its Monte Carlo se.

    ``lower = ELBO_1 − EUBO_0``, ``upper = EUBO_1 − ELBO_0`` (:func:`bayes_factor_bounds`).
    """

    lower: float
    lower_se: float
    upper: float
    upper_se: float
    converged: bool = True
    note: str = ""
    seconds: float = float("nan")

    def to_dict(self) -> dict:
        """JSON-able dict (NaN and inf -> None)."""
        return json_safe(asdict(self))


def bayes_factor_bounds(one: EvidenceBounds, zero: EvidenceBounds) -> BayesFactorBounds:
    """The bracket of ``log Z_1 − log Z_0`` from each model's evidence bounds.

    Parameters
    ----------
    one, zero : EvidenceBounds
        Of the numerator's model (1) and the denominator's (0).

    Returns
    -------
    BayesFactorBounds

    Examples
    --------
    >>> b = bayes_factor_bounds(EvidenceBounds(-10.0, 0.1, -9.0, 0.2),
    ...                         EvidenceBounds(-30.0, 0.1, -28.0, 0.2))
    >>> b.lower, b.upper
    (18.0, 21.0)
    """
    notes = [f"model {k}: {b.note}" for k, b in ((1, one), (0, zero)) if not b.converged]
    return BayesFactorBounds(
        lower=one.elbo - zero.eubo,
        lower_se=math.hypot(one.elbo_se, zero.eubo_se),
        upper=one.eubo - zero.elbo,
        upper_se=math.hypot(one.eubo_se, zero.elbo_se),
        converged=not notes,
        note="; ".join(notes),
    )


def variational_bounds(
    model, model_kwargs: dict, samples: dict, *, n_q: int = 2000, seed: int = 0
) -> EvidenceBounds:
    """ELBO and EUBO of a model's log evidence from its posterior draws (no sampler runs).

    Parameters
    ----------
    model, model_kwargs : the NumPyro model and its keyword arguments.
    samples : dict site -> (chains, draws, ...) constrained posterior draws (every latent site).
    n_q : int
        Draws of ``q`` per half for the ELBO (as many again choose its covariance factor).
    seed : int
        Seed of the draws of ``q``.

    Returns
    -------
    EvidenceBounds
    """
    with x64():  # log densities of thousands of parameters: float32 would bias both bounds
        z, log_density = unconstrained_draws(model, model_kwargs, samples, seed=seed)
        return bounds_from_draws(z, log_density, n_q=n_q, seed=seed)


def bounds_from_draws(z: np.ndarray, log_density, *, n_q: int = 2000, seed: int = 0):
    """:func:`variational_bounds` from unconstrained draws ``z`` (chains, draws, D) and a
    vectorised ``log_density`` ((N, D) -> (N,)).

    Parameters
    ----------
    z : (chains, draws, D) array
        Unconstrained posterior draws.
    log_density : callable
        (N, D) -> (N,) log prior × likelihood × Jacobian.
    n_q : int
        Draws of ``q`` per half for the ELBO.
    seed : int

    Returns
    -------
    EvidenceBounds
    """
    start = time.perf_counter()
    chains, draws, dim = z.shape
    half = draws // 2
    nan = float("nan")
    if half < 10:
        return EvidenceBounds(nan, nan, nan, nan, False, "too few posterior draws for the bounds")
    rng = np.random.default_rng(seed)
    halves = (z[:, :half], z[:, half : 2 * half])
    elbos, eubos, scales = [], [], []
    for fit, held in (halves, halves[::-1]):
        q = _ShrunkGaussian(fit.reshape(-1, dim))
        # EUBO: the other half's draws (MCMC-correlated: error from their ESS)
        terms = log_density(held.reshape(-1, dim)) - q.log_pdf(held.reshape(-1, dim))
        eubos.append(_mean_se(terms, chains))
        # ELBO: the covariance factor from pilot draws, then fresh draws at that factor
        pilot = [_elbo_terms(q, c, log_density, n_q // 4 or 1, rng).mean() for c in ELBO_SCALES]
        c = ELBO_SCALES[int(np.nanargmax(pilot))]
        terms = _elbo_terms(q, c, log_density, n_q, rng)
        elbos.append((terms.mean(), terms.std() / math.sqrt(n_q)))
        scales.append(c)
    (elbo, elbo_se), (eubo, eubo_se) = _average_halves(elbos), _average_halves(eubos)
    finite = all(np.isfinite(v) for v in (elbo, elbo_se, eubo, eubo_se))
    return EvidenceBounds(
        elbo, elbo_se, eubo, eubo_se,
        converged=finite,
        note="" if finite else "a bound is not finite (q puts mass where the model has none)",
        n_draws=chains * draws, n_q=n_q, elbo_scale=float(np.mean(scales)),
        seconds=time.perf_counter() - start,
    )  # fmt: skip


def _elbo_terms(q, c, log_density, n, rng) -> np.ndarray:
    x = q.sample(n, rng, c)
    out = log_density(x) - q.log_pdf(x, c)
    return np.where(np.isnan(out), -np.inf, out)


class _ShrunkGaussian:
    """N(m, diag(s) R diag(s)), R the draws' correlation shrunk towards I (Ledoit–Wolf); the
    covariance may be scaled by ``c`` in :meth:`log_pdf` and :meth:`sample`."""

    def __init__(self, x: np.ndarray):
        n, dim = x.shape
        self.mean = x.mean(axis=0)
        self.sd = np.maximum(x.std(axis=0), 1e-12)
        y = (x - self.mean) / self.sd  # standardised: S = yᵀy / n has unit diagonal
        gram = y @ y.T / n
        s_norm2 = float(np.sum(gram**2))  # ‖S‖²_F = ‖y yᵀ / n‖²_F
        d2 = s_norm2 - 2 * float(np.trace(gram)) + dim  # ‖S − I‖²_F
        b2 = (float(np.sum(np.sum(y**2, axis=1) ** 2)) - n * s_norm2) / n**2
        rho = min(max(b2, 0.0) / d2, 1.0) if d2 > 0 else 1.0
        self.rho = max(rho, 1e-6)
        # R = rho I + U Uᵀ with U = sqrt((1 - rho) / n) yᵀ (D × n)
        self.u = math.sqrt((1 - self.rho) / n) * y.T
        self.dim, self.n = dim, n
        self.small = self.u.T @ self.u  # n × n

    def _core(self, c: float):
        a = c * self.rho
        inner = np.eye(self.n) * a + c * self.small  # a I_n + c UᵀU
        chol = np.linalg.cholesky(inner)
        # log det(c R) = D log a + log det(I_n + c UᵀU / a)
        logdet = self.dim * math.log(a) + 2 * np.sum(np.log(np.diag(chol))) - self.n * math.log(a)
        return a, chol, logdet

    def log_pdf(self, x: np.ndarray, c: float = 1.0) -> np.ndarray:
        from scipy.linalg import cho_solve

        a, chol, logdet = self._core(c)
        y = (x - self.mean) / self.sd
        uy = y @ self.u  # (N, n)
        # yᵀ (a I + c U Uᵀ)⁻¹ y = (|y|² − c uyᵀ (a I + c UᵀU)⁻¹ uy) / a
        quad = (np.sum(y**2, axis=1) - c * np.sum(uy * cho_solve((chol, True), uy.T).T, axis=1)) / a
        return -0.5 * (self.dim * math.log(2 * math.pi) + logdet + quad) - np.sum(np.log(self.sd))

    def sample(self, size: int, rng, c: float = 1.0) -> np.ndarray:
        e1 = rng.standard_normal((size, self.dim))
        e2 = rng.standard_normal((size, self.n))
        y = math.sqrt(c * self.rho) * e1 + math.sqrt(c) * e2 @ self.u.T
        return self.mean + self.sd * y


# ---- the nested pair: reversible (theta) vs non-reversible (theta, tau, flow_z) ------------------
def nested_bf_bounds(data, prior, samples_rev: dict, samples_nonrev: dict, *, seed: int = 0):
    """Lower and upper bounds on log BF(non-reversible : reversible) from both models' draws.

    The non-reversible model is the reversible one's parameters ``theta`` plus the cycle flow
    ``f = tau Q w`` (sites ``tau``, ``flow_z``). For any normalised ``q(tau, w | theta)`` and any
    shift ``d`` of ``theta`` (unit Jacobian), with ``p~`` each model's unnormalised posterior in
    NumPyro's unconstrained space, Jensen's inequality gives

        log BF ≥ E_{theta ~ rev posterior, (tau, w) ~ q}[
                     log p~_nr(theta + d, tau, w) − log p~_rev(theta) − log q(tau, w | theta + d)],
        log BF ≤ E_{(theta, tau, w) ~ non-rev posterior}[
                     log p~_nr(theta, tau, w) − log p~_rev(theta − d) − log q(tau, w | theta)],

    because the reversible evidence cancels against its own posterior's normalisation: only the
    flow needs an approximation. ``d`` is the difference of the two posteriors' means of theta;
    ``q`` draws ``f`` from a Gaussian whose mean is one Newton step from the posterior mean given
    theta (the likelihood is log-concave in the flow, whose logits are linear in it) and whose
    precision is the negative Hessian in ``f`` at the posterior mean, then ``tau`` from its exact
    conditional given ``f`` (the likelihood sees ``f`` only; on a grid of log tau). ``d`` and
    ``q`` come from one half of each chain and the bounds average the other half's draws, and
    then the other way round (the two halves' bounds are averaged); the Monte Carlo error of each
    half comes from the effective sample size of its terms.

    Bounds in expectation, each with its Monte Carlo se: never an estimate of log BF.

    Parameters
    ----------
    data : ModelData
    prior : FieldPrior
        The prior both fits were made with.
    samples_rev, samples_nonrev : dict
        Site -> (chains, draws, ...) posterior draws of the reversible and non-reversible models.
    seed : int
        Seed of the draws of ``q``.

    Returns
    -------
    BayesFactorBounds
        ``lower ≤ log Z_nonrev − log Z_rev ≤ upper``; ``converged=False`` with a note when a bound
        is not finite or the flow's Hessian is not positive definite.
    """
    import jax

    from ..models import nonreversible, reversible
    from ._evidence import _flat_model

    start = time.perf_counter()
    nan = float("nan")
    kwargs = {"data": data, "prior": prior}
    with x64():
        key = jax.random.PRNGKey(seed)
        _, _, unravel_r, lp_r, x0_r = _flat_model(reversible, kwargs, key)
        trace_n, _, _, lp_n, x0_n = _flat_model(nonreversible, kwargs, key)
        layout = _Layout(unravel_r, len(x0_r), len(x0_n))
        z_r, _ = unconstrained_draws(reversible, kwargs, samples_rev, seed=seed)
        z_n, _ = unconstrained_draws(nonreversible, kwargs, samples_nonrev, seed=seed)
        chains, draws = z_n.shape[:2]
        half = min(draws, z_r.shape[1]) // 2
        if half < 10 or z_r.shape[0] != chains:
            why = "too few posterior draws (or unequal chains) for the bounds"
            return BayesFactorBounds(nan, nan, nan, nan, False, why)
        log_tau_prior = _log_tau_prior(prior)
        density = _Densities(lp_r, lp_n, layout, trace_n["flow_z"]["fn"])
        rng = np.random.default_rng(seed)
        halves = (slice(0, half), slice(half, 2 * half))
        lows, highs = [], []
        for fit, held in (halves, halves[::-1]):
            q = _FlowProposal(z_r[:, fit], z_n[:, fit], layout, density, log_tau_prior)
            if q.note:
                return BayesFactorBounds(nan, nan, nan, nan, False, q.note)
            lows.append(_mean_se(q.lower_terms(z_r[:, held], rng), chains))
            highs.append(_mean_se(q.upper_terms(z_n[:, held]), chains))
    (lower, lower_se), (upper, upper_se) = _average_halves(lows), _average_halves(highs)
    finite = all(np.isfinite(v) for v in (lower, lower_se, upper, upper_se))
    return BayesFactorBounds(
        lower, lower_se, upper, upper_se, converged=finite,
        note="" if finite else "a bound is not finite (the flow's proposal misses the posterior)",
        seconds=time.perf_counter() - start,
    )  # fmt: skip


def _average_halves(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """(mean, se) of the two halves' bounds: an average of bounds is a bound; the halves share
    no draw (only the chains), so their errors add as independent."""
    (m1, s1), (m2, s2) = pairs
    return float((m1 + m2) / 2), float(math.hypot(s1, s2) / 2)


def _mean_se(terms: np.ndarray, chains: int) -> tuple[float, float]:
    """Mean of MCMC-correlated terms and its error from their ESS (NaN when one is not finite)."""
    from numpyro.diagnostics import effective_sample_size

    terms = terms.reshape(chains, -1)
    if not np.all(np.isfinite(terms)):
        return float("nan"), float("nan")
    ess = float(effective_sample_size(terms)) if chains > 1 else float(terms.size)
    return float(terms.mean()), float(terms.std() / math.sqrt(max(min(ess, terms.size), 1.0)))


def _log_tau_prior(prior, xp=np):
    """log p(tau) up to a constant, as a function of log tau (HalfNormal or HalfCauchy); ``xp``
    the array module (``jax.numpy`` for a differentiable one)."""
    c = prior.cycle_scale
    if prior.cycle_tail == "normal":
        return lambda s: -xp.exp(2 * s) / (2 * c * c)
    return lambda s: -xp.log1p(xp.exp(2 * s) / (c * c))


class _Layout:
    """Where theta, log tau and flow_z sit in the non-reversible model's flat vector (ravelled in
    the sites' sorted order, the reversible model's sites in theirs)."""

    def __init__(self, unravel_r, dim_r: int, dim_n: int):
        from jax.flatten_util import ravel_pytree

        marks = unravel_r(np.arange(dim_r, dtype=float))
        marks = {k: np.asarray(v, dtype=float) for k, v in marks.items()}
        n_flow = dim_n - dim_r - 1
        marks["tau"] = np.asarray(-1.0)
        marks["flow_z"] = -2.0 - np.arange(n_flow, dtype=float)
        idx = np.asarray(ravel_pytree(marks)[0])
        self.theta_at = np.where(idx >= 0)[0]
        self.theta_from = idx[idx >= 0].astype(int)
        self.tau_at = int(np.where(idx == -1)[0][0])
        self.flow_at = np.where(idx <= -2)[0][np.argsort(-idx[idx <= -2])]
        self.dim_r, self.dim_n, self.n_flow = dim_r, dim_n, n_flow

    def join(self, theta, log_tau, w):
        x = np.empty((len(theta), self.dim_n))
        x[:, self.theta_at] = theta[:, self.theta_from]
        x[:, self.tau_at] = log_tau
        x[:, self.flow_at] = w
        return x

    def split(self, x):
        theta = np.empty((len(x), self.dim_r))
        theta[:, self.theta_from] = x[:, self.theta_at]
        return theta, x[:, self.tau_at], x[:, self.flow_at]


class _Densities:
    """Vectorised log densities (and the flow gradient) of the two models on flat vectors."""

    def __init__(self, lp_r, lp_n, layout: _Layout, flow_prior):
        import jax
        import jax.numpy as jnp

        self.layout = layout
        # the quadratic form of flow_z's centred Gaussian prior: |w|² in the orthonormal basis,
        # |Z w|² in the chord coordinates (``models._common.CycleSpaceNormal``), read from the
        # prior itself so no consumer assumes one of them
        zero = jnp.zeros(flow_prior.event_shape)
        self.flow_r2 = lambda f: 2 * (flow_prior.log_prob(zero) - flow_prior.log_prob(f))
        self._r2 = jax.jit(self.flow_r2)
        self._r = jax.jit(jax.vmap(lp_r))
        self._n = jax.jit(jax.vmap(lp_n))
        grad = jax.grad(lp_n)
        self._g = jax.jit(jax.vmap(grad))
        # Hessian-vector products at one point for a block of vectors: the point is an argument,
        # so both halves' Hessians share one compilation
        self._hvp = jax.jit(jax.vmap(lambda x, v: jax.jvp(grad, (x,), (v,))[1], in_axes=(None, 0)))

    @staticmethod
    def _batched(f, x, size=512):
        return np.concatenate([np.asarray(f(x[i : i + size]), dtype=float)
                               for i in range(0, len(x), size)])  # fmt: skip

    def rev(self, theta):
        return self._batched(self._r, theta)

    def nonrev(self, x):
        return self._batched(self._n, x)

    def flow_norm2(self, f):
        """``f' S^-1 f`` for flows ``f = tau w`` (n, n_flow), ``S`` flow_z's prior covariance."""
        return self._batched(self._r2, f)

    def flow_grad(self, x):
        return self._batched(self._g, x)[:, self.layout.flow_at]

    def flow_rows(self, x):
        """The Hessian of log p~_nr at the flat vector ``x``, its flow_z rows, every column
        (n_flow × dim_n; HVPs, in blocks)."""
        at = self.layout.flow_at
        basis = np.zeros((len(at), len(x)))
        basis[np.arange(len(at)), at] = 1.0
        return np.concatenate([np.asarray(self._hvp(x, basis[i : i + 256]))
                               for i in range(0, len(at), 256)])  # fmt: skip


class _FlowProposal:
    """The shift ``d`` of theta and ``q(log tau, w | theta)``, fitted to one half of the draws."""

    CELLS, WIDTH = 2000, 25.0  # the grid of log tau given f: cells, half-width in sd units

    def __init__(self, z_r, z_n, layout: _Layout, density: _Densities, log_tau_prior):
        self.layout, self.density, self.log_tau_prior = layout, density, log_tau_prior
        theta_n, log_tau, w = layout.split(z_n.reshape(-1, layout.dim_n))
        self.shift = theta_n.mean(axis=0) - z_r.reshape(-1, layout.dim_r).mean(axis=0)
        f = np.exp(log_tau)[:, None] * w
        self.f_mean, tau_bar = f.mean(axis=0), float(np.exp(log_tau).mean())
        self.at = (theta_n.mean(axis=0), math.log(tau_bar), self.f_mean / tau_bar)
        self.tau_bar = tau_bar
        # precision of f: the negative Hessian in w at the mean point over tau² (w = f / tau
        # there); its rows are kept whole (nested SMC's reference reads their theta columns)
        self.hess_rows = density.flow_rows(
            layout.join(self.at[0][None], self.at[1], self.at[2][None])[0]
        )
        hess = -self.hess_rows[:, layout.flow_at]
        hess = 0.5 * (hess + hess.T)
        self.note = ""
        try:
            self.chol = np.linalg.cholesky(hess / tau_bar**2)
        except np.linalg.LinAlgError:
            self.note = "the flow's Hessian at the posterior mean is not positive definite"
            return
        self.half_log_det = float(np.sum(np.log(np.diag(self.chol))))

    def _f_mean(self, theta):
        """One Newton step from the mean flow, given theta."""
        from scipy.linalg import cho_solve

        n = len(theta)
        x = self.layout.join(theta, np.full(n, self.at[1]), np.repeat(self.at[2][None], n, 0))
        grad_f = self.density.flow_grad(x) / self.tau_bar
        return self.f_mean + cho_solve((self.chol, True), grad_f.T).T

    def _log_q_f(self, f, mean):
        u = (f - mean) @ self.chol
        dim = f.shape[1]
        return self.half_log_det - 0.5 * dim * math.log(2 * math.pi) - 0.5 * np.sum(u**2, axis=1)

    def _grid(self, r2):
        """Cells of log tau given ``r2 = f' S^-1 f`` and their log probabilities (the exact
        conditional)."""
        n_flow = self.layout.n_flow
        mode = 0.5 * np.log(np.maximum(r2, 1e-300) / max(n_flow - 1, 0.5))
        sd = 1.0 / math.sqrt(2 * max(n_flow - 1, 0.5))
        lo = mode - self.WIDTH * sd
        width = 2 * self.WIDTH * sd / self.CELLS
        mid = lo[:, None] + width * (np.arange(self.CELLS) + 0.5)[None]
        # density of s = log tau given f: p(tau) N(f; 0, tau² S) tau, up to a constant
        log_d = self.log_tau_prior(mid) - (n_flow - 1) * mid - 0.5 * r2[:, None] * np.exp(-2 * mid)
        return lo, width, log_d - logsumexp(log_d, axis=1, keepdims=True)

    def _log_q(self, log_tau, w, mean):
        """log q(log tau, w | theta) = log q_f(tau w) + C log tau + log q(log tau | f)."""
        f = np.exp(log_tau)[:, None] * w
        lo, width, log_p = self._grid(self.density.flow_norm2(f))
        k = np.floor((log_tau - lo) / width).astype(int)
        inside = (k >= 0) & (k < self.CELLS)
        cell = log_p[np.arange(len(k)), np.clip(k, 0, self.CELLS - 1)] - math.log(width)
        log_s = np.where(inside, cell, -np.inf)
        return self._log_q_f(f, mean) + self.layout.n_flow * log_tau + log_s

    def lower_terms(self, z_r, rng):
        theta = z_r.reshape(-1, self.layout.dim_r)
        moved = theta + self.shift
        mean = self._f_mean(moved)
        f = mean + np.linalg.solve(self.chol.T, rng.standard_normal(mean.shape).T).T
        lo, width, log_p = self._grid(self.density.flow_norm2(f))
        cum = np.cumsum(np.exp(log_p), axis=1)
        k = (cum < rng.random(len(f))[:, None] * cum[:, -1:]).sum(axis=1)
        k = np.minimum(k, self.CELLS - 1)
        log_tau = lo + width * (k + rng.random(len(f)))
        w = f / np.exp(log_tau)[:, None]
        log_nr = self.density.nonrev(self.layout.join(moved, log_tau, w))
        return log_nr - self.density.rev(theta) - self._log_q(log_tau, w, mean)

    def upper_terms(self, z_n):
        theta, log_tau, w = self.layout.split(z_n.reshape(-1, self.layout.dim_n))
        log_nr = self.density.nonrev(z_n.reshape(-1, self.layout.dim_n))
        log_q = self._log_q(log_tau, w, self._f_mean(theta))
        return log_nr - self.density.rev(theta - self.shift) - log_q
