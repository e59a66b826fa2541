r"""Exact kernels from token logprobs: score log P(g | f) instead of sampling it.

For a completion agent, ``log T(g <- f)`` is the log-probability that the model continues the
prompt of ``f`` with the canonical reply of ``g`` (``agent.reply(g)``, e.g. ``" zebra"``) and then
ends the reply: the next token is any token whose text starts with one of the agent's stop strings
(``"\n"``, ``"\n\n"``, ...), or end-of-text. Over HTTP the endpoint must echo prompt logprobs
(``echo=True``) with the top logprobs of each position (llama.cpp's server does; hosted chat APIs
usually do not). The result is not normalised over the candidates: the remainder is the mass of
every other reply (the escape).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence

import numpy as np

from ..errors import CollectionError
from ..kernel import TransitionKernel
from .safety import Redactor, check_endpoints, is_loopback


def continuation_logprob(logprobs, prompt_len: int, end: int) -> float:
    """Sum of token logprobs of the text between ``prompt_len`` and ``end`` of an echoed prompt.

    Refused when a token straddles the prompt's end (the tokeniser merged prompt and reply), as
    the reply's probability is then not a product of its own tokens.

    Parameters
    ----------
    logprobs : object
        The echoed completion's ``logprobs`` (with ``text_offset`` and ``token_logprobs``).
    prompt_len : int
        Characters of the prompt.
    end : int
        Character offset where the continuation ends.

    Returns
    -------
    float
    """
    offsets = list(logprobs.text_offset)
    if prompt_len not in offsets:
        raise CollectionError(
            "the tokeniser merged the prompt's end with the reply; cannot score it"
        )
    total = 0.0
    for off, lp in zip(offsets, logprobs.token_logprobs, strict=False):
        if prompt_len <= off < end:
            if lp is None:
                raise CollectionError("the endpoint returned no logprob for a reply token")
            total += lp
    return total


def stop_logprob(logprobs, end: int, stops: Sequence[str]) -> tuple[float, float]:
    r"""Log-probability that the reply ends at ``end``, read from the top logprobs there.

    The next-token distribution after the reply is the ``top_logprobs`` entry of the last token,
    the one the endpoint generated after the echoed text, which must start at ``end``. Its tokens
    whose text starts with a stop string end the reply; their probabilities are summed. Tokens
    outside the top k are unseen, and an empty token text is ambiguous (llama-cpp-python shows
    end-of-text, and other tokens without text, as ``""``), so the sum is a lower bound: the
    ending's probability is at most ``seen + unknown``, where ``unknown`` is the mass outside the
    returned tokens (``1 - sum``) plus that of ``""``.

    Parameters
    ----------
    logprobs : object
        The echoed completion's ``logprobs`` (``text_offset`` and ``top_logprobs``).
    end : int
        Character offset where the reply ends.
    stops : sequence of str
        The agent's stop strings.

    Returns
    -------
    log_seen : float
        log of the summed probability of the stop tokens seen (``-inf`` if none is).
    bound : float
        How far above ``log_seen`` the true value can be, in nats: ``log1p(unknown / seen)``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> top = {"\n": math.log(0.6), "\n\n": math.log(0.3), ",": math.log(0.05)}
    >>> lp = SimpleNamespace(text_offset=[0, 4], top_logprobs=[None, top])
    >>> seen, bound = stop_logprob(lp, 4, ["\n"])
    >>> round(math.exp(seen), 6), round(bound, 4)  # 0.9 seen; 0.05 unseen: log(0.95 / 0.9)
    (0.9, 0.0541)
    """
    tops = getattr(logprobs, "top_logprobs", None)
    offsets = list(logprobs.text_offset)
    # the generated token is the last one: the first at or after ``end`` could be the reply's own
    # last token where an endpoint's offsets drift (its distribution is not the ending's)
    if not offsets or offsets[-1] < end:
        raise CollectionError(
            "no token after the reply, so the probability that it ends there is unknown (the "
            "endpoint generated none: llama-cpp-python returns no end-of-text token)"
        )
    if len(offsets) > 1 and offsets[-2] >= end:
        raise CollectionError(
            f"the endpoint's text offsets put {sum(o >= end for o in offsets)} tokens at or "
            f"after the reply's end (character {end}): they do not match the echoed text"
        )
    top = tops[-1] if tops and len(tops) == len(offsets) else None
    if not top or not isinstance(top, dict):
        raise CollectionError(
            "no top logprobs after the reply, so the probability that it ends there is unknown "
            "(scoring needs echo=True with logprobs=k, a {token: logprob} dict per position, "
            "and one generated token)"
        )
    if offsets[-1] != end:
        raise CollectionError("the tokeniser merged the reply's end with the next token")
    probs = {t: math.exp(lp) for t, lp in top.items() if lp is not None and lp <= 0}
    seen = sum(p for t, p in probs.items() if t.startswith(tuple(stops)))
    unknown = max(0.0, 1.0 - sum(probs.values())) + probs.get("", 0.0)
    if seen <= 0:
        return -math.inf, math.inf
    return math.log(seen), math.log1p(unknown / seen)


def score_kernel(
    agent,
    base_url: str,
    model: str,
    states: Sequence[str],
    *,
    sources: Sequence[str] | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int = 4,
    timeout: float = 60.0,
    top_logprobs: int = 20,
    max_unseen: float = 0.05,
) -> TransitionKernel:
    """Score ``log P(g | f)`` for every ``f`` in ``sources`` (default: ``states``) and ``g != f``.

    Each pair is one request: the prompt of ``f`` followed by the reply of ``g``, echoed with its
    logprobs and one generated token. The reply's tokens give ``log P(reply | prompt)``; the top
    ``top_logprobs`` tokens at the generated position give the probability that the reply ends
    there (every token starting with a stop string, see :func:`stop_logprob`), as
    :func:`score_kernel_local` computes from the whole vocabulary. The stop tokens outside the
    top k (and end-of-text, which OpenAI-compatible servers do not name) are unseen, so each
    value is a lower bound, at most ``log1p(unknown / seen)`` nats below the truth; the kernel is
    refused when that bound exceeds ``max_unseen`` on any arc.

    Parameters
    ----------
    agent : Agent
        A completion agent with ``reply(state)`` giving the canonical reply text.
    base_url, model : str
        An OpenAI-compatible endpoint that echoes prompt logprobs.
    states : sequence of str
        Candidate targets (canonical states).
    sources : sequence of str, optional
        Sources to score; default ``states``.
    api_key_env : str
        Environment variable holding the API key.
    concurrency : int
        Requests in flight.
    timeout : float
        Seconds per request.
    top_logprobs : int
        Tokens per position whose logprobs the endpoint returns (OpenAI's ``logprobs``).
    max_unseen : float
        Largest allowed bound, in nats, on the stop probability left unseen outside the top
        logprobs; ``math.inf`` accepts any (the values are then lower bounds).

    Returns
    -------
    TransitionKernel
        ``convention="logprob"``; arcs on all ordered pairs of distinct candidates.
    """
    if agent.api != "completion" or not hasattr(agent, "reply"):
        raise CollectionError(
            f"agent {agent.name!r} cannot be scored: it needs the completions API"
        )
    if not isinstance(top_logprobs, int) or top_logprobs < 1:
        raise CollectionError(f"top_logprobs must be an integer >= 1, got {top_logprobs!r}")
    if not max_unseen >= 0:
        raise CollectionError(f"max_unseen must be >= 0 nats, got {max_unseen!r}")
    stops = tuple(agent.stop) or ("\n",)  # the stop rule of score_kernel_local
    states = tuple(states)
    sources = tuple(sources) if sources is not None else states
    index = {s: i for i, s in enumerate(states)}
    for g in states:
        if agent.parse(agent.reply(g)).state != g:
            raise CollectionError(f"the canonical reply of {g!r} does not parse back to it")
    pairs = [(f, g) for f in sources for g in states if g != f]
    key = os.environ.get(api_key_env)
    check_endpoints([base_url], key_set=bool(key), allow_insecure=False)  # https or loopback
    key = key or ("loopback" if is_loopback(base_url) else None)
    if key is None:
        raise CollectionError(f"no API key: set the environment variable {api_key_env}")

    async def main() -> list[tuple[float, float]]:
        import openai

        client = openai.AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=4)
        sem = asyncio.Semaphore(concurrency)

        async def one(f: str, g: str) -> tuple[float, float]:
            prompt = agent.prompt(f)
            text = prompt + agent.reply(g)
            async with sem:  # one generated token: its top logprobs are those after the reply
                resp = await client.completions.create(
                    model=model,
                    prompt=text,
                    max_tokens=1,
                    temperature=0.0,
                    echo=True,
                    logprobs=top_logprobs,
                )
            lp = resp.choices[0].logprobs
            if lp is None or not lp.text_offset:
                raise CollectionError(f"{base_url} returned no prompt logprobs (echo=True)")
            try:
                ending, bound = stop_logprob(lp, len(text), stops)
            except CollectionError as exc:
                raise CollectionError(f"{base_url}: {exc}") from None
            return continuation_logprob(lp, len(prompt), len(text)) + ending, bound

        try:
            return await asyncio.gather(*(one(f, g) for f, g in pairs))
        except openai.APIConnectionError:
            raise CollectionError(f"cannot reach {base_url}: is the server running?") from None
        except openai.APIStatusError as exc:  # the server's message, without the key
            message = Redactor(key).message(str(exc).splitlines()[0][:300])
            raise CollectionError(f"{base_url}: {message}") from None
        finally:
            await client.close()

    scored = asyncio.run(main())
    log_prob = [lp for lp, _ in scored]
    bounds = np.array([b for _, b in scored])
    blind = np.isinf(bounds)  # no stop token in the top k: not even a lower bound to give
    if blind.any():
        first = int(blind.argmax())
        raise CollectionError(
            f"{int(blind.sum())} of {len(pairs)} arcs have no token starting with a stop string "
            f"{list(stops)!r} among the top {top_logprobs} logprobs after the reply (first "
            f"{pairs[first][0]} -> {pairs[first][1]}): the endpoint's token texts may not match "
            "the agent's stop strings, or raise top_logprobs"
        )
    if len(bounds) and bounds.max() > max_unseen:
        worst = int(bounds.argmax())
        raise CollectionError(
            f"{int((bounds > max_unseen).sum())} of {len(pairs)} arcs may miss up to "
            f"{bounds[worst]:.3g} nats of stop probability unseen in the top {top_logprobs} "
            f"logprobs (worst {pairs[worst][0]} -> {pairs[worst][1]}, max_unseen "
            f"{max_unseen:g}): raise top_logprobs or max_unseen"
        )
    for f in sources:
        if f not in index:
            states = states + (f,)
            index[f] = len(states) - 1
    return TransitionKernel(
        states=states,
        source=np.array([index[f] for f, _ in pairs], dtype=np.int64),
        target=np.array([index[g] for _, g in pairs], dtype=np.int64),
        log_prob=np.asarray(log_prob, dtype=float),
        convention="logprob",
    )


def score_kernel_local(
    agent,
    states: Sequence[str],
    *,
    sources: Sequence[str] | None = None,
    model_path: str | None = None,
    n_threads: int = 1,
) -> TransitionKernel:
    """:func:`score_kernel` with the offline LLM loaded in this process (llama.cpp, no server).

    Exact for the agent's stop rule: log P(g | f) = log P(reply tokens of g | prompt of f) + log of
    the total probability of every token that ends the reply (a token starting with one of the
    agent's stop strings, or end-of-text). llama.cpp's HTTP server computes echoed logprobs in
    slow Python loops over the whole vocabulary; in process, the prompt is evaluated once per
    source and each reply token by token (a few milliseconds each).

    Parameters
    ----------
    agent : Agent
        A completion agent.
    states : sequence of str
        Candidate targets (canonical states).
    sources : sequence of str, optional
        Sources to score; default ``states``.
    model_path : str, optional
        GGUF file; default the package's offline model.
    n_threads : int
        llama.cpp threads.

    Returns
    -------
    TransitionKernel
        As :func:`score_kernel`.
    """
    from .local import model_path as default_model_path

    if agent.api != "completion" or not hasattr(agent, "reply"):
        raise CollectionError(
            f"agent {agent.name!r} cannot be scored: it needs the completions API"
        )
    import llama_cpp

    # logits only where needed: the shared prompt is evaluated once per source, then each reply
    # token by token from the cached prompt (llama.cpp drops the KV cache beyond n_tokens)
    llm = llama_cpp.Llama(
        model_path=model_path or default_model_path(),
        n_ctx=512,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        verbose=False,
    )

    n_vocab = llm.n_vocab()
    stops = tuple(s.encode() for s in agent.stop) or (b"\n",)
    enders = [i for i in range(n_vocab) if llm.detokenize([i]).startswith(stops)]
    enders = np.array(sorted({*enders, llm.token_eos()}), dtype=np.int64)

    def last_log_softmax() -> np.ndarray:
        # logits of the batch's last token, straight from llama.cpp (Llama.scores stays empty
        # without logits_all, which would compute the 262k-word output layer at every position)
        raw = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
        x = raw.astype(np.float64)
        top = x.max()
        return x - (top + np.log(np.exp(x - top).sum()))

    states = tuple(states)
    sources = tuple(sources) if sources is not None else states
    index = {s: i for i, s in enumerate(states)}
    for f in sources:
        index.setdefault(f, len(index))
    pairs, log_prob = [], []
    for f in sources:
        prompt = agent.prompt(f).encode()
        head = llm.tokenize(prompt, add_bos=True)
        llm.reset()
        llm.eval(head)
        first = last_log_softmax()
        for g in states:
            if g == f:
                continue
            if agent.parse(agent.reply(g)).state != g:
                raise CollectionError(f"the canonical reply of {g!r} does not parse back to it")
            tokens = llm.tokenize(prompt + agent.reply(g).encode(), add_bos=True)
            if tokens[: len(head)] != head:
                raise CollectionError("the tokeniser merged the prompt's end with the reply")
            reply = tokens[len(head) :]
            total = first[reply[0]]
            llm.n_tokens = len(head)
            for t, nxt in zip(reply, [*reply[1:], None], strict=True):
                llm.eval([t])
                lsm = last_log_softmax()
                if nxt is not None:
                    total += lsm[nxt]
                else:  # the reply ends here: any stop token
                    top = lsm[enders].max()
                    total += top + np.log(np.exp(lsm[enders] - top).sum())
            pairs.append((f, g))
            log_prob.append(float(total))
    llm.close() if hasattr(llm, "close") else None
    return TransitionKernel(
        states=tuple(sorted(index, key=index.get)),
        source=np.array([index[f] for f, _ in pairs], dtype=np.int64),
        target=np.array([index[g] for _, g in pairs], dtype=np.int64),
        log_prob=np.asarray(log_prob),
        convention="logprob",
    )
