"""The async collector: agent + OpenAI-compatible endpoint(s) -> attempt log.

The run loop: opens the log, replays it into the design (:mod:`._designs`), keeps ``concurrency``
attempts in flight (:mod:`._requests`), appends each record to the log as it ends, keeps the
accounting and the progress bar, and stops cleanly on a fatal error, too many errors in a row, or
SIGINT/SIGTERM (the log always whole).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Sequence

from ..errors import CollectionError
from ._config import RunConfig, RunResult
from ._designs import Design, check_design
from ._requests import Fatal, Requests
from .agents import Agent
from .log import AttemptLog
from .safety import check_endpoints, is_loopback


class Interrupted(CollectionError):
    """The run was stopped by SIGINT or SIGTERM (``signum``); the log is whole."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


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
        allow_insecure_key: bool = False,
        handle_signals: bool = False,
    ):
        check_design(config.design)
        if not base_urls:
            raise CollectionError("give at least one --base-url")
        if concurrency < 1 or config.attempts < 0 or config.chains < 1:
            raise CollectionError("concurrency and chains must be >= 1 and attempts >= 0")
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
        self._requests = Requests(
            agent,
            config,
            self.base_urls,
            key,  # kept in memory only; never logged or stored
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            backoff_cap=backoff_cap,
        )

    # ---- public entry points -----------------------------------------------------------------
    def run(self, out: str, *, resume: bool = False) -> RunResult:
        """Collect into ``out`` (resuming it when asked); returns a :class:`RunResult`."""
        return asyncio.run(self.arun(out, resume=resume))

    async def arun(self, out: str, *, resume: bool = False) -> RunResult:
        cfg = self.config
        log = AttemptLog(
            out, cfg.to_dict(), uuid.uuid4().hex[:12], resume=resume, fsync_every=self.fsync_every
        )
        self._log = log
        requests = self._requests
        try:
            requests.open(self.concurrency)
        except BaseException:
            log.close()
            raise
        t0, c0 = time.perf_counter(), time.process_time()
        result = RunResult(out, log.run_id, cfg.attempts, 0)
        self._result = requests.result = result
        requests.run_id = log.run_id
        self._consecutive_errors = 0
        self._fatal: BaseException | None = None
        bar = None
        self._interrupted: int | None = None
        handled = self._catch_signals() if self.handle_signals else []
        try:
            try:
                await requests.preflight(
                    "nothing was written" if log.created else f"the log {log.path} is intact"
                )
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
            self._sem = asyncio.Semaphore(self.concurrency)
            if self._design.name == "trajectory":
                workers = [self._chain_worker(c) for c in range(cfg.chains)]
            else:
                self._pending = sorted(set(range(cfg.attempts)) - self._done, reverse=True)
                n = min(self.concurrency, max(1, len(self._pending)))
                workers = [self._worker() for _ in range(n)]
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            if self._interrupted is None:
                raise
        finally:
            if bar is not None:
                bar.close()
            log.close()
            try:
                await requests.close()
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
            result.states = len(self._design.discovered) if hasattr(self, "_design") else 0
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

    def _replay(self, records: list[dict]) -> None:
        """Recover done attempts and the design's state from the log."""
        seeds = list(self.config.sources or self.agent.seeds)
        if not seeds:
            raise CollectionError(f"agent {self.agent.name!r} has no seed states; give --sources")
        cfg = self.config
        self._design = Design(cfg.design, seeds, seed=cfg.seed, chains=cfg.chains)
        self._done = self._design.replay(records)

    # ---- workers -----------------------------------------------------------------------------
    async def _worker(self) -> None:
        while self._pending and self._fatal is None:
            k = self._pending.pop()
            await self._attempt(k, self._design.source(k))

    async def _chain_worker(self, chain: int) -> None:
        c = self.config.chains
        step, state = self._design.chain_start(chain)
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
                rec = await self._requests.call(k, source)
            except Fatal as exc:
                self._stop(CollectionError(f"{exc} (the log {self._log.path} is intact)"))
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
                self._design.discover(rec["target"])
        if self._bar is not None:
            if rec["outcome"] != "error":
                self._bar.update(1)
            self._bar.set_postfix(
                states=len(self._design.discovered),
                err=r.errors,
                retry=r.retries,
                tok=r.prompt_tokens + r.completion_tokens,
                refresh=False,
            )
