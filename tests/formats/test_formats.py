"""Readers and writers: hand-made files whose counts are worked out by hand, and every bad input."""

import gzip
import json
import re

import numpy as np
import pytest

from detailed_balance.counts import TransitionCounts
from detailed_balance.errors import DataError
from detailed_balance.formats import (
    read_attempt_log,
    read_counts,
    read_paper_expressions,
    read_paper_words,
    write_counts,
)

TABLE = "source,target,count\nA,B,3\nA,,1\nA,A,2\nB,A,4\nB,C,1\n"


def as_dict(kernel):
    """{(source, target): T(target<-source)} of a sparse kernel."""
    s = kernel.states
    return {
        (s[i], s[j]): p
        for i, j, p in zip(kernel.source, kernel.target, np.exp(kernel.log_prob), strict=True)
    }


def same(x: TransitionCounts, y: TransitionCounts) -> None:
    assert x.states == y.states
    for f in ("source", "target", "count", "self_count", "rejected"):
        np.testing.assert_array_equal(getattr(x, f), getattr(y, f))


# ---- CSV ---------------------------------------------------------------------------------------
def test_csv_counts_by_hand(write):
    c = read_counts(write("t.csv", TABLE))
    assert c.states == ("A", "B", "C")
    assert c.attempts.tolist() == [6, 5, 0]  # A: 3 + 1 + 2; B: 4 + 1; C is only a target
    assert c.self_count.tolist() == [2, 0, 0] and c.rejected.tolist() == [1, 0, 0]
    s = c.summary()
    assert (s["transition_samples"], s["unique_transitions"], s["rejected"]) == (10, 4, 1)
    # generated: A 4 + 2 (self), B 3, C 1 -> two states sampled more than once
    assert s["states_sampled_more_than_once"] == 2


def test_the_papers_two_estimators_on_a_table(write):
    c = read_counts(write("t.csv", TABLE))
    # escape: T = N / N0 with N0 = all attempts of the source
    assert as_dict(c.kernel("escape")) == pytest.approx(
        {("A", "B"): 3 / 6, ("B", "A"): 4 / 5, ("B", "C"): 1 / 5}
    )
    # within: self-loops and rejections dropped, T = N / sum_{g != f} N
    assert as_dict(c.kernel("within")) == pytest.approx(
        {("A", "B"): 1.0, ("B", "A"): 4 / 5, ("B", "C"): 1 / 5}
    )
    # single-sample states filtered: C was generated once, so B's row renormalises without it
    assert as_dict(c.kernel("within", min_samples=2)) == pytest.approx(
        {("A", "B"): 1.0, ("B", "A"): 1.0}
    )


def test_csv_columns_in_any_order_blank_lines_and_duplicates_summed(write):
    text = "count, target ,source\n2,B,A\n\n1,B,A\n5,,B\n"
    c = read_counts(write("t.csv", text))
    assert c.count.tolist() == [3] and c.rejected.tolist() == [0, 5]
    assert any("duplicate" in n and "summed" in n for n in c.notes)


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("", None, "empty file"),
        ("  \n\n", None, "empty file"),
        ("source,target,count\n", None, "no data rows"),
        ("source,target,count,weight\nA,B,1,2\n", 1, "unknown column 'weight'"),
        ("source,count\nA,1\n", 1, "missing column 'target'"),
        ("source,target,count\nA,B,1\nA,C,-2\n", 3, "count '-2' is negative"),
        ("source,target,count\nA,B,1.5\n", 2, "not a whole number"),
        ("source,target,count\nA,B,nan\n", 2, "not finite"),
        ("source,target,count\nA,B,1\n\nA,C,many\n", 4, "count 'many' is not a number"),
        ("source,target,count\nA,B,1,7\n", 2, "expected 3 fields"),
        ("source,target,count\n,B,1\n", 2, "empty source"),
        ("source,target,count\nA,B,1\nB,A,0\n", 3, "source 'B' has zero attempts"),
    ],
)
def test_bad_csv_gives_one_line_naming_file_row_and_problem(write, text, where, problem):
    path = write("bad.csv", text)
    with pytest.raises(DataError) as info:
        read_counts(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path)) and problem in msg
    if where is not None:
        assert f", row {where}: " in msg


