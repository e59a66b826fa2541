"""What a stored fit gives back: its counts, posterior draws of T, a summary."""

from __future__ import annotations

import json

import numpy as np

from .. import _arviz
from .._arviz import HDI_PROB
from ..counts import TransitionCounts
from ..errors import FitError
from ..kernel import TransitionKernel
from ..modeldata import SAMPLERS, FieldPrior, ModelData, build_model_data, gauge_reference
from ..runtime import x64
from ._diagnostics import _json_number, rhat_ess
from ._fit import _bind
from ._samplers import _evaluate


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


def latent_draws(idata) -> dict[str, np.ndarray]:
    """The posterior draws of a fit's latent sample sites (what the sampler moved).

    The input of the estimators that re-evaluate a model at its draws (bridge sampling,
    :func:`detailed_balance.comparison.savage_dickey`); deterministic sites are left out.

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`fit` or :func:`load_fit`.

    Returns
    -------
    dict
        Site name -> float64 array of shape ``(chains, draws, *site_shape)`` (the stored values,
        float32 for NUTS and SVI, exactly).

    Examples
    --------
    >>> import detailed_balance as db
    >>> from detailed_balance.inference import latent_draws
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=50, seed=0)
    >>> draws = latent_draws(db.fit(counts, method="map"))  # one MAP "draw"
    >>> draws["phi_raw"].shape, sorted(draws)
    ((1, 1, 4), ['beta_u', 'mu_u', 'phi_raw', 'sigma_phi', 'sigma_u', 'u_z'])
    """
    post = _arviz.group(idata, "posterior")
    names = json.loads(_arviz.attrs(idata)["latent_sites"])
    # as float64: the stored float32 values exactly, for computations in float64
    return {k: np.asarray(post[k].values, dtype=np.float64) for k in names}


def fit_draws(idata, name: str, group: str = "posterior") -> np.ndarray:
    """The stored draws of one variable of a fit, under any ArviZ version.

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`fit` or :func:`load_fit`.
    name : str
        The variable (e.g. ``"V"``, ``"tau"``; ``"y"`` in ``group="log_likelihood"``).
    group : str
        The ArviZ group holding it.

    Returns
    -------
    numpy.ndarray
        Shape ``(chains, draws, *site_shape)`` for the posterior and log-likelihood groups.

    Examples
    --------
    >>> import detailed_balance as db
    >>> from detailed_balance.inference import fit_draws
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=50, seed=0)
    >>> fit_draws(db.fit(counts, method="map"), "V").shape
    (1, 1, 4)
    """
    if not _arviz.has_group(idata, group):
        raise FitError(f"the fit has no {group!r} group")
    data = _arviz.group(idata, group)
    if name not in data:
        raise FitError(f"the fit's {group!r} group has no variable {name!r}")
    return np.asarray(data[name].values)


def fit_diagnostics(idata) -> dict:
    """A fit's convergence diagnostics (R-hat, ESS, divergences, warnings, timings) as a dict.

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`fit` or :func:`load_fit`.

    Returns
    -------
    dict
        What :func:`fit` recorded in the fit's ``diagnostics`` attribute.
    """
    return json.loads(_arviz.attrs(idata)["diagnostics"])


def fit_prior(idata) -> FieldPrior:
    """The field prior a fit was made with (stored as JSON in its attributes).

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`fit`.

    Returns
    -------
    FieldPrior
    """
    return FieldPrior(**json.loads(_arviz.attrs(idata)["prior"]))


def fit_model_data(idata) -> ModelData:
    """The :class:`ModelData` a fit was made from, rebuilt from its stored counts and settings.

    Its ``flow_coordinates`` are those the fit recorded (the coordinates of its ``flow_z``
    draws), or for a fit without them the rule for the size of its cycle space.

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`fit`.

    Returns
    -------
    ModelData
    """
    return _model_data(idata, counts_from_fit(idata))


def _model_data(idata, counts: TransitionCounts) -> ModelData:
    """The fit's model data over ``counts`` (its own, or others over the same states)."""
    cd = _arviz.group(idata, "constant_data")
    features = np.asarray(cd["features"].values) if "features" in cd else None
    attrs = _arviz.attrs(idata)
    return build_model_data(
        counts,
        rest=bool(int(attrs["rest"])),
        features=features,
        flow_coordinates=attrs.get("flow_coordinates"),
    )


@x64()
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
    if counts is None:
        counts = counts_from_fit(idata)
    elif tuple(counts.states) != tuple(counts_from_fit(idata).states):
        raise FitError("these counts have other states than the ones the fit was made from")
    data = _model_data(idata, counts)
    model_fn = _bind(_arviz.attrs(idata)["model"], data, fit_prior(idata), full=True)
    sites, _, _ = _evaluate(model_fn, latent_draws(idata), keep=("log_p_arc",))
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
        ``model``, ``method``, ``gauge``, ``gauge_groups``, ``prior``, ``rest``, ``chains``,
        ``draws``, ``warmup`` (per chain), ``diagnostics``, ``hdi_prob`` and ``states``: one
        entry per state with ``state``, ``identified``, ``attempts`` and, for models with a
        potential, ``V`` and ``V_within`` as ``{mean, sd, hdi_lower, hdi_upper, rhat, ess}``
        (``rhat``/``ess`` null unless sampled).
        Non-reversible fits add ``cycles`` with the same summary of every cycle affinity.
    """
    a = _arviz.attrs(idata)
    counts = counts_from_fit(idata)
    _, _, identified = gauge_reference(counts)
    post = _arviz.group(idata, "posterior")
    names = [v for v in ("V", "V_within", "cycle_affinity") if v in post]
    stats = {v: _summarise_var(post[v]) for v in names}
    if a["method"] in SAMPLERS and post.sizes["chain"] > 1 and names:
        rhat, ess = rhat_ess({k: post[k].values for k in names})
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
        "warmup": int(a["warmup"]),
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
