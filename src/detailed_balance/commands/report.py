"""CLI: ``detailed-balance report INPUT --out DIR`` (INPUT: a counts file or a saved fit)."""

from __future__ import annotations

from ._checks import input_file, integer, output_dir, real
from ._options import add_quiet_option, add_seed_option, hide_alias


def configure(parser) -> None:
    parser.add_argument(
        "input",
        metavar="INPUT",
        type=input_file,
        help="counts (.csv, .jsonl[.gz], .npz, .json) or a fit (.nc)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", type=output_dir, help="directory for the report"
    )
    parser.add_argument(
        "--kernel", default="exp", choices=("exp", "softplus"),
        help="least-action kernel K: exp(-x/2) (paper's main text) or log(1+e^-x) (default: exp)",
    )  # fmt: skip
    parser.add_argument(
        "--kernel-draws", "--draws", dest="kernel_draws", type=integer(1), default=1000,
        metavar="N",
        help="posterior draws of T pushed through least action (default 1000; not the "
        "sampler's --draws)",
    )  # fmt: skip
    hide_alias(parser, "--draws")  # its old name, which meant something else in fit/compare
    parser.add_argument(
        "--no-compare", action="store_true",
        help="skip the model comparison (for a counts file it fits the ladder with NUTS: the "
        "slow part; a fit is never refitted)",
    )  # fmt: skip
    parser.add_argument(
        "--compare-draws",
        type=integer(1),
        default=1000,
        metavar="N",
        help="NUTS draws (and warm-up steps) per chain for the comparison (default 1000)",
    )
    parser.add_argument(
        "--comparison", metavar="JSON", type=input_file,
        help="comparison.json from `detailed-balance compare FITS --out DIR` (a fit is never "
        "refitted: without it the report of a fit has no comparison)",
    )  # fmt: skip
    parser.add_argument(
        "--potential", metavar="CSV", type=input_file,
        help="a CSV 'state,V' of a candidate potential (e.g. a formula): adds the share of "
        "strong transitions going downhill under it",
    )  # fmt: skip
    parser.add_argument(
        "--threshold",
        type=real(0.0, 1.0, open_low=True),
        default=0.05,
        help="strong transition: T > this (default 0.05)",
    )
    add_seed_option(parser)
    add_quiet_option(parser)


def run(args) -> int:
    from ..errors import DataError
    from ..report import build_report

    potential = None
    if args.potential:
        potential = _read_potential(args.potential, DataError)
    index = build_report(
        args.input,
        args.out,
        K=args.kernel,
        draws=args.kernel_draws,
        seed=args.seed,
        compare=not args.no_compare,
        compare_kwargs={"draws": args.compare_draws, "warmup": args.compare_draws},
        comparison=args.comparison,
        potential=potential,
        threshold=args.threshold,
        progress=not args.quiet,
    )
    print(f"report written: {index}")
    return 0


def _read_potential(path, DataError):
    """A CSV with columns state,V -> a function state -> V (states not listed: an error)."""
    import csv
    import math

    table = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"state", "V"} <= set(reader.fieldnames):
                raise DataError("a potential CSV needs the columns 'state' and 'V'", file=path)
            for row in reader:
                row_no = reader.line_num
                try:
                    value = float(row["V"])
                except (TypeError, ValueError):
                    problem = f"V {row['V']!r} is not a number"
                    raise DataError(problem, file=path, row=row_no) from None
                if not math.isfinite(value):
                    raise DataError(f"V {row['V']!r} is not finite", file=path, row=row_no)
                if row["state"] in table:
                    problem = f"state {row['state']!r} is listed twice"
                    raise DataError(problem, file=path, row=row_no)
                table[row["state"]] = value
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", file=path) from None
    except csv.Error as exc:
        raise DataError(f"unreadable CSV ({exc})", file=path) from None

    def potential(state: str) -> float:
        if state not in table:
            raise DataError(f"state {state!r} has no V in the potential file", file=path)
        return table[state]

    return potential
