"""CLI: ``detailed-balance demo``: the whole flow on the shipped dataset (or a synthetic chain)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="db-demo", help="folder for the fit and the report")
    parser.add_argument("--data", default=None, help="counts or log (default: shipped dataset)")
    parser.add_argument(
        "--synthetic", action="store_true", help="use a 30-state synthetic reversible chain instead"
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from detailed_balance.demo import run_demo

    report_dir = run_demo(args.out, data=args.data, synthetic=args.synthetic, seed=args.seed)
    print(f"report: {report_dir / 'index.md'}")
    return 0
