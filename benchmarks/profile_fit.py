"""Where a whole ``fit`` call's time goes at small sizes, cold and warm (issue 15).

One process per run (so the first fit pays the imports, as a user's first fit does): deeptime's
``BayesianMSM`` first (as ``bench_scale.py`` runs it, same counts), then ``fit`` of the reversible
model (NUTS, 2 parallel chains, ``--draws`` + ``--warmup`` per chain) ``--repeat`` times under
cProfile, each call's wall seconds, min bulk ESS of log pi (the ``bench_scale.py`` quantity) and
its ratio to deeptime's ESS/s, its CPU seconds (main thread: the fixed cost; process: with the
chains) and ESS per process-CPU second against deeptime's (less sensitive to other jobs than
wall time), the garbage collector's collections during it (full ones scan every object of the
process); then the cumulative time of the functions named in ``--top``.
``--cache DIR`` sets ``DETAILED_BALANCE_JAX_CACHE`` (a fresh folder: cold; the same folder again:
warm).

    python benchmarks/profile_fit.py --states 100 --cache /tmp/pf100   # cold, then run again: warm
    python benchmarks/profile_fit.py --states 100 --cache /tmp/r100 --ratio --draws 500 --warmup 500

``--ratio`` prints ``bench_scale.py``'s rows (the same ``ours`` and ``deeptime``) for one size and
sampler without its log Z columns, which take minutes.

``--step-cost`` prints instead the CPU microseconds of one value-and-gradient of the reversible
model's potential (float32, a jitted loop of calls; the per-cell likelihood ``pointwise=True``
against the summed one the samplers run) and of one NUTS leapfrog step after warm-up (numpyro's
kernel in a jitted loop of draws, one chain): how much of a step is the model.

    python benchmarks/profile_fit.py --states 300 --step-cost
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
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="per chain (default: fit's, 1000 for NUTS and max(2000, states) for "
        "MCLMC; with --ratio, bench_scale.py's: NUTS as many as --draws)",
    )
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
    parser.add_argument("--warmup-tree-depth", type=int, default=None,
                        help="NUTS's warm-up tree depth (default: fit's; 10 is numpyro's)")
    parser.add_argument(
        "--step-cost",
        action="store_true",
        help="CPU us per potential gradient and per NUTS leapfrog step, then exit",
    )
    args = parser.parse_args()
    os.environ["DETAILED_BALANCE_JAX_CACHE"] = args.cache
    if args.step_cost:
        step_cost(args.states)
        return
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
            depth = {} if args.method == "mclmc" else {"warmup_tree_depth": args.warmup_tree_depth}
            row = ours(counts, args.draws, args.max_draws, keep, label=label, warmup=args.warmup,
                       method=args.method, **depth)  # fmt: skip
            print(f"vs deeptime {row['ess_per_s'] / dt['ess_per_s']:.2f}x; "
                  f"load {os.getloadavg()}", flush=True)  # fmt: skip
        return
    collections = _GcTimer()
    for i in range(args.repeat):
        prof = cProfile.Profile()
        collections.reset()
        start, cpu, main_cpu = time.perf_counter(), time.process_time(), time.thread_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not args.no_profile:
                prof.enable()
            idata = detailed_balance.fit(
                counts, draws=args.draws, warmup=args.warmup, seed=0, method=args.method,
                warmup_tree_depth=args.warmup_tree_depth,
            )  # fmt: skip
            prof.disable()
        seconds = time.perf_counter() - start
        gc_during = str(collections)
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
        print(f"  GC: {gc_during}", flush=True)
        if not args.no_profile:
            print(phases(prof), flush=True)
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue(), flush=True)


class _GcTimer:
    """Counts and times the garbage collector's collections (all threads) through gc.callbacks."""

    def __init__(self):
        import gc

        self.reset()
        gc.callbacks.append(self._note)

    def reset(self):
        self.count, self.seconds, self._start = [0, 0, 0], [0.0, 0.0, 0.0], 0.0

    def _note(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.count[info["generation"]] += 1
            self.seconds[info["generation"]] += time.perf_counter() - self._start

    def __str__(self):
        young, young_s = self.count[0] + self.count[1], self.seconds[0] + self.seconds[1]
        return (
            f"full collections {self.count[2]} ({self.seconds[2]:.3f} s), "
            f"younger {young} ({young_s:.3f} s)"
        )


def step_cost(states: int) -> None:
    """CPU µs per value-and-gradient of the reversible potential and per NUTS leapfrog step."""
    import detailed_balance

    detailed_balance.configure(chains=2)
    import jax
    from detailed_balance.models import reversible
    from jax.flatten_util import ravel_pytree
    from numpyro.infer import MCMC, NUTS
    from numpyro.infer.util import initialize_model

    # the one internal: fit samples in float32 from a 32-bit copy of the model's arrays, and this
    # measures the program fit runs (as profile_geometry.py does)
    from detailed_balance.inference._samplers import _narrow
    from detailed_balance.modeldata import build_model_data
    from detailed_balance.runtime import x64
    from detailed_balance.synthetic import reversible_chain, sample_counts

    counts = sample_counts(reversible_chain(states, seed=0), attempts_per_source=200, seed=0)
    data = _narrow(build_model_data(counts))

    def cpu_per_call(fn, x, calls):  # best of 3, after a compiling call
        jax.block_until_ready(fn(x))
        times = []
        for _ in range(3):
            start = time.process_time()
            jax.block_until_ready(fn(x))
            times.append(time.process_time() - start)
        return min(times) / calls * 1e6

    with x64(False, all_threads=True):  # as fit samples
        for pointwise in (True, False):
            info = initialize_model(
                jax.random.PRNGKey(0), lambda p=pointwise: reversible(data, pointwise=p)
            )
            x0, unravel = ravel_pytree(info.param_info.z)
            potential = info.potential_fn
            value_and_grad = jax.value_and_grad(lambda x, f=potential, u=unravel: f(u(x)))
            calls = max(200, 2_000_000 // states)

            @jax.jit
            def loop(x, value_and_grad=value_and_grad, calls=calls):
                def body(_, carry):
                    v, g = value_and_grad(carry[0])
                    return carry[0] + 1e-7 * g, carry[1] + v  # each call depends on the last

                return jax.lax.fori_loop(0, calls, body, (x, 0.0))

            label = "per cell (pointwise=True)" if pointwise else "summed (pointwise=False)"
            print(
                f"{states} states, {x0.size} parameters: potential value and gradient, "
                f"likelihood {label}: {cpu_per_call(loop, x0, calls):.2f} us CPU",
                flush=True,
            )
        kernel = NUTS(lambda: reversible(data, pointwise=False))
        mcmc = MCMC(kernel, num_warmup=1000, num_samples=1, num_chains=1, progress_bar=False)
        mcmc.warmup(jax.random.PRNGKey(0))
        draws = 200

        @jax.jit
        def sample(state):
            def body(_, carry):
                state = kernel.sample(carry[0], (), {})
                return state, carry[1] + state.num_steps

            return jax.lax.fori_loop(0, draws, body, (state, 0))

        steps = int(sample(mcmc.last_state)[1])
        per_step = cpu_per_call(sample, mcmc.last_state, steps)
        print(
            f"NUTS after 1,000 warm-up draws: {steps / draws:.0f} leapfrog steps per draw, "
            f"{per_step:.2f} us CPU per step",
            flush=True,
        )


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
