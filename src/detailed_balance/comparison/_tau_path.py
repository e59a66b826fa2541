"""An independent log Bayes factor for a nested scale: thermodynamic integration over the scale.

Check on Savage–Dickey (``_savage_dickey``), by a different route through the same models. Give
the non-reversible model's flow scale the prior ``tau ~ HalfNormal(s)``; its evidence ``Z(s)``
tends to the reversible model's as ``s → 0`` (the flow ``tau Q w`` vanishes), and is the
non-reversible evidence at ``s = c`` (the prior's ``cycle_scale``). Path sampling (Gelman & Meng
1998) along ``λ = log s``:

    d log Z / dλ = E_s[ d log p(tau | s) / dλ ] = E_s[ tau² / s² − 1 ] =: g(λ),

    log BF(reversible : non-reversible) = −∫_{−∞}^{log c} g(λ) dλ.

Each ``g(λ_k)`` is a posterior mean under the prior scale ``s_k``, from its own NUTS run (the
model gets the tilt ``log HalfNormal(tau; s) − log HalfNormal(tau; c)`` as a factor). ``s`` is
a model argument and the chains run one after another: numpyro's ``jit_model_args`` keeps ``s``
out of the compiled program only for sequential chains (parallel ones embed it as a constant, so
every scale recompiled), and the persistent compilation cache (``detailed_balance.configure``)
then serves every scale and chain from one compilation (measured at 10 states: 19 s for the
first scale, 1.7 s for each next one; without the cache each run recompiles, ~3 s per chain
there). Below the grid, ``g ≈ a s²``
(the likelihood is smooth in the flow at 0), whose integral ``g(λ_min)/2`` is added. The
Monte Carlo error of each ``g`` comes from the bulk ESS of its draws; the grid's error is the
difference between Simpson's rule and the trapezoid on the same points, reported beside it and
added in quadrature. Where the data pull tau away from 0, ``g`` climbs steeply over the last
unit or two of ``log s`` (to ~2.5 at s = 1 for a 10-state chain driven at 1.5 nats per cycle):
after the first grid, up to ``refine`` scales are added one at a time, each halving the
interval across which ``g`` changes most, until no neighbouring pair differs by more than
``REFINE_STEP``. Where the data pull tau so far from 0 that the integrand is not yet small at the
grid's smallest scale, up to ``extend`` scales are added below it, ``EXTEND_STEP`` apart in
``log s`` (the integrand falls like ``s²`` there), before the refinement. No draw of the
Savage–Dickey estimate, and no quadrature over ``tau`` given
the rest, is shared with it: an independent estimate, at the cost of one NUTS run per grid point.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..errors import DataError

REFINE_STEP = 0.1  # refine the grid until neighbouring values of g differ by at most this
EXTEND_STEP = 2.0  # log s between the scales added below the grid (g falls ~e^-4 per step)


@dataclass(frozen=True)
class PathBayesFactor:
    """log BF(nested : full) by thermodynamic integration over the prior scale of ``tau``.

    ``se`` combines the Monte Carlo error (``se_mc``) and the grid's error (``se_grid``);
    ``converged`` is False when a grid point's sampler did not mix (R-hat of tau > 1.05 or its
    ESS < 50) or the tail below the grid is not small; ``note`` says which.
    """

    log_bf: float
    se: float
    se_mc: float
    se_grid: float
    converged: bool
    note: str = ""
    log_scales: tuple = field(default_factory=tuple)
    integrand: tuple = field(default_factory=tuple)
    integrand_se: tuple = field(default_factory=tuple)
    seconds: float = float("nan")


def _tilted(log_s, *, model, data, prior):
    """``model`` with tau's HalfNormal(c) prior replaced by HalfNormal(exp(log_s))."""
    import jax.numpy as jnp
    import numpyro
    from numpyro import handlers

    with handlers.trace() as tr:
        model(data, prior=prior)
    tau = tr["tau"]["value"]
    inv_s2 = jnp.exp(-2.0 * log_s)
    numpyro.factor("tau_scale", -log_s - 0.5 * tau**2 * (inv_s2 - 1.0 / prior.cycle_scale**2))


