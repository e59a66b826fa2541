"""Universality: do several datasets (models, prompt templates, temperatures) share one potential?

Song et al. (arXiv:2512.10047) suggest that agents learn "a class of underlying potential
functions that may transcend different LLM architectures and prompt templates". This module makes
that testable. K datasets (one :class:`TransitionCounts` each, over overlapping states, each with
its own attempts, rejections and support graph) are fitted jointly under three hypotheses
(``models/joint_*.py``, one file each):

- ``separate``: an independent reversible field per dataset;
- ``shared``: one field phi over the union of states, ``phi_k = beta_k phi`` (beta_1 = 1), own
  edge terms per dataset; beta_k acts as an inverse temperature;
- ``pooled``: ``phi_k = beta_k (phi + delta_k)``, ``delta_k ~ Normal(0, tau^2)``.

:func:`compare_universality` fits all three and reports, with 94% HDIs: beta_k, tau, the
correlation of the datasets' fields over their common identified states, the per-state departures
delta_k, the log Bayes factor of one landscape against partial pooling (Savage–Dickey at tau = 0
from the pooled posterior, :func:`one_landscape_bf`, with its Monte Carlo error), PSIS-LOO over
attempts of shared and pooled against separate (bridge-sampled evidences only on request), and
the slope of log beta_k against log T_k when sampling temperatures are known (-1 if temperature
acts as an inverse temperature).
For example, a joint fit on synthetic data:

>>> from detailed_balance.universality import synthetic_joint, fit_joint
>>> counts, truth = synthetic_joint(n_states=10, betas=(1.0, 0.5), attempts_per_source=100)
>>> fit = fit_joint(counts, model="shared", method="map")
>>> round(float(fit.posterior["beta"][0, 0, 1]), 1)  # doctest: +SKIP
0.5
"""

from __future__ import annotations

import gzip
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._arviz import HDI_PROB
from .counts import TransitionCounts
from .errors import DataError, FitError
from .modeldata import ModelData, build_model_data, gauge_reference

MODEL_NAMES = ("separate", "shared", "pooled")
LOG10 = math.log(10.0)


# ---- data ----------------------------------------------------------------------------------------
class JointData(NamedTuple):
    """What the joint models read (see ``models/_joint.py``).

    states : the union of the datasets' states (sorted).
    datasets : one ModelData per dataset (its own arcs, attempts, rejections, gauge).
    index : per dataset, the union index of each of its states.
    union : ModelData of the summed counts over the union (the shared field's gauge).
    identified : per dataset, whether each state's potential is identified by its own data.
    counts : the datasets' counts (in the order given).
    """

    states: tuple[str, ...]
    datasets: tuple[ModelData, ...]
    index: tuple[np.ndarray, ...]
    union: ModelData
    identified: tuple[np.ndarray, ...]
    counts: tuple[TransitionCounts, ...]


def union_counts(counts_list) -> TransitionCounts:
    """The datasets' counts summed over the union of their states.

    Parameters
    ----------
    counts_list : sequence of TransitionCounts
        One per dataset; states matched by label.

    Returns
    -------
    TransitionCounts
    """
    src, tgt, cnt = [], [], []
    for c in counts_list:
        labels = np.asarray(c.states, dtype=object)
        src += labels[c.source].tolist() + list(c.states) + list(c.states)
        tgt += labels[c.target].tolist() + list(c.states) + [None] * c.n_states
        cnt += c.count.tolist() + c.self_count.tolist() + c.rejected.tolist()
    cnt = np.asarray(cnt, dtype=np.int64)
    keep = cnt > 0
    src = [s for s, k in zip(src, keep, strict=True) if k]
    tgt = [t for t, k in zip(tgt, keep, strict=True) if k]
    states = sorted(set().union(*(c.states for c in counts_list)))
    return TransitionCounts.from_records(src, tgt, cnt[keep], states=states)


def common_sources(counts_list) -> list[str]:
    """States that have attempts in every dataset, sorted.

    Parameters
    ----------
    counts_list : sequence of TransitionCounts
        One per dataset; states matched by label.

    Returns
    -------
    list of str
    """
    sets = [{s for s, n in zip(c.states, c.attempts, strict=True) if n > 0} for c in counts_list]
    return sorted(set.intersection(*sets))


def build_joint_data(counts_list, *, rest: bool = True) -> JointData:
    """Arrays for the joint models; :class:`DataError` on fewer than two or disjoint datasets.

    Parameters
    ----------
    counts_list : sequence of TransitionCounts
        One per dataset; states matched by label.
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row.

    Returns
    -------
    JointData
    """
    counts_list = tuple(counts_list)
    if len(counts_list) < 2:
        raise DataError(f"a joint fit needs at least two datasets, got {len(counts_list)}")
    union = union_counts(counts_list)
    position = {s: i for i, s in enumerate(union.states)}
    index = tuple(np.array([position[s] for s in c.states], dtype=np.int64) for c in counts_list)
    shared = np.zeros(union.n_states, dtype=int)
    for idx in index:
        shared[idx] += 1
    if not np.any(shared >= 2):
        raise DataError("the datasets have no state in common: nothing links their potentials")
    datasets = tuple(build_model_data(c, rest=rest) for c in counts_list)
    identified = tuple(gauge_reference(c)[2] for c in counts_list)
    return JointData(
        states=tuple(union.states),
        datasets=datasets,
        index=index,
        union=build_model_data(union, rest=rest),
        identified=identified,
        counts=counts_list,
    )


