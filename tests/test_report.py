"""The report: every file written, figures non-empty, intervals labelled, fits and CLI."""

from __future__ import annotations

import json

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