def tau_path_log_bf(
    data,
    prior=None,
    *,
    model=None,
    log_scales: np.ndarray | None = None,
    draws: int = 500,
    warmup: int = 500,
    chains: int = 2,
    refine: int = 6,
    extend: int = 4,
    seed: int = 0,
    progress: bool = False,
) -> PathBayesFactor:
    """log BF(reversible : non-reversible) by path sampling over tau's prior scale.

    Parameters
    ----------
    data : ModelData
        The counts (``modeldata.build_model_data``); needs at least one independent cycle.
    prior : FieldPrior, optional
        The non-reversible model's priors (``cycle_tail`` must be ``"normal"``).
    model : callable, optional
        The full model (default ``models.nonreversible``); it must sample ``tau`` from
        ``HalfNormal(prior.cycle_scale)`` and reduce to the nested model at ``tau = 0``.
    log_scales : array, optional
        The grid of ``log s``, increasing, ending at ``log(prior.cycle_scale)``; default 15
        points from ``log(c) − 7`` (s = c/1100).
    draws, warmup, chains, seed : int
        NUTS settings of each grid point (float64 trajectories).
    refine : int
        At most this many scales added after the first grid, each at the midpoint of the
        interval where the integrand changes most (:func:`next_scale`); 0 keeps the grid.
    extend : int
        At most this many scales added below the grid while the integrand at the smallest
        scale is not small (``|g| > max(0.05, 3 se)``); 0 keeps the grid's bottom.
    progress : bool
        Print each scale's integrand and time to stderr as it finishes.

    Returns
    -------
    PathBayesFactor
    """
    import time

    import jax
    import jax.numpy as jnp
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer import MCMC, NUTS

    from ..models import FieldPrior, nonreversible
    from ..runtime import x64

    prior = prior or FieldPrior()
    model = model or nonreversible
    if prior.cycle_tail != "normal":
        raise DataError("the tau path needs tau ~ HalfNormal (cycle_tail='normal')")
    if getattr(data, "n_chords", 1) == 0:
        raise DataError("the support graph has no cycle: the two models are the same")
    top = math.log(prior.cycle_scale)
    grid = np.linspace(top - 7.0, top, 15) if log_scales is None else np.asarray(log_scales)
    if grid.ndim != 1 or grid.size < 3 or np.any(np.diff(grid) <= 0) or abs(grid[-1] - top) > 1e-12:
        raise DataError("log_scales must increase, have >= 3 points and end at log(cycle_scale)")
    start = time.perf_counter()
    kernel = NUTS(partial(_tilted, model=model, data=data, prior=prior))
    # sequential: the only chain method for which jit_model_args keeps log_s an argument
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method="sequential", progress_bar=False, jit_model_args=True)  # fmt: skip
    points: dict[float, tuple[float, float]] = {}  # log s -> (mean of g, its se)
    notes = []

    def run(log_s: float) -> None:
        mcmc.run(jax.random.PRNGKey(seed + len(points)), jnp.float32(log_s))
        tau = np.asarray(mcmc.get_samples(group_by_chain=True)["tau"], dtype=np.float64)
        # each run loads its programs anew (from the persistent cache) and JAX keeps the old
        # ones: ~1,500 memory maps per run, so a process that ran ~40 of them hit the
        # kernel's 65,530 and crashed in LLVM; clearing the caches releases them (measured)
        jax.clear_caches()
        g = tau**2 * math.exp(-2.0 * log_s) - 1.0
        ess = float(effective_sample_size(g)) if chains > 1 else float(len(g[0]))
        rhat = float(split_gelman_rubin(np.log(tau))) if chains > 1 else 1.0
        points[float(log_s)] = (float(g.mean()), float(g.std() / math.sqrt(max(ess, 1.0))))
        if progress:
            print(f"tau path: log s {log_s:+.3f}: g {points[float(log_s)][0]:.5g} ± "
                  f"{points[float(log_s)][1]:.2g} (ESS {ess:.0f}, R-hat {rhat:.3f}, "
                  f"{time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
        if rhat > 1.05 or ess < 50:
            notes.append(f"s = {math.exp(log_s):.3g}: R-hat of log tau {rhat:.3f}, ESS {ess:.0f}")

    with x64(True, all_threads=True):  # float64: the data arrays are shared with float64 code
        for log_s in grid:
            run(log_s)
        for _ in range(extend):
            bottom = min(points)
            if not _not_small(*points[bottom]):
                break
            run(bottom - EXTEND_STEP)
        for _ in range(refine):
            xs = np.array(sorted(points))
            extra = next_scale(xs, np.array([points[x][0] for x in xs]))
            if extra is None:
                break
            run(extra)
    grid = np.array(sorted(points))
    means, ses = (np.array([points[x][i] for x in grid]) for i in (0, 1))
    step = np.diff(grid)
    w = np.zeros_like(grid)  # trapezoid weights
    w[:-1] += step / 2
    w[1:] += step / 2
    tail = means[0] / 2  # ∫ a e^{2λ} dλ below the grid = g(λ_min) / 2
    w[0] += 0.5
    trapezoid = float(w @ means)
    se_mc = float(np.sqrt(np.sum((w * ses) ** 2)))
    se_grid = abs(_simpson(grid, means) + tail - trapezoid)
    if _not_small(means[0], ses[0]):
        notes.append(f"the integrand at the smallest scale is not small ({means[0]:.3g})")
    return PathBayesFactor(
        log_bf=-trapezoid,
        se=math.hypot(se_mc, se_grid),
        se_mc=se_mc,
        se_grid=se_grid,
        converged=not notes,
        note="; ".join(notes),
        log_scales=tuple(float(x) for x in grid),
        integrand=tuple(float(x) for x in means),
        integrand_se=tuple(float(x) for x in ses),
        seconds=time.perf_counter() - start,
    )


def _not_small(g: float, se: float) -> bool:
    """Whether the integrand at the smallest scale is too large for the analytic tail g/2."""
    return abs(g / 2) > max(0.05, 3 * se)


def _simpson(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.integrate import simpson

    return float(simpson(y, x=x))


def next_scale(log_scales: np.ndarray, integrand: np.ndarray, step: float = REFINE_STEP):
    """The midpoint of the interval across which the integrand changes most, or None.

    Parameters
    ----------
    log_scales : array
        The grid of ``log s`` so far, increasing.
    integrand : array
        The integrand's values there.
    step : float
        None when no neighbouring pair of values differs by more than this.

    Returns
    -------
    float or None

    Examples
    --------
    >>> next_scale(np.array([-2.0, -1.0, 0.0]), np.array([0.0, 0.05, 1.0]))
    -0.5
    >>> next_scale(np.array([-2.0, -1.0, 0.0]), np.array([0.0, 0.05, 0.1])) is None
    True
    """
    jumps = np.abs(np.diff(integrand))
    k = int(np.argmax(jumps))
    if not jumps[k] > step:
        return None
    return float(0.5 * (log_scales[k] + log_scales[k + 1]))
