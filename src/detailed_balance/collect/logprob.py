"""Exact kernels from token logprobs: score log P(g | f) instead of sampling it.

For a completion agent, ``log T(g <- f)`` is the log-probability that the model continues the
prompt of ``f`` with the canonical reply of ``g`` (``agent.reply(g)``, e.g. ``" zebra"``) followed
by a line break, the agent's stop. The endpoint must return prompt logprobs with ``echo=True``
(llama.cpp's server does; hosted chat APIs usually do not). The result is not normalised over the
candidates: the remainder is the mass of every other reply (the escape).
"""

from __future__ import annotations

import asyncio
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
) -> TransitionKernel:
    """Score ``log P(g | f)`` for every ``f`` in ``sources`` (default: ``states``) and ``g != f``.

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

    Returns
    -------
    TransitionKernel
        ``convention="logprob"``; arcs on all ordered pairs of distinct candidates.
    """
    if agent.api != "completion" or not hasattr(agent, "reply"):
        raise CollectionError(
            f"agent {agent.name!r} cannot be scored: it needs the completions API"
        )
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

    async def main() -> list[float]:
        import openai

        client = openai.AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=4)
        sem = asyncio.Semaphore(concurrency)

        async def one(f: str, g: str) -> float:
            prompt = agent.prompt(f)
            text = prompt + agent.reply(g) + "\n"
            async with sem:
                resp = await client.completions.create(
                    model=model, prompt=text, max_tokens=1, temperature=0.0, echo=True, logprobs=1
                )
            lp = resp.choices[0].logprobs
            if lp is None or not lp.text_offset:
                raise CollectionError(f"{base_url} returned no prompt logprobs (echo=True)")
            return continuation_logprob(lp, len(prompt), len(text))

        try:
            return await asyncio.gather(*(one(f, g) for f, g in pairs))
        except openai.APIConnectionError:
            raise CollectionError(f"cannot reach {base_url}: is the server running?") from None
        except openai.APIStatusError as exc:  # the server's message, without the key
            message = Redactor(key).message(str(exc).splitlines()[0][:300])
            raise CollectionError(f"{base_url}: {message}") from None
        finally:
            await client.close()

    log_prob = asyncio.run(main())
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
