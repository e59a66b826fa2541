"""
Make the word-task example file
===============================

Write ``data/word_task_synthetic.json``: a small synthetic file in the paper's word-task layout
(not run when the documentation is built; the file is in the repository)::

    python examples/make_word_task_file.py

The layout of the paper's published word database (Song, Cao, Luo & Zhu, arXiv:2512.10047): one
JSON object mapping each prompt word to the list of words generated from it; an invalid generation
is the placeholder ``INVALID00``; a repeat of the prompt word is a self-transition. The words are
real words whose letter values (A=1 ... Z=26) add up to 100, as in the paper's task; the
transitions are SAMPLED from a synthetic reversible chain with a known potential (not from an
LLM), with the paper's design: the seed word BUZZY, each prompt drawn uniformly from the words
found so far. The true potential is written next to it (``word_task_truth.csv``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detailed_balance.synthetic import reversible_chain, sample_counts

WORDS = (
    "BUZZY", "ATTITUDE", "WRITING", "EXCELLENT", "HOSPITAL", "DISCIPLINE", "CULTURE",
    "BOYCOTT", "TURKEY", "ANALYSIS", "WHISKEY", "LIGHTNING", "TELESCOPE", "TWISTED",
)  # fmt: skip
HERE = Path(__file__).resolve().parent


def main() -> None:
    assert all(sum(ord(c) - 64 for c in w) == 100 for w in WORDS)
    chain = reversible_chain(len(WORDS), width=1.5, degree=5, escape=0.3, seed=7)
    counts = sample_counts(chain, design="discovered", total_attempts=4000, start=0, seed=7)
    word = {s: WORDS[i] for s, i in zip(chain.states, range(len(WORDS)), strict=True)}
    rng = np.random.default_rng(7)
    db: dict[str, list[str]] = {}
    for i, s in enumerate(counts.states):
        moves = counts.source == i
        gen = np.repeat([word[counts.states[t]] for t in counts.target[moves]], counts.count[moves])
        gen = list(gen) + ["INVALID00"] * int(counts.rejected[i])
        gen += [word[s]] * int(counts.self_count[i])
        db[word[s]] = [str(g) for g in rng.permutation(gen)]
    (HERE / "data").mkdir(exist_ok=True)
    (HERE / "data" / "word_task_synthetic.json").write_text(json.dumps(db, indent=1) + "\n")
    rows = "".join(f"{word[s]},{v:.6f}\n" for s, v in zip(chain.states, chain.V, strict=True))
    (HERE / "data" / "word_task_truth.csv").write_text("state,V\n" + rows)
    print(f"wrote {len(db)} prompt words, {sum(map(len, db.values()))} generations")


if __name__ == "__main__":
    main()
