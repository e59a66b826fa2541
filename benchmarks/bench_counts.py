"""Benchmark: building counts from a 100,000-attempt attempt log.

Times ``read_attempt_log`` and the whole ``detailed-balance counts LOG`` command (a fresh process,
imports included) against a baseline measured in the same run: a plain Python loop that parses
each line and counts (source, target) pairs in a dict, the obvious way to do it by hand.

    python benchmarks/bench_counts.py [--attempts 100000] [--states 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

from detailed_balance.formats import read_attempt_log, write_attempt_log
from detailed_balance.synthetic import reversible_chain, sample_counts


def baseline(path: Path) -> dict:
    """Plain Python: one dict increment per attempt (no validation, no dedup, no arrays)."""
    cells: dict = defaultdict(int)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("kind") != "attempt" or rec["outcome"] == "error":
                continue
            target = rec["source"] if rec["outcome"] == "self" else rec["target"]
            cells[(rec["source"], target)] += 1
    return cells


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--states", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    chain = reversible_chain(args.states, escape=0.2, seed=0)
    truth = sample_counts(chain, design="discovered", total_attempts=args.attempts, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "attempts.jsonl"
        write_attempt_log(truth, log)
        size_mb = log.stat().st_size / 1e6
        print(
            f"log: {args.attempts} attempts, {size_mb:.1f} MB, {truth.n_states} states, "
            f"{len(truth.count)} distinct moves"
        )

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            counts = read_attempt_log(log)
        cells = baseline(log)
        assert counts.summary() == truth.summary(), "the log does not give back the sampled counts"
        assert sum(cells.values()) == args.attempts

        t_base = best_of(lambda: baseline(log), args.repeat)
        t_read = best_of(lambda: read_attempt_log(log), args.repeat)
        cmd = [sys.executable, "-m", "detailed_balance.cli", "counts", str(log)]
        t_cli = best_of(lambda: subprocess.run(cmd, check=True, capture_output=True), args.repeat)
        t_import = best_of(
            lambda: subprocess.run(
                [sys.executable, "-c", "import detailed_balance.formats"],
                check=True,
                capture_output=True,
            ),
            args.repeat,
        )
    rows = [
        ("baseline: dict loop, no validation", t_base, ""),
        ("read_attempt_log", t_read, f"ratio to baseline {t_read / t_base:.2f}"),
        (
            "detailed-balance counts LOG",
            t_cli,
            f"a fresh process; Python + imports {t_import:.2f} s",
        ),
    ]
    for name, t, extra in rows:
        print(f"{name:<36} {t:6.2f} s   {extra}".rstrip())
    print(f"best of {args.repeat}; Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
