"""Universality on the shipped temperature series: one landscape across temperatures and prompts?

Four real attempt logs of the ``animals`` agent on the offline model (T = 0.5, 1, 1.5 and another
few-shot template at T = 1), fitted jointly; writes universality.json/.md and figures to ``out/``.
The same as ``detailed-balance universality $(python -c ...series_paths...) --common --out out``.

    python examples/universality_series.py [OUT_DIR]
"""

import sys

from detailed_balance.formats import read_counts
from detailed_balance.universality import (
    compare_universality,
    read_labels,
    series_paths,
    write_outputs,
)

paths = series_paths()
labels = [read_labels(p) for p in paths]
reference = labels[1]  # T = 1 with the agent's own template
temperatures = [
    lab["temperature"] if lab["template"] == reference["template"] else None for lab in labels
]
result = compare_universality(
    [read_counts(p) for p in paths],
    labels=labels,
    temperatures=temperatures,
    common=True,  # the 40 sources every dataset was asked about
)
print(result.verdict)
print(write_outputs(result, sys.argv[1] if len(sys.argv) > 1 else "out"))
