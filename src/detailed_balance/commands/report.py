"""CLI: ``detailed-balance report INPUT --out DIR`` (INPUT: a counts file or a saved fit)."""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument(
        "input", metavar="INPUT", help="counts (.csv, .jsonl[.gz], .npz, .json) or a fit (.nc)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for the report")
    parser.add_argument(
        "--kernel", default="exp", choices=("exp", "softplus"),
        help="least-action kernel K: exp(-x/2) (paper's main text) or log(1+e^-x) (default: exp)",
    )  # fmt: skip
    parser.add_argument(
        "--draws", type=int, default=1000,
        help="posterior draws of T pushed through least action (default 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--no-compare", action="store_true",
        help="skip the model comparison (NUTS fits of the ladder: the slow part)",
    )  # fmt: skip
    parser.add_argument(
        "--compare-draws", type=int, default=1000, help="NUTS draws per chain for the comparison"
    )
    parser.add_argument(
        "--potential", metavar="CSV",
        help="a CSV 'state,V' of a candidate potential (e.g. a formula): adds the share of "
        "strong transitions going downhill under it",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=float, default=0.05, help="strong transition: T > this (default 0.05)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..errors import DataError
    from ..report import build_report

    potential = None
    if args.potential:
        potential = _read_potential(args.potential, DataError)
    if args.draws < 1:
        raise DataError("--draws must be at least 1")
    index = build_report(
        args.input,
        args.out,
        K=args.kernel,
        draws=args.draws,
        seed=args.seed,
        compare=not args.no_compare,
        compare_kwargs={"draws": args.compare_draws, "warmup": args.compare_draws},
        potential=potential,
        threshold=args.threshold,
        progress=not args.quiet,
    )
    print(f"report written: {index}")
    return 0


def _read_potential(path, DataError):
    """A CSV with columns state,V -> a function state -> V (states not listed: an error)."""
    import csv

    table = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"state", "V"} <= set(reader.fieldnames):
            raise DataError("a potential CSV needs the columns 'state' and 'V'", file=path)
        for row_no, row in enumerate(reader, start=2):
            try:
                table[row["state"]] = float(row["V"])
            except (TypeError, ValueError):
                raise DataError(f"V {row['V']!r} is not a number", file=path, row=row_no) from None

    def potential(state: str) -> float:
        if state not in table:
            raise DataError(f"state {state!r} has no V in the potential file", file=path)
        return table[state]

    return potential
