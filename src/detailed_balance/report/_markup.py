r"""Tables as Markdown and LaTeX, with escaping that keeps any text literal.

The LaTeX tabular is pandas' (``Styler.to_latex``), with our escaping as its formatter; the
Markdown table and the escaping are ours. Pandas' writers do not escape enough (checked with
pandas 3.1): ``DataFrame.to_markdown`` (tabulate) escapes nothing, so a ``|`` in a state name adds
a cell and a newline adds a row; ``Styler.format(escape="latex")`` escapes the ten special
characters only, leaving ``[`` after ``\\`` (read as its optional argument), ``--`` ligatures,
``|``/``<``/``>`` (wrong glyphs in OT1), control characters and Unicode (pdflatex errors).
"""

from __future__ import annotations

import re

import numpy as np


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
    lines = []
    for k, start in enumerate(range(0, max(len(df), 1), LATEX_ROWS_PER_FLOAT)):
        if k == 0:
            title = [rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{latex_escape(label)}}}"]
        else:  # the same number as the first part
            title = [r"\addtocounter{table}{-1}", r"\caption[]{(continued)}"]
        part = df.iloc[start : start + LATEX_ROWS_PER_FLOAT].style.hide(axis="index")
        part = part.format(lambda v: latex_escape(_fmt(v)))
        part = part.format_index(lambda c: latex_escape(str(c)), axis=1)
        tabular = part.to_latex(hrules=True, column_format=cols)  # booktabs rules
        lines += [r"\begin{table}", r"\centering", *title, tabular + r"\end{table}"]
    return "\n".join(lines) + "\n"
