"""The offline LLM (llama.cpp + gemma-3-270m) end to end: a real model, no key, no network."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from detailed_balance.cli import main
from detailed_balance.collect.agents import ANIMALS, AnimalAgent
from detailed_balance.collect.local import LOCAL_MODEL, LocalServer, free_port, local_available
from detailed_balance.collect.logprob import score_kernel, score_kernel_local
from detailed_balance.formats import read_attempt_log

pytestmark = pytest.mark.skipif(local_available() is not None, reason=str(local_available()))


def test_collect_local_runs_30_attempts_through_the_real_model(tmp_path, capsys):
    out = tmp_path / "animals.jsonl"
    argv = [
        "collect",
        "--agent",
        "animals",
        "--local",
        "--local-threads",
        "1",
        "--attempts",
        "32",
        "--concurrency",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    assert "32/32 attempts done" in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()][1:]
    assert sorted(r["attempt"] for r in records) == list(range(32))
    assert all(r["model"] == LOCAL_MODEL and r["completion_tokens"] > 0 for r in records)
    moves = [r for r in records if r["outcome"] == "transition"]
    assert len(moves) >= 10  # a base model that answers the few-shot prompt with animals
    assert all(r["target"] in ANIMALS and r["source"] in ANIMALS for r in moves)
    assert int(read_attempt_log(out).attempts.sum()) == 32


def test_logprob_kernel_from_the_real_model():
    states = ("dog", "wolf", "cat", "fish")
    kernel = score_kernel_local(AnimalAgent(), states)
    assert kernel.states == states and kernel.convention == "logprob"
    assert kernel.log_prob.shape == (12,) and np.all(np.isfinite(kernel.log_prob))
    assert np.all(kernel.log_prob < 0)
    total = np.zeros(len(states))
    np.add.at(total, kernel.source, np.exp(kernel.log_prob))
    assert np.all(total < 1)  # the rest is the escape: other animals, other words
    arcs = zip(kernel.source.tolist(), kernel.target.tolist(), strict=True)
    lp = dict(zip(arcs, kernel.log_prob, strict=True))
    assert lp[(0, 1)] > lp[(0, 3)]  # the model ranks "dog -> wolf" above "dog -> fish"


@pytest.mark.slow
def test_logprob_kernel_through_the_server_agrees_with_in_process():
    """The server's echoed logprobs and top 20 after the reply give the in-process kernel.

    Both score the reply's tokens plus every token that ends it; over HTTP the stop tokens outside
    the top 20 and end-of-text (shown as "") are unseen, ~0.005 nats on Gemma 3 270M.
    """
    states = ("dog", "wolf")
    with LocalServer(n_threads=1) as server:
        remote = score_kernel(AnimalAgent(), server.base_url, LOCAL_MODEL, states, concurrency=1)
    local = score_kernel_local(AnimalAgent(), states)
    np.testing.assert_allclose(remote.log_prob, local.log_prob, atol=0.02)
    assert np.all(remote.log_prob <= local.log_prob + 1e-4)  # over HTTP, a lower bound


def test_serve_local_starts_health_checks_and_stops_cleanly():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "detailed_balance.cli",
            "serve-local",
            "--port",
            str(port),
            "--threads",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # printed once the server answers its health check
        assert f"http://127.0.0.1:{port}/v1" in line
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
            assert LOCAL_MODEL in r.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()  # (unclosed, it is a ResourceWarning: an error in the test run)
    time.sleep(0.5)
    with pytest.raises(OSError):  # the llama.cpp child is gone too
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)


@pytest.mark.slow
def test_untruncated_samples_follow_the_scored_kernel(tmp_path):
    """Sampling with top-k/top-p/min-p off, a row of counts fits the logprob kernel (chi-square)."""
    from scipy import stats

    from detailed_balance.collect.agents import ANIMALS

    out = tmp_path / "dog.jsonl"
    argv = [
        "collect",
        "--agent",
        "animals",
        "--local",
        "--local-threads",
        "1",
        "--design",
        "budget",
        "--sources",
        "dog",
        "--attempts",
        "400",
        "--concurrency",
        "1",
        "--top-p",
        "1",
        "--extra-body",
        '{"top_k": 0, "min_p": 0}',
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()][1:]
    kernel = score_kernel_local(AnimalAgent(), sorted(ANIMALS), sources=["dog"])
    p = {
        kernel.states[t]: float(np.exp(lp))
        for t, lp in zip(kernel.target, kernel.log_prob, strict=True)
    }
    cells = sorted(p, key=p.get, reverse=True)[:15]
    got = [sum(r["target"] == g and r["outcome"] == "transition" for r in records) for g in cells]
    obs = np.array([*got, len(records) - sum(got)])
    exp = len(records) * np.array([*(p[g] for g in cells), 1 - sum(p[g] for g in cells)])
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    assert stats.chi2.sf(chi2, len(cells)) > 0.001
