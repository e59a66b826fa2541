"""Publication-ready report: figures (PNG + PDF), tables (Markdown + LaTeX) and an index.md.

:func:`build_report` takes counts (any file :func:`formats.read_counts` reads) or a saved fit and
writes, under ``out``:

* ``figures/``: potential landscape with 94% HDI, forward vs backward (pairwise) plot, 3-cycle loop
  plot, cycle affinities, potential histogram with its Gaussian, least-action posterior;
* ``tables/``: potentials, diagnostics and (when run) the model comparison, as ``.md`` and ``.tex``;
* ``report.json``: every number of the tables; ``index.md``: what was done, the verdict, the
  figures.

Where the posterior over T comes from: a fit's ``posterior_kernel`` when the input is a fit;
otherwise the exact conjugate posterior of the unconstrained (Dirichlet-row) model, which needs no
sampler (:func:`diagnostics.unconstrained_posterior_kernel`). Song, Cao, Luo & Zhu,
arXiv:2512.10047, for the least-action estimator and the diagnostics.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import diagnostics as dg
from .counts import TransitionCounts
from .errors import DataError
from .formats import atomic_output, to_json
from .least_action import GAUGE as LA_GAUGE
from .least_action import LeastActionResult, equilibrium_discrepancy, minimise_action
from .modeldata import GAUGE as MODEL_GAUGE
from .modeldata import gauge_reference

HDI_PROB = 0.94
HDI_LABEL = "94% HDI"
COLUMN_WIDTH = 3.4  # inches: one column of a two-column paper
PAPER = (
    "Song, Cao, Luo & Zhu, *Detailed balance in large language model-driven agents*, "
    "arXiv:2512.10047"
)


# ---- the analysis ------------------------------------------------------------------------------
@dataclass
class Analysis:
    """Everything the figures and tables show (numbers only; no plotting)."""

    counts: TransitionCounts
    K: str
    source: str  # where the posterior over T came from
    point: LeastActionResult  # least action on the raw-count kernel
    posterior: LeastActionResult  # least action per posterior draw of T
    model: str | None = None
    model_V: np.ndarray | None = None  # (draws, S) the fit's V, thinned like the kernel
    equilibrium_gap: float | None = None
    cycle_affinity: np.ndarray | None = None  # (draws, C) from a non-reversible fit
    cycle_labels: list = field(default_factory=list)
    pairwise: dg.PairwiseTest | None = None
    triangles: dg.LoopTest | None = None
    basis: dg.LoopTest | None = None
    one_way: dg.OneWayBounds | None = None
    width: dict = field(default_factory=dict)
    downhill: dict | None = None
    comparison: object = None
    comparison_note: str = ""
    notes: list = field(default_factory=list)


def _thin(n_total: int, n_keep: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_total - 1, min(n_total, n_keep)).round().astype(int))


FIT_SUFFIXES = (".nc", ".netcdf", ".h5")


def load_input(path) -> tuple[TransitionCounts, object | None]:
    """Counts and (for a ``.nc`` fit) the ArviZ object.

    Parameters
    ----------
    path : str or Path
        A counts file in any readable format, or a fit (``.nc``).

    Returns
    -------
    counts : TransitionCounts
        The data.
    fit : InferenceData or DataTree or None
        The ArviZ object of a fit, None for plain counts.
    """
    p = Path(path)
    if p.suffix in FIT_SUFFIXES:
        return load_fit(p)
    from .formats import read_counts

    return read_counts(p), None


def load_fit(path) -> tuple[TransitionCounts, object]:
    """A fit written by ``detailed-balance fit``: its counts and the ArviZ object.

    Anything else (a missing file, another netCDF, damaged arrays) is one :class:`DataError`.

    Parameters
    ----------
    path : str or Path
        The fit's netCDF file.

    Returns
    -------
    counts : TransitionCounts
        The data stored with the fit.
    fit : InferenceData or DataTree
        The ArviZ object.
    """
    from . import _arviz
    from .inference import counts_from_fit

    file = str(path)
    if not Path(path).is_file():
        raise DataError("no such file", file=file)
    try:
        idata = _arviz.from_netcdf(path)
    except Exception as exc:  # the netCDF/HDF5 stack raises many kinds on a foreign file
        raise DataError(f"not a fit file ({type(exc).__name__}: {exc})"[:200], file=file) from None
    try:
        attrs = _arviz.attrs(idata)
        missing = [k for k in _FIT_ATTRS if k not in attrs]
        if missing or not _arviz.has_group(idata, "constant_data"):
            raise KeyError(", ".join(missing) or "constant_data")
        counts = counts_from_fit(idata)
    except Exception as exc:  # a foreign netCDF has other groups, attributes and variables
        raise DataError(
            f"not a fit written by `detailed-balance fit` (missing {exc})", file=file
        ) from None
    n, arcs = counts.n_states, (counts.source, counts.target)
    if (
        len(counts.source) != len(counts.target)
        or len(counts.count) != len(counts.source)
        or counts.self_count.shape != (n,)
        or counts.rejected.shape != (n,)
        or any(len(a) and (a.min() < 0 or a.max() >= n) for a in arcs)
    ):
        raise DataError("a damaged fit file (its counts do not fit its states)", file=file)
    return counts, idata


_FIT_ATTRS = ("model", "method", "prior", "rest", "latent_sites")


def analyse(
    counts: TransitionCounts,
    idata=None,
    *,
    K: str | Callable = "exp",
    draws: int = 1000,
    seed: int = 0,
    potential: Callable[[str], float] | None = None,
    threshold: float = 0.05,
    min_count: int = 2,
    step: Callable[[str], None] = lambda s: None,
) -> Analysis:
    """Least action (point and posterior) and every diagnostic, for counts and optionally a fit.

    Parameters
    ----------
    counts : TransitionCounts
    idata : InferenceData or DataTree, optional
        A fit of ``counts``: its posterior draws of T are used. Without it, T is drawn from the
        exact posterior of the unconstrained model (Dirichlet(1) rows; no sampler needed).
    K : {"exp", "softplus"} or callable
        The least-action kernel.
    draws : int
        Posterior draws of T (a fit's draws are thinned to this many).
    seed : int
    potential : callable, optional
        ``state -> V``: adds the downhill-fraction diagnostic.
    threshold : float
        Transitions with T above it count as strong (downhill fraction).
    min_count : int
        Pairs need this many transitions each way for the pairwise test.
    step : callable
        Called with a short description before each stage (a progress hook).

    Returns
    -------
    Analysis
        The numbers behind every figure and table of the report.
    """
    group, weight, _ = gauge_reference(counts)
    notes = []
    step("least action on the raw counts")
    point = minimise_action(counts.kernel("escape"), K)
    step("posterior over T")
    model = model_V = cyc = None
    labels: list = []
    if idata is not None:
        from . import _arviz
        from .inference import posterior_kernel

        attrs = _arviz.attrs(idata)
        model = attrs["model"]
        diagnostics = json.loads(attrs.get("diagnostics", "{}"))
        notes += [f"fit ({model}, {attrs['method']}): {w}" for w in diagnostics.get("warnings", [])]
        kernel = posterior_kernel(idata, counts)
        keep = _thin(kernel.log_prob.shape[0], draws)
        kernel = type(kernel)(kernel.states, kernel.source, kernel.target, kernel.log_prob[keep])
        post = _arviz.group(idata, "posterior")
        if "V" in post:
            model_V = np.asarray(post["V"].values, float).reshape(-1, counts.n_states)[keep]
        if "cycle_affinity" in post:
            cyc = np.asarray(post["cycle_affinity"].values, float)
            cyc = cyc.reshape(-1, cyc.shape[-1])[keep]
            labels = [str(c) for c in post["cycle"].values.tolist()]
        source = f"the posterior of the {model} model fit ({len(keep)} draws)"
    else:
        kernel = dg.unconstrained_posterior_kernel(counts, draws, seed=seed)
        source = (
            f"the exact posterior of the unconstrained (Dirichlet(1) rows) model, {draws} draws "
            "(no sampler needed)"
        )
    step("least action per posterior draw")
    posterior = minimise_action(kernel, K, gauge=(group, weight))
    gap = None
    if model == "reversible" and model_V is not None:
        gap = equilibrium_discrepancy(posterior, model_V, group, weight)
        if gap > 1e-4:
            notes.append(
                f"V_LA differs from the reversible model's V by up to {gap:.2g} (expected < 1e-4)"
            )
    if not np.all(posterior.converged):
        notes.append(f"least action did not converge in {int((~posterior.converged).sum())} draws")
    step("diagnostics")
    finite_v = np.where(np.isfinite(posterior.V), posterior.V, np.nan)
    pairwise = dg.pairwise_test(counts, finite_v, min_count=min_count)
    tri = dg.loop_test(counts, cycles="triangles")
    basis = dg.loop_test(counts, cycles="basis")
    one_way = dg.one_way_bounds(counts, point.V)
    width = dg.gaussian_width(finite_v[:, posterior.reference], K, S_min=posterior.S_min)
    downhill = None
    if potential is not None:
        downhill = dg.downhill_fraction(kernel, potential, threshold=threshold)
    return Analysis(
        counts=counts,
        K=point.kernel_name,
        source=source,
        point=point,
        posterior=posterior,
        model=model,
        model_V=model_V,
        equilibrium_gap=gap,
        cycle_affinity=cyc,
        cycle_labels=labels,
        pairwise=pairwise,
        triangles=tri,
        basis=basis,
        one_way=one_way,
        width=width,
        downhill=downhill,
        notes=notes,
    )


# ---- tables ------------------------------------------------------------------------------------
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

    from . import _arviz

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


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if np.isnan(x):
            return "–"
        if np.isinf(x):
            return "+∞" if x > 0 else "−∞"
        return f"{x:.3g}" if abs(x) < 1e-3 and x != 0 else f"{x:.3f}"
    return str(x)


def markdown_escape(text: str) -> str:
    r"""Text as literal Markdown table-cell content: no HTML, no formatting, no cell breaks.

    ``&``, ``<``, ``>`` become HTML entities; ``\ ` * _ [ ] | ~`` are backslash-escaped;
    line breaks become spaces (a newline would end the table row).

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The escaped text.

    Examples
    --------
    >>> print(markdown_escape("a|b <img src=x> *c*"))
    a\|b &lt;img src=x&gt; \*c\*
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\g<0>", text)
    return _LINE_BREAK.sub(" ", text)


_MD_SPECIAL = re.compile(r"[\\`*_\[\]|~]")
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def to_markdown(df) -> str:
    """A DataFrame as a GitHub Markdown table (no extra dependency); text is escaped.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.

    Returns
    -------
    str
        The Markdown table.
    """
    head = "| " + " | ".join(markdown_escape(str(c)) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = [
        "| " + " | ".join(markdown_escape(_fmt(v)) for v in row) + " |"
        for row in df.itertuples(index=False)
    ]
    return "\n".join([head, sep, *body]) + "\n"


# LaTeX: the ten special characters, the text-mode glyphs OT1 lacks, and the symbols the tables
# and captions use; any line break or other control character becomes a space (a blank line
# would end the paragraph)
_TEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "%": r"\%",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    # after \\ or \midrule a cell starting with [ or * would be read as their optional argument
    "[": "{[}",
    "]": "{]}",
    "*": "{*}",
    # ligatures would change the text: -- is a dash, `` and '' are quotes, !` is ¡
    "-": "-{}",
    "`": "{`}",
    "'": "{'}",
    "\n": " ",
    "\r": " ",
    "±": r"\ensuremath{\pm}",
    "≥": r"\ensuremath{\geq}",
    "≤": r"\ensuremath{\leq}",
    "≈": r"\ensuremath{\approx}",
    "√π": r"\ensuremath{\sqrt{\pi}}",
    "√": r"\ensuremath{\surd}",
    "π": r"\ensuremath{\pi}",
    "σ": r"\ensuremath{\sigma}",
    "β": r"\ensuremath{\beta}",
    "χ²": r"\ensuremath{\chi^2}",
    "χ": r"\ensuremath{\chi}",
    "Δ": r"\ensuremath{\Delta}",
    "Σ": r"\ensuremath{\Sigma}",
    "∞": r"\ensuremath{\infty}",
    "←": r"\ensuremath{\leftarrow}",
    "→": r"\ensuremath{\rightarrow}",
    "×": r"\ensuremath{\times}",
    "·": r"\ensuremath{\cdot}",
    "²": r"\textsuperscript{2}",
    "−": "-",
    "–": "--",
    "—": "---",
    "…": r"\dots{}",
}
_TEX_PATTERN = re.compile(
    "|".join(re.escape(k) for k in sorted(_TEX, key=len, reverse=True))
    + "|[\x00-\x1f\x7f-\x9f\u2028\u2029]"  # other controls: ^^L is \par, DEL an error
)


