"""Options shared by the commands that run the sampler (fit, compare)."""


def add_sampler_options(parser) -> None:
    """--draws, --warmup, --chains, --seed and --features, with one wording for every command."""
    parser.add_argument(
        "--draws", type=int, default=1000, help="posterior draws per chain (default 1000)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1000, help="warm-up steps per chain (default 1000)"
    )
    parser.add_argument(
        "--chains", type=int, default=None, help="chains (default: one per CPU core)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--features",
        metavar="FILE",
        help="state features for a Gaussian-process prior: .npy (rows in state order) "
        "or .csv with a 'state' column",
    )
