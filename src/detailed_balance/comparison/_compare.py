"""The comparison of fitted models: evidence, Bayes factors, PSIS-LOO, the G² test, a verdict.

:func:`compare` takes fits (one per model of the ladder, as :func:`detailed_balance.fit` returns
or ``load_fit`` reads them) and runs no sampler: it rebuilds each model's data and prior from the
fit's stored counts and attributes, computes the log evidence from the stored posterior draws
(exact for the unconstrained model, bridge sampling otherwise, annealed importance sampling from
the Laplace fit where the bridge refuses), PSIS-LOO from the stored log-likelihood, and the G²
test from the counts. Given counts instead, it fits the ladder first (the shortcut).
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import partial

import numpy as np

from ..counts import TransitionCounts
from ..errors import DataError, FitError
from ..formats import json_safe
from ..inference import fit_model_data, fit_prior
from ..modeldata import EVIDENCE_FALLBACKS, ModelData
from ..models import MODELS
from ._annealed import annealed_evidence
from ._bridge import bridge_sampling
from ._dirichlet import log_evidence_dirichlet
from ._evidence import Evidence, evidence_log_bf
from ._g2_test import TREE_NOTE, likelihood_ratio_test
from ._loo import PARETO_K_BAD, fit_loo, weighted_se
from ._nested_smc import NestedBayesFactor, nested_smc_bf
from ._savage_dickey import SavageDickey, savage_dickey
from ._sensitivity import prior_sensitivity, scaled_prior, sensitivity_row
from ._smc import smc_evidence
from ._tau_path import PathBayesFactor, tau_path_log_bf
from ._variational import BayesFactorBounds, nested_bf_bounds
from ._verdict import BOUND_TEXT, evidences_label, format_markdown, write_verdict

MODEL_ORDER = tuple(MODELS)  # the ladder's order, read from models (the one place it is kept)
# bridge sampling fits a Gaussian proposal to half the draws; measured, it refuses (overlap < 0.01)
# below about 8 draws per unconstrained parameter (docs/readme/bench-evidence.md: 2 x 1000 exact
# draws converge at 150 parameters and refuse at 225; NUTS fits stop at 185 parameters with 1,000
# draws and 245 with 2,000), so below that it is not run: work known to be doomed
MIN_DRAWS_PER_PARAMETER = 8
BOUND_METHODS = tuple(BOUND_TEXT)  # bf_method of a bound, not an estimate (nested_bf_bounds)


def _check_fallback(value, name: str) -> None:
    """A one-line ValueError unless ``value`` is None or one of EVIDENCE_FALLBACKS."""
    if value is not None and value not in EVIDENCE_FALLBACKS:
        raise ValueError(f"{name}={value!r}: use one of {', '.join(EVIDENCE_FALLBACKS)}")


def bridge_is_doomed(samples: dict) -> str:
    """Why bridge sampling would refuse on these draws before it runs ("" when it may not).

    Parameters
    ----------
    samples : dict
        Site -> (chains, draws, ...) posterior draws.

    Returns
    -------
    str
        The note (with the number of draws that would make it possible), or "".
    """
    first = next(iter(samples.values()))
    chains, draws = np.shape(first)[:2]
    dim = sum(int(np.prod(np.shape(v)[2:])) for v in samples.values())
    if chains * draws >= MIN_DRAWS_PER_PARAMETER * dim:
        return ""
    need = math.ceil(MIN_DRAWS_PER_PARAMETER * dim / chains)
    return (
        f"bridge sampling not run: {chains} x {draws} draws for {dim} parameters, and it refuses "
        f"below ~{MIN_DRAWS_PER_PARAMETER} draws per parameter (docs/readme/bench-evidence.md); "
        f"fit with draws={need} per chain to make it possible"
    )


def model_evidence(
    name: str,
    data: ModelData,
    prior,
    samples: dict,
    *,
    alpha: float = 1.0,
    seed: int = 0,
    fallback: bool | str = False,
) -> tuple[Evidence, Evidence | None]:
    """(evidence, bridge check) of one fitted model of the ladder.

    Unconstrained: the exact Dirichlet evidence, with bridge sampling on the fit's draws as a
    check of the numerical path. Reversible and non-reversible: bridge sampling on the draws
    where its proposal overlaps the posterior; not run where it is known to refuse (fewer than
    ``MIN_DRAWS_PER_PARAMETER`` draws per parameter: :func:`bridge_is_doomed`). Where it
    refuses, the evidence is reported as failed with the reason, unless ``fallback`` names an
    estimator to try instead. Off by default because every one costs minutes to hours where
    bridge sampling refuses: ``draws-smc`` (tempered SMC from a Gaussian of the fit's own draws,
    the one measured to work on these hierarchical models: 41–61 s per model at 100 states,
    12–18 min at 300; docs/readme/bench-scale.md), ``laplace-smc`` (the same from the Laplace fit:
    22–34 min at 100 states, refused at 300) and ``laplace-ais`` (``True``; refuses, k̂ > 0.5, on
    these models from 10 states on: docs/readme/bench-evidence.md).

    Parameters
    ----------
    name : str
        The model's name in the ladder.
    data : ModelData
        The arrays it was fitted to.
    prior : FieldPrior
        Its prior.
    samples : dict
        Site -> (chains, draws, ...) posterior draws.
    alpha : float
        Dirichlet concentration of the unconstrained model.
    seed : int
        Seed of the estimators.
    fallback : bool or str
        Where bridge sampling refuses: "draws-smc", "laplace-smc" or "laplace-ais" (``True``);
        ``False`` tries nothing.

    Returns
    -------
    evidence : Evidence
        The log evidence with its Monte Carlo error.
    bridge_check : Evidence or None
        Bridge sampling of the unconstrained model (its check); None for the others.
    """

    fallback = {True: "laplace-ais", False: None}.get(fallback, fallback)  # the old booleans
    _check_fallback(fallback, "fallback")
    kwargs = {"data": data} if name == "unconstrained" else {"data": data, "prior": prior}
    if name == "unconstrained":
        kwargs["alpha"] = alpha
    doomed = bridge_is_doomed(samples)
    if doomed:
        bridge = Evidence(np.nan, np.nan, "bridge", False, doomed)
    else:
        bridge = bridge_sampling(MODELS[name], kwargs, samples, seed=seed)
    if name == "unconstrained":
        exact = Evidence(log_evidence_dirichlet(data, alpha), 0.0, "exact (Dirichlet)")
        return exact, bridge
    if bridge.converged:
        return bridge, None
    if not fallback:
        note = (
            f"{bridge.note}; no fallback tried: compare(..., evidence_fallback='draws-smc') "
            "(command line: --evidence-fallback draws-smc) runs tempered SMC from a Gaussian of "
            "the fit's draws (about 1 min per model at 100 states, 12-18 min at 300)"
        )
        return replace(bridge, note=note), None
    if fallback in ("draws-smc", "laplace-smc"):
        # the settings measured on these models (docs/readme/bench-evidence.md, bench-scale.md)
        reference = samples if fallback == "draws-smc" else "laplace"
        ais = smc_evidence(MODELS[name], kwargs, seed=seed, ess=0.95, move=2.0, reference=reference)
    else:
        ais = annealed_evidence(MODELS[name], kwargs, seed=seed)
    return replace(ais, note=f"{ais.note}; bridge sampling refused: {bridge.note}"), None


# ---- what a fit stores -------------------------------------------------------------------------
def is_tree(idata) -> bool:
    """Whether the support graph of a fit's counts has no cycles (every chain is reversible)."""
    return fit_model_data(idata).n_chords == 0


