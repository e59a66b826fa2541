"""Benchmark: the joint (universality) fits at 3 datasets × N states against one single fit.

Three datasets from one field (``universality.synthetic_joint``, beta = 1, 0.5, 2; each with its
own random support graph of mean degree 4; ``--attempts`` per source). Baseline, in the same run:
the single-dataset reversible model (``inference.fit``) on the first dataset. Printed: seconds,
the ratio to the baseline, minimum bulk ESS, ESS per second, and the 94% HDIs of beta.

    nice -n 10 python benchmarks/bench_universality.py              # 3 × 150 states
    python benchmarks/bench_universality.py --states 30 --draws 300  # quick
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--states", type=int, default=150)
    p.add_argument("--attempts", type=int, default=100, help="attempts per source")
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--models", nargs="+", default=["shared", "pooled"])
    args = p.parse_args()

    from detailed_balance.inference import fit, fit_diagnostics, hdi
    from detailed_balance.universality import build_joint_data, fit_joint, synthetic_joint

    counts, _ = synthetic_joint(
        n_states=args.states, betas=(1.0, 0.5, 2.0), attempts_per_source=args.attempts, seed=0
    )
    joint = build_joint_data(counts)
    edges = [d.n_edges for d in joint.datasets]
    print(f"3 datasets × {args.states} states, edges {edges}, {args.attempts} attempts per source")
    nuts = {"draws": args.draws, "warmup": args.warmup, "chains": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        single = fit(counts[0], "reversible", **nuts)
        base = time.perf_counter() - t
    d = fit_diagnostics(single)
    print(
        f"baseline  single reversible fit (1 dataset): {base:7.1f} s  ×1.00  "
        f"min ESS {d['min_ess']:.0f}  ESS/s {d['min_ess'] / base:.2f}"
    )
    for model in args.models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            f = fit_joint(counts, model, joint=joint, **nuts)
            sec = time.perf_counter() - t
        beta = f.posterior["beta"].reshape(-1, 3)
        lo, hi = hdi(beta)
        ivs = ", ".join(f"[{a:.2f}, {b:.2f}]" for a, b in zip(lo[1:], hi[1:], strict=True))
        g = f.diagnostics
        print(
            f"joint {model:8s} (3 datasets):            {sec:7.1f} s  ×{sec / base:.2f}  "
            f"min ESS {g['min_ess']:.0f}  ESS/s {g['min_ess'] / sec:.2f}  max R-hat "
            f"{g['max_rhat']:.3f}  divergences {g['divergences']}  beta_2, beta_3 HDI {ivs}"
        )
    print(f"(numpy {np.__version__}; timings on a shared machine are meaningful as ratios only)")


if __name__ == "__main__":
    main()
