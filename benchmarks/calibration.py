"""Calibration of the decision rules for detailed balance on synthetic chains with known truth.

Rules (non-reversible model vs reversible model, same likelihood):
  * Bayes factor: log BF > log 10 picks "non-reversible", log BF < -log 10 picks "reversible";
  * PSIS-LOO: elpd difference > 2 se picks the better model;
  * G² likelihood-ratio test: p < 0.05 rejects reversibility.

Datasets: reversible chains (type-I error) and driven chains whose every fundamental cycle carries
the same affinity (power), 30 states, budget design (every state gets the same attempts).

CPU is scarce, so datasets that share a support graph share compiled code: the models take the
counts as arguments (``jit_model_args``), every cell of the support graph is a likelihood cell
(zero counts add zero), and the bridge density and pointwise log-likelihood are jitted once per
graph. The evidence (bridge sampling), LOO (per-attempt, weighted) and G² (flat-prior MAP through
``inference.fit``) are the package's own functions.

    python benchmarks/calibration.py                 # full study (resumable; rows in --out)
    python benchmarks/calibration.py --summarise     # table + figure from the rows so far
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
from detailed_balance.comparison import bridge_from_draws, likelihood_ratio_test, weighted_loo
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
          "n_cycles", "log_z_rev", "log_z_rev_se", "log_z_nonrev", "log_z_nonrev_se", "log_bf",
          "log_bf_se", "bridge_ok", "elpd_diff", "elpd_diff_se", "k_max", "g2", "g2_df", "g2_p",
          "divergences", "bf", "loo", "g2_pick", "seconds", "g2_p_chi2",
          "g2_null_mean", "generator", "g2_support_df", "g2_ess"]  # fmt: skip
G2_SAMPLES = 499  # exact conditional G² p-value at any M (chi² recorded too); 499 halves the time
# the G² pass: (states, attempts per source) of the issue's three regimes, dense to sparse
G2_REGIMES = ((30, 200), (40, 25), (200, 10))


class Engine:
    """NUTS + bridge + pointwise log-likelihood, compiled once per support graph and model."""

    def __init__(self, warmup: int = 500, draws: int = 1000, chains: int = 2, prior=None):
        self.warmup, self.draws, self.chains = warmup, draws, chains
        self.prior = prior or FieldPrior()
        self._cache: dict = {}

    def _compiled(self, name: str, data):
        key = (name, data.n_states, data.arc_source.tobytes(), data.arc_target.tobytes(),
               data.gauge_group.tobytes(), data.has_rest)  # fmt: skip
        if key in self._cache:
            return self._cache[key]
        import jax
        from jax.flatten_util import ravel_pytree
        from numpyro.distributions.transforms import biject_to
        from numpyro.infer import MCMC, NUTS
        from numpyro.infer.util import initialize_model, log_likelihood

        tmpl = all_cells(data)
        fn, prior = MODELS[name], self.prior

        def model_fn(arc_count, rest_count, gauge_weight):
            d = tmpl._replace(arc_count=arc_count, rest_count=rest_count, gauge_weight=gauge_weight)
            fn(d, prior=prior)

        args = dynamic_args(tmpl)
        info = initialize_model(jax.random.PRNGKey(0), model_fn, model_args=args, dynamic_args=True)
        trace = info.model_trace
        latent = [k for k, s in trace.items() if s["type"] == "sample" and not s["is_observed"]]
        transforms = {k: biject_to(trace[k]["fn"].support) for k in latent}
        _, unravel = ravel_pytree(info.param_info.z)
        gen = info.potential_fn

        def to_z(one):
            return ravel_pytree({k: transforms[k].inv(one[k]) for k in latent})[0]

        entry = {
            "mcmc": MCMC(NUTS(model_fn), num_warmup=self.warmup, num_samples=self.draws,
                         num_chains=self.chains, chain_method="parallel", jit_model_args=True,
                         progress_bar=False),  # fmt: skip
            "to_z": jax.jit(jax.vmap(to_z)),
            "density": jax.jit(jax.vmap(lambda x, *a: -gen(*a)(unravel(x)),
                                        in_axes=(0, None, None, None))),  # fmt: skip
            "loglik": jax.jit(lambda s, *a: log_likelihood(model_fn, s, *a)["y"]),
            "latent": latent,
        }
        self._cache[key] = entry
        return entry

    def fit(self, name: str, data, seed: int) -> dict:
        """Evidence (bridge), weighted PSIS-LOO and divergences of one model on one dataset."""
        import jax

        c = self._compiled(name, data)
        tmpl = all_cells(data)
        args = dynamic_args(tmpl)
        c["mcmc"].run(jax.random.PRNGKey(seed), *args, extra_fields=("diverging",))
        samples = c["mcmc"].get_samples(group_by_chain=True)
        div = int(np.sum(c["mcmc"].get_extra_fields()["diverging"]))
        flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in samples.items() if k in c["latent"]}
        z = np.asarray(c["to_z"](flat)).reshape(self.chains, self.draws, -1)

        def density(x):
            return np.asarray(c["density"](x, *args), dtype=float)

        ev = bridge_from_draws(z, density, seed=seed)
        ll = np.asarray(c["loglik"](flat, *args)).reshape(self.chains, self.draws, -1)
        count = np.concatenate([tmpl.arc_count, tmpl.rest_count])
        seen = count > 0
        loo = weighted_loo(ll[..., seen], count[seen])
        return {"evidence": ev, "loo": loo, "divergences": div}


def all_cells(data):
    """Model data whose likelihood cells are every arc and every rest row (zeros included)."""
    rest = np.arange(data.n_states) if data.has_rest else np.zeros(0, dtype=np.int64)
    return data._replace(cell_arc=np.arange(2 * data.n_edges), cell_rest=rest)


def dynamic_args(data) -> tuple:
    return (np.asarray(data.arc_count, dtype=float), np.asarray(data.rest_count, dtype=float),
            np.asarray(data.gauge_weight, dtype=float))  # fmt: skip


def decide(engine: Engine, counts, seed: int = 0) -> dict:
    """Numbers and the pick of every rule on one dataset ("nonrev", "rev" or "undecided")."""
    start = time.perf_counter()
    data = build_model_data(counts)
    rev = engine.fit("reversible", data, seed)
    nonrev = engine.fit("nonreversible", data, seed)
    e_r, e_n = rev["evidence"], nonrev["evidence"]
    ok = e_r.converged and e_n.converged
    log_bf = e_n.log_z - e_r.log_z if ok else float("nan")
    bf_se = math.hypot(e_n.se, e_r.se) if ok else float("nan")
    lo_r, lo_n = rev["loo"], nonrev["loo"]
    d_i = lo_n["elpd_i"] - lo_r["elpd_i"]
    w = lo_n["weights"]
    diff = float(np.sum(w * d_i))
    diff_se = float(np.sqrt(w.sum() * np.sum(w * (d_i - diff / w.sum()) ** 2) / w.sum()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g2 = likelihood_ratio_test(counts, samples=G2_SAMPLES, seed=seed)
    p = g2["p_value"]
    return {
        "g2_p_chi2": g2["p_value_chi2"], "g2_null_mean": g2["null_mean_statistic"],
        "n_states": data.n_states, "n_edges": data.n_edges, "n_cycles": data.n_chords,
        "log_z_rev": e_r.log_z, "log_z_rev_se": e_r.se, "log_z_nonrev": e_n.log_z,
        "log_z_nonrev_se": e_n.se, "log_bf": log_bf, "log_bf_se": bf_se, "bridge_ok": int(ok),
        "elpd_diff": diff, "elpd_diff_se": diff_se, "k_max": max(lo_r["k_max"], lo_n["k_max"]),
        "g2": g2["statistic"], "g2_df": g2["df"], "g2_p": p,
        "divergences": rev["divergences"] + nonrev["divergences"],
        "bf": "undecided" if not ok or abs(log_bf) <= LOG10 else
              ("nonrev" if log_bf > 0 else "rev"),
        "loo": "undecided" if abs(diff) <= 2 * diff_se else ("nonrev" if diff > 0 else "rev"),
        "g2_pick": "undecided" if p is None else ("nonrev" if p < 0.05 else "rev"),
        "seconds": time.perf_counter() - start,
    }  # fmt: skip


def plan(full: bool, rules: str = "all") -> list[dict]:
    """Datasets in priority order (the run is resumable and may be stopped at any point)."""
    if not full:  # the fast version used by the tests
        return [dict(kind="reversible", affinity=0.0, attempts=200, chain_seed=0, sample_seed=0,
                     n_states=8),
                dict(kind="driven", affinity=2.0, attempts=500, chain_seed=0, sample_seed=0,
                     n_states=8)]  # fmt: skip
    jobs = []

    def add(kind, affinity, attempts, n_chain, n_sample):
        for s in range(n_sample):
            for c in range(n_chain):
                jobs.append(dict(kind=kind, affinity=affinity, attempts=attempts, chain_seed=c,
                                 sample_seed=s, n_states=30))  # fmt: skip

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
    else:  # both targets of the issue first (so a stopped run has both), then the curves
        for s in range(55):  # 110 reversible datasets: the false-positive target needs 100+
            for c in range(2):  # two graphs: each new graph costs a compilation
                jobs.append(dict(kind="reversible", affinity=0.0, attempts=200, chain_seed=c,
                                 sample_seed=s, n_states=30))  # fmt: skip
                if s < 10:  # 20 driven datasets at the power target (1 nat, 500 attempts)
                    jobs.append(dict(kind="driven", affinity=1.0, attempts=500, chain_seed=c,
                                     sample_seed=s, n_states=30))  # fmt: skip
        for aff, n in ((0.5, 500), (0.25, 500), (1.0, 200), (0.5, 200), (0.25, 200)):
            add("driven", aff, n, 2, 2)
    seen, unique = set(), []
    for j in jobs:
        if job_key(j) not in seen:
            seen.add(job_key(j))
            unique.append(j)
    return unique


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
    n = job["n_states"]
    seed = 1000 + job["chain_seed"]
    aff = None if job["kind"] == "reversible" else job["affinity"]
    if job.get("generator", "package") == "conductance":
        # unlike the package's chains: log-normal conductances, degree 3, varied escapes,
        # states renamed and reordered at random
        chain = conductance_chain(n, affinity=aff, seed=seed)
        counts = sample_counts(chain, attempts_per_source=job["attempts"],
                               seed=job["sample_seed"])  # fmt: skip
        return relabel_counts(counts, seed=seed)
    if aff is None:
        chain = reversible_chain(n, seed=seed)
    else:
        chain = driven_chain(n, affinity=aff, seed=seed)
    return sample_counts(chain, attempts_per_source=job["attempts"], seed=job["sample_seed"])


def job_key(row) -> tuple:
    return (row["kind"], float(row["affinity"]), int(row["attempts"]), int(row["chain_seed"]),
            int(row["sample_seed"]), int(row["n_states"]),
            row.get("generator") or "package")  # fmt: skip


def run(jobs, engine: Engine, out: Path | None = None, log=print, max_jobs=None) -> list[dict]:
    """Run every job not yet in ``out`` (CSV, appended row by row so a killed run resumes).

    ``max_jobs`` stops after that many new datasets (see ``main``: a fresh process per chunk).
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
        new_jobs += 1
        counts = make_counts(job)
        if engine is None:
            res = decide_g2(counts, seed=job["sample_seed"])
        else:
            res = decide(engine, counts, seed=job["sample_seed"])
        row = {**job, **res}
        rows.append(row)
        if out is not None:
            new = not out.exists()
            fields = FIELDS
            if not new:  # append in the file's own column order (older runs have fewer columns)
                with out.open() as fh:
                    fields = next(csv.reader(fh))
            with out.open("a", newline="") as fh:
                w = csv.DictWriter(fh, fields, extrasaction="ignore")
                if new:
                    w.writeheader()
                w.writerow(row)
        log(f"[{i + 1}/{len(jobs)}] {job['kind']} A={job['affinity']} n={job['attempts']} "
            f"logBF={row['log_bf']:.2f}±{row['log_bf_se']:.2f} dLOO={row['elpd_diff']:.1f}±"
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


def summarise(rows, g2_rows=()) -> list[dict]:
    """Share of datasets where each rule picks each hypothesis, per (affinity, attempts).

    G² shares come from ``g2_rows`` (the larger G²-only pass) when given, else from ``rows``.
    """
    def grouped(rs):
        out: dict = {}
        for r in rs:
            out.setdefault((float(r["affinity"]), int(r["attempts"])), []).append(r)
        return out

    if g2_rows:  # the G² columns of this table: the 30-state datasets (the other regimes have
        g2_rows = [r for r in g2_rows if int(r["n_states"]) == 30]  # their own table)
    full, g2 = grouped(rows), grouped(g2_rows or rows)
    table = []
    for key in sorted(set(full) | set(g2)):
        entry = {"affinity": key[0], "attempts": key[1]}
        for rule, col, rs in (("bf", "bf", full.get(key, [])), ("loo", "loo", full.get(key, [])),
                              ("g2", "g2_pick", g2.get(key, []))):  # fmt: skip
            entry[f"{rule}_datasets"] = len(rs)
            picks = [r[col] for r in rs]
            for h in ("nonrev", "rev", "undecided"):
                entry[f"{rule}_{h}"] = picks.count(h) / len(rs) if rs else float("nan")
        chi2 = [r["g2_p_chi2"] < 0.05 for r in g2.get(key, []) if r["g2_p_chi2"] == r["g2_p_chi2"]]
        entry["g2_chi2_datasets"] = len(chi2)
        entry["g2_chi2_nonrev"] = sum(chi2) / len(chi2) if chi2 else float("nan")
        table.append(entry)
    return table


def wilson(p: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion."""
    z = 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def markdown(table) -> str:
    lines = [
        "| affinity (nats/cycle) | attempts/source | BF datasets | BF > log 10: non-rev / "
        "< -log 10: rev / undecided | LOO: non-rev / rev / undecided | G² datasets | "
        "G² conditional p < 0.05 (95% CI) | G² chi² p < 0.05 (95% CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in table:
        def share(rule, e=e):
            if not e[f"{rule}_datasets"]:
                return "–"
            hyps = ("nonrev", "rev", "undecided")
            return " / ".join(f"{e[f'{rule}_{h}']:.0%}" for h in hyps)

        def rate(share, n):
            if not n:
                return "–"
            lo, hi = wilson(share, n)
            return f"{share:.1%} ({lo:.0%}–{hi:.0%})"

        n = e["g2_datasets"]
        g2, chi2 = rate(e["g2_nonrev"], n), rate(e["g2_chi2_nonrev"], e["g2_chi2_datasets"])
        lines.append(f"| {e['affinity']:g} | {e['attempts']} | {e['bf_datasets']} | "
                     f"{share('bf')} | {share('loo')} | {n} | {g2} | {chi2} |")  # fmt: skip
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    titles = {"bf": "log BF > log 10", "loo": "LOO diff > 2 se", "g2": "G² conditional p < 0.05"}
    for ax, rule in zip(axes, RULES, strict=True):
        for n, marker in zip(sorted({e["attempts"] for e in table}), "os^", strict=False):
            pts = sorted(
                (e["affinity"], e[f"{rule}_nonrev"], e[f"{rule}_datasets"])
                for e in table
                if e["attempts"] == n and e[f"{rule}_datasets"]
            )
            if not pts:
                continue
            x = [p[0] for p in pts]
            y = [p[1] for p in pts]
            err = np.array([wilson(p[1], p[2]) for p in pts]).T
            yerr = np.clip([np.array(y) - err[0], err[1] - np.array(y)], 0, 1)  # rounding
            ax.errorbar(x, y, yerr=yerr, marker=marker,
                        capsize=3, label=f"{n} attempts/source")  # fmt: skip
        ax.axhline(0.05, color="grey", lw=0.8, ls=":")
        ax.axhline(0.9, color="grey", lw=0.8, ls="--")
        ax.set_title(titles[rule])
        ax.set_xlabel("cycle affinity (nats, every cycle)")
    axes[0].set_ylabel("share of datasets picking non-reversible")
    axes[0].legend(fontsize=8)
    fig.suptitle("Decision rules on 30-state synthetic chains (affinity 0 = reversible)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/calibration", help="rows, table and figure go here")
    parser.add_argument("--fast", action="store_true", help="the small version the tests run")
    parser.add_argument("--rules", default="all", choices=("all", "g2"),
                        help="all three rules, or the cheap G²-only pass on more datasets")
    parser.add_argument("--summarise", action="store_true", help="only rebuild table and figure")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--draws", type=int, default=600)
    parser.add_argument("--chunk", type=int, default=10,
                        help="datasets per worker process (0: all in this process)")
    parser.add_argument("--max-jobs", type=int, help=argparse.SUPPRESS)  # a worker's share
    args = parser.parse_args(argv)
    detailed_balance.configure()  # before any JAX work: the Engine's 2 chains run in parallel
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "calibration_fast" if args.fast else "calibration"
    rows_path = out / f"{stem}_rows.csv"
    g2_path = out / f"{stem}_g2.csv"
    path = rows_path if args.rules == "all" else g2_path
    jobs = plan(not args.fast, args.rules)
    if not args.summarise and args.chunk and args.max_jobs is None and args.rules == "all":
        # Each support graph compiles new XLA code and a long process runs out of memory maps
        # (LLVM "Cannot allocate memory" after ~30 datasets), so chunks run in fresh processes.
        for _ in range(len(jobs)):  # bounded: every pass finishes at least one dataset or stops
            have = {job_key(r) for r in read_rows(path)} if path.exists() else set()
            if all(job_key(j) in have for j in jobs):
                break
            cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]),
                   "--max-jobs", str(args.chunk)]  # fmt: skip
            if subprocess.run(cmd).returncode != 0 and len(read_rows(path)) == len(have):
                print("a worker failed without finishing a dataset; stopping", flush=True)
                return 1
        args.summarise = True
    if not args.summarise:
        engine = Engine(warmup=args.warmup, draws=args.draws) if args.rules == "all" else None
        run(jobs, engine, path, log=lambda m: print(m, flush=True), max_jobs=args.max_jobs)
        if args.max_jobs is not None:
            return 0
    rows = read_rows(rows_path) if rows_path.exists() else []
    g2_rows = read_rows(g2_path) if g2_path.exists() else []
    table = summarise(rows, g2_rows)
    text = markdown(table)
    (out / f"{stem}_table.md").write_text(text)
    if g2_rows:
        g2_text = g2_table(g2_rows)
        (out / f"{stem}_g2_table.md").write_text(g2_text)
        text += "\n" + g2_text
    figure(table, out / f"{stem}_power.png")
    print(text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