def fit_evidence(
    idata, *, alpha: float = 1.0, seed: int = 0, fallback: bool | str = False
) -> tuple[Evidence, Evidence | None]:
    """:func:`model_evidence` of a fit, from its stored draws (no sampler runs).

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit written by :func:`detailed_balance.fit`.
    alpha : float
        Dirichlet concentration of the unconstrained model's exact evidence.
    seed : int
        Seed of the estimators.
    fallback : bool or str
        Where bridge sampling refuses, as in :func:`model_evidence` ("draws-smc" uses the fit's
        own draws).

    Returns
    -------
    evidence : Evidence
    bridge_check : Evidence or None
        As in :func:`model_evidence`.
    """
    from .. import _arviz
    from ..inference import latent_draws

    name = _arviz.attrs(idata)["model"]
    return model_evidence(
        name, fit_model_data(idata), fit_prior(idata), latent_draws(idata),
        alpha=alpha, seed=seed, fallback=fallback,
    )  # fmt: skip


def fit_savage_dickey(idata) -> SavageDickey:
    """Savage–Dickey log BF, reversible vs non-reversible, from a non-reversible fit's draws.

    No sampler runs: :func:`detailed_balance.comparison.savage_dickey` at ``tau = 0`` on the
    stored posterior (the non-reversible model is the reversible one at ``tau = 0``).

    Parameters
    ----------
    idata : InferenceData or DataTree
        A NUTS fit of the ``nonreversible`` model written by :func:`detailed_balance.fit`.

    Returns
    -------
    SavageDickey
        ``log_bf`` > 0 favours detailed balance; ``converged=False`` with a note for a fit
        without posterior draws (MAP, SVI), or when ``tau = 0`` lies far in the posterior's tail.
    """
    from .. import _arviz

    a = _arviz.attrs(idata)
    if a.get("model") != "nonreversible":
        raise FitError("the Savage–Dickey Bayes factor needs a fit of the nonreversible model")
    if a.get("method", "nuts") != "nuts":
        why = ("its draws come from an unadjusted sampler, whose small step-size bias this "
               "density ratio at the edge of the posterior has not been checked against"
               if a.get("method") == "mclmc" else "it has no posterior draws")  # fmt: skip
        return SavageDickey(
            np.nan, np.nan, converged=False,
            note=f"Savage–Dickey needs a NUTS fit: a {a.get('method')} fit is not used ({why})",
        )  # fmt: skip
    from ..inference import latent_draws

    data = fit_model_data(idata)
    try:
        return savage_dickey(
            MODELS["nonreversible"], {"data": data, "prior": fit_prior(idata)},
            latent_draws(idata),
        )  # fmt: skip
    except (DataError, FitError) as exc:  # an estimator failure is a note, not a crash
        return SavageDickey(np.nan, np.nan, converged=False, note=f"Savage–Dickey failed: {exc}")


