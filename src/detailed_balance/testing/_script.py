"""The loopback server's scripted behaviour: faults drawn per request and a known kernel.

A :class:`Script` says what the server does (see :mod:`detailed_balance.testing.server` for the
fault kinds); ``ServerState`` holds a running server's counters and draws faults and replies.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

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
    # echo scoring: the next token after a reply word (two that end the reply, one that does not)
    after_reply: dict = field(default_factory=lambda: {"\n": 0.6, "\n\n": 0.3, ",": 0.1})
    top_logprobs: bool = True  # False: echoed logprobs without top_logprobs (as some servers do)

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


class ServerState:
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

    def score(self, text: str, k: int, generate: bool) -> tuple[str, dict]:
        """Echo ``text`` with logprobs: the continuation after the last '->' is scored exactly.

        The continuation is a word (the kernel's row, the invalid reply's mass for a word outside
        the vocabulary), optionally followed by one of ``after_reply``'s tokens. When it ends in
        the word and ``generate``, the likeliest of ``after_reply`` is generated, so its top
        logprobs (``k`` tokens, plus the chosen one, as llama.cpp and OpenAI give them) are the
        next-token distribution after the reply. Returns the text and the ``logprobs`` object.
        """
        cut = text.rfind("->") + 2
        if cut < 2:
            lp = {"tokens": [text], "token_logprobs": [None], "text_offset": [0]}
            return text, {**lp, "top_logprobs": [None] if self.script.top_logprobs else None}
        prefix, cont = text[:cut], text[cut:]
        i = self.source_of(prefix)
        after = {t: math.log(p) for t, p in self.script.after_reply.items() if p > 0}
        ends = [t for t in after if cont.endswith(t) and len(t) < len(cont)]
        tail = max(ends, key=len, default="")  # "\n\n", not "\n", ends " wolf\n\n"
        body = cont[: len(cont) - len(tail)]
        vocab = [w.lower() for w in self.script.vocabulary]
        words = {}  # the distribution of the reply word, as tokens " word"
        if i is not None:
            row = self.kernel[i]
            words = {" " + w: math.log(p) for w, p in zip(vocab, row, strict=False) if p > 0}
            if row[-1] > 0:
                words[" " + INVALID_REPLY] = math.log(row[-1])
        word = body.strip().lower()
        if i is None:
            lp = -math.inf
        elif word in vocab:
            lp = math.log(max(self.kernel[i][vocab.index(word)], 1e-300))
        else:
            lp = math.log(max(self.kernel[i][-1], 1e-300))
        tokens, logprobs, offsets = [prefix, body], [None, lp], [0, len(prefix)]
        tops = [None, words]
        if not tail and generate and after:
            tail = max(after, key=after.get)
            text += tail
        if tail:
            tokens.append(tail)
            logprobs.append(after.get(tail, -math.inf))
            offsets.append(len(prefix) + len(body))
            tops.append(after)

        def top(dist: dict, chosen: str, lp: float) -> dict:
            best = sorted(dist, key=dist.get, reverse=True)[:k]
            return {**{t: dist[t] for t in best}, chosen: lp}

        top_logprobs = [None] + [
            top(d, t, x) for d, t, x in zip(tops[1:], tokens[1:], logprobs[1:], strict=True)
        ]
        return text, {
            "tokens": tokens,
            "token_logprobs": logprobs,
            "text_offset": offsets,
            "top_logprobs": top_logprobs if self.script.top_logprobs else None,
        }
