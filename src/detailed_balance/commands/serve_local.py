"""CLI: ``detailed-balance serve-local``: the offline LLM on 127.0.0.1 until interrupted."""

from __future__ import annotations

import signal
import sys


def configure(parser) -> None:
    from ._checks import integer, real

    parser.add_argument(
        "--port", type=integer(1, 65535), default=8080, help="port on 127.0.0.1 (default 8080)"
    )
    parser.add_argument(
        "--threads", type=integer(1, 1024), default=2, help="generation threads (default 2)"
    )
    parser.add_argument("--log", help="file for the llama.cpp server's output (default: discarded)")
    parser.add_argument(
        "--duration",
        type=real(0.0),
        default=0.0,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )


def _interrupt(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run(args) -> int:
    import subprocess

    from ..collect.local import LOCAL_MODEL, LocalServer

    signal.signal(signal.SIGTERM, _interrupt)  # stop the server on kill, not only on Ctrl-C
    server = LocalServer(args.port, n_threads=args.threads, log_path=args.log)
    print(f"starting llama.cpp with gemma-3-270m on 127.0.0.1:{args.port} ...", file=sys.stderr)
    server.start()
    print(f"serving model {LOCAL_MODEL!r} at {server.base_url} (Ctrl-C to stop)", flush=True)
    print(
        f"  e.g. detailed-balance collect --agent animals --base-url {server.base_url} "
        f"--model {LOCAL_MODEL} --attempts 100 --out animals.jsonl",
        flush=True,
    )
    died = False
    try:
        server.proc.wait(timeout=args.duration or None)
        died = True  # it exited on its own
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        pass
    finally:
        server.stop()
    if died:
        print(f"the llama.cpp server exited with code {server.proc.returncode}", file=sys.stderr)
        return 1
    print("stopped", file=sys.stderr)
    return 0
