"""Fuzz corpus of the command line (issue 12): every bad option or input ends with status 2 and
one line on stderr, before any work and without leaving files behind; Ctrl-C, SIGTERM and a
closed pipe end with 130, 143 and 0 and no traceback.

Most cases run in-process through ``detailed_balance.cli.main`` (about a millisecond each); a
handful run the real command in a subprocess, where signals and pipes can be tested.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from formats.test_fuzz_readers import BAD, _content  # tests/formats (pythonpath = tests)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detailed_balance.cli import main

TABLE = "source,target,count\nA,B,3\nA,,1\nB,A,4\nB,C,1\nC,A,2\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A valid counts table, a folder, an existing plain file, a netCDF that is not a fit."""
    import xarray as xr

    root = tmp_path_factory.mktemp("cli")
    (root / "c.csv").write_text(TABLE)
    (root / "folder").mkdir()
    (root / "dir.csv").mkdir()
    (root / "file.txt").write_text("I am a file")
    xr.Dataset({"x": ("n", np.arange(3.0))}).to_netcdf(root / "other.nc", engine="h5netcdf")
    (root / "garbage.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    (root / "table.nc").write_text(TABLE)  # a counts table with a fit's extension
    pot = "state,V\nA,1\nB,2\nC,3\n"
    (root / "pot_nan.csv").write_text(pot.replace("2", "nan"))
    (root / "pot_twice.csv").write_text(pot + "A,4\n")
    (root / "pot_binary.csv").write_bytes(b"state,V\n\xff\xfe,1\n")
    (root / "pot_columns.csv").write_text("name,value\nA,1\n")
    return root


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("detailed-balance"), err
    return err


# (id, argv with {d} for the files folder, part of the message)
BAD_ARGS = [
    # counts
    ("counts-missing", "counts {d}/missing.csv", "no such file"),
    ("counts-folder", "counts {d}/folder", "not a file"),
    ("counts-to-folder", "counts {d}/c.csv --to {d}/folder", "ending in .csv or .npz"),
    ("counts-to-folder-suffix", "counts {d}/c.csv --to {d}/dir.csv", "is a folder"),
    ("counts-to-json", "counts {d}/c.csv --to {d}/x.json", "ending in .csv or .npz"),
    ("counts-to-missing-dir", "counts {d}/c.csv --to {d}/no/such/x.csv", "no folder"),
    ("counts-format", "counts {d}/c.csv --format xml", "invalid choice"),
    ("counts-format-mismatch", "counts {d}/c.csv --format npz", "not a native counts file"),
    # fit
    ("fit-prior-scale-negative", "fit {d}/c.csv --out {d}/f.nc --prior-scale -1", "> 0.0"),
    ("fit-prior-scale-zero", "fit {d}/c.csv --out {d}/f.nc --prior-scale 0", "> 0.0"),
    ("fit-prior-scale-nan", "fit {d}/c.csv --out {d}/f.nc --prior-scale nan", "finite"),
    ("fit-prior-scale-inf", "fit {d}/c.csv --out {d}/f.nc --prior-scale inf", "finite"),
    ("fit-prior-scale-text", "fit {d}/c.csv --out {d}/f.nc --prior-scale big", "a number"),
    ("fit-edge-scale", "fit {d}/c.csv --out {d}/f.nc --edge-scale -2", "--edge-scale"),
    ("fit-lengthscale", "fit {d}/c.csv --out {d}/f.nc --lengthscale 0", "--lengthscale"),
    ("fit-cycle-scale", "fit {d}/c.csv --out {d}/f.nc --cycle-scale nan", "--cycle-scale"),
    ("fit-chains-zero", "fit {d}/c.csv --out {d}/f.nc --chains 0", "≥ 1"),
    ("fit-chains-negative", "fit {d}/c.csv --out {d}/f.nc --chains -1", "≥ 1"),
    ("fit-draws-zero", "fit {d}/c.csv --out {d}/f.nc --draws 0", "--draws"),
    ("fit-draws-fraction", "fit {d}/c.csv --out {d}/f.nc --draws 1.5", "an integer"),
    ("fit-warmup-negative", "fit {d}/c.csv --out {d}/f.nc --warmup -1", "--warmup"),
    ("fit-seed-negative", "fit {d}/c.csv --out {d}/f.nc --seed -1", "--seed"),
    ("fit-seed-too-big", f"fit {{d}}/c.csv --out {{d}}/f.nc --seed {2**32}", "≤ 4294967295"),
    ("fit-out-missing-folder", "fit {d}/c.csv --out {d}/nowhere/f.nc", "no folder"),
    ("fit-out-folder", "fit {d}/c.csv --out {d}/folder", "ending in .nc"),
    ("fit-out-suffix", "fit {d}/c.csv --out {d}/f.csv", "ending in .nc"),
    ("fit-out-missing", "fit {d}/c.csv", "--out"),
    ("fit-features-missing", "fit {d}/c.csv --out {d}/f.nc --features {d}/x.npy", "no such"),
    ("fit-model", "fit {d}/c.csv --out {d}/f.nc --model magic", "invalid choice"),
    ("fit-method", "fit {d}/c.csv --out {d}/f.nc --method guess", "invalid choice"),
    ("fit-counts-missing", "fit {d}/none.csv --out {d}/f.nc", "no such file"),
    # compare
    ("compare-alpha-negative", "compare {d}/c.csv --alpha -1", "--alpha"),
    ("compare-alpha-zero", "compare {d}/c.csv --alpha 0", "--alpha"),
    ("compare-sensitivity-nan", "compare {d}/c.csv --sensitivity nan", "finite"),
    ("compare-sensitivity-negative", "compare {d}/c.csv --sensitivity 1 -3", "--sensitivity"),
    ("compare-sensitivity-inf", "compare {d}/c.csv --sensitivity inf", "finite"),
    ("compare-prior-scale", "compare {d}/c.csv --prior-scale -1", "--prior-scale"),
    ("compare-cycle-scale", "compare {d}/c.csv --cycle-scale 0", "--cycle-scale"),
    ("compare-chains", "compare {d}/c.csv --chains 0", "--chains"),
    ("compare-out-file", "compare {d}/c.csv --out {d}/file.txt", "not a folder"),
    ("compare-out-under-file", "compare {d}/c.csv --out {d}/file.txt/sub", "no folder"),
    ("compare-models", "compare {d}/c.csv --models everything", "invalid choice"),
    ("compare-missing", "compare {d}/nothing.csv", "no such file"),
    # report
    ("report-missing-nc", "report {d}/missing.nc --out {d}/r1", "no such file"),
    ("report-missing-csv", "report {d}/missing.csv --out {d}/r2", "no such file"),
    ("report-out-file", "report {d}/c.csv --out {d}/file.txt", "not a folder"),
    ("report-draws", "report {d}/c.csv --out {d}/r3 --draws 0", "--kernel-draws"),
    ("report-compare-draws", "report {d}/c.csv --out {d}/r4 --compare-draws -5", "--compare"),
    ("report-threshold-zero", "report {d}/c.csv --out {d}/r5 --threshold 0", "--threshold"),
    ("report-threshold-big", "report {d}/c.csv --out {d}/r6 --threshold 1.5", "≤ 1.0"),
    ("report-threshold-nan", "report {d}/c.csv --out {d}/r7 --threshold nan", "finite"),
    ("report-potential-missing", "report {d}/c.csv --out {d}/r8 --potential {d}/p.csv", "no such"),
    ("report-kernel", "report {d}/c.csv --out {d}/r9 --kernel cosh", "invalid choice"),
    ("report-seed", "report {d}/c.csv --out {d}/r10 --seed -5", "--seed"),
    ("report-no-out", "report {d}/c.csv", "--out"),
    ("report-not-a-fit", "report {d}/other.nc --out {d}/r11 --no-compare", "not a fit"),
    ("report-garbage-nc", "report {d}/garbage.nc --out {d}/r12 --no-compare", "not a fit"),
    ("report-table-as-nc", "report {d}/table.nc --out {d}/r13 --no-compare", "not a fit"),
    (
        "report-potential-nan",
        "report {d}/c.csv --out {d}/r14 --no-compare --potential {d}/pot_nan.csv",
        "not finite",
    ),
    (
        "report-potential-twice",
        "report {d}/c.csv --out {d}/r15 --no-compare --potential {d}/pot_twice.csv",
        "listed twice",
    ),
    (
        "report-potential-binary",
        "report {d}/c.csv --out {d}/r16 --no-compare --potential {d}/pot_binary.csv",
        "not UTF-8",
    ),
    (
        "report-potential-columns",
        "report {d}/c.csv --out {d}/r17 --no-compare --potential {d}/pot_columns.csv",
        "'state' and 'V'",
    ),
    # summary
    ("summary-missing", "summary {d}/missing.nc", "no such file"),
    ("summary-folder", "summary {d}/folder", "not a file"),
    ("summary-not-a-fit", "summary {d}/other.nc", "not a fit"),
    ("summary-garbage", "summary {d}/garbage.nc", "not a fit"),
    ("summary-table-as-nc", "summary {d}/table.nc", "not a fit"),
    # the top level
    ("unknown-command", "frobnicate", "invalid choice"),
    ("unknown-option", "counts {d}/c.csv --frobnicate", "unrecognized arguments"),
]


@pytest.mark.parametrize(
    ("argv", "problem"), [pytest.param(*case[1:], id=case[0]) for case in BAD_ARGS]
)
def test_bad_command_line_is_one_line_status_2_and_no_files(files, capsys, argv, problem):
    before = sorted(p.name for p in files.rglob("*"))
    code, out, err = run_main(argv.format(d=files).split(), capsys)
    err = one_line_error(code, out, err)
    assert problem in err, err
    assert out == ""
    assert sorted(p.name for p in files.rglob("*")) == before  # no folder, no partial file


@pytest.mark.parametrize(
    ("name", "content", "problem"), [pytest.param(c[1], c[2], c[3], id=c[0]) for c in BAD]
)
def test_every_malformed_file_through_the_counts_command(
    write, capsys, tmp_path, name, content, problem
):
    path = write(name, _content(content))
    code, out, err = run_main(["counts", str(path), "--to", str(tmp_path / "o.csv")], capsys)
    err = one_line_error(code, out, err)
    assert problem in err and str(path) in err
    assert not (tmp_path / "o.csv").exists()


def test_counts_json_is_strict_and_the_conversion_is_atomic(files, capsys, tmp_path):
    code, out, err = run_main(
        ["counts", str(files / "c.csv"), "--json", "--to", str(tmp_path / "c.npz")], capsys
    )
    assert code == 0 and err == ""

    def refuse(name):
        raise AssertionError(name)

    payload = json.loads(out, parse_constant=refuse)
    assert payload["summary"]["attempts"] == 11 and payload["wrote"].endswith("c.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "c.npz").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


# ---- property: any value of a numeric option is accepted exactly when it is valid -------------
def _real(text: str, low: float, high: float = math.inf, open_low: bool = True) -> bool:
    try:
        v = float(text)
    except ValueError:
        return False
    return math.isfinite(v) and (v > low if open_low else v >= low) and v <= high


def _int(text: str, low: int, high: float = math.inf) -> bool:
    try:
        v = int(text)
    except ValueError:
        return False
    return low <= v <= high


# command, option, the rule, an --out that is always refused (so nothing ever runs)
OPTIONS = [
    ("fit", "--prior-scale", lambda t: _real(t, 0.0), "--out {d}/nowhere/f.nc"),
    ("fit", "--edge-scale", lambda t: _real(t, 0.0), "--out {d}/nowhere/f.nc"),
    ("fit", "--chains", lambda t: _int(t, 1), "--out {d}/nowhere/f.nc"),
    ("fit", "--warmup", lambda t: _int(t, 0), "--out {d}/nowhere/f.nc"),
    ("fit", "--seed", lambda t: _int(t, 0, 2**32 - 1), "--out {d}/nowhere/f.nc"),
    ("compare", "--alpha", lambda t: _real(t, 0.0), "--out {d}/file.txt"),
    ("compare", "--sensitivity", lambda t: _real(t, 0.0), "--out {d}/file.txt"),
    ("report", "--threshold", lambda t: _real(t, 0.0, 1.0), "--out {d}/file.txt"),
    ("report", "--draws", lambda t: _int(t, 1), "--out {d}/file.txt"),
]
VALUES = st.one_of(
    st.text(max_size=8),
    st.integers(-(2**40), 2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-inf", "1e309", "0", "-0", "1_0", " 3 ", "0x1", "١", "1e-400"]),
)


@settings(
    database=None,  # no .hypothesis/ folder in the checkout
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=st.sampled_from(OPTIONS), value=VALUES)
def test_numeric_options_are_checked_when_parsed(files, capsys, case, value):
    command, option, valid, out = case
    argv = [command, str(files / "c.csv"), f"{option}={value}", *out.format(d=files).split()]
    code, stdout, err = run_main(argv, capsys)
    err = one_line_error(code, stdout, err)
    # valid: the value passes and the refused --out is what is reported; invalid: the value
    assert ("argument --out" in err) == valid(value), err


@pytest.mark.parametrize("case", OPTIONS, ids=lambda c: f"{c[0]}{c[1]}")
def test_an_option_given_as_double_dash_is_refused(files, capsys, case):
    # argparse (Python < 3.13) turns "--opt=--" into [] without calling the option's type;
    # found by the test above: it must be refused like any other bad value
    command, option, _, out = case
    argv = [command, str(files / "c.csv"), f"{option}=--", *out.format(d=files).split()]
    code, stdout, err = run_main(argv, capsys)
    err = one_line_error(code, stdout, err)
    assert err.startswith(f"detailed-balance {command}: error: argument --"), err
    assert "expected a value, not '--'" in err, err


# ---- subprocess: the real command, signals and pipes -----------------------------------------
CLI = [sys.executable, "-m", "detailed_balance.cli"]


def test_console_bad_option_is_one_line_without_usage_block(files):
    r = subprocess.run(
        [*CLI, "fit", str(files / "c.csv"), "--out", str(files / "f.nc"), "--chains", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "detailed-balance fit: error: argument --chains: must be ≥ 1, not 0\n"


def test_closed_pipe_is_status_0_without_a_traceback(files):
    # the reader goes away before the command writes anything: like `counts big.jsonl | head -0`
    p = subprocess.Popen(
        [*CLI, "counts", str(files / "c.csv")], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()  # (unclosed, it is a ResourceWarning: an error in the test run)
    assert p.wait(timeout=120) == 0 and err == ""


def _big_report_input(tmp_path):
    from detailed_balance.formats import write_counts
    from detailed_balance.synthetic import reversible_chain, sample_counts

    path = tmp_path / "c.csv"
    chain = reversible_chain(40, degree=5, seed=1)
    write_counts(sample_counts(chain, attempts_per_source=100, seed=1), path)
    return path


# at two moments: while JAX computes, and while figures are drawn
SIGNALS = [(signal.SIGTERM, 143, "terminated", 0.5), (signal.SIGINT, 130, "interrupted", 2.0)]


@pytest.mark.parametrize(("sig", "status", "word", "delay"), SIGNALS)
def test_signal_during_report_ends_with_one_line_and_no_partial_file(
    tmp_path, sig, status, word, delay
):
    counts = _big_report_input(tmp_path)
    out = tmp_path / "r"
    p = subprocess.Popen(
        [*CLI, "report", str(counts), "--out", str(out), "--no-compare", "--draws", "4000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = bytearray()

    def read_stderr():
        while chunk := p.stderr.read1(256):
            seen.extend(chunk)

    reader = threading.Thread(target=read_stderr)
    reader.start()
    deadline = time.monotonic() + 120
    while b"report" not in seen and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the progress bar is up: the command is inside its work
    time.sleep(delay)
    p.send_signal(sig)
    code = p.wait(timeout=120)
    reader.join(timeout=10)
    p.stdout.close(), p.stderr.close()
    err = seen.decode(errors="replace")
    assert code == status, err[-2000:]
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1].endswith(f"detailed-balance report: {word}")
    left = [q.name for q in out.rglob("*") if q.is_file()] if out.exists() else []
    assert "index.md" not in left and not [n for n in left if n.endswith(".tmp")], left
    assert os.path.exists(counts)


# ---- agent files (TOML) with a wrong type in a field: one line naming the file and the field ----
GOOD_AGENT = 'prompt = "{state} ->"\nseeds = ["dog"]\n'
BAD_AGENT_FIELDS = [
    ("max_tokens = [1]", "'max_tokens' must be a positive integer"),
    ("max_tokens = 0", "'max_tokens' must be a positive integer"),
    ("max_tokens = true", "'max_tokens' must be a positive integer"),
    ('max_tokens = "16"', "'max_tokens' must be a positive integer"),
    ("canonical = 3", "'canonical' must be a list of text"),
    ('canonical = "strip"', "'canonical' must be a list of text"),
    ("stop = 5", "'stop' must be a list of text"),
    ("stop = [1, 2]", "'stop' must be a list of text"),
    ("vocabulary = {a = 1}", "'vocabulary' must be a list of text"),
    ("letter_sum = 1.5", "'letter_sum' must be an integer"),
    ("name = 7", "'name' must be text"),
    ("system = [\"a\"]", "'system' must be text"),
    ("parse = 1", "'parse' must be text"),
    ("valid = false", "'valid' must be text"),
    ("reply = 2024-01-01", "'reply' must be text"),
    ("api = 1", "'api' must be text"),
]


@pytest.mark.parametrize("line,message", BAD_AGENT_FIELDS, ids=[b[0] for b in BAD_AGENT_FIELDS])
def test_an_agent_file_field_of_the_wrong_type_is_one_line(tmp_path, capsys, line, message):
    agent = tmp_path / "agent.toml"
    agent.write_text(GOOD_AGENT + line + "\n")
    out = tmp_path / "r.jsonl"
    argv = ["collect", "--agent", str(agent), "--base-url", "http://127.0.0.1:9/v1"]
    argv += ["--model", "m", "--out", str(out), "--attempts", "3"]
    err = one_line_error(*run_main(argv, capsys))
    assert str(agent) in err and message in err, err
    assert not out.exists()


def test_the_good_agent_file_of_these_cases_loads(tmp_path):
    """The cases above fail because of their one bad line, not the rest of the file."""
    from detailed_balance.collect import TemplateAgent

    path = tmp_path / "agent.toml"
    path.write_text(GOOD_AGENT + "max_tokens = 8\ncanonical = [\"strip\", \"lower\"]\n")
    agent = TemplateAgent.from_toml(path)
    assert agent.max_tokens == 8 and agent.seeds == ("dog",) and agent.steps == ("strip", "lower")
