"""
From a word-task file to a finished report
==========================================

A file in the layout of the paper's word-task database (Song, Cao, Luo & Zhu, arXiv:2512.10047)
goes through least action, a posterior over the potential, the paper's diagnostics with error
bars, and the report (figures, tables, ``index.md``)::

    python examples/plot_word_task_report.py [FILE] [--out DIR] [--compare] [--quick]

FILE defaults to ``examples/data/word_task_synthetic.json`` (made by ``make_word_task_file.py``:
real words whose letters sum to 100, transitions sampled from a synthetic reversible chain whose
true potential is in ``data/word_task_truth.csv``). The paper's published word databases have the
same layout: pass one as FILE. ``INVALID00`` generations become rejections (the "escape").
``--compare`` adds the Bayesian model comparison (NUTS fits; a few minutes); ``--quick`` uses
200 posterior draws instead of 1000 (the documentation builds it that way).
"""

# %%
# Read the counts
# ---------------
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import detailed_balance
from detailed_balance.diagnostics import loop_test
from detailed_balance.formats import read_paper_words
from detailed_balance.least_action import minimise_action
from detailed_balance.modeldata import apply_gauge, gauge_reference
from detailed_balance.report import (
    analyse,
    build_report,
    plot_landscape,
    plot_pairwise,
    potential_table,
)

# the gallery runs the script from its folder, without __file__
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ap = argparse.ArgumentParser(description="From a word-task file to a finished report.")
ap.add_argument("file", nargs="?", default=HERE / "data" / "word_task_synthetic.json")
ap.add_argument("--out", default=HERE / "out" / "word_task")
ap.add_argument("--compare", action="store_true", help="run the model comparison (slow)")
ap.add_argument("--quick", action="store_true", help="200 posterior draws instead of 1000")
args = ap.parse_args()
detailed_balance.configure()  # with --compare: NUTS chains in parallel, as the CLI runs them
draws = 200 if args.quick else 1000

counts = read_paper_words(args.file)
print(counts)

# %%
# Least action on the raw counts
# ------------------------------
# T = N / N0 (rejections are the escape), with both of the paper's kernels K.
kernel = counts.kernel("escape")
for K in ("exp", "softplus"):
    print(minimise_action(kernel, K).summary())

# %%
# A posterior over V_LA, and the diagnostics
# ------------------------------------------
# Without a fit, :func:`~detailed_balance.report.analyse` draws T from the exact posterior of
# the unconstrained model (Dirichlet rows: no sampler needed) and runs least action on every
# draw. The true potential stands in for a formula for V (the paper's expression task) in the
# downhill-fraction diagnostic.
truth_file = Path(args.file).with_name("word_task_truth.csv")
potential = None
if truth_file.exists():
    with open(truth_file, newline="") as fh:
        truth = {row["state"]: float(row["V"]) for row in csv.DictReader(fh)}
    potential = truth.get

a = analyse(counts, K="exp", draws=draws, seed=0, potential=potential)
table = potential_table(a)
print("state          V_LA   94% HDI")
for row in table.itertuples(index=False):
    print(f"{row[0]:<12} {row[3]:6.2f}  [{row[4]:5.2f}, {row[5]:5.2f}]")

# %%
# Against the truth: how often does the 94% HDI cover the true V (in the same gauge)?
if potential is not None:
    group, weight, identified = gauge_reference(counts)
    true_v = apply_gauge([truth[s] for s in counts.states], group, weight)
    by_state = table.set_index("state")
    lo = by_state.loc[list(counts.states), "V_LA 94% HDI low"].to_numpy()
    hi = by_state.loc[list(counts.states), "V_LA 94% HDI high"].to_numpy()
    covered = ((true_v >= lo) & (true_v <= hi))[identified].mean()
    print(f"94% HDI covers the true V for {covered:.0%} of identified states")
    print(f"strong transitions going downhill under the true V: {a.downhill['fraction']:.2f}")

loops = loop_test(counts, cycles="basis")
print(
    f"pairwise: r = {a.pairwise.pearson_r:.3f}, chi2/ndf = {a.pairwise.chi2_ndf:.2f} on "
    f"{a.pairwise.ndf}; cycle basis: chi2/ndf = {loops.chi2_ndf:.2f} on {loops.ndf} "
    f"(p = {loops.p_value:.2f})"
)

# %%
# The potential landscape and the pairwise test
# ---------------------------------------------
# The first figure is V_LA per state with its 94% HDI; the second, the paper's pairwise plot:
# the log ratio of forward and backward counts against the fitted ΔV, with error bars. Each
# ``plot_*`` function returns a matplotlib ``Figure`` (``landscape.savefig("v.pdf")`` keeps it).
landscape = plot_landscape(a)
pairwise = plot_pairwise(a)

# %%
# The report
# ----------
# Figures (PNG and PDF), Markdown and LaTeX tables, and ``index.md`` that ties them together.
index = build_report(
    args.file, args.out, K="exp", draws=draws, compare=args.compare, potential=potential,
    compare_kwargs={"draws": 500, "warmup": 500}, progress=False,
)  # fmt: skip
print(f"report: {index}")
