"""The async collector: agent + OpenAI-compatible endpoint(s) -> attempt log.

Attempt ids are fixed by the design, so a resumed run knows exactly which attempts are done:
``budget`` gives attempt ``k`` the source ``sources[k % n]``; ``discovered`` (the paper's design)
draws attempt ``k``'s source uniformly, with a generator seeded by ``(seed, k)``, from the states
discovered so far (replayed from the log on resume); ``trajectory`` runs ``chains`` chains, attempt
``k`` being step ``k // chains`` of chain ``k % chains``, each step starting where the last one
ended. Each request also carries a seed derived from ``(seed, k)``, so a local model can reproduce
a run.

With ``processes > 1`` the requests (``Collector._call``: one attempt with its retries) run in
forked worker processes, each with its own event loop and clients and a share of the concurrency;
the parent keeps the design, the log (the only writer), the accounting and the progress bar, and
sends each worker ``(attempt, source)`` over a socket pair and gets the attempt's record back. A
worker holds a few attempts queued (a quarter of its share) beyond those in flight and starts one
the moment a request ends, as one process does; so a ``discovered`` source is drawn that much
earlier. After a fatal error the queued attempts are dropped unstarted.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as _dt
import json
import multiprocessing
import os
import pickle
import random
import re
import select
import signal
import socket
import struct
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ..errors import CollectionError
from .agents import Agent
from .log import AttemptLog
from .safety import (
    RETRY_AFTER_MAX,
    Redactor,
    check_endpoints,
    is_loopback,
    retry_after_seconds,
)

# A reply longer than this (characters) is stored cut to it, flagged ``"truncated": true``, and is
# an ``unparseable`` rejection: agents' replies are a few tokens, and parsing megabytes with a
# user's regular expression could take minutes.
MAX_REPLY_CHARS = 16384
# What a state name may not be (the readers refuse it: ``counts.check_state_names`` on the readers
# branch; use that once merged): longer than 4096 characters, or holding a control character, a
# line/paragraph separator or a lone surrogate. An agent's state like that is an ``invalid`` reply.
MAX_STATE_CHARS = 4096
_BAD_STATE_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def state_problem(state: str) -> str | None:
    """Why ``state`` cannot be a state name (None when it can)."""
    if len(state) > MAX_STATE_CHARS:
        return f"state of {len(state)} characters is longer than {MAX_STATE_CHARS}"
    bad = _BAD_STATE_CHAR.search(state)
    if bad:
        return f"state {state[:40]!r} contains the control character {bad.group()!r}"
    return None


DESIGNS = ("discovered", "budget", "trajectory")


@dataclass(frozen=True)
class RunConfig:
    """What defines a run's data (stored in the log's first line; must match on resume)."""

    agent: str
    template_hash: str
    api: str
    model: str
    design: str = "discovered"
    attempts: int = 100
    temperature: float = 1.0
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int = 0
    sources: tuple[str, ...] = ()
    chains: int = 1
    logprobs: int | None = None
    extra_body: dict | None = None  # server-specific sampling fields, e.g. {"top_k": 0}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d


@dataclass
class RunResult:
    """What a collection did (this session), with the log's totals."""

    path: str
    run_id: str
    attempts_requested: int
    attempts_done: int
    new_attempts: int = 0
    errors: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    states: int = 0
    outcomes: dict = field(default_factory=dict)

    def summary(self) -> str:
        out = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.path}: {self.attempts_done}/{self.attempts_requested} attempts done "
            f"({self.new_attempts} new in {self.wall_s:.1f} s; {out or 'none'}); "
            f"{self.states} states; {self.errors} failed after retries, {self.retries} retries; "
            f"tokens {self.prompt_tokens} prompt + "
            f"{self.completion_tokens} completion"
            + (f"; cost {self.cost:.4f}" if self.cost else "")
        )


__all__ = ["Collector", "RunConfig", "RunResult", "is_loopback", "MAX_REPLY_CHARS"]


