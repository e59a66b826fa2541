"""Pooled fits of universality replicates, per chain: where the chains sit and what the Bayes
factor says (the start from the separate model's mode, round 13).

Each ``STATES:SEED:FIT_SEED`` is one replicate of ``universality.synthetic_joint`` (three datasets,
300 attempts per source, field width 1.5; ``--kind independent``: beta = 1 and the third dataset
with its own field; ``shared``: beta = 1, 0.5, 2), fitted with ``fit_joint(..., "pooled")``
(2 chains × (300 + 300) draws, as the calibration and the slow test) in the tests' arithmetic
(``configure(chains=2)``: float64, parallel chains). Printed per replicate: beta_2, beta_3 and tau
(medians) per chain, the fit's max R-hat, and ``one_landscape_bf`` with its call.

    nice -n 10 python benchmarks/universality_start.py --kind independent 10:7:1 12:8:8 12:14:14
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=("independent", "shared"), default="independent")
    p.add_argument("replicates", nargs="+", help="STATES:SEED:FIT_SEED, e.g. 10:7:1")
    args = p.parse_args()

    import detailed_balance

    detailed_balance.configure(chains=2, cache=False)
    from detailed_balance.universality import (
        bf_call,
        fit_joint,
        one_landscape_bf,
        synthetic_joint,
    )

    shared = args.kind == "shared"
    for spec in args.replicates:
        n_states, seed, fit_seed = (int(x) for x in spec.split(":"))
        counts, _ = synthetic_joint(
            n_states=n_states, betas=(1.0, 0.5, 2.0) if shared else (1.0, 1.0, 1.0), width=1.5,
            attempts_per_source=300, independent=() if shared else (2,), seed=seed,
        )  # fmt: skip
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_joint(counts, "pooled", draws=300, warmup=300, chains=2, seed=fit_seed)
        t_fit = time.perf_counter() - t
        sd = one_landscape_bf(fit)
        t_bf = time.perf_counter() - t - t_fit
        post = fit.posterior
        chains = "; ".join(
            f"beta {np.median(post['beta'][c], 0)[1:].round(3).tolist()} "
            f"tau {np.median(post['tau'][c]):.3f}"
            for c in range(post["tau"].shape[0])
        )
        print(
            f"{args.kind} {spec} | {chains} | max R-hat {fit.diagnostics['max_rhat']:.3f} | "
            f"log BF {sd.log_bf:.2f} se {sd.se:.2f} converged {sd.converged} tail_side "
            f"{sd.tail_side} R-hat of the terms {sd.rhat:.3f} k {sd.pareto_k:.2f} call "
            f"{bf_call(sd.log_bf, sd.converged, sd.tail_side)} | {t_fit:.0f} + {t_bf:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
