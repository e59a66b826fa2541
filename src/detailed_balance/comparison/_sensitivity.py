"""How much the Bayes factors move with the prior, from fits made under other priors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ._evidence import evidence_log_bf

SCALES = ("scale", "edge_scale", "edge_mean_scale", "edge_trend_scale", "cycle_scale")


def scaled_prior(prior, multiplier: float):
    """The prior with every scale (field, edges, cycles) multiplied by ``multiplier``.

    Parameters
    ----------
    prior : FieldPrior
        The prior to scale.
    multiplier : float
        The factor.

    Returns
    -------
    FieldPrior

    Examples
    --------
    >>> from detailed_balance.inference import FieldPrior
    >>> scaled_prior(FieldPrior(), 3.0).scale == 3 * FieldPrior().scale
    True
    """
    return replace(
        prior, **{k: getattr(prior, k) * multiplier for k in SCALES if hasattr(prior, k)}
    )


def prior_sensitivity(
    ladders: Mapping[str, Mapping[str, object]],
    *,
    multipliers: Mapping[str, float] | None = None,
    alpha: float = 1.0,
    seed: int = 0,
    evidences: Mapping[str, Mapping[str, object]] | None = None,
):
    """Bayes factors against the reversible model under each prior, one row per prior.

    Parameters
    ----------
    ladders : mapping label -> (mapping model name -> fit)
        Fits of the same counts under several field priors (e.g. ``{"main": fits,
        "scale ×3": other_fits}``); each needs a ``reversible`` fit. A model missing from a
        ladder takes its evidence from the first ladder that has it (the unconstrained model's
        evidence does not depend on the field prior).
    multipliers : mapping label -> float, optional
        The prior-scale multiplier of each label, shown in the table (default 1.0).
    alpha, seed : the unconstrained model's Dirichlet concentration; the evidence seed.
    evidences : mapping label -> (mapping model name -> Evidence), optional
        Evidences already computed (:func:`detailed_balance.comparison.compare` passes its own),
        so no estimate is made twice.

    Returns
    -------
    pandas.DataFrame
        Columns ``prior``, ``kind``, ``scale_multiplier``, ``field_scale``, ``cycle_scale``,
        ``log_bf_nonreversible`` (and ``_se``; Savage–Dickey from the non-reversible fit where
        it converges, bridge sampling otherwise), ``log_bf_unconstrained`` (and ``_se``).
    """
    import pandas as pd

    from ..inference import fit_prior
    from ._compare import fit_evidence, fit_savage_dickey, is_tree

    multipliers = dict(multipliers or {})
    known = {label: dict(ev) for label, ev in (evidences or {}).items()}
    rows, shared = [], {}
    for label, fits in ladders.items():
        ev = known.get(label, {})
        sd = None
        for name, idata in fits.items():
            if name == "nonreversible" and not is_tree(idata):
                # its Bayes factor is Savage–Dickey's: no bridge sampling of this model
                sd = fit_savage_dickey(idata)
                if sd.converged or name in ev:
                    continue
            if name not in ev:
                ev[name] = fit_evidence(idata, alpha=alpha, seed=seed)[0]
        for name, value in ev.items():
            shared.setdefault(name, value)
        ev = {**shared, **ev}
        ref = fits["reversible"]
        rows.append(
            sensitivity_row(
                label, multipliers.get(label, 1.0), fit_prior(ref), ev, is_tree(ref), sd
            )
        )
    return pd.DataFrame(rows)


def sensitivity_row(label: str, mult: float, prior, evid: dict, tree: bool, sd=None) -> dict:
    """One row of :func:`prior_sensitivity` from the evidences of one prior's ladder.

    The non-reversible model's Bayes factor is ``sd``'s (Savage–Dickey) where it converged,
    else the difference of bridge-sampling evidences where both converged.
    """
    row = {
        "prior": label,
        "kind": prior.kind,
        "scale_multiplier": mult,
        "field_scale": prior.scale,
        "cycle_scale": prior.cycle_scale,
    }
    ref = evid["reversible"]
    if sd is not None and sd.converged and not tree:
        row["log_bf_nonreversible"], row["log_bf_nonreversible_se"] = -sd.log_bf, sd.se
    for name in ("nonreversible", "unconstrained"):
        if name not in evid or f"log_bf_{name}" in row:
            continue
        same = tree and name == "nonreversible"  # identical models: no cycle term exists
        bf = (np.nan, np.nan) if same else evidence_log_bf(evid[name], ref)
        row[f"log_bf_{name}"], row[f"log_bf_{name}_se"] = bf
    return row