def _tokens(value) -> int:
    """A usage count as reported, or 0 when it is not a non-negative integer (never a crash)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if 0 <= value < 2**53 else 0
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**53:
        return int(value)
    return 0


class Interrupted(CollectionError):
    """The run was stopped by SIGINT or SIGTERM (``signum``); the log is whole."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class _Fatal(Exception):
    """An error no retry can fix (unknown model, bad key, bad request)."""


class Collector:
    """Collect attempts of ``agent`` from one or more OpenAI-compatible endpoints.

    Parameters
    ----------
    agent : Agent
    config : RunConfig
    base_urls : sequence of str
        Requests go to the endpoint with the fewest requests in flight.
    concurrency : int
        Requests in flight at once (over all endpoints).
    api_key_env : str
        Environment variable holding the key; required unless every endpoint is on loopback.
    timeout : float
        Total seconds per request (connecting, waiting and reading the whole reply) before it
        counts as a timeout (and is retried).
    max_retries : int
        Retries per attempt on 429, 5xx, timeouts, dropped connections and malformed bodies.
    backoff, backoff_cap : float
        Exponential backoff ``backoff * 2**try`` (capped) with full jitter, unless the server sent
        Retry-After, which is honoured up to ``min(RETRY_AFTER_MAX, timeout)`` seconds.
    allow_insecure_key : bool
        Send the key over plain http to a host that is not loopback (refused otherwise).
    handle_signals : bool
        Stop cleanly on SIGINT/SIGTERM (raising :class:`Interrupted` with the log whole); for the
        main thread of a program that owns its signals, as the CLI does.
    price_prompt, price_completion : float
        Cost per million prompt / completion tokens, for the cost line.
    progress : bool
        Show a tqdm bar (rate, errors, tokens).
    processes : int
        Worker processes for the requests (:meth:`run` only; :meth:`arun` runs in the caller's
        loop). Each is forked before the event loop starts and runs ``concurrency // processes``
        (plus one for the first ``concurrency % processes``) requests at once with its own
        clients; everything else stays in this process. Helps when the client's CPU per request,
        not the server, limits the rate (many requests in flight, short latency). Needs the
        ``fork`` start method; elsewhere one process is used, with a warning.
    """

    def __init__(
        self,
        agent: Agent,
        config: RunConfig,
        base_urls: Sequence[str],
        *,
        concurrency: int = 8,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        price_prompt: float = 0.0,
        price_completion: float = 0.0,
        progress: bool = True,
        max_consecutive_errors: int | None = None,
        fsync_every: float = 1.0,
        processes: int = 1,
        allow_insecure_key: bool = False,
        handle_signals: bool = False,
    ):
        if config.design not in DESIGNS:
            raise CollectionError(
                f"unknown design {config.design!r}; use one of {', '.join(DESIGNS)}"
            )
        if not base_urls:
            raise CollectionError("give at least one --base-url")
        if concurrency < 1 or config.attempts < 0 or config.chains < 1 or processes < 1:
            raise CollectionError(
                "concurrency, chains and processes must be >= 1 and attempts >= 0"
            )
        if not (timeout > 0 and backoff >= 0 and backoff_cap >= 0) or max_retries < 0:
            raise CollectionError("timeout must be > 0, backoff >= 0 and max_retries >= 0")
        self.agent, self.config = agent, config
        self.base_urls = [u.rstrip("/") for u in base_urls]
        self.concurrency, self.timeout, self.max_retries = concurrency, timeout, max_retries
        self.backoff, self.backoff_cap = backoff, backoff_cap
        self.price_prompt, self.price_completion = price_prompt, price_completion
        self.progress, self.fsync_every = progress, fsync_every
        self.max_consecutive_errors = max_consecutive_errors or max(10, 2 * concurrency)
        self.handle_signals = handle_signals
        self.processes = min(processes, concurrency)
        if self.processes > 1 and "fork" not in multiprocessing.get_all_start_methods():
            print(
                "warning: several collection processes need the 'fork' start method, which this "
                "platform lacks; using one process",
                file=sys.stderr,
            )
            self.processes = 1
        self._pool: _Pool | None = None
        key = os.environ.get(api_key_env)
        check_endpoints(self.base_urls, key_set=bool(key), allow_insecure=allow_insecure_key)
        if not key:
            remote = [u for u in self.base_urls if not is_loopback(u)]
            if remote:
                raise CollectionError(
                    f"no API key: set the environment variable {api_key_env} (or name another with "
                    f"--api-key-env) for {remote[0]}"
                )
            key = "no-key-needed-on-loopback"
        self._key = key  # kept in memory only; never logged or stored
        self._redact = Redactor(key)

    # ---- public entry points -----------------------------------------------------------------
    def run(self, out: str, *, resume: bool = False) -> RunResult:
        """Collect into ``out`` (resuming it when asked); returns a :class:`RunResult`."""
        if self.processes == 1:
            return asyncio.run(self.arun(out, resume=resume))
        import openai  # noqa: F401  (imported once here, so the forked workers start in ms)

        t0, c0 = time.perf_counter(), time.process_time()
        self._pool = _Pool(self)  # forked now: before the event loop and its threads exist
        try:
            result = asyncio.run(self.arun(out, resume=resume))
        finally:
            pool, self._pool = self._pool, None
            pool.close()
        # this process from before the fork to after the join, plus the workers' own CPU
        result.wall_s = time.perf_counter() - t0
        result.cpu_s = time.process_time() - c0 + pool.cpu_s
        return result

    async def arun(self, out: str, *, resume: bool = False) -> RunResult:
        cfg = self.config
        log = AttemptLog(
            out, cfg.to_dict(), uuid.uuid4().hex[:12], resume=resume, fsync_every=self.fsync_every
        )
        self._log, self._run_id = log, log.run_id
        pool = self._pool
        try:
            clients = self._open_clients(1 if pool is not None else self.concurrency)
        except BaseException:
            log.close()
            raise
        t0, c0 = time.perf_counter(), time.process_time()
        result = RunResult(out, log.run_id, cfg.attempts, 0)
        self._result = result
        self._consecutive_errors = 0
        self._fatal: BaseException | None = None
        bar = None
        self._interrupted: int | None = None
        handled = self._catch_signals() if self.handle_signals else []
        try:
            try:
                await self._preflight()  # here, before any worker gets work
            except (CollectionError, asyncio.CancelledError):
                if log.created:  # nothing was collected: leave no file behind
                    log.discard()
                raise
            self._replay(log.records)
            result.attempts_done = len(self._done)
            todo = cfg.attempts - len(self._done & set(range(cfg.attempts)))
            if self.progress and todo > 0:
                from tqdm.auto import tqdm

                bar = tqdm(
                    total=cfg.attempts, initial=cfg.attempts - todo, unit="att", dynamic_ncols=True
                )
            self._bar = bar
            # With workers, a few attempts more than ``concurrency`` are handed out: each worker
            # keeps them queued and starts one the moment a request of its own ends (in flight
            # are still ``concurrency``), so no round trip to this process sits between the two.
            outstanding = self.concurrency + (pool.lookahead if pool is not None else 0)
            self._sem = asyncio.Semaphore(outstanding)
            if pool is not None:
                pool.attach(asyncio.get_running_loop(), log.run_id, result)
            if cfg.design == "trajectory":
                workers = [self._chain_worker(c) for c in range(cfg.chains)]
            else:
                self._pending = sorted(set(range(cfg.attempts)) - self._done, reverse=True)
                n = min(outstanding, max(1, len(self._pending)))
                workers = [self._worker() for _ in range(n)]
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            if self._interrupted is None:
                raise
        finally:
            if pool is not None:
                pool.detach()
            if bar is not None:
                bar.close()
            log.close()
            try:
                for client in clients:
                    await client.close()
            except asyncio.CancelledError:  # a signal during the cleanup: the cleanup is done
                if self._interrupted is None:
                    raise
            finally:
                self._release_signals(handled)  # last: a signal during the cleanup is still ours
            result.wall_s = time.perf_counter() - t0
            result.cpu_s = time.process_time() - c0
            result.attempts_done = (
                len(self._done & set(range(cfg.attempts))) if hasattr(self, "_done") else 0
            )
            result.states = len(getattr(self, "_discovered", []))
            result.cost = (
                result.prompt_tokens * self.price_prompt
                + result.completion_tokens * self.price_completion
            ) / 1e6
        if self._interrupted is not None:
            name = signal.Signals(self._interrupted).name
            where = (
                f"the log {log.path} is whole: rerun with --resume to continue"
                if os.path.exists(log.path)
                else "nothing was written"
            )
            raise Interrupted(
                f"interrupted by {name} after {result.new_attempts} new attempts; {where}",
                self._interrupted,
            )
        if self._fatal is not None:
            raise self._fatal
        return result

    def _catch_signals(self) -> list:
        """SIGINT/SIGTERM cancel the run's task: requests in flight end, the log is closed whole."""
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def stop(signum: int) -> None:
            if self._interrupted is None:  # the first signal stops; a second one is ignored
                self._interrupted = signum
                task.cancel()

        handled = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            try:
                loop.add_signal_handler(signum, stop, signum)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                continue
            handled.append((signum, previous))
        return handled

    def _release_signals(self, handled: list) -> None:
        loop = asyncio.get_running_loop()
        for signum, previous in handled:
            loop.remove_signal_handler(signum)
            # once interrupted, the program is ending: a second Ctrl-C must not cut its cleanup
            signal.signal(signum, signal.SIG_IGN if self._interrupted else previous)

    def _open_clients(self, concurrency: int) -> list:
        import openai

        # Several clients per endpoint: httpcore scans its whole pool on every request, so small
        # pools (<= 16 connections each) cost less CPU per attempt than one big pool.
        shards = max(1, -(-concurrency // (16 * len(self.base_urls))))
        self._client_url = [u for u in self.base_urls for _ in range(shards)]
        self._clients = [
            openai.AsyncOpenAI(base_url=u, api_key=self._key, max_retries=0, timeout=self.timeout)
            for u in self._client_url
        ]
        self._in_flight = [0] * len(self._clients)
        return self._clients

    # ---- checks before the first call --------------------------------------------------------
    async def _preflight(self) -> None:
        import openai

        checked = set()
        for url, client in zip(self._client_url, self._clients, strict=True):
            if url in checked:
                continue
            checked.add(url)
            try:
                async with asyncio.timeout(min(self.timeout, 10.0)):
                    models = await client.models.list(timeout=min(self.timeout, 10.0))
                ids = [m.id for m in models.data if isinstance(getattr(m, "id", None), str)]
            except (openai.APIConnectionError, openai.APITimeoutError, TimeoutError):
                raise CollectionError(
                    f"cannot reach {url}: is the server running? "
                    + (
                        "(nothing was written)"
                        if self._log.created
                        else f"(the log {self._log.path} is intact)"
                    )
                ) from None
            except openai.AuthenticationError:
                raise CollectionError(f"{url} refused the API key (HTTP 401)") from None
            except (
                openai.APIStatusError,
                openai.APIResponseValidationError,
                TypeError,
                AttributeError,
                ValueError,
                RecursionError,
            ):
                continue  # some servers have no (or an odd) /models; the first call will tell
            if ids and self.config.model not in ids:
                shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
                raise CollectionError(
                    f"model {self.config.model!r} is not served by {url} (it serves: {shown})"
                )

    # ---- designs: which source does attempt k use --------------------------------------------
    def _replay(self, records: list[dict]) -> None:
        """Recover done attempts and the design's state from the log (last record of an id wins)."""
        last: dict[int, dict] = {}
        for rec in records:
            last[int(rec["attempt"])] = rec
        self._done = {k for k, r in last.items() if r.get("outcome") != "error"}
        seeds = list(self.config.sources or self.agent.seeds)
        if not seeds:
            raise CollectionError(f"agent {self.agent.name!r} has no seed states; give --sources")
        self._seeds = seeds
        self._discovered = list(dict.fromkeys(seeds))
        self._known = set(self._discovered)
        for rec in records:  # discovery order = log order, as in the original run
            if rec.get("outcome") == "transition":
                self._discover(rec["target"])
        self._chain_state: dict[int, tuple[int, str]] = {}
        if self.config.design == "trajectory":
            c = self.config.chains
            for chain in range(c):
                step, state = 0, seeds[chain % len(seeds)]
                while step * c + chain in self._done:  # done steps of a chain form a prefix
                    rec = last[step * c + chain]
                    state = rec["target"] if rec["outcome"] in ("transition", "self") else state
                    step += 1
                self._chain_state[chain] = (step, state)

    def _discover(self, state: str) -> None:
        if state not in self._known:
            self._known.add(state)
            self._discovered.append(state)

    def _source(self, k: int) -> str:
        if self.config.design == "budget":
            return self._seeds[k % len(self._seeds)]
        rng = random.Random(self.config.seed * 1_000_003 + k)
        return self._discovered[rng.randrange(len(self._discovered))]

    # ---- workers -----------------------------------------------------------------------------
    async def _worker(self) -> None:
        while self._pending and self._fatal is None:
            k = self._pending.pop()
            await self._attempt(k, self._source(k))

    async def _chain_worker(self, chain: int) -> None:
        c = self.config.chains
        step, state = self._chain_state[chain]
        while step * c + chain < self.config.attempts and self._fatal is None:
            rec = await self._attempt(step * c + chain, state)
            if rec is None or rec["outcome"] == "error":
                return  # a chain cannot skip a step; --resume continues it from here
            if rec["outcome"] in ("transition", "self"):
                state = rec["target"]
            step += 1

    async def _attempt(self, k: int, source: str) -> dict | None:
        async with self._sem:
            if self._fatal is not None:
                return None
            try:
                if self._pool is None:
                    rec = await self._call(k, source)
                else:  # the same _call, in a worker process
                    rec = await self._pool.call(k, source)
            except _Fatal as exc:
                self._stop(CollectionError(f"{exc} (the log {self._log.path} is intact)"))
                return None
            if rec is None:  # a worker dropped it unstarted: the run is stopping
                return None
            try:
                self._log.append(rec)
            except CollectionError as exc:
                self._stop(exc)
                return None
            self._account(rec)
            return rec

    def _stop(self, exc: BaseException) -> None:
        """Start no more attempts; ``exc`` is raised when those in flight have ended."""
        self._fatal = exc
        if self._pool is not None:
            self._pool.drain()  # the workers drop the attempts they hold queued, unstarted

    def _account(self, rec: dict) -> None:
        r = self._result
        r.outcomes[rec["outcome"]] = r.outcomes.get(rec["outcome"], 0) + 1
        r.prompt_tokens += rec["prompt_tokens"]
        r.completion_tokens += rec["completion_tokens"]
        if rec["outcome"] == "error":
            r.errors += 1
            self._consecutive_errors += 1
            if self._consecutive_errors >= self.max_consecutive_errors and self._fatal is None:
                self._stop(
                    CollectionError(
                        f"{self._consecutive_errors} attempts in a row failed after retries "
                        f"(last: {rec['reason']}); "
                        f"stopping. The log {self._log.path} is intact: rerun with --resume"
                    )
                )
        else:
            r.new_attempts += 1
            self._consecutive_errors = 0
            self._done.add(rec["attempt"])
            if rec["outcome"] == "transition":
                self._discover(rec["target"])
        if self._bar is not None:
            if rec["outcome"] != "error":
                self._bar.update(1)
            self._bar.set_postfix(
                states=len(self._discovered),
                err=r.errors,
                retry=r.retries,
                tok=r.prompt_tokens + r.completion_tokens,
                refresh=False,
            )

    # ---- one request with retries ------------------------------------------------------------
    def _pick_client(self, avoid: int | None) -> int:
        # after a failure, prefer another endpoint; otherwise the least busy client
        url = self._client_url[avoid] if avoid is not None else None
        return min(
            range(len(self._clients)),
            key=lambda i: (self._client_url[i] == url, self._in_flight[i]),
        )

    async def _request(self, client, source: str, k: int):
        import httpx2

        cfg, agent = self.config, self.agent
        body = {
            "model": cfg.model,
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens or agent.max_tokens,
            "seed": (cfg.seed * 1_000_003 + k) % 2**31,
        }
        if cfg.top_p is not None:
            body["top_p"] = cfg.top_p
        if agent.stop:
            body["stop"] = list(agent.stop)
        if agent.api == "chat":
            messages = []
            if agent.system():
                messages.append({"role": "system", "content": agent.system()})
            messages.append({"role": "user", "content": agent.prompt(source)})
            body["messages"] = messages
            if cfg.logprobs:
                body.update(logprobs=True, top_logprobs=cfg.logprobs)
        else:
            body["prompt"] = agent.prompt(source)
            if cfg.logprobs:
                body["logprobs"] = cfg.logprobs
        body.update(cfg.extra_body or {})
        # The client's own POST (auth, headers, timeouts, error classes) with a plain JSON body
        # and the raw reply: the typed ``create`` wrappers re-walk the parameters against their
        # TypedDicts and build pydantic models, about a quarter of the client's CPU per attempt
        # for nothing (these parameters need no transformation; logprobs are stored as JSON).
        path = "/chat/completions" if agent.api == "chat" else "/completions"
        raw = await client.post(
            path, body=body, cast_to=httpx2.Response, options={"security": {"bearer_auth": True}}
        )
        # Everything in the reply is checked: a field of the wrong type is a ValueError, which
        # _call retries as a malformed body (never a crash).
        data = json.loads(raw.content)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ValueError("reply without choices")
        choice = choices[0]
        if agent.api == "chat":
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        else:
            text = choice.get("text")
        text = "" if text is None else text
        if not isinstance(text, str):
            raise ValueError("reply text is not a string")
        lp = choice.get("logprobs") if cfg.logprobs else None
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return (
            text,
            lp,
            _tokens(usage.get("prompt_tokens")),
            _tokens(usage.get("completion_tokens")),
        )

    async def _call(self, k: int, source: str) -> dict:
        import openai

        cfg = self.config
        avoid, reason, text = None, None, None
        t_start = time.perf_counter()
        for attempt_try in range(self.max_retries + 1):
            i = self._pick_client(avoid)
            self._in_flight[i] += 1
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout):  # a total deadline, not per read
                    text, lp, n_prompt, n_completion = await self._request(
                        self._clients[i], source, k
                    )
                break
            except openai.NotFoundError as exc:
                raise _Fatal(
                    f"{self._client_url[i]}: {self._message(exc)} "
                    f"(is model {cfg.model!r} served there?)"
                ) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise _Fatal(
                    f"{self._client_url[i]} refused the request: {self._message(exc)}"
                ) from None
            except openai.BadRequestError as exc:
                raise _Fatal(
                    f"{self._client_url[i]} rejected the request as bad: {self._message(exc)}"
                ) from None
            except (
                openai.RateLimitError,
                openai.InternalServerError,
                openai.APIStatusError,
            ) as exc:
                wait = retry_after_seconds(
                    exc.response.headers, cap=min(RETRY_AFTER_MAX, self.timeout)
                )
                reason = f"HTTP {exc.status_code}"
            except (openai.APITimeoutError, TimeoutError):
                reason, wait = f"timeout after {self.timeout:g} s", None
            except openai.APIConnectionError as exc:
                reason, wait = f"connection failed ({self._message(exc)})", None
            except (
                openai.APIResponseValidationError,
                ValueError,
                AttributeError,
                IndexError,
                KeyError,
                TypeError,
                RecursionError,  # JSON nested too deeply
            ):
                reason, wait = "malformed response body", None
            finally:
                self._in_flight[i] -= 1
            avoid = i if len(self.base_urls) > 1 else None
            if attempt_try == self.max_retries:
                break
            self._result.retries += 1
            if wait is None:  # full jitter on an exponential scale
                wait = random.uniform(0.5, 1.0) * min(
                    self.backoff_cap, self.backoff * 2**attempt_try
                )
            await asyncio.sleep(wait)
        rec = {
            "kind": "attempt",
            "run_id": self._run_id,
            "attempt": k,
            "source": source,
            "target": None,
            "outcome": "error",
            "reason": None,
            "raw": None,
            "model": cfg.model,
            "temperature": cfg.temperature,
            "template_hash": cfg.template_hash,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "latency_s": 0.0,
            "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
            "logprobs": None,
        }
        if text is None:  # every try failed
            rec.update(
                reason=self._redact.message(f"{reason}, {self.max_retries} retries"),
                latency_s=round(time.perf_counter() - t_start, 4),
            )
            return rec
        text = self._redact.exact(text)  # a server that echoes the key: not into the log
        if len(text) > MAX_REPLY_CHARS:
            outcome, target = "unparseable", None
            reason = f"reply of {len(text)} characters is longer than {MAX_REPLY_CHARS}"
            rec["truncated"] = True
            text = text[:MAX_REPLY_CHARS]
        else:
            parsed = self.agent.parse(text)
            reason = parsed.reason
            problem = state_problem(parsed.state) if parsed.state is not None else None
            if problem:
                outcome, target, reason = "invalid", None, problem
            elif parsed.state is None:
                outcome, target = parsed.outcome, None
            else:
                outcome = "self" if parsed.state == source else "transition"
                target = parsed.state
        rec.update(
            target=target,
            outcome=outcome,
            reason=reason,
            raw=text,
            prompt_tokens=n_prompt,
            completion_tokens=n_completion,
            latency_s=round(time.perf_counter() - t0, 4),
            logprobs=lp,
        )
        return rec

    def _message(self, exc) -> str:
        """The server's error message, without the key or anything like a token."""
        return self._redact.message(_message(exc))

    # ---- worker process side -----------------------------------------------------------------
    async def _serve(self, conn, concurrency: int) -> None:
        """A worker's loop: ``concurrency`` runners doing ``_call`` for attempts the parent sends.

        Messages in: ``("init", run_id)``, ``("call", k, source)`` (queued; a runner that ends
        an attempt starts the next queued one at once), ``("drain",)`` (drop the queued ones,
        answering ``("skip", k)``), ``("stop",)``. Out: ``("rec", k, record, retries so far)``,
        ``("fatal", k, message)``, ``("crash", k, traceback)``, and last ``("bye", cpu seconds,
        retries)``. EOF (the parent died) ends it too.
        """
        loop = asyncio.get_running_loop()
        self._open_clients(concurrency)
        self._result = RunResult("", "", 0, 0)  # only ``retries`` is used here
        self._run_id = ""
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
                    rec = await self._call(k, source)
                except _Fatal as exc:
                    send(("fatal", k, str(exc)))
                    drop_queued()  # as the parent will ask: start nothing after a fatal error
                except Exception:
                    send(("crash", k, traceback.format_exc(limit=8)))
                else:
                    send(("rec", k, rec, self._result.retries))

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
                    self._run_id = msg[1]
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
            for client in self._clients:
                await client.close()
        if not parent_gone:
            send(("bye", time.process_time(), self._result.retries))


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


def _worker_main(collector: Collector, concurrency: int, conn, inherited: list) -> None:
    """Entry point of a forked worker process."""
    for other in inherited:  # the parent's ends (ours and earlier workers'): EOF must reach us
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the CLI's handler inherited by fork
    try:
        asyncio.run(collector._serve(conn, concurrency))
    finally:
        conn.close()


class _Pool:
    """The parent's side of the worker processes: forks them, routes attempts, stops them."""

    def __init__(self, collector: Collector):
        ctx = multiprocessing.get_context("fork")
        n, c = collector.processes, collector.concurrency
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
                        args=(collector, share, theirs, [*self.conns, mine]),
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
            raise _Fatal(f"the collection worker processes stopped ({self._lost[0]})")
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
                fut.set_exception(_Fatal(msg[2]))
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
                fut.set_exception(_Fatal(f"collection {self._lost[w]}; rerun with --resume"))

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


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(exc, "message", None) or exc).splitlines()[0][:200]
