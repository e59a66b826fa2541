"""Words: the Kass–Raftery scale, the verdict paragraph and the Markdown tables."""

from __future__ import annotations

import math

import numpy as np

# Kass & Raftery (1995) on 2 ln BF: 0-2, 2-6, 6-10, > 10; here on ln BF (nats)
KASS_RAFTERY = (
    (1.0, "not worth more than a bare mention"),
    (3.0, "positive"),
    (5.0, "strong"),
    (math.inf, "very strong"),
)


def kass_raftery(log_bf: float) -> str:
    """Kass–Raftery category of ``|log BF|`` (natural log).

    Parameters
    ----------
    log_bf : float
        A log Bayes factor.

    Returns
    -------
    str
        ``"not worth more than a bare mention"``, ``"positive"``, ``"strong"`` or ``"very strong"``.

    Examples
    --------
    >>> kass_raftery(2.0), kass_raftery(-6.0)
    ('positive', 'very strong')
    """
    for bound, label in KASS_RAFTERY:
        if abs(log_bf) < bound:
            return label
    return KASS_RAFTERY[-1][1]


def _pm(x, se, digits=1) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    if se is None or not np.isfinite(se):
        return f"{x:.{digits}f}"
    return f"{x:.{digits}f} ± {se:.{digits}f}"


def write_verdict(result) -> str:
    """One plain-language paragraph that never overstates (Kass–Raftery on the cautious end).

    Parameters
    ----------
    result : ComparisonResult
        The comparison.

    Returns
    -------
    str
    """
    t = result.table.set_index("model")
    parts = []
    tree = result.settings.get("n_cycles", 1) == 0
    alt = "nonreversible" if "nonreversible" in t.index else "unconstrained"
    favours_balance = False  # the closing caveat is about evidence *for* detailed balance
    if tree:
        parts.append(
            "The support graph has no cycles: every Markov chain on a tree is reversible, "
            "so these data cannot contradict detailed balance; any Bayes factor here "
            "compares priors, not hypotheses."
        )
    elif alt in t.index:
        x, se = t.loc[alt, "log_bf_vs_reversible"], t.loc[alt, "log_bf_se"]
        how = _bf_estimator(t, alt)
        tail = t.loc[alt, "bf_tail"] if "bf_tail" in t.columns else 0
        if not np.isfinite(x) and tail in (1, -1):
            side = "a violation of detailed balance" if tail > 0 else "detailed balance"
            parts.append(
                f"The Bayes factor ({alt} vs reversible) favours {side} far beyond the decision "
                "threshold (|log BF| > log 10), but its size is not a number with a finite "
                "error: tau = 0 lies far in the tail of the non-reversible posterior, where "
                "the Savage–Dickey estimate is dominated by a few draws (see the notes)."
            )
            favours_balance = tail < 0
        elif not np.isfinite(x):
            failed = [m for m in (alt, "reversible") if not np.isfinite(t.loc[m, "log_z"])]
            which = " and ".join(f"the {m} model" for m in failed) or "one model"
            why = (
                "the Savage–Dickey estimate was refused and the evidence of "
                if alt == "nonreversible" and "bf_method" in t.columns
                else "the evidence of "
            )
            parts.append(
                f"No Bayes factor is reported: {why}{which} could not be estimated (see the "
                "notes)."
            )
        elif how in BOUND_TEXT:
            favours_balance = x < 0
            parts.append(_bound_text(t, alt, x, se, how))
        elif abs(x) <= 2 * se:
            parts.append(
                f"{_bf_text(x, se, alt, how)} is within twice its Monte Carlo error of zero: "
                "inconclusive."
            )
        else:
            side = "detailed balance" if x < 0 else "a violation of detailed balance"
            favours_balance = x < 0
            cautious = abs(x) - 2 * se
            parts.append(
                f"{_bf_text(x, se, alt, how)} favours {side} ({kass_raftery(cautious)} on the "
                "Kass–Raftery scale, judged at its lower 2-se end)."
            )
        sens = result.sensitivity
        col = f"log_bf_{alt}"
        if col in sens and sens[col].notna().sum() > 1:
            lo, hi = sens[col].min(), sens[col].max()
            robust = (lo > 0) == (hi > 0) and kass_raftery(lo) == kass_raftery(hi)
            parts.append(
                f"Across the prior settings tried the log BF ranges from {lo:.1f} to "
                f"{hi:.1f}: {'robust to' if robust else 'sensitive to'} the prior."
            )
    if alt in t.index and "reversible" in t.index:
        d = -t.loc[alt, "elpd_vs_reversible"]
        se = t.loc[alt, "elpd_vs_reversible_se"]
        z = abs(d) / se if se > 0 else np.inf
        size = f"{abs(d):.2f} ± {se:.2f} elpd"
        if abs(d) > 2 * se:
            win = "the reversible model" if d > 0 else f"the {alt} model"
            parts.append(f"PSIS-LOO prefers {win} by {size} (z = {z:.1f} > 2).")
        else:
            parts.append(
                f"PSIS-LOO does not separate the reversible and {alt} models "
                f"(difference {size}, z = {z:.1f} ≤ 2)."
            )
        if t["pareto_k_bad_attempts"].sum() > 0:
            parts.append("Some Pareto k exceed 0.7, so LOO is unreliable for those cells.")
    lrt = result.lrt
    if lrt:
        if lrt.get("p_value") is not None:
            reject = lrt["p_value"] < 0.05
            parts.append(
                f"The likelihood-ratio test gives G² = {lrt['statistic']:.1f} on "
                f"{lrt['df']} df, {_lrt_p(lrt)}"
                + (f" ({lrt['note']})" if lrt.get("note") else "")
                + ": "
                + (
                    "reversibility is rejected at the 5% level."
                    if reject
                    else "no evidence against reversibility at the 5% level."
                )
            )
        elif not tree:
            parts.append(f"The likelihood-ratio test is unavailable: {lrt.get('note')}.")
    if favours_balance:
        parts.append(
            "Evidence for detailed balance means the reversible model predicts these "
            "counts at least as well with fewer parameters; it bounds, not excludes, "
            "small violations."
        )
    return " ".join(parts)


