"""Build a report folder: figures, tables, ``report.json`` and ``index.md``, written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._arviz import HDI_LABEL, HDI_PROB
from ..errors import DataError
from ..formats import atomic_output, to_json
from ..least_action import GAUGE as LA_GAUGE
from ..modeldata import GAUGE as MODEL_GAUGE
from ._analysis import Analysis, analyse
from ._figures import FIGURES, _style, save_figure
from ._index import _index, report_notes
from ._inputs import load_input
from ._markup import markdown_escape, to_latex, to_markdown
from ._tables import diagnostics_table, potential_table


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
            step(
                "model comparison (given)" if comparison is not None
                else "model comparison (none given; a fit is not refitted)" if idata is not None
                else "model comparison (fitting the ladder to the counts: slow)"
            )  # fmt: skip
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
        from ..comparison import ComparisonResult, compare, read_comparison
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
        caption = ("Model comparison: log evidence, Bayes factors against the reversible model, "
                   "PSIS-LOO.")  # fmt: skip
        from ..comparison import BOUND_METHODS

        if set(a.comparison.table.get("bf_method", [])) & set(BOUND_METHODS):  # never estimates
            caption += (" The non-reversible model's log BF is a variational bound, not an "
                        "estimate (bf_method says which side; bf_lower/bf_upper bracket it).")
        specs.append(("comparison", a.comparison.table, caption))
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
    from .. import _arviz

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
