"""One vocabulary for every subcommand: the options shared by several commands, and warnings.

The same flag means the same thing wherever it appears: ``--quiet`` (no progress output),
``--draws``/``--warmup``/``--chains``/``--target-accept``/``--warmup-tree-depth``/``--seed`` (the
NUTS sampler),
``--prior-scale``/``--edge-scale``/``--lengthscale``/``--cycle-scale`` (the field prior). A
command that takes a different kind of "draws" names it differently (``report --kernel-draws``).
"""

from __future__ import annotations

import argparse
import re
import sys

from ..modeldata import CAPPED_WARMUP_MAX_LATENT, MAX_TREE_DEPTH, WARMUP_TREE_DEPTH, FieldPrior
from ._checks import input_file, integer, positive, real, seed

_PRIOR = FieldPrior()  # the prior options' defaults are the library's
TARGET_ACCEPT = 0.8  # NumPyro's default, kept so a fit without the flag is unchanged

# names the library uses in its messages -> the flag a user of the command line would set
_FLAG_FOR = {
    "target_accept": f"--target-accept (default {TARGET_ACCEPT})",
    "warmup_tree_depth": "--warmup-tree-depth",
}


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress output (``--no-progress`` is kept as a hidden alias)."""
    parser.add_argument(
        "--quiet", "--no-progress", dest="quiet", action="store_true",
        help="no progress output (bars and stage lines)",
    )  # fmt: skip
    hide_alias(parser, "--no-progress")


def hide_alias(parser: argparse.ArgumentParser, old: str) -> None:
    """Keep an option's old spelling working (for existing scripts) but out of ``--help`` and
    error messages, which name the current one."""
    action = parser._option_string_actions[old]  # argparse has no public API for this
    action.option_strings = [o for o in action.option_strings if o != old]


def add_seed_option(parser: argparse.ArgumentParser) -> None:
    """``--seed``: one definition for every command that draws random numbers."""
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")


def add_sampler_options(
    parser: argparse.ArgumentParser, *, nuts_tuning: bool = True, mclmc: bool = False
) -> None:
    """--draws, --warmup, --chains, --target-accept, --warmup-tree-depth, --seed and --features,
    one wording for all.

    ``nuts_tuning=False`` leaves ``--target-accept`` and ``--warmup-tree-depth`` out, for a
    command whose library function does not take them; ``mclmc=True`` (a command with
    ``--method mclmc``) leaves ``--warmup``'s default to ``fit``, which tunes MCLMC longer at
    larger sizes.
    """
    parser.add_argument(
        "--draws", type=integer(1), default=1000,
        help="NUTS posterior draws per chain (default 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=integer(0), default=None if mclmc else 1000,
        help="NUTS warm-up steps per chain (default 1000; with fit --method mclmc its tuning "
        "steps, default max(2000, states))",
    )  # fmt: skip
    parser.add_argument(
        "--chains", type=integer(1), default=None, help="chains (default: one per CPU core)"
    )
    if nuts_tuning:
        parser.add_argument(
            "--target-accept", type=real(0.0, 1.0, open_low=True), default=TARGET_ACCEPT,
            metavar="P",
            help=f"NUTS target acceptance probability in (0, 1]; raise it (e.g. 0.95) when "
            f"the fit reports divergences (default {TARGET_ACCEPT})",
        )  # fmt: skip
        parser.add_argument(
            "--warmup-tree-depth", type=integer(1, MAX_TREE_DEPTH), default=None, metavar="D",
            help=f"largest NUTS tree depth during warm-up, 1-{MAX_TREE_DEPTH} (at most 2^D - 1 "
            f"leapfrog steps per warm-up iteration; the draws go to {MAX_TREE_DEPTH}); raise it "
            f"if a fit's R-hat stays high (default {WARMUP_TREE_DEPTH} up to "
            f"{CAPPED_WARMUP_MAX_LATENT:,} latent values, {MAX_TREE_DEPTH} above)",
        )  # fmt: skip
    add_seed_option(parser)
    parser.add_argument(
        "--features",
        metavar="FILE",
        type=input_file,
        help="state features for a Gaussian-process prior: .npy (rows in state order) "
        "or .csv with a 'state' column",
    )


def add_prior_options(
    parser: argparse.ArgumentParser, *, edge: bool = True, cycle: bool = True
) -> None:
    """The field prior's scales (``edge=False`` leaves out ``--edge-scale``/``--lengthscale``,
    ``cycle=False`` leaves out ``--cycle-scale``, for a command whose models have no such term)."""
    parser.add_argument(
        "--prior-scale", type=positive, default=_PRIOR.scale,
        help=f"field scale: sigma_phi ~ HalfNormal(scale) (default {_PRIOR.scale:g})",
    )  # fmt: skip
    if edge:
        parser.add_argument(
            "--edge-scale", type=positive, default=_PRIOR.edge_scale,
            help=f"edge-term scale: sigma_u ~ HalfNormal(scale) (default {_PRIOR.edge_scale:g})",
        )  # fmt: skip
        parser.add_argument(
            "--lengthscale", type=positive, default=_PRIOR.lengthscale,
            help=f"GP lengthscale prior median (default {_PRIOR.lengthscale:g}; with --features)",
        )  # fmt: skip
    if cycle:
        parser.add_argument(
            "--cycle-scale", type=positive, default=_PRIOR.cycle_scale,
            help=f"cycle-term scale: tau ~ HalfNormal(scale) (default {_PRIOR.cycle_scale:g})",
        )  # fmt: skip


def field_prior(args: argparse.Namespace, features, kind: str | None = None):
    """The :class:`~detailed_balance.modeldata.FieldPrior` the prior options describe."""
    kind = kind or ("gp" if features is not None else "normal")
    extra = {}
    for name in ("edge_scale", "lengthscale"):
        if hasattr(args, name):
            extra[name] = getattr(args, name)
    return FieldPrior(kind=kind, scale=args.prior_scale, cycle_scale=args.cycle_scale, **extra)


def warn(message: str) -> None:
    """Print a warning as the commands all do: one line, ``warning: ...``, on stderr.

    Library names in the message (``target_accept``) become the flag that sets them.
    """
    text = " ".join(str(message).split())
    for name, flag in _FLAG_FOR.items():
        text = re.sub(rf"\b{name}\b", flag, text)
    print(f"warning: {text}", file=sys.stderr)


def print_caught(caught) -> None:
    """Print the user-facing warnings recorded by ``warnings.catch_warnings(record=True)``
    (library deprecation noise is dropped)."""
    seen = set()
    for w in caught:
        if not issubclass(w.category, UserWarning) or "FutureWarning" in w.category.__name__:
            continue
        if str(w.message) in seen:
            continue
        seen.add(str(w.message))
        warn(w.message)
