"""The ``detailed-balance`` command: one subcommand per arrow of the flow.

Each subcommand lives in ``detailed_balance.commands.<name>`` with ``configure(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from .errors import DetailedBalanceError

COMMANDS = {
    "counts": ("counts", "summarise transition counts and convert between formats"),
    "fit": ("fit", "fit a model of the ladder (NUTS, MAP or SVI) and save the posterior"),
    "summary": ("summary", "per-state potentials and diagnostics of a saved fit"),
    "compare": ("compare", "decide detailed balance: evidence, Bayes factors, LOO, G² test"),
    "report": ("report", "figures, tables and index.md for counts or a fit"),
    "collect": ("collect", "collect transitions from an agent via an OpenAI-compatible endpoint"),
    "serve-local": ("serve_local", "serve the offline LLM (llama.cpp) on 127.0.0.1"),
    "demo": ("demo", "analyse the shipped dataset end to end"),
}


class _UsageError(Exception):
    """A bad command line: reported as one line, status 2 (not argparse's usage block)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so the same cleanup runs (status 143)."""


def _terminate(signum, frame):
    raise Terminated


def _redeliver_swallowed(unraisable) -> None:
    """An interrupt that lands in a gc callback or a finalizer (JAX registers one) is printed as
    "Exception ignored" and lost, and the command would carry on: send the signal again, so it
    arrives in ordinary code and ends the command. Any other unraisable goes to Python's hook."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        signum = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()
        return
    sys.__unraisablehook__(unraisable)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="detailed-balance",
        description="Does an LLM agent obey detailed balance? Collect, fit, compare, report.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        _load(module).configure(p)
    return parser


def _load(module: str):
    return importlib.import_module(f"detailed_balance.commands.{module}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not getattr(args, "_module", None):
        parser.print_help()
        return 0
    from .runtime import configure

    configure()  # before any JAX computation: parallel chains, float64, compilation cache
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    previous_hook, sys.unraisablehook = sys.unraisablehook, _redeliver_swallowed
    try:
        code = int(_load(args._module).run(args) or 0)
        sys.stdout.flush()  # here, so a closed pipe is caught below, not at interpreter exit
        return code
    except DetailedBalanceError as exc:
        print(f"detailed-balance {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        what, code = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        print(f"detailed-balance {args.command}: {what}", file=sys.stderr)
        return code
    except BrokenPipeError:  # `... | head` closed the pipe: the reader has what it wanted
        _silence_stdout()
        return 0
    finally:
        sys.unraisablehook = previous_hook
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
