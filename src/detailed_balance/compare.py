"""Does the agent obey detailed balance? Evidence, Bayes factors, PSIS-LOO and the G² test.

:func:`compare` fits each model of the ladder (NUTS through :func:`inference.fit`), computes its
log evidence (exact for the unconstrained model, bridge sampling otherwise, annealed importance
sampling from the Laplace fit where the bridge refuses: see ``evidence``),
PSIS-LOO on per-attempt pointwise values, the likelihood-ratio (G²) test of reversibility and the
Bayes factor's sensitivity to the prior, and writes a verdict that never overstates.

Per-attempt LOO: the fit stores one value per observed cell, ``count * log p``. Attempts in the
same cell are exchangeable, so the value of one attempt is ``log p`` and leaving one attempt out
has the same PSIS estimate for every attempt of the cell: we run PSIS once per cell and weight the
result by the cell's count (no replication).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from .counts import TransitionCounts
from .errors import FitError
from .evidence import Evidence, annealed_evidence, bridge_sampling, log_evidence_dirichlet
from .lrt import TREE_NOTE, free_log_likelihood, likelihood_ratio_test  # noqa: F401 (API)
from .modeldata import ModelData, build_model_data

MODEL_ORDER = ("unconstrained", "reversible", "nonreversible")
PARETO_K_BAD = 0.7
# Kass & Raftery (1995) on 2 ln BF: 0-2, 2-6, 6-10, > 10; here on ln BF (nats)
KASS_RAFTERY = (
    (1.0, "not worth more than a bare mention"),
    (3.0, "positive"),
    (5.0, "strong"),
    (math.inf, "very strong"),
)


def kass_raftery(log_bf: float) -> str:
    """Kass–Raftery category of ``|log BF|`` (natural log).

    Examples
    --------
    >>> kass_raftery(2.0), kass_raftery(-6.0)
    ('positive', 'very strong')
    """
    for bound, label in KASS_RAFTERY:
        if abs(log_bf) < bound:
            return label
    return KASS_RAFTERY[-1][1]


# ---- PSIS-LOO with per-attempt pointwise values ------------------------------------------------
def weighted_loo(loglik_cell: np.ndarray, cell_count: np.ndarray) -> dict:
    """PSIS-LOO over attempts from per-cell values ``count * log p`` (chains, draws, cells).

    Returns ``elpd``, ``se``, ``p_loo``, per-cell per-attempt ``elpd_i`` and ``pareto_k``,
    ``n_attempts``, ``k_max`` and ``bad_attempts`` (attempts whose cell has k > 0.7).
    """
    import xarray as xr

    from . import _arviz

    w = np.asarray(cell_count, dtype=float)
    per_attempt = np.asarray(loglik_cell, dtype=float) / w  # log p of one attempt of each cell
    ds = xr.Dataset({"y": (("chain", "draw", "cell"), per_attempt)})
    # ArviZ wants a posterior for the relative efficiency; the pointwise values serve
    obj = _arviz.make({"posterior": ds.rename({"y": "loglik"}), "log_likelihood": ds})
    res = _arviz.loo(obj, "y")
    e = res["elpd_i"]
    k = res["pareto_k"]
    flat = per_attempt.reshape(-1, per_attempt.shape[-1])
    from scipy.special import logsumexp

    lppd = logsumexp(flat, axis=0) - np.log(flat.shape[0])
    n = w.sum()
    return {
        "elpd": float(np.sum(w * e)),
        "se": _weighted_se(e, w),
        "p_loo": float(np.sum(w * (lppd - e))),
        "elpd_i": e,
        "pareto_k": k,
        "weights": w,
        "n_attempts": int(n),
        "k_max": float(np.max(k)),
        "bad_attempts": int(np.sum(w[k > PARETO_K_BAD])),
    }


def _weighted_se(values: np.ndarray, weights: np.ndarray) -> float:
    """ArviZ's sqrt(n var(elpd_i)) over attempts, each cell's value counted ``weight`` times."""
    n = weights.sum()
    mean = np.sum(weights * values) / n
    return float(np.sqrt(n * np.sum(weights * (values - mean) ** 2) / n))


# ---- evidence of a fitted model ------------------------------------------------------------------
def model_evidence(
    name: str, data: ModelData, prior, samples: dict, *, alpha: float = 1.0, seed: int = 0
) -> tuple[Evidence, Evidence | None]:
    """(evidence, bridge check) of one fitted model of the ladder.

    Unconstrained: the exact Dirichlet evidence, with bridge sampling on the fit's draws as a
    check of the numerical path. Reversible and non-reversible: bridge sampling on the draws
    where its proposal overlaps the posterior, otherwise annealed importance sampling from the
    Laplace fit (``laplace-ais``, which needs no draws and scales to thousands of parameters);
    ``Evidence.method`` says which, and the note says why bridge sampling was not used.
    """
    from .models import MODELS

    kwargs = {"data": data} if name == "unconstrained" else {"data": data, "prior": prior}
    if name == "unconstrained":
        kwargs["alpha"] = alpha
    bridge = bridge_sampling(MODELS[name], kwargs, samples, seed=seed)
    if name == "unconstrained":
        exact = Evidence(log_evidence_dirichlet(data, alpha), 0.0, "exact (Dirichlet)")
        return exact, bridge
    if bridge.converged:
        return bridge, None
    ais = annealed_evidence(MODELS[name], kwargs, seed=seed)
    return replace(ais, note=f"{ais.note}; bridge sampling refused: {bridge.note}"), None


def _latent_samples(idata) -> dict:
    from . import _arviz

    post = _arviz.group(idata, "posterior")
    names = json.loads(_arviz.attrs(idata)["latent_sites"])
    return {k: np.asarray(post[k].values) for k in names}


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
        The G² likelihood-ratio test (:func:`detailed_balance.lrt.likelihood_ratio_test`).
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
            "likelihood_ratio_test": {k: _clean(v) for k, v in self.lrt.items()},
            "sensitivity": _records(self.sensitivity),
            "verdict": self.verdict,
            "notes": list(self.notes),
            "settings": self.settings,
        }

    def to_markdown(self) -> str:
        """The table, the G² row, the sensitivity table and the verdict as Markdown."""
        return format_markdown(self)

    def __str__(self) -> str:
        return self.to_markdown()


def _clean(v):
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


def _records(df) -> list[dict]:
    return [{k: _clean(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def compare(
    counts: TransitionCounts,
    models=MODEL_ORDER,
    *,
    prior=None,
    features: np.ndarray | None = None,
    rest: bool = True,
    alpha: float = 1.0,
    sensitivity_scales=(1 / 3, 3.0),
    draws: int = 1000,
    warmup: int = 1000,
    chains: int | None = None,
    seed: int = 0,
    lrt: bool = True,
    g2_samples: int = 999,
    progress: bool = False,
) -> ComparisonResult:
    """Compare the models of the ladder on ``counts`` and decide detailed balance.

    Parameters
    ----------
    counts : TransitionCounts
    models : names from ("unconstrained", "reversible", "nonreversible"); "reversible" is always
        fitted (every Bayes factor is against it).
    prior : FieldPrior, optional
        Prior of the reversible and non-reversible models (default: hierarchical normal, or the
        GP prior when ``features`` are given).
    alpha : Dirichlet concentration of the unconstrained model.
    sensitivity_scales : multipliers of every prior scale (field, edge, cycle) at which the
        Bayes factors are recomputed (the main fit is scale 1); () to skip. With ``features``
        the hierarchical-normal prior is added as an alternative to the GP (and vice versa).
    draws, warmup, chains, seed, progress : NUTS settings (see :func:`inference.fit`).
    lrt : run the G² likelihood-ratio test.
    g2_samples : tables drawn for the exact conditional G² p-value (0: the chi² approximation).

    Returns
    -------
    ComparisonResult
    """
    import pandas as pd

    from .inference import fit
    from .models._common import FieldPrior

    unknown = [m for m in models if m not in MODEL_ORDER]
    if unknown:
        raise FitError(f"unknown model(s) {unknown} (use {', '.join(MODEL_ORDER)})")
    names = [m for m in MODEL_ORDER if m in set(models) | {"reversible"}]
    if prior is None:
        prior = FieldPrior(kind="gp") if features is not None else FieldPrior()
    data = build_model_data(counts, rest=rest, features=features)
    tree = data.n_chords == 0
    notes: list[str] = []
    if tree:
        notes.append(TREE_NOTE + "; Bayes factors here compare priors only")
    settings = {
        "draws": draws,
        "warmup": warmup,
        "chains": chains,
        "seed": seed,
        "rest": rest,
        "alpha": alpha,
        "prior": _prior_dict(prior),
        "n_cycles": int(data.n_chords),
        "n_states": int(data.n_states),
        "n_edges": int(data.n_edges),
        "attempts": int(np.sum(counts.attempts)),
    }

    def run(name, p, feats):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            idata = fit(
                counts,
                name,
                method="nuts",
                prior=p,
                features=feats,
                rest=rest,
                draws=draws,
                warmup=warmup,
                chains=chains,
                seed=seed,
                progress=progress,
            )
        d = data if feats is features else build_model_data(counts, rest=rest, features=feats)
        ev, check = model_evidence(name, d, p, _latent_samples(idata), alpha=alpha, seed=seed)
        return idata, ev, check, [str(w.message) for w in caught]

    fits, evid, checks, loos, diag = {}, {}, {}, {}, {}
    for name in names:
        idata, ev, check, msgs = run(name, prior, features if prior.kind == "gp" else None)
        from . import _arviz

        fits[name], evid[name], checks[name] = idata, ev, check
        diag[name] = json.loads(_arviz.attrs(idata)["diagnostics"])
        ll = np.asarray(_arviz.group(idata, "log_likelihood")["y"].values)
        cell_count = np.asarray(_arviz.group(idata, "observed_data")["y"].values)
        loos[name] = weighted_loo(ll, cell_count)
        notes.extend(f"{name}: {m}" for m in msgs)
        if not ev.converged:
            notes.append(f"{name}: evidence did not converge ({ev.method}): {ev.note}")
        elif ev.method == "laplace-ais":
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
        if (
            check is not None
            and check.converged
            and abs(check.log_z - ev.log_z) > max(3 * check.se, 0.5)
        ):
            notes.append(
                f"{name}: bridge estimate {check.log_z:.2f} ± {check.se:.2f} disagrees with "
                f"the exact evidence {ev.log_z:.2f}: the numerical evidences may be biased"
            )

    best = max(names, key=lambda m: loos[m]["elpd"])
    rows = []
    for name in names:
        ev, ref = evid[name], evid["reversible"]
        ok = ev.converged and ref.converged
        log_bf = ev.log_z - ref.log_z if ok else np.nan
        bf_se = math.hypot(ev.se, ref.se) if ok else np.nan
        if name == "reversible":
            log_bf, bf_se = 0.0, 0.0
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
                "elpd_loo": lo["elpd"],
                "elpd_se": lo["se"],
                "p_loo": lo["p_loo"],
                "elpd_diff": loos[best]["elpd"] - lo["elpd"],
                "elpd_diff_se": 0.0 if name == best else _weighted_se(diff, lo["weights"]),
                "elpd_vs_reversible": lo["elpd"] - loos["reversible"]["elpd"],
                "elpd_vs_reversible_se": _weighted_se(vs_rev, lo["weights"]),
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
    sens_rows = [_sens_row("main", 1.0, prior, evid, tree)]
    alternatives = [(f"scale ×{m:.3g}", m, _scaled(prior, m)) for m in sensitivity_scales]
    if features is not None:
        other = FieldPrior() if prior.kind == "gp" else FieldPrior(kind="gp")
        alternatives.append((f"{other.kind} prior", 1.0, other))
    for label, mult, p in alternatives:
        ev = dict(evid)  # the unconstrained evidence does not depend on the field prior
        for name in ("reversible", "nonreversible"):
            if name in names:
                ev[name] = run(name, p, features if p.kind == "gp" else None)[1]
        sens_rows.append(_sens_row(label, mult, p, ev, tree))
    sensitivity = pd.DataFrame(sens_rows)
    result = ComparisonResult(table, test, sensitivity, "", notes, settings)
    result.verdict = write_verdict(result)
    return result


def _prior_dict(p) -> dict:
    from dataclasses import asdict

    return asdict(p)


def _scaled(prior, m: float):
    """Every scale of the prior (field, edges, cycles) multiplied by ``m``."""
    names = ("scale", "edge_scale", "edge_mean_scale", "edge_trend_scale", "cycle_scale")
    return replace(prior, **{k: getattr(prior, k) * m for k in names if hasattr(prior, k)})


def _sens_row(label: str, mult: float, prior, evid: dict, tree: bool) -> dict:
    row = {
        "prior": label,
        "kind": prior.kind,
        "scale_multiplier": mult,
        "field_scale": prior.scale,
        "cycle_scale": prior.cycle_scale,
    }
    ref = evid["reversible"]
    for name in ("nonreversible", "unconstrained"):
        if name not in evid:
            continue
        ev = evid[name]
        ok = ev.converged and ref.converged and not (tree and name == "nonreversible")
        row[f"log_bf_{name}"] = ev.log_z - ref.log_z if ok else np.nan
        row[f"log_bf_{name}_se"] = math.hypot(ev.se, ref.se) if ok else np.nan
    return row


# ---- words ------------------------------------------------------------------------------------
def _pm(x, se, digits=1) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    if se is None or not np.isfinite(se):
        return f"{x:.{digits}f}"
    return f"{x:.{digits}f} ± {se:.{digits}f}"


def write_verdict(result: ComparisonResult) -> str:
    """One plain-language paragraph that never overstates (Kass–Raftery on the cautious end)."""
    t = result.table.set_index("model")
    parts = []
    tree = result.settings.get("n_cycles", 1) == 0
    alt = "nonreversible" if "nonreversible" in t.index else "unconstrained"
    if tree:
        parts.append(
            "The support graph has no cycles: every Markov chain on a tree is reversible, "
            "so these data cannot contradict detailed balance; any Bayes factor here "
            "compares priors, not hypotheses."
        )
    elif alt in t.index:
        x, se = t.loc[alt, "log_bf_vs_reversible"], t.loc[alt, "log_bf_se"]
        if not np.isfinite(x):
            parts.append(
                f"The evidence of the {alt} or reversible model did not converge, so no "
                "Bayes factor is reported (see the notes)."
            )
        elif abs(x) <= 2 * se:
            parts.append(
                f"log BF = {_pm(x, se)} ({alt} vs reversible) is within twice its Monte "
                "Carlo error of zero: inconclusive."
            )
        else:
            side = "detailed balance" if x < 0 else "a violation of detailed balance"
            cautious = abs(x) - 2 * se
            parts.append(
                f"log BF = {_pm(abs(x), se)} in favour of {side} ({alt} vs reversible; "
                f"{kass_raftery(cautious)} on the Kass–Raftery scale, judged at its "
                "lower 2-se end)."
            )
        sens = result.sensitivity
        col = f"log_bf_{alt}"
        if col in sens and sens[col].notna().sum() > 1:
            lo, hi = sens[col].min(), sens[col].max()
            robust = (lo > 0) == (hi > 0) and kass_raftery(lo) == kass_raftery(hi)
            parts.append(
                f"Across the prior settings tried the log BF ranges from {lo:.1f} to "
                f"{hi:.1f}: {'robust to' if robust else 'sensitive to'} the prior."
            )
    if alt in t.index and "reversible" in t.index:
        d = -t.loc[alt, "elpd_vs_reversible"]
        se = t.loc[alt, "elpd_vs_reversible_se"]
        if abs(d) > 2 * se:
            win = "the reversible model" if d > 0 else f"the {alt} model"
            parts.append(f"PSIS-LOO prefers {win} by {abs(d):.1f} ± {se:.1f} elpd.")
        else:
            parts.append(
                f"PSIS-LOO does not separate the reversible and {alt} models "
                f"(difference {abs(d):.1f} ± {se:.1f} elpd, within 2 se)."
            )
        if t["pareto_k_bad_attempts"].sum() > 0:
            parts.append("Some Pareto k exceed 0.7, so LOO is unreliable for those cells.")
    lrt = result.lrt
    if lrt:
        if lrt.get("p_value") is not None:
            reject = lrt["p_value"] < 0.05
            parts.append(
                f"The likelihood-ratio test gives G² = {lrt['statistic']:.1f} on "
                f"{lrt['df']} df, {_lrt_p(lrt)}"
                + (f" ({lrt['note']})" if lrt.get("note") else "")
                + ": "
                + (
                    "reversibility is rejected at the 5% level."
                    if reject
                    else "no evidence against reversibility at the 5% level."
                )
            )
        elif not tree:
            parts.append(f"The likelihood-ratio test is unavailable: {lrt.get('note')}.")
    if not tree:
        parts.append(
            "Evidence for detailed balance means the reversible model predicts these "
            "counts at least as well with fewer parameters; it bounds, not excludes, "
            "small violations."
        )
    return " ".join(parts)


def _lrt_p(lrt: dict) -> str:
    """The G² p-value with what it is (exact conditional or bootstrap, Monte Carlo se) and chi²."""
    chi2 = f"chi² approximation p = {lrt['p_value_chi2']:.3g} on {lrt['df']} df"
    if not lrt.get("samples"):
        return f"p = {lrt['p_value']:.3g} ({chi2})"
    b, p = lrt["samples"], lrt["p_value"]
    if p <= 1.0 / (b + 1) + 1e-12:  # no sampled table reached the observed G²
        value = f"p ≤ {p:.2g}"
    else:
        value = f"p = {p:.3g} ± {lrt['p_value_se']:.2g}"
    if lrt.get("method", "conditional") == "conditional":
        what = f"exact conditional test, {b} tables"
    else:
        what = f"parametric bootstrap, {b} replicates, anticonservative on sparse data"
    return f"{value} ({what}; {chi2})"


def _format_log_z(log_z: float, se: float, method: str) -> str:
    """``-123.45 ± 0.12 (bridge)``, ``-120.00 (exact)``, or ``n/a (bridge failed)``."""
    if not np.isfinite(log_z):
        return f"n/a ({method} failed, see notes)"
    if se == 0:
        return f"{log_z:.2f} (exact)"
    return f"{_pm(log_z, se, 2)} ({method})"


def format_markdown(result: ComparisonResult) -> str:
    """Markdown tables (models, G², sensitivity) and the verdict."""
    t = result.table
    lines = [
        "| model | log Z | log BF vs reversible | elpd LOO | elpd diff | p_loo | Pareto k max "
        "(attempts k>0.7) |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in t.iterrows():
        z = _format_log_z(r.log_z, r.log_z_se, r.evidence_method)
        if np.isfinite(r.bridge_check):
            z += f"; bridge {_pm(r.bridge_check, r.bridge_check_se, 2)}"
        lines.append(
            f"| {r.model} | {z} | {_pm(r.log_bf_vs_reversible, r.log_bf_se, 2)} | "
            f"{_pm(r.elpd_loo, r.elpd_se)} | {_pm(r.elpd_diff, r.elpd_diff_se)} | "
            f"{r.p_loo:.1f} | {r.pareto_k_max:.2f} ({int(r.pareto_k_bad_attempts)}) |"
        )
    lrt = result.lrt
    if lrt:
        lines.append("")
        if lrt.get("p_value") is not None:
            lines.append(
                f"Likelihood-ratio (G²) test of reversibility: G² = {lrt['statistic']:.2f}, "
                f"df = {lrt['df']} (testable independent cycles, of {lrt['df_support']} in the "
                f"support graph), {_lrt_p(lrt)}"
                + (f". Note: {lrt['note']}" if lrt.get("note") else "")
            )
        else:
            lines.append(f"Likelihood-ratio (G²) test: not applicable ({lrt.get('note')})")
    s = result.sensitivity
    if len(s):
        lines += [
            "",
            "| prior | field scale | cycle scale | log BF nonrev vs rev | "
            "log BF unconstrained vs rev |",
            "|---|---|---|---|---|",
        ]
        for _, r in s.iterrows():
            nr = _pm(r.get("log_bf_nonreversible"), r.get("log_bf_nonreversible_se"), 2)
            un = _pm(r.get("log_bf_unconstrained"), r.get("log_bf_unconstrained_se"), 2)
            lines.append(
                f"| {r.prior} ({r.kind}) | {r.field_scale:.3g} | {r.cycle_scale:.3g} | "
                f"{nr} | {un} |"
            )
    lines += ["", result.verdict]
    if result.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
