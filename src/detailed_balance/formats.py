"""Readers and writers of transition counts: CSV table, attempt log, native npz, the paper's JSON.

Every reader ends in :meth:`TransitionCounts.from_records`, which validates and aggregates; the
readers only parse, and name the file and row (line, or entry of a JSON file) of a bad record.

Formats, chosen by extension unless ``format=`` is given:

==========================  ===============  ======================================================
extension                   ``format``       content
==========================  ===============  ======================================================
``.csv``                    ``"csv"``        ``source,target,count``; empty target = rejected,
                                             ``target == source`` = self-transition
``.jsonl``, ``.jsonl.gz``   ``"log"``        the attempt log written by ``collect`` (one JSON
                                             object per line)
``.npz``                    ``"npz"``        lossless native file (states in order, arrays, notes)
``.json``                   ``"json"``       the paper's layouts, detected: ``"words"`` (object:
                                             prompt word -> generated words) or ``"expressions"``
                                             (list of ``target_expression``/``source_expressions``)
==========================  ===============  ======================================================
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import re
import tempfile
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from .counts import TransitionCounts
from .errors import DataError

CSV_COLUMNS = ("source", "target", "count")
NATIVE_VERSION = "detailed-balance-counts/1"
OUTCOMES = {"transition", "self", "invalid", "unparseable", "error"}
INVALID_PLACEHOLDER = r"INVALID\d*"
READ_FORMATS = ("csv", "log", "npz", "json", "words", "expressions")
WRITE_FORMATS = ("csv", "npz")
# A compressed input may expand to at most this many bytes, or 100 times its own size if that is
# more: a real log compresses 5-20x, a "gzip bomb" of repeated bytes about 1000x.
MIN_EXPANSION_LIMIT = 16 * 2**20
EXPANSION_RATIO = 100


def detect_format(path, format: str | None = None) -> str:
    """The format name of ``path``: ``format`` if given, else from the extension."""
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
    data = _load_json(path)
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


def _read_bytes(path) -> bytes:
    """The file's bytes, or a one-line error (missing file, folder, no permission)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror or exc})", file=str(path)) from None


