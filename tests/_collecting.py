"""Helpers shared by the collection tests: the loopback model's name, a ``collect`` command
line, a :class:`Collector` of the animals agent, and a log's attempt records."""

import json

from detailed_balance.collect import AnimalAgent, Collector, RunConfig

MODEL = "loopback-model"
_CONFIG_FIELDS = ("design", "sources", "chains", "logprobs", "temperature")


def collect_args(url: str, out, *extra) -> list[str]:
    """``detailed-balance collect`` of the animals agent against ``url``, writing ``out``."""
    return ["collect", "--agent", "animals", "--base-url", url, "--model", MODEL,
            "--out", str(out), "--quiet", *extra]  # fmt: skip


def make_collector(urls, attempts: int, *, concurrency=8, timeout=5.0, **kw) -> Collector:
    """A Collector of the animals agent against ``urls`` (one URL or a list), without a bar and
    with short backoffs; run-configuration keywords (``design``, ``sources``, ``chains``,
    ``logprobs``, ``temperature``) go to its :class:`RunConfig`, the rest to the Collector."""
    agent = AnimalAgent()
    fields = {k: kw.pop(k) for k in _CONFIG_FIELDS if k in kw}
    if "sources" in fields:
        fields["sources"] = tuple(fields["sources"])
    cfg = RunConfig(
        agent=agent.name,
        template_hash=agent.template_hash(),
        api=agent.api,
        model=MODEL,
        attempts=attempts,
        **fields,
    )
    urls = [urls] if isinstance(urls, str) else list(urls)
    kw.setdefault("backoff", 0.01)
    return Collector(
        agent, cfg, urls, concurrency=concurrency, timeout=timeout, progress=False, **kw
    )


def attempts_of(path) -> list[dict]:
    """All attempt records of a log, in file order; every line must be strict JSON (no bare NaN)
    and the log must end with a whole line."""

    def no_constants(name):
        raise AssertionError(f"bare {name} in the log")

    with open(path, "rb") as fh:
        data = fh.read()
    assert not data or data.endswith(b"\n"), "the log ends in a partial line"
    recs = [json.loads(line, parse_constant=no_constants) for line in data.splitlines()]
    return [r for r in recs if r["kind"] == "attempt"]