def nonreversible_bf(
    sd: SavageDickey | None,
    ev: Evidence,
    ref: Evidence,
    path: PathBayesFactor | None = None,
    bounds: BayesFactorBounds | None = None,
    nested: NestedBayesFactor | None = None,
) -> dict:
    """The table's log BF, non-reversible vs reversible: Savage–Dickey, bridge sampling beside it.

    Savage–Dickey is the Bayes factor wherever it converged; bridge sampling's
    ``log Z_nonrev - log Z_rev`` is kept where both converged, as an independent check (or as the
    Bayes factor where Savage–Dickey refused); the tau path's where neither gave a number, then
    nested SMC's (``bf_method`` "nested-smc"). Where none of them gave a number, the
    variational bounds' side that excludes zero by more than twice its error: the lower bound
    when it is above zero, the upper bound when it is below, labelled as a bound (``bf_method``
    "variational lower bound" / "variational upper bound"). The bounds' bracket is kept in
    ``bf_lower``/``bf_upper`` whenever it was computed.

    Parameters
    ----------
    sd : SavageDickey or None
        From :func:`fit_savage_dickey` (None: not computed).
    ev, ref : Evidence
        The non-reversible and reversible evidences.
    path : PathBayesFactor or None
        From :func:`detailed_balance.comparison.tau_path_log_bf` (None: not run).
    bounds : BayesFactorBounds or None
        From :func:`fit_bf_bounds` (None: not computed).
    nested : NestedBayesFactor or None
        From :func:`fit_nested_smc` (None: not run).

    Returns
    -------
    dict
        ``log_bf_vs_reversible``, ``log_bf_se``, ``bf_method``, ``bf_bridge``, ``bf_bridge_se``,
        ``bf_lower``, ``bf_lower_se``, ``bf_upper``, ``bf_upper_se`` and ``bf_tail`` (+1/-1 when
        Savage–Dickey refused with ``tau = 0`` so far in the tail that the data favour one model
        far beyond the decision threshold, and neither the tau path, nested SMC nor a bound gave the
        number: beside a bridge value or none; else 0).
    """
    bridge, bridge_se = evidence_log_bf(ev, ref)
    out = _bf_columns(bridge, bridge_se, bounds)
    ok, tail = ev.converged and ref.converged, 0
    if sd is not None and sd.converged:
        log_bf, se, method = -sd.log_bf, sd.se, "savage-dickey"
    elif not ok and path is not None and path.converged:
        log_bf, se, method = -path.log_bf, path.se, "tau-path"
    elif not ok and nested is not None and nested.converged:
        log_bf, se, method = nested.log_bf, nested.se, "nested-smc"
    elif not ok and out["bf_lower"] > 2 * out["bf_lower_se"]:  # NaN compares False
        log_bf, se, method = out["bf_lower"], out["bf_lower_se"], BOUND_METHODS[0]
    elif not ok and out["bf_upper"] < -2 * out["bf_upper_se"]:
        log_bf, se, method = out["bf_upper"], out["bf_upper_se"], BOUND_METHODS[1]
    else:
        log_bf, se = bridge, bridge_se
        # "bridge" only where both evidences are bridge sampling's (evidence_fallback: others)
        by_bridge = ev.method == ref.method == "bridge"
        method = ("bridge" if by_bridge else "evidences") if ok or sd is None else "savage-dickey"
        if sd is not None:
            tail = sd.tail_side  # +1: the non-reversible model, far beyond the threshold
    return {"log_bf_vs_reversible": log_bf, "log_bf_se": se, "bf_method": method, **out,
            "bf_tail": tail}  # fmt: skip


def _bf_columns(bridge: float = np.nan, bridge_se: float = np.nan, bounds=None) -> dict:
    """The table's Bayes-factor columns beside ``bf_method`` (NaN: not computed for the row)."""
    have = bounds is not None and bounds.converged
    nan = np.nan
    lower, lower_se, upper, upper_se = (
        (bounds.lower, bounds.lower_se, bounds.upper, bounds.upper_se) if have else (nan,) * 4
    )
    return {"bf_bridge": bridge, "bf_bridge_se": bridge_se, "bf_tail": 0, "bf_lower": lower,
            "bf_lower_se": lower_se, "bf_upper": upper, "bf_upper_se": upper_se}  # fmt: skip


def fit_bf_bounds(rev_fit, nonrev_fit, *, seed: int = 0) -> BayesFactorBounds:
    """Variational bounds on log BF (non-reversible vs reversible) from the two fits' draws.

    :func:`detailed_balance.comparison.nested_bf_bounds` on the stored posterior
    draws (no sampler runs); an estimator failure is a bracket with ``converged=False`` and a
    note, not an exception.

    Parameters
    ----------
    rev_fit, nonrev_fit : InferenceData or DataTree
        NUTS fits of the ``reversible`` and ``nonreversible`` models of the same counts.
    seed : int
        Seed of the proposal's draws.

    Returns
    -------
    BayesFactorBounds
    """
    def refused(why: str) -> BayesFactorBounds:
        return BayesFactorBounds(*(float("nan"),) * 4, False, why)

    run = partial(nested_bf_bounds, seed=seed)
    return _on_two_fits(run, rev_fit, nonrev_fit, refused, "the bounds need two", "the bounds")


