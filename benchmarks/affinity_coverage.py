"""Coverage of the non-reversible model's 94% HDIs of cycle affinities, on driven chains.

Twelve driven chains with known truth (uniform drive on every fundamental cycle; per-cycle drives
drawn at random, sparse, or from a random edge flow; a steep potential; sparse data; states
relabelled so the fitted cycle basis differs from the generator's), each fitted by NUTS under
several priors on the cycle flow (all isotropic on the cycle space, so basis-invariant: only the
prior of the global scale tau differs). The true affinity of every fundamental cycle of the
*fitted* basis is the sum of the true log T(fwd)/T(bwd) along it. The table gives, per prior, the
fraction of those true affinities inside their 94% HDI (non-zero ones, and zero ones), the mean
HDI width, and the fit time.

    python benchmarks/affinity_coverage.py                       # full study (about 20 min)
    python benchmarks/affinity_coverage.py --quick               # 4 chains, one prior
    python benchmarks/affinity_coverage.py --priors normal:1 cauchy:0.5
    python benchmarks/affinity_coverage.py --sample-seed 1000      # other datasets, same chains
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from detailed_balance.models import FieldPrior

from detailed_balance import TransitionCounts
from detailed_balance.inference import fit, fit_draws, hdi
from detailed_balance.modeldata import build_model_data
from detailed_balance.synthetic import driven_chain, sample_counts

HDI = 0.94


def relabel(counts: TransitionCounts, seed: int) -> tuple[TransitionCounts, dict]:
    """The counts with states renamed and listed in a random order; and new name -> old name."""
    rng = np.random.default_rng(seed)
    name = {s: f"x{len(counts.states) - k:03d}" for k, s in enumerate(counts.states)}
    order = [name[counts.states[k]] for k in rng.permutation(counts.n_states)]
    st = np.array([name[s] for s in counts.states], dtype=object)
    n = counts.n_states
    src = np.concatenate([st[counts.source], st, st])
    tgt = np.concatenate([st[counts.target], st, np.full(n, None, dtype=object)])
    cnt = np.concatenate([counts.count, counts.self_count, counts.rejected])
    keep = cnt > 0
    out = TransitionCounts.from_records(src[keep], tgt[keep], cnt[keep], states=order)
    return out, {name[s]: s for s in counts.states}


def cycle_drive(n: int, seed: int, kind: str, **kw) -> np.ndarray:
    """Per-fundamental-cycle affinities of a chain built like ``driven_chain(n, seed=seed)``."""
    from detailed_balance.graph import CycleSpace

    space = CycleSpace(n, *driven_chain(n, seed=seed, degree=kw.get("degree", 4)).edges)
    rng = np.random.default_rng(1000 + seed)
    c = space.n_cycles
    if kind == "normal":  # iid N(0, 1) per fundamental cycle
        return rng.normal(0.0, 1.0, c)
    if kind == "one":  # a single driven cycle, 2 nats; every other cycle reversible
        out = np.zeros(c)
        out[rng.integers(c)] = 2.0
        return out
    if kind == "half":  # half the cycles at 1.5 nats, half at zero
        return np.where(rng.random(c) < 0.5, 1.5, 0.0)
    if kind == "signs":  # |A| uniform in (0.5, 2), random sign
        return rng.uniform(0.5, 2.0, c) * rng.choice([-1.0, 1.0], c)
    if kind == "flow":  # a random edge flow N(0, 0.7²) on every edge (not chord-aligned)
        return space.affinity(rng.normal(0.0, 0.7, space.n_edges))
    raise ValueError(kind)


# (label, n_states, affinity (scalar or drive kind), attempts per source, seed, extra)
CHAINS = [
    ("uniform 1.0", 10, 1.0, 400, 1, {}),
    ("uniform 0.5", 15, 0.5, 1000, 2, {}),
    ("uniform 1.0 sparse", 20, 1.0, 100, 3, {}),
    ("uniform 2.0", 12, 2.0, 300, 4, {}),
    ("uniform 1.0 degree 3", 25, 1.0, 200, 5, {"degree": 3}),
    ("per-cycle N(0,1)", 15, "normal", 500, 6, {}),
    ("one cycle 2.0", 15, "one", 500, 7, {}),
    ("random edge flow", 15, "flow", 500, 8, {}),
    ("half at 1.5", 20, "half", 300, 9, {}),
    ("uniform 1.0 relabelled", 15, 1.0, 500, 10, {"relabel": True}),
    ("random signs", 12, "signs", 800, 11, {}),
    ("uniform 1.0 steep V", 15, 1.0, 500, 12, {"width": 2.0}),
]
QUICK = [0, 5, 7, 9]


def make(row, sample_offset: int = 0):
    label, n, aff, attempts, seed, extra = row
    degree = extra.get("degree", 4)
    if isinstance(aff, str):
        aff = cycle_drive(n, seed, aff, degree=degree)
    chain = driven_chain(
        n, affinity=aff, seed=seed, degree=degree, width=extra.get("width", 1.0)
    )
    counts = sample_counts(chain, attempts_per_source=attempts, seed=seed + sample_offset)
    original = {s: s for s in counts.states}
    if extra.get("relabel"):
        counts, original = relabel(counts, seed)
    return chain, counts, original


def true_affinity(chain, counts, original) -> np.ndarray:
    """True affinity of each fundamental cycle of the basis the fit uses."""
    space = build_model_data(counts).cycles
    idx = chain.index_of([original[s] for s in counts.states])
    t = chain.dense()
    log_ratio = np.log(t[idx[space.a], idx[space.b]]) - np.log(t[idx[space.b], idx[space.a]])
    return space.affinity(log_ratio)


def parse_prior(text: str) -> FieldPrior:
    tail, scale = text.split(":")
    return FieldPrior(cycle_tail=tail, cycle_scale=float(scale))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--priors", nargs="+", default=["normal:1", "normal:0.3", "cauchy:1"],
                    help="cycle priors TAIL:SCALE (tau ~ Half-TAIL(SCALE))")  # fmt: skip
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--quick", action="store_true", help="4 chains only")
    ap.add_argument("--sample-seed", type=int, default=0,
                    help="offset of the sampling seeds (other datasets)")  # fmt: skip
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = [CHAINS[k] for k in QUICK] if args.quick else CHAINS
    priors = {p: parse_prior(p) for p in args.priors}
    print(f"{len(rows)} driven chains, NUTS 2 chains x {args.draws} draws ({args.draws} warmup)")
    print(f"{'chain':24s} {'S':>3s} {'E':>3s} {'C':>3s}  " + "  ".join(f"{p:>16s}" for p in priors))
    hits = {p: {"nonzero": [], "zero": [], "width": [], "per_chain": [], "seconds": 0.0}
            for p in priors}  # fmt: skip
    same = []  # Wald coverage on these very datasets (those with every arc seen)
    for row in rows:
        chain, counts, original = make(row, args.sample_seed)
        truth = true_affinity(chain, counts, original)
        data = build_model_data(counts)
        wald = wald_inside(chain, counts, original)
        same += [] if wald is None else wald.tolist()
        cells = []
        for p, prior in priors.items():
            t0 = time.perf_counter()
            idata = fit(counts, "nonreversible", prior=prior, draws=args.draws,
                        warmup=args.draws, chains=2, seed=row[4])  # fmt: skip
            hits[p]["seconds"] += time.perf_counter() - t0
            d = fit_draws(idata, "cycle_affinity")
            d = d.reshape(-1, d.shape[-1])
            lo, hi = hdi(d, HDI)
            inside = (lo <= truth) & (truth <= hi)
            nz = np.abs(truth) > 1e-9
            hits[p]["nonzero"] += inside[nz].tolist()
            hits[p]["zero"] += inside[~nz].tolist()
            hits[p]["width"] += (hi - lo).tolist()
            hits[p]["per_chain"].append((inside[nz].sum(), nz.sum()))
            z = ~nz
            cells.append(f"{inside[nz].sum():3d}/{nz.sum():<3d} {inside[z].sum():2d}/{z.sum():<3d}")
        print(f"{row[0]:24s} {data.n_states:3d} {data.n_edges:3d} {data.n_chords:3d}  "
              + "  ".join(f"{c:>16s}" for c in cells), flush=True)  # fmt: skip
    print("\ncoverage of true affinities by 94% HDIs (non-zero | zero), mean HDI width, fit time;")
    print("[90% interval: bootstrap over chains, whose cycles share data and are not independent]")
    rng = np.random.default_rng(0)
    for p, h in hits.items():
        nz, z = np.array(h["nonzero"]), np.array(h["zero"])
        per = np.array(h["per_chain"])  # (chains, 2): covered, total non-zero
        boot = per[rng.integers(0, len(per), (2000, len(per)))].sum(axis=1)
        lo, hi = np.quantile(boot[:, 0] / np.maximum(boot[:, 1], 1), [0.05, 0.95])
        zero = f"{z.mean():.3f} of {len(z)}" if len(z) else "-"
        print(f"  {p:14s} non-zero {nz.mean():.3f} of {len(nz):4d} [{lo:.3f}, {hi:.3f}]"
              f"   zero {zero:13s} width {np.mean(h['width']):.2f}   {h['seconds']:.0f} s")
    print(f"  baseline: Wald intervals (MLE ± 1.88 se) on the same datasets: {np.mean(same):.3f}"
          f" of {len(same)} (datasets with every arc seen);")
    print(f"            on {WALD_REPLICATES} other datasets per chain:"
          f" {wald_coverage(rows, args.sample_seed):.3f}")


WALD_REPLICATES = 20


def wald_inside(chain, counts, original) -> np.ndarray | None:
    """Which true affinities lie in MLE ± 1.88 se (the sum of empirical log count ratios around
    the cycle, delta-method se); None when an arc was never seen (no finite MLE)."""
    data = build_model_data(counts)
    e, space = data.n_edges, data.cycles
    fwd, bwd = data.arc_count[:e].astype(float), data.arc_count[e:].astype(float)
    if np.any(fwd == 0) or np.any(bwd == 0):
        return None
    mle = space.affinity(np.log(fwd / bwd))
    var = np.zeros(space.n_cycles)
    np.add.at(var, space.cycle_id, (1 / fwd + 1 / bwd)[space.edge])
    return np.abs(mle - true_affinity(chain, counts, original)) <= 1.88 * np.sqrt(var)


def wald_coverage(rows, offset: int) -> float:
    """Wald coverage over many datasets per chain: per-cycle calibration when datasets are not
    scarce (datasets with an arc never seen are skipped)."""
    inside = []
    for row in rows:
        for r in range(WALD_REPLICATES):
            w = wald_inside(*make(row, offset + 1 + r))
            inside += [] if w is None else w.tolist()
    return float(np.mean(inside))


if __name__ == "__main__":
    main()
