"""A loopback OpenAI-compatible server with scripted behaviour and a known reversible kernel.

It is a real HTTP server in its own process, bound to 127.0.0.1, for tests and benchmarks::

    with LoopbackServer(latency=0.2) as server:
        ...  # point any OpenAI client at server.base_url

Behaviour (a :class:`Script`): fixed latency; faults drawn per request with given probabilities
(``429`` with Retry-After, ``500``, ``drop`` = connection closed without a reply, ``malformed`` =
a 200 whose body is not JSON, ``timeout`` = the reply comes after ``hang`` seconds, ``garbage`` = a
well-formed reply whose text no agent parses); unknown model names get 404. Replies follow a known
kernel over a small vocabulary: from state i (the last vocabulary word of the prompt) the server
answers j != i with probability ``move / (n-1) * min(1, exp(V_i - V_j))`` (a Metropolis chain, so
log T(j<-i) - log T(i<-j) = V_i - V_j exactly), the state itself with probability ``self_share`` of
the remaining mass, and a word outside the vocabulary otherwise. ``echo=True`` with ``logprobs``
scores the continuation after the prompt's last ``->`` exactly, as llama.cpp does with a
real model.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INVALID_REPLY = "unicorn"  # not an animal of the built-in agent's vocabulary: an invalid rejection
GARBAGE_REPLY = "{{ %% ### }}"


@dataclass
class Script:
    """What the loopback server does (all fields JSON-able)."""

    latency: float = 0.0
    faults: dict = field(default_factory=dict)
    fail_first: int = 0  # the first requests all get fault ``fail_kind`` (deterministic scripts)
    fail_kind: str = "429"
    retry_after: float = 0.05
    hang: float = 5.0
    seed: int = 0
    models: list = field(default_factory=lambda: ["loopback-model"])
    vocabulary: list = field(default_factory=lambda: ["bear", "cat", "dog", "fox", "lion", "wolf"])
    potential: list | None = None
    move: float = 0.8
    self_share: float = 0.5

    def V(self) -> list[float]:
        """The potential (mean zero); default evenly spaced over [-1.5, 1.5]."""
        n = len(self.vocabulary)
        v = self.potential or [-1.5 + 3.0 * i / max(n - 1, 1) for i in range(n)]
        mean = sum(v) / n
        return [x - mean for x in v]

    def kernel(self) -> list[list[float]]:
        """Row i: probabilities of replying each vocabulary state, then the invalid reply."""
        v, n = self.V(), len(self.vocabulary)
        rows = []
        for i in range(n):
            row = [0.0] * (n + 1)
            for j in range(n):
                if j != i:
                    row[j] = self.move / (n - 1) * min(1.0, math.exp(v[i] - v[j]))
            rest = 1.0 - sum(row)
            row[i] = self.self_share * rest
            row[n] = rest - row[i]
            rows.append(row)
        return rows


class _State:
    def __init__(self, script: Script):
        self.script = script
        self.kernel = script.kernel()
        self.lock = threading.Lock()
        self.requests = 0
        self.faults: dict[str, int] = {}
        self.fields: set[str] = set()  # every request field seen (tests check pass-through)
        self.fault_rng = random.Random(script.seed)
        self.pattern = re.compile("|".join(rf"\b{re.escape(w)}\b" for w in script.vocabulary), re.I)

    def draw_fault(self) -> str | None:
        with self.lock:
            self.requests += 1
            if self.requests <= self.script.fail_first:
                kind = self.script.fail_kind
                self.faults[kind] = self.faults.get(kind, 0) + 1
                return kind
            u = self.fault_rng.random()
            acc = 0.0
            for kind, p in self.script.faults.items():
                acc += float(p)
                if u < acc:
                    self.faults[kind] = self.faults.get(kind, 0) + 1
                    return kind
        return None

    def source_of(self, prompt: str) -> int | None:
        found = self.pattern.findall(prompt)
        if not found:
            return None
        return [w.lower() for w in self.script.vocabulary].index(found[-1].lower())

    def reply(self, prompt: str, seed) -> str:
        i = self.source_of(prompt)
        if i is None:
            return " " + INVALID_REPLY
        rng = random.Random(f"{self.script.seed}-{seed}") if seed is not None else random.Random()
        row = self.kernel[i]
        j = rng.choices(range(len(row)), weights=row)[0]
        return " " + (
            self.script.vocabulary[j] if j < len(self.script.vocabulary) else INVALID_REPLY
        )

    def score(self, text: str) -> dict:
        """Logprobs of an echoed prompt: the continuation after the last '->' is scored exactly."""
        cut = text.rfind("->") + 2
        if cut < 2:
            return {
                "tokens": [text],
                "token_logprobs": [None],
                "text_offset": [0],
                "top_logprobs": None,
            }
        prefix, cont = text[:cut], text[cut:]
        i = self.source_of(prefix)
        word = cont.strip().lower()
        vocab = [w.lower() for w in self.script.vocabulary]
        if i is None:
            lp = -math.inf
        elif word in vocab:
            lp = math.log(max(self.kernel[i][vocab.index(word)], 1e-300))
        else:
            lp = math.log(max(self.kernel[i][-1], 1e-300))
        body = cont.rstrip("\n")
        tokens = [prefix, body] + (["\n"] if cont.endswith("\n") else [])
        logprobs = [None, lp] + ([0.0] if cont.endswith("\n") else [])
        offsets = [0, len(prefix)] + ([len(prefix) + len(body)] if cont.endswith("\n") else [])
        return {
            "tokens": tokens,
            "token_logprobs": logprobs,
            "text_offset": offsets,
            "top_logprobs": None,
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    state: _State  # set on the subclass made by make_server

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        st = self.state
        if self.path.rstrip("/").endswith("/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "loopback"}
                for m in st.script.models
            ]
            self._send(200, {"object": "list", "data": data})
        elif self.path.startswith("/_stats"):
            with st.lock:
                stats = {
                    "requests": st.requests,
                    "faults": dict(st.faults),
                    "fields": sorted(st.fields),
                }
                self._send(200, stats)
        elif self.path.startswith("/health"):
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        st, script = self.state, self.state.script
        length = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._send(
                400,
                {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}},
            )
            return
        with st.lock:
            st.fields.update(req)
        chat = self.path.rstrip("/").endswith("/chat/completions")
        if not chat and not self.path.rstrip("/").endswith("/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        if req.get("model") not in script.models:
            self._send(
                404,
                {
                    "error": {
                        "message": f"The model `{req.get('model')}` does not exist",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
            return
        fault = st.draw_fault()
        if script.latency:
            time.sleep(script.latency)
        if fault == "429":
            self._send(
                429,
                {"error": {"message": "rate limited (scripted)", "type": "rate_limit"}},
                {"Retry-After": f"{script.retry_after:g}"},
            )
            return
        if fault == "500":
            self._send(
                500, {"error": {"message": "internal error (scripted)", "type": "server_error"}}
            )
            return
        if fault == "drop":
            self.close_connection = True  # close without a response
            return
        if fault == "malformed":
            self._send(200, b'{"id": "cmpl-x", "choices": [{"text": ')
            return
        if fault == "timeout":
            time.sleep(script.hang)
        if chat:
            prompt = "\n".join(
                str(m.get("content", ""))
                for m in req.get("messages", [])
                if m.get("role") == "user"
            )
        else:
            prompt = req.get("prompt", "")
            prompt = prompt[0] if isinstance(prompt, list) else prompt
        logprobs = None
        if req.get("echo") and req.get("logprobs") is not None and not chat:
            text, logprobs = prompt, st.score(prompt)
        else:
            text = " " + GARBAGE_REPLY if fault == "garbage" else st.reply(prompt, req.get("seed"))
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": 1 if text else 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        common = {
            "id": f"cmpl-{st.requests}",
            "created": int(time.time()),
            "model": req["model"],
            "usage": usage,
        }
        if chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text.strip()},
                "finish_reason": "stop",
            }
            self._send(200, {**common, "object": "chat.completion", "choices": [choice]})
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": logprobs}
            self._send(200, {**common, "object": "text_completion", "choices": [choice]})


def make_server(script: Script, port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 (only) following ``script``; call ``serve_forever``."""
    handler = type("Handler", (_Handler,), {"state": _State(script)})
    ThreadingHTTPServer.request_queue_size = 256  # bursts of many concurrent connections
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


class LoopbackServer:
    """Run the loopback server in a subprocess; a context manager giving ``base_url``.

    Keyword arguments are :class:`Script` fields.
    """

    def __init__(self, **script):
        self.script = Script(**script)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self, timeout: float = 30.0) -> LoopbackServer:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "detailed_balance.testing.server",
                "--script",
                json.dumps(asdict(self.script)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline and not line:
            line = self.proc.stdout.readline()  # the server prints its port once it listens
            if self.proc.poll() is not None:
                break
        if not line:
            self.stop()
            raise RuntimeError("loopback server did not start")
        self.port = json.loads(line)["port"]
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stats", timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="loopback OpenAI-compatible test server (127.0.0.1 only)"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", default="{}", help="JSON object of Script fields")
    args = parser.parse_args(argv)
    server = make_server(Script(**json.loads(args.script)), args.port)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
