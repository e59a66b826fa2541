"""MCLMC (microcanonical Langevin Monte Carlo, BlackJAX) on a bound NumPyro model."""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import FitError

DRAW_SPACING = 4  # momentum decoherence lengths L between kept draws (see ``thin``)


def default_warmup(n_states: int) -> int:
    """MCLMC's tuning steps per chain when ``fit`` is not told: max(2,000, states).

    Measured with ``benchmarks/bench_scale.py`` (docs/readme/bench-scale.md): at 3,000 states
    2,000 tuning steps left R-hat 1.017 after 2,000 draws, 3,000 gave 1.006-1.010; 2,000 met the
    rule at 100 and 300 states. NUTS's warm-up (1,000) does not grow with size.
    """
    return max(2000, int(n_states))


def _flat_logdensity(model_fn, keys):
    """numpyro's initial points (one per key, unconstrained, flattened) and the log density.

    numpyro's ``initialize_model`` would do the same but took 15 s at 300 states (it compiles a
    search for a valid start); the default start, uniform in (-2, 2), is valid for these models.
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

    from ._samplers import _initial_trace

    def start(key):
        tr = _initial_trace(model_fn, key)
        params = {
            k: v["value"] for k, v in tr.items() if v["type"] == "sample" and not v["is_observed"]
        }
        return unconstrain_fn(model_fn, (), {}, params)

    shapes = jax.eval_shape(start, keys[0])
    unravel = ravel_pytree(jax.tree.map(lambda v: jnp.zeros(v.shape, v.dtype), shapes))[1]
    x0 = jax.jit(jax.vmap(lambda k: ravel_pytree(start(k))[0]))(keys)

    def logdensity(x):
        return -potential_energy(model_fn, (), {}, unravel(x))

    def constrain(x):
        return constrain_fn(model_fn, (), {}, unravel(x))

    return x0, logdensity, constrain


def run_mclmc(
    model_fn: Callable[[], object],
    draws: int,
    warmup: int,
    chains: int,
    seed: int,
    thin: int | None = None,
    desired_energy_var: float = 1e-4,
) -> tuple[dict, dict, dict]:
    """Unadjusted MCLMC with BlackJAX's tuning of L, step size and a diagonal preconditioner.

    Each chain is tuned on its own (``blackjax.mclmc_find_L_and_step_size``: ``warmup``
    integrator steps in all), then runs ``draws * thin`` steps, keeping every ``thin``-th.
    Chains run in parallel when JAX has a device per chain.

    Parameters
    ----------
    model_fn : callable
        A NumPyro model taking no arguments.
    draws, warmup, chains, seed : int
        Kept draws per chain, tuning steps per chain, chains, seed.
    thin : int, optional
        Integrator steps per kept draw; default ``ceil(4 L / step_size)``: a draw every four
        momentum decoherence lengths. The autocorrelation time of V was ~10–20 such lengths
        at 300–3,000 states, so finer thinning stores (and evaluates) more draws for little
        more ESS: at 3,000 states, evaluating 6,000 stored draws took longer than sampling.
    desired_energy_var : float
        Target variance of the energy error per step and dimension; the bias of the
        unadjusted sampler grows with it. 1e-4, a fifth of BlackJAX's default: at 3,000 states
        BlackJAX's 5e-4 tuned steps that ran at 15–50× the target in the σ_u funnel, and the
        posterior mean of σ_u moved by 5–10 Monte Carlo errors between runs; at 1e-4 the error
        stayed at 7e-6 (99th percentile 9e-6). At 300–1,000 states the chains' shared smallest
        step ran at 7e-5 either way.

    Returns
    -------
    latent, stats, extra
        As :func:`run_nuts`: site -> ``(chains, draws, ...)`` draws; per-draw ``lp`` and
        ``energy_error`` (mean square energy change per step and dimension over the
        ``thin`` steps); the tuned ``L``, ``step_size``, ``thin`` and gradient counts.
    """
    try:
        import blackjax
    except ImportError as err:  # a declared dependency, but only this method needs it
        raise FitError("method='mclmc' needs BlackJAX: pip install 'blackjax>=1.7.1,<1.8'") from err

    keys = jax.random.split(jax.random.PRNGKey(seed), 2 * chains)
    x0, logdensity, constrain = _flat_logdensity(model_fn, keys[:chains])
    dim = x0.shape[1]
    kernel = blackjax.mcmc.mclmc.build_kernel(desired_energy_var=desired_energy_var)
    parallel = 1 < chains <= jax.local_device_count()
    # one compiled program per stage either way (an un-jitted vmap dispatches BlackJAX's tuning
    # op by op: 125 s instead of a few at 30 states)
    batch = jax.pmap if parallel else (lambda f: jax.jit(jax.vmap(f)))

    def tune(x, key):
        k_init, k_tune = jax.random.split(key)
        state = blackjax.mcmc.mclmc.init(x, logdensity, k_init)
        # fractions of ``warmup``: step size (no preconditioner), then step size and the
        # diagonal (+ a third for re-tuning the step size), then L from the autocorrelation
        state, params, steps = blackjax.mclmc_find_L_and_step_size(
            kernel, warmup, state, k_tune, logdensity_fn=logdensity,
            frac_tune1=0.3, frac_tune2=0.3, frac_tune3=0.3,
            desired_energy_var=desired_energy_var, diagonal_preconditioning=True,
        )  # fmt: skip
        return state, params, steps

    run_keys = keys[chains:]
    start = time.perf_counter()
    states, params, steps = batch(tune)(x0, jax.vmap(lambda k: jax.random.split(k)[0])(run_keys))
    tuned_L, tuned_step = np.asarray(params.L), np.asarray(params.step_size)
    tuned = time.perf_counter()
    if not np.all(np.isfinite(tuned_step) & (tuned_step > 0)):
        raise FitError(f"MCLMC tuning failed (step sizes {tuned_step.tolist()}): use NUTS")
    # the chains share one tuning: the smallest step (a chain tuned away from the narrow end of
    # the sigma_u funnel tuned a step 2x too large for it: energy error 15x the target at 3,000
    # states), the median L (a length) and the mean of the diagonal variance estimates
    step, L = float(tuned_step.min()), float(np.median(tuned_L))
    mass = np.asarray(params.inverse_mass_matrix)
    params = params._replace(  # host arrays: pmap shards them again
        L=np.full(chains, L, dtype=mass.dtype), step_size=np.full(chains, step, dtype=mass.dtype),
        inverse_mass_matrix=np.broadcast_to(mass.mean(axis=0), mass.shape).copy(),
    )  # fmt: skip
    thin = thin or max(1, int(np.ceil(DRAW_SPACING * L / step)))

    def sample(state, p, key):
        def one(s, k):
            s, info = kernel(k, s, logdensity, p.inverse_mass_matrix, p.L, p.step_size)
            return s, info.energy_change

        def kept(s, k):
            s, de = jax.lax.scan(one, s, jax.random.split(k, thin))
            return s, (constrain(s.position), s.logdensity, jnp.mean(de**2) / dim)

        _, out = jax.lax.scan(kept, state, jax.random.split(key, draws))
        return out

    keys_s = jax.vmap(lambda k: jax.random.split(k)[1])(run_keys)
    latent, lp, energy = batch(sample)(states, params, keys_s)
    latent = {k: np.asarray(v) for k, v in latent.items()}
    sampled = time.perf_counter()
    stats = {
        "lp": np.asarray(lp, dtype=np.float64),
        "energy_error": np.asarray(energy, dtype=np.float64),
    }
    # BlackJAX counts its tuning's integrator steps (the same in every chain): step size; step
    # size and diagonal, plus a third of that to re-tune the step; L
    tuning = int(np.max(steps))
    # isokinetic McLachlan: two gradient evaluations per integrator step
    extra = {
        "chain_method": "parallel" if parallel else "vectorized",
        "L": L,
        "step_size": step,
        "tuned_L": tuned_L.tolist(),
        "tuned_step_size": tuned_step.tolist(),
        "thin": int(thin),
        "tuning_steps": tuning,
        "gradients_per_chain": int(2 * (tuning + draws * thin)),
        "desired_energy_var": float(desired_energy_var),
        "tuning_seconds": round(tuned - start, 2),
        "sampling_seconds": round(sampled - tuned, 2),
        "energy_error_mean": float(np.mean(stats["energy_error"])),
        "energy_error_per_chain": np.mean(stats["energy_error"], axis=1).tolist(),
    }
    return latent, stats, extra
