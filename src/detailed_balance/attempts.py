"""The attempt record: one line of the attempt log, as the collector writes it and readers read it.

A log is JSON Lines: a first ``{"kind": "run", "run_id": ..., "config": {...}}`` line per
session, then one :class:`AttemptRecord` per attempt. This module is the one place that says
which fields a record has, which a reader needs, what the outcomes mean and what a state name may
be; the collector (``detailed_balance.collect``) writes records with :func:`attempt_record`, and
readers check them with :func:`record_problem` (the collector's resume with
:func:`attempt_problem`). It imports nothing of the package, so any stage
may use it.

Examples
--------
>>> rec = attempt_record("r1", 0, "cat", outcome="transition", target="dog", model="m")
>>> rec["outcome"], rec["target"], attempt_problem(rec)
('transition', 'dog', None)
>>> attempt_problem({**rec, "target": None})
"a 'transition' attempt without a target state"
"""

import datetime as _dt
import re
from typing import Any, Literal, NotRequired, TypedDict

#: What an attempt ended in. ``transition``: the reply named another state; ``self``: it named
#: the source; ``invalid``: a parsed reply that is not an allowed state (a rejection);
#: ``unparseable``: no state could be read (a rejection); ``error``: no reply after retries
#: (not an attempt: the collector retries it on ``--resume``, readers do not count it).
OUTCOMES = ("transition", "self", "invalid", "unparseable", "error")
Outcome = Literal["transition", "self", "invalid", "unparseable", "error"]

#: Fields a reader of counts needs (``target`` too for ``transition``); every other field is
#: information about the call. Resuming a run needs ``attempt`` as well (:func:`attempt_problem`).
REQUIRED = ("source", "outcome")


class AttemptRecord(TypedDict):
    """One attempt, as a line of the attempt log (all keys present, except ``truncated``)."""

    kind: Literal["attempt"]
    run_id: str  # the session that made the call; (run_id, attempt) is unique, the last wins
    attempt: int  # the attempt id, fixed by the design (a non-negative integer)
    source: str  # the state the prompt started from
    target: str | None  # the state the reply named (``transition``/``self``), else None
    outcome: Outcome
    reason: str | None  # why a rejection or an error, in words
    raw: str | None  # the reply text (None for ``error``), at most MAX_REPLY_CHARS
    model: str
    temperature: float
    template_hash: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    timestamp: str  # ISO 8601, UTC, milliseconds
    logprobs: Any  # the server's logprobs object when asked for, else None
    truncated: NotRequired[bool]  # present (True) when ``raw`` was cut to MAX_REPLY_CHARS


# A reply longer than this (characters) is stored cut to it, flagged ``"truncated": true``, and is
# an ``unparseable`` rejection: agents' replies are a few tokens, and parsing megabytes with a
# user's regular expression could take minutes.
MAX_REPLY_CHARS = 16384
# What a state name may not be (the one rule: the collector's replies and every reader of counts,
# through ``counts.check_state_names``): not text, longer than 4096 characters, or holding a
# control character (C0, C1), a line/paragraph separator or a lone surrogate. A NUL or newline
# would merge or split states downstream (numpy drops trailing NULs) and break every table; a lone
# surrogate cannot be written as UTF-8.
MAX_STATE_CHARS = 4096
_BAD_STATE_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def state_problem(state) -> str | None:
    """Why ``state`` cannot be a state name (None when it can).

    Parameters
    ----------
    state : object
        A candidate state name.

    Returns
    -------
    str or None
        The problem, one sentence; None for a valid name.

    Examples
    --------
    >>> state_problem("cat") is None, state_problem("a\\nb")
    (True, "state 'a\\\\nb' contains the control character '\\\\n'")
    >>> state_problem(3)
    'state 3 is not text'
    """
    if not isinstance(state, str):
        return f"state {state!r} is not text"
    if len(state) > MAX_STATE_CHARS:
        return (
            f"state {state[:40]!r}... is {len(state):,} characters long "
            f"(the limit is {MAX_STATE_CHARS:,})"
        )
    bad = _BAD_STATE_CHAR.search(state)
    if bad:
        return f"state {state[:40]!r} contains the control character {bad.group()!r}"
    return None


