"""Annealed importance sampling from a Laplace reference (``laplace-ais``): the log evidence of
any model without posterior draws, for where bridge sampling refuses; scales to thousands of
parameters."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..runtime import x64
from ._evidence import Evidence
from ._pareto import pareto_khat
from ._tempering import adapt_step, first_step, hmc_moves, laplace_reference, next_beta, tempered

AIS_K_MAX = 0.5  # k̂ > 0.5: the weights have no finite variance, so sd(w)/√N means nothing


def annealed_evidence(
    model,
    model_kwargs: dict,
    *,
    particles: int = 128,
    runs: int = 2,
    leapfrog: int = 8,
    mutations: int = 3,
    cess: float = 0.95,
    max_temperatures: int = 500,
    seed: int = 0,
) -> Evidence:
    """Log evidence of any NumPyro model by annealed importance sampling from its Laplace fit.

    The reference is the Laplace approximation in NumPyro's unconstrained space: a Gaussian at
    the mode of the log density (prior × likelihood × Jacobian) with the inverse Hessian as
    covariance. Particles drawn from it are moved along the path ``q^(1-β) p^β`` from the
    reference ``q`` to the unnormalised posterior ``p`` (Neal 2001): each temperature step
    multiplies their weights by ``(p/q)^Δβ``, chosen so that the conditional ESS of that increment
    is ``cess`` × particles (Zhou, Johansen & Aston 2016), then moves them by HMC steps that
    leave the tempered density invariant (whitened by the Laplace covariance, so step sizes stay
    near 1 in every direction). At β = 0 this is plain importance sampling from the Laplace fit;
    the annealing fixes what the Laplace fit misses (skewed scales, hierarchical funnels).

    The particles are independent, so the error is that of a mean of iid weights,
    sd(w) / (mean(w) √N), plus the spread of ``runs`` independent runs (each with its own
    schedule): measured on the exact unconstrained evidence, one run alone under-reports its
    error when the weights have a tail it did not reach. The estimate is refused
    (``converged=False``) when the final weights' Pareto k̂ exceeds 0.5 (their variance, and
    so the se, is then not finite: measured, a run at k̂ 0.64 was 2.3 se off) or the schedule
    does not reach β = 1 in ``max_temperatures`` steps. Works for any model of the ladder (or
    any NumPyro model with proper priors): it takes the model and its keyword arguments, not
    site names.

    Parameters
    ----------
    model, model_kwargs : the NumPyro model and its keyword arguments.
    particles : particles per run, vectorised (more: a smaller se).
    runs : independent runs (their spread enters the error).
    leapfrog, mutations : HMC leapfrog steps per move, HMC moves per temperature.
    cess : conditional ESS fraction that sets each temperature step (closer to 1: more steps).
    max_temperatures : refuse beyond this many temperature steps.
    seed : random seed.

    Returns
    -------
    Evidence with ``method="laplace-ais"``; ``pareto_k`` of the final weights.
    """
    import jax

    with x64():
        return _annealed(
            model, model_kwargs, particles, runs, leapfrog, mutations, cess, max_temperatures,
            jax.random.PRNGKey(seed),
        )  # fmt: skip


def _annealed(model, model_kwargs, n, runs, leapfrog, mutations, target_cess, max_temps, key):
    import time

    import jax
    import jax.numpy as jnp
    from scipy.linalg import solve_triangular

    start = time.perf_counter()
    key, k_init = jax.random.split(key)
    ref = laplace_reference(model, model_kwargs, k_init, "laplace-ais")
    if isinstance(ref, Evidence):
        return ref
    dim = ref.dim
    # x = mode + A u with A = L^-T: u ~ N(0, I) is the Laplace reference, and HMC on u with a
    # unit mass is HMC on x with the Laplace precision as mass
    a_mat = jnp.asarray(solve_triangular(ref.chol, np.eye(dim), lower=True).T)
    mode_j = jnp.asarray(ref.mode)
    const = -ref.half_log_det + 0.5 * dim * np.log(2 * np.pi)

    def log_q(u):
        """The reference's log density at x = mode + A u (log N(u; 0, I) - log |det A|) and its
        gradient in u: p/q is then the importance weight of x."""
        return -(const + 0.5 * jnp.dot(u, u)), -u

    ell, log_pi = tempered(lambda u: ref.log_p(mode_j + a_mat @ u), log_q)
    mutate = hmc_moves(log_pi, leapfrog, mutations)
    unit_mass = jnp.ones(dim)
    ell_all = jax.jit(jax.vmap(lambda u: ell(u)[0]))

    def anneal(key):
        """One AIS run of ``n`` particles: final log weights, temperatures, acceptance rates."""
        key, k0 = jax.random.split(key)
        us = jax.random.normal(k0, (n, dim))
        ls = np.asarray(ell_all(us), dtype=float)
        log_w = np.zeros(n)
        beta, eps, temps, acc_rates = 0.0, first_step(dim), 0, []
        while beta < 1.0:
            if temps >= max_temps:
                return None, beta, acc_rates
            new = next_beta(log_w, ls, beta, target_cess)
            log_w = log_w + (new - beta) * np.where(np.isfinite(ls), ls, -np.inf)
            beta = new
            temps += 1
            if beta < 1.0:
                key, k = jax.random.split(key)
                us, ls_j, acc = mutate(k, us, beta, eps, unit_mass)
                ls, acc = np.asarray(ls_j, dtype=float), float(acc)
                acc_rates.append(acc)
                eps = adapt_step(eps, acc, 1.15)
        return log_w, temps, acc_rates

    results = []
    for k in jax.random.split(key, runs):
        log_w, temps, acc_rates = anneal(k)
        if log_w is None:
            return Evidence(
                np.nan, np.nan, "laplace-ais", False,
                f"annealing did not reach the posterior in {max_temps} temperatures "
                f"(stopped at β = {temps:.3g}): the Laplace reference is far from it",
            )  # fmt: skip
        results.append((log_w, temps, acc_rates))
    log_w = np.concatenate([r[0] for r in results])
    if not np.any(np.isfinite(log_w)):
        return Evidence(np.nan, np.nan, "laplace-ais", False, "every particle has zero weight")
    per_run = np.array([logsumexp(r[0]) - np.log(n) for r in results])
    top = np.max(log_w)
    w = np.exp(log_w - top)
    log_z = float(top + np.log(np.mean(w)))
    # the weights' own error, plus the spread between independent runs: a tail of the weights
    # that one run never reached shows up as disagreement between runs
    se_w = float(np.std(w, ddof=1) / np.mean(w) / np.sqrt(len(w)))
    spread = float(np.var(per_run, ddof=1) / runs) if runs > 1 else 0.0
    se = float(np.sqrt(se_w**2 + spread))
    ess = float(np.sum(w) ** 2 / np.sum(w**2))
    k_hat = pareto_khat(log_w)
    seconds = time.perf_counter() - start
    temps = "/".join(str(r[1]) for r in results)
    acc = np.mean([a for r in results for a in r[2]] or [1.0])
    note = (
        f"annealed IS from the Laplace fit: {dim} unconstrained dimensions, {runs} runs of {n} "
        f"particles ({', '.join(f'{x:.2f}' for x in per_run)}), {temps} temperatures, "
        f"ESS {ess:.0f}, Pareto k̂ {k_hat:.2f}, mean acceptance {acc:.2f}, {seconds:.0f} s"
    )
    ok = bool(np.isfinite(log_z) and np.isfinite(se) and k_hat <= AIS_K_MAX)
    if not ok:
        note = (
            f"annealed IS weights are too uneven to trust (Pareto k̂ {k_hat:.2f} > "
            f"{AIS_K_MAX}, ESS {ess:.0f} of {len(w)}): raise particles or cess; " + note
        )
    note += ref.caveats()
    return Evidence(log_z, se, "laplace-ais", ok, note, len(w), k_hat)
