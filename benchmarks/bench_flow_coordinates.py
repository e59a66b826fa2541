"""NUTS on the non-reversible model in its two coordinates, same counts, same run.

Below ``graph.MAX_FLOW_BASIS_ENTRIES`` the flow is ``tau Q w`` with a dense orthonormal basis
``Q`` of the cycle space; beyond it, ``tau Z v`` in the sparse fundamental-cycle coordinates
(``models/_common.py: cycle_flow``). Both are the same model; this prints what the coordinates
cost NUTS: time, min bulk ESS of log pi and of the cycle affinities, step size and leapfrog
steps per draw, and the sparse/dense ratio of ESS/s.

    python benchmarks/bench_flow_coordinates.py --states 300 1000
    python benchmarks/bench_flow_coordinates.py --product --states 300 1000 3000

``--product`` times only the flow's product and its gradient, 64 particles at once in float64
(what the evidence estimators evaluate): ``Q w`` against ``Z v`` by the forest's gathers.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from bench_scale import log_pi, min_ess


def one_fit(counts, draws: int, sparse: bool) -> dict:
    from detailed_balance import _arviz, graph
    from detailed_balance.inference import fit

    saved = graph.MAX_FLOW_BASIS_ENTRIES
    graph.MAX_FLOW_BASIS_ENTRIES = 0 if sparse else saved
    try:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = fit(counts, "nonreversible", draws=draws, warmup=draws, seed=0)
        seconds = time.perf_counter() - start
    finally:
        graph.MAX_FLOW_BASIS_ENTRIES = saved
    post, stats = _arviz.group(idata, "posterior"), _arviz.group(idata, "sample_stats")
    ess = min_ess(log_pi(np.asarray(post["V"].values)))
    return {
        "coordinates": "sparse Z v" if sparse else "dense Q w",
        "seconds": round(seconds, 1),
        "ess_log_pi": round(ess, 1),
        "ess_affinity": round(min_ess(np.asarray(post["cycle_affinity"].values)), 1),
        "step_size": round(float(np.mean(stats["step_size"].values)), 4),
        "steps_per_draw": round(float(np.mean(stats["n_steps"].values)), 1),
        "ess_per_s": ess / seconds,
    }


def product_ms(space, dense: bool, particles: int = 64, repeats: int = 20) -> float:
    """ms per value-and-gradient of sum(sin(flow)) over ``particles`` coordinate vectors."""
    import jax
    import jax.numpy as jnp

    # the one internal: this times the model's own product, which nothing public exposes
    from detailed_balance.models._common import edge_flow

    from detailed_balance.runtime import x64

    with x64():
        if dense:
            q = jnp.asarray(space.flow_basis())
            flow = lambda x: x @ q.T  # noqa: E731
        else:
            flow = lambda x: edge_flow(x, space)  # noqa: E731
        step = jax.jit(jax.vmap(jax.value_and_grad(lambda x: jnp.sum(jnp.sin(flow(x))))))
        x = jnp.asarray(np.random.default_rng(0).normal(size=(particles, space.n_cycles)))
        jax.block_until_ready(step(x))
        start = time.perf_counter()
        for _ in range(repeats):
            out = step(x)
        jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--states", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--draws", type=int, default=500, help="draws and warm-up per chain")
    parser.add_argument("--product", action="store_true",
                        help="time only the flow's product and gradient (64 particles)")
    args = parser.parse_args()

    from detailed_balance.inference import fit
    from detailed_balance.modeldata import build_model_data
    from detailed_balance.synthetic import reversible_chain, sample_counts

    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    if args.product:
        for n in args.states:
            counts = sample_counts(reversible_chain(n, seed=0), attempts_per_source=200, seed=0)
            space = build_model_data(counts).cycles
            sparse = product_ms(space, dense=False)
            dense = product_ms(space, dense=True) if space.dense_basis_fits else float("nan")
            print(f"{n} states ({space.n_edges} edges, {space.n_cycles} cycles): Q w {dense:.2f} "
                  f"ms, Z v by gathers {sparse:.2f} ms per value and gradient of 64 particles, "
                  f"{dense / sparse:.1f}x")
        return
    warm = sample_counts(reversible_chain(6, seed=0), attempts_per_source=20, seed=0)
    with warnings.catch_warnings():  # the process's first JAX work, not timed
        warnings.simplefilter("ignore")
        fit(warm, "nonreversible", draws=50, warmup=50)
    for n in args.states:
        counts = sample_counts(reversible_chain(n, seed=0), attempts_per_source=200, seed=0)
        space = build_model_data(counts).cycles
        print(f"{n} states: {space.n_edges} edges, {space.n_cycles} cycles, "
              f"{len(space.edge)} non-zeros in Z, {args.draws} + {args.draws} draws x 2 chains")
        rows = [one_fit(counts, args.draws, sparse) for sparse in (False, True)]
        dense_rate = rows[0]["ess_per_s"]
        for row in rows:
            print("  ", row, f"ESS/s vs dense {row.pop('ess_per_s') / dense_rate:.2f}x")

if __name__ == "__main__":
    main()
