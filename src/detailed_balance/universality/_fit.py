"""Fitting one joint hypothesis (separate, shared, pooled) to K datasets: draws, cell
log-likelihoods and convergence diagnostics."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError
from ._data import JointData, _names, build_joint_data

MODEL_NAMES = ("separate", "shared", "pooled")


@dataclass
class JointFit:
    """A joint fit: draws (``chains, draws, ...`` arrays) of every latent and derived site.

    ``posterior`` maps site names to arrays; dataset k's sites carry the prefix ``d{k}_``
    (``d0_phi``, ``d1_V``, ``d2_delta``...). ``loglik`` is the per-cell log-likelihood
    ``count * log p`` over all datasets' observed cells, ``cell_count`` their counts and
    ``cell_dataset`` the dataset of each cell.
    """

    model: str
    joint: JointData
    posterior: dict
    latent_sites: list
    loglik: np.ndarray
    cell_count: np.ndarray
    cell_dataset: np.ndarray
    model_kwargs: dict
    method: str
    diagnostics: dict
    labels: list = field(default_factory=list)


def _model_fn(model: str):
    from ..models.joint_pooled import joint_pooled
    from ..models.joint_separate import joint_separate
    from ..models.joint_shared import joint_shared

    fns = {"separate": joint_separate, "shared": joint_shared, "pooled": joint_pooled}
    if model not in fns:
        raise FitError(f"unknown joint model {model!r} (use one of {', '.join(MODEL_NAMES)})")
    return fns[model]


def fit_joint(
    counts_list,
    model: str = "shared",
    *,
    labels=None,
    method: str = "nuts",
    prior=None,
    beta_scale: float = 1.0,
    tau_scale: float = 1.0,
    rest: bool = True,
    draws: int = 1000,
    warmup: int = 1000,
    chains: int | None = None,
    seed: int = 0,
    progress: bool = False,
    target_accept: float = 0.9,
    joint: JointData | None = None,
) -> JointFit:
    """Fit one joint hypothesis (``separate``, ``shared`` or ``pooled``) to several datasets.

    Parameters
    ----------
    counts_list : sequence of TransitionCounts, one per dataset (states matched by label).
    model : {"separate", "shared", "pooled"}
    labels : list of str or dict, optional; names of the datasets (default ``D1, D2, ...``).
    method : {"nuts", "map"}
    prior : FieldPrior, optional; the field and edge prior of every dataset (default
        hierarchical normal, as the single-dataset ladder).
    beta_scale : log beta_k ~ Normal(0, beta_scale) for k >= 2.
    tau_scale : tau ~ HalfNormal(tau_scale) (pooled model).
    draws, warmup, chains, seed, progress, target_accept : NUTS settings.
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row.
    joint : JointData, optional
        Prebuilt arrays (from :func:`build_joint_data`), reused across models.

    Returns
    -------
    JointFit

    Notes
    -----
    A ``pooled`` NUTS fit starts its chains from the separate model's mode (each dataset's own
    field, ``beta = 1``, tau their spread; the edge terms at numpyro's random start): from
    numpyro's default start, chains could settle where a dataset's scale beta_k -> 0 and tau ~ 0,
    hundreds of nats below the posterior's mass (``docs/readme/universality.md``).

    Examples
    --------
    >>> from detailed_balance.universality import synthetic_joint
    >>> counts, _ = synthetic_joint(n_states=8, betas=(1.0, 2.0), attempts_per_source=50)
    >>> fit = fit_joint(counts, "shared", method="map")
    >>> fit.posterior["beta"].shape
    (1, 1, 2)
    """
    from ..inference import latent_sites, run_map, run_nuts
    from ..modeldata import FieldPrior

    if method not in ("nuts", "map"):
        raise FitError(f"unknown method {method!r} for a joint fit (use 'nuts' or 'map')")
    prior = prior or FieldPrior()
    if prior.kind != "normal":
        raise FitError("joint fits support the hierarchical-normal field prior only")
    joint = joint or build_joint_data(counts_list, rest=rest)
    fn = _model_fn(model)
    kwargs = {"joint": joint, "prior": prior, "beta_scale": beta_scale, "tau_scale": tau_scale}

    def model_fn():
        return fn(**kwargs)

    latent_names = latent_sites(model_fn, seed)
    start = time.perf_counter()
    if method == "nuts":
        import os

        chains = chains or max(2, os.cpu_count() or 1)
        start_at = _pooled_start(joint, prior, seed) if model == "pooled" else None
        # warm-up trees at numpyro's full depth (run_nuts's default): the cap that `fit` takes
        # for small models was measured on the ladder's models only
        latent, stats, extra = run_nuts(
            model_fn, draws, warmup, chains, seed, progress, target_accept, init_values=start_at
        )
    else:
        latent, stats, extra = run_map(model_fn, seed, _attempts(joint))
    latent = {k: np.asarray(latent[k]) for k in latent_names}
    seconds = time.perf_counter() - start
    sites, loglik, cell_count, cell_dataset = _evaluate(model_fn, latent, len(joint.datasets))
    diagnostics = {"method": method, "fit_seconds": round(seconds, 3), **extra}
    if method == "nuts":
        diagnostics.update(_nuts_diagnostics(latent, stats))
        for w in diagnostics["warnings"]:
            from ..inference import ConvergenceWarning

            warnings.warn(f"{model}: {w}", ConvergenceWarning, stacklevel=2)
    return JointFit(
        model=model,
        joint=joint,
        posterior={**latent, **sites},
        latent_sites=latent_names,
        loglik=loglik,
        cell_count=cell_count,
        cell_dataset=cell_dataset,
        model_kwargs=kwargs,
        method=method,
        diagnostics=diagnostics,
        labels=_names(labels, len(joint.datasets)),
    )


def _attempts(joint: JointData) -> int:
    """All attempts of all datasets (sets the optimiser's gradient tolerance)."""
    return int(sum(np.sum(c.attempts) for c in joint.counts))


def _pooled_start(joint: JointData, prior, seed: int) -> dict:
    """Where the pooled chains start: the landscape that each dataset's own field suggests.

    From numpyro's default start, chains of the pooled model can settle at beta_k -> 0 and
    tau ~ 0 for a dataset whose own field is anti-correlated with the others' (beta_k > 0 cannot
    reverse a field; at beta_k ~ 0 the departures do not touch the likelihood, so nothing leads
    back). That region fits the dataset hundreds of nats worse than the basin at beta_k ~ 1 and
    tau ~ 1 (``docs/readme/universality.md``), yet both chains could sit in it. So the chains
    start from the separate model's mode (each dataset's own field, L-BFGS): phi the mean of the
    fields, beta_k = 1, tau the rms of each field's departure from phi, the departures' z those
    departures over tau. The edge terms keep numpyro's random start, so the chains differ.
    """
    from ..inference import run_map

    separate = _model_fn("separate")
    mode, _, _ = run_map(lambda: separate(joint=joint, prior=prior), seed, _attempts(joint))
    own = [np.ravel(mode[f"d{k}_phi_raw"]) for k in range(len(joint.datasets))]
    total, hits = np.zeros(len(joint.states)), np.zeros(len(joint.states))
    for field_k, idx in zip(own, joint.index, strict=True):
        total[idx] += field_k
        hits[idx] += 1
    phi = total / np.maximum(hits, 1)
    phi -= phi.mean()  # the union field's prior is a zero-sum normal
    gaps = [field_k - phi[idx] for field_k, idx in zip(own, joint.index, strict=True)]
    tau = max(float(np.sqrt(np.mean(np.concatenate(gaps) ** 2))), 0.1)
    start = {
        "phi_raw": phi,
        "sigma_phi": max(float(np.std(phi)), 0.1),
        "log_beta": np.zeros(len(joint.datasets) - 1),
        "tau": tau,
    }
    for k, gap in enumerate(gaps):
        start[f"d{k}_delta_z"] = (gap - gap.mean()) / tau
    return start


def _evaluate(model_fn, latent: dict, n_datasets: int):
    """Deterministic sites and per-cell log-likelihoods of every dataset, for every draw."""
    import jax
    from numpyro.infer.util import log_density

    lead = next(iter(latent.values())).shape[:2]
    flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in latent.items()}
    names = [f"d{k}_y" for k in range(n_datasets)]

    def one(params):
        _, tr = log_density(model_fn, (), {}, params)
        sites = {k: s["value"] for k, s in tr.items() if s["type"] == "deterministic"}
        ll = [tr[n]["fn"].log_prob(tr[n]["value"]) for n in names]
        return sites, ll

    n = int(np.prod(lead))
    sites, ll = jax.jit(lambda p: jax.lax.map(one, p, batch_size=min(n, 64)))(flat)

    def unflat(x):
        x = np.asarray(x)
        return x.reshape(lead + x.shape[1:])

    # the observed values are the same in every draw: read them once from a trace
    from numpyro.handlers import substitute, trace

    one_draw = {k: v[0] for k, v in flat.items()}
    tr = trace(substitute(model_fn, one_draw)).get_trace()
    counts = [np.asarray(tr[n]["value"]) for n in names]
    loglik = np.concatenate([unflat(x) for x in ll], axis=-1)
    cell_dataset = np.concatenate([np.full(len(c), k) for k, c in enumerate(counts)])
    return {k: unflat(v) for k, v in sites.items()}, loglik, np.concatenate(counts), cell_dataset


