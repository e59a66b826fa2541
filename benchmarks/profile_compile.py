"""Where the first NUTS fit's compilation goes, and which sampler plumbing shortens it (issue 15).

Each variant runs in a fresh process (so every compilation is cold; the persistent cache is off
unless ``--warm``): the reversible model on ``synthetic.reversible_chain(n, seed=0)``, 200 attempts
per source, float32, 2 parallel chains, ``--draws`` warm-up + draws per chain (small: the time is
then compilation). Printed per variant: the wall time of the sampler call, and JAX's own timers
summed over the run (``jax_log_compiles``): tracing, lowering to MLIR, XLA compilation.

Variants (none changes the model or the sampler's algorithm):

* ``package``: ``inference.run_nuts`` as ``fit`` calls it (numpyro ``MCMC``, ``chain_method``
  "parallel", the model's deterministic sites evaluated at every draw inside the program);
* ``latent-only``: the same, with a ``postprocess_fn`` that constrains the latent sites only
  (``fit`` recomputes V and the log-likelihood in float64 afterwards anyway);
* ``potential``: NUTS on the potential function, initial points found outside the sampler's
  program, latent sites constrained after sampling (the sampler program holds only the tree
  building and the adaptation);
* ``vectorized``: ``chain_method="vectorized"`` (one device, chains batched).

    python benchmarks/profile_compile.py --states 100 --variants package latent-only potential
    python benchmarks/profile_compile.py --states 100 --warm     # twice each, cache on (2nd run)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time

TIMER = re.compile(
    r"Finished (tracing \+ transforming|jaxpr to MLIR module conversion|XLA compilation)"
    r".*? in ([0-9.e+-]+) ?s"
)
PHASE = {"tracing + transforming": "trace", "jaxpr to MLIR module conversion": "lower",
         "XLA compilation": "compile"}  # fmt: skip


def one(variant: str, states: int, draws: int) -> dict:
    """Run one variant in this process; return its timings."""
    import detailed_balance

    detailed_balance.configure(chains=2, cache=bool(os.environ.get("PROFILE_CACHE")))
    from functools import partial

    import jax
    import numpy as np
    from detailed_balance.models import MODELS, FieldPrior

    from detailed_balance.modeldata import build_model_data
    from detailed_balance.runtime import x64
    from detailed_balance.synthetic import reversible_chain, sample_counts

    totals = {"trace": 0.0, "lower": 0.0, "compile": 0.0}

    class Timers(logging.Handler):
        def emit(self, record):
            m = TIMER.search(record.getMessage())
            if os.environ.get("PROFILE_VERBOSE") and m and float(m.group(2)) > 0.5:
                print(record.getMessage()[:160], file=sys.stderr)
            if m:
                totals[PHASE[m.group(1)]] += float(m.group(2))

    jax.config.update("jax_log_compiles", True)
    logging.getLogger("jax").addHandler(Timers())
    logging.getLogger("jax").setLevel(logging.DEBUG)
    logging.getLogger("jax").propagate = False

    counts = sample_counts(reversible_chain(states, seed=0), attempts_per_source=200, seed=0)
    data = build_model_data(counts)
    model = partial(MODELS["reversible"], data, prior=FieldPrior())
    start = time.perf_counter()
    with x64(False, all_threads=True):
        tau = _run(variant, model, draws)
    seconds = time.perf_counter() - start
    return {"variant": variant, "states": states, "draws": draws, "seconds": round(seconds, 1),
            **{k: round(v, 1) for k, v in totals.items()},
            "check": float(np.mean(tau))}  # fmt: skip


def _run(variant: str, model, draws: int):
    from functools import partial

    import jax
    from numpyro.infer import MCMC, NUTS
    from numpyro.infer.util import constrain_fn, initialize_model

    from detailed_balance.inference import run_nuts

    if variant == "package":
        latent, _, _ = run_nuts(model, draws, draws, 2, 0, False, 0.8)
        return latent["sigma_phi"]
    if variant in ("latent-only", "vectorized"):
        post = partial(_constrain, model) if variant == "latent-only" else None
        mcmc = MCMC(NUTS(model), num_warmup=draws, num_samples=draws, num_chains=2,
                    chain_method="parallel" if variant == "latent-only" else "vectorized",
                    progress_bar=False, postprocess_fn=post)  # fmt: skip
        mcmc.run(jax.random.PRNGKey(0))
        return mcmc.get_samples()["sigma_phi"]
    if variant in ("one-chain", "sequential"):
        mcmc = MCMC(NUTS(model), num_warmup=draws, num_samples=draws,
                    num_chains=1 if variant == "one-chain" else 2,
                    chain_method="sequential", progress_bar=False)  # fmt: skip
        mcmc.run(jax.random.PRNGKey(0))
        return mcmc.get_samples()["sigma_phi"]
    if variant == "potential":
        keys = jax.random.split(jax.random.PRNGKey(0), 2)
        info = initialize_model(keys, model, dynamic_args=False)
        mcmc = MCMC(NUTS(potential_fn=info.potential_fn), num_warmup=draws, num_samples=draws,
                    num_chains=2, chain_method="parallel", progress_bar=False,
                    postprocess_fn=lambda z: z)  # fmt: skip
        mcmc.run(jax.random.PRNGKey(0), init_params=info.param_info.z)
        z = mcmc.get_samples()
        latent = jax.jit(jax.vmap(lambda p: constrain_fn(model, (), {}, p)))(z)
        return latent["sigma_phi"]
    raise SystemExit(f"unknown variant {variant!r}")


def _constrain(model, z):
    from numpyro.infer.util import constrain_fn

    return constrain_fn(model, (), {}, z, return_deterministic=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--states", type=int, default=100)
    ap.add_argument("--draws", type=int, default=20, help="warm-up and draws per chain")
    ap.add_argument("--variants", nargs="+",
                    default=["package", "latent-only", "potential", "vectorized"])  # fmt: skip
    ap.add_argument("--warm", action="store_true", help="cache on: run each twice, report both")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.states, args.draws)), flush=True)
        return
    rows = []
    for variant in args.variants:
        env = dict(os.environ)
        runs = 1
        if args.warm:
            env["PROFILE_CACHE"] = "1"
            env["DETAILED_BALANCE_JAX_CACHE"] = tempfile.mkdtemp(prefix="profile-compile-")
            runs = 2
        for run in range(runs):
            out = subprocess.run(
                [sys.executable, __file__, "--one", variant, "--states", str(args.states),
                 "--draws", str(args.draws)],
                capture_output=True, text=True, env=env, check=False,
            )  # fmt: skip
            if out.returncode:
                print(f"{variant}: failed\n{out.stderr[-2000:]}")
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["run"] = run + 1
            print(row, flush=True)
            rows.append(row)
    print("\n| variant | run | states | draws/chain | seconds | tracing s | lowering s | XLA s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['run']} | {r['states']} | {r['draws']} | {r['seconds']} | "
              f"{r['trace']} | {r['lower']} | {r['compile']} |")  # fmt: skip


if __name__ == "__main__":
    main()
