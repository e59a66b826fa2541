"""detailed-balance: does an LLM-driven agent move on a potential landscape?

Collect transitions, fit a latent potential, decide detailed balance by Bayesian model
comparison, and report the least-action potential with credible intervals.
Song, Cao, Luo & Zhu, "Detailed balance in large language model-driven agents", arXiv:2512.10047.

The heavy entry points (``fit``, ``compare``, ``minimise_action``, ``read_counts``, ...) are
imported on first use, so ``import detailed_balance`` and the CLI's ``--help`` stay fast.
Importing changes no global JAX state; call :func:`configure` once (parallel chains, float64,
a persistent compilation cache), as the ``detailed-balance`` command does.
"""

from importlib import import_module

from .counts import TransitionCounts
from .errors import CollectionError, DataError, DetailedBalanceError, FitError
from .kernel import TransitionKernel

__version__ = "0.1.0"

_LAZY = {
    "configure": "runtime",
    "fit": "inference",
    "summarise": "inference",
    "posterior_kernel": "inference",
    "counts_from_fit": "inference",
    "save_fit": "inference",
    "load_fit": "inference",
    "fit_ladder": "inference",
    "compare": "comparison",
    "prior_sensitivity": "comparison",
    "read_comparison": "comparison",
    "likelihood_ratio_test": "comparison",
    "minimise_action": "least_action",
    "read_counts": "formats",
    "write_counts": "formats",
    "read_attempt_log": "formats",
    "build_report": "report",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'detailed_balance' has no attribute {name!r}")


__all__ = [
    "CollectionError",
    "DataError",
    "DetailedBalanceError",
    "FitError",
    "TransitionCounts",
    "TransitionKernel",
    *_LAZY,
]
