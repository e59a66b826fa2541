"""Fuzz corpus of the readers (issue 12): every malformed file is one DataError naming the file
(and the row where there is one), never a traceback and never a silent wrong answer; tricky but
valid files give the counts worked out by hand. Property-based tests (hypothesis) then throw
random tables, JSON values and bytes at every reader.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import string
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detailed_balance.attempts import MAX_STATE_CHARS
from detailed_balance.counts import MAX_COUNT, TransitionCounts
from detailed_balance.errors import DataError
from detailed_balance.formats import NATIVE_VERSION, json_safe, read_counts, to_json, write_counts

HEAD = "source,target,count\n"


def rec(**fields) -> str:
    """One attempt-log line: a valid transition A -> B unless fields say otherwise."""
    base = {"kind": "attempt", "run_id": "r", "attempt": 0, "source": "A", "target": "B"}
    base["outcome"] = "transition"
    base.update(fields)
    return json.dumps(base)


GOOD_LINE = rec(attempt=99)


def npz(**changes) -> bytes:
    """A native file of A->B (2), B->A (1), with arrays replaced or removed (value None)."""
    arrays = {
        "format": np.array(NATIVE_VERSION),
        "states": np.array(["A", "B"]),
        "source": np.array([0, 1]),
        "target": np.array([1, 0]),
        "count": np.array([2, 1]),
        "self_count": np.array([0, 0]),
        "rejected": np.array([0, 0]),
        "notes": np.array([], dtype=str),
    }
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def zip_bomb() -> bytes:
    """A zip whose one member expands 1000-fold to 40 MiB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("count.npy", b"\0" * (40 * 2**20))
    return buf.getvalue()


def gzip_bomb() -> bytes:
    """A small gzip of newlines that expands to 40 MiB (the issue's bomb, scaled down)."""
    return gzip.compress(b"\n" * (40 * 2**20), compresslevel=9, mtime=0)


def npy_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    return buf.getvalue()


def deep(n: int = 100_000) -> str:
    return "[" * n + "]" * n


