"""The report: every file written, figures non-empty, intervals labelled, fits and CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from detailed_balance.cli import main
from detailed_balance.formats import write_counts
from detailed_balance.report import FIGURES, build_report, to_latex, to_markdown
from detailed_balance.synthetic import reversible_chain, sample_counts


@pytest.fixture(scope="module")
def counts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "counts.csv"
    chain = reversible_chain(14, degree=5, seed=3)
    write_counts(sample_counts(chain, attempts_per_source=300, seed=3), path)
    return path


def _ink(png) -> float:
    """Share of pixels that are not background: an empty axes scores near zero."""
    from matplotlib.image import imread

    img = imread(png)[..., :3]
    return float((img.min(axis=-1) < 0.9).mean())


def test_report_on_counts_writes_figures_tables_and_index(counts_file, tmp_path):
    out = tmp_path / "report"
    index = build_report(counts_file, out, draws=128, compare=False, progress=False)
    text = index.read_text()
    for name in FIGURES:
        png, pdf = out / "figures" / f"{name}.png", out / "figures" / f"{name}.pdf"
        assert png.exists() and pdf.stat().st_size > 1000
        assert _ink(png) > 0.01, f"{name} looks empty"
        assert f"figures/{name}.png" in text
    for table in ("potentials", "diagnostics"):
        md = (out / "tables" / f"{table}.md").read_text()
        tex = (out / "tables" / f"{table}.tex").read_text()
        assert md.count("\n|") > 3 and "\\begin{tabular}" in tex and "\\toprule" in tex
    assert "94% HDI" in (out / "tables" / "potentials.md").read_text()
    assert "94\\% HDI" in (out / "tables" / "potentials.tex").read_text()
    assert "No Bayesian verdict" in text and "compare counts.csv" in text
    numbers = json.loads((out / "report.json").read_text())
    assert len(numbers["states"]) == 14 and len(numbers["S_min_draws"]) == 128
    # the potentials in the report are those of the least-action fit, sorted high to low
    pot = (out / "tables" / "potentials.md").read_text().splitlines()[4:]
    means = [float(r.split("|")[4]) for r in pot if r.startswith("| s")]
    assert means == sorted(means, reverse=True) and len(means) == 14


def test_report_on_a_reversible_fit_checks_least_action_against_V(counts_file, tmp_path):
    from detailed_balance import _arviz
    from detailed_balance.formats import read_counts
    from detailed_balance.inference import fit

    idata = fit(read_counts(counts_file), "reversible", method="map")
    path = tmp_path / "fit.nc"
    _arviz.to_netcdf(idata, path)
    out = tmp_path / "report"
    text = build_report(path, out, draws=64, compare=False, progress=False).read_text()
    assert "posterior of the reversible model fit" in text
    assert "Consistency check" in text and "(passed, tolerance 1e-4)" in text
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["equilibrium_gap"] < 1e-4
    header = (out / "tables" / "potentials.md").read_text().splitlines()[2]
    assert "V (reversible) 94% HDI low" in header


def test_cli_report_and_one_line_errors(counts_file, tmp_path, capsys):
    pot = tmp_path / "pot.csv"
    pot.write_text("state,V\n" + "".join(f"s{i:02d},{-i}\n" for i in range(14)))
    out = tmp_path / "cli"
    args = ["report", str(counts_file), "--out", str(out), "--no-compare", "--quiet"]
    assert main([*args, "--kernel-draws", "64", "--potential", str(pot)]) == 0
    assert "going downhill" in (out / "index.md").read_text()
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    bad.write_text("state,V\ns00,high\n")
    assert main([*args, "--potential", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.csv, row 2" in err and "'high'" in err
    assert main(["report", str(tmp_path / "nope.csv"), "--out", str(out), "--quiet"]) == 2


def test_table_writers_escape_and_format():
    import pandas as pd

    df = pd.DataFrame({"V_LA 94% HDI": [1.23456, np.inf, np.nan], "n & m": [1, 2, 3]})
    tex = to_latex(df, "caption with χ² and 50%", "tab:x")
    assert r"V\_LA 94\% HDI" in tex and r"n \& m" in tex and r"\ensuremath{\chi^2}" in tex
    assert r"\ensuremath{\infty}" in tex and "1.235" in tex
    md = to_markdown(df)
    assert md.splitlines()[2] == "| 1.235 | 1 |" and "+∞" in md


@pytest.mark.slow
def test_report_with_the_model_comparison(counts_file, tmp_path):
    out = tmp_path / "full"
    index = build_report(
        counts_file, out, draws=64, progress=False,
        compare_kwargs={"draws": 300, "warmup": 300, "sensitivity_scales": ()},
    )  # fmt: skip
    text = index.read_text()
    assert "No Bayesian verdict" not in text and "log BF" in text
    assert (out / "tables" / "comparison.tex").exists()


def test_report_on_one_way_data_flags_unbounded_potentials(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("source,target,count\nA,B,3\nB,C,2\nA,,1\nC,,4\nB,,2\n")
    text = build_report(path, tmp_path / "r", draws=64, compare=False, progress=False).read_text()
    assert "V is unbounded there" in text and "not clipped" in text
    assert "no pair seen" not in text  # said in the figure, not as a crash
    assert (tmp_path / "r" / "figures" / "pairwise.png").exists()


# ---- issue 16: the report says everything, never "nan", compiles, and is whole or absent ------
def test_notes_section_lists_the_fits_warnings_and_nothing_to_test_is_not_nan(tmp_path):
    from detailed_balance import _arviz
    from detailed_balance.formats import read_counts
    from detailed_balance.inference import IdentifiabilityWarning, fit

    path = tmp_path / "tiny.csv"  # one-way data: no pair, no cycle to test
    path.write_text("source,target,count\nA,B,3\nB,C,2\nA,,1\nC,,4\nB,,2\n")
    with pytest.warns(IdentifiabilityWarning, match="seen one way only"):
        idata = fit(read_counts(path), "reversible", method="map")
    diagnostics = json.loads(_arviz.attrs(idata)["diagnostics"])
    diagnostics["warnings"] = ["R-hat up to 1.038 > 1.01 (worst: V[A])", "bulk ESS down to 89"]
    idata.posterior.attrs["diagnostics"] = json.dumps(diagnostics)
    _arviz.to_netcdf(idata, tmp_path / "fit.nc")
    out = tmp_path / "r"
    text = build_report(tmp_path / "fit.nc", out, draws=32, compare=False, progress=False)
    text = text.read_text()
    notes = text.split("## Notes", 1)[1]
    assert "R-hat up to 1.038" in notes and "bulk ESS down to 89" in notes
    assert "comparison was not run" in notes
    assert "nan" not in text.lower().replace("nats", "")
    assert "nothing to test" in text
    numbers = json.loads((out / "report.json").read_text())
    assert any("R-hat up to 1.038" in n for n in numbers["notes"])


def test_figures_name_states_say_nothing_to_test_and_share_one_sigma(tmp_path):
    from detailed_balance.formats import read_counts
    from detailed_balance.report import (
        analyse,
        plot_landscape,
        plot_loops,
        plot_pairwise,
        plot_potential_histogram,
    )

    path = tmp_path / "c.csv"
    write_counts(sample_counts(reversible_chain(45, degree=4, seed=2), seed=2), path)
    a = analyse(read_counts(path), None, draws=32)
    ticks = [t.get_text() for t in plot_landscape(a).axes[0].get_xticklabels()]
    assert len(ticks) == 45 and set(ticks) == set(a.counts.states)  # names, not ranks
    legend = plot_potential_histogram(a).axes[0].get_legend().get_texts()[1].get_text()
    assert f"σ = {a.width['sigma']:.2f}" in legend  # the σ of the text and tables
    one_way = tmp_path / "one_way.csv"
    one_way.write_text("source,target,count\nA,B,3\nB,C,2\nA,,1\nC,,4\nB,,2\n")
    b = analyse(read_counts(one_way), None, draws=16)
    for fig in (plot_pairwise(b), plot_loops(b)):
        title = fig.axes[0].get_title()
        assert "nan" not in title and "nothing to test" in title, title


def test_a_failed_report_leaves_no_folder_and_no_temporary(counts_file, tmp_path, monkeypatch):
    from detailed_balance import report

    def broken(a):
        raise RuntimeError("figure failed")

    monkeypatch.setitem(report.FIGURES, "loops", (broken, "x"))
    out = tmp_path / "r"
    with pytest.raises(RuntimeError):
        build_report(counts_file, out, draws=16, compare=False, progress=False)
    assert list(tmp_path.iterdir()) == []  # no report folder, no hidden .r.*.tmp


def test_a_new_report_replaces_the_old_and_keeps_other_files(counts_file, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    (out / "figures").mkdir()
    (out / "figures" / "stale.png").write_bytes(b"old")
    build_report(counts_file, out, draws=16, compare=False, progress=False)
    assert (out / "mine.txt").read_text() == "keep" and (out / "index.md").exists()
    assert not (out / "figures" / "stale.png").exists()
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


needs_tex = pytest.mark.skipif(
    __import__("shutil").which("pdflatex") is None, reason="pdflatex not installed"
)


@needs_tex
def test_pdflatex_compiles_wide_and_long_tables(tmp_path):
    import subprocess

    import pandas as pd

    wide = pd.DataFrame(
        {"model": ["unconstrained", "reversible", "nonreversible"]}
        | {f"log BF ≈ col {i} < 1": [0.1 * i, np.nan, np.inf] for i in range(20)}
    )
    long = pd.DataFrame({"state": [f"state_{i} & $x^{i}$" for i in range(151)], "V": range(151)})
    wide_tex, long_tex = to_latex(wide, "wide", "tab:w"), to_latex(long, "long ≈ < 1", "tab:l")
    assert wide_tex.count("\\\\") == 21  # transposed: a header and one row per column
    assert long_tex.count("\\begin{table}") == 4 and long_tex.count("(continued)") == 3
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
        f"{wide_tex}\n{long_tex}\n\\end{{document}}\n"
    )
    r = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert r.returncode == 0, log[-3000:]
    assert "Overfull \\hbox" not in log or "tab:w" not in log
    pages = int(re.search(r"Output written on doc.pdf \((\d+) page", log).group(1))
    assert pages >= 4  # the 151 rows broke across pages


@pytest.mark.parametrize("method", ["", "savage-dickey", "variational lower bound"])
def test_comparison_table_caption_says_when_the_bf_is_a_bound(counts_file, tmp_path, method):
    import pandas as pd

    from detailed_balance.comparison import ComparisonResult

    table = pd.DataFrame({"model": ["reversible", "nonreversible"],
                          "log_bf_vs_reversible": [0.0, 12.0], "log_bf_se": [0.0, 0.3],
                          "bf_method": ["", method]})  # fmt: skip
    result = ComparisonResult(table, {}, pd.DataFrame(), "a verdict")
    build_report(counts_file, tmp_path / "r", draws=16, comparison=result, progress=False)
    caption = (tmp_path / "r" / "tables" / "comparison.md").read_text().split("\n\n")[0]
    bound = "is a variational bound, not an estimate" in caption
    assert bound == method.startswith("variational"), caption
