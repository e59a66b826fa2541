"""Datasets on disk: their labels (model, template, temperature) and the shipped series."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def read_labels(path) -> dict:
    """Label of a dataset from an attempt log's run line (model, template, temperature...).

    Returns ``{"name", "file"}`` plus ``model``, ``agent``, ``template``, ``temperature``,
    ``top_p``, ``extra_body`` when ``path`` is a log written by ``collect``; other files give
    only the name (the file's stem).

    Parameters
    ----------
    path : str or Path
        A dataset's file.

    Returns
    -------
    dict
        The labels.
    """
    path = Path(path)
    name = path.name
    for suffix in (".gz", ".jsonl", ".csv", ".npz", ".json"):
        name = name.removesuffix(suffix)
    out = {"name": name, "file": str(path)}
    if not (path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz")):
        return out
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            first = json.loads(fh.readline() or "{}")
    except (OSError, ValueError):
        return out
    cfg = first.get("config") if isinstance(first, dict) and first.get("kind") == "run" else None
    if isinstance(cfg, dict):
        out.update(
            model=cfg.get("model"),
            agent=cfg.get("agent"),
            template=cfg.get("template_hash"),
            temperature=cfg.get("temperature"),
            top_p=cfg.get("top_p"),
            extra_body=cfg.get("extra_body"),
        )
    return out


#: The shipped temperature series (``src/detailed_balance/data/``): the ``animals`` agent on the
#: offline model (gemma-3-270m) with untruncated sampling, a budget design over 40 common sources;
#: collected by ``benchmarks/collect_universality_series.py`` (see docs/readme/universality.md).
SERIES = (
    "universality-animals-T0.5.jsonl.gz",
    "universality-animals-T1.0.jsonl.gz",
    "universality-animals-T1.5.jsonl.gz",
    "universality-animals-alt-T1.0.jsonl.gz",
)


def series_paths() -> list[Path]:
    """Paths of the shipped series' attempt logs (T = 0.5, 1, 1.5, and another template at 1).

    Returns
    -------
    list of Path
    """
    from importlib import resources

    root = resources.files("detailed_balance") / "data"
    return [Path(str(root / name)) for name in SERIES]
