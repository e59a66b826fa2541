"""Log evidence: honesty and scale of the estimators, against the exact Dirichlet evidence.

Three parts (each prints a Markdown table; ``--part all`` runs them in order):

* ``coverage``: bridge sampling on the unconstrained model, whose evidence is exact, from exact
  iid posterior draws (Dirichlet rows times Gamma row totals: what NUTS would give at infinite
  ESS) and from NUTS at one size. Counts how often |error| ≤ 2 reported se, and when the estimator
  refuses (Pareto k̂ of its importance weights > 0.7, or too few draws for the proposal).
* ``scale``: annealed importance sampling from the Laplace fit (``laplace-ais``) on the
  unconstrained model from ~40 to ~3,000 parameters: error against exact, reported se, seconds,
  and bridge sampling (exact draws) on the same data in the same run.
* ``agree``: reversible and non-reversible models at 10, 30 (and more with ``--agree-sizes``)
  states: laplace-ais against bridge sampling on NUTS draws, in combined se.
* ``savage-dickey``: the Savage–Dickey log BF (reversible vs non-reversible, from the
  non-reversible NUTS posterior) next to bridge sampling's log Z_rev - log Z_nonrev on the same
  draws, at 10, 30, 100 and 300 states (reversible and driven chains, 200 attempts per source)
  and one sparse case (40 states x 25 attempts): both with se, seconds, and the time ratio.

    python benchmarks/bench_evidence.py                      # all parts, default sizes
    python benchmarks/bench_evidence.py --part coverage --runs 10
    python benchmarks/bench_evidence.py --part savage-dickey --sd-sizes 10 30 100 300
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
from detailed_balance.models import MODELS

from detailed_balance import inference  # noqa: F401  (configures JAX before it initialises)
from detailed_balance.comparison import (
    annealed_evidence,
    bridge_sampling,
    dirichlet_posterior_draws,
    log_evidence_dirichlet,
)
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import reversible_chain, sample_counts


def unconstrained_case(n_states: int, attempts: int, seed: int):
    counts = sample_counts(
        reversible_chain(n_states, seed=seed), attempts_per_source=attempts, seed=seed + 1
    )
    data = build_model_data(counts)
    return counts, data, 2 * data.n_edges + data.n_states


def fmt(x, d=2):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{d}f}"


def part_coverage(args) -> None:
    print("\n## Bridge sampling: coverage of the exact unconstrained evidence\n")
    print("| states | params | draws | runs | refused | covered (|err| ≤ 2 se) | "
          "mean |err| | mean se | max |err|/se |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    total_ok = total_cov = 0
    for n_states in args.coverage_sizes:
        errs, ses, refused = [], [], 0
        for r in range(args.runs):
            _, data, dim = unconstrained_case(n_states, args.attempts, seed=100 * r + n_states)
            exact = log_evidence_dirichlet(data)
            draws = dirichlet_posterior_draws(data, 1.0, draws=args.draws, seed=r)
            ev = bridge_sampling(MODELS["unconstrained"], {"data": data}, draws, seed=r)
            if not ev.converged:
                refused += 1
                continue
            errs.append(ev.log_z - exact)
            ses.append(ev.se)
        errs, ses = np.array(errs), np.array(ses)
        cov = int(np.sum(np.abs(errs) <= 2 * ses))
        total_ok += len(errs)
        total_cov += cov
        ratio = np.max(np.abs(errs) / ses) if len(errs) else np.nan
        mean_err = np.mean(np.abs(errs)) if len(errs) else np.nan
        mean_se = np.mean(ses) if len(ses) else np.nan
        print(f"| {n_states} | {dim} | 2×{args.draws} iid | {args.runs} | {refused} | "
              f"{cov}/{len(errs)} | {fmt(mean_err, 3)} | {fmt(mean_se, 3)} | {fmt(ratio)} |",
              flush=True)  # fmt: skip
    print(f"\nCovered overall: {total_cov}/{total_ok} of the runs not refused.")


def part_scale(args) -> None:
    print("\n## laplace-ais on the unconstrained model (exact log Z known)\n")
    print("| states | params | exact log Z | laplace-ais | error | error/se | k̂ | seconds | "
          "bridge (iid draws) | bridge seconds | time ratio ais/bridge |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n_states in args.scale_sizes:
        _, data, dim = unconstrained_case(n_states, args.attempts, seed=n_states)
        exact = log_evidence_dirichlet(data)
        t = time.perf_counter()
        ev = annealed_evidence(MODELS["unconstrained"], {"data": data}, seed=1)
        t_ais = time.perf_counter() - t
        t = time.perf_counter()
        draws = dirichlet_posterior_draws(data, 1.0, draws=args.draws, seed=0)
        br = bridge_sampling(MODELS["unconstrained"], {"data": data}, draws, seed=0)
        t_br = time.perf_counter() - t
        ais = f"{ev.log_z:.2f} ± {ev.se:.2f}" if ev.converged else f"refused ({ev.note})"
        bri = f"{br.log_z - exact:+.2f} ± {br.se:.2f}" if br.converged else "refused"
        print(f"| {n_states} | {dim} | {exact:.2f} | {ais} | {ev.log_z - exact:+.2f} | "
              f"{(ev.log_z - exact) / ev.se:+.2f} | {fmt(ev.pareto_k)} | {t_ais:.0f} | "
              f"{bri} | {t_br:.0f} | {t_ais / t_br:.1f} |", flush=True)  # fmt: skip


def part_agree(args) -> None:
    from detailed_balance.models import FieldPrior

    from detailed_balance.inference import latent_draws

    print("\n## Reversible and non-reversible models: laplace-ais against bridge on NUTS draws\n")
    print("| model | states | params | laplace-ais | bridge | difference / combined se | "
          "ais seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for n_states in args.agree_sizes:
        counts = sample_counts(
            reversible_chain(n_states, seed=n_states), attempts_per_source=args.attempts, seed=3
        )
        data = build_model_data(counts)
        for name in ("reversible", "nonreversible"):
            kwargs = {"data": data, "prior": FieldPrior()}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = inference.fit(counts, name, draws=args.draws, warmup=1000, seed=1)
            br = bridge_sampling(MODELS[name], kwargs, latent_draws(idata), seed=0)
            t = time.perf_counter()
            ev = annealed_evidence(MODELS[name], kwargs, seed=1)
            t_ais = time.perf_counter() - t
            dim = int(ev.note.split(" unconstrained dimensions")[0].split()[-1]) if ev.note else 0
            se = math.hypot(ev.se, br.se)
            z = (ev.log_z - br.log_z) / se if ev.converged and br.converged else np.nan
            ais = f"{ev.log_z:.2f} ± {ev.se:.2f}" if ev.converged else f"refused ({ev.note[:60]})"
            bri = f"{br.log_z:.2f} ± {br.se:.2f}" if br.converged else f"refused ({br.note})"
            print(f"| {name} | {n_states} | {dim} | {ais} | {bri} | {fmt(z)} | {t_ais:.0f} |",
                  flush=True)  # fmt: skip


def part_savage_dickey(args) -> None:
    from detailed_balance.models._common import FieldPrior

    from detailed_balance.comparison import savage_dickey
    from detailed_balance.comparison._compare import bridge_is_doomed
    from detailed_balance.inference import latent_draws
    from detailed_balance.synthetic import driven_chain

    print("\n## Savage–Dickey against bridge sampling (same NUTS draws)\n")
    print(f"NUTS: 2 chains x {args.draws} draws ({args.draws} warmup) per model; driven chains: "
          f"{args.affinity} nats per fundamental cycle. log BF = reversible vs non-reversible.\n")
    print("| data | states | params (nonrev) | Savage–Dickey log BF | k̂ | SD s | bridge log BF | "
          "bridge s | bridge s / SD s | difference / combined se |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    cases = [(kind, n, 200) for n in args.sd_sizes for kind in ("reversible", "driven")]
    cases.append(("reversible, sparse", 40, 25))
    for kind, n_states, attempts in cases:
        chain = (driven_chain(n_states, affinity=args.affinity, seed=n_states)
                 if kind == "driven" else reversible_chain(n_states, seed=n_states))  # fmt: skip
        counts = sample_counts(chain, attempts_per_source=attempts, seed=3)
        data = build_model_data(counts)
        kwargs = {"data": data, "prior": FieldPrior()}
        draws = {}
        for name in ("reversible", "nonreversible"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = inference.fit(
                    counts, name, draws=args.draws, warmup=args.draws, chains=2, seed=1
                )
            draws[name] = latent_draws(idata)
        dim = sum(int(np.prod(np.shape(v)[2:])) for v in draws["nonreversible"].values())
        t = time.perf_counter()
        sd = savage_dickey(MODELS["nonreversible"], kwargs, draws["nonreversible"])
        t_sd = time.perf_counter() - t
        t = time.perf_counter()
        doomed = bridge_is_doomed(draws["nonreversible"])
        ev = {} if doomed else {
            m: bridge_sampling(MODELS[m], kwargs, draws[m], seed=0) for m in draws
        }  # fmt: skip
        t_br = time.perf_counter() - t
        ok = bool(ev) and all(e.converged for e in ev.values())
        if ok:
            b = ev["reversible"].log_z - ev["nonreversible"].log_z
            b_se = math.hypot(ev["reversible"].se, ev["nonreversible"].se)
            bridge = f"{b:.2f} ± {b_se:.2f}"
        elif doomed:
            bridge = "not run (< 8 draws per parameter)"
        else:
            bridge = "refused (" + "; ".join(e.note for e in ev.values() if not e.converged)[
                :70] + ")"  # fmt: skip
        if sd.converged:
            sd_text = f"{sd.log_bf:.2f} ± {sd.se:.2f}"
        else:
            far = "far beyond threshold" if "far beyond" in sd.note else "no call"
            sd_text = f"refused (≈ {sd.log_bf:.1f}, {far})"
        z = (sd.log_bf - b) / math.hypot(sd.se, b_se) if ok and sd.converged else np.nan
        ratio = f"{t_br / t_sd:.2f}" if ev else "–"
        t_br_text = f"{t_br:.0f}" if ev else "–"
        print(f"| {kind} | {n_states} | {dim} | {sd_text} | {sd.pareto_k:.2f} | {t_sd:.0f} | "
              f"{bridge} | {t_br_text} | {ratio} | {fmt(z)} |", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--part", choices=("coverage", "scale", "agree", "savage-dickey", "all"), default="all"
    )
    ap.add_argument("--runs", type=int, default=10, help="coverage runs per size")
    ap.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    ap.add_argument("--attempts", type=int, default=50, help="attempts per source")
    ap.add_argument("--coverage-sizes", type=int, nargs="+", default=[4, 8, 16, 30, 45])
    ap.add_argument("--scale-sizes", type=int, nargs="+", default=[8, 40, 150, 300, 645])
    ap.add_argument("--agree-sizes", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--sd-sizes", type=int, nargs="+", default=[10, 30, 100, 300])
    ap.add_argument("--affinity", type=float, default=0.5, help="driven chains: nats per cycle")
    args = ap.parse_args()
    for part in ("coverage", "scale", "agree", "savage-dickey"):
        if args.part in (part, "all"):
            globals()[f"part_{part.replace('-', '_')}"](args)


if __name__ == "__main__":
    main()
