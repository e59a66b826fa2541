"""Benchmark: the SVI guide, numpyro's AutoLowRankMultivariateNormal vs the hand-written one.

``fit(method="svi")`` uses numpyro's AutoLowRankMultivariateNormal (rank 10, Adam 0.01, 4-draw
ELBO). Until issue 11 it used a hand-written guide of the same family (copied below) that compiled
everything in one ``jit``. Both run through the same ``fit`` on the same counts, with the same
steps and draws, against a NUTS fit of the same counts as the reference: the error of each state's
posterior mean of V in NUTS posterior sds, and the ratio of posterior sds (1 is right; mean-field
and low-rank guides usually come out below 1).

Usage::

    python benchmarks/bench_svi_guide.py           # 10 and 40 states
    python benchmarks/bench_svi_guide.py --quick   # 10 states, fewer steps
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def handwritten_svi(model_fn, draws, steps, seed, progress, rank: int = 10):
    """The guide ``fit`` used before issue 11: low-rank-plus-diagonal normal over the
    unconstrained parameters, written on numpyro's potential so it compiles in one ``jit``."""
    import jax
    import jax.numpy as jnp
    import numpyro
    from jax.flatten_util import ravel_pytree
    from numpyro.handlers import seed as seeded
    from numpyro.handlers import substitute, trace
    from numpyro.infer.initialization import init_to_uniform
    from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

    # numpyro's default initial point (uniform in (-2, 2), unconstrained), as fit's SVI starts;
    # one eager trace (numpyro's initialize_model gives the same point but compiles a search for
    # a valid one: 11-15 s at 10 and 40 states, against ~1 s)
    key = jax.random.PRNGKey(seed)
    sites = trace(substitute(seeded(model_fn, key), substitute_fn=init_to_uniform)).get_trace()
    initial = {
        k: s["value"] for k, s in sites.items() if s["type"] == "sample" and not s["is_observed"]
    }
    x0, unravel = ravel_pytree(unconstrain_fn(model_fn, (), {}, initial))
    dim = x0.shape[0]
    rank = min(rank, dim)
    n_mc = 4

    def draw(params, key, n):
        loc, w, log_d = params
        k1, k2 = jax.random.split(key)
        return (
            loc
            + jax.random.normal(k1, (n, rank)) @ w.T
            + jnp.exp(log_d) * jax.random.normal(k2, (n, dim))
        )

    def neg_elbo(params, key):
        _, w, log_d = params
        energy = jax.vmap(lambda xi: potential_energy(model_fn, (), {}, unravel(xi)))(
            draw(params, key, n_mc)
        )
        inner = jnp.eye(rank) + (w.T * jnp.exp(-2 * log_d)) @ w
        half_logdet = jnp.sum(log_d) + 0.5 * jnp.linalg.slogdet(inner)[1]
        return jnp.mean(energy) - half_logdet

    opt = numpyro.optim.Adam(0.01)

    @jax.jit
    def run(params, key):
        def step(state, k):
            loss, g = jax.value_and_grad(neg_elbo)(opt.get_params(state), k)
            return opt.update(g, state), loss

        state, losses = jax.lax.scan(step, opt.init(params), jax.random.split(key, steps))
        return opt.get_params(state), losses

    start = (x0, jnp.zeros((dim, rank)) + 0.01, jnp.full(dim, -2.0))
    params, losses = run(start, jax.random.PRNGKey(seed))
    x = draw(params, jax.random.PRNGKey(seed + 1), draws)
    samples = jax.jit(jax.vmap(lambda xi: constrain_fn(model_fn, (), {}, unravel(xi))))(x)
    latent = {k: np.asarray(v)[None] for k, v in samples.items()}
    losses = np.asarray(losses)
    tail = max(len(losses) // 10, 1)
    last, before = losses[-tail:].mean(), losses[-2 * tail : -tail].mean()
    drift = float(before - last)
    extra = {
        "svi_steps": int(steps),
        "svi_guide": "hand-written",
        "final_loss": float(last),
        "loss_drift_last_tenth": drift,
        "optimizer_converged": bool(not drift > 1.0),
    }
    return latent, {}, extra


def v_draws(idata) -> np.ndarray:
    from detailed_balance.inference import fit_draws

    v = fit_draws(idata, "V")
    return v.reshape(-1, v.shape[-1])


def run(n: int, steps: int, draws: int, seed: int = 0) -> list[dict]:
    # the one internal: fit's SVI runner, swapped for the hand-written guide so that both guides
    # go through the same fit (same model evaluation, same stored draws); a public hook for
    # another guide would serve only this benchmark
    import detailed_balance.inference._fit as fit_module
    from detailed_balance.inference import fit
    from detailed_balance.synthetic import reversible_chain, sample_counts

    counts = sample_counts(reversible_chain(n, seed=seed), attempts_per_source=100, seed=seed)
    fit(counts, method="map", seed=seed)  # imports and first compilations, outside the timings
    t = time.perf_counter()
    ref = v_draws(fit(counts, draws=draws, warmup=draws, seed=seed))
    rows = [{"states": n, "guide": "NUTS (reference)", "seconds": time.perf_counter() - t}]
    mean, sd = ref.mean(0), ref.std(0)
    auto = fit_module._run_svi
    guides = (("hand-written", handwritten_svi), ("AutoLowRankMultivariateNormal", auto))
    for name, runner in guides:
        fit_module._run_svi = runner
        try:
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a loss still falling is reported in the row
                idata = fit(counts, method="svi", draws=draws, svi_steps=steps, seed=seed)
            seconds = time.perf_counter() - t
        finally:
            fit_module._run_svi = auto
        v = v_draws(idata)
        z = np.abs(v.mean(0) - mean) / sd
        rows.append({
            "states": n, "guide": name, "seconds": seconds,
            "mean_err_sd": float(np.mean(z)), "max_mean_err_sd": float(np.max(z)),
            "sd_ratio": float(np.median(v.std(0) / sd)),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 states, 2,000 steps")
    args = parser.parse_args()
    sizes, steps = ((10,), 2000) if args.quick else ((10, 40), 5000)
    print("| states | guide | time (s) | mean err / NUTS sd (avg, max) | sd / NUTS sd (median) |")
    print("|---:|---|---:|---:|---:|")
    for n in sizes:
        rows = run(n, steps, draws=1000)
        base = rows[0]["seconds"]
        for r in rows:
            acc = (
                ("–", "–")
                if "sd_ratio" not in r
                else (f"{r['mean_err_sd']:.3f}, {r['max_mean_err_sd']:.3f}", f"{r['sd_ratio']:.2f}")
            )
            time_cell = f"{r['seconds']:.1f} ({r['seconds'] / base:.2f}× NUTS)"
            row = f"| {r['states']} | {r['guide']} | {time_cell} | {acc[0]} | {acc[1]} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
