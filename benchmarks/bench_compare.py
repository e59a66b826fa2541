"""Benchmark: a full ``detailed-balance compare`` at the paper's size (645 states, 20,000 attempts).

Synthetic chains (``synthetic.reversible_chain`` or ``driven_chain``, ~4 neighbours per state) with
``--attempts`` attempts spread evenly over the sources, written to a counts file; then, each in a
fresh process as a user runs them, with a fresh persistent compilation cache (cold: nothing
compiled before):

- the baseline: ``detailed-balance fit --model reversible`` alone (NUTS, the same settings);
- ``detailed-balance compare`` with its defaults (three models, LOO, the exact conditional G²
  test, Savage–Dickey with the two prior-sensitivity refits): wall time, the non-reversible log
  BF ± se and its method, the G² p-value, and the time relative to the one fit.

``--warm`` runs the compare a second time on the same cache (a re-run does not recompile).

    python benchmarks/bench_compare.py                        # 645 states, reversible and driven
    python benchmarks/bench_compare.py --kinds reversible --warm
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_fit import machine


def counts_file(kind: str, states: int, attempts: int, affinity: float, folder: Path):
    from detailed_balance.formats import write_counts
    from detailed_balance.synthetic import driven_chain, reversible_chain, sample_counts

    chain = (driven_chain(states, affinity=affinity, seed=0) if kind == "driven"
             else reversible_chain(states, seed=0))  # fmt: skip
    per_source = max(1, round(attempts / states))
    path = folder / f"{kind}-{states}.csv"
    counts = sample_counts(chain, attempts_per_source=per_source, seed=1)
    write_counts(counts, path)
    return path, int(counts.attempts.sum())


def timed(cmd: list[str], cache: Path, log: Path) -> float:
    """Wall seconds of ``cmd`` in a fresh process with its own compilation cache."""
    env = dict(os.environ, DETAILED_BALANCE_JAX_CACHE=str(cache))
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3 * 3600)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode}); its output: {log}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--states", type=int, default=645)
    parser.add_argument("--attempts", type=int, default=20000, help="attempts in all")
    parser.add_argument("--kinds", nargs="+", default=["reversible", "driven"],
                        choices=("reversible", "driven"))  # fmt: skip
    parser.add_argument("--affinity", type=float, default=0.5, help="driven: nats per cycle")
    parser.add_argument("--warm", action="store_true", help="also a second compare (warm cache)")
    parser.add_argument("--keep", default=None, help="keep the files here (default: a temp dir)")
    args = parser.parse_args()

    print(machine(), flush=True)
    cli = [str(Path(sys.executable).parent / "detailed-balance")]  # the console script
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for kind in args.kinds:
            path, attempts = counts_file(kind, args.states, args.attempts, args.affinity, folder)
            cache = folder / f"cache-{kind}"
            fit_cmd = [*cli, "fit", str(path), "--model", "reversible", "--quiet",
                       "--out", str(folder / f"fit-{kind}.nc")]  # fmt: skip
            fit_s = timed(fit_cmd, cache / "fit", folder / f"fit-{kind}.log")
            runs = ["cold", "warm"] if args.warm else ["cold"]
            for run in runs:
                out = folder / f"compare-{kind}"
                cmd = [*cli, "compare", str(path), "--quiet", "--out", str(out)]
                seconds = timed(cmd, cache / "compare", folder / f"compare-{kind}-{run}.log")
                result = json.loads((out / "comparison.json").read_text())
                nonrev = next(m for m in result["models"] if m["model"] == "nonreversible")
                g2 = result.get("likelihood_ratio_test") or {}
                row = {"kind": kind, "states": args.states, "attempts": attempts, "run": run,
                       "compare_s": round(seconds, 1), "fit_s": round(fit_s, 1),
                       "log_bf": nonrev["log_bf_vs_reversible"], "se": nonrev["log_bf_se"],
                       "bf_method": nonrev["bf_method"], "bf_tail": nonrev.get("bf_tail"),
                       "g2_p": g2.get("p_value")}  # fmt: skip
                print(row, flush=True)
                rows.append(row)
    print(f"\n{machine()}\n")
    print("| data | states | attempts | run | compare (s) | one reversible fit (s) | compare / fit "
          "| log BF nonrev vs rev | method | G² p |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---|---|---:|")
    for r in rows:
        bf = (f"{r['log_bf']:.2f} ± {r['se']:.2f}" if r["se"] is not None else
              "far beyond −log 10 (no number)" if r["bf_tail"] else "refused")  # fmt: skip
        p = "–" if r["g2_p"] is None else f"{r['g2_p']:.3f}"
        ratio = r["compare_s"] / r["fit_s"]
        print(f"| {r['kind']} | {r['states']} | {r['attempts']} | {r['run']} | {r['compare_s']} "
              f"| {r['fit_s']} | {ratio:.1f}× | {bf} | {r['bf_method']} | {p} |")  # fmt: skip


if __name__ == "__main__":
    main()
