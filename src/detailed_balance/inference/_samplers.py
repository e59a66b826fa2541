"""Run the samplers (NUTS, MAP by L-BFGS, SVI) on a bound model; evaluate it at draws."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import jax
import numpy as np
import numpyro
from numpyro.infer.util import constrain_fn, log_density, unconstrain_fn

from ..graph import CycleSpace
from ..modeldata import CAPPED_WARMUP_MAX_LATENT, MAX_TREE_DEPTH, WARMUP_TREE_DEPTH, ModelData


class PerformanceWarning(UserWarning):
    """A fit runs slower than it could (e.g. chains one after another for want of devices)."""


def _narrow(data: ModelData) -> ModelData:
    """A 32-bit copy of the model's arrays, for float32 sampling.

    A copy, not only a cast: jax caches constants per numpy array, and one traced under float32
    then reused under float64 fails (int32 + int64 index arithmetic, jax 0.10).
    """

    def narrow(x):
        if isinstance(x, CycleSpace):  # holds index arrays too (the non-reversible model)
            return _NarrowCycleSpace(x)
        return _narrow_array(x) if isinstance(x, np.ndarray) else x

    return ModelData(*(narrow(x) for x in data))


def _narrow_array(x: np.ndarray) -> np.ndarray:
    """A copy of ``x`` in 32 bits (floats and integers; other kinds as they are)."""
    kind = {"f": np.float32, "i": np.int32}.get(x.dtype.kind)
    return x.astype(kind) if kind else x.copy()


class _NarrowCycleSpace(CycleSpace):
    """A cycle space whose flow basis is its float64 original's, cast to float32 when first read.

    Only the non-reversible model reads the basis: a dense QR factorisation that the reversible
    model should not pay (0.04 s at 100 states, 0.4 CPU s at 1,000, and seconds of wall time with
    OpenBLAS's threads on a loaded machine), and one too large to build is left for that model to
    refuse (the reversible model at 3,000 states has 3,001 cycles). The sparse factors of the
    reduced Laplacian, which the model uses instead of a basis too large to build, are the
    original's too (float64).

    Parameters
    ----------
    wide : CycleSpace
        The original: its state is copied (its fundamental cycles and forest levels are not
        recomputed), with the cycle matrix's entries in 32 bits.
    """

    def __init__(self, wide: CycleSpace):
        vars(self).update(vars(wide))  # not CycleSpace.__init__: nothing recomputed
        entries = (wide.cycle_id, wide.edge, wide.sign)
        self.cycle_id, self.edge, self.sign = map(_narrow_array, entries)
        self._wide, self._flow_basis = wide, None

    def _cut_space(self):  # the original's float64 factors (chord coordinates' constant, draws)
        return self._wide._cut_space()

    def flow_basis(self) -> np.ndarray:
        if self._flow_basis is None:  # the original caches the float64 basis for evaluation
            self._flow_basis = self._wide.flow_basis().astype(np.float32)
        return self._flow_basis


def _initial_trace(model_fn, key):
    """Model trace at numpyro's default initial point (uniform in (-2, 2), unconstrained)."""
    from numpyro.handlers import seed, substitute, trace
    from numpyro.infer.initialization import init_to_uniform

    return trace(substitute(seed(model_fn, key), substitute_fn=init_to_uniform)).get_trace()


def latent_sites(model_fn: Callable[[], object], seed: int) -> list[str]:
    """Names of the latent sample sites of a model, found by abstract tracing (no compilation).

    Parameters
    ----------
    model_fn : callable
        A NumPyro model taking no arguments (bind the data and prior first).
    seed : int
        Seed of the trace (only shapes are computed).

    Returns
    -------
    list of str
        The unobserved ``sample`` sites, sorted by name.
    """
    return _abstract_sites(model_fn, seed)[0]


def site_dims(model_fn: Callable[[], object], seed: int) -> dict[str, tuple[str, ...]]:
    """The names of each site's axes, as the model declares them, found by abstract tracing.

    A site's axes are the plates around it, then (sample sites) the names in
    ``infer={"event_dims": (...)}``. Undeclared sites are left out.

    Parameters
    ----------
    model_fn : callable
        A NumPyro model taking no arguments (bind the data and prior first).
    seed : int
        Seed of the trace (only shapes are computed).

    Returns
    -------
    dict
        Site name -> axis names (the trailing axes of its value).

    Examples
    --------
    >>> from detailed_balance.modeldata import build_model_data
    >>> from detailed_balance.models import reversible
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=20, seed=0)
    >>> data = build_model_data(counts)
    >>> dims = site_dims(lambda: reversible(data), seed=0)
    >>> dims["V"], dims["u_z"], dims["y"]
    (('state',), ('edge',), ('cell',))
    """
    return _abstract_sites(model_fn, seed)[1]


def _abstract_sites(model_fn, seed: int) -> tuple[list[str], dict[str, tuple[str, ...]], int]:
    """``latent_sites``, ``site_dims`` and the number of latent values from one abstract trace
    (each trace costs ~0.1-0.4 s).

    The latent values are counted in the unconstrained space the samplers move in (the size of
    NUTS's mass matrix): a ``ZeroSumNormal`` over ``n`` states is ``n - 1`` of them.
    """
    from numpyro.distributions.transforms import biject_to

    latent, dims, sizes = [], {}, []

    def declared():
        for name, site in _initial_trace(model_fn, jax.random.PRNGKey(seed)).items():
            if site["type"] not in ("sample", "deterministic"):
                continue
            if site["type"] == "sample" and not site["is_observed"]:
                latent.append(name)
                shape = biject_to(site["fn"].support).inverse_shape(np.shape(site["value"]))
                sizes.append(int(np.prod(shape)))
            plates = sorted(site.get("cond_indep_stack", []), key=lambda f: f.dim)
            event = (site.get("infer") or {}).get("event_dims", ())
            names = (*(f.name for f in plates), *event)
            if names:
                dims[name] = names
        return 0

    jax.eval_shape(declared)  # python side effects run once; nothing is computed
    return sorted(latent), dims, sum(sizes)


def default_warmup_tree_depth(n_latent: int) -> int:
    """NUTS's warm-up tree depth for a model with ``n_latent`` latent values.

    ``WARMUP_TREE_DEPTH`` up to ``CAPPED_WARMUP_MAX_LATENT`` values, numpyro's ``MAX_TREE_DEPTH``
    above (see ``modeldata.WARMUP_TREE_DEPTH``).
    """
    return WARMUP_TREE_DEPTH if n_latent <= CAPPED_WARMUP_MAX_LATENT else MAX_TREE_DEPTH


def run_nuts(
    model_fn: Callable[[], object],
    draws: int,
    warmup: int,
    chains: int,
    seed: int,
    progress: bool,
    target_accept: float,
    warmup_tree_depth: int = MAX_TREE_DEPTH,
    init_values: dict | None = None,
) -> tuple[dict, dict, dict]:
    """NUTS on a model: parallel chains when JAX has a device per chain, else one after another.

    The sampler that :func:`fit` runs, for models outside the ladder (the joint models of
    :mod:`detailed_balance.universality`). Floats are whatever precision is in force.

    Parameters
    ----------
    model_fn : callable
        A NumPyro model taking no arguments.
    draws, warmup, chains, seed : int
        Sampler settings (per chain).
    progress : bool
        Show numpyro's progress bar.
    target_accept : float
        NUTS target acceptance probability.
    warmup_tree_depth : int
        Largest tree depth during warm-up (at most 2**depth - 1 leapfrog steps per iteration;
        the draws after it may reach depth 10); default numpyro's 10, :func:`fit` passes
        :func:`default_warmup_tree_depth` (see ``modeldata.WARMUP_TREE_DEPTH``).
    init_values : dict, optional
        Start of every chain at these sites (constrained values, ``numpyro``'s
        ``init_to_value``); the other sites start as numpyro's default (uniform in (-2, 2)
        unconstrained, per chain). Default: every site so.

    Returns
    -------
    latent : dict
        Latent site name -> draws of shape ``(chains, draws, *site_shape)`` (deterministic
        sites are not collected: callers evaluate them afterwards, in float64).
    stats : dict
        ``lp``, ``diverging``, ``n_steps``, ``acceptance_rate``, ``energy``, ``step_size`` per
        (chain, draw).
    extra : dict
        ``chain_method`` ("parallel" or "sequential").
    """
    from numpyro.infer import MCMC, NUTS, init_to_uniform, init_to_value

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
        NUTS(
            model_fn,
            target_accept_prob=target_accept,
            max_tree_depth=(warmup_tree_depth, MAX_TREE_DEPTH),
            init_strategy=init_to_value(values=init_values) if init_values else init_to_uniform,
        ),
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method="parallel" if parallel else "sequential",
        progress_bar=progress,
        # collect the latent sites only: numpyro's default replays the model at every draw for
        # its deterministic sites, which the callers discard (a smaller program to compile)
        postprocess_fn=lambda z: constrain_fn(model_fn, (), {}, z, return_deterministic=False),
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


def run_map(
    model_fn: Callable[[], object], seed: int, attempts: int = 1
) -> tuple[dict, dict, dict]:
    """Posterior mode by L-BFGS over unconstrained parameters, density of the constrained ones.

    The gradient tolerance scales with the number of attempts (gradients are sums over them):
    1e-9 up to 1000 attempts, then 1e-12 per attempt.

    Parameters
    ----------
    model_fn : callable
        A NumPyro model taking no arguments.
    seed : int
        Seed of the start (numpyro's default initialisation).
    attempts : int
        Attempts in the data (sets the gradient tolerance).

    Returns
    -------
    latent : dict
        Site name -> the mode, shaped ``(1, 1, *site_shape)`` like one chain of one draw.
    stats : dict
        Empty (no sampler statistics).
    extra : dict
        ``optimizer``, ``iterations``, ``max_abs_gradient``, ``optimizer_message``,
        ``optimizer_converged``.
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
    """numpyro's AutoLowRankMultivariateNormal (rank-10 plus diagonal covariance over the
    unconstrained parameters) fitted by Adam on a 4-draw ELBO, started at numpyro's default
    initial point; ``draws`` from it, constrained. All steps run in one compiled ``scan`` (no
    progress bar: it would dispatch the steps one by one).
    """
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoLowRankMultivariateNormal

    guide = AutoLowRankMultivariateNormal(model_fn, rank=rank)
    svi = SVI(model_fn, guide, numpyro.optim.Adam(0.01), Trace_ELBO(num_particles=4))
    result = svi.run(jax.random.PRNGKey(seed), steps, progress_bar=False)
    samples = guide.sample_posterior(
        jax.random.PRNGKey(seed + 1), result.params, sample_shape=(draws,)
    )
    latent = {k: np.asarray(v)[None] for k, v in samples.items()}
    losses = np.asarray(result.losses)
    tail = max(len(losses) // 10, 1)
    last, before = losses[-tail:].mean(), losses[-2 * tail : -tail].mean()
    # still improving by more than ~1 nat over the last tenth of the run: not converged
    drift = float(before - last) if len(losses) >= 2 * tail else float("nan")
    extra = {
        "svi_steps": int(steps),
        "svi_guide": f"numpyro AutoLowRankMultivariateNormal, rank {rank}",
        "final_loss": float(last),
        "loss_drift_last_tenth": drift,
        "optimizer_converged": bool(not drift > 1.0),
    }
    return latent, {}, extra


# floats held per batch of draws in ``_evaluate`` (~32 MB of float64 per intermediate array)
EVALUATE_BATCH_FLOATS = 1 << 22


def _evaluate(model_fn, latent: dict, keep: Iterable[str] | None = None):
    """Deterministic sites, pointwise log-likelihood of ``y`` and log joint density per draw.

    One compiled ``vmap`` over a fixed batch of draws, called batch by batch (the last padded
    with repeats of its final draw): a ``lax.map`` over the draws compiled the model twice (the
    loop's body and its remainder) and took 3x as long to compile, which at 100 states was most
    of a warm fit's evaluation. ``keep``: the deterministic sites to return (default: all);
    the others are not computed.
    """
    lead = next(iter(latent.values())).shape[:2]
    n = int(np.prod(lead))
    flat = {k: np.asarray(v).reshape((n,) + np.shape(v)[2:]) for k, v in latent.items()}
    keep = None if keep is None else set(keep)

    def one(params):
        lp, tr = log_density(model_fn, (), {}, params)
        sites = {
            k: s["value"]
            for k, s in tr.items()
            if s["type"] == "deterministic" and (keep is None or k in keep)
        }
        y = tr["y"]
        return sites, y["fn"].log_prob(y["value"]), lp

    # the largest per-draw array sets how many draws fit in a batch; traced once for all draws
    # (a model trace costs ~0.1 s at 100 states), which jit reuses when they fit in one batch
    run = jax.jit(jax.vmap(one))
    shapes = jax.tree.leaves(run.trace(flat).out_info)
    width = max(int(np.prod(s.shape[1:])) for s in shapes)
    batch = max(1, min(n, EVALUATE_BATCH_FLOATS // max(width, 1)))
    parts = []
    for start in range(0, n, batch):
        idx = np.minimum(np.arange(start, start + batch), n - 1)  # pad with the last draw
        parts.append(jax.device_get(run({k: v[idx] for k, v in flat.items()})))
    sites, loglik, lp = jax.tree.map(lambda *xs: np.concatenate(xs)[:n], *parts)

    def unflat(x):
        x = np.asarray(x)
        return x.reshape(lead + x.shape[1:])

    return {k: unflat(v) for k, v in sites.items()}, unflat(loglik), unflat(lp)