def test_csv_target_that_is_not_a_declared_state(write):
    path = write("t.csv", "source,target,count\nA,B,1\nB,A,1\nA,Z,1\n")
    with pytest.raises(
        DataError, match=re.escape("t.csv, row 4: target 'Z' is not a state of this file")
    ):
        read_counts(path, states=["A", "B"])
    assert read_counts(path, states=["A", "B", "Z", "Q"]).n_states == 4


def test_round_trip_csv_native_csv_unchanged(write, tmp_path):
    src = write("in.csv", TABLE + 'C,"x, with comma",2\n')
    first = read_counts(src)
    write_counts(first, tmp_path / "c.npz")
    native = read_counts(tmp_path / "c.npz")
    same(first, native)
    write_counts(native, tmp_path / "out.csv")
    same(first, read_counts(tmp_path / "out.csv"))
    write_counts(read_counts(tmp_path / "out.csv"), tmp_path / "again.csv")
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_native_keeps_state_order_notes_and_states_without_data(tmp_path):
    c = TransitionCounts.from_records(["Z", "A"], ["A", None], [2, 1], states=["Z", "M", "A"])
    c = c.restrict([True, True, True])
    write_counts(c, tmp_path / "c.npz")
    back = read_counts(tmp_path / "c.npz")
    same(c, back)
    assert back.states == ("Z", "M", "A") and back.notes == c.notes


def test_bad_native_files(tmp_path, write):
    c = read_counts(write("t.csv", TABLE))
    write_counts(c, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["target"] = arrays["target"].copy()
    arrays["target"][1] = 7
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=r"bad.npz, row 2: target index 7 is not a state"):
        read_counts(tmp_path / "bad.npz")
    write("junk.npz", b"not a zip")
    with pytest.raises(DataError, match="not a native counts file"):
        read_counts(tmp_path / "junk.npz")


def test_format_by_extension_and_errors(tmp_path, write):
    with pytest.raises(DataError, match="cannot tell the format"):
        read_counts(write("t.txt", TABLE))
    with pytest.raises(DataError, match="no such file"):
        read_counts(tmp_path / "missing.csv")
    c = read_counts(write("t.csv", TABLE))
    with pytest.raises(DataError, match="written as .csv or .npz"):
        write_counts(c, tmp_path / "t.json")
    same(c, read_counts(write("t.data", TABLE), format="csv"))
    with pytest.raises(DataError, match="cannot write here"):
        write_counts(c, tmp_path / "no" / "such" / "dir.csv")


# ---- attempt log -------------------------------------------------------------------------------
def attempt(i, source, outcome, target=None, run="r1"):
    rec = {"kind": "attempt", "run_id": run, "attempt": i, "source": source, "target": target}
    rec.update(outcome=outcome, reason=None, raw="...", model="m", temperature=1.0)
    return json.dumps(rec)


LOG = [
    json.dumps({"kind": "run", "run_id": "r1", "config": {"model": "m"}}),
    attempt(0, "CAT", "transition", "DOG"),
    attempt(1, "CAT", "transition", "DOG"),
    attempt(2, "CAT", "self", "CAT"),
    attempt(3, "CAT", "invalid"),
    attempt(4, "DOG", "transition", "CAT"),
    attempt(5, "DOG", "unparseable"),
    attempt(6, "DOG", "error"),
    attempt(7, "DOG", "transition", "EMU"),
    attempt(
        7, "DOG", "transition", "CAT"
    ),  # same id again (a resumed run): counted once, last wins
    attempt(7, "DOG", "transition", "EMU", run="r2"),  # another run: a different attempt
]


def check_log_counts(c):
    assert c.states == ("CAT", "DOG", "EMU")
    assert c.attempts.tolist() == [4, 4, 0]  # the error is not an attempt; id 7 once per run
    pairs = zip(c.source.tolist(), c.target.tolist(), strict=True)
    assert dict(zip(pairs, c.count.tolist(), strict=True)) == {
        (0, 1): 2,
        (1, 0): 2,
        (1, 2): 1,
    }
    assert c.self_count.tolist() == [1, 0, 0] and c.rejected.tolist() == [1, 1, 0]
    assert any("counted once" in n for n in c.notes)
    assert any("error" in n for n in c.notes)


