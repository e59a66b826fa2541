"""The demo: counts → fit → compare → report on the shipped dataset, in a few minutes on 2 cores.

The shipped dataset is a real attempt log of the built-in animal agent run by a local LLM
(Gemma 3 270M through llama.cpp) at temperature 1; ``docs`` give the command that reproduces it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .collect.dataset import REPRODUCE, dataset_path
from .counts import TransitionCounts

# The demo fits the whole largest two-way component (moves out of it count as escapes); its
# Bayes factor is Savage–Dickey's, from the non-reversible posterior, which needs no more draws
# as the model grows (bridge sampling would need ~8 per parameter: thousands here). On the shipped
# data tau = 0 lies far in the posterior's tail, where Savage–Dickey refuses a number; `compare`
# then estimates it by nested SMC from both fits' draws, with its Monte Carlo error (and bounds it
# by variational bounds, labelled as bounds, only if that refuses too; docs/readme/bench-demo.md).
DEMO_STATES = None
DEMO_DRAWS = 500
DEMO_MODELS = ("reversible", "nonreversible")  # what the verdict and the report need
# 64 particles × 3 runs keep nested SMC in the demo's budget (95 s of a 4 min 6 s demo on the
# quiet machine: log BF 133.9 ± 0.6; 16 min for the default 256 × 4, which gave 134.08 ± 0.09 on
# the same fits; docs/readme/bench-demo.md)
DEMO_NESTED_SMC = {"particles": 64, "runs": 3}


def demo_counts(counts: TransitionCounts, n_states: int | None = DEMO_STATES) -> TransitionCounts:
    """The largest two-way component, or its ``n_states`` most-attempted states.

    Parameters
    ----------
    counts : TransitionCounts
    n_states : int, optional
        How many states to keep (default: all of the component).

    Returns
    -------
    TransitionCounts
        The restriction (its own largest two-way component again, so every state is connected
        both ways).

    Examples
    --------
    >>> from detailed_balance.collect.dataset import dataset_path
    >>> from detailed_balance.formats import read_attempt_log
    >>> counts = read_attempt_log(dataset_path())  # the shipped 10,000 attempts
    >>> counts
    TransitionCounts(151 states, 10000 attempts, 2636 distinct moves, 840 rejected)
    >>> demo_counts(counts).n_states, demo_counts(counts, 40).n_states
    (136, 37)
    """
    core = counts.largest_two_way_component()
    if n_states is not None and core.n_states > n_states:
        top = np.argsort(-core.attempts, kind="stable")[:n_states]
        keep = np.zeros(core.n_states, dtype=bool)
        keep[top] = True
        core = core.restrict(keep).largest_two_way_component()
    return core


def run_demo(
    out, *, data=None, synthetic: bool = False, seed: int = 0, progress: bool = True
) -> Path:
    """Run the whole flow and return the report folder.

    Counts (the whole largest two-way component), one NUTS fit of the reversible and of the
    non-reversible model, the model comparison of those fits (its Bayes factor: Savage–Dickey
    from the non-reversible posterior, or where that refuses, nested SMC from both fits' draws
    with its Monte Carlo error, and variational bounds, reported as bounds, only where that
    refuses too) and the report, written under ``out``:
    ``fits/<model>.nc``, ``comparison.json`` and ``report/`` (what ``detailed-balance demo``
    runs; a few minutes on 2 cores). Each fit runs once: the comparison and the report read the
    fits. The prior sensitivity of the Bayes factor (refits under other priors) and the
    unconstrained model are left to ``detailed-balance compare --sensitivity``.

    Parameters
    ----------
    out : str or Path
        Output folder.
    data : str or Path, optional
        Counts or an attempt log to analyse instead of the shipped dataset.
    synthetic : bool
        Analyse a 30-state synthetic reversible chain instead (its truth is known).
    seed : int
    progress : bool
        Show the sampler's progress bars and the report's stages.

    Returns
    -------
    Path
        The report folder.
    """
    from .comparison import compare
    from .formats import atomic_output, read_counts, to_json, write_counts
    from .inference import fit_ladder, save_fit
    from .report import build_report

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if synthetic:
        from .synthetic import reversible_chain, sample_counts

        chain = reversible_chain(30, width=1.0, seed=seed)
        counts = sample_counts(chain, attempts_per_source=200, seed=seed)
        print("data: a 30-state synthetic reversible chain, 200 attempts per state")
    else:
        path = Path(data) if data else dataset_path()
        counts = read_counts(path)
        print(f"data: {path}")
        if data is None:
            print(f"  (the animal agent on Gemma 3 270M, T = 1; reproduce with: {REPRODUCE})")
    _print_summary(counts)
    core = demo_counts(counts)
    print(
        f"analysing the largest two-way component: {core.n_states} states "
        f"({int(core.attempts.sum())} attempts; moves to other states count as escapes)"
    )
    write_counts(core, out / "counts.csv")
    nuts = {"draws": DEMO_DRAWS, "warmup": DEMO_DRAWS, "seed": seed, "progress": progress}
    print(f"fitting the {' and '.join(DEMO_MODELS)} models once (NUTS) ...")
    fits = fit_ladder(core, models=DEMO_MODELS, **nuts)
    (out / "fits").mkdir(exist_ok=True)
    for name, idata in fits.items():
        save_fit(idata, out / "fits" / f"{name}.nc")  # atomic: no partial fit on interrupt
    print(f"fits: {out / 'fits'}/")
    print("model comparison of the stored fits (no refit) ...")
    result = compare(fits, seed=seed, nested_smc=DEMO_NESTED_SMC)
    with atomic_output(out / "comparison.json") as tmp:
        tmp.write_text(to_json(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    print("report: least action, diagnostics and the comparison ...")
    index = build_report(
        out / "fits" / "reversible.nc",
        out / "report",
        seed=seed,
        draws=DEMO_DRAWS,
        comparison=result,
        progress=progress,
    )
    verdict = result.verdict
    if verdict:
        print(f"\nverdict: {verdict}\n")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return index.parent


def _print_summary(counts: TransitionCounts) -> None:
    s = counts.summary()
    print(
        f"  {s['attempts']} attempts, {s['states']} states, {s['transition_samples']} transitions "
        f"({s['unique_transitions']} distinct), {s['rejected']} rejected, "
        f"largest two-way component {s['largest_two_way_component']} states"
    )