# (id, file name, content (str, bytes or a function making bytes), expected part of the message,
#  whether the message names a row)
BAD = [
    # ---- CSV table ----
    ("csv-empty", "t.csv", "", "empty file", False),
    ("csv-bom-only", "t.csv", "\ufeff", "empty file", False),
    ("csv-header-only", "t.csv", HEAD, "no data rows", False),
    ("csv-unknown-column", "t.csv", "source,target,count,w\nA,B,1,2\n", "unknown column", True),
    ("csv-missing-column", "t.csv", "source,count\nA,1\n", "missing column 'target'", True),
    ("csv-repeated-column", "t.csv", "source,target,count,count\nA,B,1,1\n", "repeated", True),
    ("csv-negative", "t.csv", HEAD + "A,B,-2\n", "is negative", True),
    ("csv-fraction", "t.csv", HEAD + "A,B,1.5\n", "not a whole number", True),
    ("csv-nan", "t.csv", HEAD + "A,B,nan\n", "not finite", True),
    ("csv-inf", "t.csv", HEAD + "A,B,inf\n", "not finite", True),
    ("csv-1e30", "t.csv", HEAD + "A,B,1e30\n", "too large", True),
    ("csv-1e999999", "t.csv", HEAD + "A,B,1e999999\n", "too large", True),
    ("csv-2^53+1", "t.csv", HEAD + f"A,B,{2**53 + 1}\n", "too large", True),
    ("csv-2^63", "t.csv", HEAD + f"A,B,{2**63}\n", "too large", True),
    ("csv-2^62-twice", "t.csv", HEAD + f"A,B,{2**62}\nB,A,{2**62}\n", "too large", True),
    (
        "csv-total-over-2^53",
        "t.csv",
        HEAD + f"A,B,{2**52}\nB,A,{2**52}\nA,,1\n",
        "attempts in all",
        False,
    ),
    ("csv-tiny-fraction", "t.csv", HEAD + "A,B,1.0000000000000000001\n", "not a whole", True),
    ("csv-bool-word", "t.csv", HEAD + "A,B,true\n", "not a number", True),
    ("csv-empty-count", "t.csv", HEAD + "A,B,\n", "not a number", True),
    ("csv-hex-count", "t.csv", HEAD + "A,B,0x10\n", "not a number", True),
    ("csv-nul-source", "t.csv", HEAD + "A,B,1\nA\0,B,1\n", "control character", True),
    ("csv-nul-target", "t.csv", HEAD + "A,B\0,1\n", "control character", True),
    ("csv-newline-in-name", "t.csv", HEAD + 'A,"B\nC",1\n', "control character", True),
    ("csv-tab-in-name", "t.csv", HEAD + "A,B\tC,1\n", "control character", True),
    ("csv-escape-in-name", "t.csv", HEAD + "A,\x1b[31mB,1\n", "control character", True),
    ("csv-del-in-name", "t.csv", HEAD + "A,B\x7f,1\n", "control character", True),
    ("csv-c1-in-name", "t.csv", HEAD + "A,B\x85C,1\n", "control character", True),
    ("csv-line-separator", "t.csv", HEAD + "A,B\u2028C,1\n", "control character", True),
    ("csv-field-over-limit", "t.csv", HEAD + "A," + "x" * 200_000 + ",1\n", "field limit", True),
    ("csv-state-too-long", "t.csv", HEAD + "A," + "x" * 5000 + ",1\n", "characters long", True),
    ("csv-not-utf8", "t.csv", HEAD.encode() + b"A,\xff\xfe,1\n", "not UTF-8", False),
    ("csv-binary", "t.csv", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not UTF-8", False),
    ("csv-fields", "t.csv", HEAD + "A,B,1,7\n", "expected 3 fields", True),
    ("csv-unterminated-quote", "t.csv", HEAD + 'A,"B,1\n', "expected 3 fields", True),
    ("csv-empty-source", "t.csv", HEAD + ",B,1\n", "empty source", True),
    ("csv-zero-attempts", "t.csv", HEAD + "A,B,1\nB,A,0\n", "zero attempts", True),
    # ---- attempt log (JSONL) ----
    ("log-empty", "l.jsonl", "", "no attempts", False),
    ("log-only-run", "l.jsonl", '{"kind": "run", "run_id": "r"}\n', "no attempts", False),
    (
        "log-duplicate-key",
        "l.jsonl",
        '{"kind": "attempt", "source": "A", "source": "B", "outcome": "self"}\n' + GOOD_LINE,
        "duplicate key 'source'",
        True,
    ),
    (
        "log-duplicate-key-last-line",
        "l.jsonl",
        GOOD_LINE + '\n{"kind": "attempt", "outcome": "self", "source": "A", "outcome": "x"}\n',
        "duplicate key 'outcome'",
        True,
    ),
    ("log-attempt-true", "l.jsonl", rec(attempt=True), "attempt id True", True),
    ("log-attempt-false", "l.jsonl", rec(attempt=False), "attempt id False", True),
    ("log-attempt-float", "l.jsonl", rec(attempt=1.0), "attempt id 1.0", True),
    ("log-attempt-nan", "l.jsonl", rec(attempt=float("nan")), "attempt id nan", True),
    ("log-attempt-inf", "l.jsonl", rec(attempt=float("inf")), "attempt id inf", True),
    ("log-attempt-list", "l.jsonl", rec(attempt=[1]), "attempt id [1]", True),
    ("log-attempt-object", "l.jsonl", rec(attempt={"n": 1}), "attempt id {'n': 1}", True),
    ("log-run-id-list", "l.jsonl", rec(run_id=["r"]), "run_id ['r']", True),
    ("log-run-id-bool", "l.jsonl", rec(run_id=True), "run_id True", True),
    (
        "log-run-record-unhashable",
        "l.jsonl",
        '{"kind": "run", "run_id": {"a": 1}}\n' + GOOD_LINE,
        "run_id {'a': 1}",
        True,
    ),
    ("log-outcome-list", "l.jsonl", rec(outcome=["transition"]), "unknown outcome", True),
    ("log-outcome-unknown", "l.jsonl", rec(outcome="teleport"), "unknown outcome", True),
    ("log-outcome-null", "l.jsonl", rec(outcome=None), "unknown outcome", True),
    ("log-source-number", "l.jsonl", rec(source=5), "without a source", True),
    ("log-source-empty", "l.jsonl", rec(source=""), "without a source", True),
    ("log-source-nul", "l.jsonl", rec(source="A\0"), "control character", True),
    ("log-target-newline", "l.jsonl", rec(target="B\nC"), "control character", True),
    ("log-target-number", "l.jsonl", rec(target=7), "without a target", True),
    ("log-target-missing", "l.jsonl", rec(target=None), "without a target", True),
    ("log-self-other-target", "l.jsonl", rec(outcome="self", target="Z"), "differs", True),
    ("log-line-is-list", "l.jsonl", "[1, 2]\n" + GOOD_LINE, "must be a JSON object", True),
    ("log-line-is-number", "l.jsonl", "3\n" + GOOD_LINE, "must be a JSON object", True),
    ("log-malformed-middle", "l.jsonl", GOOD_LINE + "\n{oops\n" + GOOD_LINE, "malformed", True),
    ("log-deep-middle", "l.jsonl", deep() + "\n" + GOOD_LINE, "nested too deeply", True),
    ("log-deep-last", "l.jsonl", GOOD_LINE + "\n" + deep(), "nested too deeply", True),
    (
        "log-not-utf8-middle",
        "l.jsonl",
        GOOD_LINE.encode() + b'\n{"a": "\xff"}\n' + GOOD_LINE.encode(),
        "not UTF-8",
        True,
    ),
    ("log-state-too-long", "l.jsonl", rec(target="x" * 5000), "characters long", True),
    (
        "gz-garbage",
        "l.jsonl.gz",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 20,
        "not a valid gzip",
        False,
    ),
    ("gz-not-gzip", "l.jsonl.gz", b"plain text", "not a valid gzip", False),
    ("gz-bomb", "l.jsonl.gz", gzip_bomb, "decompression bomb", False),
    (
        "gz-duplicate-key",
        "l.jsonl.gz",
        lambda: gzip.compress(b'{"a": 1, "a": 2}\n' + GOOD_LINE.encode()),
        "duplicate key",
        True,
    ),
    # ---- the paper's JSON, words layout ----
    ("words-empty", "w.json", "", "empty file", False),
    ("words-duplicate-key", "w.json", '{"A": ["B"], "A": ["C"]}', "duplicate key 'A'", False),
    (
        "words-nested-duplicate",
        "w.json",
        '[{"target_expression": "x", "target_expression": "y", "source_expressions": []}]',
        "duplicate key",
        False,
    ),
    ("words-placeholder-key", "w.json", '{"INVALID00": ["B"], "B": ["A"]}', "placeholder", True),
    ("words-placeholder-bare", "w.json", '{"A": ["B"], "INVALID": ["A"]}', "placeholder", True),
    ("words-numbers", "w.json", '{"A": [1, 2]}', "list of strings", True),
    ("words-not-a-list", "w.json", '{"A": "B"}', "list of strings", True),
    ("words-nan-value", "w.json", '{"A": NaN}', "list of strings", True),
    ("words-empty-list", "w.json", '{"A": []}', "zero attempts", True),
    ("words-deep", "w.json", deep(), "nested too deeply", False),
    ("words-deep-objects", "w.json", '{"a":' * 100_000 + "1" + "}" * 100_000, "deeply", False),
    ("words-scalar", "w.json", "3", "holds an object", False),
    ("words-null", "w.json", "null", "holds an object", False),
    ("words-nul-key", "w.json", '{"A\\u0000": ["B"]}', "control character", True),
    ("words-newline-word", "w.json", '{"A": ["B\\nC"]}', "control character", True),
    # a lone surrogate (legal as a JSON escape) cannot be written back as UTF-8
    ("words-lone-surrogate", "w.json", '{"A": ["B\\ud800"]}', "control character", True),
    ("log-lone-surrogate", "l.jsonl", rec(target="B\ud800"), "control character", True),
    ("words-empty-key", "w.json", '{"": ["B"]}', "empty source", True),
    ("words-trailing-garbage", "w.json", '{"A": ["B"]} x', "malformed JSON", False),
    ("words-not-utf8", "w.json", b'{"A": ["\xff"]}', "not UTF-8", False),
    ("words-long-word", "w.json", json.dumps({"A": ["x" * 5000]}), "characters long", True),
    # ---- the paper's JSON, expressions layout ----
    ("expr-record-not-object", "e.json", "[1]", "needs 'target_expression'", True),
    ("expr-missing-target", "e.json", '[{"source_expressions": []}]', "needs", True),
    (
        "expr-target-number",
        "e.json",
        '[{"target_expression": 3, "source_expressions": []}]',
        "must be a string",
        True,
    ),
    (
        "expr-sources-not-list",
        "e.json",
        '[{"target_expression": "x", "source_expressions": {}}]',
        "must be a string",
        True,
    ),
    (
        "expr-source-without-expression",
        "e.json",
        '[{"target_expression": "x", "source_expressions": [{"expr": "y"}]}]',
        "'expression' string",
        True,
    ),
    (
        "expr-empty-expression",
        "e.json",
        '[{"target_expression": "x", "source_expressions": [{"expression": ""}]}]',
        "'expression' string",
        True,
    ),
    (
        "expr-control",
        "e.json",
        '[{"target_expression": "x\\u001b", "source_expressions": [{"expression": "y"}]}]',
        "control character",
        True,
    ),
    (
        "expr-no-sources",
        "e.json",
        '[{"target_expression": "x", "source_expressions": []}]',
        "no source expressions",
        False,
    ),  # fmt: skip
    # ---- native npz ----
    ("npz-garbage", "c.npz", b"not a zip at all", "not a native counts file", False),
    ("npz-npy-renamed", "c.npz", npy_bytes, "not a native counts file", False),
    ("npz-empty-zip", "c.npz", b"PK\x05\x06" + b"\0" * 18, "missing", False),
    ("npz-truncated", "c.npz", lambda: npz()[:200], "not a native counts file", False),
    ("npz-zip-bomb", "c.npz", zip_bomb, "decompression bomb", False),
    ("npz-missing-array", "c.npz", lambda: npz(count=None), "missing count", False),
    ("npz-wrong-format", "c.npz", lambda: npz(format=np.array("other/9")), "unsupported", False),
    (
        "npz-format-not-scalar",
        "c.npz",
        lambda: npz(format=np.array([NATIVE_VERSION] * 2)),
        "unsupported",
        False,
    ),
    ("npz-float-counts", "c.npz", lambda: npz(count=np.array([2.0, 1.0])), "integer", False),
    ("npz-2d-source", "c.npz", lambda: npz(source=np.array([[0, 1]])), "1-d integer", False),
    ("npz-int-states", "c.npz", lambda: npz(states=np.array([1, 2])), "arrays of text", False),
    ("npz-int-notes", "c.npz", lambda: npz(notes=np.array([1])), "arrays of text", False),
    (
        "npz-object-states",
        "c.npz",
        lambda: npz(states=np.array(["A", "B"], dtype=object)),
        "not a native counts file",
        False,
    ),
    (
        "npz-2^62-overflow",
        "c.npz",
        lambda: npz(count=np.array([2**62, 2**62])),
        "too large",
        True,
    ),
    (
        "npz-uint64-max",
        "c.npz",
        lambda: npz(count=np.array([2**64 - 1, 1], dtype=np.uint64)),
        "too large",
        True,
    ),
    (
        "npz-total-over-2^53",
        "c.npz",
        lambda: npz(count=np.array([2**52, 2**52]), rejected=np.array([1, 0])),
        "attempts in all",
        False,
    ),
    ("npz-negative-count", "c.npz", lambda: npz(count=np.array([2, -1])), "negative", True),
    ("npz-index-out-of-range", "c.npz", lambda: npz(target=np.array([1, 9])), "index 9", True),
    ("npz-negative-index", "c.npz", lambda: npz(source=np.array([0, -1])), "index -1", True),
    (
        "npz-self-move",
        "c.npz",
        lambda: npz(source=np.array([0, 1]), target=np.array([0, 0])),
        "to itself",
        True,
    ),
    ("npz-length-mismatch", "c.npz", lambda: npz(count=np.array([1])), "lengths", False),
    (
        "npz-duplicate-arcs",
        "c.npz",
        lambda: npz(source=np.array([0, 0]), target=np.array([1, 1])),
        "unique",
        False,
    ),
    ("npz-zero-count", "c.npz", lambda: npz(count=np.array([2, 0])), "positive", False),
    (
        "npz-control-in-state",
        "c.npz",
        lambda: npz(states=np.array(["A", "B\x1b"])),
        "control character",
        True,
    ),
    ("npz-duplicate-states", "c.npz", lambda: npz(states=np.array(["A", "A"])), "duplicate", False),
    ("npz-short-self-count", "c.npz", lambda: npz(self_count=np.array([0])), "lengths", False),
]


def _content(content):
    return content() if callable(content) else content


@pytest.mark.parametrize(
    ("name", "content", "problem", "has_row"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD],
)
def test_malformed_file_is_one_line_naming_file_and_row(write, name, content, problem, has_row):
    path = write(name, _content(content))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning instead of the error would be a silent answer
        with pytest.raises(DataError) as info:
            read_counts(path)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, msg
    assert msg.startswith(str(path)), msg
    assert problem in msg, msg
    assert (", row " in msg) == has_row, msg


# (id, file name, content, expected {"states", "moves": {(s, t): n}, "self", "rejected"})
GOOD = [
    (
        "csv-exact-forms",
        "t.csv",
        HEAD + "A,B,3.0\nA,C,1e2\nB,A, 7 \nB,C,+5\n",
        {"moves": {("A", "B"): 3, ("A", "C"): 100, ("B", "A"): 7, ("B", "C"): 5}},
    ),
    ("csv-2^53-exactly", "t.csv", HEAD + f"A,B,{2**53}\n", {"moves": {("A", "B"): 2**53}}),
    (
        "csv-crlf-bom",
        "t.csv",
        "\ufeffsource,target,count\r\nA,B,2\r\nB,,1\r\n",
        {"moves": {("A", "B"): 2}, "rejected": {"B": 1}},
    ),
    (
        "csv-unicode-and-specials",
        "t.csv",
        HEAD + 'é,猫,1\n"\\input{x} $a$ | <b>","a,""b""",2\n',
        {"moves": {("é", "猫"): 1, ("\\input{x} $a$ | <b>", 'a,"b"'): 2}},
    ),
    (
        "log-ids-int-and-text-distinct",
        "l.jsonl",
        "\n".join([rec(attempt=1), rec(attempt="1"), rec(attempt=1, target="C")]) + "\n",
        {"moves": {("A", "B"): 1, ("A", "C"): 1}},  # id 1 twice: last wins; "1" is another
    ),
    (
        "log-nan-in-a-field-nobody-reads",
        "l.jsonl",
        '{"kind": "attempt", "attempt": 0, "source": "A", "target": "B", '
        '"outcome": "transition", "latency_s": NaN}\n',
        {"moves": {("A", "B"): 1}},
    ),
    (
        "log-crlf-and-blank-lines",
        "l.jsonl",
        rec(attempt=0) + "\r\n\r\n   \r\n" + rec(attempt=1, outcome="invalid", target=None),
        {"moves": {("A", "B"): 1}, "rejected": {"A": 1}},
    ),
    (
        "log-other-kinds-ignored",
        "l.jsonl",
        '{"kind": ["weird"]}\n' + rec(),
        {"moves": {("A", "B"): 1}},
    ),
    (
        "gz-two-members",
        "l.jsonl.gz",
        lambda: (
            gzip.compress((rec(attempt=0) + "\n").encode())
            + gzip.compress((rec(attempt=1, target="C") + "\n").encode())
        ),
        {"moves": {("A", "B"): 1, ("A", "C"): 1}},
    ),
    (
        "words-placeholders-as-values",
        "w.json",
        '{"A": ["B", "INVALID03", "A", "INVALID"], "B": ["A"]}',
        {"moves": {("A", "B"): 1, ("B", "A"): 1}, "self": {"A": 1}, "rejected": {"A": 2}},
    ),
    (
        "words-placeholder-lookalike",
        "w.json",
        '{"INVALIDATE": ["A"], "A": ["INVALIDATE"]}',
        {"moves": {("INVALIDATE", "A"): 1, ("A", "INVALIDATE"): 1}},
    ),
    (
        "expr-self",
        "e.json",
        '[{"target_expression": "x", "source_expressions": [{"expression": "x"}, '
        '{"expression": "y"}]}]',
        {"moves": {("y", "x"): 1}, "self": {"x": 1}},
    ),
]


def as_cells(c: TransitionCounts) -> dict:
    s = c.states
    return {
        "moves": {
            (s[i], s[j]): n
            for i, j, n in zip(c.source.tolist(), c.target.tolist(), c.count.tolist(), strict=True)
        },
        "self": {s[i]: n for i, n in enumerate(c.self_count.tolist()) if n},
        "rejected": {s[i]: n for i, n in enumerate(c.rejected.tolist()) if n},
    }


@pytest.mark.parametrize(
    ("name", "content", "expected"), [pytest.param(*case[1:], id=case[0]) for case in GOOD]
)
def test_tricky_but_valid_file_gives_the_counts_worked_out_by_hand(
    write, tmp_path, name, content, expected
):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = read_counts(write(name, _content(content)))
    cells = as_cells(c)
    for key in ("moves", "self", "rejected"):
        assert cells[key] == expected.get(key, {}), key
    # the native file keeps exactly what was read
    write_counts(c, tmp_path / "back.npz")
    assert as_cells(read_counts(tmp_path / "back.npz")) == cells


# ---- strict JSON writers ---------------------------------------------------------------------
def strict_loads(text: str):
    def refuse(name):
        raise AssertionError(f"bare {name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_to_json_writes_null_never_nan():
    obj = {"a": float("nan"), "b": np.float32("inf"), "c": np.array([1.0, np.nan]), "d": (1, 2)}
    assert strict_loads(to_json(obj)) == {"a": None, "b": None, "c": [1.0, None], "d": [1, 2]}
    assert json_safe(np.int64(3)) == 3 and type(json_safe(np.int64(3))) is int
    assert json_safe({"x": [np.bool_(True)]}) == {"x": [True]}


# ---- property-based: random inputs never crash a reader -------------------------------------
names = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=12)
SPECIALS = " _$\\{}|&%#^~<>é猫"
SAFE_NAME = st.text(string.ascii_letters + string.digits + SPECIALS, min_size=1, max_size=8).filter(
    lambda s: s == s.strip()
)


def _name_ok(s: str) -> bool:
    """What the readers accept as a state name (an independent statement of the rule)."""
    import unicodedata

    bad = (unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029" for ch in s)
    return s != "" and len(s) <= MAX_STATE_CHARS and not any(bad)


@settings(
    database=None,  # no .hypothesis/ folder in the checkout
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(
        st.tuples(names, st.one_of(st.just(""), names), st.integers(0, 2**54)),
        min_size=1,
        max_size=8,
    )
)
def test_random_csv_tables_give_exact_counts_or_one_line(tmp_path, rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "target", "count"])
    writer.writerows(rows)
    path = tmp_path / "r.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    try:
        c = read_counts(path)
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return
    # read: then every name was acceptable and the counts are exactly the sums (the CSV reader
    # strips the space around fields, Unicode spaces included)
    want: dict = {}
    for s, t, n in rows:
        s, t = s.strip(), t.strip()
        assert _name_ok(s) and (t == "" or _name_ok(t))
        want[(s, t)] = want.get((s, t), 0) + n
    got = as_cells(c)
    for (s, t), n in want.items():
        if t == "":
            assert got["rejected"].get(s, 0) == n
        elif t == s:
            assert got["self"].get(s, 0) == n
        else:
            assert got["moves"].get((s, t), 0) == n
    assert int(c.attempts.sum()) == sum(want.values()) <= MAX_COUNT


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | names,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)


