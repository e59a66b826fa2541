"""CLI: ``detailed-balance universality A B C [--temperatures ...] --out DIR``."""

from __future__ import annotations

from ..universality import MODEL_NAMES
from ._checks import output_dir, positive
from ._options import add_prior_options, add_sampler_options


def configure(parser) -> None:
    parser.add_argument(
        "counts",
        nargs="+",
        metavar="COUNTS",
        help="two or more counts files or attempt logs (.csv, .jsonl[.gz], .npz, .json); "
        "labels (model, template, temperature) come from the logs' run configuration",
    )
    parser.add_argument(
        "--temperatures",
        help="comma-separated sampling temperature per dataset, '-' for none (default: from the "
        "attempt logs, for the datasets with the first dataset's model and template)",
    )
    parser.add_argument(
        "--labels", help="comma-separated dataset names (default: from the logs, or file stems)"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODEL_NAMES),
        choices=MODEL_NAMES,
        help="kept for compatibility: all three hypotheses are always fitted (the Bayes factor "
        "needs pooled, LOO needs shared and separate)",
    )
    parser.add_argument(
        "--bridge",
        action="store_true",
        help="also estimate each model's evidence by bridge sampling, as a check on the "
        "Savage–Dickey Bayes factor (slow; refuses when draws are fewer than parameters)",
    )
    parser.add_argument(
        "--common",
        action="store_true",
        help="restrict every dataset to the states with attempts in all of them "
        "(moves elsewhere become escapes)",
    )
    parser.add_argument(
        "--out", metavar="DIR", type=output_dir, help="write universality.json/.md and figures"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--beta-scale", type=positive, default=1.0, help="log beta_k ~ Normal(0, scale) (default 1)"
    )
    parser.add_argument(
        "--tau-scale", type=positive, default=1.0, help="tau ~ HalfNormal(scale) (default 1)"
    )
    add_prior_options(parser, edge=False, cycle=False)
    parser.add_argument(
        "--no-rest", action="store_true", help="ignore self-replies and rejections (no escape)"
    )
    add_sampler_options(parser, nuts_tuning=False)  # the joint fits keep their own


def _temperatures(text: str | None, labels: list[dict]) -> list:
    from ..errors import DataError

    if text is None:
        ref = labels[0]
        same = [
            lab.get("model") == ref.get("model") and lab.get("template") == ref.get("template")
            for lab in labels
        ]
        return [
            lab.get("temperature") if ok else None for lab, ok in zip(labels, same, strict=True)
        ]
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != len(labels):
        raise DataError(f"--temperatures has {len(parts)} values for {len(labels)} datasets")
    try:
        return [None if p in ("-", "") else float(p) for p in parts]
    except ValueError:
        raise DataError(f"--temperatures must be numbers or '-', got {text!r}") from None


def _names(labels: list[dict]) -> None:
    """Readable unique names: the file stem, or model/template/T from the run configuration."""
    for lab in labels:
        if lab.get("model"):
            lab["name"] = f"{lab['name']} ({lab['model']}, T={lab.get('temperature')})"
    seen: dict = {}
    for lab in labels:
        seen[lab["name"]] = seen.get(lab["name"], 0) + 1
        if seen[lab["name"]] > 1:
            lab["name"] = f"{lab['name']} #{seen[lab['name']]}"


def run(args) -> int:
    import json

    from ..errors import DataError
    from ..formats import read_counts
    from ..modeldata import FieldPrior
    from ..universality import compare_universality, read_labels, write_outputs

    if args.features:
        raise DataError("--features is not supported by the joint models")
    if len(args.counts) < 2:
        raise DataError("give at least two datasets")
    counts = [read_counts(p) for p in args.counts]
    labels = [read_labels(p) for p in args.counts]
    temps = _temperatures(args.temperatures, labels)
    if args.labels:
        names = [s.strip() for s in args.labels.split(",")]
        if len(names) != len(labels):
            raise DataError(f"--labels has {len(names)} names for {len(labels)} datasets")
        for lab, n in zip(labels, names, strict=True):
            lab["name"] = n
    else:
        _names(labels)
    result = compare_universality(
        counts,
        labels=labels,
        temperatures=temps,
        models=tuple(args.models),
        common=args.common,
        prior=FieldPrior(scale=args.prior_scale),
        beta_scale=args.beta_scale,
        tau_scale=args.tau_scale,
        rest=not args.no_rest,
        draws=args.draws,
        warmup=args.warmup,
        chains=args.chains,
        seed=args.seed,
        bridge=args.bridge,
    )
    if args.out:
        write_outputs(result, args.out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.to_markdown(), end="")
        if args.out:
            print(f"\nwritten to {args.out}/")
    return 0
