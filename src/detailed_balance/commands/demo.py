"""CLI: ``detailed-balance demo``: the whole flow on the shipped dataset (or a synthetic chain)."""

from __future__ import annotations

import argparse

from ._checks import input_file
from ._options import add_quiet_option, add_seed_option


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="db-demo", metavar="DIR",
        help="folder for the counts, the fit and the report (default: db-demo)",
    )  # fmt: skip
    parser.add_argument(
        "--data", default=None, metavar="FILE", type=input_file,
        help="counts or attempt log to analyse (default: the shipped dataset)",
    )  # fmt: skip
    parser.add_argument(
        "--synthetic", action="store_true", help="use a 30-state synthetic reversible chain instead"
    )
    add_seed_option(parser)
    add_quiet_option(parser)


def run(args: argparse.Namespace) -> int:
    from detailed_balance.demo import run_demo

    report_dir = run_demo(
        args.out, data=args.data, synthetic=args.synthetic, seed=args.seed, progress=not args.quiet
    )
    print(f"report: {report_dir / 'index.md'}")
    return 0
