"""Strict JSON: writing (``null``, never ``NaN``) and reading (no duplicate keys, bounded depth),
and the JSON Lines parser shared by the attempt-log reader and the collector's resume."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np

from ..errors import DataError
from ._io import read_bytes


def json_safe(obj):
    """``obj`` made strict-JSON ready: numpy scalars and arrays as plain Python values, every
    non-finite float (NaN, ±inf) as ``None`` (JSON ``null``), tuples as lists.

    Parameters
    ----------
    obj : object
        Nested dicts, lists, tuples, numpy values and scalars.

    Returns
    -------
    object
        The same structure of plain Python values.

    Examples
    --------
    >>> import numpy as np
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

    Parameters
    ----------
    obj : object
        The value to write.
    **kwargs
        Passed to :func:`json.dumps` (e.g. ``indent``).

    Returns
    -------
    str
        The JSON text.

    Examples
    --------
    >>> to_json({"bf": float("nan"), "n": 3})
    '{"bf": null, "n": 3}'
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


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def strict_loads(text):
    """``json.loads`` that refuses duplicate keys and turns nesting too deep for Python into a
    ValueError, so every failure is a ValueError. (``NaN`` in a field nobody reads stays
    readable: older logs have it in timings; where it matters, e.g. an attempt id, it is refused.)
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def json_problem(exc: Exception) -> str:
    """The one-line reason of a failed :func:`strict_loads`."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    return str(exc)


def load_json(path):
    """The strict-JSON content of a UTF-8 file, or a one-line :class:`DataError`."""
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", file=str(path)) from None
    if not text.strip():
        raise DataError("empty file", file=str(path))
    try:
        return strict_loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON ({exc.msg}, line {exc.lineno})", file=str(path)) from None
    except ValueError as exc:
        raise DataError(f"malformed JSON ({exc})", file=str(path)) from None


def parse_json_lines(
    lines: list[bytes], file: str, *, skip_bad_last: bool = True
) -> tuple[list[int], list, list[str]]:
    """Parse JSON Lines strictly: line numbers and values of the non-blank lines, and notes.

    Each line is read with duplicate keys refused and nesting bounded. A bad last line (an
    interrupted write) is skipped with a warning and a note when ``skip_bad_last``; any other bad
    line is a :class:`DataError` naming it.

    Parameters
    ----------
    lines : list of bytes
        The file's lines.
    file : str
        File name for messages.
    skip_bad_last : bool
        Skip (with a note) a malformed last line instead of raising.

    Returns
    -------
    linenos : list of int
        1-based line number of each value.
    values : list
        The parsed values.
    notes : list of str
        What was skipped.

    Examples
    --------
    >>> parse_json_lines([b'{"a": 1}', b"", b"[2]"], "x.jsonl")
    ([1, 3], [{'a': 1}, [2]], [])
    >>> parse_json_lines([b'{"a": 1, "a": 2}'], "x.jsonl")
    Traceback (most recent call last):
    ...
    detailed_balance.errors.DataError: x.jsonl, row 1: malformed JSON line (duplicate key 'a' in one object (its values would be lost))
    """  # noqa: E501
    linenos = [k + 1 for k, line in enumerate(lines) if line.strip()]
    kept = [lines[n - 1] for n in linenos]
    try:
        # fast path: decode the text once, then one decoder call per line (no per-line bytes
        # handling). Not one parse of the lines joined into an array: a value may then span
        # lines, so invalid lines ('{"a":"}' + '{","b":1}') could pass as valid records.
        text = b"\n".join(kept).decode("utf-8")
        values = [_DECODER.decode(line) for line in text.split("\n")]
        if len(values) == len(kept):
            return linenos, values, []
    except (ValueError, RecursionError):  # bad JSON or UTF-8, a duplicate key, too deep
        pass  # the line-by-line parse below names the line and the problem
    out_rows, out, notes = [], [], []
    for pos, (lineno, line) in enumerate(zip(linenos, kept, strict=True)):
        try:
            out.append(strict_loads(line))
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
                f"malformed JSON line ({json_problem(exc)})", file=file, row=lineno
            ) from None
    return out_rows, out, notes
