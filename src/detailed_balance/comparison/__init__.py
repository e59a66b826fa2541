"""Compare fitted models and decide detailed balance: evidence, G² test, LOO, verdict.

:func:`compare` takes fits (one per model, e.g. from :func:`detailed_balance.fit_ladder`) and
runs no sampler. One idea per private module, re-exported here: ``_evidence`` (the log evidence
type and a model as a flat log density), ``_dirichlet`` (exact evidence of the unconstrained
model), ``_bridge`` (bridge sampling), ``_annealed`` (annealed importance sampling from the
Laplace fit), ``_smc`` (tempered SMC from the Laplace fit, for thousands of parameters;
``_tempering`` holds what the two share: the Laplace reference and the HMC move),
``_pareto`` (Pareto k̂ of importance weights), ``_savage_dickey`` (the Bayes
factor of a nested model from the larger one's posterior), ``_g2_test`` (the
likelihood-ratio G² test of reversibility; its two exact kernels in ``_g2_cycles`` and
``_g2_walk``), ``_tau_path`` (the same Bayes factor by thermodynamic integration over tau's
prior scale), ``_variational`` (variational bounds: ELBO/EUBO of one model, and the bracket of
the reversible/non-reversible Bayes factor from both fits' draws), ``_nested_smc`` (that
Bayes factor with its error by tempered SMC from the reversible posterior), ``_loo`` (PSIS-LOO per
attempt), ``_sensitivity`` (Bayes factors under other priors), ``_verdict`` (the Kass–Raftery
scale, the verdict and the Markdown tables) and ``_compare`` (:class:`ComparisonResult`,
:func:`compare`).
"""

# a fit's prior and model data are read by the fit stage; re-exported for the estimators' callers
from ..inference import fit_model_data, fit_prior
from ._annealed import annealed_evidence
from ._bridge import bridge_from_draws, bridge_sampling
from ._compare import (
    BOUND_METHODS,
    EVIDENCE_FALLBACKS,
    ComparisonResult,
    bridge_is_doomed,
    compare,
    fit_bf_bounds,
    fit_evidence,
    fit_nested_smc,
    fit_savage_dickey,
    fit_tau_path,
    model_evidence,
    read_comparison,
)
from ._dirichlet import dirichlet_posterior_draws, log_evidence_dirichlet
from ._evidence import Evidence, unconstrained_draws
from ._g2_cycles import cycle_groups
from ._g2_test import (
    conditional_test,
    free_log_likelihood,
    likelihood_ratio_test,
    reversible_mle,
    simulate_counts,
    strong_class_edges,
)
from ._loo import PARETO_K_BAD, fit_loo, weighted_loo, weighted_se
from ._nested_smc import NestedBayesFactor, nested_smc_bf
from ._pareto import pareto_khat
from ._savage_dickey import (
    SD_PARETO_K_MAX,
    SD_QUAD_MAX_NATS,
    SD_RHAT_MAX,
    SavageDickey,
    savage_dickey,
)
from ._sensitivity import prior_sensitivity, scaled_prior
from ._smc import smc_evidence
from ._tau_path import PathBayesFactor, tau_path_log_bf
from ._variational import (
    BayesFactorBounds,
    EvidenceBounds,
    bayes_factor_bounds,
    nested_bf_bounds,
    variational_bounds,
)
from ._verdict import KASS_RAFTERY, format_markdown, kass_raftery, write_verdict

__all__ = [
    "BOUND_METHODS",
    "EVIDENCE_FALLBACKS",
    "KASS_RAFTERY",
    "PARETO_K_BAD",
    "SD_PARETO_K_MAX",
    "SD_QUAD_MAX_NATS",
    "SD_RHAT_MAX",
    "BayesFactorBounds",
    "ComparisonResult",
    "EvidenceBounds",
    "NestedBayesFactor",
    "PathBayesFactor",
    "SavageDickey",
    "Evidence",
    "annealed_evidence",
    "bayes_factor_bounds",
    "bridge_is_doomed",
    "bridge_from_draws",
    "bridge_sampling",
    "compare",
    "conditional_test",
    "cycle_groups",
    "dirichlet_posterior_draws",
    "fit_bf_bounds",
    "fit_evidence",
    "fit_loo",
    "fit_nested_smc",
    "fit_model_data",
    "fit_prior",
    "fit_savage_dickey",
    "fit_tau_path",
    "format_markdown",
    "free_log_likelihood",
    "kass_raftery",
    "likelihood_ratio_test",
    "log_evidence_dirichlet",
    "model_evidence",
    "nested_bf_bounds",
    "nested_smc_bf",
    "pareto_khat",
    "prior_sensitivity",
    "read_comparison",
    "reversible_mle",
    "savage_dickey",
    "scaled_prior",
    "simulate_counts",
    "smc_evidence",
    "strong_class_edges",
    "tau_path_log_bf",
    "unconstrained_draws",
    "variational_bounds",
    "weighted_loo",
    "weighted_se",
    "write_verdict",
]

# The functions live in private modules, where doctest's finder does not look from here: list
# them so their docstring examples run as this package's.
__test__ = {name: globals()[name] for name in __all__ if callable(globals()[name])}
