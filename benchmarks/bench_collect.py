"""Collector throughput against the loopback server with a fixed latency.

    python benchmarks/bench_collect.py [--attempts 2000] [--concurrency 64] [--latency 0.2]

Compares, in one run and against the same server process:
- the async collector (``Collector``: AsyncOpenAI, bounded concurrency, attempt log written and
  flushed per attempt), on asyncio's event loop and (``--uvloop``) on uvloop's, and
- a thread pool of the synchronous ``openai.OpenAI`` client (the paper's approach), doing the same
  requests and the same parsing, writing nothing.
Reports wall time against the ideal ``attempts * latency / concurrency``, the client's CPU time
per attempt (the server runs in its own process and is not counted), and the server process's CPU
per attempt of the async rows (from /proc, Linux only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from detailed_balance.collect import AnimalAgent, Collector, RunConfig
from detailed_balance.testing.server import LoopbackServer

MODEL = "loopback-model"


def bench_async(server, agent, attempts, concurrency, out, loop="asyncio") -> dict:
    cfg = RunConfig(
        agent=agent.name,
        template_hash=agent.template_hash(),
        api=agent.api,
        model=MODEL,
        design="budget",
        attempts=attempts,
        sources=("bear", "cat", "dog", "fox", "lion", "wolf"),
    )
    collector = Collector(
        agent,
        cfg,
        [server.base_url],
        concurrency=concurrency,
        progress=False,
    )
    if loop == "uvloop":  # uvloop is not a dependency: only this benchmark row needs it
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    s0 = server_cpu_s(server)
    try:
        result = collector.run(out)
    finally:
        asyncio.set_event_loop_policy(None)
    assert result.attempts_done == attempts, result.summary()
    return {
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "server_cpu_s": server_cpu_s(server) - s0,
        "done": result.attempts_done,
    }


def server_cpu_s(server) -> float:
    """CPU seconds the server process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{server.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_threads(server, agent, attempts, concurrency) -> dict:
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="loopback", max_retries=0)
    sources = ("bear", "cat", "dog", "fox", "lion", "wolf")

    def one(k: int):
        resp = client.completions.create(
            model=MODEL,
            prompt=agent.prompt(sources[k % 6]),
            max_tokens=agent.max_tokens,
            temperature=1.0,
            stop=list(agent.stop),
            seed=k,
        )
        return agent.parse(resp.choices[0].text)

    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
        done = sum(1 for _ in pool.map(one, range(attempts)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    client.close()
    return {"wall_s": wall, "cpu_s": cpu, "done": done}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attempts", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--repeats", type=int, default=3, help="runs per client (median reported)")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument("--uvloop", action="store_true", help="also each collector row on uvloop")
    p.add_argument("--no-threads", action="store_true", help="skip the thread-pool row")
    args = p.parse_args(argv)
    agent = AnimalAgent()
    ideal = args.attempts * args.latency / args.concurrency
    runs: dict[str, list[dict]] = {}
    with LoopbackServer(latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        bench_async(server, agent, 64, 8, os.path.join(tmp, "warmup.jsonl"))  # imports, sockets
        for rep in range(args.repeats):  # interleaved, so slow spells of the machine hit all rows
            for loop in ("asyncio", "uvloop") if args.uvloop else ("asyncio",):
                name = "async collector (AsyncOpenAI + log)" + (
                    ", uvloop" if loop == "uvloop" else ""
                )
                out = os.path.join(tmp, f"run{rep}-{loop}.jsonl")
                runs.setdefault(name, []).append(
                    bench_async(server, agent, args.attempts, args.concurrency, out, loop)
                )
            if not args.no_threads:
                runs.setdefault("thread pool of sync OpenAI client", []).append(
                    bench_threads(server, agent, args.attempts, args.concurrency)
                )
    print(
        f"{args.attempts} attempts, latency {args.latency:g} s, concurrency {args.concurrency}: "
        f"ideal {ideal:.2f} s (the floor with whole rounds is "
        f"{math.ceil(args.attempts / args.concurrency) * args.latency:.2f} s); "
        f"{args.repeats} runs per client; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"Python {sys.version.split()[0]}\n"
    )
    print(
        "| client | wall (s), median of runs | vs ideal | each run (s) | CPU per attempt (ms) "
        "| server CPU per attempt (ms) |"
    )
    print("|---|---|---|---|---|---|")
    rows = {}
    for name, rs in runs.items():
        walls = [r["wall_s"] for r in rs]
        wall = statistics.median(walls)
        cpu = 1e3 * statistics.median(r["cpu_s"] for r in rs) / args.attempts
        scpu = 1e3 * statistics.median(r.get("server_cpu_s", math.nan) for r in rs) / args.attempts
        rows[name] = {"wall_s": wall, "vs_ideal": wall / ideal, "cpu_ms_per_attempt": cpu,
                      "runs": rs}  # fmt: skip
        each = ", ".join(f"{w:.2f}" for w in walls)
        print(f"| {name} | {wall:.2f} | {wall / ideal:.3f} | {each} | {cpu:.2f} | {scpu:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"ideal_s": ideal, **vars(args), "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
