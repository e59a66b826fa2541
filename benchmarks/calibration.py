"""Calibration of the decision rules for detailed balance on synthetic chains with known truth.

Rules (non-reversible model vs reversible model, same likelihood):
  * Bayes factor: log BF > log 10 picks "non-reversible", log BF < -log 10 picks "reversible"
    (Savage–Dickey ratio at tau = 0 from the non-reversible posterior, as the verdict computes it);
  * PSIS-LOO: elpd difference > 2 se picks the better model;
  * G²: exact conditional p < 0.05 rejects reversibility (chi² p-value recorded beside it).

Datasets: reversible chains (size) and driven chains whose every fundamental cycle carries the
same affinity (power), budget design (every state gets the same attempts), in three regimes:
30 states × 200 attempts per source, 40 × 25 and 200 × 10; half from the package's generator,
half from an independent conductance generator with relabelled, reordered states.

The NUTS pass fits both models per dataset with ``detailed_balance.fit`` (2 chains), computes the
LOO rule and G², and stores the non-reversible draws of every latent site (float32, compressed, one
``.npz`` per dataset under ``<out>/draws/``). The counts are regenerated from the row's seeds, so a
second pass (``--savage-dickey``) computes the Bayes factor from the stored draws without refitting.
Every new support graph compiles new XLA code, and a long process runs out of memory maps, so the
datasets run in chunks in fresh worker processes; rows are appended as they finish (resumable).

Where Savage–Dickey refused, ``compare`` reports another Bayes factor: bridge sampling where both
evidences converge, else the variational bounds' side that excludes zero. The ``--fallback`` pass
refits both models of every such dataset with the row's own settings, runs ``compare`` on the fits
and records its choice and the call at log 10 (``<out>/calibration_fallback.csv``, resumable);
beside it, nested SMC's estimate on the same fits (``compare --nested-smc``'s estimator, the
library's 256 particles × 4 runs), so it is calibrated against bridge sampling where that converges.

    python benchmarks/calibration.py --rules g2         # G² only, 900 datasets (no NUTS)
    python benchmarks/calibration.py                    # NUTS pass (resumable; rows in --out)
    python benchmarks/calibration.py --shard 1/2 & python benchmarks/calibration.py --shard 0/2
    python benchmarks/calibration.py --savage-dickey    # fill log BF from the stored draws
    python benchmarks/calibration.py --fallback         # compare's BF where Savage–Dickey refused
    python benchmarks/calibration.py --summarise        # tables + figure from the rows so far

A rerun with other code on a subset, compared dataset by dataset with the stored rows:

    python benchmarks/calibration.py --per-cell 10 --out OUT    # then the other passes on OUT
    python benchmarks/calibration.py --out OUT --summarise --against docs/calibration
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from detailed_balance.models import MODELS, FieldPrior

import detailed_balance
from detailed_balance.comparison import likelihood_ratio_test
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import (
    conductance_chain,
    driven_chain,
    relabel_counts,
    reversible_chain,
    sample_counts,
)

LOG10 = math.log(10.0)
RULES = ("bf", "loo", "g2")
FIELDS = ["kind", "affinity", "attempts", "chain_seed", "sample_seed", "n_states", "n_edges",
          "n_cycles", "log_bf", "log_bf_se", "elpd_diff", "elpd_diff_se", "k_max", "g2", "g2_df",
          "g2_p", "divergences", "bf", "loo", "g2_pick", "seconds", "g2_p_chi2", "g2_null_mean",
          "generator", "g2_support_df", "g2_ess"]  # fmt: skip
# the NUTS pass adds its settings, diagnostics and the Savage–Dickey columns
NUTS_FIELDS = [*FIELDS[:8], "warmup", "draws", "chains", "converged", "rev_divergences",
               "nonrev_divergences", "rev_loglik_rhat", "rev_loglik_ess", "nonrev_loglik_rhat",
               "nonrev_loglik_ess", "tau_rhat", "tau_ess", "rev_pointwise_rhat",
               "rev_pointwise_ess", "nonrev_pointwise_rhat", "nonrev_pointwise_ess",
               "rev_max_rhat", "rev_min_ess", "nonrev_max_rhat", "nonrev_min_ess", "draws_file",
               "bf_converged", "bf_note", "bf_ess", "bf_pareto_k", *FIELDS[8:]]  # fmt: skip
DRAWS_DIR = "draws"
G2_SAMPLES = 499  # exact conditional G² p-value at any M (chi² recorded too); 499 halves the time
# the G² pass: (states, attempts per source) of the issue's three regimes, dense to sparse
G2_REGIMES = ((30, 200), (40, 25), (200, 10))


# ---- the NUTS pass: BF (Savage–Dickey from stored draws) and LOO ------------------------------
RHAT_MAX, ESS_MIN = 1.01, 400  # convergence of what the rules use (see ``converged``)


def draws_name(job: dict) -> str:
    """File name of a dataset's stored non-reversible draws (one per job key)."""
    kind, aff, attempts, chain, sample, n, gen = job_key(job)
    return f"{kind}_a{aff:g}_n{n}x{attempts}_{gen}_c{chain}_s{sample}.npz"


def _rhat_ess(x: np.ndarray) -> tuple[float, float]:
    """Worst R-hat and bulk ESS over the columns of ``x`` (chains, draws, k)."""
    from detailed_balance.inference import rhat_ess

    x = np.asarray(x, dtype=float).reshape(x.shape[0], x.shape[1], -1)
    r, e = rhat_ess({"x": x})
    return float(np.nanmax(r["x"])), float(np.nanmin(e["x"]))


