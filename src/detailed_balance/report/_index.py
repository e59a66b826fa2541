"""The report's ``index.md``: what was done, the verdict, the figures, the notes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .._arviz import HDI_LABEL
from ..least_action import GAUGE as LA_GAUGE
from ..modeldata import GAUGE as MODEL_GAUGE
from ._analysis import Analysis
from ._markup import markdown_escape

PAPER = (
    "Song, Cao, Luo & Zhu, *Detailed balance in large language model-driven agents*, "
    "arXiv:2512.10047"
)


def _index(a: Analysis, input_path: Path, figures: dict, tables: dict) -> str:
    s = a.counts.summary()
    p, w = a.pairwise, a.width
    counts_name = input_path.name
    if input_path.suffix == ".nc" or not re.fullmatch(r"[\w.+-]+", counts_name):
        counts_name = "COUNTS"  # inside a code span nothing can be escaped
    lines = [
        f"# Detailed-balance report: {markdown_escape(input_path.name)}",
        "",
        f"{s['states']} states, {s['attempts']} attempts ({s['moves']} moves, "
        f"{s['self_transitions']} self-replies, {s['rejected']} rejected), "
        f"{s['unique_moves']} distinct moves; {s['two_way_pairs']} pairs seen both ways; "
        f"{s['no_incoming']} states never reached.",
        "",
        "## Verdict",
        "",
    ]
    if a.comparison is not None:
        lines += [
            a.comparison.verdict,
            "",
            "Full table: [tables/comparison.md](tables/comparison.md) "
            "([LaTeX](tables/comparison.tex)).",
            "",
        ]
    else:
        lines += [
            f"No Bayesian verdict in this report: {a.comparison_note}. Run "
            f"`detailed-balance compare {counts_name}` (or this report with the comparison) "
            "for evidence, Bayes factors, LOO and the G² test. The diagnostics below are the "
            "paper's, with error bars; they are not a test of one model against another.",
            "",
        ]
    la = a.posterior
    lines += [
        "## Least-action potential",
        "",
        f"The potential minimising the action S[V; T] = (1/|states|) Σ T(g←f) K(V(f) − V(g)) with "
        f"K = {a.K} ({PAPER}). Posterior over T: {a.source}. Gauge of the posterior: "
        f"{MODEL_GAUGE}; of the raw-count fit: {LA_GAUGE}. "
        f"Intervals are {HDI_LABEL} credible intervals.",
        "",
        f"- On the raw counts: {a.point.summary()}",
        f"- Per posterior draw: {la.summary()}",
    ]
    if a.equilibrium_gap is not None:
        lines.append(
            f"- Consistency check: under the reversible model V_LA equals the model's equilibrium "
            f"potential draw by draw; max |V_LA − V| = {a.equilibrium_gap:.2g} "
            f"({'passed' if a.equilibrium_gap < 1e-4 else 'FAILED'}, tolerance 1e-4)."
        )
    lines += [
        "",
        "![Potential landscape](figures/potential_landscape.png)  ",
        f"*{figures['potential_landscape']}* ([PDF](figures/potential_landscape.pdf))",
        "",
        "![Least-action posterior](figures/least_action_posterior.png)  ",
        f"*{figures['least_action_posterior']}* ([PDF](figures/least_action_posterior.pdf))",
        "",
        "Table: [tables/potentials.md](tables/potentials.md) ([LaTeX](tables/potentials.tex)).",
        "",
        "## Diagnostics (the paper's, with error bars)",
        "",
        f"- Pairwise: {len(p.f)} pairs seen ≥ 2 times each way; "
        + (
            f"Pearson r = {p.pearson_r:.3f}; weighted χ²/ndf = {p.chi2_ndf:.2f} on {p.ndf} df "
            f"(p = {p.p_value:.3g}); errors are Poisson on the counts and posterior sd on ΔV; "
            "ndf subtracts the fitted V differences."
            if p.ndf and np.isfinite(p.chi2_ndf)
            else "nothing to test."
        ),
        f"- 3-cycles seen in all six directions: {a.triangles.ndf}; "
        + (
            f"χ²/ndf = {a.triangles.chi2_ndf:.2f} (triplets share arcs, so this χ² is approximate)."
            if a.triangles.ndf
            else "nothing to test."
        ),
        f"- Cycle basis of the two-way graph: {a.basis.ndf} independent cycles; "
        + (
            f"joint χ²/ndf = {a.basis.chi2_ndf:.2f} (p = {a.basis.p_value:.3g})."
            if a.basis.ndf
            else "nothing to test (the two-way graph is a tree)."
        ),
        f"- One-way pairs: {len(a.one_way.f)}"
        + (
            f"; share whose least-action ΔV meets the bound implied by never seeing the reverse "
            f"({a.one_way.level:.0%} limit): {a.one_way.fraction_satisfied:.2f}."
            if len(a.one_way.f)
            else "."
        ),
        f"- Width of V across states σ = {w['sigma']:.2f} ± {w['sigma_sd']:.2f}; "
        + (
            f"S_min = {w['S_min']:.3f} against "
            if np.isfinite(w.get("S_min", np.nan))
            else "S_min undefined; "
        )
        + f"the paper's K(0)/(√π σ) = {w['S_predicted']:.3f}.",
    ]
    if a.downhill is not None:
        d = a.downhill
        lines.append(
            f"- Strong transitions (T > {d['threshold']}) going downhill under the supplied "
            f"potential: {d['fraction']:.3f} of {d['strong']}."
        )
    for name in ("pairwise", "loops", "cycle_affinities", "potential_histogram"):
        lines += [
            "",
            f"![{name}](figures/{name}.png)  ",
            f"*{figures[name]}* ([PDF](figures/{name}.pdf))",
        ]
    lines += [
        "",
        "Table: [tables/diagnostics.md](tables/diagnostics.md) ([LaTeX](tables/diagnostics.tex)); "
        "all numbers: [report.json](report.json).",
    ]
    notes = report_notes(a)
    lines += ["", "## Notes", ""]
    lines += [f"- {markdown_escape(n)}" for n in notes] if notes else ["None."]
    return "\n".join(lines) + "\n"


def report_notes(a: Analysis) -> list[str]:
    """Every warning and refusal behind the report, one sentence each: the data's notes, the
    fit's (R-hat, ESS, divergences), least action's, and the comparison's (evidence that did
    not converge, a Bayes factor withheld, a comparison not run or failed).

    Parameters
    ----------
    a : Analysis
        The analysis of one data set.

    Returns
    -------
    list of str
        The notes.
    """
    notes = [*a.counts.notes, *a.notes]
    if a.comparison is not None:
        notes += [f"comparison: {n}" for n in a.comparison.notes]
    elif a.comparison_note:
        notes.append(a.comparison_note[0].upper() + a.comparison_note[1:] + ".")
    return notes
