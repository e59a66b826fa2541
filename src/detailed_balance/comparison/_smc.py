"""Adaptive tempered SMC from a Laplace reference (``laplace-smc``): the log evidence of any
model without posterior draws, at thousands of parameters, with the spread of independent runs
as its error. Its tempering loop, :func:`temper`, takes any reference (how to draw particles at
β = 0, its log density) and any target: every SMC estimator of the package runs it."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm
from scipy.stats import t as student_t

from ..runtime import x64
from ._draws_reference import draws_reference
from ._evidence import Evidence
from ._tempering import (
    Laplace,
    adapt_step,
    first_step,
    hmc_moves,
    laplace_reference,
    next_beta,
    tempered,
)

SMC_SPREAD_MAX = 4.0  # refuse when the runs spread this many times the error each run reports
SMC_ESS_MIN = 0.05  # refuse when a step of a run keeps fewer particles than this fraction


def smc_evidence(
    model,
    model_kwargs: dict,
    *,
    particles: int = 256,
    runs: int = 4,
    leapfrog: int = 10,
    ess: float = 0.8,
    move: float = 1.0,
    max_moves: int = 30,
    max_temperatures: int = 400,
    seed: int = 0,
    reference: str | dict = "laplace",
) -> Evidence:
    """Log evidence of any NumPyro model by adaptive tempered SMC from its Laplace fit (or from
    a Gaussian of its posterior draws: ``reference``).

    The reference ``q`` is the Laplace approximation in NumPyro's unconstrained space (the mode
    of prior × likelihood × Jacobian, the negative Hessian there as precision). Particles drawn
    from it follow the path ``q^(1-β) p^β`` to the unnormalised posterior ``p``: at each step β
    rises as far as keeps the ESS of the incremental weights ``(p/q)^Δβ`` at ``ess`` × particles,
    log Z gains the log mean incremental weight, the particles are resampled (systematic) and
    moved by HMC at the new temperature. The HMC mass matrix is the inverse of the (pilot's)
    particles' per-coordinate variance, so coordinates whose posterior is wider or skewed against
    the Laplace fit (log-Gamma coordinates: variance trigamma(a), not 1/a) move at their own
    scale.
    The gradient of ``log q`` is a Hessian–vector product at the mode: each move costs a few
    gradients of the model, not a dense D × D product.

    A pilot run chooses the schedule (each β), the mass matrix and step size at each
    temperature, and the number of moves (until the particles' mean squared jump per coordinate,
    in units of their variance, reaches ``move``; 2 is an independent draw); it is not used in
    the estimate. The ``runs`` independent runs then follow that plan, so their kernels do not
    depend on their own particles (measured: a mass matrix from the run's own particles biased
    log Z *up* by 1–3 nats at 1,470 dimensions) and each gives an unbiased estimate of Z. The
    reported log Z is the log of their mean; its error the larger of the runs' spread
    (sd / √runs, times t(runs − 1) / normal at 97.5 %: a spread of 4 runs is itself uncertain)
    and their own error (the variance of the incremental weights summed over
    temperatures, as if the particles at each step were independent; / √runs).

    Refused (``converged=False``, a note) when the runs spread more than ``SMC_SPREAD_MAX``
    times their own error (they did not sample the same distribution), when a step of a run
    keeps fewer than ``SMC_ESS_MIN`` × particles (the pilot's schedule does not fit it), when the
    moves stall (acceptance < 0.1, or under half the jump target at most temperatures), or when the
    pilot needs more than ``max_temperatures`` steps. Not caught by these checks: a bias shared
    by all runs when the moves are too few for the particles to follow the tempered target
    (measured on 1,470 independent log-Gamma coordinates, exact log Z 0: −0.46 ± 0.15 nats with
    ``ess=0.5``, −0.11 ± 0.14 at the default 0.8; docs/readme/bench-evidence.md).

    Parameters
    ----------
    model, model_kwargs : the NumPyro model and its keyword arguments.
    particles : particles per run (vectorised).
    runs : independent runs (their spread is the error; at least 2).
    leapfrog : leapfrog steps per HMC move.
    ess : ESS fraction of the incremental weights that sets each temperature step.
    move : mean squared jump per coordinate, over the particles' variance, that ends the moves.
    max_moves : HMC moves per temperature at most.
    max_temperatures : refuse beyond this many temperature steps.
    seed : random seed.
    reference : ``"laplace"`` (the default, above), or posterior draws of the model (constrained,
        site -> (chains, draws, ...), e.g. ``inference.latent_draws(idata)``): then ``q`` is the
        Gaussian of their mean and shrunk covariance, its top principal components plus a
        diagonal (``_draws_reference``: O(D k) per particle, no size limit), and the method
        ``draws-smc``. Any ``q`` gives the same Z in expectation; on the hierarchical models
        the draws' is far closer to the posterior than the joint mode's (100 states: 25
        temperatures, 22 s, against 1,317 s; docs/readme/bench-scale.md).

    Returns
    -------
    Evidence with ``method="laplace-smc"`` (or ``"draws-smc"``), ``n_draws`` = runs × particles.

    Examples
    --------
    A Gamma(2, 1) prior and Poisson counts 3, 5, 4: log Z = lnΓ(14) − 14 ln 4 − ln(3! 5! 4!).

    >>> import numpy as np, numpyro, numpyro.distributions as dist
    >>> def model():
    ...     lam = numpyro.sample("lam", dist.Gamma(2.0, 1.0))
    ...     numpyro.sample("y", dist.Poisson(lam), obs=np.array([3, 5, 4]))
    >>> ev = smc_evidence(model, {}, particles=128)
    >>> ev.converged, round(ev.log_z, 1)  # exact: -6.61
    (True, -6.6)
    """
    import jax

    if runs < 2:
        raise ValueError(f"runs={runs}: at least 2 independent runs are needed for the error")
    with x64():
        return _smc(
            model, model_kwargs, particles, runs, leapfrog, ess, move, max_moves,
            max_temperatures, jax.random.PRNGKey(seed), reference,
        )  # fmt: skip


def _smc(model, model_kwargs, n, runs, leapfrog, target_ess, move, max_moves, max_temps, key,
         reference="laplace"):  # fmt: skip
    import jax

    start = time.perf_counter()
    key, k_init = jax.random.split(key)
    if isinstance(reference, Mapping):  # posterior draws
        built = draws_reference(model, model_kwargs, reference, k_init)
        if isinstance(built, str):
            return Evidence(np.nan, np.nan, "draws-smc", False, built)
        return temper(*built, n, runs, leapfrog, target_ess, move, max_moves, max_temps, key,
                      "draws-smc", start)  # fmt: skip
    if reference != "laplace":  # a fit, None, ...: its type, not a repr of many lines
        got = repr(reference) if isinstance(reference, str) else type(reference).__name__
        raise ValueError(f"reference={got}: use 'laplace' or a dict of posterior draws "
                         "(inference.latent_draws(fit))")  # fmt: skip
    ref = laplace_reference(model, model_kwargs, k_init, "laplace-smc")
    if isinstance(ref, Evidence):
        return ref
    return temper(
        ref.log_p, LaplaceReference(ref), n, runs, leapfrog, target_ess, move, max_moves,
        max_temps, key, "laplace-smc", start,
    )  # fmt: skip


class LaplaceReference:
    """The Laplace fit ``N(mode, P⁻¹)`` as the reference of :func:`temper`: its draws, and its log
    density with the gradient by a Hessian-vector product at the mode (O(model) per particle,
    not O(D²))."""

    label = "the Laplace fit"

    def __init__(self, fit: Laplace):
        import jax
        import jax.numpy as jnp

        self.fit, self.dim = fit, fit.dim
        self._mode = jnp.asarray(fit.mode)
        self._const = fit.half_log_det - 0.5 * fit.dim * np.log(2 * np.pi)
        _, self._hvp = jax.linearize(jax.grad(lambda x: -fit.log_p(x)), self._mode)

    def draw(self, key, n: int) -> np.ndarray:
        """``n`` independent draws, an (n, D) array."""
        import jax
        from scipy.linalg import solve_triangular

        z = np.asarray(jax.random.normal(key, (n, self.dim)))
        return self.fit.mode + solve_triangular(self.fit.chol.T, z.T, lower=False).T

    def log_q(self, x):
        """``(log q(x), ∇ log q(x))`` at one point (JAX)."""
        import jax.numpy as jnp

        d = x - self._mode
        hd = self._hvp(d) + self.fit.shift * d
        return self._const - 0.5 * jnp.dot(d, hd), -hd

    def caveats(self) -> str:
        return self.fit.caveats()


def temper(log_p, reference, n, runs, leapfrog, target_ess, move, max_moves, max_temps, key,
           method, start=None) -> Evidence:  # fmt: skip
    """The tempering loop every SMC estimator shares: log ∫ p − log ∫ π_0 along ``π_0^(1-β) p^β``.

    ``log_p`` is the target's log density of one flat point (JAX); ``reference`` is π_0: its
    ``dim``, ``draw(key, n)`` ((n, D) particles at β = 0, exact draws of the normalised π_0),
    ``log_q(x)`` (log π_0 and its gradient at one point, JAX), ``caveats()`` (text the note
    appends) and ``label`` (what the note calls it). π_0 need not be normalised: the estimate
    is of log Z(p) − log Z(π_0), so with a normalised reference it is log Z(p). The pilot plans
    β, the mass matrix, the step size and the moves; ``runs`` independent runs follow the plan
    (:func:`smc_evidence` says how the error and the refusals are made). Returns an
    ``Evidence`` of ``method``.
    """
    import jax

    start = time.perf_counter() if start is None else start
    dim = reference.dim
    ell, log_pi = tempered(log_p, reference.log_q)
    mutate = hmc_moves(log_pi, leapfrog, 2)  # two moves per call: (particles, their ℓ, acceptance)
    ell_all = jax.jit(jax.vmap(lambda x: ell(x)[0]))

    def one_run(key, rng, plan=None):
        """One SMC run. Without ``plan`` (the pilot) it chooses each β, the HMC mass and step
        size and the number of moves from its own particles, and returns them as the plan; with
        a plan it follows it, so its kernels do not depend on its own particles."""
        key, k0 = jax.random.split(key)
        xs = reference.draw(k0, n)
        ls = np.asarray(ell_all(xs), dtype=float)
        beta, log_z, var_log_z, eps = 0.0, 0.0, 0.0, first_step(dim)
        stats = {"temps": 0, "moves": 0, "short": 0, "acc": [], "ess": 1.0}
        steps = []
        while beta < 1.0:
            t = stats["temps"]
            if plan is None:
                if t >= max_temps:
                    return None, beta, stats
                new = next_beta(np.zeros(n), ls, beta, target_ess)
            else:
                new, var, eps, n_moves = plan[t]
            inc = (new - beta) * np.where(np.isfinite(ls), ls, -np.inf)
            step = logsumexp(inc) - np.log(n)
            w = np.exp(inc - step)  # incremental weights over their mean
            log_z += step
            var_log_z += np.var(w) / n  # as if the particles were independent draws
            stats["ess"] = min(stats["ess"], 1.0 / np.mean(w**2))
            beta = new
            stats["temps"] += 1
            if beta >= 1.0:
                steps.append((1.0, None, None, 0))
                break
            idx = _systematic(rng, w / np.sum(w))
            xs, ls = xs[idx], ls[idx]
            if plan is None:
                var = np.maximum(np.var(xs, axis=0), 1e-12)
            x_start, moves, jump = xs, 0, 0.0
            while moves < (max_moves if plan is None else n_moves):
                key, k = jax.random.split(key)
                xs, ls_j, acc = (np.asarray(a) for a in mutate(k, xs, beta, eps, var))
                moves += 2
                stats["acc"].append(float(acc))
                jump = float(np.mean(np.sum((xs - x_start) ** 2 / var, axis=1))) / dim
                if plan is None:
                    eps = adapt_step(eps, acc, 1.2)
                    if jump >= move:
                        break
            ls = np.asarray(ls_j, dtype=float)
            steps.append((beta, var, eps, moves))
            stats["moves"] += moves
            stats["short"] += jump < 0.5 * move  # (a target of 2, independence, is missed by half)
        return (log_z, var_log_z, steps), beta, stats

    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    keys = jax.random.split(key, runs + 1)
    pilot, beta, _ = one_run(keys[0], rng)
    if pilot is None:
        return Evidence(
            np.nan, np.nan, method, False,
            f"tempering did not reach the posterior in {max_temps} temperatures "
            f"(stopped at β = {beta:.3g}): {reference.label} is far from it",
        )  # fmt: skip
    results = [one_run(k, rng, pilot[2])[::2] for k in keys[1:]]
    log_zs = np.array([r[0][0] for r in results])
    se_runs = np.sqrt([r[0][1] for r in results])
    log_z = float(logsumexp(log_zs) - np.log(runs))
    # the spread of a few runs is itself uncertain: scaled by t(runs - 1) / normal at 97.5 %, so
    # that ± 2 se covers as it should (× 1.62 for 4 runs)
    t_scale = student_t.ppf(0.975, runs - 1) / norm.ppf(0.975)
    spread = float(np.std(log_zs, ddof=1) / np.sqrt(runs) * t_scale)
    within = float(np.sqrt(np.mean(se_runs**2) / runs))
    se = max(spread, within)
    # the runs' own error ignores the particles' shared ancestry, so the spread exceeds it
    # (measured: 1.6-2.5x); far beyond that, the runs did not sample the same distribution
    ratio = float(np.std(log_zs, ddof=1) / np.sqrt(np.mean(se_runs**2)))
    temps = sum(r[1]["temps"] for r in results)
    moves = sum(r[1]["moves"] for r in results)
    short = sum(r[1]["short"] for r in results)
    acc = float(np.mean([a for r in results for a in r[1]["acc"]] or [1.0]))
    ess_min = min(r[1]["ess"] for r in results)
    seconds = time.perf_counter() - start
    note = (
        f"tempered SMC from {reference.label}: {dim} unconstrained dimensions, {runs} runs of {n} "
        f"particles (log Z {', '.join(f'{x:.2f}' for x in log_zs)}; own se "
        f"{', '.join(f'{x:.2f}' for x in se_runs)}), {temps / runs:.0f} temperatures and "
        f"{moves / max(temps - runs, 1):.1f} HMC moves per temperature on average, mean "
        f"acceptance {acc:.2f}, smallest ESS {ess_min:.2f} × particles, {seconds:.0f} s"
    )
    note += reference.caveats()
    problems = []
    if ratio > SMC_SPREAD_MAX:
        problems.append(
            f"the runs disagree beyond their errors (spread {ratio:.1f} × their own se)"
        )
    if ess_min < SMC_ESS_MIN:
        problems.append(
            f"the particles' ESS collapsed to {ess_min:.3f} × particles at one temperature "
            "(the pilot's schedule does not fit this run)"
        )
    if acc < 0.1:
        problems.append(f"the HMC moves stall (mean acceptance {acc:.2f})")
    if short > 0.5 * max(temps - runs, 1):
        problems.append(
            f"the particles moved less than half their jump target at {short} of "
            f"{temps - runs} temperatures"
        )
    ok = bool(np.isfinite(log_z) and np.isfinite(se) and not problems)
    if problems:
        note = "not trusted: " + "; ".join(problems) + ": raise particles or max_moves; " + note
    return Evidence(log_z, se, method, ok, note, runs * n)


def _systematic(rng: np.random.Generator, w: np.ndarray) -> np.ndarray:
    """Systematic resampling: indices of ``len(w)`` particles drawn by normalised weights."""
    n = len(w)
    cum = np.cumsum(w)
    cum[-1] = 1.0
    return np.searchsorted(cum, (rng.uniform() + np.arange(n)) / n)
