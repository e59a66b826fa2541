"""The counts table: ``source,target,count`` CSV (empty target = a rejection)."""

from __future__ import annotations

import csv
import io

import numpy as np

from ..counts import TransitionCounts
from ..errors import DataError
from ._io import open_atomic, read_bytes

CSV_COLUMNS = ("source", "target", "count")


def read_counts_csv(path, *, states=None) -> TransitionCounts:
    """Read a ``source,target,count`` table (columns in any order; blank lines ignored).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    states : sequence of str, optional
        State order (may add states never seen); default: the labels sorted.

    Returns
    -------
    TransitionCounts
    """
    file = str(path)
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", file=file) from None
    if not text.strip():
        raise DataError("empty file", file=file)
    reader = csv.reader(io.StringIO(text))
    try:
        return _read_csv_rows(reader, file, states)
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit (131,072)
        raise DataError(f"unreadable CSV ({exc})", file=file, row=reader.line_num) from None


def _read_csv_rows(reader, file: str, states) -> TransitionCounts:
    header = [h.strip().lower() for h in next(reader)]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise DataError(
            f"unknown column {unknown[0]!r} (expected {','.join(CSV_COLUMNS)})", file=file, row=1
        )
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing or len(set(header)) != len(header):
        what = f"missing column {missing[0]!r}" if missing else "repeated column"
        raise DataError(f"{what} (expected {','.join(CSV_COLUMNS)})", file=file, row=1)
    col = [header.index(c) for c in CSV_COLUMNS]
    src, tgt, cnt, rows = [], [], [], []
    for fields in reader:
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise DataError(
                f"expected {len(header)} fields, found {len(fields)}",
                file=file,
                row=reader.line_num,
            )
        src.append(fields[col[0]].strip())
        tgt.append(fields[col[1]].strip())
        cnt.append(fields[col[2]].strip())
        rows.append(reader.line_num)
    if not rows:
        raise DataError("no data rows (only a header)", file=file)
    counts = TransitionCounts.from_records(src, tgt, cnt, states=states, file=file, rows=rows)
    _check_sources_have_attempts(counts, src, rows, file)
    return counts


def _check_sources_have_attempts(counts: TransitionCounts, sources, rows, file: str) -> None:
    """A state listed as a source whose rows sum to zero has no attempts: say so, don't guess."""
    empty = counts.attempts == 0
    if not empty.any():
        return
    lookup = {s: i for i, s in enumerate(counts.states)}
    for src, row in zip(sources, rows, strict=True):
        if empty[lookup[src]]:
            problem = f"source {src!r} has zero attempts (its counts sum to 0); drop its rows"
            raise DataError(problem, file=file, row=row)


def write_counts_csv(counts: TransitionCounts, path) -> None:
    """Write the counts table: per source (in state order) its moves, then self, then rejected.

    A state with no attempts and no incoming transition cannot be expressed in a CSV and is lost.

    Parameters
    ----------
    counts : TransitionCounts
        The counts to write.
    path : str or Path
        The CSV file (written atomically).
    """
    n = counts.n_states
    states = np.arange(n)
    # one sort over all rows: per source, moves (by target), then self, then rejected
    src = np.concatenate([counts.source, states, states])
    kind = np.concatenate([np.zeros(len(counts.source)), np.ones(n), np.full(n, 2)]).astype(int)
    tgt = np.concatenate([counts.target, states, np.full(n, -1)])
    cnt = np.concatenate([counts.count, counts.self_count, counts.rejected])
    keep = cnt > 0
    order = np.lexsort((tgt[keep], kind[keep], src[keep]))
    labels = list(counts.states) + [""]
    with open_atomic(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for s, t, c in zip(
            src[keep][order].tolist(),
            tgt[keep][order].tolist(),
            cnt[keep][order].tolist(),
            strict=True,
        ):
            writer.writerow((labels[s], labels[t], c))
