"""Interim Savage–Dickey density ratio, used by ``universality`` until
``detailed_balance.comparison.savage_dickey`` (same signature and result fields) is on main.

For a nested model obtained by fixing a scalar, non-negative sample site (``tau``) at 0, with the
other parameters' prior unchanged by that restriction, the Bayes factor of nested against full is
``p(tau = 0 | y) / p(tau = 0)`` (Dickey 1971; Verdinelli & Wasserman 1995). The posterior density
at 0 is estimated by conditional (Rao–Blackwellised) averaging over the posterior draws ``theta_i``
of the other sites: ``p(0 | y) = mean_i p(0 | theta_i, y)``, where each conditional is the 1-D
density ``exp L(0, theta_i) / integral exp L(t, theta_i) dt`` of the log joint ``L`` along the
site, integrated by the trapezoid rule on a uniform grid (its error checked against the half
grid). No evidence is estimated, so the cost does not grow with the number of parameters beyond
evaluating the log density.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

QUADRATURE_TOL = 0.05  # nats: fine vs half-grid difference of any draw's log integral
TAIL_TOL = 15.0  # the integrand at the grid's end must be this many nats below its peak


@dataclass(frozen=True)
class SavageDickey:
    """log BF of the nested model (``site`` = 0) against the full one, with its MC error."""

    log_bf: float
    se: float
    method: str = "savage-dickey"
    converged: bool = True
    note: str = ""
    pareto_k: float = float("nan")
    ess: float = float("nan")

    def to_dict(self) -> dict:
        def f(x):
            return float(x) if x is not None and np.isfinite(x) else None

        return {
            "log_bf": f(self.log_bf),
            "se": f(self.se),
            "method": self.method,
            "converged": self.converged,
            "note": self.note,
            "pareto_k": f(self.pareto_k),
            "ess": f(self.ess),
        }


def _legacy_x64():
    from jax.experimental import enable_x64

    return enable_x64()


def savage_dickey(
    model,
    model_kwargs: dict,
    samples: dict,
    *,
    site: str = "tau",
    grid: int = 257,
    max_draws: int = 1000,
) -> SavageDickey:
    """log BF (nested at ``site`` = 0 vs full) by the Savage–Dickey ratio; see the module doc."""
    import jax
    import jax.numpy as jnp
    from numpyro.distributions import biject_to
    from numpyro.handlers import substitute, trace
    from numpyro.infer.util import log_density

    from ._arviz import rhat_ess
    from .comparison import pareto_khat

    if site not in samples:
        return SavageDickey(np.nan, np.nan, converged=False, note=f"no posterior draws of {site}")
    chains, draws = np.shape(samples[site])[:2]
    step = max(1, math.ceil(chains * draws / max_draws))
    thin = {k: np.asarray(v)[:, ::step] for k, v in samples.items()}
    chains, draws = thin[site].shape[:2]
    flat = {k: v.reshape((-1,) + v.shape[2:]).astype(np.float64) for k, v in thin.items()}
    t_draws = flat[site]
    upper = 2.0 * float(np.max(t_draws))
    if not upper > 0:
        return SavageDickey(np.nan, np.nan, converged=False, note=f"{site} draws are all 0")
    t = np.linspace(0.0, upper, grid)
    # the density at 0 as its limit: a support of (0, inf) (HalfNormal) gives -inf at 0 itself
    t[0] = 1e-9 * upper

    # fresh arrays: jax caches constants per numpy array, and arrays traced under float32
    # (the fit) then reused under float64 fail (int32 + int64 index arithmetic)
    kwargs = copy.deepcopy(model_kwargs)

    def model_fn():
        return model(**kwargs)

    # 64-bit floats: L differs by fractions of a nat between grid points of a large log density
    with jax.enable_x64(True) if hasattr(jax, "enable_x64") else _legacy_x64():
        one = {k: jnp.asarray(v[0]) for k, v in flat.items()}
        tr = trace(substitute(model_fn, one)).get_trace()
        prior_fn = tr[site]["fn"]
        # back into each support at 64 bits (a float32 zero-sum vector is off its support there)
        params = {}
        for k, v in flat.items():
            to = biject_to(tr[k]["fn"].support)
            params[k] = to(to.inv(jnp.asarray(v)))
        log_prior0 = float(prior_fn.log_prob(jnp.asarray(t[0])))

        def along(params):
            def at(tk):
                return log_density(model_fn, (), {}, {**params, site: tk})[0]

            return jax.vmap(at)(jnp.asarray(t))

        log_joint = np.asarray(
            jax.jit(lambda p: jax.lax.map(along, p, batch_size=8))(params)
        )  # (draws, grid)
    h = t[1] - t[0]
    trap = np.full(grid, np.log(h))
    trap[[0, -1]] = np.log(h / 2)
    log_int = logsumexp(log_joint + trap, axis=1)
    half = log_joint[:, ::2]
    trap2 = np.full(half.shape[1], np.log(2 * h))
    trap2[[0, -1]] = np.log(h)
    quad_err = float(np.max(np.abs(logsumexp(half + trap2, axis=1) - log_int)))
    tail = float(np.max(log_joint[:, -1] - log_joint.max(axis=1)))
    log_w = log_joint[:, 0] - log_int  # log p(site = 0 | other sites, y), per draw
    n = len(log_w)
    log_mean = float(logsumexp(log_w) - np.log(n))
    w = np.exp(log_w - log_w.max())
    import xarray as xr

    ess = float(rhat_ess(xr.Dataset({"w": (("chain", "draw"), w.reshape(chains, draws))}))[1]["w"])
    ess = ess if np.isfinite(ess) and ess > 0 else float(n)
    se = float(np.std(w) / (np.mean(w) * math.sqrt(ess))) if np.mean(w) > 0 else np.inf
    k = pareto_khat(log_w)
    notes = []
    if quad_err > QUADRATURE_TOL:
        notes.append(f"quadrature error up to {quad_err:.2f} nats (grid too coarse)")
    if tail > -TAIL_TOL:
        notes.append(f"the conditional density of {site} is not negligible at the grid's end")
    if k > 0.5:
        notes.append(f"Pareto k {k:.2f} > 0.5: p({site} = 0 | y) rests on a few draws")
    if not np.isfinite(se):
        notes.append("no finite Monte Carlo error")
    converged = not notes
    notes.append(f"{n} draws, {grid}-point grid on [0, {upper:.3g}]")
    return SavageDickey(
        log_bf=log_mean - log_prior0,
        se=se,
        converged=converged,
        note="; ".join(notes),
        pareto_k=float(k),
        ess=ess,
    )
