"""The multi-process request pool of ``Collector(processes=N)``.

The requests (:meth:`Requests.call`: one attempt with its retries) run in forked worker processes,
each with its own event loop and clients and a share of the concurrency; the parent keeps the
design, the log (the only writer), the accounting and the progress bar, and sends each worker
``(attempt, source)`` over a socket pair and gets the attempt's record back. A worker holds a few
attempts queued (a quarter of its share) beyond those in flight and starts one the moment a
request ends, as one process does; so a ``discovered`` source is drawn that much earlier. After a
fatal error the queued attempts are dropped unstarted.
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing
import pickle
import select
import signal
import socket
import struct
import time
import traceback

from ._config import RunResult
from ._requests import Fatal, Requests


async def _serve(requests: Requests, conn, concurrency: int) -> None:
    """A worker's loop: ``concurrency`` runners doing ``_call`` for attempts the parent sends.

    Messages in: ``("init", run_id)``, ``("call", k, source)`` (queued; a runner that ends
    an attempt starts the next queued one at once), ``("drain",)`` (drop the queued ones,
    answering ``("skip", k)``), ``("stop",)``. Out: ``("rec", k, record, retries so far)``,
    ``("fatal", k, message)``, ``("crash", k, traceback)``, and last ``("bye", cpu seconds,
    retries)``. EOF (the parent died) ends it too.
    """
    loop = asyncio.get_running_loop()
    requests.open(concurrency)
    queue: collections.deque[tuple[int, str]] = collections.deque()
    work = asyncio.Event()  # set when the queue got something (or on stop)
    ended = asyncio.Event()
    parent_gone = False

    def send(msg) -> None:
        nonlocal parent_gone
        try:
            conn.send(msg)
        except OSError:  # the parent closed its end or died
            parent_gone = True
            ended.set()
            work.set()

    def drop_queued() -> None:
        while queue:
            send(("skip", queue.popleft()[0]))

    async def runner() -> None:
        while not ended.is_set():
            if not queue:
                work.clear()
                await work.wait()
                continue
            k, source = queue.popleft()
            try:
                rec = await requests.call(k, source)
            except Fatal as exc:
                send(("fatal", k, str(exc)))
                drop_queued()  # as the parent will ask: start nothing after a fatal error
            except Exception:
                send(("crash", k, traceback.format_exc(limit=8)))
            else:
                send(("rec", k, rec, requests.result.retries))

    def readable() -> None:
        nonlocal parent_gone
        try:
            messages = conn.receive()
        except (EOFError, OSError):
            parent_gone, messages = True, [("stop",)]
        for msg in messages:
            if msg[0] == "call":
                queue.append((msg[1], msg[2]))
                work.set()
            elif msg[0] == "init":
                requests.run_id = msg[1]
            elif msg[0] == "drain":
                drop_queued()
            elif msg[0] == "stop":
                ended.set()
                work.set()
                break

    runners = [loop.create_task(runner()) for _ in range(concurrency)]
    loop.add_reader(conn.fileno(), readable)
    try:
        await ended.wait()
    finally:
        loop.remove_reader(conn.fileno())
        for task in runners:
            task.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await requests.close()
    if not parent_gone:
        send(("bye", time.process_time(), requests.result.retries))


class _Channel:
    """One end of a socketpair carrying length-prefixed pickles of small tuples.

    Sends block (what is outstanding is a few KB, far below the socket buffer); :meth:`receive`
    never blocks: one ``recv`` of what is there, and every message completed by it.
    """

    def __init__(self, sock: socket.socket):
        self.sock, self._buf = sock, bytearray()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, msg) -> None:
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        self.sock.sendall(struct.pack("!I", len(data)) + data)

    def receive(self) -> list:
        """Messages now complete; ``EOFError`` once the other end is closed."""
        try:
            chunk = self.sock.recv(1 << 18, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return []
        if not chunk:
            raise EOFError
        buf = self._buf
        buf += chunk
        out, pos = [], 0
        while len(buf) - pos >= 4:
            (size,) = struct.unpack_from("!I", buf, pos)
            if len(buf) - pos - 4 < size:
                break
            out.append(pickle.loads(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        del buf[:pos]
        return out

    def wait(self, timeout: float) -> bool:
        return bool(select.select([self.sock], [], [], max(0.0, timeout))[0])

    def close(self) -> None:
        self.sock.close()


def _worker_main(requests: Requests, concurrency: int, conn, inherited: list) -> None:
    """Entry point of a forked worker process."""
    for other in inherited:  # the parent's ends (ours and earlier workers'): EOF must reach us
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the CLI's handler inherited by fork
    try:
        asyncio.run(_serve(requests, conn, concurrency))
    finally:
        conn.close()


class Pool:
    """The parent's side of the worker processes: forks them, routes attempts, stops them."""

    def __init__(self, requests: Requests, processes: int, concurrency: int):
        ctx = multiprocessing.get_context("fork")
        n, c = processes, concurrency
        self.capacity = [c // n + (w < c % n) for w in range(n)]
        # attempts a worker holds beyond its requests in flight (see Collector.arun)
        self.ahead = [max(1, share // 4) for share in self.capacity]
        self.lookahead = sum(self.ahead)
        self.conns: list = []
        self.procs: list = []
        self.cpu_s = 0.0
        self._loop = None
        try:
            for w, share in enumerate(self.capacity):
                mine, theirs = (_Channel(x) for x in socket.socketpair())
                try:
                    proc = ctx.Process(
                        target=_worker_main,
                        args=(requests, share, theirs, [*self.conns, mine]),
                        name=f"collect-worker-{w}",
                        daemon=True,  # multiprocessing's exit handler ends it if all else fails
                    )
                    proc.start()
                except BaseException:
                    mine.close()
                    raise
                finally:
                    theirs.close()  # the worker's end: only the worker holds it now
                self.conns.append(mine)
                self.procs.append(proc)
        except BaseException:
            self.close()
            raise

    # -- inside the parent's event loop
    def attach(self, loop, run_id: str, result: RunResult) -> None:
        self._loop, self._result = loop, result
        n = len(self.conns)
        self._futures: list[dict[int, asyncio.Future]] = [{} for _ in range(n)]
        self._retries = [0] * n
        self._lost: list[str | None] = [None] * n
        for w, conn in enumerate(self.conns):
            try:
                conn.send(("init", run_id))
            except OSError:
                self._lose(w)
                continue
            loop.add_reader(conn.fileno(), self._readable, w)

    def detach(self) -> None:
        if self._loop is None:
            return
        for w, conn in enumerate(self.conns):
            if self._lost[w] is None:
                self._loop.remove_reader(conn.fileno())
        self._loop = None

    async def call(self, k: int, source: str) -> dict:
        """Attempt ``k`` from ``source`` in the worker with the most free slots."""
        live = [w for w in range(len(self.conns)) if self._lost[w] is None]
        if not live:
            raise Fatal(f"the collection worker processes stopped ({self._lost[0]})")
        w = max(live, key=lambda i: self.capacity[i] + self.ahead[i] - len(self._futures[i]))
        fut = self._loop.create_future()
        self._futures[w][k] = fut
        try:
            self.conns[w].send(("call", k, source))
        except OSError:
            self._lose(w)
        try:
            return await fut
        finally:
            self._futures[w].pop(k, None)

    def drain(self) -> None:
        """Ask every worker to drop (answer ``skip`` for) the attempts it has not started."""
        for w, conn in enumerate(self.conns):
            if self._lost[w] is None:
                try:
                    conn.send(("drain",))
                except OSError:
                    self._lose(w)

    def _readable(self, w: int) -> None:
        try:
            messages = self.conns[w].receive()
        except (EOFError, OSError):
            self._lose(w)
            return
        for msg in messages:
            if msg[0] == "rec":  # the worker's retries so far, this attempt's included
                self._result.retries += msg[3] - self._retries[w]
                self._retries[w] = msg[3]
            fut = self._futures[w].pop(msg[1], None) if msg[0] != "bye" else None
            if fut is None or fut.done():
                continue
            if msg[0] == "rec":
                fut.set_result(msg[2])
            elif msg[0] == "skip":
                fut.set_result(None)
            elif msg[0] == "fatal":
                fut.set_exception(Fatal(msg[2]))
            else:  # "crash": a bug, not a fault of the endpoint
                fut.set_exception(RuntimeError(f"collection worker {w} failed:\n{msg[2]}"))

    def _lose(self, w: int) -> None:
        if self._lost[w] is not None:
            return
        proc = self.procs[w]
        proc.join(0.5)
        self._lost[w] = f"worker process {proc.pid} ended (exit code {proc.exitcode})"
        if self._loop is not None:
            self._loop.remove_reader(self.conns[w].fileno())
        for fut in self._futures[w].values():
            if not fut.done():
                fut.set_exception(Fatal(f"collection {self._lost[w]}; rerun with --resume"))

    # -- after the event loop
    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers (bounded by ``timeout``), collect their CPU time and join them."""
        for conn in self.conns:
            try:
                conn.send(("stop",))
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for conn in self.conns:
            try:
                bye = False
                while not bye and conn.wait(deadline - time.monotonic()):  # bounded by deadline
                    for msg in conn.receive():  # late records of a stopped run are dropped
                        if msg[0] == "bye":
                            self.cpu_s += msg[1]
                            bye = True
            except (EOFError, OSError):
                pass
            conn.close()  # EOF for a worker that did not get "stop"
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
