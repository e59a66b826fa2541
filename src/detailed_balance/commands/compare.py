"""CLI: ``detailed-balance compare COUNTS [--models ...] [--json] [--out DIR]``."""

from __future__ import annotations

from ._options import add_sampler_options

MODELS = ("unconstrained", "reversible", "nonreversible")


def _whole_number(text: str) -> int:
    """argparse type: an integer >= 0 (so a bad --g2-samples fails at parse time)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def configure(parser) -> None:
    parser.add_argument(
        "counts", metavar="COUNTS", help="counts file (.csv, .jsonl[.gz], .npz, .json)"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        choices=MODELS,
        help="models to compare (reversible is always included; default: all three)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="write comparison.json, comparison.md, models.csv and sensitivity.csv here",
    )
    add_sampler_options(parser)
    parser.add_argument(
        "--prior-scale", type=float, default=3.0, help="sigma_phi ~ HalfNormal(scale)"
    )
    parser.add_argument("--cycle-scale", type=float, default=1.0, help="tau ~ HalfNormal(scale)")
    parser.add_argument(
        "--alpha", type=float, default=1.0, help="Dirichlet concentration (unconstrained model)"
    )
    parser.add_argument(
        "--sensitivity",
        nargs="*",
        type=float,
        default=[1 / 3, 3.0],
        metavar="MULT",
        help="prior-scale multipliers for the Bayes-factor sensitivity (default 1/3 3; "
        "none: give the flag with no value)",
    )
    parser.add_argument("--no-lrt", action="store_true", help="skip the G² likelihood-ratio test")
    parser.add_argument(
        "--g2-samples",
        type=_whole_number,
        default=999,
        metavar="M",
        help="tables drawn for the exact conditional G² p-value (default 999; 0: chi² only)",
    )
    parser.add_argument(
        "--no-rest", action="store_true", help="ignore self-replies and rejections (no escape)"
    )


def run(args) -> int:
    import json
    from pathlib import Path

    from ..compare import compare
    from ..formats import read_counts
    from ..inference import FieldPrior, read_features

    counts = read_counts(args.counts)
    features = read_features(args.features, counts) if args.features else None
    prior = FieldPrior(
        kind="gp" if features is not None else "normal",
        scale=args.prior_scale,
        cycle_scale=args.cycle_scale,
    )
    result = compare(
        counts,
        models=tuple(args.models),
        prior=prior,
        features=features,
        rest=not args.no_rest,
        alpha=args.alpha,
        sensitivity_scales=tuple(args.sensitivity),
        draws=args.draws,
        warmup=args.warmup,
        chains=args.chains,
        seed=args.seed,
        lrt=not args.no_lrt,
        g2_samples=args.g2_samples,
    )
    payload = result.to_dict()
    payload["counts"] = str(args.counts)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.json").write_text(json.dumps(payload, indent=2) + "\n")
        (out / "comparison.md").write_text(result.to_markdown())
        result.table.to_csv(out / "models.csv", index=False)
        result.sensitivity.to_csv(out / "sensitivity.csv", index=False)
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(result.to_markdown(), end="")
        if args.out:
            print(f"\nwritten to {args.out}/")
    return 0
