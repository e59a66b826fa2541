"""The Bayes factor of a nested model from the larger model's posterior alone (Savage–Dickey).

When a model ``M1`` has a scale site ``tau`` (support (0, ∞)) whose value 0 gives the nested model
``M0``, and every other prior is the same in both and independent of ``tau``, then (Dickey 1971)

    BF(M0 : M1) = p(tau = 0 | y, M1) / p(tau = 0 | M1).

The non-reversible model is such a pair with the reversible one: its edge flow is
``tau Q w`` (``models/_common.py: cycle_flow``), at ``tau = 0`` its likelihood is the reversible
one, and ``w`` then only has its prior. The posterior density at 0 is estimated by
Rao–Blackwellisation (Gelfand & Smith 1990): for each posterior draw of the other sites, the full
conditional of ``tau`` is one-dimensional, ``∝ p(tau) L(y | tau, rest)``; its value at 0 is
computed by quadrature and the values are averaged over draws. No dimension enters but that of
``tau``, so the estimate works at any number of parameters, from the draws a fit already has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import DataError
from ..formats import json_safe
from ..runtime import x64
from ._pareto import pareto_khat

# per-draw terms with k̂ above this: their mean is not to be trusted (measured on a closed form:
# at k̂ 0.63 the estimate was 0.7 nats, 46 reported se, off; at k̂ ≤ 0.1 within 1 se)
SD_PARETO_K_MAX = 0.5
DECISION = float(np.log(10.0))  # |log BF| beyond log 10: the package's decision threshold
# The quadrature's relative disagreement with its half-resolution rule, e, moves every log term,
# hence log BF, by at most log(1 + e) nats: that bound joins the se, and above SD_QUAD_MAX_NATS
# (small against the Monte Carlo se and the log 10 threshold) the estimate is refused. A relative
# tolerance of 1e-3 (0.001 nats) refused half the universality calibration's estimates for a
# disagreement of 0.002-0.01 nats against a Monte Carlo se of ~0.1.
SD_QUAD_MAX_NATS = 0.05
# Chains that disagree about the per-draw terms sample different regions: their mean is a mixture
# of regions, not the posterior mean (a universality control: one chain at beta_3 -> 0, tau ~ 0,
# the other at tau ~ 1, gave log BF +1.6 ± 1.1 against about -600). Above this rank-normalised
# split R-hat of the per-draw log terms no number is given (the threshold for a mixing failure
# of ``tau_path``'s grid too).
SD_RHAT_MAX = 1.05
_COARSE = 96  # coarse grid over log tau (locates the mode of the conditional)
_ZOOM = 33  # each of two zoom grids around it
_FINE = 121  # the trapezoid over mode ± 15 sd in log tau
_HALF_WIDTH = 15.0
_PROBE = np.geomspace(1e-7, 3.0, 24)  # steps in log tau at which the peak's width is probed
# "0" as the models see it: the support of a scale is (0, ∞), so 0 itself may be refused by
# NumPyro's argument checks; at 1e-250 every density equals its limit at 0 in float64
_ZERO = 1e-250


@dataclass(frozen=True)
class SavageDickey:
    """A log Bayes factor of a nested model (``site`` = 0) against the full model.

    ``log_bf`` > 0 favours the nested model (for the non-reversible model and ``tau``: detailed
    balance). ``se`` is its Monte Carlo standard error (from the effective sample size of the
    per-draw terms). ``converged`` is False when the estimate is not a number to report (the
    per-draw terms have a Pareto k̂ above 0.5, their chains disagree, or the quadrature failed);
    ``note`` then says what can honestly be said. ``pareto_k``, ``ess`` and ``rhat`` are those of
    the per-draw terms.
    """

    log_bf: float
    se: float
    method: str = "savage-dickey"
    converged: bool = True
    note: str = ""
    pareto_k: float = float("nan")
    ess: float = float("nan")
    n_draws: int = 0
    site: str = "tau"
    log_prior_density: float = float("nan")  # log p(site = 0), the denominator
    quadrature_error: float = float("nan")  # largest relative quadrature disagreement
    # +1 when refused because site = 0 lies so far in the tail that every draw favours the full
    # model beyond the decision threshold (the one refusal that still calls a side), else 0
    tail_side: int = 0
    # rank-normalised split R-hat of the per-draw log terms (chains that disagree: no number)
    rhat: float = float("nan")

    def to_dict(self) -> dict:
        """JSON-able dict (NaN and inf -> None)."""
        return json_safe(asdict(self))


def savage_dickey(model, model_kwargs: dict, samples: dict, *, site: str = "tau") -> SavageDickey:
    """log BF of the nested model ``site = 0`` against ``model``, from ``model``'s posterior.

    Savage–Dickey density ratio, ``p(site = 0 | y) / p(site = 0)``, with the posterior density
    at 0 Rao–Blackwellised over the draws: for each draw s of the other latent sites, the full
    conditional density of ``site`` at 0, ``p(0) L(0 | rest_s) / ∫ p(t) L(t | rest_s) dt``, by a
    1-D quadrature in log t (a coarse grid and two zooms find the mode, finite differences at
    matched steps its width, a trapezoid covers mode ± 15 sd, the flat part below it is added
    analytically), in float64.
    The error is the Monte Carlo se of their mean from its effective sample size (draws are
    autocorrelated), by the delta method on the log.

    Exact when the assumptions hold: ``site`` is a scalar with support (0, ∞), a prior density at
    0 that is finite and > 0, and no prior of another site depends on it (checked); at
    ``site = 0`` the model must *be* the nested one (the caller's claim: for the non-reversible
    model, the flow ``tau Q w`` vanishes and the likelihood is the reversible one).

    Parameters
    ----------
    model : callable
        The NumPyro model (the full one, e.g. ``detailed_balance.models.nonreversible``).
    model_kwargs : dict
        Its keyword arguments (``data``, ``prior``...).
    samples : dict
        Every latent sample site -> posterior draws ``(chains, draws, *site_shape)``, in the
        constrained space (as a fit's posterior group stores them).
    site : str
        The scale site whose value 0 gives the nested model.

    Returns
    -------
    SavageDickey
        ``log_bf`` (nested vs full), ``se``, ``converged``, ``note``, ``pareto_k``, ``ess``.
        When the per-draw terms have k̂ > 0.5 (``site = 0`` sits far in the posterior's tail),
        ``converged`` is False, ``se`` is NaN, and the note says how far beyond the decision
        threshold the estimate lies. When their chains disagree (R-hat of the per-draw log
        terms above ``SD_RHAT_MAX``: the chains sample different regions, so their mean is no
        posterior mean), ``log_bf`` and ``se`` are NaN and the note gives each chain's value,
        unless every draw puts ``site = 0`` far out (the far-tail call below holds draw by draw,
        whatever the mixing). On a non-reversible model whose support graph is a tree
        (no cycle, no ``tau``) the two models are the same: ``log_bf = 0`` exactly, with a note.

    Examples
    --------
    A conjugate check: ``y_i ~ N(tau x_i, 1)`` with ``tau ~ HalfNormal(1)``; the nested model is
    ``y ~ N(0, 1)``.

    >>> import numpy as np, numpyro, numpyro.distributions as dist
    >>> def model(x, y):
    ...     tau = numpyro.sample("tau", dist.HalfNormal(1.0))
    ...     numpyro.sample("y", dist.Normal(tau * x, 1.0), obs=y)
    >>> x = np.linspace(-1, 1, 20); y = 0.1 * x
    >>> draws = {"tau": np.abs(np.random.default_rng(0).normal(0.1, 0.5, (2, 500)))}
    >>> r = savage_dickey(model, {"x": x, "y": y}, draws)  # tau has no other site to average
    >>> r.method, r.converged, round(r.se, 6)
    ('savage-dickey', True, 0.0)
    """
    data = model_kwargs.get("data") if isinstance(model_kwargs, dict) else None
    if not isinstance(model_kwargs, dict):
        raise DataError("model_kwargs must be a dict of the model's keyword arguments")
    if not isinstance(samples, dict):
        raise DataError("samples must be a dict: site name -> (chains, draws, ...) draws")
    with x64():
        trace = _trace(model, model_kwargs)
        if site not in trace:
            if getattr(data, "n_chords", None) == 0:
                return SavageDickey(
                    0.0, 0.0, converged=True, site=site,
                    note="the support graph is a tree: no cycle to test (every chain on a tree is "
                    "reversible), so the two models are the same and log BF = 0 exactly",
                )  # fmt: skip
            raise DataError(f"the model has no sample site {site!r} to set to 0")
        latent = [k for k, s in trace.items() if s["type"] == "sample" and not s["is_observed"]]
        if site not in latent:
            raise DataError(f"site {site!r} is observed: it must be a latent scale site")
        draws = _project(trace, _check_samples(trace, latent, samples, site), site)
        chains, n = np.shape(draws[site])[:2]
        log_p0 = _check_prior(model, model_kwargs, draws, latent, site)
        log_c, quad = _conditional_at_zero(model, model_kwargs, draws, latent, site, chains * n)
    return _summarise(log_c.reshape(chains, n), quad, log_p0, np.asarray(draws[site]), site)


def _trace(model, model_kwargs):
    from numpyro import handlers

    try:
        return handlers.trace(handlers.seed(model, 0)).get_trace(**model_kwargs)
    except TypeError as exc:
        raise DataError(f"the model does not accept these keyword arguments: {exc}") from None


def _check_samples(trace, latent, samples, site) -> dict:
    """Every latent site present, shaped (chains, draws, *site_shape), finite, tau >= 0."""
    missing = [k for k in latent if k not in samples]
    if missing:
        raise DataError(f"posterior draws lack the latent site(s) {missing}")
    out, lead = {}, None
    for k in latent:
        try:
            v = np.asarray(samples[k], dtype=float)
        except (TypeError, ValueError):
            raise DataError(f"draws of {k!r} are not numbers") from None
        shape = tuple(np.shape(trace[k]["value"]))
        if v.ndim != 2 + len(shape) or tuple(v.shape[2:]) != shape:
            raise DataError(
                f"draws of {k!r} have shape {v.shape}; expected (chains, draws) + {shape}"
            )
        if lead is None:
            lead = v.shape[:2]
        elif v.shape[:2] != lead:
            raise DataError(
                f"draws of {k!r} have (chains, draws) = {v.shape[:2]}, other sites {lead}"
            )
        if not np.all(np.isfinite(v)):
            raise DataError(f"draws of {k!r} are not all finite")
        out[k] = v
    if lead[1] < 4:
        raise DataError(f"{lead[1]} draws per chain: too few for a Monte Carlo error")
    if shape := tuple(np.shape(trace[site]["value"])):
        raise DataError(f"site {site!r} must be a scalar, it has shape {shape}")
    if np.any(out[site] < 0):
        raise DataError(f"draws of {site!r} are negative: it must be a scale (support (0, ∞))")
    return out


def _project(trace, draws: dict, site: str) -> dict:
    """Each site's draws through the unconstrained space and back (float64), but ``site``.

    Draws stored in float32 leave their support by rounding (a zero-sum field sums to 1e-7),
    where NumPyro's densities are -inf; the round trip puts them back on it.
    """
    import jax.numpy as jnp
    from numpyro.distributions.transforms import biject_to

    out = dict(draws)
    for k, v in draws.items():
        if k != site:
            bij = biject_to(trace[k]["fn"].support)
            out[k] = np.asarray(bij(bij.inv(jnp.asarray(v))), dtype=float)
    return out


def _check_prior(model, model_kwargs, draws, latent, site) -> float:
    """log p(site = 0), after checking that no other prior depends on the site (and vice versa)."""
    from numpyro import handlers
    from numpyro.distributions import constraints

    def priors(values):
        tr = handlers.trace(handlers.substitute(handlers.seed(model, 0), data=values)).get_trace(
            **model_kwargs
        )
        return tr

    first = {k: draws[k][0, 0] for k in latent}
    tr = priors(first)
    fn = tr[site]["fn"]
    if fn.support is not constraints.positive and fn.support is not constraints.nonnegative:
        raise DataError(f"site {site!r} has support {fn.support}: it must be a scale (0, ∞)")
    log_p0 = float(fn.log_prob(_ZERO))
    if not np.isfinite(log_p0):
        raise DataError(
            f"the prior density of {site!r} at 0 is {np.exp(log_p0):.3g}: Savage–Dickey needs a "
            "finite density > 0 there"
        )
    # the other priors at another value of the site, and the site's prior at another draw
    moved = dict(first, **{site: 2.0 * first[site] + 1.0})
    tr2 = priors(moved)
    others = [k for k in latent if k != site]
    a = sum(float(np.sum(tr[k]["fn"].log_prob(tr[k]["value"]))) for k in others)
    b = sum(float(np.sum(tr2[k]["fn"].log_prob(tr2[k]["value"]))) for k in others)
    last = {k: draws[k][-1, -1] for k in latent}
    log_p0_last = float(priors(last)[site]["fn"].log_prob(_ZERO))
    if not np.isfinite(a):
        raise DataError("the posterior draws lie outside the support of their priors")
    if abs(a - b) > 1e-8 * (1 + abs(a)) or abs(log_p0 - log_p0_last) > 1e-10:
        raise DataError(
            f"the prior of {site!r} and those of the other sites are not independent: the "
            "Savage–Dickey ratio needs them to be (use a non-centred parameterisation)"
        )
    return log_p0


def _conditional_at_zero(model, model_kwargs, draws, latent, site, n_total):
    """Per draw: log of the full conditional density of the site at 0, and the quadrature check."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import log_density

    rest_names = [k for k in latent if k != site]
    rest = {k: jnp.asarray(draws[k].reshape((n_total,) + draws[k].shape[2:])) for k in rest_names}
    rest["_index"] = jnp.arange(n_total)  # lax.map needs a leaf even when tau is the only site
    tau = draws[site].ravel()
    centre = np.log(max(float(np.median(tau)), 1e-12))
    coarse = jnp.linspace(centre - 30.0, centre + 12.0, _COARSE)
    step0 = float(coarse[1] - coarse[0])
    lse = jax.scipy.special.logsumexp

    def per_draw(one):
        one = {k: v for k, v in one.items() if k != "_index"}

        def lj(t):
            return log_density(model, (), model_kwargs, dict(one, **{site: t}))[0]

        def phi(u):  # the conditional's log density in u = log t, unnormalised
            v = lj(jnp.exp(u)) + u
            return jnp.where(jnp.isnan(v), -jnp.inf, v)

        grid_phi = jax.vmap(phi)
        l0 = lj(jnp.asarray(_ZERO))
        vals = grid_phi(coarse)
        best = coarse[jnp.argmax(vals)]
        width = step0
        for _ in range(2):  # zoom: the mode lies within one spacing of the best grid point
            g = best + jnp.linspace(-width, width, _ZOOM)
            best = g[jnp.argmax(grid_phi(g))]
            width = 2.0 * width / (_ZOOM - 1)
        # the width: the largest probe step whose mean drop is at most 2 nats gives the curvature
        # (finite differences at a step matched to the peak; no second derivative to compile)
        probe = jnp.asarray(_PROBE)
        p = grid_phi(jnp.concatenate([best + probe, best - probe]))
        drop = phi(best) - 0.5 * (p[: _PROBE.size] + p[_PROBE.size :])
        ok = (drop > 0) & (drop <= 2.0) & jnp.isfinite(drop)
        j = jnp.max(jnp.where(ok, jnp.arange(_PROBE.size), -1))
        step, d = probe[jnp.maximum(j, 0)], drop[jnp.maximum(j, 0)]
        sd = jnp.where(j >= 0, step / jnp.sqrt(2.0 * jnp.maximum(d, 1e-300)), 1.0)
        sd = jnp.clip(sd, 1e-7, 3.0)
        fine = best + sd * jnp.linspace(-_HALF_WIDTH, _HALF_WIDTH, _FINE)
        f = grid_phi(fine)
        h_fine = fine[1] - fine[0]

        def trapezoid(values, spacing):
            inner = lse(values[1:-1])
            ends = lse(values[jnp.array([0, -1])]) - jnp.log(2.0)
            return jnp.log(spacing) + jnp.logaddexp(inner, ends)

        # ∫_0^{t_a} f ≈ t_a (f(0) + f(t_a)) / 2 (f is flat there); beyond t_b a 1/t² tail
        left = fine[0] + jnp.logaddexp(l0, f[0] - fine[0]) - jnp.log(2.0)
        right = f[-1]
        total = lse(jnp.stack([left, trapezoid(f, h_fine), right]))
        coarse_total = lse(jnp.stack([left, trapezoid(f[::2], 2 * h_fine), right]))
        return l0 - total, jnp.abs(jnp.expm1(coarse_total - total))

    batched = jax.jit(lambda xs: jax.lax.map(per_draw, xs, batch_size=8))
    log_c, quad = batched(rest)
    return np.asarray(log_c, dtype=float), np.asarray(quad, dtype=float)


def _chains_rhat(log_c) -> float:
    """Rank-normalised split R-hat of the per-draw log terms (chains, draws); NaN if too few."""
    from ..inference import rhat_ess

    if np.ptp(log_c) == 0:
        return 1.0
    return float(rhat_ess({"log_c": log_c})[0]["log_c"])


def _summarise(log_c, quad, log_p0, tau, site) -> SavageDickey:
    """Mean of the per-draw terms, its ESS-based se, k̂, and the note."""
    from numpyro.diagnostics import effective_sample_size
    from scipy.special import logsumexp

    chains, n = log_c.shape
    total = chains * n
    if not np.all(np.isfinite(log_c)):
        bad = int(np.sum(~np.isfinite(log_c)))
        return SavageDickey(
            np.nan, np.nan, converged=False, n_draws=total, site=site, log_prior_density=log_p0,
            note=f"the conditional density of {site!r} at 0 is not finite on {bad} of {total} "
            "draws (the model's log density fails there)",
        )  # fmt: skip
    top = float(np.max(log_c))
    c = np.exp(log_c - top)
    mean = float(np.mean(c))
    log_post = top + np.log(mean)
    log_bf = float(log_post - log_p0)
    if np.ptp(c) == 0:
        ess = float(total)
    else:
        ess = float(effective_sample_size(c[:, :, None])[0]) if n > 3 else float(total)
        ess = float(np.clip(ess if np.isfinite(ess) else 1.0, 1.0, total))
    se = float(np.std(c, ddof=1) / np.sqrt(ess) / mean) if total > 1 else np.nan
    k_hat = pareto_khat(log_c.ravel())
    quad_err = float(np.max(quad))
    common = dict(
        n_draws=total, site=site, pareto_k=k_hat, ess=ess, log_prior_density=log_p0,
        quadrature_error=quad_err,
    )  # fmt: skip
    best_single = float(top - log_p0)  # the largest per-draw term alone
    # a quadrature error shifts each log term by at most log(1 + error): the far-tail call must
    # hold with that slack (hundreds of nats against a few hundredths of a nat is not in doubt)
    slack = float(np.log1p(quad_err)) if np.isfinite(quad_err) else np.inf
    tail = k_hat > SD_PARETO_K_MAX
    side = int(tail and log_bf + slack < -3 * DECISION and best_single + slack < -DECISION)
    rhat = _chains_rhat(log_c)
    common["rhat"] = rhat
    if rhat > SD_RHAT_MAX and not side:
        per_chain = ", ".join(f"{logsumexp(row) - np.log(n) - log_p0:+.1f}" for row in log_c)
        note = (
            f"the chains disagree about the conditional density of {site!r} at 0 (R-hat of the "
            f"per-draw log terms {rhat:.2f} > {SD_RHAT_MAX}; log BF per chain: {per_chain}): "
            "they sample different regions of the posterior, so their mean is not the "
            "posterior density at 0 and no number is given; rerun the fit (more warm-up, "
            "other starts) until its chains agree"
        )
        return SavageDickey(np.nan, np.nan, converged=False, note=note, **common)
    quad_note = (
        f"the 1-D quadrature of the conditional of {site!r} is unstable (relative "
        f"disagreement {quad_err:.2g} with its half-resolution rule, up to {slack:.2g} nats)"
    )
    if not slack <= SD_QUAD_MAX_NATS and not side:
        return SavageDickey(log_bf, np.nan, converged=False, note=quad_note, **common)
    se = float(np.hypot(se, slack))  # the quadrature's bound joins the Monte Carlo error
    if not tail:
        note = (
            f"Savage–Dickey at {site} = 0 from {total} draws: posterior density at 0 "
            f"{np.exp(log_post):.3g} (Rao–Blackwellised; ESS {ess:.0f}, Pareto k̂ {k_hat:.2f}) "
            f"over prior density {np.exp(log_p0):.3g}"
        )
        return SavageDickey(log_bf, se, note=note, **common)
    t_min = float(np.min(tau))
    q01 = float(np.quantile(tau, 0.01))
    if side:
        verdict = (
            f"every draw puts the conditional density of {site} at 0 below "
            f"{np.exp(best_single):.2g} of its prior density (log {best_single:.1f}), so the data "
            f"favour the full model far beyond the decision threshold (log BF < -log 10 = "
            f"{-DECISION:.1f}); a statement about the draws made, since with k̂ this large the "
            "mean may be dominated by values no draw reached"
        )
    elif log_bf > 3 * DECISION:
        verdict = "the estimate favours the nested model, but its size is not reliable"
    else:
        verdict = "no side can be called from it"
    where = "far tail" if side else "tail"  # k̂ 0.54 with draws of tau near 0 is no far tail
    note = (
        f"{site} = 0 lies in the {where} of the posterior: the per-draw conditional densities "
        f"at 0 are dominated by a few draws (Pareto k̂ {k_hat:.2f} > {SD_PARETO_K_MAX}; "
        f"smallest {site} drawn {t_min:.3g}, 1% quantile {q01:.3g}), so the Savage–Dickey estimate "
        f"log BF ({site} = 0 vs the full model) ≈ {log_bf:.1f} has no finite Monte Carlo error "
        "and is not a number to report; " + verdict
    )
    if not slack <= SD_QUAD_MAX_NATS:
        note += f" ({quad_note}, far smaller than that margin)"
    return SavageDickey(log_bf, np.nan, converged=False, note=note, tail_side=side, **common)
