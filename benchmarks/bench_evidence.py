"""Log evidence: honesty and scale of the estimators, against the exact Dirichlet evidence.

Five parts (each prints a Markdown table; ``--part all`` runs them in order):

* ``coverage``: bridge sampling on the unconstrained model, whose evidence is exact, from exact
  iid posterior draws (Dirichlet rows times Gamma row totals: what NUTS would give at infinite
  ESS) and from NUTS at one size. Counts how often |error| ≤ 2 reported se, and when the estimator
  refuses (Pareto k̂ of its importance weights > 0.7, or too few draws for the proposal).
* ``scale``: annealed importance sampling from the Laplace fit (``laplace-ais``) on the
  unconstrained model from ~40 to ~3,000 parameters: error against exact, reported se, seconds,
  and bridge sampling (exact draws) on the same data in the same run.
* ``smc``: tempered SMC from the Laplace fit (``laplace-smc``) on the unconstrained model from
  ~40 to ~3,000 parameters: exact log Z, estimate ± se, error/se, seconds, and in the same run
  bridge sampling (exact draws) and, up to ``--ais-max-states``, laplace-ais, with time ratios.
* ``agree``: reversible and non-reversible models at 10, 30 (and more with ``--agree-sizes``)
  states: laplace-smc (``--agree-estimator``: or laplace-ais) against bridge sampling on NUTS
  draws, in combined se.
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
import re
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
    smc_evidence,
)
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import reversible_chain, sample_counts


def unconstrained_case(n_states: int, attempts: int, seed: int):
    counts = sample_counts(
        reversible_chain(n_states, seed=seed), attempts_per_source=attempts, seed=seed + 1
    )
    data = build_model_data(counts)
    return counts, data, 2 * data.n_edges + data.n_states


def timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), seconds)``."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def exact_bridge(data, draws: int, seed: int = 0):
    """Bridge sampling of the unconstrained model from its exact iid posterior draws."""
    posterior = dirichlet_posterior_draws(data, 1.0, draws=draws, seed=seed)
    return bridge_sampling(MODELS["unconstrained"], {"data": data}, posterior, seed=seed)


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
            ev = exact_bridge(data, args.draws, seed=r)
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
        ev, t_ais = timed(annealed_evidence, MODELS["unconstrained"], {"data": data}, seed=1)
        br, t_br = timed(exact_bridge, data, args.draws)
        ais = f"{ev.log_z:.2f} ± {ev.se:.2f}" if ev.converged else f"refused ({ev.note})"
        bri = f"{br.log_z - exact:+.2f} ± {br.se:.2f}" if br.converged else "refused"
        print(f"| {n_states} | {dim} | {exact:.2f} | {ais} | {ev.log_z - exact:+.2f} | "
              f"{(ev.log_z - exact) / ev.se:+.2f} | {fmt(ev.pareto_k)} | {t_ais:.0f} | "
              f"{bri} | {t_br:.0f} | {t_ais / t_br:.1f} |", flush=True)  # fmt: skip


def part_smc(args) -> None:
    print("\n## laplace-smc on the unconstrained model (exact log Z known)\n")
    print("| states | params | exact log Z | laplace-smc | error | error/se | seconds | "
          "laplace-ais (error ± se) | ais s | bridge (iid draws; error ± se) | bridge s | "
          "time smc/ais | time smc/bridge |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n_states in args.smc_sizes:
        _, data, dim = unconstrained_case(n_states, args.attempts, seed=n_states)
        exact = log_evidence_dirichlet(data)
        ev, t_smc = timed(smc_evidence, MODELS["unconstrained"], {"data": data}, seed=1)
        br, t_br = timed(exact_bridge, data, args.draws)
        ais, t_ais = None, np.nan
        if n_states <= args.ais_max_states:
            ais, t_ais = timed(annealed_evidence, MODELS["unconstrained"], {"data": data}, seed=1)

        def cell(e, exact=exact):
            if e is None:
                return "not run"
            if not e.converged:
                return f"refused ({e.log_z - exact:+.2f} ± {e.se:.2f})"
            return f"{e.log_z - exact:+.2f} ± {e.se:.2f}"

        smc = f"{ev.log_z:.2f} ± {ev.se:.2f}" + ("" if ev.converged else " refused")
        print(f"| {n_states} | {dim} | {exact:.2f} | {smc} | {ev.log_z - exact:+.2f} | "
              f"{(ev.log_z - exact) / ev.se:+.2f} | {t_smc:.0f} | {cell(ais)} | {fmt(t_ais, 0)} | "
              f"{cell(br)} | {t_br:.0f} | {fmt(t_smc / t_ais, 2)} | {t_smc / t_br:.1f} |",
              flush=True)  # fmt: skip
        print(f"<!-- {n_states} states: {ev.note} -->", flush=True)


def part_agree(args) -> None:
    from detailed_balance.models import FieldPrior

    from detailed_balance.inference import latent_draws

    est = args.agree_estimator
    print(f"\n## Reversible and non-reversible models: {est} against bridge on NUTS draws\n")
    print(f"| model | states | params | {est} | bridge | difference / combined se | "
          f"{est} seconds |")  # fmt: skip
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
            if args.agree_estimator == "laplace-smc":
                ev = smc_evidence(
                    MODELS[name], kwargs, seed=1, ess=args.smc_ess, move=args.smc_move
                )
            else:
                ev = annealed_evidence(MODELS[name], kwargs, seed=1)
            t_ais = time.perf_counter() - t
            found = re.search(r"(\d+) unconstrained dimensions", ev.note)
            dim = int(found.group(1)) if found else 0
            se = math.hypot(ev.se, br.se)
            z = (ev.log_z - br.log_z) / se if ev.converged and br.converged else np.nan
            ais = f"{ev.log_z:.2f} ± {ev.se:.2f}" if ev.converged else f"refused ({ev.note[:60]})"
            bri = f"{br.log_z:.2f} ± {br.se:.2f}" if br.converged else f"refused ({br.note})"
            print(f"| {name} | {n_states} | {dim} | {ais} | {bri} | {fmt(z)} | {t_ais:.0f} |",
                  flush=True)  # fmt: skip


def _sd_case(kind: str, n_states: int, attempts: int, args) -> dict:
    """One row of the Savage–Dickey agreement table: SD, bridge where it can, the tau path."""
    from detailed_balance.models import FieldPrior

    from detailed_balance.comparison import bridge_is_doomed, savage_dickey, tau_path_log_bf
    from detailed_balance.inference import latent_draws
    from detailed_balance.synthetic import driven_chain

    # the drive per cycle shrinks as 1/sqrt(n) so the evidence stays within Savage–Dickey's reach
    affinity = args.affinity * math.sqrt(10 / n_states)
    chain = (driven_chain(n_states, affinity=affinity, seed=n_states)
             if kind == "driven" else reversible_chain(n_states, seed=n_states))  # fmt: skip
    counts = sample_counts(chain, attempts_per_source=attempts, seed=3)
    data = build_model_data(counts)
    kwargs = {"data": data, "prior": FieldPrior()}
    row = {"kind": kind, "states": n_states, "attempts": attempts,
           "affinity": affinity if kind == "driven" else 0.0, "draws": args.draws}  # fmt: skip
    draws, t_fit = {}, {}
    names = ("nonreversible",) if args.no_bridge else ("reversible", "nonreversible")
    for name in names:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = inference.fit(
                counts, name, draws=args.draws, warmup=args.draws, chains=2, seed=1
            )
        t_fit[name] = time.perf_counter() - t
        draws[name] = latent_draws(idata)
    row["params"] = sum(int(np.prod(np.shape(v)[2:])) for v in draws["nonreversible"].values())
    row["fit_s"] = round(t_fit["nonreversible"], 1)
    t = time.perf_counter()
    sd = savage_dickey(MODELS["nonreversible"], kwargs, draws["nonreversible"])
    row.update(sd_s=round(time.perf_counter() - t, 1), sd=sd.to_dict())
    doomed = "not run (--no-bridge)" if args.no_bridge else bridge_is_doomed(draws["nonreversible"])
    if doomed:
        row["bridge"] = {"note": doomed}
    else:
        t = time.perf_counter()
        ev = {m: bridge_sampling(MODELS[m], kwargs, draws[m], seed=0) for m in draws}
        row["bridge_s"] = round(time.perf_counter() - t, 1)
        if all(e.converged for e in ev.values()):
            row["bridge"] = {
                "log_bf": ev["reversible"].log_z - ev["nonreversible"].log_z,
                "se": math.hypot(ev["reversible"].se, ev["nonreversible"].se),
            }
        else:
            row["bridge"] = {"note": "; ".join(e.note for e in ev.values() if not e.converged)}
    grid = np.linspace(-7.0, 0.0, args.path_points)  # log s, up to cycle_scale = 1
    path = tau_path_log_bf(data, kwargs["prior"], log_scales=grid, draws=args.path_draws,
                           warmup=args.path_draws, seed=2)  # fmt: skip
    row["path"] = {"log_bf": path.log_bf, "se": path.se, "se_mc": path.se_mc,
                   "se_grid": path.se_grid, "converged": path.converged, "note": path.note,
                   "integrand": path.integrand, "log_scales": path.log_scales}  # fmt: skip
    row["path_s"] = round(path.seconds, 1)
    return row


def _sd_cell(x: dict) -> str:
    if x.get("converged", True) and x.get("log_bf") is not None and x.get("se") is not None:
        return f"{x['log_bf']:.2f} ± {x['se']:.2f}"
    if "log_bf" in x and x.get("log_bf") is not None:
        return f"refused (≈ {x['log_bf']:.1f}; {x.get('note', '')[:60]})"
    return x.get("note", "–")[:70]


def _z(a: dict, b: dict) -> str:
    ok = all(x.get("converged", True) and x.get("se") is not None and "log_bf" in x
             for x in (a, b))  # fmt: skip
    return f"{(a['log_bf'] - b['log_bf']) / math.hypot(a['se'], b['se']):+.2f}" if ok else "–"


def part_savage_dickey(args) -> None:
    """Run the cases not yet in ``--sd-out`` (one JSON line each), then print the whole table."""
    import json
    import pathlib

    out = pathlib.Path(args.sd_out)
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    have = {(r["kind"], r["states"], r["attempts"], r["draws"]) for r in done}
    cases = [(kind, n, 200) for n in args.sd_sizes for kind in args.sd_kinds]
    start = time.perf_counter()
    for kind, n_states, attempts in cases:
        if (kind, n_states, attempts, args.draws) in have:
            continue
        if time.perf_counter() - start > 60 * args.budget:
            print(f"budget of {args.budget} min spent: {kind} {n_states} left for the next run")
            break
        row = _sd_case(kind, n_states, attempts, args)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        done.append(row)
    print("\n## Savage–Dickey against independent estimators\n")
    print("NUTS 2 chains per model; log BF = reversible vs non-reversible; tau path: "
          "thermodynamic integration over tau's prior scale (a NUTS run per scale).\n")  # fmt: skip
    print("| data | states | params (nonrev) | draws/chain | Savage–Dickey | k̂ | SD s | "
          "bridge | (SD − bridge)/se | tau path | (SD − path)/se | path s | fit s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(done, key=lambda r: (r["states"], r["kind"], r["draws"])):
        kind = r["kind"] + (f" {r['affinity']:.3f} nats/cycle" if r["kind"] == "driven" else "")
        sd, br, pa = r["sd"], r["bridge"], r["path"]
        cells = [kind, r["states"], r["params"], r["draws"], _sd_cell(sd), fmt(sd.get("pareto_k")),
                 f"{r['sd_s']:.0f}", _sd_cell(br), _z(sd, br), _sd_cell(pa), _z(sd, pa),
                 f"{r['path_s']:.0f}", f"{r['fit_s']:.0f}"]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--part",
        choices=("coverage", "scale", "smc", "agree", "savage-dickey", "all"),
        default="all",
    )
    ap.add_argument("--runs", type=int, default=10, help="coverage runs per size")
    ap.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    ap.add_argument("--attempts", type=int, default=50, help="attempts per source")
    ap.add_argument("--coverage-sizes", type=int, nargs="+", default=[4, 8, 16, 30, 45])
    ap.add_argument("--scale-sizes", type=int, nargs="+", default=[8, 40, 150, 300, 645])
    ap.add_argument("--smc-sizes", type=int, nargs="+", default=[8, 40, 150, 300, 645])
    ap.add_argument(
        "--ais-max-states",
        type=int,
        default=40,
        help="smc part: run laplace-ais beside it up to this many states (it is 5-15x slower)",
    )
    ap.add_argument("--agree-sizes", type=int, nargs="+", default=[10, 30])
    ap.add_argument(
        "--agree-estimator", choices=("laplace-ais", "laplace-smc"), default="laplace-smc"
    )
    ap.add_argument("--smc-ess", type=float, default=0.95, help="agree part: laplace-smc's ess")
    ap.add_argument("--smc-move", type=float, default=2.0, help="agree part: laplace-smc's move")
    ap.add_argument("--sd-sizes", type=int, nargs="+", default=[10, 30, 100, 300])
    ap.add_argument(
        "--affinity",
        type=float,
        default=0.3,
        help="driven chains: nats per cycle at 10 states (× sqrt(10 / states))",
    )
    ap.add_argument(
        "--sd-kinds", nargs="+", default=["reversible", "driven"], choices=("reversible", "driven")
    )
    ap.add_argument(
        "--sd-out",
        default="benchmarks/sd_agreement.jsonl",
        help="savage-dickey rows, one JSON line per case; cases found there are skipped",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="savage-dickey: start no new case after this many minutes",
    )
    ap.add_argument(
        "--path-draws",
        type=int,
        default=500,
        help="tau path: warm-up and draws per chain at each of its 15 scales",
    )
    ap.add_argument("--path-points", type=int, default=15, help="tau path: scales from e^-7 to 1")
    ap.add_argument(
        "--no-bridge",
        action="store_true",
        help="savage-dickey: skip the reversible fit and bridge sampling",
    )
    args = ap.parse_args()
    import detailed_balance

    # two chains in parallel and the persistent cache (the fits of a rerun do not recompile)
    detailed_balance.configure(chains=2)
    for part in ("coverage", "scale", "smc", "agree", "savage-dickey"):
        if args.part in (part, "all"):
            globals()[f"part_{part.replace('-', '_')}"](args)


if __name__ == "__main__":
    main()
