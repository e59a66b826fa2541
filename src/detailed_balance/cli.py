"""The ``detailed-balance`` command: one subcommand per arrow of the flow.

Each subcommand lives in ``detailed_balance.commands.<name>`` with ``configure(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import DetailedBalanceError

COMMANDS = {
    "counts": ("counts", "summarise transition counts and convert between formats"),
    "fit": ("fit", "fit a model of the ladder (NUTS, MAP or SVI) and save the posterior"),
    "summary": ("summary", "per-state potentials and diagnostics of a saved fit"),
    "compare": ("compare", "decide detailed balance: evidence, Bayes factors, LOO, G² test"),
    "report": ("report", "figures, tables and index.md for counts or a fit"),
    "universality": ("universality", "do several datasets share one potential? (joint fit)"),
    "collect": ("collect", "collect transitions from an agent via an OpenAI-compatible endpoint"),
    "serve-local": ("serve_local", "serve the offline LLM (llama.cpp) on 127.0.0.1"),
    "demo": ("demo", "analyse the shipped dataset end to end"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 0
    try:
        return int(_load(args._module).run(args) or 0)
    except DetailedBalanceError as exc:
        print(f"detailed-balance {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"detailed-balance {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