# bf_method of a bound (comparison._compare.BOUND_METHODS) -> the relation it states
BOUND_TEXT = {"variational lower bound": "≥", "variational upper bound": "≤"}


def _bound_text(t, alt: str, x: float, se: float, how: str) -> str:
    """The verdict's sentence for a Bayes factor that is a bound, never an estimate."""
    lower = BOUND_TEXT[how] == "≥"
    other = ("bf_upper", "bf_upper_se") if lower else ("bf_lower", "bf_lower_se")
    side = "a violation of detailed balance" if lower else "detailed balance"
    return (
        f"No estimate of the Bayes factor could be made; it is bounded instead: log BF "
        f"{BOUND_TEXT[how]} {_pm(x, se)} ({alt} vs reversible; a {how}, not an estimate: Jensen's "
        f"inequality on both fits' draws, ± its Monte Carlo se; the other side's bound is "
        f"{_pm(t.loc[alt, other[0]], t.loc[alt, other[1]])}), so the data favour {side} "
        f"({kass_raftery(abs(x) - 2 * se)} on the Kass–Raftery scale, judged at the bound's "
        "2-se end)."
    )


def _bf_text(x: float, se: float, alt: str, how: str) -> str:
    """``log BF = 2.1 ± 0.3 (nonreversible vs reversible; <estimator>)``."""
    return f"log BF = {_pm(x, se)} ({alt} vs reversible; {how})"


def _bf_estimator(t, alt: str) -> str:
    """Which estimator gave the Bayes factor and its error, with bridge sampling's beside it."""
    method = t.loc[alt, "bf_method"] if "bf_method" in t.columns else "evidences"
    if method == "savage-dickey":
        text = "Savage–Dickey density ratio at tau = 0, ± its Monte Carlo se"
        b, b_se = t.loc[alt, "bf_bridge"], t.loc[alt, "bf_bridge_se"]
        if np.isfinite(b):
            text += f"; {evidences_label(*_evidence_methods(t, alt))} gives {_pm(b, b_se)}"
        return text
    if method == "bridge":
        return "difference of bridge-sampling log evidences, ± its Monte Carlo se"
    if method in BOUND_TEXT:
        return method
    if method == "nested-smc":
        return (
            "nested SMC: tempered from the reversible posterior × a flow proposal to the "
            "non-reversible posterior, ± its Monte Carlo se"
        )
    if method == "tau-path":
        return (
            "thermodynamic integration over tau's prior scale (the tau path), ± its Monte Carlo "
            "and grid error"
        )
    if "evidence_method" in t.columns:
        alt_method, ref_method = _evidence_methods(t, alt)
        same = alt_method == ref_method
        methods = alt_method if same else f"{alt_method}; reversible: {ref_method}"
        return f"difference of log evidences ({methods}), ± its se"
    return "difference of log evidences, ± its se"


def _evidence_methods(t, alt: str) -> tuple[str, str]:
    """The estimators of ``alt``'s and the reversible model's log evidence ("bridge" if unsaid)."""
    if "evidence_method" not in t.columns or "reversible" not in t.index:
        return "bridge", "bridge"
    return t.loc[alt, "evidence_method"], t.loc["reversible", "evidence_method"]