@settings(
    database=None,  # no .hypothesis/ folder in the checkout
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=json_values, suffix=st.sampled_from(["w.json", "l.jsonl"]))
def test_random_json_gives_counts_or_one_line(tmp_path, value, suffix):
    path = tmp_path / suffix
    path.write_text(json.dumps(value), encoding="utf-8")
    try:
        c = read_counts(path)
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return
    assert all(_name_ok(s) for s in c.states)


ATTEMPT_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["attempt", "run", "other"]) | json_values,
        "run_id": json_values,
        "attempt": json_values,
        "source": st.sampled_from(["A", "B"]) | json_values,
        "target": st.sampled_from(["A", "B", None]) | json_values,
        "outcome": st.sampled_from(["transition", "self", "invalid", "error"]) | json_values,
    },
)


@settings(
    database=None,  # no .hypothesis/ folder in the checkout
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(records=st.lists(ATTEMPT_FIELDS, min_size=1, max_size=6))
def test_random_attempt_records_give_counts_or_one_line(tmp_path, records):
    path = tmp_path / "l.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    try:
        c = read_counts(path)
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return
    # every counted attempt had a usable id (or none): no True/1.0/NaN collisions slipped in
    for r in records:
        if r.get("kind", "attempt") == "attempt" and r.get("attempt") is not None:
            a = r["attempt"]
            assert isinstance(a, str) or (isinstance(a, int) and not isinstance(a, bool))
    assert c.attempts.sum() >= 1


@settings(
    database=None,  # no .hypothesis/ folder in the checkout
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=300), suffix=st.sampled_from(["c.csv", "l.jsonl", "l.jsonl.gz",
                                                               "c.npz", "w.json"]))  # fmt: skip
def test_random_bytes_never_crash_a_reader(tmp_path, data, suffix):
    path = tmp_path / suffix
    path.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "a truncated last line": random bytes often are
            read_counts(path)
    except DataError as exc:
        assert "\n" not in str(exc)


@settings(
    database=None,  # no .hypothesis/ folder in the checkout
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cells=st.dictionaries(
        st.tuples(SAFE_NAME, st.one_of(st.none(), SAFE_NAME)),
        st.integers(1, 2**40),
        min_size=1,
        max_size=10,
    )
)
def test_round_trip_through_every_writer_is_exact(tmp_path, cells):
    keys = list(cells)
    c = TransitionCounts.from_records(
        [s for s, _ in keys], [t for _, t in keys], [cells[k] for k in keys]
    )
    for name in ("a.csv", "a.npz"):
        write_counts(c, tmp_path / name)
        back = read_counts(tmp_path / name)
        assert as_cells(back) == as_cells(c)
        assert back.attempts.tolist() == [
            sum(n for (s, _), n in cells.items() if s == state) for state in back.states
        ]
