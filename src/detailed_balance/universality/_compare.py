"""The universality analysis: fit the three hypotheses, compare them, summarise, decide."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._arviz import HDI_PROB
from ..errors import DataError, FitError
from ..formats import json_safe
from ._data import _names, build_joint_data, common_sources
from ._evidence import _loo, _loo_diff, bf_call, joint_evidence, one_landscape_bf
from ._fit import MODEL_NAMES, fit_joint
from ._markdown import format_markdown, write_verdict
from ._summaries import _flat, _interval, departures, field_correlations, temperature_slope


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
        return json_safe(d)

    def to_markdown(self) -> str:
        return format_markdown(self)

    def __str__(self) -> str:
        return self.to_markdown()


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
    from ..comparison import Evidence
    from ..inference import ConvergenceWarning

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
        from ..comparison import SavageDickey

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