# ---- atomic output -------------------------------------------------------------------------------
@contextmanager
def atomic_output(path):
    """Yield a temporary path next to ``path``; on success rename it over ``path``, else delete it.

    An interrupted or failed writer never leaves a partial file under ``path``. The file gets the
    usual permissions (0666 minus the umask), not the private 0600 of a temporary file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_output(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder, not a file", file=str(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write here ({exc.strerror or exc})", file=str(path)) from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def _atomic(path, mode: str):
    """An open file (text mode: UTF-8, no newline translation) written through atomic_output."""
    with atomic_output(path) as tmp:
        kwargs = {"newline": "", "encoding": "utf-8"} if "b" not in mode else {}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


# ---- strict JSON ---------------------------------------------------------------------------------
def json_safe(obj):
    """``obj`` made strict-JSON ready: numpy scalars and arrays as plain Python values, every
    non-finite float (NaN, ±inf) as ``None`` (JSON ``null``), tuples as lists.

    Examples
    --------
    >>> json_safe({"x": np.float64("nan"), "y": np.arange(2), "z": (1.5, float("inf"))})
    {'x': None, 'y': [0, 1], 'z': [1.5, None]}
    """
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_json(obj, **kwargs) -> str:
    """``json.dumps`` of :func:`json_safe` (``obj``): strict JSON, never a bare ``NaN``.

    Objects JSON does not know (paths, dates) are written as their ``str``.
    """
    return json.dumps(json_safe(obj), allow_nan=False, default=str, **kwargs)


class _DuplicateKey(ValueError):
    """A JSON object that names one key twice (json.loads would keep only the last value)."""


def _unique_keys(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _DuplicateKey(f"duplicate key {key!r} in one object (its values would be lost)")
    return obj


def _strict_loads(text):
    """``json.loads`` that refuses duplicate keys and turns nesting too deep for Python into a
    ValueError, so every failure is a ValueError. (``NaN`` in a field nobody reads stays
    readable: older logs have it in timings; where it matters, e.g. an attempt id, it is refused.)
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _json_problem(exc: Exception) -> str:
    """The one-line reason of a failed :func:`_strict_loads`."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    return str(exc)


# ---- CSV counts table ----------------------------------------------------------------------------
def read_counts_csv(path, *, states=None) -> TransitionCounts:
    """Read a ``source,target,count`` table (columns in any order; blank lines ignored)."""
    file = str(path)
    try:
        text = _read_bytes(path).decode("utf-8-sig")
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
    with _atomic(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for s, t, c in zip(
            src[keep][order].tolist(),
            tgt[keep][order].tolist(),
            cnt[keep][order].tolist(),
            strict=True,
        ):
            writer.writerow((labels[s], labels[t], c))


# ---- native npz ------------------------------------------------------------
def write_native(counts: TransitionCounts, path) -> None:
    """Lossless native file: states in order, the sparse arrays and the notes."""
    arrays = {
        "format": np.array(NATIVE_VERSION),
        "states": np.array(counts.states, dtype=str),
        "source": counts.source.astype(np.int64),
        "target": counts.target.astype(np.int64),
        "count": counts.count.astype(np.int64),
        "self_count": counts.self_count.astype(np.int64),
        "rejected": counts.rejected.astype(np.int64),
        "notes": np.array(counts.notes, dtype=str),
    }
    with _atomic(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def read_native(path) -> TransitionCounts:
    """Read a native npz file, checking every array (row = arc number, 1-based)."""
    file = str(path)
    raw = _read_bytes(path)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"not a native counts file (not a zip archive: {exc})", file=file) from None
    _check_expansion(expanded, len(raw), file)  # zipfile never reads past a member's size
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # numpy's parser of untrusted bytes raises many kinds; none is ours
        raise DataError(f"not a native counts file ({_short(str(exc), 120)})", file=file) from None
    needed = ("format", "states", "source", "target", "count", "self_count", "rejected")
    missing = [k for k in needed if k not in data]
    if missing:
        raise DataError(f"not a native counts file (missing {', '.join(missing)})", file=file)
    if data["format"].shape != () or str(data["format"]) != NATIVE_VERSION:
        raise DataError(f"unsupported native format {_short(str(data['format']))}", file=file)
    ints = ("source", "target", "count", "self_count", "rejected")
    if any(data[k].ndim != 1 or not np.issubdtype(data[k].dtype, np.integer) for k in ints):
        raise DataError("index and count arrays must be 1-d integer arrays", file=file)
    texts = [k for k in ("states", "notes") if k in data]
    if any(data[k].ndim != 1 or data[k].dtype.kind != "U" for k in texts):
        raise DataError("states and notes must be 1-d arrays of text", file=file)
    states = data["states"].tolist()
    n = len(states)
    src, tgt = data["source"], data["target"]
    if (
        not (len(src) == len(tgt) == len(data["count"]))
        or data["self_count"].shape != (n,)
        or data["rejected"].shape != (n,)
    ):
        raise DataError("array lengths do not match", file=file)
    for what, idx in (("source", src), ("target", tgt)):
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{what} index {int(idx[k])} is not a state of this file", file=file, row=k + 1
            )
    if (src == tgt).any():
        k = int(np.flatnonzero(src == tgt)[0])
        raise DataError(
            "a move from a state to itself (self counts belong in self_count)", file=file, row=k + 1
        )
    labels = np.asarray(states, dtype=object)
    everyone = np.arange(n)
    counts = TransitionCounts.from_records(
        np.concatenate([labels[src], labels[everyone], labels[everyone]]),
        np.concatenate([labels[tgt], labels[everyone], np.full(n, None, dtype=object)]),
        np.concatenate([data["count"], data["self_count"], data["rejected"]]),
        states=states,
        file=file,
    )
    if len(counts.count) != len(src) or (data["count"] == 0).any():
        raise DataError("moves must be unique with positive counts", file=file)
    notes = tuple(data["notes"].tolist()) if "notes" in data else ()
    return replace(counts, notes=notes)


# ---- attempt log ---------------------------------------------------------------------------------
def _log_lines(path) -> tuple[list[bytes], bool]:
    """Raw lines of a plain or gzip log, and whether a gzip stream was cut short."""
    raw = _read_bytes(path)
    cut = False
    if str(path).lower().endswith(".gz"):
        limit = max(MIN_EXPANSION_LIMIT, EXPANSION_RATIO * len(raw))
        parts, size, rest = [], 0, raw
        while rest:
            # a log appended to in several sessions is several gzip members in a row
            d = zlib.decompressobj(wbits=31)
            try:
                parts.append(d.decompress(rest, limit + 1 - size))  # never more than the limit
            except zlib.error as exc:
                raise DataError(f"not a valid gzip file ({exc})", file=str(path)) from None
            size += len(parts[-1])
            _check_expansion(size, len(raw), str(path))
            if not d.eof:
                cut = True
                break
            rest = d.unused_data
        raw = b"".join(parts)
    return raw.split(b"\n"), cut


def _check_expansion(expanded: int, compressed: int, file: str) -> None:
    """Refuse a compressed file that expands beyond the documented limit (a "zip bomb")."""
    limit = max(MIN_EXPANSION_LIMIT, EXPANSION_RATIO * compressed)
    if expanded > limit:
        raise DataError(
            f"expands to more than {limit:,} bytes ({EXPANSION_RATIO}x its size, at least "
            f"{MIN_EXPANSION_LIMIT // 2**20} MiB): refused as a likely decompression bomb",
            file=file,
        )


def _parse_lines(
    lines: list[bytes], file: str, *, skip_bad_last: bool = True
) -> tuple[list[int], list, list[str]]:
    """Line numbers and parsed JSON of the non-blank lines, and notes.

    A bad last line (an interrupted write) is skipped with a warning when ``skip_bad_last``;
    any other bad line is a :class:`DataError` naming it.
    """
    linenos = [k + 1 for k, line in enumerate(lines) if line.strip()]
    kept = [lines[n - 1] for n in linenos]
    try:
        # fast path: one C-level parse of all lines as a JSON array (about twice as fast as one
        # call per line); a line that is not exactly one JSON value changes the element count
        values = _strict_loads(b"[" + b",".join(kept) + b"]")
        if len(values) == len(kept):
            return linenos, values, []
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, a duplicate key, too deep
        pass
    out_rows, out, notes = [], [], []
    for pos, (lineno, line) in enumerate(zip(linenos, kept, strict=True)):
        try:
            out.append(_strict_loads(line))
            out_rows.append(lineno)
        except ValueError as exc:
            # a cut line fails to decode; a whole line with a duplicate key is not "truncated"
            truncated = isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError))
            if skip_bad_last and pos == len(kept) - 1 and truncated:
                msg = f"{file}, line {lineno}: skipped a truncated last line (an interrupted write)"
                warnings.warn(msg, stacklevel=3)
                notes.append(f"skipped a truncated last line (line {lineno})")
                continue
            raise DataError(
                f"malformed JSON line ({_json_problem(exc)})", file=file, row=lineno
            ) from None
    return out_rows, out, notes


def read_attempt_log(path) -> TransitionCounts:
    """Count the attempts of a JSONL log (plain or gzip) written by ``collect``.

    ``transition`` -> (source, target); ``self`` -> (source, source); ``invalid`` and
    ``unparseable`` -> rejected; ``error`` (no reply) is not an attempt. The same
    ``(run_id, attempt)`` twice is counted once (the last record wins). A malformed last line
    (a crash mid-write) is skipped with a warning; a malformed line elsewhere is an error.

    Parameters
    ----------
    path : str or Path
        The attempt log.

    Returns
    -------
    TransitionCounts

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=20, seed=0)
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "attempts.jsonl"
    >>> write_attempt_log(counts, log)  # one JSON line per attempt, as collect writes them
    >>> read_attempt_log(log).attempts.tolist()
    [20, 20, 20, 20, 20]
    """
    file = str(path)
    lines, cut = _log_lines(path)
    linenos, values, notes = _parse_lines(lines, file)
    src, tgt, rows = [], [], []
    slot: dict[tuple, int] = {}
    dropped: list[int] = []
    runs: set = set()
    n_errors = n_other = 0
    for lineno, rec in zip(linenos, values, strict=True):
        if not isinstance(rec, dict):
            raise DataError("a log line must be a JSON object", file=file, row=lineno)
        kind = rec.get("kind", "attempt")
        run_id = rec.get("run_id")
        if run_id is not None and not _is_id(run_id):
            problem = f"run_id {_short(run_id)} must be text or an integer"
            raise DataError(problem, file=file, row=lineno)
        if kind == "run":
            runs.add(run_id)
            continue
        if kind != "attempt":
            n_other += 1
            continue
        outcome = rec.get("outcome")
        if not isinstance(outcome, str) or outcome not in OUTCOMES:
            raise DataError(
                f"unknown outcome {outcome!r} (use {', '.join(sorted(OUTCOMES))})",
                file=file,
                row=lineno,
            )
        source = rec.get("source")
        if not isinstance(source, str) or not source:
            raise DataError("attempt without a source state", file=file, row=lineno)
        if outcome == "error":
            n_errors += 1
            continue
        if outcome == "transition":
            target = rec.get("target")
            if not isinstance(target, str) or not target:
                raise DataError(
                    "a 'transition' attempt without a target state", file=file, row=lineno
                )
        else:
            target = source if outcome == "self" else None
            if outcome == "self" and rec.get("target") not in (None, source):
                problem = "a 'self' attempt whose target differs from its source"
                raise DataError(problem, file=file, row=lineno)
        if rec.get("attempt") is not None:
            if not _is_id(rec["attempt"]):  # true == 1 and 1.0 == 1 would merge attempts
                problem = f"attempt id {_short(rec['attempt'])} must be an integer or text"
                raise DataError(problem, file=file, row=lineno)
            key = (run_id, rec["attempt"])
            if key in slot:
                dropped.append(slot[key])
            slot[key] = len(src)
        src.append(source)
        tgt.append(target)
        rows.append(lineno)
    if cut:
        warnings.warn(f"{file}: gzip stream ends early (an interrupted write)", stacklevel=2)
        notes.append("the gzip stream ends early; everything before the cut was read")
    if dropped:
        keep = np.ones(len(src), dtype=bool)
        keep[dropped] = False
        src = [s for s, k in zip(src, keep, strict=True) if k]
        tgt = [t for t, k in zip(tgt, keep, strict=True) if k]
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
        notes.append(
            f"{len(dropped)} repeated attempt ids were counted once (the last record wins)"
        )
    if not src:
        raise DataError("no attempts in the log", file=file)
    if n_errors:
        notes.append(
            f"{n_errors} calls ended in an error (no reply) and are not counted as attempts"
        )
    if n_other:
        notes.append(f"{n_other} lines of another kind were ignored")
    if len(runs) > 1:
        notes.append(f"{len(runs)} runs in one log")
    counts = TransitionCounts.from_records(src, tgt, None, file=file, rows=rows)
    return replace(counts, notes=counts.notes + tuple(notes))


def _is_id(value) -> bool:
    """An attempt or run id: an integer (not a bool, not a float) or text."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- the paper's layouts --------------------------------------------------
