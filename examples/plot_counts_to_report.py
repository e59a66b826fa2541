"""
From a counts table to a fit, a report and a verdict
====================================================

1. Counts: sampled here from a synthetic reversible chain (20 states) with the paper's design
   and written as the interchange CSV ``source,target,count`` (an empty target is a rejection).
   Replace this step with your own file.
2. Fit the reversible model (NUTS) and save it as netCDF.
3. Report on the fit: least action per posterior draw (checked against the model's own
   equilibrium potential, draw by draw), the diagnostics, figures and tables, and the Bayesian
   model comparison (evidence, Bayes factors, LOO, G² test).

::

    python examples/plot_counts_to_report.py [--out DIR] [--quick]

``--quick`` uses short chains and skips the comparison (about a minute instead of several; the
documentation builds it that way). The same from the shell::

    detailed-balance fit counts.csv --model all --out fits/
    detailed-balance compare fits/*.nc --out comparison/
    detailed-balance report fits/reversible.nc --comparison comparison/comparison.json --out report
"""

# %%
# Counts
# ------
from __future__ import annotations

import argparse
from pathlib import Path

import detailed_balance
from detailed_balance import compare, fit_ladder
from detailed_balance.formats import read_counts, write_counts
from detailed_balance.inference import fit, save_fit, summarise
from detailed_balance.report import (
    analyse,
    build_report,
    plot_landscape,
    plot_least_action_posterior,
)
from detailed_balance.synthetic import reversible_chain, sample_counts

# the gallery runs the script from its folder, without __file__
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ap = argparse.ArgumentParser(description="From a counts table to a fit, a report and a verdict.")
ap.add_argument("--out", default=HERE / "out" / "counts_to_report")
ap.add_argument("--quick", action="store_true", help="short chains, no comparison")
args = ap.parse_args()
# as the command line does: NUTS chains in parallel (one CPU device each), float64, and a
# compilation cache; once, before the first JAX computation
detailed_balance.configure()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

chain = reversible_chain(20, width=1.0, degree=4, seed=11)  # the truth: chain.V
counts = sample_counts(chain, design="discovered", total_attempts=4000, seed=11)
write_counts(counts, out / "counts.csv")
counts = read_counts(out / "counts.csv")
print(counts)

# %%
# Fit the reversible model
# ------------------------
# NUTS, one chain per core; the result is an ArviZ object, saved as netCDF. With ``--quick``'s
# short chains R-hat may exceed 1.01, and the fit says so in a ``ConvergenceWarning``.
n = 300 if args.quick else 1000
idata = fit(counts, "reversible", draws=n, warmup=n, seed=0, progress=False)
save_fit(idata, out / "fit.nc")
summary = summarise(idata)
print(summary["gauge"])
for entry in summary["states"][:5]:
    v = entry["V"]
    print(
        f"{entry['state']}: V = {v['mean']:.2f} [{v['hdi_lower']:.2f}, {v['hdi_upper']:.2f}] "
        f"(94% HDI), identified: {entry['identified']}"
    )

# %%
# Least action per posterior draw
# -------------------------------
# Under the reversible model, the least-action potential of each posterior draw of T must equal
# the model's own equilibrium potential V; ``equilibrium_gap`` is the largest difference.
a = analyse(counts, idata, K="exp", draws=n, seed=0)
print(a.source)
print(f"max |V_LA - V| over draws and states: {a.equilibrium_gap:.1e}")
landscape = plot_landscape(a)
least_action_posterior = plot_least_action_posterior(a)

# %%
# The report
# ----------
# Figures, tables and ``index.md``; without ``--quick`` it includes the model comparison of the
# ladder's fits (the reversible fit above plus the other two models, each fitted once).
comparison = None
if not args.quick:
    others = fit_ladder(counts, models=("unconstrained", "nonreversible"), draws=500,
                        warmup=500, seed=0, progress=False)  # fmt: skip
    comparison = compare({"reversible": idata, **others})
index = build_report(
    out / "fit.nc", out / "report", K="exp", draws=n, compare=not args.quick,
    comparison=comparison, progress=False,
)  # fmt: skip
print(f"report: {index}")