def decide_nuts(counts, seed: int, warmup: int, draws: int, draws_path: Path | None) -> dict:
    """NUTS fits of both models (``detailed_balance.fit``), LOO rule, G², stored draws.

    The Bayes factor is left empty: the ``--savage-dickey`` pass computes it from the stored
    non-reversible draws. Diagnostics are those of what the rules use: the total and pointwise
    log-likelihood of both models and the non-reversible model's ``tau``.
    """
    from detailed_balance.comparison import fit_loo, weighted_se
    from detailed_balance.inference import fit_diagnostics, fit_draws

    start = time.perf_counter()
    fits = {}
    for name in ("reversible", "nonreversible"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # recorded below from the fit's own diagnostics
            fits[name] = detailed_balance.fit(counts, name, draws=draws, warmup=warmup,
                                              chains=2, seed=seed)  # fmt: skip
    lo_r, lo_n = fit_loo(fits["reversible"]), fit_loo(fits["nonreversible"])
    diff = lo_n["elpd"] - lo_r["elpd"]  # as compare's elpd_vs_reversible and its se
    diff_se = weighted_se(lo_n["elpd_i"] - lo_r["elpd_i"], lo_n["weights"])
    row: dict = {"warmup": warmup, "draws": draws, "chains": 2}
    ok = True
    for name, short in (("reversible", "rev"), ("nonreversible", "nonrev")):
        idata = fits[name]
        diag = fit_diagnostics(idata)
        ll = fit_draws(idata, "y", "log_likelihood")
        r_tot, e_tot = _rhat_ess(ll.sum(axis=-1))
        r_pt, e_pt = _rhat_ess(ll)
        row.update({f"{short}_divergences": diag["divergences"], f"{short}_max_rhat":
                    diag["max_rhat"], f"{short}_min_ess": diag["min_ess"],
                    f"{short}_loglik_rhat": r_tot, f"{short}_loglik_ess": e_tot,
                    f"{short}_pointwise_rhat": r_pt, f"{short}_pointwise_ess": e_pt})  # fmt: skip
        ok &= r_pt <= RHAT_MAX and e_pt >= ESS_MIN
    samples = _latent(fits["nonreversible"])
    if "tau" in samples:
        row["tau_rhat"], row["tau_ess"] = _rhat_ess(samples["tau"][..., None])
        ok &= row["tau_rhat"] <= RHAT_MAX and row["tau_ess"] >= ESS_MIN
    if draws_path is not None:
        store_draws(draws_path, samples)
        row["draws_file"] = draws_path.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g2 = likelihood_ratio_test(counts, samples=G2_SAMPLES, seed=seed)
    p = g2["p_value"]
    data = build_model_data(counts)
    nan = float("nan")
    row.update({
        "n_states": data.n_states, "n_edges": data.n_edges, "n_cycles": data.n_chords,
        "converged": int(ok), "divergences": row["rev_divergences"] + row["nonrev_divergences"],
        "elpd_diff": diff, "elpd_diff_se": diff_se, "k_max": max(lo_r["k_max"], lo_n["k_max"]),
        "loo": "undecided" if abs(diff) <= 2 * diff_se else ("nonrev" if diff > 0 else "rev"),
        "log_bf": nan, "log_bf_se": nan, "bf": "",
        "g2": g2["statistic"], "g2_df": g2["df"], "g2_p": p, "g2_p_chi2": g2["p_value_chi2"],
        "g2_pick": "undecided" if p is None else ("nonrev" if p < 0.05 else "rev"),
        "seconds": time.perf_counter() - start,
    })  # fmt: skip
    return row


def store_draws(path: Path, samples: dict) -> None:
    """Save posterior draws (site -> (chains, draws, ...)) as compressed float32 ``.npz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: np.asarray(v, dtype=np.float32) for k, v in samples.items()})


def _latent(idata) -> dict:
    """The latent sample sites of a fit, (chains, draws, ...) arrays."""
    from detailed_balance.inference import latent_draws

    return latent_draws(idata)


def savage_dickey_row(row: dict, draws_dir: Path) -> dict:
    """log BF (non-reversible vs reversible) ± se of one row from its stored draws (no refit).

    The counts are regenerated from the row's seeds (``make_counts``), the model data and the
    default prior rebuilt as ``detailed_balance.fit`` builds them.
    """
    from detailed_balance.comparison import savage_dickey

    data = build_model_data(make_counts(row))
    if data.n_chords == 0:  # no cycle: both models are the same model
        return {"log_bf": 0.0, "log_bf_se": 0.0, "bf_converged": 1, "bf": "undecided",
                "bf_note": "no cycle"}  # fmt: skip
    with np.load(draws_dir / row["draws_file"]) as z:
        samples = {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
    res = savage_dickey(MODELS["nonreversible"], {"data": data, "prior": FieldPrior()}, samples)
    log_bf, se = -res.log_bf, res.se  # savage_dickey: reversible vs non-reversible
    ok = bool(res.converged) and math.isfinite(log_bf)
    # refused: no finite error, but tail side +1 means every draw puts tau = 0 beyond log 10
    pick = bf_call(log_bf if ok else math.nan, res.tail_side)
    return {"log_bf": log_bf, "log_bf_se": se, "bf_converged": int(ok), "bf_note": res.note,
            "bf_ess": res.ess, "bf_pareto_k": res.pareto_k, "bf": pick}  # fmt: skip


SD_FIELDS = ["draws_file", "log_bf", "log_bf_se", "bf", "bf_converged", "bf_ess", "bf_pareto_k",
             "bf_note", "sd_seconds"]  # fmt: skip


def append_row(out: Path, fields: list[str], row: dict) -> None:
    """Append one row to a CSV (resumable passes): the header ``fields`` when the file is new,
    else the file's own column order (older runs have fewer columns)."""
    new = not out.exists()
    if not new:
        with out.open() as fh:
            fields = next(csv.reader(fh))
    with out.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def sd_path(rows_path: Path) -> Path:
    """Where the Savage–Dickey pass writes (its own file: the NUTS rows stay append-only)."""
    return rows_path.with_name(rows_path.name.replace("_rows.csv", "_sd.csv"))


def fill_savage_dickey(path: Path, log=print, stop_at: float | None = None,
                       max_jobs: int | None = None, shard: tuple[int, int] = (0, 1)) -> int:
    """Bayes factors of every row of ``path`` with stored draws and none yet (``sd_path``).

    ``shard = (k, n)`` takes the rows whose index is k modulo n (n processes side by side).
    """
    out = sd_path(path)
    have = {r["draws_file"] for r in read_sd(out)}
    done = 0
    for i, r in enumerate(read_rows(path)):
        if not r.get("draws_file") or r["draws_file"] in have or i % shard[1] != shard[0]:
            continue
        if (stop_at is not None and time.time() > stop_at) or done == max_jobs:
            break
        start = time.perf_counter()
        res = {"draws_file": r["draws_file"], **savage_dickey_row(r, path.parent / DRAWS_DIR),
               "sd_seconds": time.perf_counter() - start}  # fmt: skip
        append_row(out, SD_FIELDS, res)
        done += 1
        log(f"{r['draws_file']}: log BF = {res['log_bf']:.2f} ± {res['log_bf_se']:.2f} "
            f"-> {res['bf']} ({res['sd_seconds']:.0f}s)")  # fmt: skip
    return done


# ---- the fallback pass: what ``compare`` reports where Savage–Dickey refused ------------------
FALLBACK_FIELDS = ["draws_file", "kind", "generator", "n_states", "attempts", "bf_method",
                   "log_bf", "log_bf_se", "bf_lower", "bf_lower_se", "bf_upper", "bf_upper_se",
                   "bf_bridge", "bf_bridge_se", "bf_tail", "call", "seconds", "notes",
                   "bf_nested", "bf_nested_se", "nested_call", "nested_seconds",
                   "nested_note"]  # fmt: skip


def fallback_path(rows_path: Path) -> Path:
    """Where the fallback pass writes (one row per dataset whose Savage–Dickey refused)."""
    return rows_path.with_name(rows_path.name.replace("_rows.csv", "_fallback.csv"))


def refused_rows(rows: list[dict], sd_rows: list[dict]) -> list[dict]:
    """The NUTS rows whose Savage–Dickey estimate refused (``bf_converged == 0``): reversible
    first (the size question), then those whose tail side made no call (the misses the fallback
    can turn into calls: a bounded run does them before the rows already called), in file order
    otherwise. Rows without a Savage–Dickey row are left out: that pass has not seen them.
    """
    refused = {r["draws_file"]: r for r in sd_rows if str(r.get("bf_converged")) == "0"}
    picked = [r for r in rows if r.get("draws_file") in refused]

    def priority(r: dict) -> tuple:  # sorted is stable: file order within each group
        return r["kind"] != "reversible", refused[r["draws_file"]].get("bf") == "nonrev"

    return sorted(picked, key=priority)


def bf_call(log_bf: float, tail: int = 0) -> str:
    """The call at the verdict's threshold |log BF| > log 10: "nonrev", "rev" or "undecided".

    ``log_bf`` is what compare's table reports (non-reversible vs reversible; a bound where
    ``bf_method`` says so: a lower bound > log 10 or an upper bound < −log 10 decides, as the
    estimate would). Without a number, ``tail`` (+1/−1: Savage–Dickey's every draw beyond the
    threshold) makes the call, as the verdict does.

    >>> bf_call(3.0), bf_call(-2.0), bf_call(float("nan"), tail=1), bf_call(float("nan"))
    ('nonrev', 'undecided', 'nonrev', 'undecided')
    """
    if math.isfinite(log_bf):
        return "undecided" if abs(log_bf) <= LOG10 else ("nonrev" if log_bf > 0 else "rev")
    return {1: "nonrev", -1: "rev"}.get(int(tail), "undecided")


def fallback_row(row: dict) -> dict:
    """Refit both models of a row with its own NUTS settings and run ``compare`` on the fits.

    The counts come from the row's seeds (``make_counts``); each model is fitted as the NUTS pass
    fitted it (``detailed_balance.fit``, the row's warm-up, draws, chains, seed = sample seed);
    ``compare`` (public, no G² test: the NUTS rows have it, and no tau path: the default) chooses
    the non-reversible Bayes factor: Savage–Dickey, else bridge sampling where both evidences
    converge, else the variational bounds' side that excludes zero. Nested SMC
    (``fit_nested_smc``, the library's defaults) runs on the same fits whatever compare chose.
    """
    from detailed_balance.comparison import compare, fit_nested_smc

    start = time.perf_counter()
    counts, seed = make_counts(row), int(row["sample_seed"])
    fits = {}
    for name in ("reversible", "nonreversible"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # compare's notes carry what matters
            fits[name] = detailed_balance.fit(counts, name, draws=int(row["draws"]),
                                              warmup=int(row["warmup"]),
                                              chains=int(row["chains"]), seed=seed)  # fmt: skip
    res = compare(fits, lrt=False, seed=seed)
    t = res.table.set_index("model").loc["nonreversible"]
    out = {k: row[k] for k in ("draws_file", "kind", "generator", "n_states", "attempts")}
    out.update({k: float(t[k]) for k in ("log_bf_se", "bf_lower", "bf_lower_se", "bf_upper",
                                         "bf_upper_se", "bf_bridge", "bf_bridge_se")})  # fmt: skip
    log_bf, tail = float(t["log_bf_vs_reversible"]), int(t["bf_tail"])
    out.update({"bf_method": t["bf_method"], "log_bf": log_bf, "bf_tail": tail,
                "call": bf_call(log_bf, tail), "seconds": time.perf_counter() - start,
                "notes": " | ".join(n for n in res.notes if n.startswith("nonreversible"))})
    start = time.perf_counter()
    nested = fit_nested_smc(fits["reversible"], fits["nonreversible"], seed=seed)
    value = nested.log_bf if nested.converged else float("nan")
    out.update({"bf_nested": value, "bf_nested_se": nested.se if nested.converged else float("nan"),
                "nested_call": bf_call(value), "nested_seconds": time.perf_counter() - start,
                "nested_note": "" if nested.converged else nested.note})  # fmt: skip
    return out


def fallback_todo(path: Path, shard: tuple[int, int] = (0, 1)) -> list[dict]:
    """The refused rows of ``path`` (:func:`refused_rows`) not yet in ``fallback_path``.

    ``shard = (k, n)`` takes the rows whose index in ``path`` is k modulo n, as
    :func:`fill_savage_dickey` does (the NUTS rows are append-only: the split does not move).
    """
    rows = read_rows(path)
    mine = {r["draws_file"] for i, r in enumerate(rows) if i % shard[1] == shard[0]}
    have = {r["draws_file"] for r in read_sd(fallback_path(path))}
    return [r for r in refused_rows(rows, read_sd(sd_path(path)))
            if r["draws_file"] in mine and r["draws_file"] not in have]  # fmt: skip


def fill_fallback(path: Path, log=print, stop_at: float | None = None,
                  max_jobs: int | None = None, shard: tuple[int, int] = (0, 1)) -> int:
    """:func:`fallback_row` for every row of :func:`fallback_todo` (into ``fallback_path``)."""
    out = fallback_path(path)
    todo = fallback_todo(path, shard)
    done = 0
    for r in todo:  # bounded: one pass over the refused rows
        if (stop_at is not None and time.time() > stop_at) or done == max_jobs:
            break
        res = fallback_row(r)
        append_row(out, FALLBACK_FIELDS, res)
        done += 1
        log(f"{r['draws_file']}: {res['bf_method']} log BF = {res['log_bf']:.2f} ± "
            f"{res['log_bf_se']:.2f} (bounds {res['bf_lower']:.2f}..{res['bf_upper']:.2f}) -> "
            f"{res['call']} ({res['seconds']:.0f}s); nested SMC {res['bf_nested']:.2f} ± "
            f"{res['bf_nested_se']:.2f} -> {res['nested_call']} "
            f"({res['nested_seconds']:.0f}s)")  # fmt: skip
    return done


def _pm(r: dict, key: str) -> str:
    """``x ± se`` of a column and its ``_se`` partner (``log_bf`` -> ``log_bf_se``)."""
    x, se = _num(r, key), _num(r, f"{key}_se")
    return f"{x:.2f} ± {se:.2f}" if math.isfinite(x) else "–"


def fallback_table(rows: list[dict], sd_rows: list[dict], fb_rows: list[dict]) -> str:
    """Size and power of compare's Bayes-factor chain where Savage–Dickey refused, as Markdown.

    Size: false "non-reversible" calls over every reversible dataset, Savage–Dickey's own calls
    where it gave a number plus the chain's where it refused (Wilson 95%). Power: calls on the
    driven datasets whose Savage–Dickey refused, by its ``tail_side`` before and by the chain now.
    """
    merged = with_sd(rows, sd_rows)
    fb = {r["draws_file"]: r for r in fb_rows}
    refused = refused_rows(rows, sd_rows)
    lines = ["| dataset | Savage–Dickey's call (tail side) | compare's bf_method | log BF ± se "
             "| bounds (lower ± se, upper ± se) | call at log 10 | s | nested SMC log BF ± se "
             "| its call | z vs bridge | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in refused:
        f = fb.get(r["draws_file"])
        sd_call = next(m["bf"] for m in merged if m["draws_file"] == r["draws_file"])
        if f is None:
            lines.append(f"| {r['draws_file'][:-4]} | {sd_call} | not run | | | | | | | | |")
            continue
        bounds = (f"{_pm(f, 'bf_lower')}, {_pm(f, 'bf_upper')}"
                  if math.isfinite(_num(f, "bf_lower")) else "–")  # fmt: skip
        z = _nested_z(f)
        lines.append(f"| {r['draws_file'][:-4]} | {sd_call} | {f['bf_method']} | "
                     f"{_pm(f, 'log_bf')} | {bounds} | {f['call']} | "
                     f"{_num(f, 'seconds'):.0f} | {_pm(f, 'bf_nested')} | "
                     f"{f.get('nested_call') or '–'} | {'–' if math.isnan(z) else f'{z:+.1f}'} | "
                     f"{_num(f, 'nested_seconds'):.0f} |".replace("| nan |", "| – |"))  # fmt: skip
    rev = [m for m in merged if m["kind"] == "reversible" and m.get("bf") not in ("", None)]
    own = [m for m in rev if str(m.get("bf_converged")) == "1"]
    chain = [fb[m["draws_file"]] for m in rev if m["draws_file"] in fb
             and str(m.get("bf_converged")) == "0"]  # fmt: skip
    n_rev = len(own) + len(chain)
    false = sum(m["bf"] == "nonrev" for m in own) + sum(f["call"] == "nonrev" for f in chain)
    refused_rev = [r for r in refused if r["kind"] == "reversible"]
    drv = [r for r in refused if r["kind"] != "reversible"]
    drv_run = [r for r in drv if r["draws_file"] in fb]
    sd_calls = {m["draws_file"]: m["bf"] for m in merged}
    methods: dict = {}
    for f in (fb[r["draws_file"]] for r in refused if r["draws_file"] in fb):
        methods[f["bf_method"]] = methods.get(f["bf_method"], 0) + 1
    lines += [
        "",
        f"* **Size** (reversible truth): false \"non-reversible\" calls "
        f"{_rate(false, n_rev, 1)} over {len(own)} Savage–Dickey calls + {len(chain)} of the "
        f"{len(refused_rev)} refused datasets run through compare's chain "
        f"({sum(f['call'] == 'nonrev' for f in chain)} of those called non-reversible; "
        f"{sum(f['call'] == 'rev' for f in chain)} reversible).",
        f"* **Power** (driven, refused by Savage–Dickey): {len(drv_run)} of {len(drv)} run; "
        f"non-reversible by Savage–Dickey's tail side before "
        f"{_rate(sum(sd_calls[r['draws_file']] == 'nonrev' for r in drv_run), len(drv_run))}, "
        f"by compare's chain now "
        f"{_rate(sum(fb[r['draws_file']]['call'] == 'nonrev' for r in drv_run), len(drv_run))}.",
        "* compare's Bayes factor on the refits: "
        + (", ".join(f"{m} {k}" for m, k in sorted(methods.items())) or "none run") + ".",
    ]
    nested = [fb[r["draws_file"]] for r in refused if r["draws_file"] in fb
              and fb[r["draws_file"]].get("nested_call")]  # fmt: skip
    if nested:
        zs = [z for z in map(_nested_z, nested) if math.isfinite(z)]
        worst = max(map(abs, zs), default=math.nan)
        chain = [f for f in nested if f["draws_file"] in {r["draws_file"] for r in refused_rev}]
        lines += [
            f"* **Nested SMC** on the same fits: a number on "
            f"{sum(math.isfinite(_num(f, 'bf_nested')) for f in nested)} of {len(nested)}; "
            f"within 2 combined se of bridge sampling on {sum(abs(z) <= 2 for z in zs)} of the "
            f"{len(zs)} where both gave one (largest |z| {worst:.1f}); "
            f"its call equals compare's on {sum(f['nested_call'] == f['call'] for f in nested)} "
            f"of {len(nested)}; false \"non-reversible\" calls on the reversible ones: "
            f"{sum(f['nested_call'] == 'nonrev' for f in chain)} of {len(chain)}.",
        ]
    return "\n".join(lines) + "\n"


def _nested_z(f: dict) -> float:
    """(nested SMC − bridge sampling) / combined se, where both gave a number."""
    d = _num(f, "bf_nested") - _num(f, "bf_bridge")
    return d / math.hypot(_num(f, "bf_nested_se"), _num(f, "bf_bridge_se"))


# ---- a rerun against stored rows: the same datasets (job keys, seeds), other code --------------
PAIRED_CALLS = ("bf", "loo", "g2_pick", "fb_call", "nested_call")


def load_run(rows_path: Path) -> dict[tuple, dict]:
    """The NUTS rows of a run by job key, with its Savage–Dickey columns and, where the fallback
    pass ran, compare's call, method and log BF ± se (``fb_*``) and nested SMC's (``nested_*``)."""
    rows = with_sd(read_rows(rows_path), read_sd(sd_path(rows_path)))
    fb = {f["draws_file"]: f for f in read_sd(fallback_path(rows_path))}
    out = {}
    for r in rows:
        f = fb.get(r.get("draws_file") or "", {})
        out[job_key(r)] = {**r, "fb_call": f.get("call", ""), "fb_method": f.get("bf_method", ""),
                           "fb_log_bf": _num(f, "log_bf"), "fb_log_bf_se": _num(f, "log_bf_se"),
                           "nested_call": f.get("nested_call", ""),
                           "nested_log_bf": _num(f, "bf_nested"),
                           "nested_log_bf_se": _num(f, "bf_nested_se")}  # fmt: skip
    return out


def _worst_pointwise(r: dict) -> tuple[float, float]:
    """Worst pointwise log-likelihood R-hat and ESS over both models of a row."""
    return (max(_num(r, "rev_pointwise_rhat"), _num(r, "nonrev_pointwise_rhat")),
            min(_num(r, "rev_pointwise_ess"), _num(r, "nonrev_pointwise_ess")))  # fmt: skip


def _same_g2(a: dict, b: dict) -> bool:
    """The same G² statistic and p-value (G² does not depend on NUTS: a rerun must repeat it)."""
    x, y = (np.array([_num(r, "g2"), _num(r, "g2_p")]) for r in (a, b))
    return bool(np.array_equal(x, y, equal_nan=True))  # no testable cycle: p is NaN in both


def _pair_z(new: dict, old: dict, col: str) -> float:
    """(new − old) / combined se of a column and its ``_se`` partner; NaN without both numbers."""
    se = math.hypot(_num(new, f"{col}_se"), _num(old, f"{col}_se"))
    d = _num(new, col) - _num(old, col)
    return d / se if math.isfinite(d) and se > 0 else math.nan


def _z_line(pairs: list[dict], col: str, what: str) -> str:
    """A Markdown bullet summarising the z's of one column of :func:`paired`."""
    with_z = [p for p in pairs if math.isfinite(p[col])]
    if not with_z:
        return f"* **{what}**: no dataset with a number in both runs."
    zs = np.array([p[col] for p in with_z])
    worst = with_z[int(np.argmax(np.abs(zs)))]
    sd = f"{np.std(zs, ddof=1):.2f}" if len(zs) > 1 else "–"
    return (f"* **{what}, (after − before) / combined se**, on the {len(zs)} with a number in "
            f"both: mean {zs.mean():+.2f}, sd {sd}, max |z| {abs(worst[col]):.2f} "
            f"({worst['dataset']}), |z| > 2 on {int(np.sum(np.abs(zs) > 2))}, |z| > 3 on "
            f"{int(np.sum(np.abs(zs) > 3))}.")  # fmt: skip


def paired(new: dict[tuple, dict], old: dict[tuple, dict]) -> list[dict]:
    """Dataset by dataset, a rerun (``new``) against stored rows (``old``), both from
    :func:`load_run`: only the datasets of both (same job key, so the same counts and fit seeds).

    ``z`` is the change of the Savage–Dickey log BF in units of the combined se, where both runs
    gave a finite estimate with a positive se; ``fb_z`` that of compare's log BF in the fallback
    pass (where both runs used the same method), ``nested_z`` that of nested SMC's. Calls
    (``PAIRED_CALLS``) count as changed only where both runs made one (a fallback call exists only
    where that run's Savage–Dickey refused).
    """
    out = []
    for key, n in new.items():
        o = old.get(key)
        if o is None:
            continue
        x_n, x_o = _num(n, "log_bf"), _num(o, "log_bf")
        same_method = n.get("fb_method") == o.get("fb_method")
        row = {"dataset": n["draws_file"][:-4], "kind": n["kind"], "n_states": int(n["n_states"]),
               "generator": n.get("generator") or "package", "log_bf_old": x_o, "log_bf_new": x_n,
               "z": _pair_z(n, o, "log_bf"),
               "fb_z": _pair_z(n, o, "fb_log_bf") if same_method else math.nan,
               "nested_z": _pair_z(n, o, "nested_log_bf"), "changed": " ".join(
                   f"{c} {o[c]}->{n[c]}" for c in PAIRED_CALLS
                   if o.get(c) and n.get(c) and o[c] != n[c]),
               "g2_same": int(_same_g2(n, o))}  # fmt: skip
        for c in (*PAIRED_CALLS, "bf_converged"):
            row[f"{c}_old"], row[f"{c}_new"] = o.get(c, ""), n.get(c, "")
        for tag, r in (("old", o), ("new", n)):
            row[f"rhat_{tag}"], row[f"ess_{tag}"] = _worst_pointwise(r)
            row[f"tau_ess_{tag}"] = _num(r, "tau_ess")
            row[f"divergences_{tag}"] = _num(r, "divergences")
            row[f"converged_{tag}"] = int(converged(r))
            row[f"seconds_{tag}"] = _num(r, "seconds")
        out.append(row)
    return out


def _median(xs) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return float(np.median(xs)) if xs else math.nan


def paired_markdown(pairs: list[dict]) -> str:
    """:func:`paired` as Markdown: the z's, the changed calls, and per cell (truth, states,
    generator) convergence and seconds per dataset before -> after."""
    changed = [p for p in pairs if p["changed"]]
    refused = {tag: sum(p[f"bf_converged_{tag}"] == "0" for p in pairs) for tag in ("old", "new")}
    lines = [
        f"* **Datasets paired**: {len(pairs)} "
        f"({sum(p['kind'] == 'reversible' for p in pairs)} reversible, "
        f"{sum(p['kind'] != 'reversible' for p in pairs)} driven).",
        _z_line(pairs, "z", "Savage–Dickey log BF"),
        _z_line(pairs, "fb_z", "compare's log BF where Savage–Dickey refused (same method)"),
        _z_line(pairs, "nested_z", "nested SMC's log BF on the fallback refits"),
        f"* **Savage–Dickey refused** (no finite error): {refused['old']} before, "
        f"{refused['new']} after.",
        f"* **G² identical** (statistic and p) on {sum(p['g2_same'] for p in pairs)} of "
        f"{len(pairs)}.",
        f"* **Changed calls** (where both runs made one): {len(changed)} datasets"
        + "".join(f"; {p['dataset']}: {p['changed']}" for p in changed) + ".",
        "",
        "| truth | states | generator | datasets | Savage–Dickey z: mean (sd; max \\|z\\|) | "
        "fallback z: mean (max \\|z\\|) | not converged | with divergences | "
        "median worst pointwise R-hat | median worst pointwise ESS | median tau ESS | "
        "median s/dataset |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cells: dict = {}
    for p in pairs:
        cells.setdefault((p["kind"], p["n_states"], p["generator"]), []).append(p)
    for key in sorted(cells, key=lambda k: (k[0] != "reversible", k[1], k[2])):
        ps = cells[key]
        cz = [p["z"] for p in ps if math.isfinite(p["z"])]
        fz = [p["fb_z"] for p in ps if math.isfinite(p["fb_z"])]

        def both(fmt, col, agg=_median, ps=ps):
            return "{} -> {}".format(*(format(agg([p[f"{col}_{t}"] for p in ps]), fmt)
                                       for t in ("old", "new")))

        zs_text = (f"{np.mean(cz):+.2f} ({np.std(cz, ddof=1) if len(cz) > 1 else math.nan:.2f};"
                   f" {max(map(abs, cz)):.2f})" if cz else "–")  # fmt: skip
        fz_text = f"{np.mean(fz):+.2f} ({max(map(abs, fz)):.2f})" if fz else "–"
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {len(ps)} | {zs_text} | {fz_text} | "
            f"{both('d', 'converged', lambda xs: len(xs) - sum(xs))} | "
            f"{both('d', 'divergences', lambda xs: sum(x > 0 for x in xs))} | "
            f"{both('.3f', 'rhat')} | {both('.0f', 'ess')} | {both('.0f', 'tau_ess')} | "
            f"{both('.1f', 'seconds')} |"
        )
    return "\n".join(lines) + "\n"


def write_paired(pairs: list[dict], path: Path) -> None:
    """The paired rows as CSV (one per dataset)."""
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(pairs[0]) if pairs else ["dataset"])
        w.writeheader()
        w.writerows(pairs)


def read_sd(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh))


def with_sd(rows: list[dict], sd_rows: list[dict]) -> list[dict]:
    """The NUTS rows with the Savage–Dickey columns filled in where computed."""
    by_file = {r["draws_file"]: r for r in sd_rows}
    out = []
    for r in rows:
        sd = by_file.get(r.get("draws_file") or "")
        if sd is not None:
            r = {**r, **sd, "log_bf": _num(sd, "log_bf"), "log_bf_se": _num(sd, "log_bf_se")}
        out.append(r)
    return out


def plan(full: bool, rules: str = "all") -> list[dict]:
    """Datasets in priority order (the run is resumable and may be stopped at any point)."""
    if not full:  # the fast version used by the tests
        return [dict(kind="reversible", affinity=0.0, attempts=200, chain_seed=0, sample_seed=0,
                     n_states=8, generator="package"),
                dict(kind="driven", affinity=2.0, attempts=500, chain_seed=0, sample_seed=0,
                     n_states=8, generator="package")]  # fmt: skip
    jobs = []

    if rules == "g2":  # cheap (no NUTS): 100 reversible datasets per regime and generator
        for s in range(100):  # a fresh chain per dataset: size over chains, not one graph
            for n, attempts in G2_REGIMES:
                for gen in ("package", "conductance"):
                    jobs.append(dict(kind="reversible", affinity=0.0, attempts=attempts,
                                     chain_seed=s, sample_seed=s, n_states=n, generator=gen))
            if s < 50:  # power at the issue's target: 1 nat per cycle, 500 attempts
                for gen in ("package", "conductance"):
                    jobs.append(dict(kind="driven", affinity=1.0, attempts=500, chain_seed=s,
                                     sample_seed=s, n_states=30, generator=gen))
        for s in range(20):  # the power curve below the target, both generators
            for aff, attempts in ((0.5, 500), (0.25, 500), (1.0, 200), (0.5, 200), (0.25, 200)):
                for gen in ("package", "conductance"):
                    jobs.append(dict(kind="driven", affinity=aff, attempts=attempts,
                                     chain_seed=s, sample_seed=s, n_states=30, generator=gen))
    else:  # the NUTS pass: the sparse regimes' size first, then dense size and power
        for s in range(50):
            for gen in ("package", "conductance"):
                for n, attempts in G2_REGIMES[1:]:  # 40 × 25 and 200 × 10
                    jobs.append(dict(kind="reversible", affinity=0.0, attempts=attempts,
                                     chain_seed=s, sample_seed=s, n_states=n, generator=gen))
            if s % 2:  # dense size and power interleaved at half the rate, so that a stopped
                for gen in ("package", "conductance"):  # run has numbers in every regime
                    jobs.append(dict(kind="reversible", affinity=0.0, attempts=200,
                                     chain_seed=s, sample_seed=s, n_states=30, generator=gen))
                    if s < 20:  # power at the issue's target: 1 nat per cycle, 500 attempts
                        jobs.append(dict(kind="driven", affinity=1.0, attempts=500,
                                         chain_seed=s, sample_seed=s, n_states=30,
                                         generator=gen))  # fmt: skip
        for s in range(0, 50, 2):  # then the dense regime to 100: the even seeds (odd ran above)
            for gen in ("package", "conductance"):
                jobs.append(dict(kind="reversible", affinity=0.0, attempts=200, chain_seed=s,
                                 sample_seed=s, n_states=30, generator=gen))
        for s in range(50, 100):  # then beyond 100 per regime
            for gen in ("package", "conductance"):
                for n, attempts in G2_REGIMES:
                    jobs.append(dict(kind="reversible", affinity=0.0, attempts=attempts,
                                     chain_seed=s, sample_seed=s, n_states=n, generator=gen))
    seen, unique = set(), []
    for j in jobs:
        if job_key(j) not in seen:
            seen.add(job_key(j))
            unique.append(j)
    return unique


def first_per_cell(jobs: list[dict], k: int) -> list[dict]:
    """The first ``k`` jobs (plan order) of every (truth, affinity, states, attempts, generator)
    cell: a subset of the plan with every cell, e.g. to rerun it with new code.

    Ordered for a run that may stop early: the driven cells first (the power a short run must not
    lose), then the reversible cells round-robin (every cell's i-th dataset before any (i+1)-th),
    so that a stopped run has about as many datasets in each.
    """
    taken: dict = {}
    picked = []
    for i, j in enumerate(jobs):
        cell = job_key(j)[:3] + job_key(j)[5:]  # the key without its seeds
        rank = taken.get(cell, 0)
        if rank < k:
            taken[cell] = rank + 1
            picked.append((j["kind"] == "reversible", rank, i, j))
    return [j for *_, j in sorted(picked, key=lambda t: t[:3])]


def decide_g2(counts, seed: int = 0) -> dict:
    """The G² rule only (reversible MLE and the exact conditional p-value: no NUTS)."""
    start = time.perf_counter()
    g2 = likelihood_ratio_test(counts, samples=G2_SAMPLES, seed=seed)
    p = g2["p_value"]
    nan = float("nan")
    return {"g2_p_chi2": g2["p_value_chi2"], "g2_null_mean": g2["null_mean_statistic"],
            "g2_support_df": g2["df_support"], "g2_ess": g2["effective_samples"],
            "n_states": counts.n_states, "n_cycles": g2["df"], "g2": g2["statistic"],
            "g2_df": g2["df"], "g2_p": p, "log_bf": nan, "log_bf_se": nan, "elpd_diff": nan,
            "elpd_diff_se": nan, "bf": "", "loo": "",
            "g2_pick": "undecided" if p is None else ("nonrev" if p < 0.05 else "rev"),
            "seconds": time.perf_counter() - start}  # fmt: skip


def make_counts(job: dict):
    """The counts of a job (or of a row read back: its fields are strings), from its seeds."""
    n, attempts, sample_seed = int(job["n_states"]), int(job["attempts"]), int(job["sample_seed"])
    seed = 1000 + int(job["chain_seed"])
    aff = None if job["kind"] == "reversible" else float(job["affinity"])
    if job.get("generator") == "conductance":
        # unlike the package's chains: log-normal conductances, degree 3, varied escapes,
        # states renamed and reordered at random
        chain = conductance_chain(n, affinity=aff, seed=seed)
        counts = sample_counts(chain, attempts_per_source=attempts, seed=sample_seed)
        return relabel_counts(counts, seed=seed)
    if aff is None:
        chain = reversible_chain(n, seed=seed)
    else:
        chain = driven_chain(n, affinity=aff, seed=seed)
    return sample_counts(chain, attempts_per_source=attempts, seed=sample_seed)


def job_key(row) -> tuple:
    return (row["kind"], float(row["affinity"]), int(row["attempts"]), int(row["chain_seed"]),
            int(row["sample_seed"]), int(row["n_states"]),
            row.get("generator") or "package")  # fmt: skip


def run(jobs, nuts: dict | None, out: Path | None = None, log=print, max_jobs=None,
        draws_dir: Path | None = None, stop_at: float | None = None) -> list[dict]:
    """Run every job not yet in ``out`` (CSV, appended row by row so a killed run resumes).

    ``nuts``: ``{"warmup": ..., "draws": ...}`` for the NUTS pass (draws stored in ``draws_dir``),
    None for the G²-only pass. ``max_jobs`` stops after that many new datasets (see ``main``: a
    fresh process per chunk).
    """
    done = read_rows(out) if out is not None and out.exists() else []
    have = {job_key(r) for r in done}
    rows = list(done)
    new_jobs = 0
    for i, job in enumerate(jobs):
        if job_key(job) in have:
            continue
        if max_jobs is not None and new_jobs >= max_jobs:
            break
        if stop_at is not None and time.time() > stop_at:
            break
        new_jobs += 1
        counts = make_counts(job)
        if nuts is None:
            res = decide_g2(counts, seed=job["sample_seed"])
        else:
            path = draws_dir / draws_name(job) if draws_dir is not None else None
            res = decide_nuts(counts, job["sample_seed"], nuts["warmup"], nuts["draws"], path)
        row = {**job, **res}
        rows.append(row)
        if out is not None:
            append_row(out, FIELDS if nuts is None else NUTS_FIELDS, row)
        log(f"[{i + 1}/{len(jobs)}] {job['kind']} A={job['affinity']} {job['n_states']}x"
            f"{job['attempts']} {job.get('generator')} conv={row.get('converged')} "
            f"dLOO={row['elpd_diff']:.1f}±"
            f"{row['elpd_diff_se']:.1f} G2={row['g2']} p={row['g2_p']} -> {row['bf']}/"
            f"{row['loo']}/{row['g2_pick']} ({row['seconds']:.0f}s)")  # fmt: skip
    return rows


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in ("affinity", "log_bf", "log_bf_se", "elpd_diff", "elpd_diff_se", "g2_p",
                  "g2_p_chi2", "g2_null_mean"):  # fmt: skip
            r[k] = float(r[k]) if r.get(k) not in ("", "None", None) else float("nan")
        r["attempts"] = int(r["attempts"])
    return rows


def _num(r: dict, key: str) -> float:
    v = r.get(key)
    return float(v) if v not in ("", "None", None) else float("nan")


def converged(r: dict) -> bool:
    """R-hat ≤ 1.01 and bulk ESS ≥ 400 on what the rules use: every pointwise log-likelihood of
    both models (LOO), the non-reversible model's ``tau`` and, once computed, the Savage–Dickey
    per-draw terms (BF). The total log-likelihood's R-hat and ESS are recorded but not required.
    """
    need = [("rev_pointwise_rhat", "rev_pointwise_ess"),
            ("nonrev_pointwise_rhat", "nonrev_pointwise_ess")]  # fmt: skip
    if r.get("tau_ess") not in ("", None):
        need.append(("tau_rhat", "tau_ess"))
    ok = all(_num(r, a) <= RHAT_MAX and _num(r, b) >= ESS_MIN for a, b in need)
    if str(r.get("bf_converged")) == "1":
        ok &= _num(r, "bf_ess") >= ESS_MIN
    return ok


def _regime(r: dict) -> tuple:
    truth = "reversible" if r["kind"] == "reversible" else f"driven, {float(r['affinity']):g} nat"
    return truth, int(r["n_states"]), int(r["attempts"])


def summarise(rows) -> list[dict]:
    """Size or power of every rule per (truth, states, attempts) and generator ("all" pools both).

    A rule "rejects" when it picks non-reversible: log BF > log 10, LOO difference > 2 se, G²
    conditional p < 0.05 (chi² p < 0.05 beside it). Every dataset counts, converged or not; the
    counts of fits that missed R-hat ≤ 1.01 / ESS ≥ 400, of Bayes factors without a finite error
    and of LOO with Pareto k̂ > 0.7 are reported beside the rates.
    """
    groups: dict = {}
    for r in rows:
        for gen in ("all", r.get("generator") or "package"):
            groups.setdefault((*_regime(r), gen), []).append(r)
    table = []
    for key in sorted(groups, key=lambda k: (k[0] != "reversible", k[0], -k[2], k[1], k[3])):
        rs = groups[key]
        bf = [r for r in rs if r.get("bf") not in ("", None)]
        g2 = [r for r in rs if _num(r, "g2_p") == _num(r, "g2_p")]
        chi2 = [r for r in rs if _num(r, "g2_p_chi2") == _num(r, "g2_p_chi2")]
        table.append({
            "truth": key[0], "n_states": key[1], "attempts": key[2], "generator": key[3],
            "datasets": len(rs),
            "not_converged": sum(not converged(r) for r in rs),
            "divergent": sum(_num(r, "divergences") > 0 for r in rs),
            "bf_n": len(bf), "bf_nonrev": sum(r["bf"] == "nonrev" for r in bf),
            "bf_rev": sum(r["bf"] == "rev" for r in bf),
            "bf_no_error": sum(str(r.get("bf_converged")) != "1" for r in bf),
            "loo_n": len(rs), "loo_nonrev": sum(r["loo"] == "nonrev" for r in rs),
            "loo_bad_k": sum(_num(r, "k_max") > 0.7 for r in rs),
            "g2_n": len(g2), "g2_nonrev": sum(_num(r, "g2_p") < 0.05 for r in g2),
            "chi2_n": len(chi2), "chi2_nonrev": sum(_num(r, "g2_p_chi2") < 0.05 for r in chi2),
            "seconds": float(np.median([_num(r, "seconds") for r in rs])),
            "pointwise_ess": float(np.median([min(_num(r, "rev_pointwise_ess"),
                                                  _num(r, "nonrev_pointwise_ess")) for r in rs])),
            "pointwise_rhat": float(np.median([max(_num(r, "rev_pointwise_rhat"),
                                                   _num(r, "nonrev_pointwise_rhat")) for r in rs])),
            "tau_ess": float(np.nanmedian([_num(r, "tau_ess") for r in rs])),
        })  # fmt: skip
    return table


def wilson(p: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion."""
    z = 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _rate(k: int, n: int, digits: int = 0) -> str:
    if not n:
        return "–"
    lo, hi = wilson(k / n, n)
    return f"{k}/{n} = {k / n:.{digits}%} ({lo:.{digits}%}–{hi:.{digits}%})"


def markdown(table) -> str:
    """The NUTS pass as a Markdown table: rate of "non-reversible" picks with 95% Wilson CIs."""
    lines = [
        "| truth | states × attempts/source | generator | datasets | fits not converged | "
        "with divergences | BF > log 10 (95% CI) | BF < −log 10 | BF without finite error | "
        "LOO > 2 se (95% CI) | LOO k̂ > 0.7 | G² conditional p < 0.05 (95% CI) | "
        "G² chi² p < 0.05 (95% CI) | median worst pointwise log-lik R-hat, ESS; tau ESS | "
        "median s/dataset |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in table:
        lines.append(
            f"| {e['truth']} | {e['n_states']} × {e['attempts']} | {e['generator']} | "
            f"{e['datasets']} | {e['not_converged']} | {e['divergent']} | "
            f"{_rate(e['bf_nonrev'], e['bf_n'])} | {e['bf_rev']}/{e['bf_n']} | "
            f"{e['bf_no_error']}/{e['bf_n']} | {_rate(e['loo_nonrev'], e['loo_n'])} | "
            f"{e['loo_bad_k']} | {_rate(e['g2_nonrev'], e['g2_n'])} | "
            f"{_rate(e['chi2_nonrev'], e['chi2_n'])} | {e['pointwise_rhat']:.3f}, "
            f"{e['pointwise_ess']:.0f}; {e['tau_ess']:.0f} | "
            f"{e['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def g2_table(g2_rows) -> str:
    """The G² pass by regime and generator: size (reversible) and power (driven)."""
    groups: dict = {}
    for r in g2_rows:
        key = (r["kind"], float(r["affinity"]), int(r["n_states"]), int(r["attempts"]),
               r.get("generator") or "package")  # fmt: skip
        groups.setdefault(key, []).append(r)
    lines = [
        "| truth | states × attempts/source | generator | datasets | with a testable cycle | "
        "testable df (median; support-graph cycles) | conditional p < 0.05 (95% CI) | "
        "chi² p < 0.05 (95% CI) | effective tables (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(groups, key=lambda k: (k[0] != "reversible", k[1], -k[3], k[2], k[4])):
        rs = groups[key]
        tested = [r for r in rs if r["g2_p"] == r["g2_p"]]
        n = len(tested)

        def rate(col, rs=tested, n=n):
            if not n:
                return "–"
            share = sum(r[col] < 0.05 for r in rs) / n
            lo, hi = wilson(share, n)
            return f"{share:.1%} ({lo:.0%}–{hi:.0%})"

        df = np.median([int(r["g2_df"]) for r in rs])
        sdf = np.median([int(r["g2_support_df"] or 0) for r in rs])
        ess = [float(r["g2_ess"]) for r in tested if r.get("g2_ess") not in ("", None)]
        truth = "reversible" if key[0] == "reversible" else f"driven, {key[1]:g} nat/cycle"
        lines.append(f"| {truth} | {key[2]} × {key[3]} | {key[4]} | {len(rs)} | {n} | "
                     f"{df:g} ({sdf:g}) | {rate('g2_p')} | {rate('g2_p_chi2')} | "
                     f"{np.median(ess) if ess else float('nan'):.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def figure(table, path: Path) -> None:
    """Share of datasets picking "non-reversible" per rule: size by regime, power at 1 nat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pooled = [e for e in table if e["generator"] == "all"]
    if not pooled:
        return
    rules = (("bf", "log BF > log 10", "o"), ("loo", "LOO > 2 se", "s"),
             ("g2", "G² conditional p < 0.05", "^"), ("chi2", "G² chi² p < 0.05", "x"))  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 3.6))
    labels = [f"{e['truth']}\n{e['n_states']} × {e['attempts']}" for e in pooled]
    for j, (rule, name, marker) in enumerate(rules):
        xs, ys, lo, hi = [], [], [], []
        for i, e in enumerate(pooled):
            n, k = e[f"{rule}_n"], e[f"{rule}_nonrev"]
            if n:
                a, b = wilson(k / n, n)
                xs.append(i + 0.12 * (j - 1.5))
                ys.append(k / n)
                lo.append(k / n - a)
                hi.append(b - k / n)
        ax.errorbar(xs, ys, yerr=np.clip([lo, hi], 0, 1), marker=marker, ls="none", capsize=3,
                    label=name)  # fmt: skip
    ax.axhline(0.05, color="grey", lw=0.8, ls=":")
    ax.axhline(0.9, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(pooled)), labels, fontsize=8)
    ax.set_ylabel("share picking non-reversible\n(95% Wilson CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="center left")
    ax.set_title("Size (reversible truth) and power of the decision rules, NUTS pass", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/calibration", help="rows, table and figure go here")
    parser.add_argument("--fast", action="store_true", help="the small version the tests run")
    parser.add_argument("--rules", default="all", choices=("all", "g2"),
                        help="all three rules (NUTS pass), or the cheap G²-only pass")
    parser.add_argument("--savage-dickey", action="store_true",
                        help="fill log BF of the NUTS rows from their stored draws (no refit)")
    parser.add_argument("--shard", default="0/1",
                        help="K/N takes datasets (NUTS pass) or rows (--savage-dickey, --fallback) "
                        "K modulo N, so N processes run side by side (compilation is "
                        "single-threaded)")
    parser.add_argument("--fallback", action="store_true",
                        help="refit the rows whose Savage–Dickey refused and record what compare "
                        "reports instead (bridge sampling or the variational bounds), and nested "
                        "SMC's estimate beside it")
    parser.add_argument("--summarise", action="store_true", help="only rebuild table and figure")
    parser.add_argument("--per-cell", type=int, default=None,
                        help="only the first K datasets of each (truth, regime, generator) cell "
                        "of the plan (before --shard)")  # fmt: skip
    parser.add_argument("--against", default=None,
                        help="a directory of stored rows: compare this run's rows with them, "
                        "dataset by dataset (<stem>_paired.csv and .md in --out)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=1000, help="per chain (2 chains)")
    parser.add_argument("--stop-at", type=float, default=None,
                        help="Unix time after which no new dataset starts (a bounded run)")
    parser.add_argument("--chunk", type=int, default=10,
                        help="datasets per worker process (0: all in this process)")
    parser.add_argument("--max-jobs", type=int, help=argparse.SUPPRESS)  # a worker's share
    args = parser.parse_args(argv)
    # before any JAX work: 2 chains in parallel; no disk cache (every dataset has its own graph)
    detailed_balance.configure(chains=2, cache=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "calibration_fast" if args.fast else "calibration"
    rows_path = out / f"{stem}_rows.csv"
    g2_path = out / f"{stem}_g2.csv"
    path = rows_path if args.rules == "all" else g2_path
    jobs = plan(not args.fast, args.rules)
    if args.per_cell is not None:
        jobs = first_per_cell(jobs, args.per_cell)
    shard = tuple(int(x) for x in args.shard.split("/"))
    if not args.savage_dickey:
        jobs = jobs[shard[0]::shard[1]]
    if args.savage_dickey:
        fill_savage_dickey(rows_path, log=lambda m: print(m, flush=True), stop_at=args.stop_at,
                           max_jobs=args.max_jobs, shard=shard)  # fmt: skip
        args.summarise = True
    if args.fallback and (args.max_jobs is not None or not args.chunk):  # a worker's share
        fill_fallback(rows_path, log=lambda m: print(m, flush=True), stop_at=args.stop_at,
                      max_jobs=args.max_jobs, shard=shard)  # fmt: skip
        if args.max_jobs is not None:
            return 0
        args.summarise = True

    def remaining() -> int:
        """Datasets this pass has still to do (the NUTS pass's jobs, or the fallback's rows)."""
        if args.fallback:
            return len(fallback_todo(rows_path, shard))
        have = {job_key(r) for r in read_rows(path)} if path.exists() else set()
        return sum(job_key(j) not in have for j in jobs)

    if not args.summarise and args.chunk and args.max_jobs is None and args.rules == "all":
        # Each support graph compiles new XLA code and a long process runs out of memory maps
        # (LLVM "Cannot allocate memory" after ~30 datasets), so chunks run in fresh processes.
        for _ in range(remaining()):  # bounded: every pass finishes at least one dataset or stops
            if args.stop_at is not None and time.time() > args.stop_at:
                print("stop time reached", flush=True)
                break
            left = remaining()
            if not left:
                break
            cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]),
                   "--max-jobs", str(args.chunk)]  # fmt: skip
            if subprocess.run(cmd).returncode != 0 and remaining() == left:
                print("a worker failed without finishing a dataset; stopping", flush=True)
                return 1
        args.summarise = True
    if not args.summarise:
        nuts = {"warmup": args.warmup, "draws": args.draws} if args.rules == "all" else None
        run(jobs, nuts, path, log=lambda m: print(m, flush=True), max_jobs=args.max_jobs,
            draws_dir=out / DRAWS_DIR, stop_at=args.stop_at)
        if args.max_jobs is not None:
            return 0
    rows = read_rows(rows_path) if rows_path.exists() else []
    rows = with_sd(rows, read_sd(sd_path(rows_path)))
    g2_rows = read_rows(g2_path) if g2_path.exists() else []
    table = summarise(rows)
    text = markdown(table)
    (out / f"{stem}_table.md").write_text(text)
    if g2_rows:
        g2_text = g2_table(g2_rows)
        (out / f"{stem}_g2_table.md").write_text(g2_text)
        text += "\n" + g2_text
    figure(table, out / f"{stem}_power.png")
    fb_path = fallback_path(rows_path)
    if fb_path.exists():
        fb_text = fallback_table(read_rows(rows_path), read_sd(sd_path(rows_path)),
                                 read_sd(fb_path))  # fmt: skip
        (out / f"{stem}_fallback_table.md").write_text(fb_text)
        text += "\n" + fb_text
    if args.against and rows_path.exists():
        new, old = load_run(rows_path), load_run(Path(args.against) / rows_path.name)
        pairs = paired(new, old)
        write_paired(pairs, out / f"{stem}_paired.csv")
        # the stored rows' table on the same datasets, to read beside this run's
        before = markdown(summarise([r for key, r in old.items() if key in new]))
        (out / f"{stem}_against_table.md").write_text(before)
        pair_text = paired_markdown(pairs)
        (out / f"{stem}_paired.md").write_text(pair_text)
        text += f"\nStored rows, same datasets:\n{before}\n{pair_text}"
    print(text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
