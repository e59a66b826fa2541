"""CLI: ``detailed-balance collect``: agent + OpenAI-compatible endpoint(s) -> attempt log."""

from __future__ import annotations

import signal
import sys


def _interrupt(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one interrupt; let the cleanup finish
    raise KeyboardInterrupt


def configure(parser) -> None:
    parser.add_argument(
        "--agent", required=True, help="built-in agent (words, animals) or a TOML agent file"
    )
    parser.add_argument("--out", required=True, help="attempt log to write (plain .jsonl)")
    parser.add_argument(
        "--base-url",
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
    parser.add_argument(
        "--design",
        default="discovered",
        choices=["discovered", "budget", "trajectory"],
        help="source choice: uniform over discovered states (the paper's), round-robin "
        "over --sources, or chains (default: discovered)",
    )
    parser.add_argument("--attempts", type=int, required=True, help="total attempts of the run")
    parser.add_argument(
        "--sources", help="comma-separated start states (default: the agent's seeds)"
    )
    parser.add_argument("--chains", type=int, default=1, help="trajectory design: parallel chains")
    parser.add_argument(
        "--resume", action="store_true", help="continue an existing log (same configuration)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="run the HTTP requests in N forked worker processes, each with its own event loop "
        "and clients and a share of --concurrency; the design, the log and the counts stay in "
        "this process. Helps when the client's own CPU per request is the limit (many requests "
        "in flight, short latency, e.g. a fast local server); needs fork (Linux), else 1 "
        "(default 1)",
    )
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--max-tokens", type=int, help="default: the agent's")
    parser.add_argument(
        "--seed", type=int, default=0, help="design and per-request seeds (default 0)"
    )
    parser.add_argument(
        "--extra-body",
        help='JSON object of server-specific request fields, e.g. \'{"top_k": 0, "min_p": 0}\' '
        "for untruncated sampling on llama.cpp",
    )
    parser.add_argument("--logprobs", type=int, help="store the top-K token logprobs of each reply")
    parser.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (never logged; not needed on loopback)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per request (default 60)"
    )
    parser.add_argument(
        "--max-retries", type=int, default=6, help="retries per attempt (default 6)"
    )
    parser.add_argument("--price-prompt", type=float, default=0.0, help="cost per 1M prompt tokens")
    parser.add_argument(
        "--price-completion", type=float, default=0.0, help="cost per 1M completion tokens"
    )
    parser.add_argument(
        "--local-port", type=int, help="port of the --local server (default: a free one)"
    )
    parser.add_argument(
        "--local-threads", type=int, default=2, help="threads of the --local server (default 2)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..collect import Collector, LocalServer, RunConfig, load_agent
    from ..collect.local import LOCAL_MODEL
    from ..collect.log import check_log
    from ..errors import CollectionError

    agent = load_agent(args.agent)
    if args.local and args.base_url:
        raise CollectionError("give either --local or --base-url, not both")
    if not args.local and not args.base_url:
        raise CollectionError("give --base-url URL (an OpenAI-compatible endpoint) or --local")
    model = args.model or (LOCAL_MODEL if args.local else None)
    if not model:
        raise CollectionError("give --model")
    import json

    try:
        extra = json.loads(args.extra_body) if args.extra_body else None
    except json.JSONDecodeError as exc:
        raise CollectionError(f"--extra-body is not JSON: {exc}") from None
    if extra is not None and not isinstance(extra, dict):
        raise CollectionError("--extra-body must be a JSON object")
    sources = tuple(agent.canonical(s) for s in args.sources.split(",")) if args.sources else ()
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
        extra_body=extra,
    )
    check_log(args.out, config.to_dict(), resume=args.resume)  # before starting any server
    if args.local and agent.api == "chat":
        print(
            f"note: agent {agent.name!r} uses the chat API; the offline model is a base model "
            "without a chat template and answers chat prompts poorly (use a completion agent)",
            file=sys.stderr,
        )
    server = None
    previous = signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops a --local server
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
            processes=args.processes,
            api_key_env=args.api_key_env,
            timeout=args.timeout,
            max_retries=args.max_retries,
            price_prompt=args.price_prompt,
            price_completion=args.price_completion,
            progress=not args.no_progress,
        )
        result = collector.run(args.out, resume=args.resume)
    finally:
        if server is not None:
            server.stop()
        signal.signal(signal.SIGTERM, previous)
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