def _load_json(path):
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", file=str(path)) from None
    if not text.strip():
        raise DataError("empty file", file=str(path))
    try:
        return _strict_loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON ({exc.msg}, line {exc.lineno})", file=str(path)) from None
    except ValueError as exc:
        raise DataError(f"malformed JSON ({exc})", file=str(path)) from None


def read_paper_words(path, *, invalid: str = INVALID_PLACEHOLDER, data=None) -> TransitionCounts:
    """Layout (a): a JSON object mapping each prompt word to the list of words generated from it.

    A generation matching ``invalid`` (a regular expression; the paper writes ``INVALID00``...)
    is a rejection, not a state; a repeat of the prompt word is a self-transition. Row = entry
    number in the object (1-based). Use ``counts.kernel("escape")`` for the paper's T = N / N0.
    """
    file = str(path)
    data = _load_json(path) if data is None else data
    if not isinstance(data, dict):
        raise DataError(
            "layout (a) is a JSON object: prompt word -> list of generated words", file=file
        )
    pattern = re.compile(invalid)
    src, tgt, rows = [], [], []
    for entry, (word, generated) in enumerate(data.items(), start=1):
        if pattern.fullmatch(word):
            raise DataError(
                f"prompt word {_short(word)} is a rejection placeholder, never a state",
                file=file,
                row=entry,
            )
        if not isinstance(generated, list) or not all(isinstance(g, str) for g in generated):
            raise DataError(f"{_short(word)} must map to a list of strings", file=file, row=entry)
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
    """
    file = str(path)
    data = _load_json(path) if data is None else data
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


def write_attempt_log(
    counts: TransitionCounts, path, *, run_id: str = "synthetic", seed: int = 0
) -> None:
    """Expand counts into an attempt log, one line per attempt in random order (tests, benchmarks).

    Moves become ``transition``, self counts ``self``, rejections ``invalid``; fields a real
    collection records (model, tokens, timestamps) are filled with neutral values.
    """
    n = counts.n_states
    everyone = np.arange(n)
    src = np.concatenate([counts.source, everyone, everyone])
    tgt = np.concatenate([counts.target, everyone, np.full(n, -1)])
    cnt = np.concatenate([counts.count, counts.self_count, counts.rejected])
    src, tgt = np.repeat(src, cnt), np.repeat(tgt, cnt)
    order = np.random.default_rng(seed).permutation(len(src))
    src, tgt = src[order], tgt[order]
    labels = counts.states
    head = {"kind": "run", "run_id": run_id, "config": {"source": "detailed_balance.formats"}}
    lines = [json.dumps(head)]
    for k, (s, t) in enumerate(zip(src.tolist(), tgt.tolist(), strict=True)):
        outcome = "invalid" if t < 0 else ("self" if t == s else "transition")
        rec = {
            "kind": "attempt",
            "run_id": run_id,
            "attempt": k,
            "source": labels[s],
            "target": None if t < 0 else labels[t],
            "outcome": outcome,
            "reason": "synthetic rejection" if t < 0 else None,
            "raw": None,
            "model": "synthetic",
            "temperature": 1.0,
            "template_hash": "",
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "latency_s": 0.0,
            "timestamp": "1970-01-01T00:00:00Z",
            "logprobs": None,
        }
        lines.append(json.dumps(rec))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if str(path).lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with _atomic(path, "wb") as fh:
        fh.write(data)
