"""A loopback OpenAI-compatible server with scripted behaviour and a known reversible kernel.

It is a real HTTP server (aiohttp.web) in its own process, bound to 127.0.0.1, for tests and
benchmarks::

    with LoopbackServer(latency=0.2) as server:
        ...  # point any OpenAI client at server.base_url

Behaviour (a :class:`Script`): fixed latency; faults drawn per request with given probabilities
(``429`` with Retry-After, ``500``, ``drop`` = connection closed without a reply, ``malformed`` =
a 200 whose body is not JSON, ``timeout`` = the reply comes after ``hang`` seconds, ``garbage`` = a
well-formed reply whose text no agent parses); unknown model names get 404. Hostile kinds, for
hardening tests: ``echo401`` / ``echo400`` / ``echo404`` (an error whose message repeats the
request's Authorization header), ``echo_reply`` (a 200 whose text is that header), ``trickle``
(a correct reply sent one byte every ``trickle_interval`` seconds), ``bad_usage`` (non-integer
token counts), ``no_choices``, ``wrong_types`` (``text`` a number), ``not_object`` (a JSON list),
``deep`` (JSON nested 100,000 deep), ``empty`` (an empty 200), ``huge`` (a reply of
``huge_chars`` characters), ``nan_logprobs`` (a bare ``NaN`` among the logprobs), ``control``
(a reply with a NUL and a line separator), ``redirect`` (a 307 to ``redirect_to``).
``retry_after`` may be a string (sent verbatim: ``"inf"``, ``"1e9"``, an HTTP date, garbage).

Replies follow a known kernel over a small vocabulary: from state i (the last vocabulary word
of the prompt) the server answers j != i with probability ``move / (n-1) * min(1, exp(V_i - V_j))``
(a Metropolis chain, so log T(j<-i) - log T(i<-j) = V_i - V_j exactly), the state itself with
probability ``self_share`` of the remaining mass, and a word outside the vocabulary otherwise.
``echo=True`` with ``logprobs`` scores the continuation after the prompt's last ``->`` exactly, as
llama.cpp does with a real model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from aiohttp import web  # the HTTP layer; the replies, faults and kernel are this module's

INVALID_REPLY = "unicorn"  # not an animal of the built-in agent's vocabulary: an invalid rejection
GARBAGE_REPLY = "{{ %% ### }}"


@dataclass
class Script:
    """What the loopback server does (all fields JSON-able)."""

    latency: float = 0.0
    faults: dict = field(default_factory=dict)
    fail_first: int = 0  # the first requests all get fault ``fail_kind`` (deterministic scripts)
    fail_kind: str = "429"
    retry_after: float | str = 0.05
    hang: float = 5.0
    trickle_interval: float = 0.5
    huge_chars: int = 1_000_000
    redirect_to: str = ""  # the Location of a ``redirect`` fault (a 307)
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
        self.requests = 0
        self.faults: dict[str, int] = {}
        self.fields: set[str] = set()  # every request field seen (tests check pass-through)
        self.fault_rng = random.Random(script.seed)
        self.pattern = re.compile("|".join(rf"\b{re.escape(w)}\b" for w in script.vocabulary), re.I)

    def draw_fault(self) -> str | None:
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


Reply = tuple[int, bytes, dict]  # status, JSON body (possibly broken on purpose), extra headers


def _response(status: int, payload, headers: dict | None = None) -> Reply:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return status, body, headers or {}


def _hostile(st: _State, fault: str, auth: str, req: dict) -> Reply | None:
    """The reply of a hostile fault kind, or None when ``fault`` is not one."""
    model = req.get("model")
    common = {"id": "cmpl-h", "object": "text_completion", "created": 0, "model": model}
    if fault in ("echo401", "echo400", "echo404"):
        status = int(fault[4:])
        message = f"invalid credentials: {auth!r} was rejected (header Authorization: {auth})"
        return _response(status, {"error": {"message": message, "type": "echo"}})
    if fault == "echo_reply":
        choice = {"index": 0, "text": f" your key is {auth}", "finish_reason": "stop"}
        return _response(200, {**common, "choices": [choice]})
    if fault == "redirect":
        return _response(307, {}, {"Location": st.script.redirect_to})
    if fault == "control":
        choice = {"index": 0, "text": " ca\x00t\u2028", "finish_reason": "stop"}
        return _response(200, {**common, "choices": [choice]})
    if fault == "bad_usage":
        choice = {"index": 0, "text": " cat", "finish_reason": "stop"}
        usage = {"prompt_tokens": "many", "completion_tokens": [1], "total_tokens": None}
        return _response(200, {**common, "choices": [choice], "usage": usage})
    if fault == "no_choices":
        return _response(200, {**common, "choices": []})
    if fault == "wrong_types":
        return _response(200, {**common, "choices": [{"index": 0, "text": 42}]})
    if fault == "not_object":
        return _response(200, [1, 2, 3])
    if fault == "deep":
        return _response(200, b"[" * 100_000 + b"]" * 100_000)
    if fault == "empty":
        return _response(200, b"")
    if fault == "huge":
        choice = {"index": 0, "text": " cat" + "x" * st.script.huge_chars, "finish_reason": "stop"}
        return _response(200, {**common, "choices": [choice]})
    if fault == "nan_logprobs":
        lp = {
            "tokens": [" cat"],
            "token_logprobs": [math.nan],
            "top_logprobs": [{" cat": -math.inf}],
        }
        choice = {"index": 0, "text": " cat", "finish_reason": "stop", "logprobs": lp}
        return _response(200, {**common, "choices": [choice]})
    return None


def _not_found(path: str) -> Reply:
    return _response(404, {"error": {"message": f"no route {path}", "type": "not_found"}})


def _handle_get(st: _State, path: str) -> Reply:
    if path.rstrip("/").endswith("/models"):
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "loopback"}
            for m in st.script.models
        ]
        return _response(200, {"object": "list", "data": data})
    if path.startswith("/_stats"):
        stats = {"requests": st.requests, "faults": dict(st.faults), "fields": sorted(st.fields)}
        return _response(200, stats)
    if path.startswith("/health"):
        return _response(200, {"status": "ok"})
    return _not_found(path)


async def _handle_post(st: _State, path: str, body: bytes, auth: str = "") -> Reply | tuple | None:
    """The reply to a POST, None to drop the connection, or ``("trickle", reply)``."""
    script = st.script
    try:
        req = json.loads(body or b"{}")
    except json.JSONDecodeError:
        return _response(
            400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}}
        )
    st.fields.update(req)
    chat = path.rstrip("/").endswith("/chat/completions")
    if not chat and not path.rstrip("/").endswith("/completions"):
        return _not_found(path)
    if req.get("model") not in script.models:
        error = {
            "message": f"The model `{req.get('model')}` does not exist",
            "type": "invalid_request_error",
            "code": "model_not_found",
        }
        return _response(404, {"error": error})
    fault = st.draw_fault()
    if script.latency:
        await asyncio.sleep(script.latency)
    if fault == "429":
        return _response(
            429,
            {"error": {"message": "rate limited (scripted)", "type": "rate_limit"}},
            {
                "Retry-After": script.retry_after
                if isinstance(script.retry_after, str)
                else f"{script.retry_after:g}"
            },
        )
    if fault == "500":
        return _response(
            500, {"error": {"message": "internal error (scripted)", "type": "server_error"}}
        )
    if fault == "drop":
        return None
    if fault == "malformed":
        return _response(200, b'{"id": "cmpl-x", "choices": [{"text": ')
    if fault == "timeout":
        await asyncio.sleep(script.hang)
    hostile = _hostile(st, fault, auth, req) if fault else None
    if hostile is not None:
        return hostile
    if chat:
        prompt = "\n".join(
            str(m.get("content", "")) for m in req.get("messages", []) if m.get("role") == "user"
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
        reply = _response(200, {**common, "object": "chat.completion", "choices": [choice]})
        return ("trickle", reply) if fault == "trickle" else reply
    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": logprobs}
    reply = _response(200, {**common, "object": "text_completion", "choices": [choice]})
    return ("trickle", reply) if fault == "trickle" else reply


_STATE = web.AppKey("state", _State)


async def _handle(request: web.Request) -> web.StreamResponse:
    """Every route: GET (models, stats, health), POST (completions); scripted faults included."""
    st = request.app[_STATE]
    if request.method == "GET":
        reply = _handle_get(st, request.path_qs)
    elif request.method == "POST":
        body = await request.read()
        reply = await _handle_post(st, request.path, body, request.headers.get("Authorization", ""))
    else:
        reply = _response(404, {"error": {"message": f"no method {request.method}"}})
    if reply is None:  # a scripted drop: close the connection without a response
        request.transport.close()
        raise asyncio.CancelledError  # aiohttp ends a cancelled handler quietly, sending nothing
    if reply[0] == "trickle":  # the head at once, then the body a byte at a time
        status, body, headers = reply[1]
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_type = "application/json"
        resp.content_length = len(body)
        await resp.prepare(request)
        for i in range(len(body)):
            await asyncio.sleep(st.script.trickle_interval)
            await resp.write(body[i : i + 1])
        await resp.write_eof()
        return resp
    status, body, headers = reply
    return web.Response(status=status, body=body, headers=headers, content_type="application/json")


async def serve(script: Script, port: int = 0, ready=print) -> None:
    """Serve ``script`` on 127.0.0.1 (only) until cancelled; ``ready`` gets the bound port."""
    app = web.Application(client_max_size=2**26)  # no practical limit on request bodies
    app[_STATE] = _State(script)
    app.router.add_route("*", "/{tail:.*}", _handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    try:
        await web.SockSite(runner, sock, backlog=1024).start()
        ready(sock.getsockname()[1])
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()
        sock.close()


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


class ThreadedLoopbackServer(LoopbackServer):
    """The same server on an event loop in a thread of this process: starts in milliseconds.

    For tests that need many short-lived servers; the requests share this process's CPU, so use
    :class:`LoopbackServer` for benchmarks.
    """

    def start(self, timeout: float = 30.0) -> ThreadedLoopbackServer:
        import threading

        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def bound(port: int) -> None:
            self.port = port
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(serve(self.script, 0, bound))
            try:
                self._loop.run_until_complete(self._task)
            except (asyncio.CancelledError, Exception):
                pass
            finally:  # end the connections' tasks too, so their sockets close on a live loop
                pending = asyncio.all_tasks(self._loop)
                for task in pending:
                    task.cancel()
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self._loop.run_until_complete(asyncio.sleep(0))
                self._loop.close()

        self._thread = threading.Thread(target=run, name="loopback-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("loopback server did not start")
        return self

    def stop(self) -> None:
        thread = getattr(self, "_thread", None)
        if thread is not None and thread.is_alive():
            self._loop.call_soon_threadsafe(self._task.cancel)
            thread.join(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="loopback OpenAI-compatible test server (127.0.0.1 only)"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", default="{}", help="JSON object of Script fields")
    args = parser.parse_args(argv)
    script = Script(**json.loads(args.script))

    def ready(port: int) -> None:
        print(json.dumps({"port": port}), flush=True)  # LoopbackServer waits for this line

    try:
        asyncio.run(serve(script, args.port, ready))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
