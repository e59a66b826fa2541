"""Log evidence (marginal likelihood) of the models of the ladder: the result type and the
shared plumbing (a NumPyro model as a flat log density on its unconstrained space).

The estimators, one private module each:

* ``_dirichlet``: :func:`log_evidence_dirichlet`, exact, closed form, for the unconstrained
  (Dirichlet-row) model; :func:`dirichlet_posterior_draws`, that model's exact posterior (a test
  bed for the others).
* ``_bridge``: :func:`bridge_sampling`, numerical, for any model, from posterior draws (the
  iterative Meng & Wong bridge estimator with a Gaussian proposal).
* ``_annealed``: :func:`annealed_evidence`, numerical, for any model, without draws: annealed
  importance sampling from the Laplace fit (``laplace-ais``), for where bridge sampling refuses.
* ``_smc``: :func:`smc_evidence`, the same path by adaptive tempered SMC (``laplace-smc``), for
  thousands of parameters; ``_tempering`` holds what the two share (the Laplace reference, the
  schedule's next temperature, the HMC move at a temperature); ``_draws_reference`` its other
  reference, a Gaussian of posterior draws (``draws-smc``: the hierarchical models, whose joint
  mode is far from their posterior).
* ``_pareto``: :func:`pareto_khat`, the PSIS tail diagnostic of a set of importance weights.

Failures are ``Evidence(converged=False, note=...)``, never a bare number.

Likelihood convention (``models/_common.py``): every attempt is one categorical draw from its
source's row over (support neighbours + rest); no multinomial coefficient.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import DataError
from ..formats import json_safe


@dataclass(frozen=True)
class Evidence:
    """A log evidence with its Monte Carlo standard error (``se = 0`` when exact).

    ``converged`` is False when the estimator failed (the iteration did not settle, or the
    error is not finite); ``note`` then says why, and ``log_z``/``se`` must not be reported alone.
    """

    log_z: float
    se: float
    method: str
    converged: bool = True
    note: str = ""
    n_draws: int = 0
    pareto_k: float = float("nan")
    overlap: float = float("nan")

    def to_dict(self) -> dict:
        """JSON-able dict (NaN and inf -> None)."""
        return json_safe(asdict(self))


def evidence_log_bf(ev: Evidence, ref: Evidence) -> tuple[float, float]:
    """``log Z_ev - log Z_ref`` and its se (independent errors: in quadrature); NaN, NaN unless
    both estimates converged."""
    if not (ev.converged and ref.converged):
        return np.nan, np.nan
    return ev.log_z - ref.log_z, math.hypot(ev.se, ref.se)


def unconstrained_draws(model, model_kwargs: dict, samples: dict, *, seed: int = 0):
    """Map posterior draws of a NumPyro model's latent sites to its unconstrained space.

    Parameters
    ----------
    model : callable
        The NumPyro model.
    model_kwargs : dict
        Its keyword arguments.
    samples : dict of site -> array (chains, draws, ...) in the constrained space.
    seed : int
        Seed of the model trace.

    Returns
    -------
    z : (chains, draws, D) array
        The draws in the unconstrained space.
    log_density : callable
        On (N, D) arrays: the log of prior × likelihood × Jacobian (minus NumPyro's potential
        energy), vectorised.
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.distributions.transforms import biject_to

    trace, latent, _, log_p, _ = _flat_model(model, model_kwargs, jax.random.PRNGKey(seed))
    missing = [name for name in latent if name not in samples]
    if missing:
        raise ValueError(f"posterior draws lack the latent site(s) {missing}")
    for name in latent:  # draws of other data: one line, not a shape error deep in JAX
        want, got = np.shape(trace[name]["value"]), np.shape(samples[name])[2:]
        if got != want:
            raise DataError(
                f"posterior draws of site {name!r} have shape {got} per draw, the model on "
                f"these data {want}: draws of other data or another model?"
            )
    transforms = {name: biject_to(trace[name]["fn"].support) for name in latent}
    first = np.asarray(samples[latent[0]])
    chains, draws = first.shape[:2]
    flat = {
        k: jnp.asarray(
            np.asarray(samples[k], dtype=float).reshape(
                (chains * draws,) + np.shape(samples[k])[2:]
            )
        )
        for k in latent
    }

    def to_z(one):
        return ravel_pytree({k: transforms[k].inv(v) for k, v in one.items()})[0]

    z = jax.vmap(to_z)(flat)
    potential = jax.jit(jax.vmap(log_p))

    def log_density(x):
        out = []
        for start in range(0, len(x), 4096):  # bounded memory on large draw sets
            out.append(np.asarray(potential(jnp.asarray(x[start : start + 4096])), dtype=float))
        return np.concatenate(out)

    return np.asarray(z, dtype=float).reshape(chains, draws, -1), log_density


def _improper(fn) -> bool:
    from numpyro.distributions import ImproperUniform

    base = fn
    while hasattr(base, "base_dist"):
        base = base.base_dist
    return isinstance(base, ImproperUniform)


def _flat_model(model, model_kwargs: dict, key):
    """(trace, latent names, unravel, log density of a flat unconstrained vector, start vector).

    The log density is prior × likelihood × Jacobian in NumPyro's unconstrained space (minus its
    potential energy). Built from one eager trace of the model (start: uniform in (-2, 2),
    unconstrained): ``initialize_model`` compiles a search for a valid start that costs a minute
    at 150 states.
    """
    import jax
    from jax.flatten_util import ravel_pytree
    from numpyro import handlers
    from numpyro.infer.initialization import init_to_uniform
    from numpyro.infer.util import potential_energy, unconstrain_fn

    seeded = handlers.seed(model, key)
    trace = handlers.trace(handlers.substitute(seeded, substitute_fn=init_to_uniform)).get_trace(
        **model_kwargs
    )
    latent = [
        name for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"]
    ]
    for name in latent:
        if _improper(trace[name]["fn"]):
            raise ValueError(f"site {name!r} has an improper prior: the evidence is undefined")
    start = unconstrain_fn(model, (), model_kwargs, {k: trace[k]["value"] for k in latent})
    x0, unravel = ravel_pytree(start)
    # the ladder's models can sum their likelihood per arc and per row: the same density with a
    # cheaper gradient (~1.0-1.8x batched over particles in float64; docs/readme/bench-fit.md)
    if "pointwise" in inspect.signature(model).parameters:
        model_kwargs = {**model_kwargs, "pointwise": False}

    def log_p(x):
        return -potential_energy(model, (), model_kwargs, unravel(x))

    return trace, latent, unravel, jax.jit(log_p), x0
