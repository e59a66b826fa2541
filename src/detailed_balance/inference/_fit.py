"""Fit models of the ladder to counts: one (:func:`fit`), or each once (:func:`fit_ladder`)."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict
from numbers import Integral

import numpy as np
import numpyro

from .. import _arviz
from ..counts import TransitionCounts
from ..errors import FitError
from ..modeldata import (
    GAUGE,
    MAX_TREE_DEPTH,
    METHODS,
    SAMPLERS,
    FieldPrior,
    ModelData,
    build_model_data,
)
from ..models import MODELS
from ..runtime import x64
from ._build import _build
from ._diagnostics import _diagnose
from ._features import check_features
from ._identifiability import _gauge_groups, _warn_identifiability
from ._mclmc import default_warmup, run_mclmc
from ._samplers import (
    _abstract_sites,
    _evaluate,
    _narrow,
    _run_svi,
    default_warmup_tree_depth,
    run_map,
    run_nuts,
    site_dims,
)

# the deterministic sites a fit stores by default: what summaries, reports and comparisons read
REPORTED = ("V", "V_within", "cycle_affinity")


@contextlib.contextmanager
def _existing_objects_frozen():
    """Keep the objects that exist before the block out of the garbage collector's scans during it.

    A process's first fit fills JAX's per-process caches, which moves enough new objects into
    the oldest generation to trigger full collections (one whenever those exceed a quarter of
    the survivors of the last), and each scans every object the imports left: ~220,000 after
    importing JAX, numpyro, scipy and deeptime, 0.12 s a scan, two in a first fit at 100 states
    (``docs/readme/bench-fit.md``, round 11). ``gc.freeze`` sets them aside for the block (the
    objects it creates are collected as usual; garbage from before it waits until after);
    ``gc.unfreeze`` returns them to the oldest generation, where a later full collection scans
    them as it would have. Left alone when the caller froze objects itself.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@x64()  # fits compute in float64 whatever the process's setting
