"""The dataset shipped with the package: the offline LLM playing the ``animals`` agent."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DATASET = "animals.jsonl.gz"

#: The command that collected it (then ``gzip -9``); see docs/readme/collect.md.
REPRODUCE = (
    "detailed-balance collect --agent animals --local --local-threads 1 --attempts 10000 "
    "--concurrency 1 --seed 0 --out animals.jsonl"
)


def dataset_path() -> Path:
    """Path of the shipped attempt log (read it with ``formats.read_attempt_log``).

    Returns
    -------
    Path
        ``animals.jsonl.gz``: 10,000 attempts of the ``animals`` agent run by Gemma 3 270M.
    """
    return Path(str(resources.files("detailed_balance") / "data" / DATASET))
