"""The collector against the real loopback HTTP server: resume after SIGKILL, retries, faults,
designs, several endpoints, and recovery of the server's known potential."""

import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _collecting import MODEL, attempts_of, collect_args, make_collector

from detailed_balance.cli import main
from detailed_balance.collect import AnimalAgent
from detailed_balance.errors import CollectionError, DataError
from detailed_balance.formats import read_attempt_log
from detailed_balance.testing.server import LoopbackServer, Script


def test_sigkill_then_resume_gives_each_attempt_once(tmp_path):
    out = tmp_path / "run.jsonl"
    with LoopbackServer(latency=0.03, faults={"429": 0.05}, retry_after=0.01) as server:
        argv = [
            sys.executable,
            "-m",
            "detailed_balance.cli",
            *collect_args(server.base_url, out, "--attempts", "200", "--concurrency", "8"),
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the run is well under way
            if out.exists() and out.read_bytes().count(b"\n") > 40:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = attempts_of(out)
        assert 40 <= len(before) < 200
        assert (
            main(
                collect_args(
                    server.base_url, out, "--attempts", "200", "--concurrency", "8", "--resume"
                )
            )
            == 0
        )
    records = attempts_of(out)
    ids = [r["attempt"] for r in records if r["outcome"] != "error"]
    assert sorted(ids) == list(range(200))  # every attempt exactly once
    assert records[: len(before)] == before  # nothing written before the kill was changed
    assert len({r["run_id"] for r in records}) == 1
    counts = read_attempt_log(out)
    assert int(counts.attempts.sum()) == 200


def test_resume_with_another_configuration_is_refused(tmp_path, capsys):
    out = tmp_path / "run.jsonl"
    with LoopbackServer() as server:
        assert main(collect_args(server.base_url, out, "--attempts", "5")) == 0
        before = out.read_bytes()
        code = main(
            collect_args(
                server.base_url, out, "--attempts", "9", "--temperature", "0.5", "--resume"
            )
        )
        assert code == 2
        err = capsys.readouterr().err
        assert "different configuration" in err and "temperature" in err
        assert out.read_bytes() == before
        # same configuration, more attempts: allowed (extends the run)
        assert main(collect_args(server.base_url, out, "--attempts", "9", "--resume")) == 0
        assert (
            main(collect_args(server.base_url, out, "--attempts", "9")) == 2
        )  # exists, no --resume
    assert sorted(r["attempt"] for r in attempts_of(out)) == list(range(9))


def run_collector(server, out, attempts=60, **kw):
    urls = server.base_url if isinstance(server, LoopbackServer) else server
    return make_collector(urls, attempts, **kw).run(str(out))


def test_retries_recover_from_429_500_drops_malformed_and_timeouts(tmp_path):
    faults = {"429": 0.15, "500": 0.1, "drop": 0.05, "malformed": 0.05, "timeout": 0.03}
    with LoopbackServer(faults=faults, retry_after=0.01, hang=2.0) as server:
        result = run_collector(server, tmp_path / "r.jsonl", 150, timeout=0.4, max_retries=10)
        stats = server.stats()
    assert result.attempts_done == 150 and result.errors == 0
    assert set(stats["faults"]) == set(faults)  # every scripted fault happened...
    assert result.retries == sum(stats["faults"].values())  # ...and each was retried once
    ids = sorted(r["attempt"] for r in attempts_of(tmp_path / "r.jsonl"))
    assert ids == list(range(150))


def test_retry_after_is_honoured(tmp_path):
    with LoopbackServer(fail_first=3, fail_kind="429", retry_after=0.3) as server:
        t0 = time.perf_counter()
        result = run_collector(server, tmp_path / "r.jsonl", 1, concurrency=1)
        wall = time.perf_counter() - t0
    assert result.attempts_done == 1 and result.retries == 3
    assert wall >= 0.9  # three waits of Retry-After: 0.3 s (the jittered backoff would be ~0.03 s)


def test_exhausted_retries_are_errors_and_resume_redoes_them(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    with LoopbackServer(fail_first=3, fail_kind="500") as server:
        code = main(
            collect_args(
                server.base_url, out, "--attempts", "3", "--concurrency", "1", "--max-retries", "0"
            )
        )
        assert code == 1 and "--resume" in capsys.readouterr().err
        assert [r["outcome"] for r in attempts_of(out)] == ["error"] * 3
        with pytest.raises(DataError, match="no attempts"):  # errors are not attempts
            read_attempt_log(out)
        assert main(collect_args(server.base_url, out, "--attempts", "3", "--resume")) == 0
    assert int(read_attempt_log(out).attempts.sum()) == 3


def test_endpoint_down_clear_message_log_intact(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    with LoopbackServer() as server:
        assert main(collect_args(server.base_url, out, "--attempts", "4")) == 0
        dead = server.base_url
    before = out.read_bytes()
    argv = [
        "collect",
        "--agent",
        "animals",
        "--base-url",
        dead,
        "--model",
        MODEL,
        "--out",
        str(out),
        "--attempts",
        "8",
        "--resume",
        "--no-progress",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot reach" in err and "intact" in err
    assert out.read_bytes() == before
    fresh = tmp_path / "new.jsonl"
    argv[argv.index(str(out))] = str(fresh)
    assert main(argv[:-2]) == 2  # a new log: nothing written, so a plain rerun works later
    assert "nothing was written" in capsys.readouterr().err and not fresh.exists()


def test_unknown_model_clear_message(tmp_path, capsys):
    with LoopbackServer() as server:
        argv = collect_args(server.base_url, tmp_path / "r.jsonl", "--attempts", "3")
        argv[argv.index(MODEL)] = "gpt-imaginary"
        assert main(argv) == 2
        assert server.stats()["requests"] == 0
    assert "'gpt-imaginary' is not served" in capsys.readouterr().err


def test_unparseable_reply_is_logged_with_raw_text(tmp_path):
    with LoopbackServer(faults={"garbage": 1.0}) as server:
        run_collector(server, tmp_path / "r.jsonl", 5)
    recs = attempts_of(tmp_path / "r.jsonl")
    assert {r["outcome"] for r in recs} == {"unparseable"}
    assert all("%%" in r["raw"] and r["target"] is None and r["reason"] for r in recs)
    assert read_attempt_log(tmp_path / "r.jsonl").rejected.sum() == 5


@pytest.mark.parametrize("path", ["/dev/full", "{tmp}/a-file/run.jsonl"])
def test_unwritable_log_fails_before_the_first_call(tmp_path, capsys, path):
    (tmp_path / "a-file").write_text("not a directory")
    with LoopbackServer() as server:
        try:  # a path that cannot be created is refused while parsing (SystemExit)
            code = main(collect_args(server.base_url, path.format(tmp=tmp_path), "--attempts", "3"))
        except SystemExit as exc:
            code = exc.code
        assert code == 2
        assert server.stats()["requests"] == 0
    assert "attempt log" in capsys.readouterr().err


def test_key_required_for_remote_and_never_logged(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    argv = [
        "collect",
        "--agent",
        "animals",
        "--base-url",
        "https://api.example.invalid/v1",
        "--model",
        "m",
        "--out",
        str(tmp_path / "r.jsonl"),
        "--attempts",
        "1",
        "--api-key-env",
        "NO_SUCH_KEY_VAR",
    ]
    assert main(argv) == 2
    assert "NO_SUCH_KEY_VAR" in capsys.readouterr().err
    monkeypatch.setenv("MY_SECRET_KEY", "sk-do-not-log-4242")
    with LoopbackServer() as server:
        out = tmp_path / "k.jsonl"
        assert (
            main(
                collect_args(
                    server.base_url, out, "--attempts", "3", "--api-key-env", "MY_SECRET_KEY"
                )
            )
            == 0
        )
    assert b"sk-do-not-log-4242" not in out.read_bytes()


def test_budget_and_trajectory_designs(tmp_path):
    with LoopbackServer() as server:
        run_collector(
            server, tmp_path / "b.jsonl", 90, design="budget", sources=("cat", "dog", "fox")
        )
        run_collector(
            server, tmp_path / "t.jsonl", 60, design="trajectory", sources=("cat", "lion"), chains=3
        )
    budget = attempts_of(tmp_path / "b.jsonl")
    assert {s: sum(r["source"] == s for r in budget) for s in ("cat", "dog", "fox")} == {
        "cat": 30,
        "dog": 30,
        "fox": 30,
    }
    chains = {}
    for r in sorted(attempts_of(tmp_path / "t.jsonl"), key=lambda r: r["attempt"]):
        chains.setdefault(r["attempt"] % 3, []).append(r)
    assert [c[0]["source"] for c in chains.values()] == ["cat", "lion", "cat"]
    for steps in chains.values():
        for prev, nxt in zip(steps, steps[1:], strict=False):
            expect = prev["target"] if prev["outcome"] in ("transition", "self") else prev["source"]
            assert nxt["source"] == expect


def test_trajectory_resume_continues_each_chain(tmp_path):
    out = tmp_path / "t.jsonl"
    with LoopbackServer() as server:
        run_collector(server, out, 20, design="trajectory", chains=2)
        lines = out.read_bytes().split(b"\n")
        out.write_bytes(b"\n".join(lines[:12]) + b"\n" + lines[12][:25])  # killed mid-line
        collector = make_collector(server.base_url, 20, design="trajectory", chains=2)
        collector.run(str(out), resume=True)
    recs = attempts_of(out)
    assert sorted(r["attempt"] for r in recs) == list(range(20))
    by_id = {r["attempt"]: r for r in recs}
    for k in range(2, 20):
        prev = by_id[k - 2]
        expect = prev["target"] if prev["outcome"] in ("transition", "self") else prev["source"]
        assert by_id[k]["source"] == expect


def test_load_spreads_over_several_endpoints(tmp_path):
    with LoopbackServer(latency=0.02) as a, LoopbackServer(latency=0.02) as b:
        result = run_collector([a.base_url, b.base_url], tmp_path / "r.jsonl", 80)
        na, nb = a.stats()["requests"], b.stats()["requests"]
    assert result.attempts_done == 80 and na + nb == 80
    assert min(na, nb) >= 20


def test_chat_template_agent_and_token_accounting(tmp_path, write):
    agent_file = write(
        "pets.toml",
        'api = "chat"\nprompt = "An animal like {state}?"\n'
        'seeds = ["cat"]\nvocabulary = ["cat", "dog", "fox", "bear", '
        '"lion", "wolf"]\ncanonical = ["strip", "lower"]\n',
    )
    out = tmp_path / "chat.jsonl"
    with LoopbackServer() as server:
        extra = ["--extra-body", '{"top_k": 0, "min_p": 0}', "--seed", "7", "--top-p", "1"]
        argv = [
            "collect",
            "--agent",
            str(agent_file),
            "--base-url",
            server.base_url,
            "--model",
            MODEL,
            "--out",
            str(out),
            "--attempts",
            "30",
            "--no-progress",
            *extra,
        ]
        assert main(argv) == 0
        fields = set(server.stats()["fields"])
    assert {"top_k", "min_p", "seed", "top_p", "messages", "temperature"} <= fields
    run = json.loads(out.read_text().splitlines()[0])
    assert run["config"]["extra_body"] == {"top_k": 0, "min_p": 0} and run["config"]["seed"] == 7
    recs = attempts_of(out)
    assert {r["outcome"] for r in recs} <= {"transition", "self", "invalid"}
    assert all(r["prompt_tokens"] == 4 and r["completion_tokens"] == 1 for r in recs)


def test_counts_recover_the_servers_potential(tmp_path):
    """Log-ratios of collected counts estimate V_i - V_j of the server's Metropolis kernel."""
    script = Script(potential=[-0.75, -0.45, -0.15, 0.15, 0.45, 0.75])
    with LoopbackServer(potential=script.potential) as server:
        run_collector(
            server,
            tmp_path / "r.jsonl",
            1500,
            design="budget",
            sources=script.vocabulary,
            concurrency=16,
        )
    counts = read_attempt_log(tmp_path / "r.jsonl")
    assert counts.states == tuple(sorted(script.vocabulary))
    V = dict(zip(script.vocabulary, script.V(), strict=True))
    c = counts.dense()
    z = []
    for i, a in enumerate(counts.states):
        for j, b in enumerate(counts.states):
            if i < j:
                est = math.log(max(c[i, j], 0.5) / max(c[j, i], 0.5))  # rows share n_i = 250
                se = math.sqrt(1 / c[i, j] + 1 / c[j, i])
                z.append((est - (V[a] - V[b])) / se)
    z = np.array(z)
    assert np.all(np.abs(z) < 4) and abs(z.mean()) < 1.0
    # and the data cannot be explained without a potential: most pairs are clearly directional
    assert np.mean([abs(V[a] - V[b]) > 0 for a in V for b in V if a < b]) == 1


@pytest.mark.slow
def test_fit_recovers_the_servers_potential(tmp_path):
    """The reversible model's 94% HDIs cover the true potential (collected, not simulated, data)."""
    from detailed_balance import _arviz
    from detailed_balance.inference import fit
    from detailed_balance.modeldata import apply_gauge, gauge_reference

    script = Script()
    with LoopbackServer() as server:
        run_collector(
            server,
            tmp_path / "r.jsonl",
            1800,
            design="budget",
            sources=script.vocabulary,
            concurrency=16,
        )
    counts = read_attempt_log(tmp_path / "r.jsonl")
    idata = fit(counts, "reversible", draws=500, warmup=500, chains=2, seed=1)
    draws = np.asarray(_arviz.group(idata, "posterior")["V"]).reshape(-1, counts.n_states)
    group, weight = gauge_reference(counts)[:2]
    true = np.array(
        [dict(zip(script.vocabulary, script.V(), strict=True))[s] for s in counts.states]
    )
    true = apply_gauge(true, group, weight)
    lo, hi = _arviz.hdi(apply_gauge(draws, group, weight))
    assert np.mean((lo <= true) & (true <= hi)) >= 5 / 6


def test_server_binds_loopback_only():
    with LoopbackServer() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        import socket

        with socket.socket() as s:  # the port is not reachable on another interface's address
            s.settimeout(1)
            host = socket.gethostbyname(socket.gethostname())
            if host.startswith("127."):
                pytest.skip("no non-loopback address on this machine")
            assert s.connect_ex((host, server.port)) != 0


def test_endpoint_dies_mid_run_stops_with_message_and_resume_elsewhere(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    server = LoopbackServer(latency=0.01).start()
    collector = make_collector(server.base_url, 3000, concurrency=4, max_retries=1, timeout=2.0)
    import threading

    def kill_when_under_way():  # the endpoint goes away mid-run
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") > 50:
                break
            time.sleep(0.01)
        server.stop()

    killer = threading.Thread(target=kill_when_under_way)
    killer.start()
    try:
        with pytest.raises(CollectionError, match="in a row failed.*--resume"):
            collector.run(str(out))
    finally:
        killer.join()
        server.stop()
    done = {r["attempt"] for r in attempts_of(out) if r["outcome"] != "error"}
    assert 0 < len(done) < 3000
    with LoopbackServer() as other:  # another server (another URL): same run, resumed
        result = make_collector(other.base_url, len(done) + 20).run(str(out), resume=True)
    assert result.attempts_done == len(done) + 20


def test_shipped_dataset_is_what_the_docs_say():
    from detailed_balance.collect.dataset import dataset_path

    path = dataset_path()
    counts = read_attempt_log(path)
    assert int(counts.attempts.sum()) >= 10_000
    labels = np.asarray(counts.two_way_components())
    assert np.bincount(labels).max() >= 30  # a connected two-way state space of >= 30 states
    import gzip

    with gzip.open(path, "rt") as fh:
        run = json.loads(fh.readline())
    assert run["config"]["model"] == "gemma3-270m" and run["config"]["temperature"] == 1.0
    assert run["config"]["agent"] == "animals"
    assert run["config"]["template_hash"] == AnimalAgent().template_hash()


def test_a_stopped_run_starts_no_request_it_does_not_log(tmp_path):
    """After max_consecutive_errors no new request starts; every request made is logged."""
    with LoopbackServer(faults={"500": 1.0}, latency=0.01) as server:
        with pytest.raises(CollectionError, match="in a row failed"):
            run_collector(
                server,
                tmp_path / "r.jsonl",
                300,
                max_retries=0,
                max_consecutive_errors=10,
            )
        requests = server.stats()["requests"]
    assert 10 <= requests == len(attempts_of(tmp_path / "r.jsonl")) < 40
