"""detailed-balance: does an LLM-driven agent move on a potential landscape?

Collect transitions, fit a latent potential, decide detailed balance by Bayesian model
comparison, and report the least-action potential with credible intervals.
Song, Cao, Luo & Zhu, "Detailed balance in large language model-driven agents", arXiv:2512.10047.
"""

from .counts import TransitionCounts
from .errors import CollectionError, DataError, DetailedBalanceError, FitError
from .kernel import TransitionKernel

__version__ = "0.1.0"

__all__ = [
    "CollectionError",
    "DataError",
    "DetailedBalanceError",
    "FitError",
    "TransitionCounts",
    "TransitionKernel",
]
