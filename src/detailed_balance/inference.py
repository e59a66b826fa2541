"""Fit the model ladder to transition counts: NUTS, MAP or SVI, returning an ArviZ object.

Fits compute in 64-bit floats (locally: ``jax.enable_x64`` around each call, so MAP fits are
exact to ~1e-9 and exactness checks hold to float precision) whatever the process's JAX set-up.
Importing this module changes no global JAX state: NUTS chains run in parallel only after
:func:`detailed_balance.configure` (the CLI calls it), otherwise one after another.

Every fit is self-contained: the counts travel in ``constant_data`` (see :func:`counts_from_fit`),
the prior, gauge and convergence diagnostics in the attributes.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import time
import warnings
from dataclasses import asdict

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer.util import constrain_fn, log_density, unconstrain_fn

from . import _arviz
from .counts import TransitionCounts
from .errors import DataError, FitError
from .graph import CycleSpace
from .kernel import TransitionKernel
from .modeldata import GAUGE, ModelData, build_model_data, gauge_reference
from .models import MODELS
from .models._common import FieldPrior

METHODS = ("nuts", "map", "svi")
HDI_PROB = 0.94
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100  # the usual rule: bulk ESS >= 100 per chain

# dimension of each site's trailing axis (anything else gets a generic name)
_SITE_DIMS = {
    "phi": "state", "phi_z": "state", "phi_raw": "state", "V": "state", "V_within": "state",
    "g_rest": "state", "log_p_rest": "state",
    "s": "edge", "u": "edge", "u_z": "edge",
    "cycle_affinity": "cycle", "theta_z": "cycle",
    "g_arc": "arc", "log_p_arc": "arc",
}  # fmt: skip


class ConvergenceWarning(UserWarning):
    """The sampler or optimiser may not have converged (R-hat, ESS, divergences, optimiser)."""


class PerformanceWarning(UserWarning):
    """A fit runs slower than it could (e.g. chains one after another for want of devices)."""


class IdentifiabilityWarning(UserWarning):
    """Some potentials are bounded by the prior only, or fixed in separate gauges."""


def _float64(fn):
    """Run ``fn`` with 64-bit floats enabled (locally: the process's setting is left alone)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper


# ---- the public API ---------------------------------------------------------------------------
@_float64
def fit(
    counts: TransitionCounts,
    model: str = "reversible",
    *,
    method: str = "nuts",
    prior: FieldPrior | None = None,
    features: np.ndarray | None = None,
    rest: bool = True,
    draws: int = 1000,
    warmup: int = 1000,
    chains: int | None = None,
    seed: int = 0,
    progress: bool = False,
    svi_steps: int = 5000,
    target_accept: float = 0.8,
    precision: str | None = None,
):
    """Fit one model of the ladder and return an ArviZ object (InferenceData or DataTree).

    Parameters
    ----------
    counts : TransitionCounts
    model : {"reversible", "unconstrained", "nonreversible"}
    method : {"nuts", "map", "svi"}
        ``"nuts"``: NUTS with ``chains`` chains (parallel over CPU cores). ``"map"``: the posterior
        mode (L-BFGS on the unconstrained parameters; the density is that of the model's own
        parameters, no Jacobian), stored as one draw. ``"svi"``: a mean-field normal guide
        (``svi_steps`` Adam steps), ``draws`` independent draws from it.
    prior : FieldPrior, optional
        Prior of the potential field; default ``FieldPrior()`` (hierarchical normal), or the GP
        prior when ``features`` are given. ``kind="flat"`` is improper: MAP only.
    features : (S, F) array, optional
        State features for the GP prior, one row per state of ``counts`` (in its order).
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row (the escape).
    draws, warmup, chains, seed, progress
        Sampler settings; ``chains`` defaults to the number of CPU cores (at least 2).
    precision : {"float32", "float64"}, optional
        Floats of the NUTS trajectories. Default: float32 for the normal field prior (1.1–2.3×
        faster per fit here, same step size and ESS; see ``docs/readme/bench-fit.md``),
        float64 for the GP prior (its Cholesky factor needs it). Whatever the choice, draws are
        stored as float64 and the deterministic sites and log-likelihoods are recomputed from
        them in float64.
    svi_steps : int
        Adam steps of the SVI guide (``method="svi"`` only).
    target_accept : float
        NUTS target acceptance probability; raise it (e.g. 0.9–0.95) when the fit reports
        divergences.

    Returns
    -------
    InferenceData or DataTree
        ArviZ object with groups ``posterior`` (coords ``state``, ``edge``, ``cycle``),
        ``log_likelihood`` (``y`` per cell: one value per (source, category) with count > 0),
        ``observed_data``, ``sample_stats``, ``constant_data`` (the counts) and attributes
        ``model``, ``method``, ``gauge``, ``prior`` (JSON), ``diagnostics`` (JSON).

    Warns
    -----
    ConvergenceWarning
        When R-hat > 1.01, bulk ESS < 100 per chain, divergences, or an optimiser stopped early.
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
    if draws < 1 or warmup < 0:
        raise FitError("draws must be >= 1 and warmup >= 0")
    prior = _resolve_prior(prior, features, method, model)
    precision = precision or ("float64" if prior.kind == "gp" else "float32")
    if precision not in ("float32", "float64"):
        raise FitError(f"unknown precision {precision!r} (use 'float32' or 'float64')")
    x = check_features(features, counts) if features is not None else None
    data = build_model_data(counts, rest=rest, features=x)
    _warn_identifiability(counts)
    model_fn = _bind(model, data, prior)
    latent_names = _latent_sites(model_fn, seed)

    start = time.perf_counter()
    if method == "nuts":
        chains = chains or max(2, os.cpu_count() or 1)
        sample_fn = model_fn if precision == "float64" else _bind(model, _narrow(data), prior)
        with _x64_everywhere(precision == "float64"):
            latent, stats, extra = _run_nuts(
                sample_fn, draws, warmup, chains, seed, progress, target_accept
            )
        extra["precision"] = precision
    elif method == "map":
        chains, draws, warmup = 1, 1, 0
        latent, stats, extra = _run_map(model_fn, seed, int(np.sum(counts.attempts)))
    else:
        chains, warmup = 1, 0
        latent, stats, extra = _run_svi(model_fn, draws, svi_steps, seed, progress)
    latent = {k: np.asarray(latent[k], dtype=np.float64) for k in latent_names}
    seconds = time.perf_counter() - start

    sites, loglik, lp = _evaluate(model_fn, latent)
    stats.setdefault("lp", lp)
    posterior = {**latent, **sites}
    # R-hat and ESS of what the sampler moves (the latent sites) and of what is reported (V); the
    # other deterministic sites are functions of these, and arviz diagnoses one scalar at a time
    # (20 s for all sites at 1,000 states and 400 draws, most of it on them)
    checked = {k: posterior[k] for k in (*latent_names, "V") if k in posterior}
    diagnostics = _diagnose(checked, stats, method, chains, seconds, extra, counts)
    attrs = {
        "model": model,
        "method": method,
        "gauge": GAUGE,
        "gauge_groups": json.dumps(_gauge_groups(counts)),
        "prior": json.dumps(asdict(prior)),
        "rest": int(rest),
        "latent_sites": json.dumps(latent_names),
        "diagnostics": json.dumps(diagnostics),
        "draws": int(draws),
        "warmup": int(warmup),
        "chains": int(chains),
        "seed": int(seed),
        "fit_seconds": float(seconds),
        "inference_library": "numpyro",
        "inference_library_version": numpyro.__version__,
    }
    return _build(counts, data, posterior, loglik, stats, attrs)


def counts_from_fit(idata) -> TransitionCounts:
    """The counts a fit was made from (stored in its ``constant_data``).

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`fit` or read back from netCDF.

    Returns
    -------
    TransitionCounts
    """
    cd = _arviz.group(idata, "constant_data")
    return TransitionCounts(
        states=tuple(str(s) for s in cd["state"].values.tolist()),
        source=np.asarray(cd["source"].values, dtype=np.int64),
        target=np.asarray(cd["target"].values, dtype=np.int64),
        count=np.asarray(cd["count"].values, dtype=np.int64),
        self_count=np.asarray(cd["self_count"].values, dtype=np.int64),
        rejected=np.asarray(cd["rejected"].values, dtype=np.int64),
    )


@_float64
def posterior_kernel(idata, counts: TransitionCounts | None = None) -> TransitionKernel:
    """Posterior draws of log T(target ← source) on the model's arcs (draws axis first).

    Arcs are those of the support graph (both directions of every edge seen either way); the rest
    of each row (self-replies and rejections when the fit used ``rest``) is the escape.

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`fit`.
    counts : TransitionCounts, optional
        The counts of the fit (read from ``idata`` when not given).

    Returns
    -------
    TransitionKernel
        ``log_prob`` of shape (chains × draws, arcs); pass it to
        :func:`detailed_balance.least_action.minimise_action` for a posterior over V_LA.
    """
    a = _arviz.attrs(idata)
    if counts is None:
        counts = counts_from_fit(idata)
    elif tuple(counts.states) != tuple(counts_from_fit(idata).states):
        raise FitError("these counts have other states than the ones the fit was made from")
    cd = _arviz.group(idata, "constant_data")
    features = np.asarray(cd["features"].values) if "features" in cd else None
    prior = FieldPrior(**json.loads(a["prior"]))
    data = build_model_data(counts, rest=bool(int(a["rest"])), features=features)
    model_fn = _bind(a["model"], data, prior, full=True)
    post = _arviz.group(idata, "posterior")
    latent = {k: np.asarray(post[k].values) for k in json.loads(a["latent_sites"])}
    sites, _, _ = _evaluate(model_fn, latent)
    log_p = sites["log_p_arc"].reshape(-1, sites["log_p_arc"].shape[-1])
    return TransitionKernel(
        states=counts.states,
        source=data.arc_source.copy(),
        target=data.arc_target.copy(),
        log_prob=log_p,
        convention="posterior",
    )


def summarise(idata) -> dict:
    """Per-state posterior summaries and global facts of a fit (the ``summary --json`` payload).

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`fit`.

    Returns
    -------
    dict
        ``model``, ``method``, ``gauge``, ``gauge_groups``, ``prior``, ``diagnostics``,
        ``hdi_prob`` and ``states``: one entry per state with ``state``, ``identified``,
        ``attempts`` and, for models with a potential, ``V`` and ``V_within`` as
        ``{mean, sd, hdi_lower, hdi_upper, rhat, ess}`` (``rhat``/``ess`` null unless NUTS).
        Non-reversible fits add ``cycles`` with the same summary of every cycle affinity.
    """
    a = _arviz.attrs(idata)
    counts = counts_from_fit(idata)
    _, _, identified = gauge_reference(counts)
    post = _arviz.group(idata, "posterior")
    names = [v for v in ("V", "V_within", "cycle_affinity") if v in post]
    stats = {v: _summarise_var(post[v]) for v in names}
    if a["method"] == "nuts" and post.sizes["chain"] > 1 and names:
        rhat, ess = _rhat_ess({k: post[k].values for k in names})
        for v in names:
            stats[v]["rhat"], stats[v]["ess"] = rhat[v], ess[v]
    states = []
    for i, name in enumerate(counts.states):
        entry = {
            "state": name,
            "identified": bool(identified[i]),
            "attempts": int(counts.attempts[i]),
        }
        for v in ("V", "V_within"):
            if v in stats:
                entry[v] = {k: _json_number(col[i]) for k, col in stats[v].items()}
        states.append(entry)
    out = {
        "model": a["model"],
        "method": a["method"],
        "gauge": a["gauge"],
        "gauge_groups": json.loads(a.get("gauge_groups", "[]")),
        "prior": json.loads(a["prior"]),
        "rest": bool(int(a["rest"])),
        "hdi_prob": HDI_PROB,
        "chains": int(post.sizes["chain"]),
        "draws": int(post.sizes["draw"]),
        "diagnostics": json.loads(a["diagnostics"]),
        "states": states,
    }
    if "cycle_affinity" in stats:
        labels = post["cycle"].values.tolist()
        out["cycles"] = [
            {
                "cycle": str(lab),
                **{k: _json_number(col[c]) for k, col in stats["cycle_affinity"].items()},
            }
            for c, lab in enumerate(labels)
        ]
    return out


def check_features(features, counts: TransitionCounts) -> np.ndarray:
    """Features as a finite (S, F) float array with one row per state, or :class:`DataError`.

    Parameters
    ----------
    features : array_like
        (S, F) or (S,) state features, rows in the counts' state order.
    counts : TransitionCounts

    Returns
    -------
    ndarray
        (S, F) float array.
    """
    try:
        x = np.asarray(features, dtype=float)
    except (TypeError, ValueError):
        raise DataError("features must be numbers (a matrix with one row per state)") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != counts.n_states:
        rows = x.shape[0] if x.ndim >= 1 else 0
        raise DataError(f"features have {rows} rows but the counts have {counts.n_states} states")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"features of state {counts.states[i]!r} (row {i + 1}) contain NaN or inf")
    return x


def read_features(path, counts: TransitionCounts) -> np.ndarray:
    """Read state features for the GP prior.

    Parameters
    ----------
    path : str or Path
        ``.npy`` (rows in the counts' state order) or ``.csv`` with a ``state`` column (any order;
        the other columns are the features).
    counts : TransitionCounts

    Returns
    -------
    ndarray
        (S, F) float array, rows in the counts' state order.
    """
    path = str(path)
    if path.endswith(".npy"):
        try:
            return check_features(np.load(path, allow_pickle=False), counts)
        except DataError as exc:
            raise DataError(str(exc), file=path) from None
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read features: {exc}", file=path) from None
    import pandas as pd

    try:
        table = pd.read_csv(
            path, dtype={"state": str}, keep_default_na=False, na_values=["", "nan", "NaN"]
        )
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read features: {exc}", file=path) from None
    if "state" not in table.columns:
        raise DataError("features CSV needs a 'state' column", file=path)
    if table["state"].duplicated().any():
        dup = table["state"][table["state"].duplicated()].iloc[0]
        raise DataError(f"state {dup!r} appears twice", file=path)
    missing = sorted(set(counts.states) - set(table["state"]))
    if missing:
        raise DataError(f"no features for {len(missing)} state(s), e.g. {missing[0]!r}", file=path)
    table = table.set_index("state").loc[list(counts.states)]
    try:
        return check_features(table.to_numpy(dtype=float), counts)
    except DataError as exc:
        raise DataError(str(exc), file=path) from None
    except ValueError:
        raise DataError("feature columns must be numbers", file=path) from None


# ---- running the samplers -------------------------------------------------------------------
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


def _bind(model: str, data: ModelData, prior: FieldPrior, full: bool = False):
    fn = MODELS[model]

    def model_fn():
        return fn(data, prior=prior, full=full)

    return model_fn


@contextlib.contextmanager
def _x64_everywhere(enabled: bool):
    """Set float64 on or off for the whole process while sampling, then restore it.

    ``jax.enable_x64`` is thread-local, but numpyro's progress bar is a host callback that JAX
    runs on another thread, which would check its int32 result under the global setting (int64)
    and fail ("Incorrect output dtype for return value").
    """
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", enabled)
    try:
        with jax.enable_x64(enabled):  # and on this thread, which may hold its own setting
            yield
    finally:
        jax.config.update("jax_enable_x64", before)


def _narrow(data: ModelData) -> ModelData:
    """A 32-bit copy of the model's arrays, for float32 sampling.

    A copy, not only a cast: jax caches constants per numpy array, and one traced under float32
    then reused under float64 fails (int32 + int64 index arithmetic, jax 0.10).
    """

    def narrow(x):
        if isinstance(x, CycleSpace):  # holds index arrays too (the non-reversible model)
            space = copy.copy(x)
            space.cycle_id, space.edge, space.sign = map(narrow, (x.cycle_id, x.edge, x.sign))
            if x.n_cycles:
                space._flow_basis = narrow(x.flow_basis())
            return space
        if not isinstance(x, np.ndarray):
            return x
        kind = {"f": np.float32, "i": np.int32}.get(x.dtype.kind)
        return x.astype(kind) if kind else x.copy()

    return ModelData(*(narrow(x) for x in data))


def _initial_trace(model_fn, key):
    """Model trace at numpyro's default initial point (uniform in (-2, 2), unconstrained)."""
    from numpyro.handlers import seed, substitute, trace
    from numpyro.infer.initialization import init_to_uniform

    return trace(substitute(seed(model_fn, key), substitute_fn=init_to_uniform)).get_trace()


def _latent_sites(model_fn, seed: int) -> list[str]:
    """Names of the latent sample sites, found by abstract tracing (no compilation)."""

    def latent():
        tr = _initial_trace(model_fn, jax.random.PRNGKey(seed))
        return {
            k: s["value"] for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"]
        }

    return list(jax.eval_shape(latent))


def _run_nuts(model_fn, draws, warmup, chains, seed, progress, target_accept):
    from numpyro.infer import MCMC, NUTS

    parallel = chains <= jax.local_device_count()
    if not parallel and chains > 1:
        warnings.warn(
            f"NUTS runs its {chains} chains one after another: JAX has "
            f"{jax.local_device_count()} CPU device(s). Call detailed_balance.configure() before "
            "the first JAX computation to run them in parallel",
            PerformanceWarning,
            stacklevel=4,
        )
    mcmc = MCMC(
        NUTS(model_fn, target_accept_prob=target_accept),
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method="parallel" if parallel else "sequential",
        progress_bar=progress,
    )
    fields = (
        "diverging",
        "potential_energy",
        "num_steps",
        "accept_prob",
        "energy",
        "adapt_state.step_size",
    )
    mcmc.run(jax.random.PRNGKey(seed), extra_fields=fields)
    latent = mcmc.get_samples(group_by_chain=True)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats = {
        "lp": -np.asarray(extra["potential_energy"], dtype=np.float64),
        "diverging": np.asarray(extra["diverging"]),
        "n_steps": np.asarray(extra["num_steps"]),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "energy": np.asarray(extra["energy"], dtype=np.float64),
        "step_size": np.asarray(extra["adapt_state.step_size"]),
    }
    return latent, stats, {"chain_method": mcmc.chain_method}


def _unconstrained_start(model_fn, seed):
    """Flat unconstrained start vector (numpyro's default init) and its unravel function."""
    from jax.flatten_util import ravel_pytree

    @jax.jit
    def initial(key):
        tr = _initial_trace(model_fn, key)
        params = {
            k: v["value"] for k, v in tr.items() if v["type"] == "sample" and not v["is_observed"]
        }
        return unconstrain_fn(model_fn, (), {}, params)

    return ravel_pytree(initial(jax.random.PRNGKey(seed)))


def _run_map(model_fn, seed, attempts: int = 1):
    """Posterior mode by L-BFGS over unconstrained parameters, density of the constrained ones.

    The gradient tolerance scales with the number of attempts (gradients are sums over them):
    1e-9 up to 1000 attempts, then 1e-12 per attempt.
    """
    from scipy.optimize import minimize

    x0, unravel = _unconstrained_start(model_fn, seed)
    constrain = jax.jit(lambda x: constrain_fn(model_fn, (), {}, unravel(x)))

    def objective(x):
        return -log_density(model_fn, (), {}, constrain(x))[0]

    value_and_grad = jax.jit(jax.value_and_grad(objective))

    def fun(x):
        v, g = value_and_grad(x)
        return float(v), np.asarray(g, dtype=float)

    res = minimize(
        fun, np.asarray(x0, dtype=float), jac=True, method="L-BFGS-B",
        options={"maxiter": 50_000, "maxfun": 100_000, "maxcor": 50, "ftol": 1e-15,
                 "gtol": max(1e-9, 1e-12 * attempts)},
    )  # fmt: skip
    grad_norm = float(np.max(np.abs(res.jac))) if res.jac is not None else float("nan")
    latent = {k: np.asarray(v)[None, None] for k, v in constrain(res.x).items()}
    # L-BFGS-B may stop on an "ABNORMAL" line search at a float-precision optimum: judge by gradient
    ok = bool(res.success) or grad_norm < 1e-4
    extra = {
        "optimizer": "L-BFGS-B",
        "iterations": int(res.nit),
        "max_abs_gradient": grad_norm,
        "optimizer_message": str(res.message),
        "optimizer_converged": ok,
    }
    return latent, {}, extra


def _run_svi(model_fn, draws, steps, seed, progress, rank: int = 10):
    """Low-rank-plus-diagonal normal variational posterior over the unconstrained parameters
    (as numpyro's AutoLowRankMultivariateNormal).

    Written directly on numpyro's unconstrained potential so that all of it compiles in one
    ``jit`` (numpyro's autoguides set up eagerly, which costs many small compilations).
    """
    from numpyro.infer.util import potential_energy

    x0, unravel = _unconstrained_start(model_fn, seed)
    dim = x0.shape[0]
    rank = min(rank, dim)
    n_mc = 4  # Monte Carlo draws per ELBO gradient

    def draw(params, key, n):
        loc, w, log_d = params
        k1, k2 = jax.random.split(key)
        return (
            loc
            + jax.random.normal(k1, (n, rank)) @ w.T
            + jnp.exp(log_d) * jax.random.normal(k2, (n, dim))
        )

    def neg_elbo(params, key):
        _, w, log_d = params
        energy = jax.vmap(lambda xi: potential_energy(model_fn, (), {}, unravel(xi)))(
            draw(params, key, n_mc)
        )
        # entropy: 1/2 log det(W W^T + D) = 1/2 [sum log D + log det(I + W^T D^-1 W)]
        inner = jnp.eye(rank) + (w.T * jnp.exp(-2 * log_d)) @ w
        half_logdet = jnp.sum(log_d) + 0.5 * jnp.linalg.slogdet(inner)[1]
        return jnp.mean(energy) - half_logdet

    opt = numpyro.optim.Adam(0.01)

    @jax.jit
    def run(params, key):
        def step(state, k):
            loss, g = jax.value_and_grad(neg_elbo)(opt.get_params(state), k)
            return opt.update(g, state), loss

        state, losses = jax.lax.scan(step, opt.init(params), jax.random.split(key, steps))
        return opt.get_params(state), losses

    start = (x0, jnp.zeros((dim, rank)) + 0.01, jnp.full(dim, -2.0))
    params, losses = run(start, jax.random.PRNGKey(seed))
    x = draw(params, jax.random.PRNGKey(seed + 1), draws)
    samples = jax.jit(jax.vmap(lambda xi: constrain_fn(model_fn, (), {}, unravel(xi))))(x)
    latent = {k: np.asarray(v)[None] for k, v in samples.items()}
    losses = np.asarray(losses)
    tail = max(len(losses) // 10, 1)
    last, before = losses[-tail:].mean(), losses[-2 * tail : -tail].mean()
    # still improving by more than ~1 nat over the last tenth of the run: not converged
    drift = float(before - last) if len(losses) >= 2 * tail else float("nan")
    extra = {
        "svi_steps": int(steps),
        "svi_guide": f"normal, rank-{rank} plus diagonal covariance (unconstrained space)",
        "final_loss": float(last),
        "loss_drift_last_tenth": drift,
        "optimizer_converged": bool(not drift > 1.0),
    }
    return latent, {}, extra


def _evaluate(model_fn, latent: dict):
    """Deterministic sites, pointwise log-likelihood of ``y`` and log joint density per draw."""
    lead = next(iter(latent.values())).shape[:2]
    flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in latent.items()}

    def one(params):
        lp, tr = log_density(model_fn, (), {}, params)
        sites = {k: s["value"] for k, s in tr.items() if s["type"] == "deterministic"}
        y = tr["y"]
        return sites, y["fn"].log_prob(y["value"]), lp

    n = int(np.prod(lead))
    sites, loglik, lp = jax.jit(lambda p: jax.lax.map(one, p, batch_size=min(n, 64)))(flat)

    def unflat(x):
        x = np.asarray(x)
        return x.reshape(lead + x.shape[1:])

    return {k: unflat(v) for k, v in sites.items()}, unflat(loglik), unflat(lp)


# ---- diagnostics ------------------------------------------------------------------------------
def _diagnose(posterior, stats, method, chains, seconds, extra, counts) -> dict:
    out = {"method": method, "fit_seconds": round(seconds, 3), "warnings": [], **extra}
    if method == "nuts":
        rhat, ess = _rhat_ess(posterior)
        worst = _worst(rhat, counts, largest=True)
        poorest = _worst(ess, counts, largest=False)
        max_rhat = worst[0][1] if worst else float("nan")
        min_ess = poorest[0][1] if poorest else float("nan")
        divergences = int(np.sum(stats["diverging"]))
        out.update(
            max_rhat=_json_number(max_rhat),
            min_ess=_json_number(min_ess),
            divergences=divergences,
            ess_per_second=_json_number(min_ess / seconds) if seconds > 0 else None,
        )
        if chains > 1 and max_rhat > RHAT_MAX:
            out["warnings"].append(
                f"R-hat up to {max_rhat:.3f} > {RHAT_MAX} (worst: {_names(worst)})"
            )
        if min_ess < ESS_PER_CHAIN_MIN * chains:
            out["warnings"].append(
                f"bulk ESS down to {min_ess:.0f} < {ESS_PER_CHAIN_MIN * chains} "
                f"({ESS_PER_CHAIN_MIN} per chain × {chains} chains; worst: {_names(poorest)}); "
                "draw more"
            )
        if divergences:
            out["warnings"].append(
                f"{divergences} divergent transitions: intervals may be biased; "
                "raise target_accept or simplify the model"
            )
    elif method == "svi" and not extra["optimizer_converged"]:
        out["warnings"].append(
            f"SVI loss still falling ({extra['loss_drift_last_tenth']:.1f} over the last tenth of "
            f"{extra['svi_steps']} steps): raise svi_steps"
        )
    elif not extra.get("optimizer_converged", True):
        out["warnings"].append(f"MAP optimiser stopped early: {extra['optimizer_message']}")
    for w in out["warnings"]:
        warnings.warn(w, ConvergenceWarning, stacklevel=4)
    return out


def _rhat_ess(draws: dict) -> tuple[dict, dict]:
    """Rank-normalised split R-hat and bulk ESS of every ``(chain, draw, ...)`` array in ``draws``.

    ArviZ's estimators (Vehtari et al. 2021, as ``arviz.rhat`` / ``arviz.ess`` compute them, to
    rounding) vectorised over parameters: ArviZ loops over scalars in Python, which took 20 s of a
    1,000-state fit. Returns ``{name: ndarray}`` dicts with each array's parameter shape.
    """
    rhat, ess = {}, {}
    for name, v in draws.items():
        v = np.asarray(v, dtype=float)
        x = v.reshape(v.shape[:2] + (-1,))
        r, e = _rhat_ess_flat(x) if x.shape[1] >= 4 else (np.full(x.shape[2], np.nan),) * 2
        rhat[name], ess[name] = r.reshape(v.shape[2:]), e.reshape(v.shape[2:])
    return rhat, ess


def _rhat_ess_flat(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R-hat and bulk ESS of ``x`` (chains, draws, k): one value per column k."""
    from scipy import stats

    half = x.shape[1] // 2
    split = np.concatenate([x[:, :half], x[:, -half:]], axis=0)  # each chain in two halves
    m, n, k = split.shape

    def z_scale(a):
        ranks = stats.rankdata(a.reshape(m * n, k), method="average", axis=0)
        return stats.norm.ppf((ranks - 0.375) / (m * n + 0.25)).reshape(a.shape)

    def rhat(z):
        between = n * np.var(z.mean(axis=1), axis=0, ddof=1)
        within = np.mean(np.var(z, axis=1, ddof=1), axis=0)
        return np.sqrt((between / within + n - 1) / n)

    bad = np.isnan(x).any(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = z_scale(split)
        folded = np.abs(split - np.median(split.reshape(m * n, k), axis=0))
        r = np.maximum(rhat(z), rhat(z_scale(folded))) if x.shape[0] > 1 else np.full(k, np.nan)
        e = _ess_geyer(z)
    const = np.ptp(z.reshape(m * n, k), axis=0) < np.finfo(float).resolution
    e = np.where(const, m * n, e)
    return np.where(bad, np.nan, r), np.where(bad, np.nan, e)


def _ess_geyer(z: np.ndarray) -> np.ndarray:
    """ESS of (chains, draws, k) by Geyer's initial monotone sequence, as ``arviz`` computes it."""
    import scipy.fft

    m, n, k = z.shape
    c = z - z.mean(axis=1, keepdims=True)
    size = scipy.fft.next_fast_len(2 * n)
    f = np.fft.rfft(c, n=size, axis=1)
    acov = np.fft.irfft(f * np.conjugate(f), n=size, axis=1)[:, :n] / n
    mean_var = acov[:, 0].mean(axis=0) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(z.mean(axis=1), axis=0, ddof=1)
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus  # (n, k)
    rho_t = np.zeros((n, k))
    rho_t[0] = 1.0
    rho_t[1] = rho[1]
    even, odd = np.ones(k), rho[1].copy()
    last = np.ones(k, dtype=int)  # the t at which each column's loop stopped
    active = np.ones(k, dtype=bool)
    t = 1
    while t < n - 3:
        active &= (even + odd) > 0
        if not active.any():
            break
        even, odd = np.where(active, rho[t + 1], even), np.where(active, rho[t + 2], odd)
        keep = active & (even + odd >= 0)
        rho_t[t + 1] = np.where(keep, even, rho_t[t + 1])
        rho_t[t + 2] = np.where(keep, odd, rho_t[t + 2])
        last = np.where(active, t + 2, last)
        t += 2
    max_t = last - 2
    cols = np.arange(k)
    rho_t[max_t + 1, cols] = np.where(even > 0, even, rho_t[max_t + 1, cols])
    for t in range(1, int(max_t.max(initial=0)) - 1, 2):  # initial monotone sequence
        on = (t <= max_t - 2) & (rho_t[t + 1] + rho_t[t + 2] > rho_t[t - 1] + rho_t[t])
        mean_pair = (rho_t[t - 1] + rho_t[t]) / 2.0
        rho_t[t + 1] = np.where(on, mean_pair, rho_t[t + 1])
        rho_t[t + 2] = np.where(on, mean_pair, rho_t[t + 2])
    upto = np.cumsum(rho_t, axis=0)[max_t, cols]
    upto = np.where(max_t >= 0, upto, 0.0)
    tau = -1.0 + 2.0 * upto + rho_t[max_t + 1, cols]
    tau = np.maximum(tau, 1.0 / np.log10(m * n))
    return np.where(np.isnan(rho_t).any(axis=0), np.nan, m * n / tau)


def _worst(values: dict, counts, largest: bool, k: int = 3) -> list[tuple[str, float]]:
    """The k parameters with the largest (R-hat) or smallest (ESS) finite values, named."""
    a, b = counts.support_edges()
    names = {
        "state": list(counts.states),
        "edge": [f"{counts.states[i]}<->{counts.states[j]}" for i, j in zip(a, b, strict=True)],
    }
    items = []
    for name, arr in values.items():
        arr = np.atleast_1d(arr)
        labels = names.get(_SITE_DIMS.get(name), [])
        for idx in np.flatnonzero(np.isfinite(arr)):
            label = name
            if arr.size > 1:
                label = f"{name}[{labels[idx] if arr.size == len(labels) else idx}]"
            items.append((label, float(arr.flat[idx])))
    items.sort(key=lambda t: -t[1] if largest else t[1])
    return items[:k]


def _names(items) -> str:
    return ", ".join(f"{n} ({v:.3g})" for n, v in items)


def _warn_identifiability(counts: TransitionCounts) -> None:
    # stacklevel 4: warn, this function, fit, the _float64 wrapper -> the caller of fit
    idle = np.flatnonzero(counts.attempts == 0)
    if len(idle):
        example = ", ".join(repr(counts.states[i]) for i in idle[:3])
        warnings.warn(
            f"{len(idle)} state(s) have no attempts ({example}{', ...' if len(idle) > 3 else ''}): "
            "their potential is bounded by the prior only (unidentified)",
            IdentifiabilityWarning,
            stacklevel=4,
        )
    _, _, identified = gauge_reference(counts)
    loose = [counts.states[i] for i in np.flatnonzero(~identified & (counts.attempts > 0))]
    if loose:
        example = ", ".join(repr(s) for s in loose[:3]) + (", ..." if len(loose) > 3 else "")
        warnings.warn(
            f"{len(loose)} state(s) lie outside the largest two-way connected component of their "
            f"support component ({example}): seen one way only, their potential is bounded by the "
            "prior (identified: false in the summary)",
            IdentifiabilityWarning,
            stacklevel=4,
        )
    groups = _gauge_groups(counts)
    if len(groups) > 1:
        parts = "; ".join(
            f"component {g['group']} ({g['states']} states): "
            f"mean zero over {g['reference_states']} "
            f"reference state(s) e.g. {g['example']!r}"
            for g in groups[:5]
        )
        warnings.warn(
            f"the support graph has {len(groups)} separate components, each with its own gauge "
            f"(V differences between components are not identified): {parts}"
            + ("; ..." if len(groups) > 5 else ""),
            IdentifiabilityWarning,
            stacklevel=4,
        )


def _gauge_groups(counts: TransitionCounts) -> list[dict]:
    group, weight, identified = gauge_reference(counts)
    out = []
    for g in np.unique(group):
        ref = np.flatnonzero((group == g) & (weight > 0))
        out.append({
            "group": int(g),
            "states": int(np.sum(group == g)),
            "reference_states": int(len(ref)),
            "identified": bool(identified[ref].all()),
            "example": counts.states[int(ref[0])],
        })  # fmt: skip
    return out


# ---- building the ArviZ object ----------------------------------------------------------------
def _build(counts, data: ModelData, posterior, loglik, stats, attrs):
    import xarray as xr

    states = list(counts.states)
    edge_labels = [
        f"{states[i]}<->{states[j]}"
        for i, j in zip(
            data.arc_source[: data.n_edges], data.arc_target[: data.n_edges], strict=True
        )
    ]
    arc_labels = [
        f"{states[i]}->{states[j]}" for i, j in zip(data.arc_source, data.arc_target, strict=True)
    ]
    from .graph import fundamental_cycles

    basis = fundamental_cycles(
        counts.n_states, data.arc_source[: data.n_edges], data.arc_target[: data.n_edges]
    )
    cycle_labels = [">".join(states[i] for i in nodes + nodes[:1]) for nodes in basis.nodes]
    coords = {"state": states, "edge": edge_labels, "cycle": cycle_labels, "arc": arc_labels}

    def dims_of(name, value, lead=("chain", "draw")):
        extra = value.ndim - len(lead)
        if extra == 0:
            return lead
        if extra == 1 and name in _SITE_DIMS:
            return lead + (_SITE_DIMS[name],)
        return lead + tuple(f"{name}_dim_{i}" for i in range(extra))

    def dataset(values: dict, lead=("chain", "draw")):
        variables = {k: (dims_of(k, np.asarray(v), lead), np.asarray(v)) for k, v in values.items()}
        used = {d for dims, _ in variables.values() for d in dims}
        return xr.Dataset(variables, coords={k: v for k, v in coords.items() if k in used})

    cell_source = np.concatenate([data.arc_source[data.cell_arc], data.cell_rest])
    cell_target = np.concatenate([data.arc_target[data.cell_arc], np.full(len(data.cell_rest), -1)])
    cell_count = np.concatenate([data.arc_count[data.cell_arc], data.rest_count[data.cell_rest]])
    cell_labels = [
        f"{states[s]}->{states[t] if t >= 0 else '<rest>'}"
        for s, t in zip(cell_source, cell_target, strict=True)
    ]
    cell = {"cell": cell_labels}
    constant = {
        "source": (("pair",), counts.source),
        "target": (("pair",), counts.target),
        "count": (("pair",), counts.count),
        "self_count": (("state",), counts.self_count),
        "rejected": (("state",), counts.rejected),
        "cell_source": (("cell",), cell_source),
        "cell_target": (("cell",), cell_target),
    }
    if data.features is not None:
        constant["features"] = (("state", "feature"), np.asarray(data.features))
    groups = {
        "posterior": dataset(posterior),
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "cell"), loglik)}, coords=cell),
        "sample_stats": dataset(stats),
        "observed_data": xr.Dataset({"y": (("cell",), cell_count)}, coords=cell),
        "constant_data": xr.Dataset(constant, coords={"state": states, **cell}),
    }
    return _arviz.make(groups, attrs)


def _summarise_var(da) -> dict:
    x = np.asarray(da.values)
    x = x.reshape((-1,) + x.shape[2:])
    bounds = _arviz.hdi(x, HDI_PROB)
    return {
        "mean": x.mean(axis=0),
        "sd": x.std(axis=0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1:]),
        "hdi_lower": bounds[0],
        "hdi_upper": bounds[1],
        "rhat": np.full(x.shape[1:], np.nan),
        "ess": np.full(x.shape[1:], np.nan),
    }


def _json_number(v):
    v = float(v)
    return v if np.isfinite(v) else None


__all__ = [
    "ConvergenceWarning",
    "FieldPrior",
    "IdentifiabilityWarning",
    "PerformanceWarning",
    "check_features",
    "counts_from_fit",
    "fit",
    "posterior_kernel",
    "read_features",
    "summarise",
]