def attempt_record(
    run_id: str,
    attempt: int,
    source: str,
    *,
    outcome: Outcome = "error",
    target: str | None = None,
    reason: str | None = None,
    raw: str | None = None,
    model: str = "",
    temperature: float = 1.0,
    template_hash: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    latency_s: float = 0.0,
    timestamp: str | None = None,
    logprobs: Any = None,
) -> AttemptRecord:
    """An :class:`AttemptRecord` with every field, in the log's field order.

    ``timestamp`` defaults to now (UTC, milliseconds).

    Parameters
    ----------
    run_id : str
        The run's id.
    attempt : int
        The attempt's id within the run.
    source : str
        The prompt's state.
    outcome : {"transition", "self", "invalid", "unparseable", "error"}
        What the reply was.
    target : str, optional
        The reply's state.
    reason : str, optional
        Why the reply was invalid or failed.
    raw : str, optional
        The raw reply text.
    model, temperature, template_hash
        The sampling settings.
    prompt_tokens, completion_tokens : int
        Token usage.
    latency_s : float
        Request time in seconds.
    timestamp : str, optional
        ISO 8601 time.
    logprobs : object, optional
        Token log probabilities, when the server returned them.

    Returns
    -------
    AttemptRecord
        A dict in the log's field order.
    """
    return {
        "kind": "attempt",
        "run_id": run_id,
        "attempt": attempt,
        "source": source,
        "target": target,
        "outcome": outcome,
        "reason": reason,
        "raw": raw,
        "model": model,
        "temperature": temperature,
        "template_hash": template_hash,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_s": latency_s,
        "timestamp": timestamp or _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
        "logprobs": logprobs,
    }


def record_problem(rec: dict) -> str | None:
    """What makes ``rec`` unusable for counting (None when it is fine).

    Checks the :data:`REQUIRED` fields, as every reader of counts needs them: a known outcome, a
    non-empty source, a target for ``transition``, and for ``self`` no target other than the
    source. The id is not checked (hand-written logs may use text ids or none).

    Parameters
    ----------
    rec : dict
        One parsed log record.

    Returns
    -------
    str or None
        The problem, one sentence; None for a usable record.

    Examples
    --------
    >>> record_problem({"source": "cat", "outcome": "self"}) is None
    True
    >>> record_problem({"source": "cat", "outcome": "self", "target": "dog"})
    "a 'self' attempt whose target differs from its source"
    """
    outcome = rec.get("outcome")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        return f"unknown outcome {outcome!r} (use {', '.join(OUTCOMES)})"
    source = rec.get("source")
    if not isinstance(source, str) or not source:
        return "attempt without a source state"
    target = rec.get("target")
    if outcome == "transition" and not (isinstance(target, str) and target):
        return "a 'transition' attempt without a target state"
    if outcome == "self" and target is not None and target != source:
        return "a 'self' attempt whose target differs from its source"
    return None


def attempt_problem(rec: dict) -> str | None:
    """What makes ``rec`` unusable as an attempt record (None when it is fine).

    Checks what resuming a run needs, on top of :func:`record_problem`: a non-negative integer
    id (not a boolean) and, for ``self``, the target the collector writes.

    Parameters
    ----------
    rec : dict
        One parsed log record.

    Returns
    -------
    str or None
        The problem, one sentence; None for a usable record.
    """
    k = rec.get("attempt")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        return f"attempt id {k!r} is not a non-negative integer"
    problem = record_problem(rec)
    if problem is None and rec["outcome"] == "self" and rec.get("target") is None:
        problem = "a 'self' attempt without a target state"
    return problem


__all__ = [
    "MAX_REPLY_CHARS",
    "MAX_STATE_CHARS",
    "OUTCOMES",
    "REQUIRED",
    "AttemptRecord",
    "attempt_problem",
    "attempt_record",
    "record_problem",
    "state_problem",
]
