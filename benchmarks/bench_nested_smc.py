"""Nested SMC's log BF(non-reversible : reversible) ± se against Savage–Dickey, bridge sampling
and the variational bracket, in the same run on the same NUTS fits.

Per dataset (reversible and driven chains at 10, 30, 100 states, 200 attempts per source, and
the demo's data: the shipped dataset's largest two-way component fitted with the demo's
settings), one NUTS fit of each model, then each estimator on the stored draws: its log BF ±
se (or why it refused) and its seconds; the last column says whether nested SMC's estimate lies
inside the bracket [lower − 2 se, upper + 2 se].

    python benchmarks/bench_nested_smc.py                       # 10, 30, 100 states and the demo
    python benchmarks/bench_nested_smc.py --sizes 10 30 --no-demo
    python benchmarks/bench_nested_smc.py --sizes --demo-fits /tmp/db-demo/fits   # stored fits
"""

from __future__ import annotations

import argparse
import math
import warnings

from bench_evidence import timed  # one timer for the benchmarks of the Bayes factor

from detailed_balance import inference  # noqa: F401  (configures JAX before it initialises)
from detailed_balance.comparison import (
    fit_bf_bounds,
    fit_evidence,
    fit_model_data,
    fit_nested_smc,
    fit_savage_dickey,
)
from detailed_balance.inference import fit, fit_ladder, load_fit
from detailed_balance.synthetic import driven_chain, reversible_chain, sample_counts

MODELS = ("reversible", "nonreversible")


def cell(x, se, ok=True, note=""):
    if not ok or not math.isfinite(x):
        return f"refused ({note[:60]})" if note else "refused"
    return f"{x:.2f} ± {se:.2f}"


def synthetic_fits(kind: str, n: int, draws: int, seed: int):
    chain = (driven_chain(n, affinity=1.0, seed=seed) if kind == "driven"
             else reversible_chain(n, seed=seed))  # fmt: skip
    counts = sample_counts(chain, attempts_per_source=200, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {m: fit(counts, m, draws=draws, warmup=draws, chains=2, seed=seed) for m in MODELS}


def demo_fits(stored: str | None, seed: int):
    """The demo's two fits: read from ``stored`` (a directory of reversible.nc and
    nonreversible.nc), or made as the demo makes them."""
    if stored:
        return {m: load_fit(f"{stored}/{m}.nc") for m in MODELS}
    from detailed_balance.collect.dataset import dataset_path
    from detailed_balance.demo import DEMO_DRAWS, demo_counts
    from detailed_balance.formats import read_counts

    core = demo_counts(read_counts(dataset_path()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_ladder(core, models=MODELS, draws=DEMO_DRAWS, warmup=DEMO_DRAWS, seed=seed)


def row(label: str, fits, t_fit: float, args) -> None:
    rev, nr = fits["reversible"], fits["nonreversible"]
    dims = [int(sum(v[0, 0].size for v in inference.latent_draws(f).values())) for f in (rev, nr)]
    smc, t_smc = timed(fit_nested_smc, rev, nr, particles=args.particles, runs=args.runs,
                       seed=args.seed)  # fmt: skip
    sd, t_sd = timed(fit_savage_dickey, nr)
    (ev, t_br) = timed(lambda: {m: fit_evidence(f, seed=args.seed)[0] for m, f in fits.items()})
    br_ok = all(e.converged for e in ev.values())
    br = ev["nonreversible"].log_z - ev["reversible"].log_z if br_ok else math.nan
    br_se = math.hypot(ev["nonreversible"].se, ev["reversible"].se) if br_ok else math.nan
    why = "; ".join(e.note for e in ev.values() if not e.converged)
    b, t_b = timed(fit_bf_bounds, rev, nr, seed=args.seed)
    inside = "–"
    if smc.converged and b.converged:
        inside = ("yes" if b.lower - 2 * b.lower_se <= smc.log_bf <= b.upper + 2 * b.upper_se
                  else "NO")  # fmt: skip
    bracket = (f"[{b.lower:.2f} ± {b.lower_se:.2f}, {b.upper:.2f} ± {b.upper_se:.2f}]"
               if b.converged else "refused")  # fmt: skip
    print(
        f"| {label} | {dims[0]} / {dims[1]} | {cell(smc.log_bf, smc.se, smc.converged, smc.note)} "
        f"| {t_smc:.0f} | {cell(-sd.log_bf, sd.se, sd.converged, sd.note)} | {t_sd:.0f} "
        f"| {cell(br, br_se, br_ok, why)} | {t_br:.0f} | {bracket} | {t_b:.0f} | {inside} "
        f"| {t_fit:.0f} |",
        flush=True,
    )
    if not smc.converged:
        print(f"  nested SMC note: {smc.note}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 30, 100])
    parser.add_argument("--kinds", nargs="*", default=["reversible", "driven"])
    parser.add_argument("--draws", type=int, default=1000, help="NUTS draws per chain (2 chains)")
    parser.add_argument("--particles", type=int, default=256)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-demo", action="store_true", help="skip the demo's data")
    parser.add_argument("--demo-fits", default=None, help="directory of the demo's stored fits")
    args = parser.parse_args()
    print(f"particles {args.particles}, runs {args.runs}, seed {args.seed}; log BF(non-"
          "reversible : reversible) ± se; s = seconds; inside: nested SMC within the bracket "
          "± 2 se\n")  # fmt: skip
    print("| dataset | latent values rev / nr | nested SMC | s | Savage–Dickey | s | bridge | s "
          "| bracket [lower, upper] | s | inside | fit s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        for kind in args.kinds:
            fits, t_fit = timed(synthetic_fits, kind, n, args.draws, args.seed + n)
            row(f"{kind} {n} states", fits, t_fit, args)
    if not args.no_demo:
        fits, t_fit = timed(demo_fits, args.demo_fits, args.seed)
        n = fit_model_data(fits["reversible"]).n_states
        row(f"demo ({n} states)", fits, t_fit, args)


if __name__ == "__main__":
    main()
