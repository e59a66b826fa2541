"""CLI: ``detailed-balance fit COUNTS --model reversible --out FIT.nc``."""

from __future__ import annotations

from ._checks import input_file, output_file
from ._options import add_prior_options, add_quiet_option, add_sampler_options


def configure(parser) -> None:
    parser.add_argument(
        "counts",
        metavar="COUNTS",
        type=input_file,
        help="counts file (.csv, .jsonl[.gz], .npz, .json)",
    )
    parser.add_argument(
        "--model",
        default="reversible",
        choices=("reversible", "unconstrained", "nonreversible"),
        help="hypothesis to fit (default: reversible)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="FIT.nc",
        type=output_file(".nc", ".netcdf", ".h5"),
        help="where to write the fit (netCDF)",
    )
    parser.add_argument(
        "--method",
        default="nuts",
        choices=("nuts", "map", "svi"),
        help="NUTS sampling, MAP optimisation or SVI (default: nuts)",
    )
    add_sampler_options(parser)
    parser.add_argument(
        "--prior",
        default=None,
        choices=("normal", "gp", "flat"),
        help="field prior (default: normal; gp with --features; flat for --method map only)",
    )
    add_prior_options(parser)
    parser.add_argument(
        "--no-rest", action="store_true", help="ignore self-replies and rejections (no escape)"
    )
    add_quiet_option(parser)


def run(args) -> int:
    import warnings
    from pathlib import Path

    from .. import _arviz
    from ..formats import atomic_output, read_counts
    from ..inference import fit, read_features, summarise
    from ._options import field_prior, print_caught

    counts = read_counts(args.counts)
    features = read_features(args.features, counts) if args.features else None
    kind = args.prior or ("gp" if features is not None else "normal")
    prior = field_prior(args, features, kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idata = fit(
            counts,
            args.model,
            method=args.method,
            prior=prior,
            features=features,
            rest=not args.no_rest,
            draws=args.draws,
            warmup=args.warmup,
            chains=args.chains,
            seed=args.seed,
            progress=not args.quiet,
            target_accept=args.target_accept,
        )
    print_caught(caught)
    with atomic_output(args.out) as tmp:  # an interrupted write leaves no partial fit
        try:
            _arviz.to_netcdf(idata, tmp)
        finally:
            Path(f"{tmp}.tmp").unlink(missing_ok=True)  # to_netcdf's own temporary file
    s = summarise(idata)
    d = s["diagnostics"]
    print(f"{counts!r}")
    print(
        f"model {s['model']}, method {s['method']}, {s['chains']} chain(s) x {s['draws']} draw(s)"
    )
    if d.get("max_rhat") is not None:
        print(
            f"max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess']:.0f}, "
            f"divergences {d['divergences']}, {d['fit_seconds']:.1f} s"
        )
    else:
        print(f"{d['fit_seconds']:.1f} s")
    print(f"wrote {args.out}")
    return 0
