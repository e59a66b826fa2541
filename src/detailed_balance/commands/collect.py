"""CLI: ``detailed-balance collect``: agent + OpenAI-compatible endpoint(s) -> attempt log.

Every option is checked while parsing (range, finiteness, a writable ``--out``), so a mistake is
one line and exit status 2 before any server starts or any request is made. SIGINT and SIGTERM end
the run with one line and status 130 / 143, the log whole.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from ._checks import integer, real
from ._options import add_quiet_option

_received: list[int] = []  # signals that arrived outside the collector's event loop


def _interrupt(signum, frame):
    _received.append(signum)
    for sig in (signal.SIGINT, signal.SIGTERM):  # one interrupt; let the cleanup finish
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


# ---- parse-time checks: each raises ArgumentTypeError with the problem in a few words --------
def _out_path(text: str) -> str:
    """A plain .jsonl path that is (or can be created as) a writable file."""
    if not text:
        raise argparse.ArgumentTypeError("must name a file")
    if text.endswith(".gz"):
        raise argparse.ArgumentTypeError(
            f"{text}: write a plain .jsonl log (gzip it when the run is done)"
        )
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder; name the attempt log file")
    if os.path.exists(text):
        if not os.access(text, os.W_OK):
            raise argparse.ArgumentTypeError(f"the attempt log {text} is not writable")
        return text
    parent = os.path.dirname(os.path.abspath(text))
    while not os.path.exists(parent):  # the nearest existing folder must let us create the rest
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(
            f"cannot create the attempt log {text}: {parent} is not a folder"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot create the attempt log {text}: {parent} is not writable"
        )
    return text


def _json_object(text: str) -> dict:
    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _url(text: str) -> str:
    from urllib.parse import urlparse

    try:
        parsed = urlparse(text)
        parsed.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} must be an http:// or https:// URL with a host")
    return text


class _Removed(argparse.Action):
    """An option that was removed: one line saying so (exit 2), not argparse's "unrecognized"."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            f"{option_string} was removed: one process collects as fast (measured in "
            "docs/readme/bench-collect.md, collection throughput); drop the option"
        )


def configure(parser) -> None:
    parser.add_argument(
        "--agent", required=True, help="built-in agent (words, animals) or a TOML agent file"
    )
    parser.add_argument(
        "--out", required=True, type=_out_path, help="attempt log to write (plain .jsonl)"
    )
    parser.add_argument(
        "--base-url",
        type=_url,
        action="append",
        default=[],
        metavar="URL",
        help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; repeat to spread load",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="start the offline LLM (llama.cpp + gemma-3-270m) on 127.0.0.1 for this run",
    )
    parser.add_argument("--model", help="model name (default with --local: gemma3-270m)")
    from ..collect import DESIGNS

    parser.add_argument(
        "--design",
        default=DESIGNS[0],
        choices=DESIGNS,
        help="source choice: discovered (uniform over the states found so far; the paper's), "
        "budget (round-robin over --sources) or trajectory (--chains walks) (default: discovered)",
    )
    parser.add_argument(
        "--attempts", type=integer(1), required=True, help="total attempts of the run"
    )
    parser.add_argument(
        "--sources", help="comma-separated start states (default: the agent's seeds)"
    )
    parser.add_argument(
        "--chains",
        type=integer(1),
        default=1,
        help="--design trajectory: how many walks of the agent run side by side (default 1); "
        "not fit's sampler chains",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue an existing log (same configuration)"
    )
    parser.add_argument(
        "--concurrency", type=integer(1, 65536), default=8, help="requests in flight (default 8)"
    )
    parser.add_argument("--processes", nargs="?", action=_Removed, help=argparse.SUPPRESS)
    parser.add_argument(
        "--temperature",
        type=real(0.0),
        default=1.0,
        help="sampling temperature sent with each request (default 1: the model's own "
        "distribution)",
    )
    parser.add_argument(
        "--top-p",
        type=real(0.0, 1.0, open_low=True),
        help="nucleus sampling: keep the most likely tokens up to this total probability, in "
        "(0, 1] (default: the server's)",
    )
    parser.add_argument(
        "--max-tokens", type=integer(1), help="longest reply, in tokens (default: the agent's)"
    )
    parser.add_argument(
        "--seed",
        type=integer(0),
        default=0,
        help="collection seed: fixes the design's source choices and the seed sent with each "
        "request (default 0); not fit's sampler seed",
    )
    parser.add_argument(
        "--extra-body",
        type=_json_object,
        help='JSON object of server-specific request fields, e.g. \'{"top_k": 0, "min_p": 0}\' '
        "for untruncated sampling on llama.cpp",
    )
    parser.add_argument(
        "--logprobs", type=integer(0), help="store the top-K token logprobs of each reply (0: none)"
    )
    parser.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (never logged; sent only over https or "
        "to a host that resolves to loopback; not needed on loopback)",
    )
    parser.add_argument(
        "--allow-insecure-key",
        action="store_true",
        help="also send the key over plain http to a host that is not loopback (it can be read "
        "on the way)",
    )
    parser.add_argument(
        "--timeout",
        type=real(0.0, 86400.0, open_low=True),
        default=60.0,
        help="total seconds per request, reading the reply included (default 60); also the "
        "longest Retry-After honoured (at most 60 s)",
    )
    parser.add_argument(
        "--max-retries", type=integer(0, 1000), default=6, help="retries per attempt (default 6)"
    )
    parser.add_argument(
        "--price-prompt", type=real(0.0), default=0.0, help="cost per 1M prompt tokens"
    )
    parser.add_argument(
        "--price-completion", type=real(0.0), default=0.0, help="cost per 1M completion tokens"
    )
    parser.add_argument(
        "--local-port",
        type=integer(1, 65535),
        help="port of the --local server (default: a free one)",
    )
    parser.add_argument(
        "--local-threads",
        type=integer(1, 1024),
        default=2,
        help="threads of the --local server (default 2)",
    )
    add_quiet_option(parser)