def _on_two_fits(estimate, rev_fit, nonrev_fit, refused, need: str, name: str):
    """``estimate(data, prior, reversible draws, non-reversible draws)`` on two NUTS fits of the
    reversible and non-reversible models of the same counts (what the estimators of the Bayes
    factor from both fits' draws share); ``refused(note)`` when the fits are not that, or the
    estimator fails (``need`` and ``name`` word the note)."""
    from .. import _arviz
    from ..inference import latent_draws

    got = [(_arviz.attrs(f).get("model"), _arviz.attrs(f).get("method", "nuts"))
           for f in (rev_fit, nonrev_fit)]  # fmt: skip
    if got != [("reversible", "nuts"), ("nonreversible", "nuts")]:
        return refused(f"{need} NUTS fits of the reversible and non-reversible models (got "
                       + " and ".join(f"{m} ({how})" for m, how in got) + ")")  # fmt: skip
    try:
        _same_counts({"reversible": rev_fit, "nonreversible": nonrev_fit})
        # the non-reversible fit's data: its flow_z draws are read in its recorded coordinates
        return estimate(fit_model_data(nonrev_fit), fit_prior(rev_fit), latent_draws(rev_fit),
                        latent_draws(nonrev_fit))  # fmt: skip
    except (DataError, FitError, ValueError, np.linalg.LinAlgError) as exc:
        return refused(f"{name} failed: {exc}")


def _bounds_note(bounds: BayesFactorBounds) -> str:
    if not bounds.converged:
        return f"nonreversible: the variational bounds on the BF gave no number: {bounds.note}"
    return (
        f"nonreversible: variational bounds (not estimates) on log BF (nonreversible vs "
        f"reversible): {bounds.lower:.2f} ± {bounds.lower_se:.2f} ≤ log BF ≤ {bounds.upper:.2f} "
        f"± {bounds.upper_se:.2f} (Jensen bounds from both fits' draws, the flow's proposal "
        f"fitted to the other half of each chain; ± Monte Carlo se; {bounds.seconds:.0f} s)"
    )