@_existing_objects_frozen()
def fit(
    counts: TransitionCounts,
    model: str = "reversible",
    *,
    method: str = "nuts",
    prior: FieldPrior | None = None,
    features: np.ndarray | None = None,
    rest: bool = True,
    draws: int = 1000,
    warmup: int | None = None,
    chains: int | None = None,
    seed: int = 0,
    progress: bool = False,
    svi_steps: int = 5000,
    target_accept: float = 0.8,
    warmup_tree_depth: int | None = None,
    precision: str | None = None,
    derived: bool = False,
):
    """Fit one model of the ladder and return an ArviZ object (InferenceData or DataTree).

    Parameters
    ----------
    counts : TransitionCounts
    model : {"reversible", "unconstrained", "nonreversible"}
    method : {"nuts", "map", "svi", "mclmc"}
        ``"nuts"``: NUTS with ``chains`` chains (parallel over CPU cores). ``"map"``: the posterior
        mode (L-BFGS on the unconstrained parameters; the density is that of the model's own
        parameters, no Jacobian), stored as one draw. ``"svi"``: a normal guide with
        rank-10-plus-diagonal covariance (``svi_steps`` Adam steps), ``draws`` independent draws
        from it. ``"mclmc"``: BlackJAX's
        unadjusted microcanonical Langevin sampler, same priors and posterior as NUTS, fewer
        gradients per effective draw at large sizes (``docs/readme/bench-fit.md``); ``warmup``
        integrator steps (default max(2,000, states): fewer left R-hat 1.017 at 3,000 states)
        tune its step size, L and a diagonal preconditioner, then the ``draws`` are kept four
        momentum decoherence lengths L apart. No Metropolis correction: its
        bias grows with the energy error per step, recorded and warned about when high.
    prior : FieldPrior, optional
        Prior of the potential field; default ``FieldPrior()`` (hierarchical normal), or the GP
        prior when ``features`` are given. ``kind="flat"`` is improper: MAP only.
    features : (S, F) array, optional
        State features for the GP prior, one row per state of ``counts`` (in its order).
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row (the escape).
    draws, warmup, chains, seed, progress
        Sampler settings; ``warmup`` defaults to 1,000 NUTS warm-up steps (MCLMC: see
        ``method``); ``chains`` defaults to the number of CPU cores (at least 2).
        ``progress`` is NUTS's progress bar only.
    precision : {"float32", "float64"}, optional
        Floats of the NUTS (and MCLMC) trajectories. Default: float32 for the normal field
        prior (1.1–2.3× faster per fit here, same step size and ESS; see
        ``docs/readme/bench-fit.md``), float64 for the GP prior (its Cholesky factor needs
        it). Whatever the choice, NUTS, MCLMC and SVI draws of the latent sites are stored as
        float32 (rounding 1e-7 against a Monte Carlo error of ~1e-2; half the file) and the MAP
        as float64; ``V``, ``V_within``, ``cycle_affinity`` and the log-likelihood are then
        evaluated in float64 from exactly the stored draws (the log-likelihood stored as
        float32 too), so identities such as ``posterior_kernel`` against ``V`` hold to 1e-10.
    derived : bool
        Also store the model's other deterministic sites: ``phi``, ``s``, ``u`` and the fitted
        log transition probabilities ``log_p_arc``/``log_p_rest`` (a file several times larger;
        :func:`posterior_kernel` recomputes ``log_p_arc`` from the latent draws when needed).
    svi_steps : int
        Adam steps of the SVI guide (``method="svi"`` only).
    target_accept : float
        NUTS target acceptance probability; raise it (e.g. 0.9–0.95) when the fit reports
        divergences.
    warmup_tree_depth : int, optional
        Largest NUTS tree depth during warm-up, 1–10 (at most 2**depth − 1 leapfrog steps per
        warm-up iteration; the draws go to depth 10). Default: 5 for models of up to 1,000
        latent values, 10 (numpyro's) above. Warm-up starts from a unit mass matrix, under which
        its first 100 iterations built trees of 250–650 steps at 100–1,000 states; capped at 5,
        fits at 100 and 300 states took 32–45 % fewer gradients with the same ESS per draw, while
        at 1,000 states some did not converge (``docs/readme/bench-fit.md``). Raise it if a fit's
        R-hat stays high.

    Returns
    -------
    InferenceData or DataTree
        ArviZ object with groups ``posterior`` (coords ``state``, ``edge``, ``cycle``),
        ``log_likelihood`` (``y`` per cell: one value per (source, category) with count > 0),
        the posterior holding the latent sites plus ``V``, ``V_within`` and (non-reversible)
        ``cycle_affinity`` (everything with ``derived=True``),
        ``observed_data``, ``sample_stats``, ``constant_data`` (the counts) and attributes
        ``model``, ``method``, ``gauge``, ``prior`` (JSON), ``diagnostics`` (JSON), for NUTS
        ``warmup_tree_depth`` (the depth used), and for a model with a cycle flow
        ``flow_coordinates``: ``"orthonormal"`` or ``"chord"``, the coordinates of its
        ``flow_z`` draws (``graph.CycleSpace.flow_coordinates``).

    Warns
    -----
    ConvergenceWarning
        When R-hat > 1.01, bulk ESS < 100 per chain, divergences, an MCLMC energy error over
        twice its target, or an optimiser stopped early.
    IdentifiabilityWarning
        For states without attempts and several gauges.

    Examples
    --------
    A MAP fit is quick; NUTS (the default) gives the posterior that intervals need.

    >>> import detailed_balance as db
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=100, seed=0)
    >>> idata = db.fit(counts, "reversible", method="map", progress=False)
    >>> db.counts_from_fit(idata).attempts.tolist()  # the counts travel with the fit
    [100, 100, 100, 100, 100]
    >>> summary = db.summarise(idata)
    >>> summary["model"], summary["method"], summary["states"][0]["state"]
    ('reversible', 'map', 's0')
    >>> sorted(summary["states"][0]["V"])
    ['ess', 'hdi_lower', 'hdi_upper', 'mean', 'rhat', 'sd']
    >>> db.posterior_kernel(idata).log_prob.shape  # (draws, arcs): one MAP draw, 20 arcs
    (1, 20)
    """
    if model not in MODELS:
        raise FitError(f"unknown model {model!r} (use one of {', '.join(MODELS)})")
    if method not in METHODS:
        raise FitError(f"unknown method {method!r} (use one of {', '.join(METHODS)})")
    if warmup is None:
        warmup = default_warmup(counts.n_states) if method == "mclmc" else 1000
    for name, value in [("draws", draws), ("warmup", warmup), ("chains", chains),
                        ("warmup_tree_depth", warmup_tree_depth)]:  # fmt: skip
        # 2.5 draws or a depth of 4.5 would otherwise fail deep in numpyro, or be truncated
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)):
            raise FitError(f"{name} must be a whole number, not {value!r}")
    if draws < 1 or warmup < 0 or (chains is not None and chains < 1):
        raise FitError("draws and chains must be >= 1 and warmup >= 0")
    if warmup_tree_depth is not None and not 1 <= warmup_tree_depth <= MAX_TREE_DEPTH:
        raise FitError(f"warmup_tree_depth must be between 1 and {MAX_TREE_DEPTH}")
    prior = _resolve_prior(prior, features, method, model)
    precision = precision or ("float64" if prior.kind == "gp" else "float32")
    if precision not in ("float32", "float64"):
        raise FitError(f"unknown precision {precision!r} (use 'float32' or 'float64')")
    x = check_features(features, counts) if features is not None else None
    data = build_model_data(counts, rest=rest, features=x)
    _warn_identifiability(counts)
    model_fn = _bind(model, data, prior)
    latent_names, dims, n_latent = _abstract_sites(model_fn, seed)
    warmup_tree_depth = warmup_tree_depth or default_warmup_tree_depth(n_latent)

    start = time.perf_counter()
    # a process's first fit imports xarray (and arviz 0.23's dependencies) while the chains run
    importing = _arviz.import_in_background() if method in SAMPLERS else None
    try:
        if method in SAMPLERS:  # Markov chains, with trajectories in ``precision``
            chains = chains or max(2, os.cpu_count() or 1)
            # the samplers see the likelihood summed per arc and per row (the same density, a
            # cheaper gradient); the stored pointwise log-likelihood comes from ``model_fn`` below
            sample_data = data if precision == "float64" else _narrow(data)
            sample_fn = _bind(model, sample_data, prior, pointwise=False)
            with x64(precision == "float64", all_threads=True):  # the progress bar's thread too
                if method == "nuts":
                    latent, stats, extra = run_nuts(
                        sample_fn, draws, warmup, chains, seed, progress, target_accept,
                        warmup_tree_depth,
                    )  # fmt: skip
                else:
                    latent, stats, extra = run_mclmc(sample_fn, draws, warmup, chains, seed)
            extra["precision"] = precision
        elif method == "map":
            chains, draws, warmup = 1, 1, 0
            latent, stats, extra = run_map(model_fn, seed, int(np.sum(counts.attempts)))
        else:
            chains, warmup = 1, 0
            latent, stats, extra = _run_svi(model_fn, draws, svi_steps, seed, progress)
        # what is stored is what everything else is computed from (see ``precision``)
        stored = np.float64 if method == "map" else np.float32
        latent = {k: np.asarray(latent[k], dtype=stored) for k in latent_names}
        seconds = time.perf_counter() - start

        evaluate_fn = _bind(model, data, prior, full=True) if derived else model_fn
        sites, loglik, lp = _evaluate(
            evaluate_fn,
            {k: v.astype(np.float64) for k, v in latent.items()},
            keep=None if derived else REPORTED,
        )
        stats.setdefault("lp", lp)
        posterior = {**latent, **sites}
        loglik = loglik.astype(stored)
        # R-hat and ESS of what the sampler moves (the latent sites) and of what is reported
        # (V); the other deterministic sites are functions of these, and arviz diagnoses one
        # scalar at a time (20 s for all sites at 1,000 states and 400 draws, most of it on them)
        checked = {k: posterior[k] for k in (*latent_names, "V") if k in posterior}
        if derived:  # the full model declares more sites
            dims = site_dims(evaluate_fn, seed)
        diagnostics = _diagnose(checked, stats, method, chains, seconds, extra, counts, dims,
                                warmup_tree_depth if method == "nuts" else None)  # fmt: skip
        attrs = {
            "model": model,
            "method": method,
            "gauge": GAUGE,
            "gauge_groups": json.dumps(_gauge_groups(counts)),
            "prior": json.dumps(asdict(prior)),
            "rest": int(rest),
            "latent_sites": json.dumps(latent_names),
            # how the stored flow_z draws read: a later limit on the dense basis must not change it
            **({"flow_coordinates": data.flow_coordinates} if "flow_z" in latent_names else {}),
            "diagnostics": json.dumps(diagnostics),
            "draws": int(draws),
            "warmup": int(warmup),
            **({"warmup_tree_depth": int(warmup_tree_depth)} if method == "nuts" else {}),
            "chains": int(chains),
            "seed": int(seed),
            "fit_seconds": float(seconds),
            "inference_library": "blackjax" if method == "mclmc" else "numpyro",
            "inference_library_version": _library_version(method),
        }
    finally:
        # on an error too, so that no thread outlives the fit; an import (~1 s), so no timeout
        if importing is not None:
            importing.join()
    return _build(counts, data, posterior, loglik, stats, attrs, dims)


