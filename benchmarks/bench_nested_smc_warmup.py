"""Nested SMC's refusals on fits with NUTS's warm-up trees capped (depth 5, ``fit``'s default at
these sizes) against uncapped (depth 10, numpyro's), over fit seeds (issue 15, round 13).

Per dataset (small driven and reversible chains of the slow tests' kind, 5-10 states), per
warm-up depth and per fit seed: both models fitted as the tests fit them (2 chains,
``--warmup`` + ``--draws``), then :func:`nested_smc_bf` on the pair (its seed the fit seed, or
each of ``--smc-seeds``). One row per nested SMC run: log BF ± se or the refusal's reason, and
the draws' quality per model (reversible / non-reversible: min bulk ESS and max R-hat over the
latent sites, the adapted step size, the draws' mean tree depth, divergences). Then, per depth,
the refusals out of the runs with a 95 % Wilson interval, and per dataset the spread of log BF.

    nice -n 10 python benchmarks/bench_nested_smc_warmup.py --fits DIR --out rows.jsonl
    nice -n 10 python benchmarks/bench_nested_smc_warmup.py --datasets test --seeds 1 \
        --smc-seeds 0 1 2 3 4 5 6 7 --fits DIR     # nested SMC's own spread on one pair of fits
    python benchmarks/bench_nested_smc_warmup.py --summary rows.jsonl more.jsonl  # the tables

``--out FILE`` appends each row as a JSON line; ``--fits DIR`` keeps the fits (and reads them
back on a later run); ``--cache DIR`` a JAX compilation cache (the seeds of one dataset and
depth then compile once).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
from calibration_universality import wilson  # one Wilson interval for the benchmarks

import detailed_balance

MODELS = ("reversible", "nonreversible")


def datasets() -> dict:
    """Name -> counts: the slow tests' realisations and a few more of the same kind."""
    from detailed_balance.synthetic import (
        driven_chain,
        relabel_counts,
        reversible_chain,
        sample_counts,
    )

    test = sample_counts(driven_chain(7, affinity=1.0, seed=6), attempts_per_source=120, seed=6)
    driven_5 = sample_counts(driven_chain(5, affinity=1.5, seed=2), attempts_per_source=150,
                             seed=2)  # fmt: skip
    return {
        # test_relabelled_driven_chain_gives_the_same_bayes_factor's counts until round 13 (7
        # states, the drive not visible at 120 attempts per source: log BF ~ -0.3)
        "test": test,
        "test-relabelled": relabel_counts(test, seed=11),  # ... and its relabelled copy
        "driven-5": driven_5,  # test_nested_smc_agrees_with_bridge_on_a_small_driven_chain's
        "driven-5-relabelled": relabel_counts(driven_5, seed=11),
        "reversible-8": sample_counts(reversible_chain(8, seed=4), attempts_per_source=150, seed=4),
        "driven-6-relabelled": relabel_counts(
            sample_counts(driven_chain(6, affinity=1.0, seed=8), attempts_per_source=120, seed=8),
            seed=3,
        ),
        "driven-10": sample_counts(
            driven_chain(10, affinity=1.0, seed=9), attempts_per_source=120, seed=9
        ),
    }


def quality(idata) -> dict:
    """Min bulk ESS and max R-hat over the latent sites, step size, mean tree depth, divergences."""
    from detailed_balance.inference import fit_draws, latent_draws, rhat_ess

    rhat, ess = rhat_ess(latent_draws(idata))
    steps = fit_draws(idata, "n_steps", "sample_stats")
    return {
        "min_ess": float(min(np.nanmin(v) for v in ess.values())),
        "max_rhat": float(max(np.nanmax(v) for v in rhat.values())),
        "step_size": float(np.mean(fit_draws(idata, "step_size", "sample_stats"))),
        "tree_depth": float(np.mean(np.log2(steps + 1))),
        "divergences": int(np.sum(fit_draws(idata, "diverging", "sample_stats"))),
    }


def run_pair(name: str, counts, depth: int, seed: int, args) -> list[dict]:
    """Both fits (read from ``--fits`` when there), then nested SMC for each of its seeds."""
    from detailed_balance.comparison import fit_model_data, fit_prior, nested_smc_bf
    from detailed_balance.inference import fit, latent_draws, load_fit, save_fit

    t = time.perf_counter()
    paths = {m: os.path.join(args.fits or "", f"{name}-d{depth}-s{seed}-{m}.nc") for m in MODELS}
    if args.fits and all(os.path.exists(p) for p in paths.values()):
        fits = {m: load_fit(p) for m, p in paths.items()}
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short chains: R-hat notes are recorded below
            fits = {m: fit(counts, m, draws=args.draws, warmup=args.warmup, chains=2, seed=seed,
                           warmup_tree_depth=depth) for m in MODELS}  # fmt: skip
        for m, f in fits.items() if args.fits else ():
            save_fit(f, paths[m])
    t_fit = time.perf_counter() - t
    rev, nr = fits["reversible"], fits["nonreversible"]
    quality_ = {m: quality(f) for m, f in fits.items()}
    rows = []
    for smc_seed in args.smc_seeds or [seed]:
        t = time.perf_counter()
        bf = nested_smc_bf(fit_model_data(rev), fit_prior(rev), latent_draws(rev),
                           latent_draws(nr), seed=smc_seed)  # fmt: skip
        rows.append({
            "dataset": name, "depth": depth, "seed": seed, "smc_seed": smc_seed,
            "converged": bf.converged, "log_bf": bf.log_bf, "se": bf.se, "note": bf.note,
            "quality": quality_, "fit_seconds": t_fit, "smc_seconds": time.perf_counter() - t,
        })  # fmt: skip
    return rows


