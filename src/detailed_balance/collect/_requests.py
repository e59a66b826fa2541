"""The HTTP side of a collection: one attempt's request, its retries and backoff, the reply parsed.

:class:`Requests` holds the clients of the run's endpoints and turns ``(attempt, source)`` into an
:class:`~detailed_balance.attempts.AttemptRecord`: it builds the request body, sends it with a
total deadline, retries what a retry can fix (429, 5xx, timeouts, dropped connections, malformed
bodies) with exponential backoff or the server's ``Retry-After``, checks every field of the
reply, and has the agent parse the text. Errors no retry can fix raise :class:`Fatal`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence

from ..attempts import MAX_REPLY_CHARS, AttemptRecord, attempt_record, state_problem
from ..errors import CollectionError
from ._config import RunConfig, RunResult
from ._designs import request_seed
from .agents import Agent
from .safety import RETRY_AFTER_MAX, Redactor, retry_after_seconds


class Fatal(Exception):
    """An error no retry can fix (unknown model, bad key, bad request)."""


def _tokens(value) -> int:
    """A usage count as reported, or 0 when it is not a non-negative integer (never a crash)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if 0 <= value < 2**53 else 0
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**53:
        return int(value)
    return 0


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(exc, "message", None) or exc).splitlines()[0][:200]


class Requests:
    """Requests of one run to its endpoints (see the module docstring).

    ``run_id`` goes into every record; ``result.retries`` counts the retries (the collector
    shares its :class:`RunResult`). Parameters are the :class:`Collector`'s of the same names.
    """

    def __init__(
        self,
        agent: Agent,
        config: RunConfig,
        base_urls: Sequence[str],
        key: str,
        *,
        timeout: float,
        max_retries: int,
        backoff: float,
        backoff_cap: float,
    ):
        self.agent, self.config, self.base_urls = agent, config, list(base_urls)
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff, self.backoff_cap = backoff, backoff_cap
        self._key = key  # kept in memory only; never logged or stored
        self._redact = Redactor(key)
        self.run_id = ""
        self.result = RunResult("", "", 0, 0)  # only ``retries`` is used here
        self._clients: list = []

    def open(self, concurrency: int) -> None:
        """Open the clients for ``concurrency`` requests in flight."""
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

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    # ---- checks before the first call --------------------------------------------------------
    async def preflight(self, unreachable_note: str) -> None:
        """Check each endpoint answers and serves the model (where its ``/models`` says).

        ``unreachable_note`` ends the message when an endpoint cannot be reached.
        """
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
                    f"cannot reach {url}: is the server running? ({unreachable_note})"
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

    # ---- one request with retries ------------------------------------------------------------
    def _pick_client(self, avoid: int | None) -> int:
        # after a failure, prefer another endpoint; otherwise the least busy client
        url = self._client_url[avoid] if avoid is not None else None
        return min(
            range(len(self._clients)),
            key=lambda i: (self._client_url[i] == url, self._in_flight[i]),
        )

    def _body(self, source: str, k: int) -> dict:
        cfg, agent = self.config, self.agent
        body = {
            "model": cfg.model,
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens or agent.max_tokens,
            "seed": request_seed(cfg.seed, k),
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
        return body

    async def _request(self, client, source: str, k: int):
        import httpx2

        # The client's own POST (auth, headers, timeouts, error classes) with a plain JSON body
        # and the raw reply: the typed ``create`` wrappers re-walk the parameters against their
        # TypedDicts and build pydantic models, about a quarter of the client's CPU per attempt
        # for nothing (these parameters need no transformation; logprobs are stored as JSON).
        chat = self.agent.api == "chat"
        path = "/chat/completions" if chat else "/completions"
        raw = await client.post(
            path,
            body=self._body(source, k),
            cast_to=httpx2.Response,
            options={"security": {"bearer_auth": True}},
        )
        # Everything in the reply is checked: a field of the wrong type is a ValueError, which
        # call() retries as a malformed body (never a crash).
        data = json.loads(raw.content)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ValueError("reply without choices")
        choice = choices[0]
        if chat:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        else:
            text = choice.get("text")
        text = "" if text is None else text
        if not isinstance(text, str):
            raise ValueError("reply text is not a string")
        lp = choice.get("logprobs") if self.config.logprobs else None
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return (
            text,
            lp,
            _tokens(usage.get("prompt_tokens")),
            _tokens(usage.get("completion_tokens")),
        )

    async def call(self, k: int, source: str) -> AttemptRecord:
        """Attempt ``k`` from ``source``, with retries; its record (outcome ``error`` if all fail).

        Raises :class:`Fatal` for an error no retry can fix.
        """
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
                raise Fatal(
                    f"{self._client_url[i]}: {self._message(exc)} "
                    f"(is model {cfg.model!r} served there?)"
                ) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise Fatal(
                    f"{self._client_url[i]} refused the request: {self._message(exc)}"
                ) from None
            except openai.BadRequestError as exc:
                raise Fatal(
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
            self.result.retries += 1
            if wait is None:  # full jitter on an exponential scale
                wait = random.uniform(0.5, 1.0) * min(
                    self.backoff_cap, self.backoff * 2**attempt_try
                )
            await asyncio.sleep(wait)
        rec = attempt_record(
            self.run_id,
            k,
            source,
            model=cfg.model,
            temperature=cfg.temperature,
            template_hash=cfg.template_hash,
        )
        if text is None:  # every try failed
            rec.update(
                reason=self._redact.message(f"{reason}, {self.max_retries} retries"),
                latency_s=round(time.perf_counter() - t_start, 4),
            )
            return rec
        rec.update(self._outcome(self._redact.exact(text), source))  # an echoed key: not logged
        rec.update(
            prompt_tokens=n_prompt,
            completion_tokens=n_completion,
            latency_s=round(time.perf_counter() - t0, 4),
            logprobs=lp,
        )
        return rec

    def _outcome(self, text: str, source: str) -> dict:
        """The record's ``outcome``, ``target``, ``reason`` and ``raw`` for a reply ``text``."""
        if len(text) > MAX_REPLY_CHARS:
            return {
                "outcome": "unparseable",
                "target": None,
                "reason": f"reply of {len(text)} characters is longer than {MAX_REPLY_CHARS}",
                "raw": text[:MAX_REPLY_CHARS],
                "truncated": True,
            }
        parsed = self.agent.parse(text)
        outcome, target, reason = parsed.outcome, None, parsed.reason
        problem = state_problem(parsed.state) if parsed.state is not None else None
        if problem:
            outcome, reason = "invalid", problem
        elif parsed.state is not None:
            outcome = "self" if parsed.state == source else "transition"
            target = parsed.state
        return {"outcome": outcome, "target": target, "reason": reason, "raw": text}

    def _message(self, exc) -> str:
        """The server's error message, without the key or anything like a token."""
        return self._redact.message(_message(exc))