def _library_version(method: str) -> str:
    if method == "mclmc":
        import blackjax

        return blackjax.__version__
    return numpyro.__version__


def _resolve_prior(prior, features, method, model) -> FieldPrior:
    if prior is None:
        prior = FieldPrior(kind="gp") if features is not None else FieldPrior()
    if prior.kind not in ("normal", "gp", "flat"):
        raise FitError(f"unknown prior kind {prior.kind!r} (use 'normal', 'gp' or 'flat')")
    if model != "unconstrained":
        if prior.kind == "gp" and features is None:
            raise FitError("the GP prior needs state features (one row per state)")
        if prior.kind != "gp" and features is not None:
            raise FitError("features are used by the GP prior only: pass FieldPrior(kind='gp')")
    if prior.kind == "flat" and method != "map":
        raise FitError(f"the flat prior is improper: use method='map', not {method!r}")
    return prior


def _bind(
    model: str, data: ModelData, prior: FieldPrior, full: bool = False, pointwise: bool = True
):
    fn = MODELS[model]

    def model_fn():
        return fn(data, prior=prior, full=full, pointwise=pointwise)

    return model_fn


def fit_ladder(
    counts: TransitionCounts,
    *,
    models: Iterable[str] | None = None,
    **fit_kwargs,
) -> dict:
    """Fit each model of the ladder to ``counts`` once.

    Parameters
    ----------
    counts : TransitionCounts
    models : names from :data:`detailed_balance.models.MODELS`, optional
        Which models to fit (default: all of them), fitted in the ladder's order.
    **fit_kwargs
        Passed to :func:`detailed_balance.fit` (``method``, ``prior``, ``draws``, ``seed``, ...).

    Returns
    -------
    dict
        Model name -> fit (the ArviZ object :func:`detailed_balance.fit` returns), in the
        ladder's order; pass it to :func:`detailed_balance.compare`.

    Examples
    --------
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=50, seed=0)
    >>> fits = fit_ladder(counts, method="map")
    >>> list(fits)
    ['unconstrained', 'reversible', 'nonreversible']
    """
    wanted = list(MODELS) if models is None else list(models)
    unknown = [m for m in wanted if m not in MODELS]
    if unknown:
        raise FitError(f"unknown model(s) {unknown} (use {', '.join(MODELS)})")
    return {name: fit(counts, name, **fit_kwargs) for name in MODELS if name in wanted}
