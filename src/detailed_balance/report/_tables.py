"""The report's tables as DataFrames: potentials per state, diagnostics."""

from __future__ import annotations

import numpy as np

from .._arviz import HDI_LABEL, HDI_PROB
from ._analysis import Analysis


def potential_table(a: Analysis):
    """Per state: attempts, V_LA on raw counts, posterior mean and 94% HDI (and the model's V).

    Parameters
    ----------
    a : Analysis
        The analysis of one data set.

    Returns
    -------
    pandas.DataFrame
        One row per state, highest mean V_LA first.
    """
    import pandas as pd

    from .. import _arviz

    v = a.posterior.V
    finite = np.isfinite(v).all(axis=0)
    lo, hi = _arviz.hdi(np.where(np.isfinite(v), v, 0.0), HDI_PROB)
    mean = np.where(finite, np.mean(np.where(np.isfinite(v), v, 0.0), axis=0), np.nan)
    status = np.where(
        a.point.reference,
        "identified",
        np.where(
            a.point.direction > 0,
            "runs to +inf",
            np.where(a.point.direction < 0, "runs to -inf", "undetermined"),
        ),
    )
    df = pd.DataFrame(
        {
            "state": a.counts.states,
            "attempts": a.counts.attempts,
            "V_LA (counts)": a.point.V,
            "V_LA mean": mean,
            f"V_LA {HDI_LABEL} low": np.where(finite, lo, np.nan),
            f"V_LA {HDI_LABEL} high": np.where(finite, hi, np.nan),
            "counts fit": status,
        }
    )
    if a.model_V is not None:
        mlo, mhi = _arviz.hdi(a.model_V, HDI_PROB)
        df[f"V ({a.model}) mean"] = a.model_V.mean(0)
        df[f"V ({a.model}) {HDI_LABEL} low"] = mlo
        df[f"V ({a.model}) {HDI_LABEL} high"] = mhi
    return df.sort_values("V_LA mean", ascending=False, na_position="last").reset_index(drop=True)


def diagnostics_table(a: Analysis):
    """One row per diagnostic: value, error and what it means.

    Parameters
    ----------
    a : Analysis
        The analysis of one data set.

    Returns
    -------
    pandas.DataFrame
        Columns ``diagnostic``, ``value``, ``error``, ``note``.
    """
    import pandas as pd

    s = np.asarray(a.posterior.S_min)
    rows = [
        ("least action S_min (raw counts)", float(a.point.S_min), None, f"K = {a.K}"),
        (
            "least action S_min (posterior mean)",
            float(s.mean()),
            float(s.std(ddof=1)) if s.size > 1 else None,
            "± posterior sd",
        ),
        (
            "states with unbounded V_LA (raw counts)",
            int(a.point.runaway.sum()),
            None,
            "one-way data: reported, not clipped",
        ),
    ]
    if a.equilibrium_gap is not None:
        rows.append(
            ("max |V_LA − V| (reversible model)", a.equilibrium_gap, None, "should be < 1e-4")
        )
    p = a.pairwise
    rows += [
        ("pairwise: pairs seen both ways", len(p.f), None, "n ≥ 2 each way"),
        ("pairwise: Pearson r", p.pearson_r, None, "log ratio vs ΔV"),
        ("pairwise: χ²/ndf", p.chi2_ndf, None, f"ndf = {p.ndf}, Poisson + posterior errors"),
        ("pairwise: p-value", p.p_value, None, "χ²(ndf); V fitted to the same counts"),
    ]
    for name, lt in (("3-cycles", a.triangles), ("cycle basis", a.basis)):
        rows += [
            (f"loops ({name}): cycles", lt.ndf, None, "every arc seen both ways"),
            (f"loops ({name}): χ²/ndf", lt.chi2_ndf, None, "Poisson errors"),
            (
                f"loops ({name}): p-value",
                lt.p_value,
                None,
                "3-cycles share arcs: approximate"
                if name == "3-cycles"
                else "joint test with covariance",
            ),
        ]
    ow = a.one_way
    rows.append(
        (
            "one-way pairs meeting ΔV ≥ bound",
            ow.fraction_satisfied,
            None,
            f"{len(ow.f)} pairs, {ow.level:.0%} upper limits",
        )
    )
    w = a.width
    rows += [
        ("width σ of V across states", w["sigma"], w["sigma_sd"], "posterior sd"),
        ("S_min predicted K(0)/(√π σ)", w["S_predicted"], None, "the paper's approximation"),
        ("S_min / prediction", w.get("ratio", np.nan), None, "≈ 1 if the approximation holds"),
    ]
    if a.downhill is not None:
        d = a.downhill
        err = d.get("sd", d.get("se"))
        rows.append(
            (
                "strong transitions going downhill",
                d["fraction"],
                err,
                f"T > {d['threshold']}, {d['strong']} arcs",
            )
        )
    return pd.DataFrame(rows, columns=["diagnostic", "value", "error", "note"], dtype=object)
