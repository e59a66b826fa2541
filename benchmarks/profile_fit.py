"""Where a whole ``fit`` call's time goes at small sizes, cold and warm (issue 15).

One process per run (so the first fit pays the imports, as a user's first fit does): deeptime's
``BayesianMSM`` first (as ``bench_scale.py`` runs it, same counts), then ``fit`` of the reversible
model (NUTS, 2 parallel chains, ``--draws`` + ``--warmup`` per chain) ``--repeat`` times under
cProfile, each call's wall seconds, min bulk ESS of log pi (the ``bench_scale.py`` quantity) and
its ratio to deeptime's ESS/s, its CPU seconds (main thread: the fixed cost; process: with the
chains) and ESS per process-CPU second against deeptime's (less sensitive to other jobs than
wall time); then the cumulative time of the functions named in ``--top``.
``--cache DIR`` sets ``DETAILED_BALANCE_JAX_CACHE`` (a fresh folder: cold; the same folder again:
warm).

    python benchmarks/profile_fit.py --states 100 --cache /tmp/pf100   # cold, then run again: warm
    python benchmarks/profile_fit.py --states 100 --cache /tmp/r100 --ratio --draws 500 --warmup 500

``--ratio`` prints ``bench_scale.py``'s rows (the same ``ours`` and ``deeptime``) for one size and
sampler without its log Z columns, which take minutes.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import os
import pstats
import sys
import time
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--states", type=int, default=100)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=None,
                        help="per chain (default: fit's, 1000 for NUTS and max(2000, states) for "
                             "MCLMC; with --ratio, bench_scale.py's: NUTS as many as --draws)")
    parser.add_argument("--method", default="nuts")
    parser.add_argument("--repeat", type=int, default=1, help="fits in this process")
    parser.add_argument("--cache", default="off", help="DETAILED_BALANCE_JAX_CACHE for this run")
    parser.add_argument("--top", type=int, default=40, help="rows of the cumulative profile")
    parser.add_argument("--no-profile", action="store_true", help="time only (no cProfile)")
    parser.add_argument(
        "--ratio",
        action="store_true",
        help="no profile: bench_scale.py's own NUTS/MCLMC rows (its `ours`, draws doubling from "
        "--draws to --max-draws until ESS 400) against its deeptime row, without the log Z columns",
    )
    parser.add_argument("--max-draws", type=int, default=4000)
    args = parser.parse_args()
    os.environ["DETAILED_BALANCE_JAX_CACHE"] = args.cache
    sys.path.insert(0, os.path.dirname(__file__))
    t0 = time.perf_counter()
    import detailed_balance

    detailed_balance.configure(chains=2)
    from bench_scale import deeptime, log_pi, min_ess, ours

    from detailed_balance.inference import fit_diagnostics, fit_draws
    from detailed_balance.synthetic import reversible_chain, sample_counts

    print(f"imports {time.perf_counter() - t0:.1f} s; load {os.getloadavg()}", flush=True)
    counts = sample_counts(reversible_chain(args.states, seed=0), attempts_per_source=200, seed=0)
    importlib.import_module("deeptime.markov.msm")  # its import is not deeptime's CPU time

    cpu = time.process_time()  # deeptime's fit and its ESS computation (~0.05 s)
    dt, keep = deeptime(counts)
    dt_cpu = time.process_time() - cpu
    print(f"deeptime: process CPU {dt_cpu:.2f} s", flush=True)
    if args.ratio:
        label = "MCLMC" if args.method == "mclmc" else "NUTS"
        for _ in range(args.repeat):
            row = ours(counts, args.draws, args.max_draws, keep, label=label, warmup=args.warmup,
                       method=args.method)  # fmt: skip
            print(f"vs deeptime {row['ess_per_s'] / dt['ess_per_s']:.2f}x; "
                  f"load {os.getloadavg()}", flush=True)  # fmt: skip
        return
    for i in range(args.repeat):
        prof = cProfile.Profile()
        start, cpu, main_cpu = time.perf_counter(), time.process_time(), time.thread_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not args.no_profile:
                prof.enable()
            idata = detailed_balance.fit(
                counts, draws=args.draws, warmup=args.warmup, seed=0, method=args.method
            )
            prof.disable()
        seconds = time.perf_counter() - start
        cpu, main_cpu = time.process_time() - cpu, time.thread_time() - main_cpu
        V = fit_draws(idata, "V").astype(float)
        ess = min_ess(log_pi(V[..., keep]))
        rate = ess / seconds
        print(
            f"fit {i + 1}: {seconds:.1f} s, sampler {fit_diagnostics(idata)['fit_seconds']:.1f} s, "
            f"min ESS log pi {ess:.0f}, ESS/s {rate:.1f}, deeptime {dt['ess_per_s']} -> "
            f"{rate / dt['ess_per_s']:.2f}x; load {os.getloadavg()}",
            flush=True,
        )
        # less sensitive to other jobs than wall time: the main thread's CPU is the fixed cost
        # (tracing, lowering, compiling or reading the cache, Python; the chains run on XLA's
        # threads), the process's adds the chains; ESS per process-CPU second vs deeptime's
        print(
            f"  CPU: main thread {main_cpu:.2f} s, process {cpu:.2f} s; ESS per CPU s "
            f"{ess / cpu:.1f}, deeptime {dt['ess_log_pi_kept'] / dt_cpu:.1f} -> "
            f"{ess / cpu / (dt['ess_log_pi_kept'] / dt_cpu):.2f}x",
            flush=True,
        )
        if not args.no_profile:
            print(phases(prof), flush=True)
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue(), flush=True)


# (label, file suffix, function name): the phases of a fit, cumulative seconds (they nest)
PHASES = [
    ("fit (whole call)", "inference/_fit.py", "fit"),
    ("latent_sites (abstract trace)", "inference/_samplers.py", "latent_sites"),
    ("site_dims (abstract trace)", "inference/_samplers.py", "site_dims"),
    ("run_nuts", "inference/_samplers.py", "run_nuts"),
    ("  numpyro MCMC.run (trace, compile, dispatch)", "numpyro/infer/mcmc.py", "run"),
    ("  numpyro HMC init (initial point)", "numpyro/infer/hmc.py", "init"),
    ("  waiting for the draws (sampling)", "jax/_src/array.py", "_value"),
    ("run_mclmc", "inference/_mclmc.py", "run_mclmc"),
    ("_evaluate (float64 V, log-lik)", "inference/_samplers.py", "_evaluate"),
    ("_diagnose (R-hat, ESS)", "inference/_diagnostics.py", "_diagnose"),
    ("_build (InferenceData)", "inference/_build.py", "_build"),
    ("  arviz import + container", "detailed_balance/_arviz.py", "make"),
    ("identifiability warnings", "inference/_identifiability.py", "_warn_identifiability"),
    ("gauge groups", "inference/_identifiability.py", "_gauge_groups"),
    ("build_model_data", "detailed_balance/modeldata.py", "build_model_data"),
    ("XLA compilation (all programs)", "jax/_src/compiler.py", "backend_compile_and_load"),
    ("compilation or persistent-cache read", "jax/_src/compiler.py", "compile_or_get_cached"),
    ("tracing to jaxprs (all jit)", "jax/_src/pjit.py", "_trace_for_jit"),
    ("lowering to MLIR (all programs)", "jax/_src/interpreters/mlir.py", "lower_jaxpr_to_module"),
    ("model traced (numpyro get_trace)", "numpyro/handlers.py", "get_trace"),
    ("imports inside the call", "<frozen importlib._bootstrap>", "_find_and_load"),
]


def phases(prof) -> str:
    """The cumulative seconds and call counts of ``PHASES`` in a profile."""
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    lines = []
    for label, suffix, name in PHASES:
        hits = [(v[1], v[3]) for (f, _, n), v in stats.items() if f.endswith(suffix) and n == name]
        if hits:
            calls, seconds = max(hits, key=lambda h: h[1])
            lines.append(f"  {label:<48} {seconds:7.2f} s  ({calls} calls)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