def latex_escape(text: str) -> str:
    r"""Text as literal LaTeX (text mode): no character can start a command, group, math or
    comment, so a state name can never change what a ``.tex`` file does.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The escaped text.

    Examples
    --------
    >>> print(latex_escape(r"\input{x} 50% $a_b$ ~^"))
    \textbackslash{}input\{x\} 50\% \$a\_b\$ \textasciitilde{}\textasciicircum{}
    """
    return _TEX_PATTERN.sub(lambda m: _TEX.get(m.group(), " "), text)


LATEX_MAX_COLUMNS = 8  # wider tables are transposed (one row per column) to fit a page
LATEX_ROWS_PER_FLOAT = 40  # longer tables continue in further floats, so they break across pages


def to_latex(df, caption: str, label: str) -> str:
    """A DataFrame as a booktabs LaTeX table (needs only ``\\usepackage{booktabs}``); text is
    escaped.

    A table wider than ``LATEX_MAX_COLUMNS`` is transposed (its columns become rows) and one
    longer than ``LATEX_ROWS_PER_FLOAT`` rows is split into floats of that many rows, each with
    the header and the same table number ("continued"), so it breaks across pages.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    caption : str
        Caption (escaped).
    label : str
        LaTeX label of the table.

    Returns
    -------
    str
        The LaTeX source of one or more ``table`` floats.

    Examples
    --------
    >>> import pandas as pd
    >>> tex = to_latex(pd.DataFrame({"state": list("ab"), "V": [0.5, -0.5]}), "V", "tab:v")
    >>> tex.count(r"\\begin{table}"), r"\\label{tab:v}" in tex
    (1, True)
    """
    if len(df.columns) > LATEX_MAX_COLUMNS:
        first = str(df.columns[0])
        df = df.set_index(df.columns[0]).T.reset_index()
        df.columns = [first if i == 0 else str(c) for i, c in enumerate(df.columns)]
    cols = "l" + "r" * (len(df.columns) - 1)
    header = [
        r"\toprule",
        " & ".join(latex_escape(str(c)) for c in df.columns) + r" \\",
        r"\midrule",
    ]
    rows = [
        " & ".join(latex_escape(_fmt(v)) for v in row) + r" \\"
        for row in df.itertuples(index=False)
    ]
    chunks = [rows[i : i + LATEX_ROWS_PER_FLOAT] for i in range(0, len(rows), LATEX_ROWS_PER_FLOAT)]
    lines = []
    for k, chunk in enumerate(chunks or [[]]):
        if k == 0:
            title = [rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{latex_escape(label)}}}"]
        else:  # the same number as the first part
            title = [r"\addtocounter{table}{-1}", r"\caption[]{(continued)}"]
        lines += [r"\begin{table}", r"\centering", *title, rf"\begin{{tabular}}{{{cols}}}"]
        lines += [*header, *chunk, r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# ---- figures -----------------------------------------------------------------------------------
def _figure(height: float = 2.6, width: float = COLUMN_WIDTH):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _style():
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.size": 8,
            "axes.titlesize": 8,
            "axes.labelsize": 8,
            "legend.fontsize": 7,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "lines.markersize": 3,
            "errorbar.capsize": 0,
            "axes.spines.top": False,
            "axes.spines.right": False,
            # labels are data (state names from an LLM): "$x$" must print, not parse as math
            "text.parse_math": False,
            "text.usetex": False,
        }
    )


