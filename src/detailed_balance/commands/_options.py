"""Options shared by the commands that run the sampler (fit, compare)."""

from ._checks import input_file, integer, seed


def add_sampler_options(parser) -> None:
    """--draws, --warmup, --chains, --seed and --features, with one wording for every command."""
    parser.add_argument(
        "--draws", type=integer(1), default=1000, help="posterior draws per chain (default 1000)"
    )
    parser.add_argument(
        "--warmup", type=integer(0), default=1000, help="warm-up steps per chain (default 1000)"
    )
    parser.add_argument(
        "--chains", type=integer(1), default=None, help="chains (default: one per CPU core)"
    )
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--features",
        metavar="FILE",
        type=input_file,
        help="state features for a Gaussian-process prior: .npy (rows in state order) "
        "or .csv with a 'state' column",
    )
