"""Calibration of the universality Bayes factor on synthetic datasets with known truth.

Two kinds of replicate (``universality.synthetic_joint``; three datasets over the same states,
each with its own random support graph and edge terms, a budget design):

* ``shared``: one field, beta = (1, 0.5, 2). Checks: the 94% HDIs of beta_2, beta_3 and of tau
  (true tau = 0: its lower end must reach below ``TAU_ZERO``) cover the truth; the rate of
  "log BF > log 10 against one landscape" (a false rejection of universality).
* ``independent``: beta = (1, 1, 1), the third dataset with its own field of the same width.
  Check: the rate at which one landscape is rejected (power).

The Bayes factor is the verdict's: shared vs pooled by the Savage–Dickey ratio at tau = 0 from
the pooled posterior (``universality.one_landscape_bf``), decided by ``universality.bf_call``.
Per replicate only what it needs runs: one pooled NUTS fit (beta, tau and the Bayes factor all
come from it; no bridge sampling, no shared or separate fit). Rows go to ``--out`` as JSON lines
(resumable: done replicates are skipped); rates come with 95% Wilson intervals over the
replicates that ran. ``--shard K/N`` runs the seeds with ``seed % N == K`` (NUTS compilation is
single-threaded, so two shards side by side on two cores about double the throughput; both
append whole lines to the same file). Rows computed by an earlier estimator than
``comparison.savage_dickey`` are recomputed with ``--redo-interim``; the summary keeps the last
row of each (kind, seed); so are rows refused by the quadrature check alone under its earlier
relative tolerance (1e-3, i.e. 0.001 nats; now a bound of 0.05 nats that joins the se).

    nice -n 10 python benchmarks/calibration_universality.py --replicates 50 --max-minutes 80
    python benchmarks/calibration_universality.py --replicates 50 --shard 0/2 &   # and 1/2
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
ESTIMATOR = "comparison.savage_dickey"
RHAT_SPLIT = 1.1  # above this the two chains sit in different regions (a mode or a trap)


def one(kind: str, seed: int, args) -> dict:
    from detailed_balance.inference import hdi
    from detailed_balance.universality import (
        bf_call,
        fit_joint,
        one_landscape_bf,
        synthetic_joint,
    )

    betas = (1.0, 0.5, 2.0) if kind == "shared" else (1.0, 1.0, 1.0)
    counts, _ = synthetic_joint(
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
        fit = fit_joint(counts, "pooled", draws=args.draws, warmup=args.warmup, chains=2, seed=seed)
    t_fit = time.perf_counter() - t
    sd = one_landscape_bf(fit)
    t_bf = time.perf_counter() - t - t_fit
    beta = fit.posterior["beta"].reshape(-1, len(betas))
    lo, hi = hdi(beta)
    tau = fit.posterior["tau"].ravel()
    tau_lo, tau_hi = hdi(tau)
    g = fit.diagnostics
    return {
        "kind": kind,
        "seed": seed,
        "fit_seconds": round(t_fit, 1),
        "bf_seconds": round(t_bf, 1),
        **{f"sd_{k}": v for k, v in sd.to_dict().items()},
        "call": bf_call(sd.log_bf, sd.converged, sd.tail_side),
        "estimator": ESTIMATOR,
        "beta_hdi": [[float(a), float(b)] for a, b in zip(lo[1:], hi[1:], strict=True)],
        "beta_covered": [
            bool(a <= b <= c) for a, b, c in zip(lo[1:], betas[1:], hi[1:], strict=True)
        ],
        "tau_hdi": [float(tau_lo), float(tau_hi)],
        "tau_covers_zero": bool(tau_lo < TAU_ZERO),
        "max_rhat": g.get("max_rhat"),
        "min_ess": g.get("min_ess"),
        "divergences": g.get("divergences"),
    }


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate k/n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))  # no -0.00 from rounding


def _rate(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {k / n:.2f} [95% Wilson {lo:.2f}, {hi:.2f}]" if n else "0/0"


def _rows(path: Path) -> list[dict]:
    """The last row of each (kind, seed): a recomputed replicate replaces the earlier one."""
    last = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            last[(r["kind"], r["seed"])] = r
    return list(last.values())


def summarise(path: Path) -> None:
    rows = _rows(path)
    for kind in ("shared", "independent"):
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        n = len(rs)
        bf = np.array([np.nan if r["sd_log_bf"] is None else r["sd_log_bf"] for r in rs])
        conv = sum(r["sd_converged"] for r in rs)
        rej = sum(r["call"] == "pooled" for r in rs)
        acc = sum(r["call"] == "shared" for r in rs)
        est = sorted({r.get("estimator", "?") for r in rs})
        print(f"{kind}: {n} replicates; Savage–Dickey converged in {conv}/{n} ({'; '.join(est)})")
        print(f"  one landscape rejected (log BF shared vs pooled < -log 10): {_rate(rej, n)}")
        print(f"  one landscape favoured (log BF > log 10): {_rate(acc, n)}")
        q = np.nanpercentile(bf, [5, 50, 95])
        print(f"  log BF shared vs pooled: median {q[1]:+.1f}, 5-95% {q[0]:+.1f} to {q[2]:+.1f}")
        # refused estimates that called no side: by Pareto k, or by the quadrature check alone
        refused = [r for r in rs if r["call"] is None and not r["sd_converged"]]
        quad = [r for r in refused if _quadrature_refusal(r)]
        if refused:
            by_quad = "none"
            if quad:  # the disagreement and log BFs of those refused by the quadrature only
                worst = max((r.get("sd_quadrature_error") or 0) for r in quad)
                bfs = ", ".join(f"{r['sd_log_bf']:+.2f}" for r in quad)
                by_quad = f"{len(quad)}, relative disagreement up to {worst:.2g}, log BF {bfs}"
            print(
                f"  refused, no call: {len(refused)} (Pareto k > 0.5: {len(refused) - len(quad)};"
                f" by the quadrature check alone: {by_quad}); seeds "
                f"{sorted(r['seed'] for r in refused)}"
            )
        se = [r["sd_se"] for r in rs if r["sd_converged"] and r["sd_se"] is not None]
        if se:
            print(f"  Monte Carlo se (converged): median {np.median(se):.2f}, max {max(se):.2f}")
        if kind == "shared":
            cov = np.array([r["beta_covered"] for r in rs])
            tau0 = sum(r["tau_covers_zero"] for r in rs)
            print(
                f"  94% HDI coverage: beta_2 {_rate(int(cov[:, 0].sum()), n)}, "
                f"beta_3 {_rate(int(cov[:, 1].sum()), n)}"
            )
            print(f"  tau HDI reaches below {TAU_ZERO}: {_rate(tau0, n)}")
        else:
            away = sum(r["tau_hdi"][0] > TAU_ZERO for r in rs)
            cov = sum(r["beta_covered"][0] for r in rs)
            print(f"  tau HDI lower end > {TAU_ZERO}: {_rate(away, n)}")
            print(f"  94% HDI coverage of beta_2 = 1 (shared-field dataset): {_rate(cov, n)}")
            miss = sorted(r["seed"] for r in rs if r["call"] != "pooled")
            print(f"  not rejected: seeds {miss}")
        split = sorted(r["seed"] for r in rs if r["max_rhat"] > RHAT_SPLIT)
        if split:
            print(f"  chains disagree (max R-hat > {RHAT_SPLIT}): seeds {split}")
        print(
            f"  seconds per replicate: fit median {np.median([r['fit_seconds'] for r in rs]):.0f}"
            f", Bayes factor median {np.median([r['bf_seconds'] for r in rs]):.0f}; "
            f"max R-hat {max(r['max_rhat'] for r in rs):.3f}, "
            f"min ESS {min(r['min_ess'] for r in rs):.0f}"
        )


def _quadrature_refusal(row: dict) -> bool:
    """Refused with no call, and not for Pareto k̂: the quadrature check alone refused it."""
    from detailed_balance.comparison import SD_PARETO_K_MAX

    refused = row["call"] is None and not row["sd_converged"]
    return refused and (row.get("sd_pareto_k") or 0) <= SD_PARETO_K_MAX


def _stale(row: dict) -> bool:
    """A row ``--redo-interim`` recomputes: an earlier estimator, or a quadrature refusal the
    current rule would not make (its relative tolerance was 1e-3; now a bound of SD_QUAD_MAX_NATS
    on log(1 + error), so a row refused under the current rule is not recomputed again)."""
    from detailed_balance.comparison import SD_QUAD_MAX_NATS

    error = row.get("sd_quadrature_error") or 0.0
    old_quad = _quadrature_refusal(row) and math.log1p(error) <= SD_QUAD_MAX_NATS
    return row.get("estimator") != ESTIMATOR or old_quad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=50, help="per kind (default 50)")
    p.add_argument("--states", type=int, default=12)
    p.add_argument("--attempts", type=int, default=300, help="attempts per source")
    p.add_argument("--width", type=float, default=1.5, help="sd of the true field")
    p.add_argument("--draws", type=int, default=300, help="per chain (2 chains)")
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--out", default="benchmarks/calibration_universality_sd.jsonl")
    p.add_argument("--max-minutes", type=float, default=600.0, help="stop after this long")
    p.add_argument("--shard", default="0/1", help="K/N: run the seeds with seed %% N == K")
    p.add_argument(
        "--redo-interim",
        action="store_true",
        help=f"recompute rows not made by {ESTIMATOR} or refused by its old quadrature check",
    )
    p.add_argument("--summarise", action="store_true")
    args = p.parse_args()
    try:
        shard, n_shards = (int(x) for x in args.shard.split("/"))
        if not 0 <= shard < n_shards:
            raise ValueError
    except ValueError:
        p.error(f"--shard must be K/N with 0 <= K < N, got {args.shard!r}")
    path = Path(args.out)
    if not args.summarise:
        done = set()
        if path.exists():
            done = {
                (r["kind"], r["seed"]) for r in _rows(path) if not (args.redo_interim and _stale(r))
            }
        import jax

        t0 = time.time()
        for seed in range(shard, args.replicates, n_shards):
            for kind in ("shared", "independent"):
                if (kind, seed) in done:
                    continue
                if time.time() - t0 > 60 * args.max_minutes:
                    print("time limit reached")
                    summarise(path)
                    return
                row = one(kind, seed, args)
                # every replicate compiles new programs (its own support graphs): a pooled fit
                # and its Bayes factor leave ~2,000 memory maps, the kernel allows 65,530 per
                # process; clearing JAX's caches releases them (docs/readme/universality.md)
                jax.clear_caches()
                with path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(
                    f"{kind} seed {seed}: log BF {row['sd_log_bf']} ({row['call']}), "
                    f"{row['fit_seconds']} + {row['bf_seconds']} s",
                    flush=True,
                )
    summarise(path)


if __name__ == "__main__":
    main()
