"""State names from an LLM are data: they can never change what a report's LaTeX, Markdown or
figures do (issue 12). Hostile names go through the whole report; every ``.tex`` it writes is
compiled by a real ``pdflatex`` (when installed) next to a trap file that a name tries to
``\\input``; the escapers are also checked on random text.
"""

from __future__ import annotations

import json
import re
import shutil
import string
import subprocess

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detailed_balance.report import (
    build_report,
    latex_escape,
    markdown_escape,
    to_latex,
    to_markdown,
)
from detailed_balance.report._markup import _TEX  # the escape table, tested entry by entry

HOSTILE = [
    r"\input{trap}",
    r"\def\x{y}\x",
    r"$\frac{1}{0}$",
    r"$x^{",
    "50% done",
    "a & b",
    "#1",
    "~home",
    "^^41",
    "snake_case",
    "{open",
    "close}",
    r"\end{document}",
    "\\\\",
    "<script>alert(1)</script>",
    "a|b",
    "**bold**",
    "[link](http://x)",
    "`code`",
    r"\verb|x|",
    r"\immediate\write18{touch pwned}",
    "é",
]
SPECIALS = set("\\{}$&#^_~%")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report (no comparison) on a ring of states named as above, every arc seen both ways."""
    root = tmp_path_factory.mktemp("hostile")
    names = HOSTILE
    rows = []
    for i, s in enumerate(names):
        for j in (i - 1, i + 1):
            t = names[j % len(names)]
            rows.append((s, t, 3 + (i * 7 + j) % 5))
        rows.append((s, "", 1))
    path = root / "hostile.csv"
    pd.DataFrame(rows, columns=["source", "target", "count"]).to_csv(path, index=False)
    out = root / "report"
    build_report(path, out, draws=64, compare=False, progress=False)
    return out


def _strip_escapes(tex: str) -> str:
    for seq in sorted(_TEX.values(), key=len, reverse=True):
        tex = tex.replace(seq, "")
    return tex


@pytest.mark.parametrize("name", HOSTILE)
def test_latex_escape_leaves_no_live_special_and_is_reversible(name):
    out = latex_escape(name)
    assert not SPECIALS & set(_strip_escapes(out)), out
    inverse = {v: k for k, v in _TEX.items() if k not in "\n\r"}
    pattern = re.compile("|".join(re.escape(v) for v in sorted(inverse, key=len, reverse=True)))
    assert pattern.sub(lambda m: inverse[m.group()], out) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_markdown_escape_keeps_one_cell_and_no_html(name):
    md = to_markdown(pd.DataFrame({"state": [name], "n": [1]}))
    lines = md.splitlines()
    assert len(lines) == 3 and "<" not in md and ">" not in md
    assert len(re.split(r"(?<!\\)\|", lines[2])) == 4  # "", state, n, ""


def test_every_report_file_shows_names_and_obeys_none(report):
    md = (report / "tables" / "potentials.md").read_text()
    body = [r for r in md.splitlines() if r.startswith("| ")][1:]
    assert len(body) == len(HOSTILE)
    assert all(len(re.split(r"(?<!\\)\|", r)) == len(re.split(r"(?<!\\)\|", md.splitlines()[2]))
               for r in body)  # fmt: skip
    assert "<script>" not in md and "&lt;script&gt;" in md
    numbers = json.loads((report / "report.json").read_text(), parse_constant=_refuse)
    assert sorted(s["state"] for s in numbers["states"]) == sorted(HOSTILE)
    assert (report / "figures" / "potential_landscape.png").stat().st_size > 1000


def _refuse(name):
    raise AssertionError(f"bare {name} in report.json")


DOCUMENT = r"""\documentclass{article}
\usepackage{booktabs}
\begin{document}
\input{%s}
Done.
\end{document}
"""


def _compile(folder, table: str) -> subprocess.CompletedProcess:
    (folder / "trap.tex").write_text("\\errmessage{INJECTED: a state name ran \\string\\input}\n")
    (folder / "doc.tex").write_text(DOCUMENT % table)
    return subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")


@needs_tex
@pytest.mark.parametrize("table", ["potentials", "diagnostics"])
def test_pdflatex_compiles_the_reports_tables_and_no_name_runs(report, table):
    folder = report / "tables"
    r = _compile(folder, table)
    log = (folder / "doc.log").read_text(errors="replace")
    assert r.returncode == 0, log[-3000:]
    assert "INJECTED" not in log and "trap.tex" not in log
    assert not (folder / "pwned").exists()
    assert (folder / "doc.pdf").stat().st_size > 1000


@needs_tex
def test_pdflatex_compiles_every_printable_character_alone_and_together(tmp_path):
    cells = list(string.printable.strip()) + [string.printable.strip(), "±≥≤≈√πσβχ²Δ∞←→×·−–—…"]
    tex = to_latex(pd.DataFrame({"state": cells, "n": range(len(cells))}), "all: %$&#_{}~^\\", "t")
    (tmp_path / "ascii.tex").write_text(tex)
    r = _compile(tmp_path, "ascii")
    assert r.returncode == 0, (tmp_path / "doc.log").read_text(errors="replace")[-3000:]


@settings(
    database=None,  # no .hypothesis/ folder in the checkout
    max_examples=200,
    deadline=None,
)
@given(text=st.text(max_size=40))
def test_random_text_escapes_cleanly(text):
    assert not SPECIALS & set(_strip_escapes(latex_escape(text)))
    assert not re.search("[\x00-\x1f\x7f-\x9f]", latex_escape(text))
    md = markdown_escape(text)
    assert not re.search(r"(?<!\\)\|", md) and "<" not in md and "\n" not in md
