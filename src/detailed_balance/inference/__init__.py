"""Fit the model ladder to transition counts: NUTS, MCLMC, MAP or SVI, returning an ArviZ object.

Fits compute in 64-bit floats (locally: ``jax.enable_x64`` around each call, so MAP fits are
exact to ~1e-9 and exactness checks hold to float precision) whatever the process's JAX set-up.
Importing this package changes no global JAX state: NUTS chains run in parallel only after
:func:`detailed_balance.configure` (the CLI calls it), otherwise one after another.

Every fit is self-contained: the counts travel in ``constant_data`` (see :func:`counts_from_fit`),
the prior, gauge and convergence diagnostics in the attributes.

The fit stage (one idea per private module, the public names re-exported here):

* ``_fit``: :func:`fit`, one model of the ladder to counts, and :func:`fit_ladder`, each
  model once;
* ``_samplers``: the NUTS, MAP and SVI runners, and evaluating the model at draws;
* ``_mclmc``: the MCLMC runner (BlackJAX);
* ``_diagnostics``: R-hat, bulk ESS and the convergence warnings of a fit;
* ``_identifiability``: states the data cannot place, and the gauge groups;
* ``_build``: the ArviZ object a fit returns;
* ``_read``: what a stored fit gives back (its counts, prior, model data, draws, diagnostics,
  the posterior over T, a summary);
* ``_features``: state features for the GP prior;
* ``_files``: a fit on disk (:func:`save_fit`, :func:`load_fit`).

The package is called ``inference``, not ``fit``, so that ``detailed_balance.fit`` stays the
function after this package has been imported (a submodule would shadow it).
"""

from .._arviz import HDI_PROB, hdi
from ..modeldata import FieldPrior
from ._diagnostics import ESS_PER_CHAIN_MIN, RHAT_MAX, ConvergenceWarning, rhat_ess
from ._features import check_features, read_features
from ._files import FIT_SUFFIXES, load_fit, save_fit
from ._fit import fit, fit_ladder
from ._identifiability import IdentifiabilityWarning
from ._read import (
    counts_from_fit,
    fit_diagnostics,
    fit_draws,
    fit_model_data,
    fit_prior,
    latent_draws,
    posterior_kernel,
    summarise,
)
from ._samplers import PerformanceWarning, latent_sites, run_map, run_nuts

__all__ = [
    "ESS_PER_CHAIN_MIN",
    "RHAT_MAX",
    "FIT_SUFFIXES",
    "HDI_PROB",
    "ConvergenceWarning",
    "FieldPrior",
    "IdentifiabilityWarning",
    "PerformanceWarning",
    "check_features",
    "counts_from_fit",
    "fit",
    "fit_diagnostics",
    "fit_draws",
    "fit_ladder",
    "fit_model_data",
    "fit_prior",
    "hdi",
    "latent_draws",
    "latent_sites",
    "load_fit",
    "posterior_kernel",
    "read_features",
    "rhat_ess",
    "run_map",
    "run_nuts",
    "save_fit",
    "summarise",
]
