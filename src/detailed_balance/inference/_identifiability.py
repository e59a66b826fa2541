"""What the counts cannot identify: states without attempts or seen one way, separate gauges."""

from __future__ import annotations

import warnings

import numpy as np

from ..counts import TransitionCounts
from ..modeldata import gauge_reference


class IdentifiabilityWarning(UserWarning):
    """Some potentials are bounded by the prior only, or fixed in separate gauges."""


def _warn_identifiability(counts: TransitionCounts) -> None:
    # stacklevel 4: warn, this function, fit, the _float64 wrapper -> the caller of fit
    idle = np.flatnonzero(counts.attempts == 0)
    if len(idle):
        example = ", ".join(repr(counts.states[i]) for i in idle[:3])
        warnings.warn(
            f"{len(idle)} state(s) have no attempts ({example}{', ...' if len(idle) > 3 else ''}): "
            "their potential is bounded by the prior only (unidentified)",
            IdentifiabilityWarning,
            stacklevel=4,
        )
    _, _, identified = gauge_reference(counts)
    loose = [counts.states[i] for i in np.flatnonzero(~identified & (counts.attempts > 0))]
    if loose:
        example = ", ".join(repr(s) for s in loose[:3]) + (", ..." if len(loose) > 3 else "")
        warnings.warn(
            f"{len(loose)} state(s) lie outside the largest two-way connected component of their "
            f"support component ({example}): seen one way only, their potential is bounded by the "
            "prior (identified: false in the summary)",
            IdentifiabilityWarning,
            stacklevel=4,
        )
    groups = _gauge_groups(counts)
    if len(groups) > 1:
        parts = "; ".join(
            f"component {g['group']} ({g['states']} states): "
            f"mean zero over {g['reference_states']} "
            f"reference state(s) e.g. {g['example']!r}"
            for g in groups[:5]
        )
        warnings.warn(
            f"the support graph has {len(groups)} separate components, each with its own gauge "
            f"(V differences between components are not identified): {parts}"
            + ("; ..." if len(groups) > 5 else ""),
            IdentifiabilityWarning,
            stacklevel=4,
        )


def _gauge_groups(counts: TransitionCounts) -> list[dict]:
    group, weight, identified = gauge_reference(counts)
    out = []
    for g in np.unique(group):
        ref = np.flatnonzero((group == g) & (weight > 0))
        out.append({
            "group": int(g),
            "states": int(np.sum(group == g)),
            "reference_states": int(len(ref)),
            "identified": bool(identified[ref].all()),
            "example": counts.states[int(ref[0])],
        })  # fmt: skip
    return out
