"""The paper's JSON layouts: (a) prompt word -> generated words, (b) expression records."""

from __future__ import annotations

import re

from ..counts import TransitionCounts
from ..errors import DataError
from ._io import short
from ._json import load_json

# How the paper writes a rejected generation in layout (a): INVALID00, INVALID01, ...
INVALID_PLACEHOLDER = r"INVALID\d*"


def read_paper_words(path, *, invalid: str = INVALID_PLACEHOLDER, data=None) -> TransitionCounts:
    """Layout (a): a JSON object mapping each prompt word to the list of words generated from it.

    A generation matching ``invalid`` (a regular expression; the paper writes ``INVALID00``...)
    is a rejection, not a state; a repeat of the prompt word is a self-transition. Row = entry
    number in the object (1-based). Use ``counts.kernel("escape")`` for the paper's T = N / N0.

    Parameters
    ----------
    path : str or Path
        The JSON file.
    invalid : str
        Regular expression of a rejected generation.
    data : dict, optional
        The already parsed JSON (then ``path`` only names it in messages).

    Returns
    -------
    TransitionCounts
    """
    file = str(path)
    data = load_json(path) if data is None else data
    if not isinstance(data, dict):
        raise DataError(
            "layout (a) is a JSON object: prompt word -> list of generated words", file=file
        )
    pattern = re.compile(invalid)
    src, tgt, rows = [], [], []
    for entry, (word, generated) in enumerate(data.items(), start=1):
        if pattern.fullmatch(word):
            raise DataError(
                f"prompt word {short(word)} is a rejection placeholder, never a state",
                file=file,
                row=entry,
            )
        if not isinstance(generated, list) or not all(isinstance(g, str) for g in generated):
            raise DataError(f"{short(word)} must map to a list of strings", file=file, row=entry)
        if not generated:
            raise DataError(
                f"source {word!r} has zero attempts (an empty list)", file=file, row=entry
            )
        for g in generated:
            src.append(word)
            tgt.append(None if pattern.fullmatch(g) else g)
            rows.append(entry)
    if not src:
        raise DataError("no prompt words", file=file)
    return TransitionCounts.from_records(src, tgt, None, file=file, rows=rows)


def read_paper_expressions(path, *, data=None) -> TransitionCounts:
    """Layout (b): a JSON list of records ``target_expression``, ``source_expressions``.

    A record is ``{"target_expression": t, "source_expressions": [{"expression": s}, ...]}``.

    Each source expression is one transition ``s -> t`` (``s == t`` is a self-transition). Row =
    record number (1-based). The paper's estimator for this task is
    ``counts.kernel("within", min_samples=2)``: self-loops dropped, single-sample states filtered.

    Parameters
    ----------
    path : str or Path
        The JSON file.
    data : list, optional
        The already parsed JSON (then ``path`` only names it in messages).

    Returns
    -------
    TransitionCounts
    """
    file = str(path)
    data = load_json(path) if data is None else data
    if not isinstance(data, list):
        raise DataError("layout (b) is a JSON list of records", file=file)
    src, tgt, rows, seen = [], [], [], []
    for k, rec in enumerate(data, start=1):
        if (
            not isinstance(rec, dict)
            or "target_expression" not in rec
            or "source_expressions" not in rec
        ):
            raise DataError(
                "a record needs 'target_expression' and 'source_expressions'", file=file, row=k
            )
        target, sources = rec["target_expression"], rec["source_expressions"]
        if not isinstance(target, str) or not target or not isinstance(sources, list):
            raise DataError(
                "'target_expression' must be a string and 'source_expressions' a list",
                file=file,
                row=k,
            )
        seen.append(target)
        for s in sources:
            expr = s.get("expression") if isinstance(s, dict) else None
            if not isinstance(expr, str) or not expr:
                raise DataError(
                    "each source expression needs an 'expression' string", file=file, row=k
                )
            src.append(expr)
            tgt.append(target)
            rows.append(k)
    if not src:
        raise DataError("no source expressions (no transitions)", file=file)
    # a target generated from nothing listed here is still a state
    states = sorted(set(seen) | set(src))
    return TransitionCounts.from_records(src, tgt, None, states=states, file=file, rows=rows)
