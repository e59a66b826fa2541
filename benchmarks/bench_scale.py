"""Benchmark: time to a posterior with min bulk ESS >= 400 at 100 to 3,000 states, vs deeptime.

Synthetic reversible chains (``synthetic.reversible_chain(n, seed=0)``, ~4 neighbours per state),
200 attempts per source. For each size, in the same process:

- ``fit`` (the reversible model, NUTS, 2 chains in parallel) with ``draws`` per chain doubling
  from ``--draws`` until the min bulk ESS of log pi reaches 400 (capped by ``--max-draws``): the
  time of the run that reached it, compilation included;
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

The log-evidence columns are filled by ``log_z_columns`` (a hook for the evidence benchmark).

Usage::

    python benchmarks/bench_scale.py                 # 100, 300, 1000, 3000 states
    python benchmarks/bench_scale.py --sizes 100 300 --old
    python benchmarks/bench_scale.py --sizes 3000 --methods mclmc --mclmc-draws 1000
"""

from __future__ import annotations

import argparse
import json
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
    """Fit with ``draws`` per chain, doubling until min ESS >= 400 (log pi and V) or the cap."""
    from detailed_balance import _arviz
    from detailed_balance.inference import fit

    while True:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = fit(counts, draws=draws, warmup=warmup or draws, seed=0, **kw)
        seconds = time.perf_counter() - start
        V = np.asarray(_arviz.group(idata, "posterior")["V"].values, dtype=float)
        ess_pi, ess_v = min_ess(log_pi(V)), min_ess(V)
        # on the states deeptime keeps (its largest connected set), normalised over them
        ess_kept = min_ess(log_pi(V[..., keep])) if keep is not None else ess_pi
        diag = json.loads(_arviz.attrs(idata)["diagnostics"])
        row = {"method": label, "draws": draws, "warmup": warmup or draws,
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
        if min(ess_pi, ess_v) >= TARGET_ESS or 2 * draws > max_draws:
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


def log_z_columns(counts) -> dict:
    """Time to log Z ± se of each model by ``laplace-smc`` (the unconstrained one beside its exact
    Dirichlet value); a model of more than 3,500 parameters is skipped with a note (measured: ~10
    min at 1,470 parameters under load, growing ~D^1.5)."""
    import jax
    from detailed_balance.models import MODELS, FieldPrior

    from detailed_balance.comparison import log_evidence_dirichlet, smc_evidence
    from detailed_balance.comparison._evidence import _flat_model
    from detailed_balance.modeldata import build_model_data

    data = build_model_data(counts)
    out = {"log_z_unconstrained_exact": round(log_evidence_dirichlet(data), 2)}
    for name in ("reversible", "nonreversible", "unconstrained"):
        kwargs = (
            {"data": data} if name == "unconstrained" else {"data": data, "prior": FieldPrior()}
        )
        dim = int(_flat_model(MODELS[name], kwargs, jax.random.PRNGKey(0))[4].shape[0])
        out[f"log_z_{name}_params"] = dim
        if dim > 3500:
            out[f"log_z_{name}"] = f"not run ({dim} parameters > 3,500)"
            continue
        start = time.perf_counter()
        # the hierarchical models need finer steps and more moves (their hyper-parameters lag)
        tuned = {} if name == "unconstrained" else {"ess": 0.95, "move": 2.0}
        ev = smc_evidence(MODELS[name], kwargs, seed=0, **tuned)
        out[f"log_z_{name}_s"] = round(time.perf_counter() - start, 1)
        out[f"log_z_{name}"] = (
            f"{ev.log_z:.2f} ± {ev.se:.2f}" if ev.converged else f"refused: {ev.note[:120]}"
        )
    print(out, flush=True)
    return out


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
    parser.add_argument("--mclmc-warmup", type=int, default=2000,
                        help="MCLMC tuning steps per chain")  # fmt: skip
    parser.add_argument("--deeptime-max", type=int, default=1000)
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()

    import detailed_balance
    from detailed_balance.synthetic import reversible_chain, sample_counts

    detailed_balance.configure(chains=2)
    from bench_fit import machine

    print(machine(), flush=True)
    rows = []
    for n in args.sizes:
        counts = sample_counts(reversible_chain(n, seed=0), attempts_per_source=200, seed=0)
        found, keep = {}, None
        if n <= args.deeptime_max:
            found["deeptime"], keep = deeptime(counts)
        if "nuts" in args.methods:
            found["ours"] = ours(counts, args.draws, args.max_draws, keep, warmup=args.warmup)
        if "mclmc" in args.methods:
            found["mclmc"] = ours(counts, args.mclmc_draws, args.max_draws, keep, label="MCLMC",
                                  warmup=args.mclmc_warmup, method="mclmc")  # fmt: skip
        if args.old and n <= 1000:
            found["old"] = ours(counts, 1000, 1000, keep, label="NUTS float64, 1000+1000",
                                precision="float64")  # fmt: skip
        for key, row in found.items():
            rows.append({"states": n, **row, **(log_z_columns(counts) if key == "ours" else {})})
    print("\n| states | method | draws/chain | time (s) | min ESS log π (all / deeptime's) "
          "| min ESS V | ESS/s | vs deeptime | ESS V/s | vs NUTS (ESS V/s) |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        by = [r for r in rows if r["states"] == n]
        dt = next((r for r in by if r["method"].startswith("deeptime")), None)
        nuts = next((r for r in by if r["method"] == "NUTS"), None)
        for r in by:
            ratio = f"{r['ess_per_s'] / dt['ess_per_s']:.2f}×" if dt and dt["ess_per_s"] else "–"
            v_rate = r.get("ess_V_per_s")
            vs_nuts = f"{v_rate / nuts['ess_V_per_s']:.2f}×" if nuts and v_rate else "–"
            print(f"| {n} | {r['method']} | {r['draws']} | {r['seconds']} | {r['ess_log_pi']} / "
                  f"{r['ess_log_pi_kept']} | {r.get('ess_V', '–')} | {r['ess_per_s']} | "
                  f"{ratio} | {v_rate if v_rate is not None else '–'} | {vs_nuts} |")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
