"""Collection under attack: two collectors on one log, full disks, keys, hostile servers, bad
options and signals. Each case either gives the right result or exits 2 with one line and no
traceback; the log is always whole."""

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from _collecting import attempts_of, collect_args, make_collector

from detailed_balance.cli import main
from detailed_balance.collect import MAX_REPLY_CHARS
from detailed_balance.collect import log as log_module
from detailed_balance.collect.log import AttemptLog, json_line
from detailed_balance.collect.safety import (
    RETRY_AFTER_MAX,
    check_endpoints,
    is_loopback,
    retry_after_seconds,
)
from detailed_balance.errors import CollectionError
from detailed_balance.formats import read_attempt_log
from detailed_balance.testing.server import LoopbackServer, ThreadedLoopbackServer

KEY = "sk-hardening-SECRET-0123456789"


def each_once(path, n):
    ids = [r["attempt"] for r in attempts_of(path) if r["outcome"] != "error"]
    return sorted(ids) == list(range(n))


def collector(url, attempts, *, concurrency=4, max_retries=3, **kw):
    return make_collector(url, attempts, concurrency=concurrency, max_retries=max_retries, **kw)


def one_line_error(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("detailed-balance collect: ")
    return lines[0]


@pytest.fixture(scope="module")
def server():
    with LoopbackServer(latency=0.01) as s:
        yield s


# ---- one collector per log -------------------------------------------------------------------
@pytest.mark.parametrize("trial", range(20))
def test_a_second_collector_on_a_live_log_is_refused(tmp_path, server, capsys, trial):
    out = tmp_path / "run.jsonl"
    result = {}
    first = threading.Thread(
        target=lambda: result.setdefault("r", collector(server.base_url, 40).run(str(out)))
    )
    first.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (out.exists() and out.read_bytes().count(b"\n")):
        time.sleep(0.002)
    # the same configuration with --resume: passes the configuration check, then meets the lock
    code = main(collect_args(server.base_url, out, "--attempts", "40", "--resume"))
    first.join(30)
    assert code == 2
    line = one_line_error(capsys.readouterr().err)
    assert f"being written by another collector (process {os.getpid()})" in line
    assert result["r"].attempts_done == 40
    assert each_once(out, 40)  # the refused one wrote nothing


def test_the_refusal_names_the_other_process(tmp_path, server, capsys):
    out = tmp_path / "run.jsonl"
    args = collect_args(server.base_url, out, "--attempts", "100000", "--concurrency", "2")
    argv = [sys.executable, "-m", "detailed_balance.cli", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            out.exists() and out.read_bytes().count(b"\n") > 3
        ):
            time.sleep(0.02)
        for extra in (["--resume"], [], ["--resume", "--temperature", "0.5"]):
            code = main(collect_args(server.base_url, out, "--attempts", "100000", *extra))
            assert code == 2
            assert f"(process {proc.pid})" in one_line_error(capsys.readouterr().err)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted by SIGINT" in err and "Traceback" not in err
    attempts_of(out)  # whole


def test_two_fresh_starts_at_once_one_wins(tmp_path):
    cfg = {"agent": "animals"}
    for trial in range(20):
        out = str(tmp_path / f"fresh{trial}.jsonl")
        barrier, results = threading.Barrier(2), []

        def start(out=out, barrier=barrier, results=results):
            barrier.wait()
            try:
                results.append(AttemptLog(out, cfg, "r"))
            except CollectionError as exc:
                results.append(exc)

        threads = [threading.Thread(target=start) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        logs = [r for r in results if isinstance(r, AttemptLog)]
        refused = [r for r in results if isinstance(r, CollectionError)]
        assert len(logs) == 1 and len(refused) == 1
        assert "another collector" in str(refused[0]) or "already exists" in str(refused[0])
        logs[0].close()
        with open(out) as fh:
            assert [json.loads(line)["kind"] for line in fh] == ["run"]


# ---- whole records on a full disk -----------------------------------------------------------
def test_a_short_write_then_success_completes_the_record(tmp_path, server, monkeypatch):
    real, calls = os.write, []

    def short_once(fd, data):
        calls.append(len(data))
        if len(calls) == 5:  # the 4th record goes out in two pieces
            return real(fd, bytes(data[: len(data) // 2]))
        return real(fd, data)

    monkeypatch.setattr(log_module, "_os_write", short_once)
    out = tmp_path / "r.jsonl"
    result = collector(server.base_url, 20).run(str(out))
    assert result.attempts_done == 20 and each_once(out, 20)
    assert len(calls) == 22  # run line + 20 records + the rest of the short one


def test_a_short_write_then_a_full_disk_leaves_a_log_that_counts_and_resumes(
    tmp_path, server, monkeypatch, capsys
):
    real, calls = os.write, []

    def full_disk(fd, data):
        calls.append(len(data))
        if len(calls) == 8:
            return real(fd, bytes(data[: len(data) // 3]))  # a part of the line fits
        if len(calls) > 8:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(log_module, "_os_write", full_disk)
    out = tmp_path / "r.jsonl"
    code = main(collect_args(server.base_url, out, "--attempts", "30", "--concurrency", "2"))
    assert code == 2
    line = one_line_error(capsys.readouterr().err)
    assert "No space left on device" in line and "--resume" in line
    written = attempts_of(out)  # no partial line
    assert len(written) == 6
    assert int(read_attempt_log(out).attempts.sum()) == 6
    monkeypatch.setattr(log_module, "_os_write", real)  # space freed
    assert main(collect_args(server.base_url, out, "--attempts", "30", "--resume")) == 0
    assert attempts_of(out)[:6] == written and each_once(out, 30)
    assert int(read_attempt_log(out).attempts.sum()) == 30


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_real_full_disk_tmpfs_then_freed_space(small_tmpfs, server, capsys):
    out = small_tmpfs / "run.jsonl"
    n = 600  # ~350 bytes a record: about three times what 64 KiB hold
    assert main(collect_args(server.base_url, out, "--attempts", str(n), "--concurrency", "8")) == 2
    assert "No space left on device" in one_line_error(capsys.readouterr().err)
    written = attempts_of(out)
    assert 50 < len(written) < n
    assert int(read_attempt_log(out).attempts.sum()) == len(written)
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_tmpfs)], check=True)
    assert main(collect_args(server.base_url, out, "--attempts", str(n), "--resume")) == 0
    assert attempts_of(out)[: len(written)] == written and each_once(out, n)


@pytest.mark.slow  # the tmpfs test above is the real full disk; this one works without root
def test_a_real_file_size_limit_efbig_then_lifted(tmp_path, server):
    """RLIMIT_FSIZE gives a real short write and then EFBIG (SIGXFSZ ignored)."""
    out = tmp_path / "run.jsonl"
    limit = 40_000

    # the child sets its own limit: a preexec_fn would fork this process, where JAX (imported by
    # earlier tests) warns that fork and threads deadlock, an error under the suite's filters
    limited = ("import resource, runpy, signal, sys; "
               "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
               f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
               "sys.argv[0] = 'detailed-balance'; "
               "runpy.run_module('detailed_balance.cli', run_name='__main__')")  # fmt: skip
    argv = [sys.executable, "-c", limited,
            *collect_args(server.base_url, out, "--attempts", "300")]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "File too large" in one_line_error(res.stderr)
    written = attempts_of(out)
    assert out.stat().st_size <= limit and 50 < len(written) < 300
    assert main(collect_args(server.base_url, out, "--attempts", "300", "--resume")) == 0
    assert attempts_of(out)[: len(written)] == written and each_once(out, 300)


def test_writer_emits_strict_json():
    line = json_line({"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": -float("inf")}})
    assert json.loads(line) == {"a": None, "b": [None, 1.5], "c": {"d": None}}
    odd = json_line({"raw": "a\ud800b\x00\n|é"})  # a lone surrogate, NUL, newline
    assert odd.count(b"\n") == 1 and json.loads(odd.decode("utf-8")) == {"raw": "a\ud800b\x00\n|é"}


CORRUPT = {
    "attempt id a string": {"attempt": "abc"},
    "attempt id true": {"attempt": True},
    "attempt id negative": {"attempt": -1},
    "attempt id a float": {"attempt": 1.5},
    "attempt id null": {"attempt": None},
    "unknown outcome": {"outcome": "maybe"},
    "transition without target": {"target": None},
    "source a number": {"source": 7},
}


@pytest.mark.parametrize("change", CORRUPT.values(), ids=CORRUPT.keys())
def test_resume_of_a_corrupted_log_is_one_line(tmp_path, server, capsys, change):
    out = tmp_path / "r.jsonl"
    assert main(collect_args(server.base_url, out, "--attempts", "3")) == 0
    lines = out.read_text().splitlines()
    rec = json.loads(lines[2])
    rec.update(outcome="transition", target="cat")
    rec.update(change)
    lines[2] = json.dumps(rec)
    out.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    before = out.read_bytes()
    assert main(collect_args(server.base_url, out, "--attempts", "5", "--resume")) == 2
    assert "line 3" in one_line_error(capsys.readouterr().err)
    assert out.read_bytes() == before


def test_resume_of_a_log_with_a_line_nested_too_deeply_is_one_line(tmp_path, server, capsys):
    out = tmp_path / "r.jsonl"
    assert main(collect_args(server.base_url, out, "--attempts", "3")) == 0
    lines = out.read_text().splitlines()
    lines[2] = '{"kind": "attempt", "raw": ' + "[" * 100_000 + "]" * 100_000 + "}"
    out.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(collect_args(server.base_url, out, "--attempts", "5", "--resume")) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "row 3" in line and "nested too deeply" in line and "cannot resume" in line


# ---- keys -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, loopback",
    [
        ("http://127.0.0.1:1/v1", True),
        ("http://127.1:1/v1", True),
        ("http://0x7f000001:1/v1", True),
        ("http://[::1]:1/v1", True),
        ("http://[::ffff:127.0.0.1]:1/v1", True),
        ("http://localhost:1/v1", True),
        ("http://localhost.:1/v1", True),
        ("http://LOCALHOST/v1", True),
        ("http://192.0.2.1/v1", False),
        ("http://[::ffff:192.0.2.1]/v1", False),
        ("http://10.0.0.1/v1", False),
        ("http://127.0.0.1.invalid/v1", False),
        ("http://localhost.invalid/v1", False),
        ("http://user:pw@192.0.2.1/v1", False),
    ],
)
def test_loopback_is_decided_on_the_resolved_address(url, loopback):
    assert is_loopback(url) is loopback
    if loopback:
        check_endpoints([url], key_set=True, allow_insecure=False)
    else:
        with pytest.raises(CollectionError, match="plain http"):
            check_endpoints([url], key_set=True, allow_insecure=False)
        check_endpoints([url], key_set=True, allow_insecure=True)  # the user said so
        check_endpoints([url.replace("http://", "https://")], key_set=True, allow_insecure=False)


def test_key_never_sent_over_plain_http_to_a_remote_host(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARDENING_KEY", KEY)
    out = tmp_path / "r.jsonl"
    argv = collect_args("http://192.0.2.1:9/v1", out, "--attempts", "2")
    code = main([*argv, "--api-key-env", "HARDENING_KEY"])
    assert code == 2 and not out.exists()
    line = one_line_error(capsys.readouterr().err)
    assert "plain http" in line and "--allow-insecure-key" in line and KEY not in line


def test_key_goes_to_a_loopback_spelling_and_is_sent(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARDENING_KEY", KEY)
    with ThreadedLoopbackServer(fail_first=1, fail_kind="echo_reply") as s:
        url = f"http://127.1:{s.port}/v1"
        out = tmp_path / "r.jsonl"
        assert (
            main(collect_args(url, out, "--attempts", "3", "--api-key-env", "HARDENING_KEY")) == 0
        )
    captured = capsys.readouterr()
    data = out.read_text()
    assert KEY not in data + captured.out + captured.err
    echoed = [r for r in attempts_of(out) if "your key is" in r["raw"]]
    assert len(echoed) == 1 and "Bearer [REDACTED]" in echoed[0]["raw"]  # sent, then redacted


def test_a_redirect_elsewhere_does_not_carry_the_key(tmp_path, monkeypatch):
    """The client drops Authorization on a redirect to another origin (httpx's rule): checked."""
    monkeypatch.setenv("HARDENING_KEY", KEY)
    with ThreadedLoopbackServer(faults={"echo_reply": 1.0}) as other:
        target = f"http://localhost:{other.port}/v1/completions"  # another origin
        with ThreadedLoopbackServer(faults={"redirect": 1.0}, redirect_to=target) as s:
            c = collector(s.base_url, 2, api_key_env="HARDENING_KEY")
            c.run(str(tmp_path / "r.jsonl"))
    recs = attempts_of(tmp_path / "r.jsonl")
    assert [r["raw"] for r in recs] == [" your key is "] * 2  # no Authorization arrived


@pytest.mark.parametrize("kind", ["echo401", "echo400", "echo404"])
def test_server_errors_that_echo_the_key_are_redacted(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.setenv("HARDENING_KEY", KEY)
    with ThreadedLoopbackServer(fail_first=1, fail_kind=kind) as s:
        out = tmp_path / "r.jsonl"
        argv = collect_args(s.base_url, out, "--attempts", "3", "--api-key-env", "HARDENING_KEY")
        assert main(argv) == 2
    captured = capsys.readouterr()
    line = one_line_error(captured.err)
    assert "invalid credentials" in line and "[REDACTED]" in line
    assert KEY not in captured.err + captured.out + (out.read_text() if out.exists() else "")


def test_retried_errors_that_echo_the_key_are_redacted_in_the_record(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDENING_KEY", KEY)
    with ThreadedLoopbackServer(faults={"drop": 1.0}) as s:
        c = collector(s.base_url, 2, max_retries=0, api_key_env="HARDENING_KEY")
        c.run(str(tmp_path / "r.jsonl"))
    recs = attempts_of(tmp_path / "r.jsonl")
    assert [r["outcome"] for r in recs] == ["error", "error"]
    assert KEY not in (tmp_path / "r.jsonl").read_text()


# ---- bounded waits and hostile replies ------------------------------------------------------
@pytest.mark.parametrize(
    "value, seconds",
    [("inf", RETRY_AFTER_MAX), ("1e9", RETRY_AFTER_MAX), ("nan", None), ("-3", None),
     ("soon", None), ("", None), ("2.5", 2.5), ("Wed, 21 Oct 2099 07:28:00 GMT", RETRY_AFTER_MAX),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("Wed, 99 Foo 2015", None)],
)  # fmt: skip
def test_retry_after_parsing_is_bounded(value, seconds):
    assert retry_after_seconds({"retry-after": value}) == seconds
    assert retry_after_seconds({"retry-after-ms": "1e300"}) == RETRY_AFTER_MAX


@pytest.mark.parametrize(
    "retry_after", ["inf", "1e9", "nan", "garbage", "Wed, 21 Oct 2099 07:28:00 GMT", "-1"]
)
def test_hostile_retry_after_ends_within_timeout_times_retries(tmp_path, retry_after):
    with ThreadedLoopbackServer(fail_first=2, fail_kind="429", retry_after=retry_after) as s:
        t0 = time.perf_counter()
        result = collector(s.base_url, 1, concurrency=1, timeout=0.5, max_retries=3).run(
            str(tmp_path / "r.jsonl")
        )
        wall = time.perf_counter() - t0
    assert result.attempts_done == 1 and result.retries == 2
    assert wall < 0.5 * 4 + 1.0  # waits capped at --timeout


def test_a_trickling_server_is_cut_at_the_deadline(tmp_path):
    with ThreadedLoopbackServer(fail_first=1, fail_kind="trickle", trickle_interval=0.5) as s:
        t0 = time.perf_counter()
        result = collector(s.base_url, 1, concurrency=1, timeout=1.0, max_retries=2).run(
            str(tmp_path / "r.jsonl")
        )
        wall = time.perf_counter() - t0
    assert result.attempts_done == 1 and result.retries == 1
    assert 1.0 <= wall < 3.0  # the trickle (minutes long) was cut at 1 s, the retry succeeded


def test_a_trickling_server_every_time_ends_with_a_recorded_error(tmp_path):
    with ThreadedLoopbackServer(faults={"trickle": 1.0}, trickle_interval=0.3) as s:
        t0 = time.perf_counter()
        result = collector(s.base_url, 1, concurrency=1, timeout=0.6, max_retries=1).run(
            str(tmp_path / "r.jsonl")
        )
        wall = time.perf_counter() - t0
    assert result.errors == 1 and wall < 0.6 * 2 + 1.5
    (rec,) = attempts_of(tmp_path / "r.jsonl")
    assert rec["outcome"] == "error" and "timeout after 0.6 s" in rec["reason"]


@pytest.mark.parametrize(
    "kind", ["no_choices", "wrong_types", "not_object", "deep", "empty", "malformed"]
)
def test_malformed_replies_are_retried(tmp_path, kind):
    with ThreadedLoopbackServer(fail_first=2, fail_kind=kind) as s:
        result = collector(s.base_url, 4, concurrency=1).run(str(tmp_path / "r.jsonl"))
    assert result.attempts_done == 4 and result.retries == 2 and result.errors == 0
    assert each_once(tmp_path / "r.jsonl", 4)


@pytest.mark.parametrize(
    "kind", ["no_choices", "wrong_types", "not_object", "deep", "empty", "malformed"]
)
def test_always_malformed_replies_are_recorded_errors(tmp_path, kind):
    with ThreadedLoopbackServer(faults={kind: 1.0}) as s:
        result = collector(s.base_url, 2, max_retries=1).run(str(tmp_path / "r.jsonl"))
    assert result.errors == 2 and result.attempts_done == 0
    recs = attempts_of(tmp_path / "r.jsonl")
    assert {r["reason"] for r in recs} == {"malformed response body, 1 retries"}


def test_non_integer_usage_counts_zero_tokens(tmp_path):
    with ThreadedLoopbackServer(faults={"bad_usage": 1.0}) as s:
        result = collector(s.base_url, 3).run(str(tmp_path / "r.jsonl"))
    assert result.attempts_done == 3 and result.prompt_tokens == 0
    recs = attempts_of(tmp_path / "r.jsonl")
    assert {r["target"] for r in recs} == {"cat"}
    assert all(r["prompt_tokens"] == 0 and r["completion_tokens"] == 0 for r in recs)


def test_a_huge_reply_is_stored_truncated_and_flagged(tmp_path):
    with ThreadedLoopbackServer(faults={"huge": 1.0}, huge_chars=2_000_000) as s:
        result = collector(s.base_url, 2).run(str(tmp_path / "r.jsonl"))
    assert result.attempts_done == 2
    recs = attempts_of(tmp_path / "r.jsonl")
    assert all(r["truncated"] is True and len(r["raw"]) == MAX_REPLY_CHARS for r in recs)
    assert all(r["outcome"] == "unparseable" and "longer than" in r["reason"] for r in recs)
    assert (tmp_path / "r.jsonl").stat().st_size < 3 * MAX_REPLY_CHARS + 4096
    assert read_attempt_log(tmp_path / "r.jsonl").rejected.sum() == 2


def test_a_state_with_control_characters_is_an_invalid_reply(tmp_path, write):
    agent = write("raw.toml", 'name = "raw"\nprompt = "{state} ->"\nseeds = ["dog"]\n')
    with ThreadedLoopbackServer(faults={"control": 1.0}) as s:
        argv = collect_args(s.base_url, tmp_path / "r.jsonl", "--attempts", "3")
        argv[argv.index("animals")] = str(agent)
        assert main(argv) == 0
    recs = attempts_of(tmp_path / "r.jsonl")
    assert {r["outcome"] for r in recs} == {"invalid"} and all(r["raw"] for r in recs)
    assert all("control character" in r["reason"] for r in recs)
    assert read_attempt_log(tmp_path / "r.jsonl").rejected.sum() == 3


def test_nan_logprobs_are_stored_as_null(tmp_path):
    with ThreadedLoopbackServer(faults={"nan_logprobs": 1.0}) as s:
        collector(s.base_url, 2, logprobs=1).run(str(tmp_path / "r.jsonl"))
    recs = attempts_of(tmp_path / "r.jsonl")  # strict JSON checked here
    assert all(r["logprobs"]["token_logprobs"] == [None] for r in recs)


# ---- options checked before any work --------------------------------------------------------
BAD_OPTIONS = [
    ["--attempts", "-1"],
    ["--attempts", "0"],
    ["--attempts", "ten"],
    ["--attempts", "1e3"],
    ["--max-retries", "-1"],
    ["--logprobs", "-1"],
    ["--concurrency", "0"],
    ["--concurrency", "-4"],
    ["--processes", "2"],  # removed: one line saying so
    ["--chains", "0"],
    ["--timeout", "0"],
    ["--timeout", "-1"],
    ["--timeout", "nan"],
    ["--timeout", "inf"],
    ["--temperature", "nan"],
    ["--temperature", "-0.5"],
    ["--temperature", "1e400"],
    ["--top-p", "0"],
    ["--top-p", "1.5"],
    ["--top-p", "nan"],
    ["--max-tokens", "0"],
    ["--seed", "-1"],
    ["--price-prompt", "-1"],
    ["--price-completion", "inf"],
    ["--local-port", "70000"],
    ["--local-threads", "0"],
    ["--extra-body", "[1, 2]"],
    ["--extra-body", "{not json"],
    ["--extra-body", '{"x": NaN}'],
    ["--extra-body", "[" * 100_000],
    ["--design", "random"],
    ["--sources", ","],
    ["--agent", "no-such-agent"],
    ["--agent", "{tmp}/missing.toml"],
    ["--out", "{tmp}"],
    ["--out", "{tmp}/run.jsonl.gz"],
    ["--out", "{tmp}/a-file/run.jsonl"],
    ["--out", "/proc/version"],
    ["--base-url", "ftp://example.org/v1"],
    ["--base-url", "not a url"],
    ["--base-url", "http://[::1/v1"],
    ["--base-url", "http://127.0.0.1:99999/v1"],
    ["--local"],
    ["--model", ""],
]


def run_cli(argv):
    """``main(argv)``'s status; the parser's own errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("bad", BAD_OPTIONS, ids=lambda b: " ".join(b)[:40])
def test_bad_options_are_one_line_and_exit_2_before_any_request(tmp_path, server, capsys, bad):
    (tmp_path / "a-file").write_text("a file, not a folder")
    bad = [b.replace("{tmp}", str(tmp_path)) for b in bad]
    argv = collect_args(server.base_url, tmp_path / "r.jsonl", "--attempts", "3")
    if bad[0] in ("--base-url", "--out", "--attempts", "--model"):  # replace the good value
        j = argv.index(bad[0])
        del argv[j : j + 2]
    before = server.stats()["requests"]
    assert run_cli([*argv, *bad]) == 2
    one_line_error(capsys.readouterr().err)
    assert server.stats()["requests"] == before
    assert not (tmp_path / "r.jsonl").exists()


def test_resume_of_a_finished_run_starts_no_server(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    with LoopbackServer(models=["gemma3-270m"]) as s:
        argv = ["collect", "--agent", "animals", "--base-url", s.base_url, "--model",
                "gemma3-270m", "--out", str(out), "--attempts", "4", "--no-progress"]  # fmt: skip
        assert main(argv) == 0
    before = out.read_bytes()
    t0 = time.perf_counter()
    argv = ["collect", "--agent", "animals", "--local", "--out", str(out), "--attempts", "4",
            "--resume", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert time.perf_counter() - t0 < 5  # llama.cpp takes far longer to start
    assert "already done" in capsys.readouterr().out
    assert out.read_bytes() == before


# ---- signals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sig, code",
    [(signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)],
)
def test_a_signal_ends_collect_with_one_line_and_a_whole_log(tmp_path, sig, code):
    out = tmp_path / "r.jsonl"
    with ThreadedLoopbackServer(latency=0.05) as s:
        argv = [
            sys.executable,
            "-m",
            "detailed_balance.cli",
            *collect_args(s.base_url, out, "--attempts", "200", "--concurrency", "16"),
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            out.exists() and out.read_bytes().count(b"\n") > 20
        ):
            time.sleep(0.01)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == code, stderr
        line = one_line_error(stderr)
        assert f"interrupted by {signal.Signals(sig).name}" in line and "--resume" in line
        done = attempts_of(out)
        assert 20 <= len(done) < 200
        resume = collect_args(
            s.base_url, out, "--attempts", "200", "--resume", "--concurrency", "32"
        )
        assert main(resume) == 0
    assert attempts_of(out)[: len(done)] == done and each_once(out, 200)


@pytest.mark.parametrize(
    "bad",
    [["--port", "0"], ["--port", "x"], ["--port", "65536"], ["--threads", "0"],
     ["--duration", "nan"], ["--duration", "-1"], ["--duration", "inf"]],
    ids=" ".join,
)  # fmt: skip
def test_serve_local_bad_options_are_one_line(capsys, bad):
    assert run_cli(["serve-local", *bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("detailed-balance serve-local: error: ") and err.count("\n") == 1


# ---- properties (hypothesis) ----------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@hypothesis.given(json_values)
@hypothesis.settings(max_examples=100, deadline=None)
def test_every_record_is_one_strict_utf8_json_line(value):
    line = json_line({"v": value})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    json.loads(line.decode("utf-8"), parse_constant=lambda name: pytest.fail(f"bare {name}"))


@hypothesis.given(st.text(max_size=60))
@hypothesis.settings(max_examples=150, deadline=None)
def test_retry_after_is_none_or_within_the_cap(text):
    for name in ("retry-after", "retry-after-ms"):
        wait = retry_after_seconds({name: text}, cap=7.0)
        assert wait is None or 0.0 <= wait <= 7.0


@hypothesis.given(st.text(max_size=40), st.text(max_size=40))
@hypothesis.settings(max_examples=150, deadline=None)
def test_the_key_never_survives_redaction(before, after):
    from detailed_balance.collect.safety import Redactor

    redact = Redactor(KEY)
    for text in (before + KEY + after, f"{before}Bearer {KEY}{after}"):
        assert KEY not in redact.message(text) and KEY not in redact.exact(text)


def test_the_removed_processes_option_says_so_in_one_line(capsys):
    assert run_cli(["collect", "--processes", "2", "--attempts", "3", "--out", "x.jsonl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--processes was removed" in err