def evidences_label(alt_method: str, ref_method: str) -> str:
    """Who gave a difference of log evidences: "bridge sampling", or the estimators named."""
    if alt_method == ref_method == "bridge":
        return "bridge sampling"
    if alt_method == ref_method:
        return f"the difference of {alt_method} log evidences"
    return f"the difference of log evidences ({alt_method}; reversible: {ref_method})"


def _lrt_p(lrt: dict) -> str:
    """The G² p-value with what it is (exact conditional or bootstrap, Monte Carlo se) and chi²."""
    chi2 = f"chi² approximation p = {lrt['p_value_chi2']:.3g} on {lrt['df']} df"
    if not lrt.get("samples"):
        return f"p = {lrt['p_value']:.3g} ({chi2})"
    b, p = lrt["samples"], lrt["p_value"]
    if p <= 1.0 / (b + 1) + 1e-12:  # no sampled table reached the observed G²
        value = f"p ≤ {p:.2g}"
    else:
        value = f"p = {p:.3g} ± {lrt['p_value_se']:.2g}"
    if lrt.get("method", "conditional") == "conditional":
        what = f"exact conditional test, {b} tables"
    else:
        what = f"parametric bootstrap, {b} replicates, anticonservative on sparse data"
    return f"{value} ({what}; {chi2})"


def _format_log_z(log_z: float, se: float, method: str) -> str:
    """``-123.45 ± 0.12 (bridge)``, ``-120.00 (exact)``, or ``n/a (bridge failed)``."""
    if not np.isfinite(log_z):
        return f"n/a ({method} failed, see notes)"
    if se == 0:
        return f"{log_z:.2f} (exact)"
    return f"{_pm(log_z, se, 2)} ({method})"


def format_markdown(result) -> str:
    """Markdown tables (models, G², sensitivity) and the verdict.

    Parameters
    ----------
    result : ComparisonResult
        The comparison.

    Returns
    -------
    str
    """
    t = result.table
    lines = [
        "| model | log Z | log BF vs reversible | elpd LOO | elpd diff | p_loo | Pareto k max "
        "(attempts k>0.7) |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in t.iterrows():
        z = _format_log_z(r.log_z, r.log_z_se, r.evidence_method)
        if np.isfinite(r.bridge_check):
            z += f"; bridge {_pm(r.bridge_check, r.bridge_check_se, 2)}"
        bf = _pm(r.log_bf_vs_reversible, r.log_bf_se, 2)
        if r.get("bf_method") in BOUND_TEXT and np.isfinite(r.log_bf_vs_reversible):
            bf = f"{BOUND_TEXT[r.bf_method]} {bf} ({r.bf_method})"  # a bound, never an estimate
        elif r.get("bf_method") in ("savage-dickey", "tau-path", "nested-smc") and np.isfinite(
            r.log_bf_vs_reversible
        ):
            bf += f" ({r.bf_method})"
        lines.append(
            f"| {r.model} | {z} | {bf} | "
            f"{_pm(r.elpd_loo, r.elpd_se)} | {_pm(r.elpd_diff, r.elpd_diff_se)} | "
            f"{r.p_loo:.1f} | {r.pareto_k_max:.2f} ({int(r.pareto_k_bad_attempts)}) |"
        )
    lrt = result.lrt
    if lrt:
        lines.append("")
        if lrt.get("p_value") is not None:
            lines.append(
                f"Likelihood-ratio (G²) test of reversibility: G² = {lrt['statistic']:.2f}, "
                f"df = {lrt['df']} (testable independent cycles, of {lrt['df_support']} in the "
                f"support graph), {_lrt_p(lrt)}"
                + (f". Note: {lrt['note']}" if lrt.get("note") else "")
            )
        else:
            lines.append(f"Likelihood-ratio (G²) test: not applicable ({lrt.get('note')})")
    s = result.sensitivity
    if len(s):
        lines += [
            "",
            "| prior | field scale | cycle scale | log BF nonrev vs rev | "
            "log BF unconstrained vs rev |",
            "|---|---|---|---|---|",
        ]
        for _, r in s.iterrows():
            nr = _pm(r.get("log_bf_nonreversible"), r.get("log_bf_nonreversible_se"), 2)
            un = _pm(r.get("log_bf_unconstrained"), r.get("log_bf_unconstrained_se"), 2)
            lines.append(
                f"| {r.prior} ({r.kind}) | {r.field_scale:.3g} | {r.cycle_scale:.3g} | "
                f"{nr} | {un} |"
            )
    lines += ["", result.verdict]
    if result.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
