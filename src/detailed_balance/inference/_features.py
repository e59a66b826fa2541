"""State features for the GP prior: checked arrays, read from .npy or .csv."""

from __future__ import annotations

import numpy as np

from ..counts import TransitionCounts
from ..errors import DataError


def check_features(features, counts: TransitionCounts) -> np.ndarray:
    """Features as a finite (S, F) float array with one row per state, or :class:`DataError`.

    Parameters
    ----------
    features : array_like
        (S, F) or (S,) state features, rows in the counts' state order.
    counts : TransitionCounts

    Returns
    -------
    ndarray
        (S, F) float array.
    """
    try:
        x = np.asarray(features, dtype=float)
    except (TypeError, ValueError):
        raise DataError("features must be numbers (a matrix with one row per state)") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != counts.n_states:
        rows = x.shape[0] if x.ndim >= 1 else 0
        raise DataError(f"features have {rows} rows but the counts have {counts.n_states} states")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"features of state {counts.states[i]!r} (row {i + 1}) contain NaN or inf")
    return x


def read_features(path, counts: TransitionCounts) -> np.ndarray:
    """Read state features for the GP prior.

    Parameters
    ----------
    path : str or Path
        ``.npy`` (rows in the counts' state order) or ``.csv`` with a ``state`` column (any order;
        the other columns are the features).
    counts : TransitionCounts

    Returns
    -------
    ndarray
        (S, F) float array, rows in the counts' state order.
    """
    path = str(path)
    if path.endswith(".npy"):
        try:
            return check_features(np.load(path, allow_pickle=False), counts)
        except DataError as exc:
            raise DataError(str(exc), file=path) from None
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read features: {exc}", file=path) from None
    import pandas as pd

    try:
        table = pd.read_csv(
            path, dtype={"state": str}, keep_default_na=False, na_values=["", "nan", "NaN"]
        )
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read features: {exc}", file=path) from None
    if "state" not in table.columns:
        raise DataError("features CSV needs a 'state' column", file=path)
    if table["state"].duplicated().any():
        dup = table["state"][table["state"].duplicated()].iloc[0]
        raise DataError(f"state {dup!r} appears twice", file=path)
    missing = sorted(set(counts.states) - set(table["state"]))
    if missing:
        raise DataError(f"no features for {len(missing)} state(s), e.g. {missing[0]!r}", file=path)
    table = table.set_index("state").loc[list(counts.states)]
    try:
        return check_features(table.to_numpy(dtype=float), counts)
    except DataError as exc:
        raise DataError(str(exc), file=path) from None
    except ValueError:
        raise DataError("feature columns must be numbers", file=path) from None
