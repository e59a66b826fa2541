"""The ``detailed-balance`` command: one subcommand per arrow of the flow.

Each subcommand lives in ``detailed_balance.commands.<name>`` with ``configure(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import signal
import socket
import sys
import threading
import warnings
from pathlib import Path

from .errors import DetailedBalanceError

COMMANDS = {
    "counts": ("counts", "summarise transition counts and convert between formats"),
    "fit": ("fit", "fit a model of the ladder (NUTS, MCLMC, MAP or SVI) and save the posterior"),
    "summary": ("summary", "per-state potentials and diagnostics of a saved fit"),
    "compare": ("compare", "decide detailed balance: evidence, Bayes factors, LOO, G² test"),
    "report": ("report", "figures, tables and index.md for counts or a fit"),
    "universality": ("universality", "do several datasets share one potential? (joint fit)"),
    "collect": ("collect", "collect transitions from an agent via an OpenAI-compatible endpoint"),
    "serve-local": ("serve_local", "serve the offline LLM (llama.cpp) on 127.0.0.1"),
    "demo": ("demo", "analyse the shipped dataset end to end"),
}


class _UsageError(Exception):
    """A bad command line: reported as one line, status 2 (not argparse's usage block)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}")

    def _get_values(self, action, arg_strings):
        # argparse (before Python 3.13) strips "--" from "--opt=--" and stores [] without
        # calling the option's type: a silent wrong value, so refuse it here
        if action.option_strings and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected a value, not '--'")
        return super()._get_values(action, arg_strings)


# commands that handle their own interrupts (collect flushes its log and stops its server)
_OWN_INTERRUPTS = {"collect", "serve-local"}
GRACE_SECONDS = 1.0  # how long an interrupted command may take to unwind before it is ended


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so the same cleanup runs (status 143)."""


def _terminate(signum, frame):
    raise Terminated


class _Interrupts:
    """Ctrl-C and SIGTERM end the command within about a second, always with 130/143.

    Python runs a signal handler only between bytecodes, so while JAX compiles or samples the
    KeyboardInterrupt waits (up to ~30 s) and unwinding through JAX's running computation, or
    the interpreter's exit while its threads still run, sometimes crashes (SIGSEGV). Here the
    signal also wakes a watcher thread at once (``signal.set_wakeup_fd``): it gives the main
    thread ``GRACE_SECONDS`` to unwind (context managers delete their temporary files), then
    removes any temporary output still there, prints the one line and leaves with
    ``os._exit``, never through the interpreter's shutdown. Used only when ``main`` runs as the
    program (``argv is None``): a caller in the same process keeps its ordinary exception.
    """

    def __init__(self):
        self.prog = "detailed-balance"  # "detailed-balance fit" once the command is known
        self.outputs: list[Path] = []
        self.armed = False  # raise KeyboardInterrupt in the main thread (once the work runs)
        self.unwound = threading.Event()
        self.fired = False
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)

    def install(self) -> None:
        signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, self._handler)
        signal.signal(signal.SIGTERM, self._handler)
        threading.Thread(target=self._watch, daemon=True, name="interrupts").start()

    def uninstall(self) -> None:
        """Hand the signals back (to a command with its own interrupt handling)."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _terminate)

    def _handler(self, signum, frame):
        if self.fired or self.unwound.is_set() or not self.armed:  # the watcher ends it
            return
        self.fired = True
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    def _watch(self) -> None:
        signum = 0
        while signum not in (signal.SIGINT, signal.SIGTERM):  # other handlers share the fd
            signum = self._read.recv(1)[0]
        code, what = (143, "terminated") if signum == signal.SIGTERM else (130, "interrupted")
        self.unwound.wait(GRACE_SECONDS)
        for path in self.outputs:
            _remove_temporaries(path)
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        fresh = "\n" if sys.stderr.isatty() else ""  # below a progress bar left mid-line
        print(f"{fresh}{self.prog}: {what}", file=sys.stderr, flush=True)
        os._exit(code)


def _remove_temporaries(path: Path) -> None:
    """Delete the temporary files and folders an output's writer makes next to it
    (``formats.atomic_output``'s ``.NAME.*.tmp``, the report's ``.DIR.*.tmp/``), and inside it
    when it is a folder."""
    candidates = list(path.parent.glob(f".{path.name}.*.tmp*"))
    if path.is_dir():
        candidates += list(path.glob(".*.tmp*")) + list(path.glob("*/.*.tmp*"))
    for p in candidates:
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        except OSError:
            pass


def _outputs(args: argparse.Namespace) -> list[Path]:
    return [Path(v) for v in (getattr(args, "out", None), getattr(args, "to", None)) if v]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning a command shows: one line, ``warning: ...``, on stderr (no source line);
    library deprecation notices are not the user's business."""
    if issubclass(category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
        return
    from .commands._options import warn

    warn(message)


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
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}",
        help="print the version and exit",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        _load(module).configure(p)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("detailed-balance")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


def _load(module: str):
    return importlib.import_module(f"detailed_balance.commands.{module}")


def main(argv: list[str] | None = None) -> int:
    main_thread = threading.current_thread() is threading.main_thread()
    interrupts = None
    if argv is None and main_thread:  # run as the program: from here on a signal ends it
        interrupts = _Interrupts()
        interrupts.install()
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
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    if interrupts is not None and args.command in _OWN_INTERRUPTS:
        interrupts.uninstall()
        interrupts = None
    elif interrupts is not None:
        interrupts.prog, interrupts.outputs = f"detailed-balance {args.command}", _outputs(args)
        signal.signal(signal.SIGTERM, interrupts._handler)
        interrupts.armed = True
    previous_hook, sys.unraisablehook = sys.unraisablehook, _redeliver_swallowed
    previous_show, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        code = int(_load(args._module).run(args) or 0)
        sys.stdout.flush()  # here, so a closed pipe is caught below, not at interpreter exit
        return code
    except DetailedBalanceError as exc:
        print(f"detailed-balance {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if interrupts is not None:  # the watcher prints the line and ends the process
            interrupts.unwound.set()
            threading.Event().wait()
        what, code = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        print(f"detailed-balance {args.command}: {what}", file=sys.stderr)
        return code
    except BrokenPipeError:  # `... | head` closed the pipe: the reader has what it wanted
        _silence_stdout()
        return 0
    finally:
        if interrupts is not None:  # a signal from now on: the watcher ends the process
            interrupts.unwound.set()
        sys.unraisablehook = previous_hook
        warnings.showwarning = previous_show
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
