"""Benchmark: fit time and ESS per second of NUTS, MAP and SVI against deeptime's BayesianMSM.

Synthetic reversible chains (``synthetic.reversible_chain``, ~4 neighbours per state), 200
attempts per source; for each size, every method fits the same counts. deeptime's
``BayesianMSM(reversible=True)`` gets the dense count matrix with self-replies and rejections on
the diagonal (the escape as staying put), so its stationary distribution is directly comparable
with ours, pi ∝ exp(-V) (posterior mean of pi over draws). Agreement is the total-variation
distance between the two posterior-mean stationary distributions (and to the truth).

Usage::

    python benchmarks/bench_fit.py            # 30, 300, 3000 states
    python benchmarks/bench_fit.py --quick    # 30, 100 states, fewer draws
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np


def stationary(V: np.ndarray) -> np.ndarray:
    """pi ∝ exp(-V) per draw (one support component: the synthetic graphs are connected)."""
    w = np.exp(-V + V.min(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


def tv(p, q) -> float:
    return float(0.5 * np.abs(p - q).sum())


def run_size(n: int, draws: int, warmup: int, svi_steps: int, seed: int = 0) -> list[dict]:
    from detailed_balance.inference import fit, fit_diagnostics, fit_draws
    from detailed_balance.synthetic import reversible_chain, sample_counts

    chain = reversible_chain(n, seed=seed)
    counts = sample_counts(chain, attempts_per_source=200, seed=seed)
    truth = stationary(chain.V[chain.index_of(counts.states)])
    rows = []
    pis = {}
    for method in ("map", "svi", "nuts"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = time.perf_counter()
            idata = fit(
                counts, method=method, draws=draws, warmup=warmup, svi_steps=svi_steps, seed=seed
            )
            seconds = time.perf_counter() - t
        d = fit_diagnostics(idata)
        V = fit_draws(idata, "V").reshape(-1, counts.n_states)
        pis[method] = stationary(V).mean(axis=0)
        ess = d.get("min_ess")
        rows.append({
            "states": n,
            "method": method,
            "seconds": round(seconds, 1),
            "sampling_seconds": d["fit_seconds"],
            "min_ess": None if ess is None else round(ess),
            "ess_per_s": None if ess is None else round(ess / seconds, 2),
            "max_rhat": d.get("max_rhat"),
            "map_iterations": d.get("iterations"),
            "tv_to_truth": round(tv(pis[method], truth), 4),
            "warnings": len([w for w in caught if "Convergence" in w.category.__name__]),
        })  # fmt: skip
        print(rows[-1], flush=True)
    try:
        from deeptime.markov.msm import BayesianMSM
    except ImportError:
        return rows
    dense = counts.dense().astype(float)
    dense[np.arange(n), np.arange(n)] += counts.rejected
    t = time.perf_counter()
    post = BayesianMSM(n_samples=draws, reversible=True).fit(dense).fetch_model()
    seconds = time.perf_counter() - t
    keep = np.asarray(post.prior.count_model.state_symbols)
    # oracle check: with a flat prior our MAP is the reversible MLE, as is deeptime's prior MSM
    from detailed_balance.inference import FieldPrior

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat = fit(counts, method="map", prior=FieldPrior(kind="flat"))
    V_flat = fit_draws(flat, "V").reshape(-1, n)
    pi_mle = np.zeros(n)
    pi_mle[keep] = post.prior.stationary_distribution
    pi_dt = np.zeros(n)
    pi_dt[keep] = np.mean([s.stationary_distribution for s in post.samples], axis=0)
    rows.append({
        "states": n,
        "method": "deeptime BayesianMSM",
        "seconds": round(seconds, 1),
        "tv_to_truth": round(tv(pi_dt, truth), 4),
        "tv_nuts_vs_deeptime": round(tv(pis["nuts"], pi_dt), 4),
        "tv_flat_map_vs_deeptime_mle": float(f"{tv(stationary(V_flat)[0], pi_mle):.2g}"),
        "states_in_deeptime_set": int(len(keep)),
    })  # fmt: skip
    print(rows[-1], flush=True)
    return rows


def machine() -> str:
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"jax {jax.__version__}, load average {load:.1f} at start"
    )


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 and 100 states, few draws")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    sizes = args.sizes or ([30, 100] if args.quick else [30, 300, 3000])
    draws, warmup, steps = (300, 300, 3000) if args.quick else (1000, 1000, 5000)
    import detailed_balance

    detailed_balance.configure(chains=2)  # parallel chains, float64, compilation cache
    print(machine(), flush=True)
    rows = []
    for n in sizes:
        rows += run_size(n, draws, warmup, steps)
    print(
        "\n| states | method | time (s) | min ESS | ESS/s | max R-hat | TV(pi, truth) "
        "| TV vs deeptime |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['states']} | {r['method']} | {r['seconds']} | {r.get('min_ess') or '–'} | "
            f"{r.get('ess_per_s') or '–'} | {_fmt(r.get('max_rhat'))} | "
            f"{r['tv_to_truth']} | {r.get('tv_nuts_vs_deeptime', '–')} |"
        )
    for n in sizes:
        by = {r["method"]: r for r in rows if r["states"] == n}
        if "deeptime BayesianMSM" in by:
            dt = by["deeptime BayesianMSM"]["seconds"] or 0.01
            ratios = ", ".join(f"{m} {by[m]['seconds'] / dt:.0f}x" for m in ("nuts", "map", "svi"))
            print(f"{n} states, time relative to deeptime: {ratios}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
