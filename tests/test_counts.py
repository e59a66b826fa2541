"""The ``detailed-balance counts`` command, through ``cli.main`` and once as a real process."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from detailed_balance.cli import main
from detailed_balance.formats import read_counts, write_attempt_log
from detailed_balance.synthetic import reversible_chain, sample_counts

TABLE = "source,target,count\nA,B,3\nA,,1\nA,A,2\nB,A,4\nB,C,1\nB,C,2\n"


def test_summary_text_and_notes(write, capsys):
    assert main(["counts", str(write("t.csv", TABLE))]) == 0
    out = capsys.readouterr().out
    # A: 3 + 1 + 2 attempts, B: 4 + 1 + 2; moves 3 + 4 + 3, self 2, rejected 1
    assert "3 states, 13 attempts" in out
    assert "transition samples             12  (moves 10, self 2)" in out
    assert "rejected (escapes)             1" in out
    assert "note: 1 duplicate (source, target) rows were summed" in out


def test_convert_and_json(write, tmp_path, capsys):
    src = write("t.csv", TABLE)
    assert main(["counts", str(src), "--to", str(tmp_path / "t.npz")]) == 0
    assert f"wrote {tmp_path / 't.npz'}" in capsys.readouterr().out
    assert (
        main(["counts", str(tmp_path / "t.npz"), "--json", "--to", str(tmp_path / "back.csv")]) == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["summary"] == read_counts(src).summary()
    assert payload["summary"]["attempts"] == 13 and payload["notes"]
    back = read_counts(tmp_path / "back.csv")
    assert back.attempts.tolist() == [6, 7, 0]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "bad.csv",
            "source,target,count\nA,B,1\nA,C,x\n",
            "bad.csv, row 3: count 'x' is not a number",
        ),
        ("bad.csv", "", "bad.csv: empty file"),
        ("bad.jsonl", '{"kind": "attempt"\n{"kind": "run"}\n', "bad.jsonl, row 1: malformed JSON"),
        ("bad.txt", "x", "cannot tell the format"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(write, capsys, name, content, expected):
    assert main(["counts", str(write(name, content))]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and expected in err
        and err.startswith("detailed-balance counts: error:")
    )


def test_self_attempt_with_another_target_and_missing_file(write, tmp_path, capsys):
    line = '{"kind": "attempt", "attempt": 1, "source": "A", "target": "B", "outcome": "self"}'
    assert main(["counts", str(write("log.jsonl", line + "\n"))]) == 2
    assert "row 1: a 'self' attempt whose target differs from its source" in capsys.readouterr().err
    assert main(["counts", str(tmp_path / "none.jsonl")]) == 2
    assert "none.jsonl: no such file" in capsys.readouterr().err


def test_cannot_convert_to_json(write, tmp_path, capsys):
    assert main(["counts", str(write("t.csv", TABLE)), "--to", str(tmp_path / "t.json")]) == 2
    assert "t.json: use a name ending in .csv or .npz" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_synthetic_log_counts_agree_with_the_sample(tmp_path, capsys):
    counts = sample_counts(reversible_chain(300, seed=1), attempts_per_source=30, seed=2)
    write_attempt_log(counts, tmp_path / "log.jsonl.gz")
    start = time.perf_counter()
    assert main(["counts", str(tmp_path / "log.jsonl.gz"), "--json"]) == 0
    assert time.perf_counter() - start < 10  # 9,000 attempts
    assert json.loads(capsys.readouterr().out)["summary"] == counts.summary()
    again = read_counts(tmp_path / "log.jsonl.gz")
    assert again.states == counts.states and np.array_equal(again.count, counts.count)


def test_truncated_log_through_the_cli(write, capsys):
    good = (
        '{"kind": "attempt", "attempt": 1, "source": "A", "target": "B", "outcome": "transition"}'
    )
    path = write("log.jsonl", good + "\n" + good.replace('1, "s', '2, "s')[:30])
    assert main(["counts", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "2 states, 1 attempts" in out and "note: skipped a truncated last line (line 2)" in out
    warning = f"{path}, line 2: skipped a truncated last line (an interrupted write)"
    assert err == f"detailed-balance counts: warning: {warning}\n"


def test_a_real_process(write):
    bad = write("bad.csv", "source,target,count\nA,B,2.5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "detailed_balance.cli", "counts", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"detailed-balance counts: error: {bad}, row 2: count '2.5' is not a whole number"
    ]
    good = write("good.csv", TABLE)
    proc = subprocess.run(
        [sys.executable, "-m", "detailed_balance.cli", "counts", str(good), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["summary"]["attempts"] == 13
