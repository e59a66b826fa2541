"""NUTS warm-up tree depth: gradients per fit and ESS, capped against numpyro's default (issue 15).

Synthetic reversible chains as in ``bench_scale.py`` (``reversible_chain(n, seed=0)``, 200
attempts per source); the reversible model as ``fit`` samples it (the summed likelihood, 2
parallel chains, 1,000 warm-up iterations, ``--draws`` per chain; float64, where ``fit``'s
trajectories are float32: the same step sizes and ESS, ``docs/readme/bench-fit.md``) with NUTS's
warm-up trees capped at each ``--depths`` (numpyro's ``max_tree_depth=(depth, 10)``; 10 is
numpyro's default, 5 ``fit``'s), for each ``--seeds``. Per run: leapfrog steps per chain in the
warm-up, in its first 100 iterations (before the first adaptation of the diagonal mass matrix)
and in the draws; min bulk ESS of log pi and max R-hat of V; then, per size and depth, the means
over seeds and the ratios against the first depth of ``--depths``: gradients per chain and ESS
per 1,000 gradients (wall time on this 2-core machine follows the gradients; it is not printed,
the first run of a size pays compilation).

    python benchmarks/bench_warmup_depth.py                       # 100 and 300 states, 4 seeds
    python benchmarks/bench_warmup_depth.py --sizes 1000 --draws 500 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np


def run(counts, depth: int, draws: int, seed: int) -> dict:
    import jax
    from bench_scale import log_pi, min_ess
    from detailed_balance.models import MODELS, FieldPrior
    from numpyro.infer import MCMC, NUTS, Predictive
    from numpyro.infer.util import constrain_fn

    from detailed_balance.inference import rhat_ess
    from detailed_balance.modeldata import build_model_data

    model = MODELS["reversible"]
    data = build_model_data(counts)

    def summed():  # what fit's NUTS runs (pointwise=False)
        return model(data, prior=FieldPrior(), pointwise=False)

    start = time.perf_counter()
    mcmc = MCMC(
        NUTS(summed, target_accept_prob=0.8, max_tree_depth=(depth, 10)),
        num_warmup=1000, num_samples=draws, num_chains=2, chain_method="parallel",
        progress_bar=False,
        postprocess_fn=lambda z: constrain_fn(summed, (), {}, z, return_deterministic=False),
    )  # fmt: skip
    mcmc.warmup(jax.random.PRNGKey(seed), collect_warmup=True, extra_fields=("num_steps",))
    warm = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["num_steps"])
    mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("num_steps",))
    seconds = time.perf_counter() - start
    steps = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["num_steps"])
    latent = mcmc.get_samples(group_by_chain=True)
    flat = {k: np.asarray(v).reshape(-1, *v.shape[2:]) for k, v in latent.items()}
    V = Predictive(lambda: model(data, prior=FieldPrior()), flat, return_sites=["V"])(
        jax.random.PRNGKey(0)
    )["V"]
    V = np.asarray(V).reshape(2, draws, -1)
    rhat, _ = rhat_ess({"V": V})
    return {
        "warmup_steps": float(warm.sum(1).mean()),
        "first_100": float(warm[:, :100].sum(1).mean()),
        "draw_steps": float(steps.sum(1).mean()),
        "ess_log_pi": min_ess(log_pi(V)),  # bench_scale.py's quantity
        "max_rhat": float(np.nanmax(rhat["V"])),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--depths", type=int, nargs="+", default=[10, 5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--draws", type=int, default=1000, help="per chain")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(__file__))  # bench_scale.py's log pi and ESS

    import detailed_balance

    detailed_balance.configure(cache=False)
    from detailed_balance.synthetic import reversible_chain, sample_counts

    for n in args.sizes:
        counts = sample_counts(reversible_chain(n, seed=0), attempts_per_source=200, seed=0)
        means = {}
        for depth in args.depths:
            rows = []
            for seed in args.seeds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row = run(counts, depth, args.draws, seed)
                rows.append(row)
                print(f"{n} states, warm-up depth {depth}, seed {seed}: "
                      f"warm-up {row['warmup_steps']:.0f} steps/chain (first 100 iterations "
                      f"{row['first_100']:.0f}), draws {row['draw_steps']:.0f}; min ESS log pi "
                      f"{row['ess_log_pi']:.0f}, max R-hat {row['max_rhat']:.3f}, "
                      f"{row['seconds']:.1f} s", flush=True)  # fmt: skip
            means[depth] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        base = means[args.depths[0]]
        print(f"\n{n} states, {args.draws} draws per chain, means over seeds {args.seeds}:")
        print("| warm-up depth | gradients/chain | warm-up | first 100 | min ESS log pi | "
              "ESS per 1,000 gradients | vs depth " f"{args.depths[0]} |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for depth, m in means.items():
            grads = m["warmup_steps"] + m["draw_steps"]
            per = 1000 * m["ess_log_pi"] / grads
            base_per = 1000 * base["ess_log_pi"] / (base["warmup_steps"] + base["draw_steps"])
            print(f"| {depth} | {grads:,.0f} | {m['warmup_steps']:,.0f} | {m['first_100']:,.0f} "
                  f"| {m['ess_log_pi']:.0f} | {per:.2f} | {per / base_per:.2f}× |")  # fmt: skip
        print(flush=True)


if __name__ == "__main__":
    main()