def test_attempt_log_by_hand_plain_and_gzip(write):
    text = "\n".join(LOG) + "\n"
    plain = read_counts(write("log.jsonl", text))
    check_log_counts(plain)
    check_log_counts(read_counts(write("log.jsonl.gz", gzip.compress(text.encode()))))
    # a log appended to in two sessions is two gzip members
    halves = gzip.compress("\n".join(LOG[:5]).encode() + b"\n") + gzip.compress(
        "\n".join(LOG[5:]).encode() + b"\n"
    )
    check_log_counts(read_attempt_log(write("two.jsonl.gz", halves)))


def test_truncated_last_line_is_skipped_with_a_warning(write):
    text = "\n".join(LOG) + "\n" + attempt(8, "EMU", "transition", "CAT")[:25]
    with pytest.warns(UserWarning, match="line 12: skipped a truncated last line"):
        c = read_counts(write("log.jsonl", text))
    check_log_counts(c)
    assert any("truncated" in n for n in c.notes)


def test_truncated_gzip_keeps_everything_before_the_cut(write):
    full = "\n".join(LOG) + "\n" + "\n".join(attempt(100 + k, "EMU", "invalid") for k in range(50))
    data = gzip.compress(full.encode())
    with pytest.warns(UserWarning):
        c = read_counts(write("log.jsonl.gz", data[: len(data) - 12]))
    # the CAT/DOG lines come first and survive; some EMU rejections may be lost at the cut
    assert c.attempts[:2].tolist() == [4, 4] and 0 < c.rejected[2] <= 50


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "malformed JSON line"),
        ("[1, 2]", "must be a JSON object"),
        (attempt(9, "CAT", "maybe"), "unknown outcome 'maybe'"),
        (attempt(9, "", "invalid"), "without a source"),
        (attempt(9, "CAT", "transition"), "without a target"),
    ],
)
def test_bad_log_line_in_the_middle_names_its_line(write, line, problem):
    text = "\n".join([*LOG[:3], line, *LOG[3:]]) + "\n"
    with pytest.raises(DataError, match=rf"log\.jsonl, row 4: .*{re.escape(problem)}"):
        read_counts(write("log.jsonl", text))


def test_log_without_attempts(write):
    with pytest.raises(DataError, match="no attempts"):
        read_counts(write("log.jsonl", LOG[0] + "\n" + attempt(1, "A", "error") + "\n"))


# ---- the paper's layouts -----------------------------------------------------------------------
WORDS = {
    "CAT": ["DOG", "DOG", "INVALID00", "CAT"],
    "DOG": ["CAT", "INVALID", "BIRD", "BIRD", "DOG"],
    "BIRD": ["INVALID12", "CAT"],
}


def test_paper_words_layout_by_hand(write):
    c = read_counts(write("words.json", json.dumps(WORDS)))
    assert c.states == ("BIRD", "CAT", "DOG")  # placeholders are rejections, never states
    assert c.attempts.tolist() == [2, 4, 5]
    assert c.rejected.tolist() == [1, 1, 1] and c.self_count.tolist() == [0, 1, 1]
    # the word task's estimator: T = N / N0, escapes (invalid + self) included in N0
    assert as_dict(c.kernel("escape")) == pytest.approx(
        {
            ("CAT", "DOG"): 2 / 4,
            ("DOG", "CAT"): 1 / 5,
            ("DOG", "BIRD"): 2 / 5,
            ("BIRD", "CAT"): 1 / 2,
        }
    )
    assert read_paper_words(write("w.json", json.dumps(WORDS)), invalid="INVALID00").n_states == 5


EXPRESSIONS = [
    {
        "target_expression": "x+1",
        "source_expressions": [{"expression": "x"}, {"expression": "x"}, {"expression": "x+1"}],
    },
    {"target_expression": "x", "source_expressions": [{"expression": "x+1"}, {"expression": "2x"}]},
    {"target_expression": "2x", "source_expressions": [{"expression": "x"}], "score": 3},
    {"target_expression": "y", "source_expressions": []},
]