def plot_landscape(a: Analysis, max_labels: int = 60):
    """Posterior V_LA per state with its 94% HDI, states sorted by potential.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.
    max_labels : int
        Name every state on the x axis when there are at most this many; beyond, every k-th
        (the figure widens up to two columns; all names are in the potentials table).

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    from . import _arviz

    v = a.posterior.V
    ok = np.isfinite(v).all(axis=0)
    idx = np.flatnonzero(ok)
    fig, ax = _figure(3.0, width=float(np.clip(0.1 * min(len(idx), 70), COLUMN_WIDTH, 7.0)))
    mean = v[:, idx].mean(0)
    lo, hi = _arviz.hdi(v[:, idx], HDI_PROB)
    order = np.argsort(-mean)
    x = np.arange(len(idx))
    ax.errorbar(
        x,
        mean[order],
        yerr=[mean[order] - lo[order], hi[order] - mean[order]],
        fmt="o",
        color="C0",
        ecolor="C0",
        mfc="none",  # a ring, so the model's V (a cross, equal under reversibility) shows inside
        markersize=4.5,
        elinewidth=0.8,
        zorder=3,
        label=f"V_LA, mean and {HDI_LABEL}",
    )
    if a.model_V is not None:
        ax.plot(
            x,
            a.model_V[:, idx].mean(0)[order],
            "x",
            color="C3",
            zorder=4,
            markersize=2.5,
            label=f"V ({a.model} model), mean",
        )
    if a.point is not None:
        pv = a.point.V[idx][order]
        fin = np.isfinite(pv)
        ax.plot(
            x[fin],
            pv[fin] - np.mean(pv[fin]) + np.mean(mean[order][fin]),
            "_",
            color="k",
            markersize=6,
            label="V_LA on raw counts",
        )
    every = int(np.ceil(len(idx) / max_labels)) if len(idx) else 1
    names = [_short_label(a.counts.states[i]) for i in idx[order]]
    ax.set_xticks(
        x[::every], names[::every], rotation=90, parse_math=False,
        fontsize=7 if len(idx) <= 30 else 5,
    )  # fmt: skip
    if every == 1:
        ax.set_xlabel(f"state (sorted by potential; {len(idx)} states)")
    else:
        ax.set_xlabel(f"state (sorted by potential; one in {every} of {len(idx)} named)")
    ax.set_ylabel("potential V (nats, β = 1)")
    ax.set_title(f"Potential landscape (least action, K = {a.K})")
    ax.legend(frameon=False, loc="upper right")
    return fig


def _chi2_result(chi2_ndf, ndf: int, what: str = "df") -> str:
    """A χ² result as text ("χ²/ndf = 1.23 (4 df)"); "nothing to test" when there is no degree
    of freedom (never "nan" as a result)."""
    if not ndf or not np.isfinite(chi2_ndf):
        return f"nothing to test (0 {what})" if not ndf else f"χ² undefined ({ndf} {what})"
    return f"χ²/ndf = {chi2_ndf:.2f} ({ndf} {what})"


def _pairwise_result(p) -> str:
    """Pearson r and χ²/ndf of the pairwise test, without "nan" when there is nothing to test."""
    if not p.ndf and not len(p.f):
        return "nothing to test (no pair seen ≥ 2 times each way)"
    r = f"r = {p.pearson_r:.2f}, " if np.isfinite(p.pearson_r) else ""
    return r + _chi2_result(p.chi2_ndf, p.ndf)


def _short_label(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def plot_pairwise(a: Analysis):
    """Log forward/backward ratio against ΔV on pairs seen both ways (the paper's pairwise plot).

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    p = a.pairwise
    fig, ax = _figure()
    if len(p.f) == 0:
        ax.text(0.5, 0.5, "no pair seen ≥ 2 times each way", ha="center", transform=ax.transAxes)
    ax.errorbar(
        p.dv, p.y, xerr=p.dv_err, yerr=p.y_err, fmt="o", color="C0", elinewidth=0.6, alpha=0.8
    )
    lim = np.nanmax(np.abs(np.r_[p.dv, p.y, 1.0])) * 1.1
    ax.plot([-lim, lim], [-lim, lim], "--", color="0.4", lw=0.8, label="detailed balance")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("ΔV = V(f) − V(g) from least action (nats)")
    ax.set_ylabel("log T(g←f) / T(f←g) (nats)")
    ax.set_title(f"Pairwise test: {_pairwise_result(p)}")
    ax.legend(frameon=False, loc="upper left")
    return fig


def plot_loops(a: Analysis):
    """Forward vs backward log products around 3-cycles seen in all six directions.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    t = a.triangles
    fig, ax = _figure()
    if t.ndf == 0:
        ax.text(
            0.5,
            0.5,
            "no 3-cycle with all six directions observed",
            ha="center",
            transform=ax.transAxes,
        )
        ax.set_xlim(-1, 0)
        ax.set_ylim(-1, 0)
    else:
        ax.errorbar(t.backward, t.forward, yerr=t.error, fmt="o", color="C2", elinewidth=0.6)
        lo = min(t.forward.min(), t.backward.min()) - 0.5
        hi = max(t.forward.max(), t.backward.max()) + 0.5
        ax.plot([lo, hi], [lo, hi], "--", color="0.4", lw=0.8, label="Kolmogorov: equal")
        ax.legend(frameon=False, loc="upper left")
    ax.set_xlabel("backward Σ log T around the cycle (nats)")
    ax.set_ylabel("forward Σ log T (nats)")
    ax.set_title(f"3-cycle loop test: {_chi2_result(t.chi2_ndf, t.ndf, 'cycles')}")
    return fig


def plot_cycle_affinities(a: Analysis, max_cycles: int = 60):
    """Affinity (log forward/backward product) of each independent cycle with its error bar.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.
    max_cycles : int
        Show at most this many cycles (those with the largest abs(affinity) / sd).

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    from . import _arviz

    fig, ax = _figure()
    if a.cycle_affinity is not None and a.cycle_affinity.shape[1]:
        d = a.cycle_affinity
        mean = d.mean(0)
        lo, hi = _arviz.hdi(d, HDI_PROB)
        err = [mean - lo, hi - mean]
        what = f"{a.model} model, {HDI_LABEL}"
        z = np.abs(mean) / np.maximum(d.std(0), 1e-12)
    else:
        b = a.basis
        mean, err, z = b.affinity, b.error, np.abs(b.affinity) / np.maximum(b.error, 1e-12)
        what = "cycle basis of two-way pairs, ±1 sd"
    n = len(mean)
    if n == 0:
        ax.text(
            0.5, 0.5, "no cycle: the two-way graph is a tree", ha="center", transform=ax.transAxes
        )
        ax.set_xlabel("cycle")
    else:
        keep = np.sort(np.argsort(-z)[:max_cycles])
        e = np.asarray(err)[..., keep]
        ax.errorbar(np.arange(len(keep)), mean[keep], yerr=e, fmt="o", color="C1", elinewidth=0.8)
        ax.axhline(0, color="0.4", ls="--", lw=0.8)
        more = f"; the {len(keep)} largest |z| of {n}" if n > len(keep) else ""
        ax.set_xlabel(f"independent cycle{more}")
    ax.set_ylabel("cycle affinity (nats)")
    ax.set_title(f"Cycle affinities: {what}", fontsize=7)
    return fig


def plot_potential_histogram(a: Analysis):
    """Histogram of V_LA (posterior means) across states with the Gaussian of the same width.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    fig, ax = _figure()
    v = a.posterior.V[:, a.posterior.reference]
    v = v[:, np.isfinite(v).all(axis=0)].mean(0)
    ax.hist(
        v, bins=max(5, min(40, len(v) // 3)), density=True, color="C0", alpha=0.6, label="states"
    )
    # the same σ as the text and the tables (diagnostics.gaussian_width: the posterior mean of
    # the per-draw width), not the spread of the posterior means, which is smaller
    w = a.width
    mu, sigma = v.mean(), w["sigma"]
    if np.isfinite(sigma) and sigma > 0:  # one state has no width
        x = np.linspace(v.min() - sigma, v.max() + sigma, 200)
        ax.plot(
            x,
            np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)),
            color="C3",
            label=f"Gaussian, σ = {sigma:.2f}\n(posterior mean width)",
        )
    s_min = w.get("S_min", np.nan)
    s_text = f"S_min = {s_min:.3f} vs " if np.isfinite(s_min) else ""
    ax.set_title(f"{s_text}K(0)/(√π σ) = {w['S_predicted']:.3f}")
    ax.set_xlabel("potential V_LA (nats, posterior mean per state)")
    ax.set_ylabel("density (1/nat)")
    ax.legend(frameon=False, loc="best")
    return fig


def plot_least_action_posterior(a: Analysis):
    """Posterior of the minimum action S_min, with the raw-count point estimate.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    from . import _arviz

    fig, ax = _figure()
    s = np.atleast_1d(a.posterior.S_min)
    ax.hist(s, bins=30, density=True, color="C4", alpha=0.6, label=f"posterior ({len(s)} draws)")
    if s.size > 1:
        lo, hi = _arviz.hdi(s, HDI_PROB)
        ax.axvspan(lo, hi, color="C4", alpha=0.15, label=HDI_LABEL)
    ax.axvline(float(a.point.S_min), color="k", lw=1, label="raw counts")
    ax.set_xlabel(f"minimum action S_min (dimensionless, K = {a.K})")
    ax.set_ylabel("posterior density")
    ax.set_title("Least-action posterior")
    ax.legend(frameon=False)
    return fig


FIGURES = {
    "potential_landscape": (
        plot_landscape,
        "Potential landscape: least-action V per state with its {hdi}.",
    ),
    "pairwise": (
        plot_pairwise,
        "Forward vs backward: log T(g←f)/T(f←g) against ΔV, pairs seen ≥ 2 times each way; "
        "error bars 1 sd.",
    ),
    "loops": (
        plot_loops,
        "3-cycle loop test (Kolmogorov's criterion): forward vs backward log products; "
        "error bars 1 sd (Poisson).",
    ),
    "cycle_affinities": (
        plot_cycle_affinities,
        "Affinity of each independent cycle; zero under detailed balance.",
    ),
    "potential_histogram": (
        plot_potential_histogram,
        "Distribution of the potential across states, with the Gaussian of the same mean and "
        "width.",
    ),
    "least_action_posterior": (
        plot_least_action_posterior,
        "Posterior of the minimum action S_min; the line marks the fit to the raw counts. A "
        "posterior puts some probability on arcs never observed (e.g. the reverse of one-way "
        "pairs), which the raw-count kernel sets to zero, so it can sit above the raw value.",
    ),
}


def save_figure(fig, directory: Path, name: str) -> list[Path]:
    """Write ``name.png`` (200 dpi) and ``name.pdf``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    directory : Path
        Output directory.
    name : str
        File name without extension.

    Returns
    -------
    list of Path
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png", directory / f"{name}.pdf"]
    for path in paths:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=200, format=path.suffix[1:])
    return paths


# ---- the report --------------------------------------------------------------------------------
def build_report(
    input_path,
    out,
    *,
    K: str | Callable = "exp",
    draws: int = 1000,
    seed: int = 0,
    compare: bool = True,
    compare_kwargs: dict | None = None,
    comparison=None,
    potential: Callable[[str], float] | None = None,
    threshold: float = 0.05,
    progress: bool = True,
) -> Path:
    """Write the report for a counts file or a saved fit into ``out``; return ``index.md``'s path.

    Parameters
    ----------
    input_path : str or Path
        A counts file (any format :func:`detailed_balance.formats.read_counts` reads) or a saved
        fit (``.nc``).
    out : str or Path
        Output folder: ``figures/`` (PNG and PDF), ``tables/`` (Markdown and LaTeX),
        ``report.json`` and ``index.md``.
    K : {"exp", "softplus"} or callable
        The least-action kernel.
    draws : int
        Posterior draws of T pushed through least action.
    seed : int
    compare : bool
        Include the model comparison: ``comparison`` when given; otherwise, for a counts file
        only, run :func:`detailed_balance.compare` on the counts (NUTS fits of the model ladder:
        the slow part; ``compare_kwargs`` go to it). A fit is never refitted: without
        ``comparison`` the report says none was given. If it fails the report says so and stays
        usable.
    compare_kwargs : dict, optional
    comparison : ComparisonResult or str or Path, optional
        A comparison already made (:func:`detailed_balance.compare` on fits, or the
        ``comparison.json`` that ``detailed-balance compare --out`` writes).
    potential : callable, optional
        ``state -> V``: adds the paper's downhill-fraction diagnostic.
    threshold : float
        Transitions with T above it count as strong (downhill fraction).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The report's ``index.md``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from detailed_balance.formats import write_counts
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> write_counts(sample_counts(reversible_chain(6, seed=0), seed=0), out / "counts.csv")
    >>> index = build_report(out / "counts.csv", out / "report", draws=50, compare=False,
    ...                      progress=False)
    >>> index.name, sorted(p.name for p in (out / "report").iterdir())
    ('index.md', ['figures', 'index.md', 'report.json', 'tables'])
    """
    from tqdm.auto import tqdm

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError("exists and is not a folder (the report is a folder)", file=str(out))
    counts, idata = load_input(input_path)  # a bad input fails before any folder is made
    out.parent.mkdir(parents=True, exist_ok=True)
    # built in a hidden sibling folder and moved into place at the end: an interrupted or
    # failed report leaves nothing (the CLI's interrupt handler knows the .OUT.*.tmp name)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    (work / "figures").mkdir()
    (work / "tables").mkdir()
    stages = 6 + len(FIGURES) + (1 if compare else 0)
    bar = tqdm(total=stages, desc="report", disable=not progress, unit="step")

    def step(what: str) -> None:
        bar.set_postfix_str(what)
        bar.update(1)

    try:
        step("read input")
        a = analyse(
            counts,
            idata,
            K=K,
            draws=draws,
            seed=seed,
            potential=potential,
            threshold=threshold,
            step=step,
        )
        if compare:
            step("model comparison (NUTS fits; slow)")
            a.comparison, a.comparison_note = _run_compare(
                counts, idata, comparison, seed, compare_kwargs or {}
            )
        else:
            a.comparison_note = (
                "the model comparison was not run (`--no-compare`, or compare=False)"
            )
        figures = {}
        with _style():
            for name, (fn, caption) in FIGURES.items():
                step(f"figure {name}")
                fig = fn(a)
                save_figure(fig, work / "figures", name)
                figures[name] = caption.format(hdi=HDI_LABEL)
        step("tables")
        tables = _write_tables(a, work / "tables")
        _write_text(work / "report.json", to_json(_numbers(a), indent=1))
        _write_text(work / "index.md", _index(a, Path(input_path), figures, tables))
        _publish(work, out)
    finally:  # an interrupt closes the bar before the one-line message
        bar.close()
        shutil.rmtree(work, ignore_errors=True)
    return out / "index.md"


def _publish(work: Path, out: Path) -> None:
    """Move a finished report from ``work`` into ``out``: the whole folder at once when ``out``
    is new; else entry by entry (``out`` may hold the user's other files), ``index.md`` last,
    so an ``index.md`` is only ever next to the report it describes."""
    umask = os.umask(0)
    os.umask(umask)
    for p in (work, *work.rglob("*")):  # mkdtemp's folder is private (0700)
        if p.is_dir():
            os.chmod(p, 0o777 & ~umask)
    if not out.exists():
        os.replace(work, out)
        return
    (out / "index.md").unlink(missing_ok=True)
    for entry in sorted(work.iterdir(), key=lambda p: p.name == "index.md"):
        target = out / entry.name
        if target.is_dir() and not target.is_symlink():
            old = work / f".old-{entry.name}"
            os.replace(target, old)  # removed with ``work``
        os.replace(entry, target)


def _run_compare(counts, idata, comparison, seed, kwargs):
    """The comparison to show: the one given (object or file), else, for counts only, a new one.

    A fit is never refitted here: the ladder's fits and their comparison come from
    ``detailed-balance fit --model all`` and ``detailed-balance compare``.
    """
    try:
        from .comparison import ComparisonResult, compare, read_comparison
    except ImportError as exc:  # keep the report usable without the comparison module
        return None, f"the model comparison is unavailable ({exc})"
    if isinstance(comparison, ComparisonResult):
        return comparison, ""
    if comparison is not None:
        return read_comparison(comparison), ""  # a bad file is the user's error: one line
    if idata is not None:
        return None, (
            "no comparison was given (this report does not refit; compare the fits with "
            "`detailed-balance fit --model all` then `detailed-balance compare`, and pass "
            "the comparison)"
        )
    try:
        return compare(counts, seed=seed, **kwargs), ""
    except Exception as exc:  # a failed comparison must not lose the rest of the report
        return (
            None,
            f"the model comparison failed: {type(exc).__name__}: {markdown_escape(str(exc))}",
        )


def _write_tables(a: Analysis, directory: Path) -> dict:
    pot = potential_table(a)
    diag = diagnostics_table(a)
    out = {}
    specs = [
        (
            "potentials",
            pot,
            f"Least-action potential per state (nats); intervals are {HDI_LABEL} (credible "
            f"intervals) from {a.source}.",
        ),
        (
            "diagnostics",
            diag,
            "Diagnostics of detailed balance (errors: Poisson on counts, posterior sd on draws).",
        ),
    ]
    if a.comparison is not None:
        specs.append(
            (
                "comparison",
                a.comparison.table,
                "Model comparison: log evidence, Bayes factors against the reversible model, "
                "PSIS-LOO.",
            )
        )
    for name, df, caption in specs:
        _write_text(directory / f"{name}.md", f"{caption}\n\n" + to_markdown(df))
        _write_text(directory / f"{name}.tex", to_latex(df, caption, f"tab:{name}"))
        out[name] = (caption, df)
    return out


def _write_text(path: Path, text: str) -> None:
    """Write whole or not at all (an interrupted report leaves no half-written file)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _numbers(a: Analysis) -> dict:
    from . import _arviz

    v = np.where(np.isfinite(a.posterior.V), a.posterior.V, np.nan)
    lo, hi = _arviz.hdi(np.nan_to_num(v), HDI_PROB)
    d = {
        "kernel": a.K,
        "posterior_source": a.source,
        "hdi_prob": HDI_PROB,
        "gauge": MODEL_GAUGE,
        "gauge_counts_fit": LA_GAUGE,
        "summary": a.counts.summary(),
        "S_min_counts": float(a.point.S_min),
        "S_min_draws": np.atleast_1d(a.posterior.S_min),
        "states": [
            {
                "state": s,
                "V_LA_counts": _finite(a.point.V[i]),
                "V_LA_mean": _finite(np.mean(v[:, i])),
                "hdi": [_finite(lo[i]), _finite(hi[i])],
                "runaway": bool(a.point.runaway[i]),
            }
            for i, s in enumerate(a.counts.states)
        ],
        "diagnostics": diagnostics_table(a).to_dict(orient="records"),
        "equilibrium_gap": a.equilibrium_gap,
        "notes": report_notes(a),
    }
    if a.comparison is not None:
        d["comparison"] = a.comparison.to_dict()
    return d


def _finite(x):
    """A potential for report.json: NaN as null, but ±inf as "+inf"/"-inf" (a runaway state's
    direction, which ``formats.json_safe``'s null would lose)."""
    x = float(x)
    return x if np.isfinite(x) else (None if np.isnan(x) else ("+inf" if x > 0 else "-inf"))


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
