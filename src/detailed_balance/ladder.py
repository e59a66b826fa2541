"""Fit the model ladder once: one fit per model, the input of :func:`detailed_balance.compare`."""

from __future__ import annotations

from collections.abc import Iterable

from .counts import TransitionCounts
from .errors import FitError


def fit_ladder(
    counts: TransitionCounts,
    *,
    models: Iterable[str] | None = None,
    **fit_kwargs,
) -> dict:
    """Fit each model of the ladder to ``counts`` once.

    Parameters
    ----------
    counts : TransitionCounts
    models : names from :data:`detailed_balance.models.MODELS`, optional
        Which models to fit (default: all of them), fitted in the ladder's order.
    **fit_kwargs
        Passed to :func:`detailed_balance.fit` (``method``, ``prior``, ``draws``, ``seed``, ...).

    Returns
    -------
    dict
        Model name -> fit (the ArviZ object :func:`detailed_balance.fit` returns), in the
        ladder's order; pass it to :func:`detailed_balance.compare`.

    Examples
    --------
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=50, seed=0)
    >>> fits = fit_ladder(counts, method="map")
    >>> list(fits)
    ['unconstrained', 'reversible', 'nonreversible']
    """
    from .inference import fit
    from .models import MODELS

    wanted = list(MODELS) if models is None else list(models)
    unknown = [m for m in wanted if m not in MODELS]
    if unknown:
        raise FitError(f"unknown model(s) {unknown} (use {', '.join(MODELS)})")
    return {name: fit(counts, name, **fit_kwargs) for name in MODELS if name in wanted}


__all__ = ["fit_ladder"]
