"""From a file in the paper's word-task layout to a finished report.

    python examples/word_task_report.py [FILE] [--out DIR] [--compare]

FILE defaults to ``examples/data/word_task_synthetic.json`` (made by ``make_word_task_file.py``:
real words whose letters sum to 100, transitions sampled from a synthetic reversible chain whose
true potential is in ``data/word_task_truth.csv``). The paper's published word databases have the
same layout (Song, Cao, Luo & Zhu, arXiv:2512.10047): pass one as FILE.

Steps: read the counts (``INVALID00`` generations become rejections, the "escape"); least action
on the raw counts with both kernels; a posterior over V_LA from the exact posterior of the
unconstrained model; the paper's diagnostics with error bars; then the report (figures, tables,
index.md). ``--compare`` adds the Bayesian model comparison (NUTS fits; a few minutes).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from detailed_balance import _arviz
from detailed_balance.diagnostics import (
    downhill_fraction,
    loop_test,
    pairwise_test,
    unconstrained_posterior_kernel,
)
from detailed_balance.formats import read_paper_words
from detailed_balance.least_action import minimise_action
from detailed_balance.modeldata import apply_gauge, gauge_reference
from detailed_balance.report import build_report

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=HERE / "data" / "word_task_synthetic.json")
    ap.add_argument("--out", default=HERE / "out" / "word_task")
    ap.add_argument("--compare", action="store_true", help="run the model comparison (slow)")
    args = ap.parse_args()

    counts = read_paper_words(args.file)
    print(counts)
    group, weight, identified = gauge_reference(counts)

    # least action on the raw counts, T = N / N0 (rejections are the escape), both kernels
    kernel = counts.kernel("escape")
    for K in ("exp", "softplus"):
        print(minimise_action(kernel, K).summary())

    # a posterior over V_LA without a sampler: exact Dirichlet posterior of each row
    post = unconstrained_posterior_kernel(counts, draws=1000, seed=0)
    la = minimise_action(post, "exp", gauge=(group, weight), progress=True)
    lo, hi = _arviz.hdi(la.V, 0.94)
    order = np.argsort(-la.V.mean(0))
    print("\nstate          V_LA   94% HDI")
    for i in order:
        print(f"{counts.states[i]:<12} {la.V[:, i].mean():6.2f}  [{lo[i]:5.2f}, {hi[i]:5.2f}]")

    truth_file = Path(args.file).with_name("word_task_truth.csv")
    potential = None
    if truth_file.exists():
        with open(truth_file, newline="") as fh:
            truth = {row["state"]: float(row["V"]) for row in csv.DictReader(fh)}
        true_v = apply_gauge(np.array([truth[s] for s in counts.states]), group, weight)
        covered = ((true_v >= lo) & (true_v <= hi))[identified].mean()
        print(f"\n94% HDI covers the true V for {covered:.0%} of identified states")
        potential = truth.get  # stands in for a formula for V (the paper's expression task)

    pw = pairwise_test(counts, la.V)
    loops = loop_test(counts, cycles="basis")
    print(
        f"pairwise: r = {pw.pearson_r:.3f}, chi2/ndf = {pw.chi2_ndf:.2f} on {pw.ndf}; "
        f"cycle basis: chi2/ndf = {loops.chi2_ndf:.2f} on {loops.ndf} (p = {loops.p_value:.2f})"
    )
    if potential is not None:
        d = downhill_fraction(post, potential, threshold=0.05)
        print(f"strong transitions going downhill under the true V: {d['fraction']:.2f}")

    index = build_report(
        args.file, args.out, K="exp", compare=args.compare, potential=potential,
        compare_kwargs={"draws": 500, "warmup": 500},
    )  # fmt: skip
    print(f"\nreport: {index}")


if __name__ == "__main__":
    main()
