"""``detailed-balance counts FILE [--to OUT] [--json]``: paper-style summary, format conversion."""

from __future__ import annotations

import argparse
import sys
import warnings

from ._checks import input_file, output_file

# kept here (not imported from formats) so ``--help`` does not import numpy
FORMATS = ("csv", "log", "npz", "json", "words", "expressions")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE",
        type=input_file,
        help="counts table (.csv), attempt log (.jsonl, .jsonl.gz), native (.npz) or the "
        "paper's JSON (.json)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, help="read FILE as this format (default: by extension)"
    )
    parser.add_argument(
        "--to",
        metavar="OUT",
        type=output_file(".csv", ".npz"),
        help="also write the counts to OUT (.csv or .npz)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def summary_lines(s: dict) -> list[str]:
    """The paper-style summary as aligned text lines."""
    rows = [
        ("attempts", f"{s['attempts']}"),
        (
            "transition samples",
            f"{s['transition_samples']}  (moves {s['moves']}, self {s['self_transitions']})",
        ),
        ("rejected (escapes)", f"{s['rejected']}"),
        ("unique states", f"{s['states']}  ({s['sources']} used as sources)"),
        (
            "unique transitions",
            f"{s['unique_transitions']}  ({s['unique_moves']} between different states)",
        ),
        ("states sampled more than once", f"{s['states_sampled_more_than_once']}"),
        ("two-way pairs", f"{s['two_way_pairs']}"),
        (
            "two-way components",
            f"{s['two_way_components']}  (largest {s['largest_two_way_component']} states; "
            "V is defined up to a constant in each)",
        ),
        ("states with no incoming move", f"{s['no_incoming']}"),
        ("states with no outgoing move", f"{s['no_outgoing']}"),
    ]
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {v}" for k, v in rows]


def run(args: argparse.Namespace) -> int:
    from ..formats import read_counts, to_json, write_counts

    # a reader's warnings (e.g. a truncated last log line) become one line each on stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counts = read_counts(args.file, args.format)
    for w in caught:
        print(f"detailed-balance counts: warning: {w.message}", file=sys.stderr)
    if args.to:
        write_counts(counts, args.to)
    summary = counts.summary()
    if args.json:
        payload = {"file": args.file, "summary": summary, "notes": list(counts.notes)}
        if args.to:
            payload["wrote"] = args.to
        print(to_json(payload, indent=2))
        return 0
    print(f"{args.file}: {summary['states']} states, {summary['attempts']} attempts")
    print("\n".join(summary_lines(summary)))
    for note in counts.notes:
        print(f"note: {note}")
    if args.to:
        print(f"wrote {args.to}")
    return 0
