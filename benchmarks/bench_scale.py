"""Benchmark: time to a posterior with min bulk ESS >= 400 at 100 to 3,000 states, vs deeptime.

Synthetic reversible chains (``synthetic.reversible_chain(n, seed=0)``, ~4 neighbours per state),
200 attempts per source. For each size, in the same process:

- ``fit`` (the reversible model, NUTS, 2 chains in parallel) with ``draws`` per chain doubling
  from ``--draws`` until the min bulk ESS of log pi reaches 400 (capped by ``--max-draws``) with
  R-hat <= 1.01: the time of the run that reached it, compilation included;
- deeptime's ``BayesianMSM(reversible=True)`` on the dense count matrix with self-replies and
  rejections on the diagonal (the escape as staying put, so both estimate the same pi); its samples
  are dense matrices, so it draws at most ``1e9 / (8 n^2)`` of them (memory), and none above
  ``--deeptime-max`` states;
- ``fit(..., method="mclmc")`` (BlackJAX's unadjusted microcanonical Langevin sampler, same
  model and priors; ``--mclmc-warmup`` tuning steps, each draw 4 decoherence lengths apart), the
  draws doubling the same way from ``--mclmc-draws``; "vs NUTS" is its ESS/s of V over NUTS's
  in the same run (``--methods`` picks the samplers);
- with ``--old``: the reference NUTS settings of ``bench_fit.py`` (1,000 + 1,000 draws) where it
  finishes.

ESS is the min over states of the bulk ESS of log pi (pi ∝ exp(-V), normalised): the quantity both
samplers share, on the same states (deeptime keeps only its largest connected set and drops states
seen one way; our min over all states is printed too). ESS/s is that over wall-clock seconds;
"vs deeptime" is our ESS/s over deeptime's. Also printed: min bulk ESS of V (the gauge-fixed
potential, every state) for the 3,000-state target; the draws double until both reach 400.

Then, per size, the time to log Z ± se of each model (``log_z_columns``): ``laplace-smc``
(``comparison.smc_evidence``, from scratch) up to ``--smc-max`` parameters, and NUTS + bridge
sampling (one fit with 5 draws per parameter per chain, bridge sampling on its draws) up to
``--bridge-max``; the time ratio and the z of their difference, the exact Dirichlet log Z beside
the unconstrained model. NUTS is not run above ``--nuts-max-states`` (a note says so). With
``--reference draws`` each model's SMC starts from a Gaussian of a NUTS fit's draws
(``draws-smc``: ``smc_evidence(..., reference=latent_draws(fit))``, 2 × ``--reference-draws``
draws; the fit's seconds are printed beside the SMC's), and Savage–Dickey on the non-reversible
fit gives the log BF that the two log Z's difference is checked against.

Usage::

    python benchmarks/bench_scale.py                 # 100, 300, 1000, 3000 states
    python benchmarks/bench_scale.py --sizes 100 300 --old
    python benchmarks/bench_scale.py --sizes 3000 --methods mclmc --mclmc-draws 1000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings

import numpy as np

TARGET_ESS = 400


def min_ess(draws: np.ndarray) -> float:
    """Min over the last axis of the bulk ESS of (chains, draws, k) values."""
    from detailed_balance.inference import rhat_ess  # ArviZ's estimator, vectorised

    _, ess = rhat_ess({"x": draws})
    return float(np.nanmin(ess["x"]))


def log_pi(V: np.ndarray) -> np.ndarray:
    """log pi with pi ∝ exp(-V), normalised over the last axis (one support component here)."""
    x = -V - np.max(-V, axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def ours(counts, draws, max_draws, keep=None, label="NUTS", warmup=None, **kw) -> dict:
    """Fit with ``draws`` per chain, doubling until min ESS >= 400 (log pi and V) or the cap.

    ``warmup`` None: as many NUTS warm-up steps as draws; MCLMC's tuning is ``fit``'s default.
    """
    from detailed_balance.inference import RHAT_MAX, fit, fit_diagnostics, fit_draws

    mclmc = kw.get("method") == "mclmc"
    while True:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = fit(counts, draws=draws, warmup=warmup or (None if mclmc else draws), seed=0,
                        **kw)  # fmt: skip
        seconds = time.perf_counter() - start
        V = fit_draws(idata, "V").astype(float)
        ess_pi, ess_v = min_ess(log_pi(V)), min_ess(V)
        # on the states deeptime keeps (its largest connected set), normalised over them
        ess_kept = min_ess(log_pi(V[..., keep])) if keep is not None else ess_pi
        diag = fit_diagnostics(idata)
        # MCLMC's tuning steps as it ran them (fit's default when not given)
        used = diag["tuning_steps"] if mclmc else warmup or draws
        row = {"method": label, "draws": draws, "warmup": used,
               "seconds": round(seconds, 1),
               "ess_log_pi": round(ess_pi), "ess_log_pi_kept": round(ess_kept),
               "ess_V": round(ess_v), "ess_per_s": round(ess_kept / seconds, 2),
               "max_rhat": diag.get("max_rhat"), "chain_method": diag.get("chain_method"),
               "precision": diag.get("precision"),
               "ess_V_per_s": round(ess_v / seconds, 3)}  # fmt: skip
        if "thin" in diag:  # MCLMC: its tuning and the integrator steps behind each draw
            row.update(thin=diag["thin"], energy_error=diag["energy_error_mean"],
                       gradients_per_chain=diag["gradients_per_chain"])  # fmt: skip
        print(row, flush=True)
        converged = row["max_rhat"] is not None and row["max_rhat"] <= RHAT_MAX
        if (converged and min(ess_pi, ess_v) >= TARGET_ESS) or 2 * draws > max_draws:
            return row
        draws *= 2


def deeptime(counts, max_samples: int = 1000) -> tuple[dict, np.ndarray]:
    from deeptime.markov.msm import BayesianMSM

    n = counts.n_states
    samples = int(min(max_samples, 1e9 / (8 * n * n)))
    dense = counts.dense().astype(float)
    dense[np.arange(n), np.arange(n)] += counts.rejected
    start = time.perf_counter()
    post = BayesianMSM(n_samples=samples, reversible=True).fit(dense).fetch_model()
    seconds = time.perf_counter() - start
    keep = np.asarray(post.prior.count_model.state_symbols)
    pi = np.array([s.stationary_distribution for s in post.samples])
    ess = min_ess(np.log(pi)[None])
    row = {"method": "deeptime BayesianMSM", "draws": samples, "seconds": round(seconds, 1),
           "ess_log_pi": round(ess), "ess_log_pi_kept": round(ess),
           "ess_per_s": round(ess / seconds, 2), "states_kept": len(keep)}  # fmt: skip
    print(row, flush=True)
    return row, keep


def n_parameters(name: str, kwargs: dict) -> int:
    """Unconstrained parameters of a model of the ladder (one eager trace, numpyro's public API)."""
    import jax
    from detailed_balance.models import MODELS
    from jax.flatten_util import ravel_pytree
    from numpyro import handlers
    from numpyro.infer.util import unconstrain_fn

    trace = handlers.trace(handlers.seed(MODELS[name], jax.random.PRNGKey(0))).get_trace(**kwargs)
    latent = {k: site["value"] for k, site in trace.items()
              if site["type"] == "sample" and not site["is_observed"]}  # fmt: skip
    return int(ravel_pytree(unconstrain_fn(MODELS[name], (), kwargs, latent))[0].shape[0])


MODEL_NAMES = ("reversible", "nonreversible", "unconstrained")


def log_z_columns(counts, smc_max: int, bridge_max: int, models=MODEL_NAMES,
                  reference: str = "laplace", reference_draws: int = 1000,
                  particles: int = 256, runs: int = 4, fine: bool = False) -> list[dict]:
    """Time to log Z ± se of each model: ``laplace-smc`` from scratch, and NUTS + bridge sampling.

    laplace-smc runs up to ``smc_max`` parameters (measured: ~5 min at 1,470 parameters under
    load, growing ~D^1.5); NUTS + bridge sampling is one fit with 5 draws per parameter per chain
    (bridge sampling refuses below ~8 per parameter in all) and the bridge estimate from its draws,
    up to ``bridge_max`` parameters; the unconstrained model's exact Dirichlet log Z is beside them.
    ``reference="draws"``: each model's SMC starts from a Gaussian of a NUTS fit's draws
    (``reference_draws`` per chain, as many warm-up steps; the unconstrained model's too, whose
    dense Laplace reference stops at 6,000 parameters), and Savage–Dickey runs on the
    non-reversible fit (its log BF in that model's row). ``particles``: per SMC run; ``runs``: of
    them after the pilot. ``fine``: the hierarchical models' finer steps and longer moves for the
    unconstrained model too.
    """
    from detailed_balance.models import MODELS, FieldPrior

    from detailed_balance.comparison import (
        fit_evidence,
        fit_savage_dickey,
        log_evidence_dirichlet,
        smc_evidence,
    )
    from detailed_balance.inference import fit, latent_draws
    from detailed_balance.modeldata import build_model_data

    data = build_model_data(counts)
    rows = []
    for name in models:
        kwargs = {"data": data, **({} if name == "unconstrained" else {"prior": FieldPrior()})}
        dim = n_parameters(name, kwargs)
        row = {"states": counts.n_states, "model": name, "parameters": dim}
        if name == "unconstrained":
            row["exact"] = round(log_evidence_dirichlet(data), 2)
        if dim <= smc_max:
            # the hierarchical models need finer steps and more moves (their hyper-parameters lag)
            fine_steps = fine or name != "unconstrained"
            tuned = {"ess": 0.95, "move": 2.0} if fine_steps else {}
            tuned.update(particles=particles, runs=runs)
            if reference == "draws":
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    idata = fit(counts, name, draws=reference_draws, warmup=reference_draws,
                                seed=0)  # fmt: skip
                row["fit_s"] = round(time.perf_counter() - start, 1)
                tuned["reference"] = latent_draws(idata)
                if name == "nonreversible":  # the log BF the two log Z's are checked against
                    start = time.perf_counter()
                    sd = fit_savage_dickey(idata)
                    row.update(sd_s=round(time.perf_counter() - start, 1), sd_log_bf=sd.log_bf,
                               sd_se=sd.se, sd_converged=sd.converged)  # fmt: skip
            start = time.perf_counter()
            ev = smc_evidence(MODELS[name], kwargs, seed=0, **tuned)
            row.update(smc_s=round(time.perf_counter() - start, 1), smc=_evidence_cell(ev))
            row.update(smc_log_z=ev.log_z, smc_se=ev.se, smc_method=ev.method,
                       smc_particles=particles, smc_runs=runs)
            row["smc_note"] = ev.note
        else:
            row["smc"] = f"not run ({dim} parameters > --smc-max {smc_max})"
        if dim <= bridge_max:
            draws = 5 * dim
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = fit(counts, name, draws=draws, warmup=1000, seed=0)
            evidence, check = fit_evidence(idata)
            ev = check if name == "unconstrained" else evidence  # the bridge estimate itself
            row.update(bridge_s=round(time.perf_counter() - start, 1), bridge_draws=draws,
                       bridge=_evidence_cell(ev), bridge_log_z=ev.log_z,
                       bridge_se=ev.se)  # fmt: skip
        else:
            row["bridge"] = f"not run ({dim} parameters > --bridge-max {bridge_max})"
        print(row, flush=True)
        rows.append(row)
    return rows


def _rhat(row: dict) -> str:
    return f"{row['max_rhat']:.3f}" if row.get("max_rhat") is not None else "–"


def _evidence_cell(ev) -> str:
    if not ev.converged:
        return f"refused: {ev.note[:100]}"
    tag = "" if ev.method == "laplace-smc" else f" ({ev.method})"
    return f"{ev.log_z:.2f} ± {ev.se:.2f}{tag}"


def print_sampler_table(rows: list[dict]) -> None:
    """Markdown: time to min ESS >= 400 per sampler and size, ratios vs deeptime and NUTS."""
    print("\n| states | method | draws/chain | time (s) | min ESS log π (all / deeptime's) "
          "| min ESS V | max R-hat | ESS/s | vs deeptime | ESS V/s | vs NUTS (ESS V/s) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in dict.fromkeys(r["states"] for r in rows):
        by = [r for r in rows if r["states"] == n]
        dt = next((r for r in by if r["method"].startswith("deeptime")), None)
        nuts = next((r for r in by if r["method"] == "NUTS"), None)
        for r in by:
            ratio = f"{r['ess_per_s'] / dt['ess_per_s']:.2f}×" if dt and dt["ess_per_s"] else "–"
            v_rate = r.get("ess_V_per_s")
            vs_nuts = f"{v_rate / nuts['ess_V_per_s']:.2f}×" if nuts and v_rate else "–"
            cells = [n, r["method"], r["draws"], r["seconds"],
                     f"{r['ess_log_pi']} / {r['ess_log_pi_kept']}", r.get("ess_V", "–"),
                     _rhat(r), r["ess_per_s"], ratio, "–" if v_rate is None else v_rate, vs_nuts]
            print("| " + " | ".join(str(c) for c in cells) + " |")


def print_log_z_table(rows: list[dict]) -> None:
    """Markdown: laplace-smc (or draws-smc, named in its cell; its time + the NUTS fit's) vs
    NUTS + bridge per model and size (time ratio, z of their gap)."""
    print("\n| states | model | parameters | SMC log Z ± se | time (s) | NUTS + bridge "
          "log Z ± se | time (s) | smc time / NUTS + bridge | z | exact |")  # fmt: skip
    print("|---:|---|---:|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        ratio = z = "–"
        numbers = all(k in r and not str(r[k]).startswith(("refused", "not run"))
                      for k in ("smc", "bridge"))  # fmt: skip
        if numbers:  # a refused estimate has no error: no ratio, no z
            ratio = f"{r['smc_s'] / r['bridge_s']:.2f}×"
            se = math.hypot(r["smc_se"], r["bridge_se"])
            if np.isfinite(se) and se > 0:
                z = f"{(r['smc_log_z'] - r['bridge_log_z']) / se:+.2f}"
        smc_s = r.get("smc_s", "–")
        if "fit_s" in r:  # draws-smc: the SMC's seconds + the NUTS fit's that gave its reference
            smc_s = f"{smc_s} + {r['fit_s']}"
        print(f"| {r['states']} | {r['model']} | {r['parameters']} | {r['smc']} | "
              f"{smc_s} | {r['bridge']} | {r.get('bridge_s', '–')} | {ratio} | {z} "
              f"| {r.get('exact', '–')} |")  # fmt: skip
    print_log_bf_table(rows)


def print_log_bf_table(rows: list[dict]) -> None:
    """Markdown: log Z_rev − log Z_nonrev by SMC against Savage–Dickey's log BF (same counts)."""
    lines = []
    for r in rows:
        rev = next((x for x in rows if x["states"] == r["states"] and x["model"] == "reversible"),
                   None)  # fmt: skip
        if r["model"] != "nonreversible" or "sd_log_bf" not in r or rev is None:
            continue
        bf = rev.get("smc_log_z", np.nan) - r.get("smc_log_z", np.nan)
        se = math.hypot(rev.get("smc_se", np.nan), r.get("smc_se", np.nan))
        sd = f"{r['sd_log_bf']:.2f} ± {r['sd_se']:.2f}"
        sd += "" if r["sd_converged"] else " (refused)"
        z = (bf - r["sd_log_bf"]) / math.hypot(se, r["sd_se"])
        lines.append(f"| {r['states']} | {bf:.2f} ± {se:.2f} | {sd} | {z:+.2f} | {r['sd_s']} |")
    if lines:
        print("\n| states | SMC log Z_rev − log Z_nonrev | Savage–Dickey log BF (rev : nonrev) "
              "| z | Savage–Dickey s |")  # fmt: skip
        print("|---:|---|---|---:|---:|")
        print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 300, 1000, 3000])
    parser.add_argument("--draws", type=int, default=500, help="first draws per chain")
    parser.add_argument("--warmup", type=int, default=500, help="warm-up draws per chain")
    parser.add_argument("--max-draws", type=int, default=4000)
    parser.add_argument("--old", action="store_true", help="also the reference NUTS settings")
    parser.add_argument("--methods", nargs="*", default=["nuts", "mclmc"],
                        choices=("nuts", "mclmc"), help="samplers to time (default: both)")
    parser.add_argument("--mclmc-draws", type=int, default=500, help="first MCLMC draws per chain")
    parser.add_argument("--mclmc-warmup", type=int, default=None,
                        help="MCLMC tuning steps per chain (default: fit's, max(2000, states))")
    parser.add_argument("--deeptime-max", type=int, default=1000)
    parser.add_argument("--nuts-max-states", type=int, default=1000,
                        help="NUTS above this size is not run (~30 min to ESS 400 at 3,000)")
    parser.add_argument("--smc-max", type=int, default=3500,
                        help="laplace-smc up to this many parameters (0: no evidence columns)")
    parser.add_argument("--evidence-models", nargs="+", choices=MODEL_NAMES, default=MODEL_NAMES,
                        help="models of the log Z table (default: all three)")
    parser.add_argument("--bridge-max", type=int, default=1000,
                        help="NUTS + bridge sampling up to this many parameters")
    parser.add_argument("--reference", choices=("laplace", "draws"), default="laplace",
                        help="the models' SMC reference: the Laplace fit (default) or "
                             "a Gaussian of a NUTS fit's draws (draws-smc; adds Savage-Dickey)")
    parser.add_argument("--smc-fine", action="store_true",
                        help="the unconstrained model's SMC with the hierarchical models' finer "
                             "temperature steps and longer moves (ess 0.95, move 2)")
    parser.add_argument("--reference-draws", type=int, default=1000,
                        help="NUTS draws (and warm-up) per chain behind --reference draws")
    parser.add_argument("--smc-particles", type=int, default=256,
                        help="particles per SMC run (default 256, smc_evidence's)")
    parser.add_argument("--smc-runs", type=int, default=4,
                        help="independent SMC runs after the pilot (default 4, smc_evidence's)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    parser.add_argument("--tables", metavar="JSON", nargs="*",
                        help="only print the tables of runs written by --json")
    args = parser.parse_args()
    if args.tables:
        runs = [json.load(open(path)) for path in args.tables]
        print("\n".join(run["machine"] for run in runs))
        samplers = [r for run in runs for r in run["rows"]]
        if samplers:
            print_sampler_table(samplers)
        print_log_z_table([r for run in runs for r in run["log_z"]])
        return

    import detailed_balance
    from detailed_balance.synthetic import reversible_chain, sample_counts

    detailed_balance.configure(chains=2)
    from bench_fit import machine

    started = machine()  # the load average at the start, not at each save
    print(started, flush=True)
    rows, log_z_rows = [], []

    def save() -> None:  # after every size: a long run keeps what it measured
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": started, "rows": rows, "log_z": log_z_rows}, f, indent=1)

    def make_counts(n):
        return sample_counts(reversible_chain(n, seed=0), attempts_per_source=200, seed=0)

    for n in args.sizes:  # the samplers first, then the evidences (slower, and optional)
        counts = make_counts(n)
        found, keep = {}, None
        if n <= args.deeptime_max:
            found["deeptime"], keep = deeptime(counts)
        if "nuts" in args.methods and n > args.nuts_max_states:
            print(f"NUTS not run at {n} states (> --nuts-max-states)", flush=True)
        elif "nuts" in args.methods:
            found["ours"] = ours(counts, args.draws, args.max_draws, keep, warmup=args.warmup)
        if "mclmc" in args.methods:
            found["mclmc"] = ours(counts, args.mclmc_draws, args.max_draws, keep, label="MCLMC",
                                  warmup=args.mclmc_warmup, method="mclmc")  # fmt: skip
        if args.old and n <= 1000:
            found["old"] = ours(counts, 1000, 1000, keep, label="NUTS float64, 1000+1000",
                                precision="float64")  # fmt: skip
        rows += [{"states": n, **row} for row in found.values()]
        save()
    for n in args.sizes if args.smc_max or args.bridge_max else ():
        log_z_rows += log_z_columns(make_counts(n), args.smc_max, args.bridge_max,
                                    args.evidence_models, args.reference,
                                    args.reference_draws, args.smc_particles,
                                    args.smc_runs, args.smc_fine)  # fmt: skip
        save()
    if rows:
        print_sampler_table(rows)
    if log_z_rows:
        print_log_z_table(log_z_rows)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
