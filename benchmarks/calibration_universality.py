"""Calibration of the universality decision on synthetic datasets with known truth.

Two kinds of replicate (``universality.synthetic_joint``; three datasets over the same states,
each with its own random support graph and edge terms, a budget design):

* ``shared``: one field, beta = (1, 0.5, 2). Checks: the 94% HDIs of beta_2, beta_3 (shared
  model) and of tau (pooled model, true tau = 0: its lower end must reach below ``TAU_ZERO``)
  cover the truth; the rate of "log BF > log 10 for separate" (a false rejection of universality).
* ``independent``: beta = (1, 1, 1), the third dataset with its own field of the same width.
  Check: the rate of "log BF > log 10 for separate" (power to reject one landscape).

Every replicate runs :func:`detailed_balance.universality.compare_universality` (NUTS, bridge
sampling, LOO) as a user would. Rows go to ``--out`` as JSON lines (resumable: done replicates are
skipped). On this shared 2-core machine one replicate takes a few minutes.

    nice -n 10 python benchmarks/calibration_universality.py --replicates 50
    python benchmarks/calibration_universality.py --summarise
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

TAU_ZERO = 0.1  # a tau HDI whose lower end is below this "covers" tau = 0 (HalfNormal support)
LOG10 = math.log(10)


def one(kind: str, seed: int, args) -> dict:
    from detailed_balance.universality import compare_universality, synthetic_joint

    betas = (1.0, 0.5, 2.0) if kind == "shared" else (1.0, 1.0, 1.0)
    counts, truth = synthetic_joint(
        n_states=args.states,
        betas=betas,
        width=args.width,
        attempts_per_source=args.attempts,
        independent=() if kind == "shared" else (2,),
        seed=seed,
    )
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compare_universality(
            counts, draws=args.draws, warmup=args.warmup, chains=2, seed=seed
        )
    row = {"kind": kind, "seed": seed, "seconds": round(time.perf_counter() - t, 1)}
    shared = next(r for r in res.table if r["model"] == "shared")
    row["log_bf_shared"] = shared["log_bf_vs_separate"]
    row["log_bf_se"] = shared["log_bf_se"]
    row["elpd_shared_minus_separate"] = shared["elpd_vs_separate"]
    row["elpd_se"] = shared["elpd_vs_separate_se"]
    row["beta"] = res.beta["shared"]
    row["beta_covered"] = [
        iv["hdi_low"] <= b <= iv["hdi_high"]
        for iv, b in zip(res.beta["shared"][1:], betas[1:], strict=True)
    ]
    row["tau"] = res.tau
    row["tau_covers_zero"] = res.tau["hdi_low"] < TAU_ZERO
    row["max_rhat"] = max(r["max_rhat"] or np.nan for r in res.table)
    row["notes"] = res.notes
    return row


def summarise(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for kind in ("shared", "independent"):
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        bf = np.array([np.nan if r["log_bf_shared"] is None else r["log_bf_shared"] for r in rs])
        ok = np.isfinite(bf)
        sep = np.sum(bf[ok] < -LOG10)
        shr = np.sum(bf[ok] > LOG10)
        loo_sep = sum(r["elpd_shared_minus_separate"] < -2 * r["elpd_se"] for r in rs)
        print(f"{kind}: {len(rs)} replicates, {int((~ok).sum())} without a Bayes factor")
        print(
            f"  log BF > log 10 for separate: {sep}/{ok.sum()}; for shared: {shr}/{ok.sum()}; "
            f"median log BF (shared - separate) {np.nanmedian(bf):+.1f}"
        )
        print(f"  LOO favours separate (> 2 se): {loo_sep}/{len(rs)}")
        if kind == "shared":
            cov = np.array([r["beta_covered"] for r in rs])
            tau0 = np.mean([r["tau_covers_zero"] for r in rs])
            print(
                f"  94% HDI coverage: beta_2 {cov[:, 0].mean():.2f}, beta_3 {cov[:, 1].mean():.2f}"
                f", tau reaches below {TAU_ZERO}: {tau0:.2f}"
            )
        else:
            lo = np.array([r["tau"]["hdi_low"] for r in rs])
            print(f"  tau HDI lower end > {TAU_ZERO}: {np.mean(lo > TAU_ZERO):.2f}")
        print(f"  median seconds per replicate {np.median([r['seconds'] for r in rs]):.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=50, help="per kind (default 50)")
    p.add_argument("--states", type=int, default=12)
    p.add_argument("--attempts", type=int, default=300, help="attempts per source")
    p.add_argument("--width", type=float, default=1.5, help="sd of the true field")
    p.add_argument("--draws", type=int, default=600)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--out", default="calibration_universality.jsonl")
    p.add_argument("--max-minutes", type=float, default=600.0, help="stop after this long")
    p.add_argument("--summarise", action="store_true")
    args = p.parse_args()
    path = Path(args.out)
    if not args.summarise:
        done = set()
        if path.exists():
            done = {(r["kind"], r["seed"]) for r in map(json.loads, path.read_text().splitlines())}
        t0 = time.time()
        for seed in range(args.replicates):
            for kind in ("shared", "independent"):
                if (kind, seed) in done:
                    continue
                if time.time() - t0 > 60 * args.max_minutes:
                    print("time limit reached")
                    summarise(path)
                    return
                row = one(kind, seed, args)
                with path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(
                    f"{kind} seed {seed}: log BF {row['log_bf_shared']}, {row['seconds']} s",
                    flush=True,
                )
    summarise(path)


if __name__ == "__main__":
    main()
