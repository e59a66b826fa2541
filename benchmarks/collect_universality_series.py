"""Collect the shipped universality series: the ``animals`` agent on the offline model.

Four attempt logs over one common set of 40 sources (a budget design, so every dataset has the
same sources): temperatures 0.5, 1.0 and 1.5 with the agent's own few-shot template, and one at
T = 1 with a different few-shot template (``animals-alt``). Sampling is untruncated (top-p 1,
top-k 0, min-p 0), so the temperature acts on the model's own distribution.

Each run is collected in rounds (half the attempts for every run first, then the rest with
resume), so an interrupted collection leaves four balanced datasets. Run from the repository::

    nice -n 15 python benchmarks/collect_universality_series.py --out-dir series/ --attempts 4000

then ``detailed-balance counts`` each log (or ship the logs gzipped). With concurrency 1 the same
command repeats the run (each request carries its own seed).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from dataclasses import dataclass

from detailed_balance.collect import AnimalAgent, Collector, LocalServer, RunConfig
from detailed_balance.collect.local import LOCAL_MODEL

# the 40 animals most often reached in the shipped discovered-design dataset (animals.jsonl.gz)
SOURCES = (
    "elephant monkey gorilla mouse beaver whale rabbit rat bear lion salmon sheep turkey "
    "turtle cow bat crocodile camel bird frog ostrich alligator kangaroo pig penguin dog horse "
    "chicken dolphin giraffe rhinoceros owl eagle elk sea_lion orangutan raccoon hamster goat "
    "octopus"
)
SOURCES = tuple(s.replace("_", " ") for s in SOURCES.split())

UNTRUNCATED = {"top_k": 0, "min_p": 0}


@dataclass(frozen=True)
class AltTemplateAnimalAgent(AnimalAgent):
    """The ``animals`` agent with another few-shot template (same vocabulary and parsing)."""

    name: str = "animals-alt"

    def prompt(self, state: str) -> str:
        return f"Animals of the same kind:\nwolf -> fox\nduck -> goose\ntrout -> salmon\n{state} ->"


RUNS = (
    # (file stem, agent, temperature)
    ("animals-T1.0", AnimalAgent(), 1.0),
    ("animals-T0.5", AnimalAgent(), 0.5),
    ("animals-T1.5", AnimalAgent(), 1.5),
    ("animals-alt-T1.0", AltTemplateAnimalAgent(), 1.0),
)


def _interrupt(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", required=True)
    p.add_argument("--attempts", type=int, default=4000, help="attempts per dataset")
    p.add_argument("--rounds", type=int, default=2, help="collect in this many balanced rounds")
    p.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    p.add_argument("--concurrency", type=int, default=1)
    args = p.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    server = LocalServer(None, n_threads=args.threads).start()
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the server on kill
    try:
        for r in range(1, args.rounds + 1):
            target = args.attempts * r // args.rounds
            for stem, agent, temperature in RUNS:
                path = os.path.join(args.out_dir, stem + ".jsonl")
                cfg = RunConfig(
                    agent=agent.name,
                    template_hash=agent.template_hash(),
                    api=agent.api,
                    model=LOCAL_MODEL,
                    design="budget",
                    attempts=target,
                    temperature=temperature,
                    top_p=1.0,
                    seed=0,
                    sources=SOURCES,
                    extra_body=UNTRUNCATED,
                )
                t0 = time.time()
                collector = Collector(
                    agent, cfg, [server.base_url], concurrency=args.concurrency, progress=False
                )
                result = collector.run(path, resume=os.path.exists(path))
                print(f"[{time.time() - t0:.0f} s] {result.summary()}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