def _nuts_diagnostics(latent: dict, stats: dict) -> dict:
    from ..inference import ESS_PER_CHAIN_MIN, RHAT_MAX, rhat_ess

    rhat, ess = rhat_ess(latent)  # the fit's own estimator (ArviZ's, vectorised)
    max_rhat = max((float(np.nanmax(v)) for v in rhat.values() if np.size(v)), default=np.nan)
    min_ess = min((float(np.nanmin(v)) for v in ess.values() if np.size(v)), default=np.nan)
    chains = next(iter(latent.values())).shape[0]
    divergences = int(np.sum(stats["diverging"]))
    out = {"max_rhat": max_rhat, "min_ess": min_ess, "divergences": divergences, "warnings": []}
    if chains > 1 and max_rhat > RHAT_MAX:
        out["warnings"].append(f"R-hat up to {max_rhat:.3f} > {RHAT_MAX}")
    if min_ess < ESS_PER_CHAIN_MIN * chains:
        out["warnings"].append(
            f"bulk ESS down to {min_ess:.0f} < {ESS_PER_CHAIN_MIN * chains} "
            f"({ESS_PER_CHAIN_MIN} per chain × {chains} chains): draw more"
        )
    if divergences:
        out["warnings"].append(f"{divergences} divergent transitions")
    return out
