"""Mixing and speed of the exact conditional G² test: the cycle-walk kernel against the older
Metropolis-on-fixed-cycles kernel, same run, same data.

    python benchmarks/bench_g2.py             # 40 states × 25 attempts, 200 states × 10
                                              # (conductance chain, relabelled), and 645 states ×
                                              # 20,000 attempts (the paper's GPT-5 Nano size)
    python benchmarks/bench_g2.py --quick     # the mixing table only (no default p-value runs)
    python benchmarks/bench_g2.py --case 645  # one dataset

For each dataset and kernel:

- mixing: ``conditional_test`` with 64 chains from the Besag–Clifford pivot, 4,000 (walk) or
  8,000 (cycles) steps long; τ = its ``autocorrelation_steps`` (the autocorrelation time of G²
  over the chains' second halves: the larger of an AR(1) fit and Geyer's integrated time), the
  CPU seconds per chain-step, and **effective tables per CPU second** = 1 / (τ × seconds per
  chain-step), the currency the p-value's Monte Carlo error is paid in;
- the default p-value (999 tables, default length): seconds (wall and CPU), the effective tables
  it reports, and the p-value.

A "step" is one move of one chain: for ``walk`` one cycle-walk move (a walk, then one unit
reversed around the loop it closes, when accepted); for ``cycles`` one Metropolis step on a group
of edge-disjoint fixed cycles. Compilation (walk) is done before the timings. The machine is
shared: only same-run ratios mean anything.
"""

from __future__ import annotations

import argparse
import time

from detailed_balance.comparison import conditional_test, strong_class_edges
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import (
    conductance_chain,
    relabel_counts,
    reversible_chain,
    sample_counts,
)

STEPS = {"walk": 4000, "cycles": 8000}
CHAINS = 64


def cases() -> dict:
    return {
        "40 × 25 (package chain)": sample_counts(
            reversible_chain(40, seed=1001), attempts_per_source=25, seed=1
        ),
        "200 × 10 (conductance, relabelled)": relabel_counts(
            sample_counts(conductance_chain(200, seed=1001), attempts_per_source=10, seed=1),
            seed=1001,
        ),
        "645 × 20,000 attempts (discovered)": sample_counts(
            reversible_chain(645, degree=30, width=2.0, seed=1),
            design="discovered",
            total_attempts=20_000,
            seed=2,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="mixing table only")
    parser.add_argument("--case", default="", help="only datasets whose name contains this")
    args = parser.parse_args()
    print(
        "| data | kernel | df | τ (steps) | ms per 1,000 chain-steps | effective tables "
        "per CPU s | ratio | default p: wall s | CPU s | effective of 999 | p |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, counts in cases().items():
        if args.case not in name:
            continue
        data = build_model_data(counts)
        df = strong_class_edges(data)[1]
        rate = {}
        for kernel in ("cycles", "walk"):
            conditional_test(data, samples=CHAINS, sweeps=2, kernel=kernel)  # compile, caches
            cpu = time.process_time()
            res = conditional_test(data, samples=CHAINS, sweeps=STEPS[kernel], kernel=kernel)
            cpu = time.process_time() - cpu
            tau = res["autocorrelation_steps"]
            per_step = cpu / (STEPS[kernel] * (CHAINS + 1))
            rate[kernel] = 1.0 / (tau * per_step)
            row = (f"| {name} | {kernel} | {df} | {tau:.0f} | {1e6 * per_step:.1f} | "
                   f"{rate[kernel]:.0f} | ×{rate[kernel] / rate['cycles']:.1f} |")  # fmt: skip
            if args.quick:
                print(row + " | | | |", flush=True)
                continue
            conditional_test(data, samples=999, sweeps=2, kernel=kernel)  # compile at M=999
            wall, cpu = time.perf_counter(), time.process_time()
            res = conditional_test(data, kernel=kernel)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"{row} {wall:.1f} | {cpu:.1f} | {res['effective_samples']:.0f} | "
                f"{res['p_value']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
