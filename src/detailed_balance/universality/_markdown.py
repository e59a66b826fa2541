"""The result in words: the verdict paragraph and the Markdown section."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._arviz import HDI_LABEL

if TYPE_CHECKING:
    from ._compare import UniversalityResult


def _row(result: UniversalityResult, model: str) -> dict | None:
    return next((r for r in result.table if r["model"] == model), None)


def _iv(d: dict, digits: int = 2) -> str:
    return f"{d['mean']:.{digits}f} [{d['hdi_low']:.{digits}f}, {d['hdi_high']:.{digits}f}]"


def write_verdict(result: UniversalityResult) -> str:
    """One paragraph: does one landscape explain the datasets, and how does temperature act?

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.

    Returns
    -------
    str
    """
    shared, pooled = _row(result, "shared"), _row(result, "pooled")
    parts = []
    bf = result.bayes_factor
    d, d_se = shared["elpd_vs_separate"], shared["elpd_vs_separate_se"]
    loo_text = f"LOO elpd difference shared − separate {d:+.1f} ± {d_se:.1f} nats"
    if pooled is not None:
        loo_text += (
            f", pooled − separate {pooled['elpd_vs_separate']:+.1f} ± "
            f"{pooled['elpd_vs_separate_se']:.1f}"
        )
    call = bf.get("call")
    if bf.get("log_bf") is None:
        bf_text = "the Bayes factor could not be estimated (see the notes)"
    else:
        bf_text = f"log BF shared vs pooled {_bf_size(bf)}, Savage–Dickey"
    if call == "shared":
        decision = "One landscape explains the datasets: the evidence favours the shared field"
    elif call == "pooled":
        decision = (
            "The datasets do not share one landscape: the evidence favours dataset-specific "
            "departures from a common field"
        )
    elif bf.get("log_bf") is not None and bf["converged"]:
        decision = "The evidence does not decide between one landscape and departures from it"
    else:
        decision = (
            "LOO favours one shared landscape"
            if d > 2 * d_se
            else "LOO favours separate landscapes"
            if d < -2 * d_se
            else "Neither the Bayes factor nor LOO decides between one landscape and several"
        )
    parts.append(f"{decision} ({bf_text}; {loo_text}).")
    if result.tau is not None:
        parts.append(
            f"The departures from the shared field have spread τ = {_iv(result.tau)} ({HDI_LABEL})."
        )
    if result.beta.get("shared"):
        b = ", ".join(f"{r['dataset']} {_iv(r)}" for r in result.beta["shared"][1:])
        parts.append(f"Field scales β relative to {result.beta['shared'][0]['dataset']}: {b}.")
    if result.slope is not None:
        s = result.slope
        inside = s["hdi_low"] <= -1 <= s["hdi_high"]
        parts.append(
            f"The slope of log β against log T is {_iv(s)} over {s['datasets_used']} datasets: "
            + (
                "consistent with temperature acting as an inverse temperature on the field (−1)."
                if inside
                else "temperature does not act as a plain inverse temperature (−1 is outside "
                "the interval)."
            )
        )
    return " ".join(parts)


def _fmt(x, digits: int = 1) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _bf_size(bf: dict) -> str:
    """The shared-vs-pooled log BF (an estimate from Savage–Dickey) in words, for the verdict
    and the Markdown alike."""
    if bf["converged"]:
        return f"{bf['log_bf']:+.1f} ± {_fmt(bf['se'])}"
    if bf.get("tail_side") == 1:
        return (
            "far below −log 10, with no size to report (τ = 0 lies in the far tail of the "
            "posterior; see the notes)"
        )
    return "not reliable (the estimate was refused; see the notes)"


def format_markdown(result: UniversalityResult) -> str:
    """The result as a Markdown section (tables with 94% HDIs, the verdict, notes).

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.

    Returns
    -------
    str
    """
    lines = ["## Universality: one potential across datasets?", "", result.verdict, ""]
    lines += [
        "| dataset | states | edges | attempts | identified | temperature |",
        "|---|---|---|---|---|---|",
    ]
    for d, t in zip(result.settings["datasets"], result.temperatures, strict=True):
        lines.append(
            f"| {d['name']} | {d['states']} | {d['edges']} | {d['attempts']} | "
            f"{d['identified']} | {'–' if t is None else t} |"
        )
    lines += [
        "",
        "| model | elpd LOO | Δelpd vs separate | max R-hat | divergences |"
        + (" bridge log Z | bridge log BF vs separate |" if result.settings.get("bridge") else ""),
        "|---|---|---|---|---|" + ("---|---|" if result.settings.get("bridge") else ""),
    ]
    for r in result.table:
        line = (
            f"| {r['model']} | {_fmt(r['elpd_loo'])} ± {_fmt(r['elpd_se'])} | "
            f"{_fmt(r['elpd_vs_separate'])} ± {_fmt(r['elpd_vs_separate_se'])} | "
            f"{_fmt(r['max_rhat'], 3)} | {r['divergences']} |"
        )
        if result.settings.get("bridge"):
            lz = f"{_fmt(r['log_z'])} ± {_fmt(r['log_z_se'])}" if r["log_z"] is not None else "–"
            bf = (
                f"{_fmt(r['log_bf_vs_separate'])} ± {_fmt(r['log_bf_se'])}"
                if r["log_bf_vs_separate"] is not None
                else "–"
            )
            line += f" {lz} | {bf} |"
        lines.append(line)
    bf = result.bayes_factor
    if bf.get("log_bf") is not None:
        lines += [
            "",
            f"log BF shared vs pooled (one landscape vs departures from it; Savage–Dickey at "
            f"τ = 0, Pareto k {_fmt(bf['pareto_k'], 2)}, ESS {_fmt(bf['ess'], 0)}): "
            f"{_bf_size(bf)}; decision at ±log 10: {bf['call'] or 'none'}.",
        ]
    if result.beta:
        models = list(result.beta)
        lines += ["", "| dataset | " + " | ".join(f"β ({m}), {HDI_LABEL}" for m in models) + " |"]
        lines.append("|---|" + "---|" * len(models))
        for k, name in enumerate(result.beta[models[0]]):
            cells = " | ".join(_iv(result.beta[m][k]) for m in models)
            lines.append(f"| {name['dataset']} | {cells} |")
    if result.tau is not None:
        lines += ["", f"τ (pooled model's spread of departures): {_iv(result.tau)} ({HDI_LABEL})."]
    for s, m in ((result.slope, "shared"), (result.slope_pooled, "pooled")):
        if s is not None:
            lines.append(
                f"Slope of log β against log T ({m} model, {s['datasets_used']} datasets at "
                f"T = {', '.join(f'{t:g}' for t in s['temperatures'])}): {_iv(s)} ({HDI_LABEL})."
            )
    if result.correlations:
        lines += [
            "",
            "| datasets | common identified states | correlation of fields (separate fits), "
            f"{HDI_LABEL} |",
            "|---|---|---|",
        ]
        for c in result.correlations:
            iv = _iv(c) if "mean" in c else "–"
            lines.append(f"| {c['a']} vs {c['b']} | {c['n_common']} | {iv} |")
    if result.departures:
        lines += [
            "",
            f"| dataset | identified states | δ with {HDI_LABEL} excluding 0 | largest |",
            "|---|---|---|---|",
        ]
        for d in result.departures:
            big = ", ".join(f"{x['state']} {x['mean']:+.2f}" for x in d["largest"][:5]) or "–"
            lines.append(
                f"| {d['dataset']} | {d['n_identified']} | {d['n_away_from_zero']} | {big} |"
            )
    if result.notes:
        lines += ["", "Notes:", *[f"- {n}" for n in result.notes]]
    lines.append("")
    return "\n".join(lines)