# ---- the comparison ----------------------------------------------------------------------------
@dataclass
class ComparisonResult:
    """Outcome of :func:`compare`: a table per model, the G² test, prior sensitivity, a verdict.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model: log evidence with its Monte Carlo se, log Bayes factor against the
        reversible model, PSIS-LOO, Pareto k and the NUTS diagnostics (see the compare page).
    lrt : dict
        The G² likelihood-ratio test (:func:`detailed_balance.comparison.likelihood_ratio_test`).
    sensitivity : pandas.DataFrame
        The Bayes factors recomputed under other prior scales.
    verdict : str
        One plain-language paragraph (:func:`write_verdict`).
    notes : list of str
        What went wrong or is unreliable (an evidence that did not converge, bad Pareto k).
    settings : dict
        The arguments the comparison ran with.
    """
    table: object  # pandas.DataFrame, one row per model
    lrt: dict
    sensitivity: object  # pandas.DataFrame
    verdict: str
    notes: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able dict with the same numbers as the tables (NaN -> None)."""
        return {
            "models": _records(self.table),
            "likelihood_ratio_test": json_safe(self.lrt),
            "sensitivity": _records(self.sensitivity),
            "verdict": self.verdict,
            "notes": list(self.notes),
            "settings": self.settings,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ComparisonResult:
        """The result written by :meth:`to_dict` (e.g. read back from ``comparison.json``)."""
        import pandas as pd

        def frame(records):
            return pd.DataFrame([{k: np.nan if v is None else v for k, v in r.items()}
                                 for r in records])  # fmt: skip

        lrt = {k: v for k, v in (d.get("likelihood_ratio_test") or {}).items()}
        return cls(frame(d["models"]), lrt, frame(d.get("sensitivity") or []),
                   d.get("verdict", ""), list(d.get("notes") or []),
                   dict(d.get("settings") or {}))  # fmt: skip

    def to_markdown(self) -> str:
        """The table, the G² row, the sensitivity table and the verdict as Markdown."""
        return format_markdown(self)

    def __str__(self) -> str:
        return self.to_markdown()



def _records(df) -> list[dict]:
    return [json_safe(row) for row in df.to_dict(orient="records")]


def read_comparison(path) -> ComparisonResult:
    """Read a comparison written by ``detailed-balance compare --out`` (``comparison.json``).

    Parameters
    ----------
    path : str or Path
        ``comparison.json`` or the folder holding it.

    Returns
    -------
    ComparisonResult
    """
    from pathlib import Path

    from ..errors import DataError

    path = Path(path)
    if path.is_dir():
        path = path / "comparison.json"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the comparison: {exc}", file=str(path)) from None
    if not isinstance(d, dict) or not isinstance(d.get("models"), list):
        raise DataError("not a comparison (no 'models' table)", file=str(path))
    return ComparisonResult.from_dict(d)


def compare(
    fits,
    models=MODEL_ORDER,
    *,
    prior=None,
    features: np.ndarray | None = None,
    rest: bool = True,
    alpha: float = 1.0,
    sensitivity_scales=(1 / 3, 3.0),
    sensitivity: Mapping[str, Mapping[str, object]] | None = None,
    draws: int = 1000,
    warmup: int = 1000,
    chains: int | None = None,
    seed: int = 0,
    lrt: bool = True,
    g2_samples: int = 999,
    progress: bool = False,
    target_accept: float = 0.8,
    warmup_tree_depth: int | None = None,
    tau_path: bool = False,
    nested_smc: bool | dict = False,
    evidence_fallback: str | None = None,
) -> ComparisonResult:
    """Compare fitted models of the ladder and decide detailed balance (no sampler runs).

    Parameters
    ----------
    fits : mapping name -> fit, or iterable of fits, or TransitionCounts
        Fits of the same counts, one per model (what :func:`detailed_balance.fit_ladder`
        returns, or fits read with ``load_fit``); each fit's model is read from the fit itself
        and a ``reversible`` fit is required (every Bayes factor is against it). Given
        :class:`TransitionCounts` instead, the ladder is fitted first with NUTS (the shortcut;
        ``models``, ``prior``, ``features``, ``rest``, ``sensitivity_scales``, ``draws``,
        ``warmup``, ``chains`` and ``progress`` apply to that path only).
    models : names from :data:`detailed_balance.models.MODELS` (counts only); "reversible" is
        always fitted.
    prior : FieldPrior, optional
        Prior of the reversible and non-reversible models (counts only; default: hierarchical
        normal, or the GP prior when ``features`` are given).
    alpha : Dirichlet concentration of the unconstrained model's evidence.
    sensitivity_scales : multipliers of every prior scale (field, edge, cycle) at which the
        reversible and non-reversible models are refitted (counts only); () to skip. With
        ``features`` the hierarchical-normal prior is added as an alternative to the GP.
    sensitivity : mapping label -> (mapping name -> fit), optional
        Fits under other priors for :func:`prior_sensitivity` (fits only), each with a
        ``reversible`` fit; e.g. ``{"scale ×3": fit_ladder(counts, prior=scaled_prior(p, 3))}``.
    draws, warmup, chains, progress, target_accept, warmup_tree_depth : NUTS settings of the
        shortcut (see :func:`fit`); with ``progress`` each fit is announced on stderr
        ("fit 3/7: ...").
    seed : seed of the fits (shortcut), the evidence estimators and the G² test.
    lrt : run the G² likelihood-ratio test.
    g2_samples : tables drawn for the exact conditional G² p-value (0: the chi² approximation).
    tau_path : where neither Savage–Dickey nor bridge sampling gives the non-reversible Bayes
        factor a number, estimate it by thermodynamic integration over tau's prior scale
        (:func:`fit_tau_path`: ~20 NUTS runs of the non-reversible model, also on the fits path).
    nested_smc : where neither Savage–Dickey nor bridge sampling (nor the tau path) gives that
        Bayes factor a number, estimate it by tempered SMC from the reversible posterior
        (:func:`fit_nested_smc`: no sampler refit, from both fits' draws), before the bounds.
        A dict instead of True gives its keyword arguments (``particles``, ``runs``), e.g.
        ``{"particles": 64, "runs": 3}``, as the demo uses to stay in its time budget.
    evidence_fallback : where bridge sampling refuses a model's log evidence, the estimator to
        try instead (:func:`model_evidence`'s ``fallback``): "draws-smc" (tempered SMC from a
        Gaussian of the fit's draws; minutes per model at hundreds of states), "laplace-smc" or
        "laplace-ais". None (default): the evidence is reported as not converged, with the
        reason; the Bayes factor of the non-reversible model has its own estimators.
    features : (S, F) array, optional
        State features: the field gets a GP prior over them (counts only).
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row (counts only).

    Returns
    -------
    ComparisonResult

    Examples
    --------
    >>> import detailed_balance as db
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=100, seed=0)
    >>> fits = db.fit_ladder(counts, draws=200, warmup=200, chains=1)  # doctest: +SKIP
    >>> db.compare(fits).table["model"].tolist()  # doctest: +SKIP
    ['unconstrained', 'reversible', 'nonreversible']
    """
    unknown = set(nested_smc) - {"particles", "runs"} if isinstance(nested_smc, dict) else set()
    if unknown:  # now, not after the fits and evidences
        raise ValueError(f"nested_smc: unknown setting(s) {sorted(unknown)} (particles, runs)")
    _check_fallback(evidence_fallback, "evidence_fallback")  # now, not after the fits
    if not isinstance(fits, TransitionCounts):
        return _compare_fits(
            _by_model(fits), sensitivity or {}, {}, alpha=alpha, seed=seed, lrt=lrt,
            g2_samples=g2_samples, notes=[], tau_path=tau_path, nested_smc=nested_smc,
            evidence_fallback=evidence_fallback,
        )  # fmt: skip
    from ..inference import FieldPrior, fit_ladder

    counts = fits
    unknown = [m for m in models if m not in MODEL_ORDER]
    if unknown:
        raise FitError(f"unknown model(s) {unknown} (use {', '.join(MODEL_ORDER)})")
    names = [m for m in MODEL_ORDER if m in set(models) | {"reversible"}]
    if prior is None:
        prior = FieldPrior(kind="gp") if features is not None else FieldPrior()
    nuts = dict(method="nuts", rest=rest, draws=draws, warmup=warmup, chains=chains, seed=seed,
                progress=progress, target_accept=target_accept,
                warmup_tree_depth=warmup_tree_depth)  # fmt: skip
    notes: list[str] = []
    alternatives = [(f"scale ×{m:.3g}", m, scaled_prior(prior, m)) for m in sensitivity_scales]
    if features is not None:
        other = FieldPrior() if prior.kind == "gp" else FieldPrior(kind="gp")
        alternatives.append((f"{other.kind} prior", 1.0, other))
    sensitive = [m for m in ("reversible", "nonreversible") if m in names]
    stage, n_stages = [0], len(names) + len(alternatives) * len(sensitive)

    def ladder(p, which, label="main prior"):
        feats = features if p.kind == "gp" else None
        out, msgs = {}, []
        for name in which:  # one model at a time, so each warning names its model
            stage[0] += 1
            if progress:
                print(f"fit {stage[0]}/{n_stages}: {name} ({label})", file=sys.stderr, flush=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out.update(fit_ladder(counts, models=[name], prior=p, features=feats, **nuts))
            msgs += [f"{name}: {w.message}" for w in caught]
        return out, msgs

    main, msgs = ladder(prior, names)
    notes.extend(msgs)
    others, multipliers = {}, {}
    for label, mult, p in alternatives:
        others[label] = ladder(p, sensitive, label)[0]
        multipliers[label] = mult
    return _compare_fits(
        main, others, multipliers, alpha=alpha, seed=seed, lrt=lrt, g2_samples=g2_samples,
        notes=notes, tau_path=tau_path, nested_smc=nested_smc,
        evidence_fallback=evidence_fallback,
    )  # fmt: skip


def _by_model(fits) -> dict:
    """Model name -> fit, read from each fit's own attributes; one fit per model."""
    from .. import _arviz

    items = fits.values() if isinstance(fits, Mapping) else fits
    if not isinstance(items, Iterable):
        raise FitError("compare takes fits (a mapping or list of fits) or TransitionCounts")
    out = {}
    for idata in items:
        try:
            name = _arviz.attrs(idata)["model"]
        except (KeyError, TypeError, AttributeError):
            raise FitError("not a fit of detailed_balance.fit (no 'model' attribute)") from None
        if name in out:
            raise FitError(f"two fits of the {name} model: compare takes one fit per model")
        out[name] = idata
    if "reversible" not in out:
        raise FitError("compare needs a fit of the reversible model (Bayes factors are against it)")
    return {name: out[name] for name in MODEL_ORDER if name in out}


def _same_counts(fits: dict) -> TransitionCounts:
    """The counts shared by all fits (a comparison of fits of other data means nothing)."""
    from .. import _arviz
    from ..inference import counts_from_fit

    ref = counts_from_fit(fits["reversible"])
    rest = _arviz.attrs(fits["reversible"])["rest"]
    for name, idata in fits.items():
        c = counts_from_fit(idata)
        same = c.states == ref.states and all(
            np.array_equal(getattr(c, k), getattr(ref, k))
            for k in ("source", "target", "count", "self_count", "rejected")
        )
        if not same or _arviz.attrs(idata)["rest"] != rest:
            raise FitError(f"the {name} fit was made from other counts (or settings) than the "
                           "reversible fit: compare fits of the same data")  # fmt: skip
    return ref


def _compare_fits(
    fits, others, multipliers, *, alpha, seed, lrt, g2_samples, notes, tau_path, nested_smc,
    evidence_fallback=None,
):
    import pandas as pd

    from .. import _arviz

    counts = _same_counts(fits)
    ref_attrs = _arviz.attrs(fits["reversible"])
    rest = bool(int(ref_attrs["rest"]))
    prior = fit_prior(fits["reversible"])
    data = fit_model_data(fits["reversible"])
    names = list(fits)
    tree = data.n_chords == 0
    if tree:
        notes.append(TREE_NOTE + "; Bayes factors here compare priors only")
    settings = {
        "draws": int(ref_attrs["draws"]),
        "warmup": int(ref_attrs["warmup"]),
        "chains": int(ref_attrs["chains"]),
        # each NUTS fit records the warm-up tree depth it used (fit's size rule picks it per model)
        "warmup_tree_depth": {
            name: int(depth) for name in names
            if (depth := _arviz.attrs(fits[name]).get("warmup_tree_depth")) is not None
        },
        "seed": seed,
        "tau_path": tau_path,
        "nested_smc": nested_smc,
        "rest": rest,
        "alpha": alpha,
        "prior": asdict(prior),
        "n_cycles": int(data.n_chords),
        "n_states": int(data.n_states),
        "n_edges": int(data.n_edges),
        "attempts": int(np.sum(counts.attempts)),
    }
    loos = {name: fit_loo(fits[name]) for name in names}  # first: refuses a MAP fit in one line
    evid, checks, diag = {}, {}, {}
    for name in names:
        idata = fits[name]
        ev, check = fit_evidence(idata, alpha=alpha, seed=seed, fallback=evidence_fallback or False)
        evid[name], checks[name] = ev, check
        diag[name] = json.loads(_arviz.attrs(idata)["diagnostics"])
        notes.extend(_evidence_notes(name, ev, check))

    sd = None
    if "nonreversible" in fits and not tree:
        sd = fit_savage_dickey(fits["nonreversible"])
        notes.extend(_savage_dickey_notes(sd, evid["nonreversible"], evid["reversible"]))
    path = bounds = nested = None
    no_number = sd is not None and not sd.converged
    if no_number and not (evid["nonreversible"].converged and evid["reversible"].converged):
        if tau_path:
            path = fit_tau_path(fits["nonreversible"], seed=seed)
            notes.append(_tau_path_note(path))
        run_nested = nested_smc is True or isinstance(nested_smc, dict)  # {}: its defaults
        if run_nested and (path is None or not path.converged):
            nested = fit_nested_smc(
                fits["reversible"], fits["nonreversible"], seed=seed,
                **(nested_smc if isinstance(nested_smc, dict) else {}),
            )  # fmt: skip
            notes.append(_nested_smc_note(nested))
        if not any(x is not None and x.converged for x in (path, nested)):
            bounds = fit_bf_bounds(fits["reversible"], fits["nonreversible"], seed=seed)
            notes.append(_bounds_note(bounds))
        if not (tau_path or run_nested):
            notes.append(
                "nonreversible: neither Savage–Dickey nor bridge sampling gave an estimate; "
                "nested_smc=True (command line: --nested-smc) estimates the Bayes factor by "
                "tempered SMC from the reversible posterior (no refit), tau_path=True "
                "(--tau-path) by thermodynamic integration over tau's prior scale, at the cost "
                "of ~20 NUTS runs of the non-reversible model"
            )

    best = max(names, key=lambda m: loos[m]["elpd"])
    rows = []
    for name in names:
        ev, ref = evid[name], evid["reversible"]
        log_bf, bf_se = evidence_log_bf(ev, ref)
        if name == "reversible":
            log_bf, bf_se = 0.0, 0.0
        bf = {"bf_method": "evidences" if name != "reversible" else "", **_bf_columns()}
        if name == "nonreversible":
            bf = nonreversible_bf(sd, ev, ref, path, bounds, nested)
            log_bf, bf_se = bf.pop("log_bf_vs_reversible"), bf.pop("log_bf_se")
        if name == "nonreversible" and tree:
            log_bf, bf_se = np.nan, np.nan  # identical models: no cycle term exists
        lo = loos[name]
        diff = loos[best]["elpd_i"] - lo["elpd_i"]
        vs_rev = lo["elpd_i"] - loos["reversible"]["elpd_i"]
        check = checks[name]
        rows.append(
            {
                "model": name,
                "log_z": ev.log_z if ev.converged else np.nan,
                "log_z_se": ev.se if ev.converged else np.nan,
                "evidence_method": ev.method,
                "bridge_check": check.log_z if check is not None and check.converged else np.nan,
                "bridge_check_se": check.se if check is not None and check.converged else np.nan,
                "log_bf_vs_reversible": log_bf,
                "log_bf_se": bf_se,
                **bf,
                "elpd_loo": lo["elpd"],
                "elpd_se": lo["se"],
                "p_loo": lo["p_loo"],
                "elpd_diff": loos[best]["elpd"] - lo["elpd"],
                "elpd_diff_se": 0.0 if name == best else weighted_se(diff, lo["weights"]),
                "elpd_vs_reversible": lo["elpd"] - loos["reversible"]["elpd"],
                "elpd_vs_reversible_se": weighted_se(vs_rev, lo["weights"]),
                "pareto_k_max": lo["k_max"],
                "pareto_k_bad_attempts": lo["bad_attempts"],
                "attempts": lo["n_attempts"],
                "max_rhat": diag[name].get("max_rhat"),
                "divergences": diag[name].get("divergences"),
            }
        )
        if lo["bad_attempts"]:
            notes.append(
                f"{name}: Pareto k > {PARETO_K_BAD} for {lo['bad_attempts']} of "
                f"{lo['n_attempts']} attempts: LOO is unreliable there (too few attempts "
                "per cell, or influential cells)"
            )
    table = pd.DataFrame(rows)
    test = likelihood_ratio_test(counts, rest=rest, samples=g2_samples, seed=seed) if lrt else {}
    main_row = sensitivity_row("main", 1.0, prior, evid, tree, sd)
    sens = pd.DataFrame([main_row])
    if others and not multipliers:  # fits given: the field-scale ratio to the main prior
        multipliers = {label: fit_prior(f["reversible"]).scale / prior.scale
                       for label, f in others.items()}  # fmt: skip
    if others:  # the unconstrained evidence does not depend on the field prior: reuse it
        shared = {"unconstrained": evid["unconstrained"]} if "unconstrained" in evid else {}
        more = prior_sensitivity(others, multipliers=multipliers, alpha=alpha, seed=seed,
                                 evidences={label: shared for label in others})  # fmt: skip
        sens = pd.concat([sens, more], ignore_index=True)
    result = ComparisonResult(table, test, sens, "", notes, settings)
    result.verdict = write_verdict(result)
    return result


def fit_tau_path(idata, *, seed: int = 0) -> PathBayesFactor:
    """The tau path's log BF (reversible vs non-reversible) for a non-reversible fit's counts.

    Runs :func:`detailed_balance.comparison.tau_path_log_bf` (one NUTS run of the model per
    scale of tau's prior) on the fit's counts and prior; an estimator failure is a refusal
    with a note, not an exception.

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit of the ``nonreversible`` model written by :func:`detailed_balance.fit`.
    seed : int
        Seed of the runs.

    Returns
    -------
    PathBayesFactor
    """
    from .. import _arviz

    if _arviz.attrs(idata).get("model") != "nonreversible":
        # the path runs the non-reversible model: any other fit would be hours of the wrong runs
        raise FitError("the tau path needs a fit of the nonreversible model")
    try:
        return tau_path_log_bf(fit_model_data(idata), fit_prior(idata), seed=seed)
    except (DataError, FitError) as exc:
        nan = float("nan")
        return PathBayesFactor(nan, nan, nan, nan, False, note=f"the tau path failed: {exc}")


def fit_nested_smc(
    rev_fit, nonrev_fit, *, particles: int = 256, runs: int = 4, seed: int = 0
) -> NestedBayesFactor:
    """Nested SMC's log BF (non-reversible vs reversible) from the two fits' draws.

    :func:`detailed_balance.comparison.nested_smc_bf` on the stored posterior draws (no NUTS
    refit: the SMC's own HMC moves only); an estimator failure (a fit that is not NUTS, too few
    draws, fits of other data) is a refusal with a note, not an exception.

    Parameters
    ----------
    rev_fit, nonrev_fit : InferenceData or DataTree
        NUTS fits of the ``reversible`` and ``nonreversible`` models of the same counts.
    particles, runs, seed
        As in :func:`detailed_balance.comparison.nested_smc_bf`.

    Returns
    -------
    NestedBayesFactor
    """
    def refused(why: str) -> NestedBayesFactor:
        return NestedBayesFactor(float("nan"), float("nan"), False, why)

    run = partial(nested_smc_bf, particles=particles, runs=runs, seed=seed)
    return _on_two_fits(run, rev_fit, nonrev_fit, refused, "nested SMC needs", "nested SMC")


def _nested_smc_note(nested: NestedBayesFactor) -> str:
    if not nested.converged:
        return f"nonreversible: nested SMC gave no number: {nested.note}"
    return (
        f"nonreversible: log BF (nonreversible vs reversible) {nested.log_bf:.2f} ± "
        f"{nested.se:.2f} by nested SMC ({nested.note})"
    )


def _tau_path_note(path: PathBayesFactor) -> str:
    if not path.converged:
        return f"nonreversible: the tau path gave no number: {path.note}"
    return (
        f"nonreversible: log BF (reversible vs nonreversible) {path.log_bf:.2f} ± {path.se:.2f} "
        f"by the tau path (thermodynamic integration over tau's prior scale, "
        f"{len(path.log_scales)} NUTS runs, {path.seconds:.0f} s; Monte Carlo se "
        f"{path.se_mc:.2f}, grid error {path.se_grid:.2f})"
    )


def _savage_dickey_notes(sd: SavageDickey, ev: Evidence, ref: Evidence) -> list[str]:
    """What to say about the Savage–Dickey BF and its agreement with bridge sampling."""
    notes = []
    if not sd.converged:
        notes.append(f"nonreversible: Savage–Dickey Bayes factor refused: {sd.note}")
    if sd.converged:
        bridge, bridge_se = evidence_log_bf(ref, ev)  # NaN (no note) unless both converged
        if abs(sd.log_bf - bridge) > 2 * math.hypot(sd.se, bridge_se):
            notes.append(
                f"Savage–Dickey log BF (reversible vs nonreversible) {sd.log_bf:.2f} ± "
                f"{sd.se:.2f} and {evidences_label(ev.method, ref.method)} ({bridge:.2f} ± "
                f"{bridge_se:.2f}) disagree by more than 2 combined se: one of the two "
                "estimators is off on these data"
            )
    return notes


def _evidence_notes(name: str, ev: Evidence, check: Evidence | None) -> list[str]:
    notes = []
    if not ev.converged:
        notes.append(f"{name}: evidence did not converge ({ev.method}): {ev.note}")
    elif ev.method == "draws-smc":
        notes.append(
            f"{name}: evidence by draws-smc ({ev.note}), tempered SMC from a Gaussian of the "
            "fit's draws, as bridge sampling refused: validated against exact evidences and, on "
            "these models, against Savage–Dickey's and laplace-smc's at 100 and 300 states "
            "(docs/readme/bench-scale.md)"
        )
    elif ev.method in ("laplace-ais", "laplace-smc"):
        notes.append(
            f"{name}: evidence by {ev.method} ({ev.note}); this estimator is validated "
            "against exact evidences on the unconstrained model only: on the hierarchical "
            "models it can under-estimate log Z when its annealing does not mix, so treat "
            "this Bayes factor as provisional"
        )
    if check is not None and not check.converged:
        notes.append(
            f"{name}: the bridge-sampling check of the exact evidence was refused "
            f"({check.note}); the numerical evidences are unchecked on these data"
        )
    if check is not None and check.converged and abs(check.log_z - ev.log_z) > max(
        3 * check.se, 0.5
    ):
        notes.append(
            f"{name}: bridge estimate {check.log_z:.2f} ± {check.se:.2f} disagrees with "
            f"the exact evidence {ev.log_z:.2f}: the numerical evidences may be biased"
        )
    return notes
