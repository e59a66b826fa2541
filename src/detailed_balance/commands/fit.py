"""CLI: ``detailed-balance fit COUNTS --model reversible --out FIT.nc`` (``--model all --out DIR``:
one ``DIR/<model>.nc`` per model of the ladder, the input of ``detailed-balance compare``)."""

from __future__ import annotations

from ..modeldata import LADDER, METHODS, FieldPrior
from ._checks import input_file, output_dir, output_file
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
        choices=(*LADDER, "all"),
        help="hypothesis to fit (default: reversible; all: each model of the ladder once)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="FIT.nc",
        help="where to write the fit (netCDF); with --model all a folder (one .nc per model)",
    )
    parser.add_argument(
        "--method",
        default="nuts",
        choices=METHODS,
        help="NUTS sampling, MAP optimisation, SVI or MCLMC sampling (default: nuts)",
    )
    add_sampler_options(parser, mclmc=True)
    parser.add_argument(
        "--prior",
        default=None,
        choices=FieldPrior.KINDS,
        help="field prior (default: normal; gp with --features; flat for --method map only)",
    )
    add_prior_options(parser)
    parser.add_argument(
        "--no-rest", action="store_true", help="ignore self-replies and rejections (no escape)"
    )
    parser.add_argument(
        "--derived", action="store_true",
        help="also store phi, s, u and the fitted log transition probabilities (log_p_arc, "
        "log_p_rest): a file several times larger (default: latent draws, V, V_within, "
        "cycle affinities and the log-likelihood)",
    )  # fmt: skip
    add_quiet_option(parser)


def run(args) -> int:
    import argparse
    import warnings
    from pathlib import Path

    from ..errors import DataError
    from ..formats import read_counts
    from ..inference import FIT_SUFFIXES, fit_ladder, read_features, save_fit, summarise
    from ._options import field_prior, print_caught

    try:  # checked here, not by argparse: a file or a folder depending on --model
        if args.model == "all":
            output_dir(args.out)
        else:
            output_file(*FIT_SUFFIXES)(args.out)
    except argparse.ArgumentTypeError as exc:
        raise DataError(f"argument --out: {exc}") from None
    counts = read_counts(args.counts)
    features = read_features(args.features, counts) if args.features else None
    kind = args.prior or ("gp" if features is not None else "normal")
    prior = field_prior(args, features, kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = fit_ladder(
            counts,
            models=list(LADDER) if args.model == "all" else [args.model],
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
            warmup_tree_depth=args.warmup_tree_depth,
            derived=args.derived,
        )
    print_caught(caught)
    print(f"{counts!r}")
    for name, idata in fits.items():
        out = Path(args.out) / f"{name}.nc" if args.model == "all" else Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_fit(idata, out)  # atomic: an interrupted write leaves no partial fit
        _print_fit(summarise(idata), out)
    return 0


def _print_fit(s: dict, path) -> None:
    d = s["diagnostics"]
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
    print(f"wrote {path}")