def refusal(note: str) -> str:
    """The refusal's reason, short (the ESS collapse keeps its figure)."""
    reason = note.removeprefix("not trusted: ").split(": raise")[0]
    return reason.replace(" (the pilot's schedule does not fit this run)", "")


def print_row(r: dict) -> None:
    q = r["quality"]

    def both(key, fmt):
        return " / ".join(format(q[m][key], fmt) for m in MODELS)

    if r["converged"]:
        result = f"{r['log_bf']:.2f} ± {r['se']:.2f}"
    else:
        result = f"refused: {refusal(r['note'])}"
    print(f"| {r['dataset']} | {r['depth']} | {r['seed']} | {r.get('smc_seed', r['seed'])} "
          f"| {result} | {both('min_ess', '.0f')} "
          f"| {both('max_rhat', '.3f')} | {both('step_size', '.3f')} | {both('tree_depth', '.2f')} "
          f"| {both('divergences', 'd')} | {r['fit_seconds']:.0f} + {r['smc_seconds']:.0f} |",
          flush=True)  # fmt: skip


def summary(rows: list[dict]) -> None:
    depths = sorted({r["depth"] for r in rows}, reverse=True)
    print("\n| warm-up depth | fit pairs | nested SMC runs | refused | rate | 95 % Wilson "
          "| median min ESS rev / nr | median max R-hat | median step size | median tree depth "
          "| divergences |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---|---|---|---|---|---|")
    for d in depths:
        mine = [r for r in rows if r["depth"] == d]
        k = sum(not r["converged"] for r in mine)
        lo, hi = wilson(k, len(mine))
        # the draws' quality once per pair of fits, however many nested SMC runs it had
        pairs = list({(r["dataset"], r["seed"]): r["quality"] for r in mine}.values())

        def med(key, fmt, pairs=pairs):
            return " / ".join(format(np.median([q[m][key] for q in pairs]), fmt) for m in MODELS)

        div = " / ".join(str(sum(q[m]["divergences"] for q in pairs)) for m in MODELS)
        print(f"| {d} | {len(pairs)} | {len(mine)} | {k} | {k / len(mine):.2f} "
              f"| [{lo:.2f}, {hi:.2f}] | {med('min_ess', '.0f')} | {med('max_rhat', '.3f')} "
              f"| {med('step_size', '.3f')} | {med('tree_depth', '.2f')} | {div} |")  # fmt: skip
    print("\n| dataset | warm-up depth | refused | log BF over the accepted seeds: mean ± sd "
          "| median se |")  # fmt: skip
    print("|---|---:|---:|---|---:|")
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for d in depths:
            mine = [r for r in rows if r["dataset"] == name and r["depth"] == d]
            ok = [r for r in mine if r["converged"]]
            if not mine:
                continue
            bfs = [r["log_bf"] for r in ok]
            spread = (f"{np.mean(bfs):.2f} ± {np.std(bfs, ddof=1):.2f}" if len(bfs) > 1
                      else "–")  # fmt: skip
            se = f"{np.median([r['se'] for r in ok]):.2f}" if ok else "–"
            print(f"| {name} | {d} | {len(mine) - len(ok)} / {len(mine)} | {spread} | {se} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=None, help="names (default: all)")
    parser.add_argument("--depths", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 9)))
    parser.add_argument("--draws", type=int, default=500, help="per chain (2 chains)")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument(
        "--smc-seeds",
        type=int,
        nargs="+",
        default=None,
        help="nested SMC's seeds on each pair of fits (default: the fit seed)",
    )
    parser.add_argument("--cache", default=None, help="a JAX compilation cache folder")
    parser.add_argument("--out", default=None, help="append each pair as a JSON line here")
    parser.add_argument(
        "--fits",
        default=None,
        help="a folder of fits: read from it when there, else made and saved",
    )
    parser.add_argument(
        "--summary",
        nargs="+",
        default=None,
        help="print the tables of --out files (a run repeated counts once)",
    )
    args = parser.parse_args()
    if args.summary:
        rows = {}  # one row per run: a run repeated across files counts once
        for path in args.summary:
            with open(path, encoding="utf-8") as f:
                for r in map(json.loads, filter(str.strip, f)):
                    key = (r["dataset"], r["depth"], r["seed"], r.get("smc_seed", r["seed"]))
                    rows.setdefault(key, r)
        for r in rows.values():
            print_row(r)
        summary(list(rows.values()))
        return
    detailed_balance.configure(chains=2, cache=args.cache or False)
    data = datasets()
    names = args.datasets or list(data)
    smc_seed = args.smc_seeds or "the fit seed"
    print(f"{args.warmup} warm-up + {args.draws} draws × 2 chains per fit; nested SMC's "
          f"defaults, its seeds {smc_seed}; per model rev / nr: min bulk ESS and max R-hat of "
          "the latent sites, mean step size, mean tree depth of the draws, divergences; "
          "s = fits + nested SMC\n")  # fmt: skip
    print("| dataset | warm-up depth | fit seed | SMC seed | log BF ± se | min ESS | max R-hat "
          "| step size | tree depth | divergences | s |")  # fmt: skip
    print("|---|---:|---:|---:|---|---|---|---|---|---|---|")
    rows = []
    for name in names:
        for seed in args.seeds:
            for depth in args.depths:  # the arms alternate: a load change hits both
                for r in run_pair(name, data[name], depth, seed, args):
                    rows.append(r)
                    print_row(r)
                    if args.out:
                        with open(args.out, "a", encoding="utf-8") as f:
                            f.write(json.dumps(r, default=float) + "\n")
    summary(rows)


if __name__ == "__main__":
    main()
