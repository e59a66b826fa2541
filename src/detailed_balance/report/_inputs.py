"""What a report is made from: counts in any readable format, or a saved fit."""

from __future__ import annotations

from pathlib import Path

from ..counts import TransitionCounts
from ..formats import read_counts
from ..inference import FIT_SUFFIXES, counts_from_fit, load_fit


def load_input(path) -> tuple[TransitionCounts, object | None]:
    """Counts and (for a ``.nc`` fit) the ArviZ object.

    Parameters
    ----------
    path : str or Path
        A counts file in any readable format, or a fit (``.nc``).

    Returns
    -------
    counts : TransitionCounts
        The data.
    fit : InferenceData or DataTree or None
        The ArviZ object of a fit, None for plain counts.
    """
    p = Path(path)
    if p.suffix.lower() in FIT_SUFFIXES:
        idata = load_fit(p)  # checked: a foreign or damaged file is one DataError
        return counts_from_fit(idata), idata
    return read_counts(p), None
