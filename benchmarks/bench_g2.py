"""Speed of the exact conditional G² test, as ratios to the same run's reversible MLE.

    python benchmarks/bench_g2.py            # 30 states × 200 attempts, and 645 states × 20,000
                                             # attempts (the paper's GPT-5 Nano size, sparse)

For each dataset: the MLE + chi² alone (``samples=0``, the baseline), then the conditional test
(999 tables, default 1000 steps); prints seconds, the ratio, effective tables, acceptance and the
statistic's autocorrelation time (steps).
"""

from __future__ import annotations

import time

from detailed_balance.comparison import likelihood_ratio_test
from detailed_balance.synthetic import reversible_chain, sample_counts


def main() -> None:
    cases = {
        "30 states × 200 attempts/source": sample_counts(
            reversible_chain(30, seed=1), attempts_per_source=200, seed=1
        ),
        "645 states × 20,000 attempts (discovered)": sample_counts(
            reversible_chain(645, degree=30, width=2.0, seed=1),
            design="discovered",
            total_attempts=20_000,
            seed=2,
        ),
    }
    for name, counts in cases.items():
        likelihood_ratio_test(counts, samples=0)  # imports and caches out of the timing
        start = time.perf_counter()
        likelihood_ratio_test(counts, samples=0)
        base = time.perf_counter() - start
        start = time.perf_counter()
        res = likelihood_ratio_test(counts)
        took = time.perf_counter() - start
        print(
            f"{name}: {counts.n_states} states, df {res['df']} testable of {res['df_support']}; "
            f"MLE + chi² {base:.2f} s; conditional test {took:.1f} s (×{took / base:.1f}); "
            f"{res['effective_samples']:.0f} effective of {res['samples']} tables, "
            f"acceptance {res['acceptance']:.3f}, autocorrelation "
            f"{res['autocorrelation_steps']:.0f} of {res['steps']} steps; p = {res['p_value']:.3f}"
        )


if __name__ == "__main__":
    main()