def run(args) -> int:
    from ..collect import Collector, Interrupted, LocalServer, RunConfig, load_agent, state_problem
    from ..collect.local import LOCAL_MODEL
    from ..collect.log import check_log, refuse_if_locked
    from ..collect.safety import check_endpoints
    from ..errors import CollectionError

    agent = load_agent(args.agent)
    if args.local and args.base_url:
        raise CollectionError("give either --local or --base-url, not both")
    if not args.local and not args.base_url:
        raise CollectionError("give --base-url URL (an OpenAI-compatible endpoint) or --local")
    model = args.model or (LOCAL_MODEL if args.local else None)
    if not model:
        raise CollectionError("give --model")
    if args.base_url:  # before any work: where the key may go
        key_set = bool(os.environ.get(args.api_key_env))
        check_endpoints(args.base_url, key_set=key_set, allow_insecure=args.allow_insecure_key)
    sources = tuple(agent.canonical(s) for s in args.sources.split(",")) if args.sources else ()
    if any(not s for s in sources):
        raise CollectionError(f"--sources {args.sources!r} has an empty state")
    for s in sources:
        if state_problem(s):
            raise CollectionError(f"--sources: {state_problem(s)}")
    config = RunConfig(
        agent=agent.name,
        template_hash=agent.template_hash(),
        api=agent.api,
        model=model,
        design=args.design,
        attempts=args.attempts,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        sources=sources,
        chains=args.chains,
        logprobs=args.logprobs,
        extra_body=args.extra_body,
    )
    refuse_if_locked(args.out)  # another collector on this log: say who, whatever else differs
    run_line, records = check_log(args.out, config.to_dict(), resume=args.resume)
    if run_line is not None:  # a finished run needs no server and no request
        done = {r.get("attempt") for r in records if r.get("outcome") != "error"}
        if all(k in done for k in range(args.attempts)):
            print(f"{args.out}: all {args.attempts} attempts are already done; nothing to collect")
            return 0
    if args.local and agent.api == "chat":
        print(
            f"note: agent {agent.name!r} uses the chat API; the offline model is a base model "
            "without a chat template and answers chat prompts poorly (use a completion agent)",
            file=sys.stderr,
        )
    server = None
    _received.clear()
    # SIGINT and SIGTERM raise KeyboardInterrupt (so `finally` stops a --local server) until the
    # collector's event loop takes them over; after the first, both are ignored
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        base_urls = args.base_url
        if args.local:
            print(
                "starting the offline LLM (llama.cpp, gemma-3-270m) on 127.0.0.1 ...",
                file=sys.stderr,
            )
            server = LocalServer(args.local_port, n_threads=args.local_threads).start()
            base_urls = [server.base_url]
        collector = Collector(
            agent,
            config,
            base_urls,
            concurrency=args.concurrency,
            api_key_env=args.api_key_env,
            timeout=args.timeout,
            max_retries=args.max_retries,
            price_prompt=args.price_prompt,
            price_completion=args.price_completion,
            progress=not args.quiet,
            allow_insecure_key=args.allow_insecure_key,
            handle_signals=True,
        )
        result = collector.run(args.out, resume=args.resume)
    except Interrupted as exc:
        _received.append(exc.signum)
        print(f"detailed-balance collect: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:  # before or after the collection's event loop
        signum = _received[0] if _received else signal.SIGINT
        print(
            f"detailed-balance collect: interrupted by {signal.Signals(signum).name}; "
            f"the log {args.out}, if any, is whole: rerun with --resume to continue",
            file=sys.stderr,
        )
        return 128 + signum
    finally:
        if server is not None:
            server.stop()
        if not _received:  # interrupted: the program is ending, a second signal stays ignored
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    print(result.summary())
    missing = result.attempts_requested - result.attempts_done
    if missing > 0:
        print(
            f"{missing} attempts not done (failed after retries): "
            "rerun with --resume to retry them",
            file=sys.stderr,
        )
        return 1
    return 0