def test_paper_expressions_layout_by_hand(write):
    c = read_counts(write("expr.json", json.dumps(EXPRESSIONS)))
    assert c.states == ("2x", "x", "x+1", "y")
    assert c.attempts.tolist() == [1, 3, 2, 0]  # x -> x+1 twice and -> 2x; x+1 -> itself and -> x
    assert c.self_count.tolist() == [0, 0, 1, 0] and c.rejected.sum() == 0
    # the expression task's estimator: self-loops dropped, T = N / sum_{g != f} N
    assert as_dict(c.kernel("within")) == pytest.approx(
        {("x", "x+1"): 2 / 3, ("x", "2x"): 1 / 3, ("x+1", "x"): 1.0, ("2x", "x"): 1.0}
    )
    # generated: x+1 three times (self included), x twice, 2x once -> 2x is filtered
    assert as_dict(c.kernel("within", min_samples=2)) == pytest.approx(
        {("x", "x+1"): 1.0, ("x+1", "x"): 1.0}
    )
    assert as_dict(c.kernel("escape")) == pytest.approx(
        {("x", "x+1"): 2 / 3, ("x", "2x"): 1 / 3, ("x+1", "x"): 1 / 2, ("2x", "x"): 1.0}
    )
    same(c, read_paper_expressions(write("e.data", json.dumps(EXPRESSIONS))))


@pytest.mark.parametrize(
    ("data", "where", "problem"),
    [
        ({"CAT": []}, 1, "source 'CAT' has zero attempts"),
        ({"CAT": ["DOG"], "DOG": "CAT"}, 2, "must map to a list of strings"),
        ([{"target_expression": "x"}], 1, "needs 'target_expression' and 'source_expressions'"),
        (
            [EXPRESSIONS[0], {"target_expression": "x", "source_expressions": [{"expr": "y"}]}],
            2,
            "'expression'",
        ),
        ("just a string", None, "holds an object"),
    ],
)
def test_bad_paper_files(write, data, where, problem):
    with pytest.raises(DataError) as info:
        read_counts(write("p.json", json.dumps(data)))
    assert problem in str(info.value) and (
        where is None or f"p.json, row {where}: " in str(info.value)
    )
    with pytest.raises(DataError, match="malformed JSON"):
        read_counts(write("p.json", "{oops"))


@pytest.mark.parametrize("name", ["log.jsonl", "log.jsonl.gz"])
def test_write_attempt_log_round_trip(tmp_path, name):
    from detailed_balance.formats import write_attempt_log
    from detailed_balance.synthetic import driven_chain, sample_counts

    counts = sample_counts(driven_chain(30, seed=1), attempts_per_source=40, self_fraction=0.3)
    assert counts.self_count.sum() > 0 and counts.rejected.sum() > 0
    write_attempt_log(counts, tmp_path / name)
    back = read_counts(tmp_path / name)
    same(counts, back)
    assert back.notes == ()


def test_resume_reader_shares_the_parser_but_not_its_tolerance(write):
    from detailed_balance.collect.log import read_log_records
    from detailed_balance.errors import CollectionError

    torn = "\n".join(LOG) + "\n" + attempt(8, "EMU", "transition", "CAT")[:25]
    run, records = read_log_records(write("torn.jsonl", torn))  # a torn tail is not a record
    assert len(records) == sum('"attempt"' in line for line in LOG)
    # a complete (newline-terminated) bad line is not a torn write: resuming is refused
    bad = "\n".join(LOG) + "\n{not json\n"
    with pytest.raises(CollectionError, match=r"bad\.jsonl, row 12: malformed JSON.*cannot resume"):
        read_log_records(write("bad.jsonl", bad))


def test_json_lines_are_parsed_one_line_at_a_time():
    """Three invalid lines that, joined into one array, read as three valid objects (a string
    spanning lines, two values on one line) are refused, naming the first."""
    from detailed_balance.formats import parse_json_lines

    lines = [b'{"a": "}', b'{", "b": 1}', b'{"c": 1}, {"d": 2}']
    with pytest.raises(DataError, match="row 1: malformed JSON line"):
        parse_json_lines(lines, "x.jsonl", skip_bad_last=False)
    good = [b' {"a": 1} \r', b"", b"[2]", '"é"'.encode()]
    assert parse_json_lines(good, "x.jsonl") == ([1, 3, 4], [{"a": 1}, [2], "é"], [])
