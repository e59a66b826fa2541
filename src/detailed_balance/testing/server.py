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
``echo=True`` with ``logprobs=k`` scores the continuation after the prompt's last ``->``
exactly, as llama.cpp does with a real model, with the top ``k`` logprobs of each position; after
a reply word the next token is one of ``after_reply`` (default ``"\\n"`` 0.6, ``"\\n\\n"`` 0.3,
``","`` 0.1), so a scored kernel is the Metropolis kernel times the stop tokens' total, 0.9
(``top_logprobs=False``: no top logprobs, as some servers echo).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from dataclasses import asdict

from aiohttp import web  # the HTTP layer; the replies, faults and kernel are this package's

from ._replies import reply_to_get, reply_to_post, response
from ._script import GARBAGE_REPLY, INVALID_REPLY, Script, ServerState

__all__ = [
    "GARBAGE_REPLY",
    "INVALID_REPLY",
    "LoopbackServer",
    "Script",
    "ThreadedLoopbackServer",
    "main",
    "serve",
]

_STATE = web.AppKey("state", ServerState)


async def _handle(request: web.Request) -> web.StreamResponse:
    """Every route: GET (models, stats, health), POST (completions); scripted faults included."""
    st = request.app[_STATE]
    if request.method == "GET":
        reply = reply_to_get(st, request.path_qs)
    elif request.method == "POST":
        body = await request.read()
        auth = request.headers.get("Authorization", "")
        reply = await reply_to_post(st, request.path, body, auth)
    else:
        reply = response(404, {"error": {"message": f"no method {request.method}"}})
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
    """Serve ``script`` on 127.0.0.1 (only) until cancelled; ``ready`` gets the bound port.

    Parameters
    ----------
    script : Script
        How the server behaves.
    port : int
        Port to bind; 0 picks a free one.
    ready : callable
        Called with the bound port once the server accepts connections.
    """
    app = web.Application(client_max_size=2**26)  # no practical limit on request bodies
    app[_STATE] = ServerState(script)
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
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()  # the pipe the port came through (else a ResourceWarning)

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
    """Run the loopback server from the command line.

    Parameters
    ----------
    argv : list of str, optional
        ``--port`` (0: any free port) and ``--script`` (a JSON object of :class:`Script` fields).

    Returns
    -------
    int
        The exit status.
    """
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
