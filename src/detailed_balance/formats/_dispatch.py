"""Choosing the reader or writer of a file: by extension unless ``format=`` is given."""

from __future__ import annotations

from pathlib import Path

from ..counts import TransitionCounts
from ..errors import DataError
from ._csv import read_counts_csv, write_counts_csv
from ._json import load_json
from ._log import read_attempt_log
from ._native import read_native, write_native
from ._paper import read_paper_expressions, read_paper_words

READ_FORMATS = ("csv", "log", "npz", "json", "words", "expressions")
WRITE_FORMATS = ("csv", "npz")


def detect_format(path, format: str | None = None) -> str:
    """The format name of ``path``: ``format`` if given, else from the extension.

    Parameters
    ----------
    path : str or Path
        The input file.
    format : str, optional
        An explicit format, one of ``READ_FORMATS``.

    Returns
    -------
    str
        The format name.
    """
    if format is not None:
        if format not in READ_FORMATS:
            raise DataError(f"unknown format {format!r} (use one of {', '.join(READ_FORMATS)})")
        return format
    name = Path(path).name.lower()
    for suffix, fmt in ((".csv", "csv"), (".jsonl", "log"), (".jsonl.gz", "log"), (".npz", "npz")):
        if name.endswith(suffix):
            return fmt
    if name.endswith(".json"):
        return "json"
    raise DataError(
        "cannot tell the format from the extension (use .csv, .jsonl, .jsonl.gz, .npz or .json)",
        file=str(path),
    )


def read_counts(path, format: str | None = None, *, states=None) -> TransitionCounts:
    """Read counts from any supported file (see the module docstring for formats).

    Parameters
    ----------
    path : str or Path
        A ``.csv`` table, an attempt log (``.jsonl``, ``.jsonl.gz``), a native ``.npz`` file or one
        of the paper's ``.json`` layouts.
    format : {"csv", "log", "npz", "json"}, optional
        Overrides the extension.
    states : sequence of str, optional
        (CSV only) declares the state list: a source or target outside it is an error.

    Returns
    -------
    TransitionCounts

    Raises
    ------
    DataError
        A bad file or record, named by file and row.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "counts.csv"
    >>> _ = path.write_text("source,target,count\\nA,B,3\\nB,A,1\\nA,,2\\nB,B,4\\n")
    >>> counts = read_counts(path)  # an empty target is a rejection, B -> B a self-reply
    >>> counts
    TransitionCounts(2 states, 10 attempts, 2 distinct moves, 2 rejected)
    >>> counts.attempts.tolist(), counts.rejected.tolist(), counts.self_count.tolist()
    ([5, 5], [2, 0], [0, 4])
    """
    fmt = detect_format(path, format)
    if not Path(path).is_file():
        raise DataError("no such file", file=str(path))
    if states is not None and fmt != "csv":
        raise DataError("states= applies to CSV tables only", file=str(path))
    if fmt == "csv":
        return read_counts_csv(path, states=states)
    if fmt == "log":
        return read_attempt_log(path)
    if fmt == "npz":
        return read_native(path)
    if fmt == "words":
        return read_paper_words(path)
    if fmt == "expressions":
        return read_paper_expressions(path)
    data = load_json(path)
    if isinstance(data, dict):
        return read_paper_words(path, data=data)
    if isinstance(data, list):
        return read_paper_expressions(path, data=data)
    raise DataError(
        "a paper JSON file holds an object (words) or a list (expressions)", file=str(path)
    )


def write_counts(counts: TransitionCounts, path, format: str | None = None) -> None:
    """Write counts as CSV or native npz (atomically: a temporary file, then ``os.replace``).

    Parameters
    ----------
    counts : TransitionCounts
    path : str or Path
        ``.csv`` (the interchange table ``source,target,count``) or ``.npz`` (lossless).
    format : {"csv", "npz"}, optional
        Overrides the extension.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=20, seed=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "counts.csv"
    >>> write_counts(counts, path)
    >>> read_counts(path).attempts.tolist() == counts.attempts.tolist()
    True
    """
    fmt = detect_format(path, format)
    if fmt == "csv":
        write_counts_csv(counts, path)
    elif fmt == "npz":
        write_native(counts, path)
    else:
        raise DataError(f"cannot write {fmt!r}; counts are written as .csv or .npz", file=str(path))
