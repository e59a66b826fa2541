"""The attempt log (JSON Lines, plain or gzip): the counts reader and a synthetic writer.

The record's fields and outcomes are :mod:`detailed_balance.attempts`; the collector
(:mod:`detailed_balance.collect.log`) writes real logs.
"""

from __future__ import annotations

import gzip
import json
import warnings
import zlib
from dataclasses import replace

import numpy as np

from ..attempts import attempt_record, record_problem
from ..counts import TransitionCounts
from ..errors import DataError
from ._io import (
    EXPANSION_RATIO,
    MIN_EXPANSION_LIMIT,
    check_expansion,
    open_atomic,
    read_bytes,
    short,
)
from ._json import parse_json_lines


def _log_lines(path) -> tuple[list[bytes], bool]:
    """Raw lines of a plain or gzip log, and whether a gzip stream was cut short."""
    raw = read_bytes(path)
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
            check_expansion(size, len(raw), str(path))
            if not d.eof:
                cut = True
                break
            rest = d.unused_data
        raw = b"".join(parts)
    return raw.split(b"\n"), cut


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
    linenos, values, notes = parse_json_lines(lines, file)
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
            problem = f"run_id {short(run_id)} must be text or an integer"
            raise DataError(problem, file=file, row=lineno)
        if kind == "run":
            runs.add(run_id)
            continue
        if kind != "attempt":
            n_other += 1
            continue
        problem = record_problem(rec)
        if problem:
            raise DataError(problem, file=file, row=lineno)
        outcome, source = rec["outcome"], rec["source"]
        if outcome == "error":
            n_errors += 1
            continue
        target = {"transition": rec.get("target"), "self": source}.get(outcome)
        if rec.get("attempt") is not None:
            if not _is_id(rec["attempt"]):  # true == 1 and 1.0 == 1 would merge attempts
                problem = f"attempt id {short(rec['attempt'])} must be an integer or text"
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


def write_attempt_log(
    counts: TransitionCounts, path, *, run_id: str = "synthetic", seed: int = 0
) -> None:
    """Expand counts into an attempt log, one line per attempt in random order (tests, benchmarks).

    Moves become ``transition``, self counts ``self``, rejections ``invalid``; fields a real
    collection records (model, tokens, timestamps) are filled with neutral values.

    Parameters
    ----------
    counts : TransitionCounts
        The counts to expand.
    path : str or Path
        The JSON Lines file.
    run_id : str
        Run id written on every line.
    seed : int
        Seed of the random order.
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
        rec = attempt_record(
            run_id,
            k,
            labels[s],
            outcome=outcome,
            target=None if t < 0 else labels[t],
            reason="synthetic rejection" if t < 0 else None,
            model="synthetic",
            timestamp="1970-01-01T00:00:00Z",
        )
        lines.append(json.dumps(rec))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if str(path).lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with open_atomic(path, "wb") as fh:
        fh.write(data)
