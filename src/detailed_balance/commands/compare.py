"""CLI: ``detailed-balance compare FIT.nc ... [--json] [--out DIR]`` compares stored fits (no
sampler runs); ``detailed-balance compare COUNTS [--models ...]`` fits the ladder first."""

from __future__ import annotations

from ..modeldata import EVIDENCE_FALLBACKS, LADDER
from ._checks import input_file, integer, output_dir, positive
from ._options import add_prior_options, add_quiet_option, add_sampler_options


def configure(parser) -> None:
    parser.add_argument(
        "counts",
        metavar="COUNTS | FIT.nc",
        nargs="+",
        type=input_file,
        help="fits of the same counts, one per model (`fit --model all --out fits/`, then "
        "fits/*.nc), or one counts file (.csv, .jsonl[.gz], .npz, .json) to fit then compare",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(LADDER),
        choices=LADDER,
        help="models to compare (reversible is always included; default: all three)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=output_dir,
        help="write comparison.json, comparison.md, models.csv and sensitivity.csv here",
    )
    add_sampler_options(parser)
    add_prior_options(parser)
    parser.add_argument(
        "--alpha", type=positive, default=1.0, help="Dirichlet concentration (unconstrained model)"
    )
    parser.add_argument(
        "--sensitivity",
        nargs="*",
        type=positive,
        default=[1 / 3, 3.0],
        metavar="MULT",
        help="prior-scale multipliers for the Bayes-factor sensitivity (default 1/3 3; "
        "none: give the flag with no value)",
    )
    parser.add_argument("--no-lrt", action="store_true", help="skip the G² likelihood-ratio test")
    parser.add_argument(
        "--g2-samples",
        type=integer(0),
        default=999,
        metavar="M",
        help="tables drawn for the exact conditional G² p-value (default 999; 0: chi² only)",
    )
    parser.add_argument(
        "--no-rest", action="store_true", help="ignore self-replies and rejections (no escape)"
    )
    parser.add_argument(
        "--tau-path",
        action="store_true",
        help="where Savage–Dickey and bridge sampling give no Bayes factor, estimate it by "
        "thermodynamic integration over tau's prior scale (~20 NUTS runs; also for fits)",
    )
    parser.add_argument(
        "--nested-smc",
        action="store_true",
        help="where Savage–Dickey and bridge sampling give no Bayes factor, estimate it by "
        "tempered SMC from the reversible fit's draws (no refit; before the bounds)",
    )
    parser.add_argument(
        "--nested-smc-particles",
        type=integer(8),
        metavar="N",
        help="particles per nested-SMC run (default 256; the demo uses 64); implies --nested-smc",
    )
    parser.add_argument(
        "--nested-smc-runs",
        type=integer(2),
        metavar="N",
        help="independent nested-SMC runs, whose spread is its error (default 4; the demo uses "
        "3); implies --nested-smc",
    )
    parser.add_argument(
        "--evidence-fallback",
        choices=EVIDENCE_FALLBACKS,
        help="where bridge sampling refuses a model's log evidence, estimate it with this "
        "instead (draws-smc: tempered SMC from a Gaussian of the fit's draws; minutes per model "
        "at hundreds of states)",
    )
    add_quiet_option(parser)


def _nested_smc(args) -> bool | dict:
    """``compare``'s ``nested_smc``: the flag, or the settings given (which imply it)."""
    settings = {"particles": args.nested_smc_particles, "runs": args.nested_smc_runs}
    settings = {k: v for k, v in settings.items() if v is not None}
    return settings or args.nested_smc


def _compare_fits(args):
    """Compare stored fits (given as FIT.nc files): no sampler runs."""
    from ..comparison import compare
    from ..inference import load_fit

    fits = [load_fit(path) for path in args.counts]
    return compare(fits, alpha=args.alpha, seed=args.seed, lrt=not args.no_lrt,
                   g2_samples=args.g2_samples, tau_path=args.tau_path,
                   nested_smc=_nested_smc(args),
                   evidence_fallback=args.evidence_fallback)  # fmt: skip


def run(args) -> int:
    from ..comparison import compare
    from ..errors import DataError
    from ..formats import read_counts
    from ..inference import FIT_SUFFIXES, read_features
    from ._options import field_prior

    if all(p.lower().endswith(FIT_SUFFIXES) for p in args.counts):
        return _write(args, _compare_fits(args), {"fits": [str(p) for p in args.counts]})
    if len(args.counts) > 1:
        raise DataError("give one counts file, or fits (.nc) only")
    counts = read_counts(args.counts[0])
    features = read_features(args.features, counts) if args.features else None
    prior = field_prior(args, features)
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
        progress=not args.quiet,
        tau_path=args.tau_path,
        nested_smc=_nested_smc(args),
        evidence_fallback=args.evidence_fallback,
        target_accept=args.target_accept,
        warmup_tree_depth=args.warmup_tree_depth,
    )
    return _write(args, result, {"counts": str(args.counts[0])})


def _write(args, result, source: dict) -> int:
    from pathlib import Path

    from ..formats import atomic_output, to_json

    payload = {**result.to_dict(), **source}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "comparison.json": to_json(payload, indent=2) + "\n",
            "comparison.md": result.to_markdown(),
            "models.csv": result.table.to_csv(index=False),
            "sensitivity.csv": result.sensitivity.to_csv(index=False),
        }
        for name, text in files.items():  # each whole or not at all
            with atomic_output(out / name) as tmp:
                tmp.write_text(text, encoding="utf-8")
    if args.json:
        print(to_json(payload, indent=2))
    else:
        print(result.to_markdown(), end="")
        if args.out:
            print(f"\nwritten to {str(args.out).rstrip('/')}/")
    return 0