def read_labels(path) -> dict:
    """Label of a dataset from an attempt log's run line (model, template, temperature...).

    Returns ``{"name", "file"}`` plus ``model``, ``agent``, ``template``, ``temperature``,
    ``top_p``, ``extra_body`` when ``path`` is a log written by ``collect``; other files give
    only the name (the file's stem).

    Parameters
    ----------
    path : str or Path
        A dataset's file.

    Returns
    -------
    dict
        The labels.
    """
    path = Path(path)
    name = path.name
    for suffix in (".gz", ".jsonl", ".csv", ".npz", ".json"):
        name = name.removesuffix(suffix)
    out = {"name": name, "file": str(path)}
    if not (path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz")):
        return out
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            first = json.loads(fh.readline() or "{}")
    except (OSError, ValueError):
        return out
    cfg = first.get("config") if isinstance(first, dict) and first.get("kind") == "run" else None
    if isinstance(cfg, dict):
        out.update(
            model=cfg.get("model"),
            agent=cfg.get("agent"),
            template=cfg.get("template_hash"),
            temperature=cfg.get("temperature"),
            top_p=cfg.get("top_p"),
            extra_body=cfg.get("extra_body"),
        )
    return out


#: The shipped temperature series (``src/detailed_balance/data/``): the ``animals`` agent on the
#: offline model (gemma-3-270m) with untruncated sampling, a budget design over 40 common sources;
#: collected by ``benchmarks/collect_universality_series.py`` (see docs/readme/universality.md).
SERIES = (
    "universality-animals-T0.5.jsonl.gz",
    "universality-animals-T1.0.jsonl.gz",
    "universality-animals-T1.5.jsonl.gz",
    "universality-animals-alt-T1.0.jsonl.gz",
)


def series_paths() -> list[Path]:
    """Paths of the shipped series' attempt logs (T = 0.5, 1, 1.5, and another template at 1).

    Returns
    -------
    list of Path
    """
    from importlib import resources

    root = resources.files("detailed_balance") / "data"
    return [Path(str(root / name)) for name in SERIES]


# ---- synthetic truth -----------------------------------------------------------------------------
def synthetic_joint(
    n_states: int = 20,
    betas=(1.0, 0.5, 2.0),
    *,
    width: float = 1.0,
    degree: float = 4.0,
    attempts_per_source: int = 300,
    edge_mean: float = -1.0,
    edge_sd: float = 0.5,
    independent=(),
    drop: float = 0.0,
    seed: int = 0,
) -> tuple[list[TransitionCounts], dict]:
    """Datasets drawn from the joint models' own parameterisation, with known truth.

    Dataset k: the states (all, or all but a random fraction ``drop``), its own random support
    graph of mean degree ``degree``, edge terms ``u ~ Normal(edge_mean, edge_sd)``, field
    ``beta_k phi`` with ``phi ~ Normal(0, width)`` shared, or ``beta_k phi'_k`` with a fresh
    field of the same width for ``k in independent``; rows are softmax(arc logits, rest = 0),
    with ``attempts_per_source`` attempts from every state (a budget design).

    Parameters
    ----------
    n_states : int
        Number of states of the union.
    betas : sequence of float
        beta_k of each dataset.
    width, degree : float
        Field sd and mean degree of each support graph.
    attempts_per_source : int
        Attempts from every state of every dataset.
    edge_mean, edge_sd : float
        Mean and sd of the edge terms.
    independent : sequence of int
        Datasets with their own field instead of the shared one.
    drop : float
        Fraction of states each dataset lacks.
    seed : int
        Seed of everything.

    Returns
    -------
    counts : list of TransitionCounts
        One per dataset.
    truth : dict
        ``phi`` (union field), ``phi_k`` (list of per-dataset fields over the union, NaN where
        absent), ``betas``, ``independent``.
    """
    from .synthetic import random_graph

    if n_states < 3:
        raise DataError("a synthetic joint dataset needs at least 3 states")
    rng = np.random.default_rng(seed)
    states = [f"s{i:03d}" for i in range(n_states)]
    phi = rng.normal(0.0, width, n_states)
    counts, fields = [], []
    for k, beta in enumerate(betas):
        own = rng.normal(0.0, width, n_states) if k in set(independent) else phi
        keep = np.ones(n_states, dtype=bool)
        if drop > 0:
            keep[rng.choice(n_states, int(drop * n_states), replace=False)] = False
        members = np.flatnonzero(keep)
        a, b = random_graph(len(members), degree, rng)
        a, b = members[a], members[b]
        f = beta * own
        u = rng.normal(edge_mean, edge_sd, len(a))
        src, tgt = np.concatenate([a, b]), np.concatenate([b, a])
        logit = np.concatenate([u, u]) + 0.5 * (f[src] - f[tgt])
        recs_s, recs_t, recs_c = [], [], []
        for i in members:
            arcs = np.flatnonzero(src == i)
            z = np.concatenate([logit[arcs], [0.0]])
            p = np.exp(z - z.max())
            draw = rng.multinomial(attempts_per_source, p / p.sum())
            for j, c in zip(tgt[arcs], draw[:-1], strict=True):
                if c:
                    recs_s.append(states[i]), recs_t.append(states[j]), recs_c.append(c)
            if draw[-1]:
                recs_s.append(states[i]), recs_t.append(None), recs_c.append(draw[-1])
        counts.append(
            TransitionCounts.from_records(
                recs_s, recs_t, recs_c, states=[states[i] for i in members]
            )
        )
        fk = np.full(n_states, np.nan)
        fk[members] = f[members]
        fields.append(fk)
    truth = {"phi": phi, "phi_k": fields, "betas": np.asarray(betas), "independent": independent}
    return counts, truth


# ---- fitting -------------------------------------------------------------------------------------
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
    from .models.joint_pooled import joint_pooled
    from .models.joint_separate import joint_separate
    from .models.joint_shared import joint_shared

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

    Examples
    --------
    >>> counts, _ = synthetic_joint(n_states=8, betas=(1.0, 2.0), attempts_per_source=50)
    >>> fit = fit_joint(counts, "shared", method="map")
    >>> fit.posterior["beta"].shape
    (1, 1, 2)
    """
    from .inference import latent_sites, run_map, run_nuts
    from .modeldata import FieldPrior

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
        latent, stats, extra = run_nuts(
            model_fn, draws, warmup, chains, seed, progress, target_accept
        )
    else:
        attempts = int(sum(np.sum(c.attempts) for c in joint.counts))
        latent, stats, extra = run_map(model_fn, seed, attempts)
    latent = {k: np.asarray(latent[k]) for k in latent_names}
    seconds = time.perf_counter() - start
    sites, loglik, cell_count, cell_dataset = _evaluate(model_fn, latent, len(joint.datasets))
    diagnostics = {"method": method, "fit_seconds": round(seconds, 3), **extra}
    if method == "nuts":
        diagnostics.update(_nuts_diagnostics(latent, stats))
        for w in diagnostics["warnings"]:
            from .inference import ConvergenceWarning

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


def _names(labels, k: int) -> list[str]:
    if labels is None:
        return [f"D{i + 1}" for i in range(k)]
    names = [lab["name"] if isinstance(lab, dict) else str(lab) for lab in labels]
    if len(names) != k:
        raise DataError(f"{len(names)} labels for {k} datasets")
    return names


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
    import xarray as xr

    from . import _arviz

    ds = xr.Dataset(
        {
            k: (("chain", "draw") + tuple(f"{k}_{i}" for i in range(v.ndim - 2)), v)
            for k, v in latent.items()
        }
    )
    from .inference import ESS_PER_CHAIN_MIN

    rhat, ess = _arviz.rhat_ess(ds)
    max_rhat = max((float(np.nanmax(v)) for v in rhat.values() if np.size(v)), default=np.nan)
    min_ess = min((float(np.nanmin(v)) for v in ess.values() if np.size(v)), default=np.nan)
    chains = next(iter(latent.values())).shape[0]
    divergences = int(np.sum(stats["diverging"]))
    out = {"max_rhat": max_rhat, "min_ess": min_ess, "divergences": divergences, "warnings": []}
    if chains > 1 and max_rhat > 1.01:
        out["warnings"].append(f"R-hat up to {max_rhat:.3f} > 1.01")
    if min_ess < ESS_PER_CHAIN_MIN * chains:
        out["warnings"].append(
            f"bulk ESS down to {min_ess:.0f} < {ESS_PER_CHAIN_MIN * chains} "
            f"({ESS_PER_CHAIN_MIN} per chain × {chains} chains): draw more"
        )
    if divergences:
        out["warnings"].append(f"{divergences} divergent transitions")
    return out


# ---- evidence and LOO ----------------------------------------------------------------------------
def joint_evidence(fit: JointFit, *, seed: int = 0):
    """Log evidence of a joint NUTS fit by bridge sampling (``evidence.bridge_sampling``).

    ``separate``: the datasets share nothing, so log Z is the sum of each dataset's reversible
    evidence (bridge sampling in each dataset's own, smaller, parameter space), errors added in
    quadrature. ``shared``/``pooled``: one bridge over all parameters.

    Parameters
    ----------
    fit : JointFit
        A joint fit.
    seed : int
        Seed of the bridge sampler.

    Returns
    -------
    Evidence
        log Z with its Monte Carlo error.
    """
    from .comparison import Evidence, bridge_sampling
    from .models import MODELS

    reversible = MODELS["reversible"]

    if fit.method != "nuts":
        return Evidence(np.nan, np.nan, "bridge", False, "evidence needs posterior draws (NUTS)")
    samples = {k: fit.posterior[k] for k in fit.latent_sites}
    if fit.model != "separate":
        fn = _model_fn(fit.model)
        return bridge_sampling(fn, fit.model_kwargs, samples, seed=seed)
    parts = []
    for k, data in enumerate(fit.joint.datasets):
        prefix = f"d{k}_"
        own = {n[len(prefix) :]: v for n, v in samples.items() if n.startswith(prefix)}
        parts.append(
            bridge_sampling(reversible, {"data": data, "prior": fit.model_kwargs["prior"]}, own)
        )
    bad = [p for p in parts if not p.converged]
    if bad:
        return Evidence(np.nan, np.nan, "bridge (sum over datasets)", False, bad[0].note)
    return Evidence(
        float(sum(p.log_z for p in parts)),
        float(math.sqrt(sum(p.se**2 for p in parts))),
        "bridge (sum over datasets)",
        True,
        "; ".join(p.note for p in parts),
        parts[0].n_draws,
    )


def one_landscape_bf(fit: JointFit):
    """log Bayes factor of one landscape (``shared``) against partial pooling, from a pooled fit.

    ``pooled`` at tau = 0 *is* ``shared``: the departures ``delta_k = tau z_k`` vanish, the
    likelihood is the shared one and the other priors (field, beta, edge terms) are the same and
    do not depend on tau (the departures' ``z_k`` then only have their prior). So the
    Savage–Dickey ratio ``p(tau = 0 | y) / p(tau = 0)`` of the pooled posterior is the Bayes
    factor shared vs pooled (:func:`detailed_balance.comparison.savage_dickey`), with no
    evidence to estimate: it works at any number of parameters, from the draws the fit has.

    Parameters
    ----------
    fit : JointFit
        A ``pooled`` NUTS fit.

    Returns
    -------
    SavageDickey
        ``log_bf`` (> 0 favours one shared landscape), ``se``, ``converged``, ``note``,
        ``pareto_k``, ``ess``.
    """
    if fit.model != "pooled" or fit.method != "nuts":
        raise FitError("the one-landscape Bayes factor needs a pooled NUTS fit")
    import copy

    from .comparison import savage_dickey

    samples = {k: fit.posterior[k] for k in fit.latent_sites}
    # fresh arrays: jax caches constants per numpy array, and the fit's arrays, traced under
    # float32, then fail under savage_dickey's float64 (int32 + int64 index arithmetic)
    kwargs = copy.deepcopy(fit.model_kwargs)
    return savage_dickey(_model_fn("pooled"), kwargs, samples, site="tau")


def bf_call(log_bf, converged: bool, tail_side: int = 0) -> str | None:
    """Which side a shared-vs-pooled log BF takes at the log 10 threshold (None: neither).

    A converged estimate decides at ±log 10. One that did not converge because tau = 0 lies in
    the far tail of the posterior (the per-draw terms are dominated by a few draws) still
    decides for ``pooled`` when it is below -3 log 10: its size is unreliable, not its side.

    Parameters
    ----------
    log_bf : float or None
        log BF shared vs pooled.
    converged : bool
        Whether the estimate converged.
    tail_side : int
        ``SavageDickey.tail_side``: +1 when a refused estimate still calls the full (pooled)
        model, because every draw favours it beyond the threshold.

    Returns
    -------
    {"shared", "pooled"} or None
    """
    if log_bf is None or not np.isfinite(log_bf):
        return None
    if converged:
        return "shared" if log_bf > LOG10 else "pooled" if log_bf < -LOG10 else None
    return "pooled" if tail_side == 1 else None


def _loo(fit: JointFit) -> dict:
    from .comparison import weighted_loo

    return weighted_loo(fit.loglik, fit.cell_count)


def _loo_diff(a: dict, b: dict) -> tuple[float, float]:
    """elpd(a) - elpd(b) over the same attempts, with its standard error."""
    from .comparison import weighted_se

    return a["elpd"] - b["elpd"], weighted_se(a["elpd_i"] - b["elpd_i"], a["weights"])


# ---- summaries -----------------------------------------------------------------------------------
def _interval(draws) -> dict:
    from ._arviz import hdi

    x = np.asarray(draws, dtype=float).ravel()
    lo, hi = hdi(x, HDI_PROB)
    return {"mean": float(np.mean(x)), "hdi_low": float(lo), "hdi_high": float(hi)}


def _flat(x) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape((-1,) + x.shape[2:])


def field_correlations(fit: JointFit) -> list[dict]:
    """Per pair of datasets: correlation of their fields over the states identified in both.

    Pearson correlation of ``d{j}_phi`` and ``d{k}_phi`` per posterior draw (posterior noise
    attenuates it: even identical landscapes give less than 1), with its 94% HDI.

    Parameters
    ----------
    fit : JointFit
        A joint fit.

    Returns
    -------
    list of dict
        One per pair of datasets: the correlation's posterior summary and 94% HDI.
    """
    joint, out = fit.joint, []
    for j in range(len(joint.datasets)):
        for k in range(j + 1, len(joint.datasets)):
            pos_j = {s: i for i, s in enumerate(joint.index[j])}
            common = [
                (pos_j[u], i)
                for i, u in enumerate(joint.index[k])
                if u in pos_j and joint.identified[j][pos_j[u]] and joint.identified[k][i]
            ]
            row = {"a": fit.labels[j], "b": fit.labels[k], "n_common": len(common)}
            if len(common) >= 3:
                ij, ik = np.array(common).T
                x = _flat(fit.posterior[f"d{j}_phi"])[:, ij]
                y = _flat(fit.posterior[f"d{k}_phi"])[:, ik]
                x = x - x.mean(1, keepdims=True)
                y = y - y.mean(1, keepdims=True)
                r = np.sum(x * y, 1) / np.sqrt(np.sum(x * x, 1) * np.sum(y * y, 1))
                row.update(_interval(r))
            out.append(row)
    return out


def departures(fit: JointFit, top: int = 10) -> list[dict]:
    """Per dataset of a pooled fit: states whose departure delta_k has a 94% HDI excluding 0.

    Parameters
    ----------
    fit : JointFit
        A ``pooled`` fit.
    top : int
        At most this many states per dataset.

    Returns
    -------
    list of dict
        One per departing state.
    """
    from ._arviz import hdi

    out = []
    for k, idx in enumerate(fit.joint.index):
        d = _flat(fit.posterior[f"d{k}_delta"])
        lo, hi = hdi(d, HDI_PROB)
        mean = d.mean(0)
        ident = fit.joint.identified[k]
        away = np.flatnonzero(((lo > 0) | (hi < 0)) & ident)
        order = away[np.argsort(-np.abs(mean[away]))][:top]
        out.append(
            {
                "dataset": fit.labels[k],
                "n_states": int(len(idx)),
                "n_identified": int(ident.sum()),
                "n_away_from_zero": int(len(away)),
                "largest": [
                    {
                        "state": fit.joint.states[idx[i]],
                        "mean": float(mean[i]),
                        "hdi_low": float(lo[i]),
                        "hdi_high": float(hi[i]),
                    }
                    for i in order
                ],
            }
        )
    return out


def temperature_slope(beta_draws: np.ndarray, temperatures) -> dict | None:
    """Slope of log beta_k against log T_k per draw (least squares), with its 94% HDI.

    ``beta_draws`` is (draws, K); datasets whose temperature is None are left out. -1 means
    temperature acts as an inverse temperature on the field.

    Parameters
    ----------
    beta_draws : (draws, K) array
        Posterior draws of each dataset's beta.
    temperatures : sequence of float or None
        Each dataset's sampling temperature.

    Returns
    -------
    dict or None
        The slope's summary and 94% HDI, the datasets used and their temperatures; None when
        fewer than two distinct positive temperatures are known.
    """
    t = np.array([np.nan if v is None else float(v) for v in temperatures])
    use = np.isfinite(t) & (t > 0)
    if len(np.unique(t[use])) < 2:
        return None
    x = np.log(t[use])
    y = np.log(np.asarray(beta_draws)[:, use])
    xc = x - x.mean()
    slope = (y - y.mean(1, keepdims=True)) @ xc / np.sum(xc**2)
    return {**_interval(slope), "datasets_used": int(use.sum()), "temperatures": t[use].tolist()}


# ---- the comparison ------------------------------------------------------------------------------
@dataclass
class UniversalityResult:
    """Outcome of :func:`compare_universality` (see ``to_dict`` and ``to_markdown``)."""

    labels: list
    temperatures: list
    table: list  # one row per model: evidence, LOO
    bayes_factor: dict  # shared vs pooled, Savage–Dickey at tau = 0 (one_landscape_bf)
    beta: dict  # model -> list of intervals per dataset
    tau: dict | None
    correlations: list
    departures: list
    slope: dict | None
    slope_pooled: dict | None
    verdict: str
    notes: list
    settings: dict
    fits: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "fits"}
        return json.loads(json.dumps(d, default=_json_default))

    def to_markdown(self) -> str:
        return format_markdown(self)

    def __str__(self) -> str:
        return self.to_markdown()


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x).__name__)


def _finite(x):
    return float(x) if x is not None and np.isfinite(x) else None


def compare_universality(
    counts_list,
    *,
    labels=None,
    temperatures=None,
    models=MODEL_NAMES,
    common: bool = False,
    prior=None,
    beta_scale: float = 1.0,
    tau_scale: float = 1.0,
    rest: bool = True,
    draws: int = 1000,
    warmup: int = 1000,
    chains: int | None = None,
    seed: int = 0,
    progress: bool = False,
    bridge: bool = False,
) -> UniversalityResult:
    """Fit the separate, shared and pooled hypotheses and decide whether one landscape fits all.

    The Bayes factor of the verdict is one landscape (``shared``) against partial pooling
    (``pooled``), by the Savage–Dickey ratio at tau = 0 (:func:`one_landscape_bf`); PSIS-LOO of
    shared and pooled against separate stands beside it.

    Parameters
    ----------
    counts_list : sequence of TransitionCounts (two or more datasets).
    labels : names or label dicts (:func:`read_labels`); default ``D1, D2, ...``.
    temperatures : sampling temperature per dataset (None: unknown or not comparable); the slope
        of log beta against log T uses the datasets with a temperature.
    models : subset of ("separate", "shared", "pooled"); all three are always fitted (the Bayes
        factor needs ``pooled``, LOO ``shared`` and ``separate``): kept for compatibility.
    common : restrict every dataset to the states with attempts in all of them (moves elsewhere
        become escapes, as ``TransitionCounts.restrict``): a smaller, fully overlapping problem.
    prior, beta_scale, tau_scale, rest : priors and likelihood as in :func:`fit_joint`.
    draws, warmup, chains, seed, progress : NUTS settings.
    bridge : also estimate each model's evidence by bridge sampling (a check; it refuses when
        the posterior draws are too few for the parameters, as on the shipped series).

    Returns
    -------
    UniversalityResult
    """
    from .comparison import Evidence
    from .inference import ConvergenceWarning

    counts_list = list(counts_list)
    names = _names(labels, len(counts_list))
    temps = list(temperatures) if temperatures is not None else [None] * len(counts_list)
    if len(temps) != len(counts_list):
        raise DataError(f"{len(temps)} temperatures for {len(counts_list)} datasets")
    notes: list[str] = []
    if common:
        keep = common_sources(counts_list)
        if len(keep) < 3:
            raise DataError(f"only {len(keep)} states have attempts in every dataset")
        counts_list = [c.restrict(keep) for c in counts_list]
        notes.append(f"restricted to the {len(keep)} states with attempts in every dataset")
    joint = build_joint_data(counts_list, rest=rest)
    wanted = list(MODEL_NAMES)
    fits, evid, loos = {}, {}, {}
    for m in wanted:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fits[m] = fit_joint(
                counts_list,
                m,
                labels=names,
                prior=prior,
                beta_scale=beta_scale,
                tau_scale=tau_scale,
                draws=draws,
                warmup=warmup,
                chains=chains,
                seed=seed,
                progress=progress,
                joint=joint,
            )
            if bridge:
                evid[m] = joint_evidence(fits[m], seed=seed)
            else:
                evid[m] = Evidence(np.nan, np.nan, "bridge", False, "not run (bridge=False)")
        notes.extend(str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning))
        if bridge and not evid[m].converged:
            notes.append(f"{m}: bridge evidence not estimated: {evid[m].note}")
        loos[m] = _loo(fits[m])
        if loos[m]["bad_attempts"]:
            notes.append(
                f"{m}: Pareto k > 0.7 for {loos[m]['bad_attempts']} of "
                f"{loos[m]['n_attempts']} attempts (LOO unreliable there)"
            )
    try:
        sd = one_landscape_bf(fits["pooled"])
    except (DataError, FitError) as exc:  # an estimator failure is a note, not a crash
        from .comparison import SavageDickey

        sd = SavageDickey(np.nan, np.nan, converged=False, note=str(exc))
    bayes_factor = {
        "comparison": "shared vs pooled",
        **sd.to_dict(),
        "call": bf_call(sd.log_bf, sd.converged, sd.tail_side),
    }
    if not sd.converged:
        notes.append(f"Savage–Dickey (shared vs pooled) did not converge: {sd.note}")
    table = []
    for m in wanted:
        ev, ref = evid[m], evid["separate"]
        ok = ev.converged and ref.converged
        d, se = _loo_diff(loos[m], loos["separate"])
        table.append(
            {
                "model": m,
                "log_z": _finite(ev.log_z) if ev.converged else None,
                "log_z_se": _finite(ev.se) if ev.converged else None,
                "evidence_method": ev.method,
                "log_bf_vs_separate": (ev.log_z - ref.log_z) if ok else None,
                "log_bf_se": math.hypot(ev.se, ref.se) if ok else None,
                "elpd_loo": loos[m]["elpd"],
                "elpd_se": loos[m]["se"],
                "elpd_vs_separate": d,
                "elpd_vs_separate_se": se,
                "pareto_k_bad_attempts": loos[m]["bad_attempts"],
                "max_rhat": _finite(fits[m].diagnostics.get("max_rhat")),
                "min_ess": _finite(fits[m].diagnostics.get("min_ess")),
                "divergences": fits[m].diagnostics.get("divergences"),
                "fit_seconds": fits[m].diagnostics.get("fit_seconds"),
            }
        )
    beta = {
        m: [
            {"dataset": names[k], **_interval(_flat(fits[m].posterior["beta"])[:, k])}
            for k in range(len(names))
        ]
        for m in ("shared", "pooled")
        if m in fits
    }
    tau = _interval(fits["pooled"].posterior["tau"]) if "pooled" in fits else None
    slope = temperature_slope(_flat(fits["shared"].posterior["beta"]), temps)
    slope_pooled = (
        temperature_slope(_flat(fits["pooled"].posterior["beta"]), temps)
        if "pooled" in fits
        else None
    )
    settings = {
        "draws": draws,
        "warmup": warmup,
        "chains": chains,
        "seed": seed,
        "rest": rest,
        "common": common,
        "beta_scale": beta_scale,
        "tau_scale": tau_scale,
        "bridge": bridge,
        "hdi_prob": HDI_PROB,
        "n_union_states": len(joint.states),
        "datasets": [
            {
                "name": names[k],
                "states": int(d.n_states),
                "edges": int(d.n_edges),
                "attempts": int(np.sum(d.attempts)),
                "identified": int(joint.identified[k].sum()),
            }
            for k, d in enumerate(joint.datasets)
        ],
    }
    result = UniversalityResult(
        labels=[
            lab if isinstance(lab, dict) else {"name": n}
            for lab, n in zip(labels or names, names, strict=True)
        ],
        temperatures=temps,
        table=table,
        bayes_factor=bayes_factor,
        beta=beta,
        tau=tau,
        correlations=field_correlations(fits["separate"]),
        departures=departures(fits["pooled"]) if "pooled" in fits else [],
        slope=slope,
        slope_pooled=slope_pooled,
        verdict="",
        notes=notes,
        settings=settings,
        fits=fits,
    )
    result.verdict = write_verdict(result)
    return result


# ---- verdict and Markdown ------------------------------------------------------------------------
def _row(result: UniversalityResult, model: str) -> dict | None:
    return next((r for r in result.table if r["model"] == model), None)


def _iv(d: dict, digits: int = 2) -> str:
    return f"{d['mean']:.{digits}f} [{d['hdi_low']:.{digits}f}, {d['hdi_high']:.{digits}f}]"


def write_verdict(result: UniversalityResult) -> str:
    """One paragraph: does one landscape explain the datasets, and how does temperature act?

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.

    Returns
    -------
    str
    """
    shared, pooled = _row(result, "shared"), _row(result, "pooled")
    parts = []
    bf = result.bayes_factor
    d, d_se = shared["elpd_vs_separate"], shared["elpd_vs_separate_se"]
    loo_text = f"LOO elpd difference shared − separate {d:+.1f} ± {d_se:.1f} nats"
    if pooled is not None:
        loo_text += (
            f", pooled − separate {pooled['elpd_vs_separate']:+.1f} ± "
            f"{pooled['elpd_vs_separate_se']:.1f}"
        )
    call = bf.get("call")
    if bf.get("log_bf") is None:
        bf_text = "the Bayes factor could not be estimated (see the notes)"
    elif bf["converged"]:
        bf_text = f"log BF shared vs pooled {bf['log_bf']:+.1f} ± {bf['se']:.1f}, Savage–Dickey"
    elif bf.get("tail_side") == 1:
        bf_text = (
            "log BF shared vs pooled far below −log 10 by Savage–Dickey, with no size to report "
            "(τ = 0 lies in the far tail of the posterior; see the notes)"
        )
    else:
        bf_text = "the Bayes factor is not reliable here (Savage–Dickey refused; see the notes)"
    if call == "shared":
        decision = "One landscape explains the datasets: the evidence favours the shared field"
    elif call == "pooled":
        decision = (
            "The datasets do not share one landscape: the evidence favours dataset-specific "
            "departures from a common field"
        )
    elif bf.get("log_bf") is not None and bf["converged"]:
        decision = "The evidence does not decide between one landscape and departures from it"
    else:
        decision = (
            "LOO favours one shared landscape"
            if d > 2 * d_se
            else "LOO favours separate landscapes"
            if d < -2 * d_se
            else "Neither the Bayes factor nor LOO decides between one landscape and several"
        )
    parts.append(f"{decision} ({bf_text}; {loo_text}).")
    if result.tau is not None:
        parts.append(
            f"The departures from the shared field have spread τ = {_iv(result.tau)} (94% HDI)."
        )
    if result.beta.get("shared"):
        b = ", ".join(f"{r['dataset']} {_iv(r)}" for r in result.beta["shared"][1:])
        parts.append(f"Field scales β relative to {result.beta['shared'][0]['dataset']}: {b}.")
    if result.slope is not None:
        s = result.slope
        inside = s["hdi_low"] <= -1 <= s["hdi_high"]
        parts.append(
            f"The slope of log β against log T is {_iv(s)} over {s['datasets_used']} datasets: "
            + (
                "consistent with temperature acting as an inverse temperature on the field (−1)."
                if inside
                else "temperature does not act as a plain inverse temperature (−1 is outside "
                "the interval)."
            )
        )
    return " ".join(parts)


def _fmt(x, digits: int = 1) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def format_markdown(result: UniversalityResult) -> str:
    """The result as a Markdown section (tables with 94% HDIs, the verdict, notes).

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.

    Returns
    -------
    str
    """
    lines = ["## Universality: one potential across datasets?", "", result.verdict, ""]
    lines += [
        "| dataset | states | edges | attempts | identified | temperature |",
        "|---|---|---|---|---|---|",
    ]
    for d, t in zip(result.settings["datasets"], result.temperatures, strict=True):
        lines.append(
            f"| {d['name']} | {d['states']} | {d['edges']} | {d['attempts']} | "
            f"{d['identified']} | {'–' if t is None else t} |"
        )
    lines += [
        "",
        "| model | elpd LOO | Δelpd vs separate | max R-hat | divergences |"
        + (" bridge log Z | bridge log BF vs separate |" if result.settings.get("bridge") else ""),
        "|---|---|---|---|---|" + ("---|---|" if result.settings.get("bridge") else ""),
    ]
    for r in result.table:
        line = (
            f"| {r['model']} | {_fmt(r['elpd_loo'])} ± {_fmt(r['elpd_se'])} | "
            f"{_fmt(r['elpd_vs_separate'])} ± {_fmt(r['elpd_vs_separate_se'])} | "
            f"{_fmt(r['max_rhat'], 3)} | {r['divergences']} |"
        )
        if result.settings.get("bridge"):
            lz = f"{_fmt(r['log_z'])} ± {_fmt(r['log_z_se'])}" if r["log_z"] is not None else "–"
            bf = (
                f"{_fmt(r['log_bf_vs_separate'])} ± {_fmt(r['log_bf_se'])}"
                if r["log_bf_vs_separate"] is not None
                else "–"
            )
            line += f" {lz} | {bf} |"
        lines.append(line)
    bf = result.bayes_factor
    if bf.get("log_bf") is not None:
        size = (
            f"{bf['log_bf']:+.1f} ± {_fmt(bf['se'])}"
            if bf["converged"]
            else "far below −log 10 (refused as a number: τ = 0 in the far tail)"
            if bf.get("tail_side") == 1
            else "not reliable (Savage–Dickey refused; see the notes)"
        )
        lines += [
            "",
            f"log BF shared vs pooled (one landscape vs departures from it; Savage–Dickey at "
            f"τ = 0, Pareto k {_fmt(bf['pareto_k'], 2)}, ESS {_fmt(bf['ess'], 0)}): {size}; "
            f"decision at ±log 10: {bf['call'] or 'none'}.",
        ]
    if result.beta:
        models = list(result.beta)
        lines += ["", "| dataset | " + " | ".join(f"β ({m}), 94% HDI" for m in models) + " |"]
        lines.append("|---|" + "---|" * len(models))
        for k, name in enumerate(result.beta[models[0]]):
            cells = " | ".join(_iv(result.beta[m][k]) for m in models)
            lines.append(f"| {name['dataset']} | {cells} |")
    if result.tau is not None:
        lines += ["", f"τ (pooled model's spread of departures): {_iv(result.tau)} (94% HDI)."]
    for s, m in ((result.slope, "shared"), (result.slope_pooled, "pooled")):
        if s is not None:
            lines.append(
                f"Slope of log β against log T ({m} model, {s['datasets_used']} datasets at "
                f"T = {', '.join(f'{t:g}' for t in s['temperatures'])}): {_iv(s)} (94% HDI)."
            )
    if result.correlations:
        lines += [
            "",
            "| datasets | common identified states | correlation of fields (separate fits), "
            "94% HDI |",
            "|---|---|---|",
        ]
        for c in result.correlations:
            iv = _iv(c) if "mean" in c else "–"
            lines.append(f"| {c['a']} vs {c['b']} | {c['n_common']} | {iv} |")
    if result.departures:
        lines += [
            "",
            "| dataset | identified states | δ with 94% HDI excluding 0 | largest |",
            "|---|---|---|---|",
        ]
        for d in result.departures:
            big = ", ".join(f"{x['state']} {x['mean']:+.2f}" for x in d["largest"][:5]) or "–"
            lines.append(
                f"| {d['dataset']} | {d['n_identified']} | {d['n_away_from_zero']} | {big} |"
            )
    if result.notes:
        lines += ["", "Notes:", *[f"- {n}" for n in result.notes]]
    lines.append("")
    return "\n".join(lines)


# ---- figures -------------------------------------------------------------------------------------
def plot_fields(result: UniversalityResult):
    """Each dataset's field (separate fit) against the shared field, with 94% HDIs.

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from ._arviz import hdi

    sep, sh = result.fits["separate"], result.fits["shared"]
    k_n = len(sep.joint.datasets)
    fig, axes = plt.subplots(1, k_n, figsize=(3.0 * k_n, 3.0), squeeze=False)
    phi = _flat(sh.posterior["phi"])
    beta = _flat(sh.posterior["beta"]).mean(0)
    for k, ax in enumerate(axes[0]):
        idx, ident = sep.joint.index[k], sep.joint.identified[k]
        x = phi[:, idx][:, ident]
        y = _flat(sep.posterior[f"d{k}_phi"])[:, ident]
        y = y - y.mean(1, keepdims=True) + (x.mean(1, keepdims=True) * beta[k])
        xl, xh = hdi(x, HDI_PROB)
        yl, yh = hdi(y, HDI_PROB)
        xm, ym = x.mean(0), y.mean(0)
        ax.errorbar(
            xm,
            ym,
            xerr=[xm - xl, xh - xm],
            yerr=[ym - yl, yh - ym],
            fmt="o",
            ms=2,
            lw=0.5,
            alpha=0.6,
        )
        grid = np.linspace(xm.min(), xm.max(), 2)
        ax.plot(grid, beta[k] * grid, "k--", lw=1, label=f"β = {beta[k]:.2f}")
        ax.set_title(sep.labels[k].replace(" (", "\n("), fontsize=7)
        ax.set_xlabel("shared field φ")
        if k == 0:
            ax.set_ylabel("own field φ_k (separate fit)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_beta(result: UniversalityResult):
    """β_k (shared model, 94% HDI) against 1/T_k, with the line β ∝ 1/T through the reference.

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    rows = result.beta["shared"]
    t = [np.nan if v is None else float(v) for v in result.temperatures]
    fig, ax = plt.subplots(figsize=(3.4, 3.0))
    for r, tk in zip(rows, t, strict=True):
        if np.isfinite(tk):
            ax.errorbar(
                1 / tk,
                r["mean"],
                yerr=[[r["mean"] - r["hdi_low"]], [r["hdi_high"] - r["mean"]]],
                fmt="o",
            )
            ax.annotate(
                r["dataset"],
                (1 / tk, r["mean"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    if np.isfinite(t[0]):
        grid = np.linspace(0, np.nanmax(1 / np.array(t)) * 1.1, 2)
        ax.plot(grid, grid * t[0], "k--", lw=1, label="β = T₁/T")
        ax.legend(fontsize=7)
    ax.set_xlabel("1 / T")
    ax.set_ylabel("β (shared model)")
    fig.tight_layout()
    return fig


def write_outputs(result: UniversalityResult, out_dir) -> dict:
    """Write universality.json, universality.md and the figures (PNG and PDF) into ``out_dir``.

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.
    out_dir : str or Path
        Output directory.

    Returns
    -------
    dict
        Path (as str) of each file written, by kind.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "universality.json", "markdown": out / "universality.md"}
    files["json"].write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    md = result.to_markdown()
    figs = {"fields": plot_fields(result)}
    if any(t is not None for t in result.temperatures):
        figs["beta_vs_inverse_temperature"] = plot_beta(result)
    for name, fig in figs.items():
        for ext in ("png", "pdf"):
            fig.savefig(out / f"{name}.{ext}", dpi=150)
        plt.close(fig)
        files[name] = out / f"{name}.png"
        md += f"\n![{name}]({name}.png)\n"
    files["markdown"].write_text(md)
    return {k: str(v) for k, v in files.items()}
