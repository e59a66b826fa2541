"""What a report is made from: counts in any readable format, or a saved fit."""

from __future__ import annotations

from pathlib import Path

from ..counts import TransitionCounts
from ..errors import DataError

FIT_SUFFIXES = (".nc", ".netcdf", ".h5")


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
    if p.suffix in FIT_SUFFIXES:
        return load_fit(p)
    from ..formats import read_counts

    return read_counts(p), None


def load_fit(path) -> tuple[TransitionCounts, object]:
    """A fit written by ``detailed-balance fit``: its counts and the ArviZ object.

    Anything else (a missing file, another netCDF, damaged arrays) is one :class:`DataError`.

    Parameters
    ----------
    path : str or Path
        The fit's netCDF file.

    Returns
    -------
    counts : TransitionCounts
        The data stored with the fit.
    fit : InferenceData or DataTree
        The ArviZ object.
    """
    from .. import _arviz
    from ..inference import counts_from_fit

    file = str(path)
    if not Path(path).is_file():
        raise DataError("no such file", file=file)
    try:
        idata = _arviz.from_netcdf(path)
    except Exception as exc:  # the netCDF/HDF5 stack raises many kinds on a foreign file
        raise DataError(f"not a fit file ({type(exc).__name__}: {exc})"[:200], file=file) from None
    try:
        attrs = _arviz.attrs(idata)
        missing = [k for k in _FIT_ATTRS if k not in attrs]
        if missing or not _arviz.has_group(idata, "constant_data"):
            raise KeyError(", ".join(missing) or "constant_data")
        counts = counts_from_fit(idata)
    except Exception as exc:  # a foreign netCDF has other groups, attributes and variables
        raise DataError(
            f"not a fit written by `detailed-balance fit` (missing {exc})", file=file
        ) from None
    n, arcs = counts.n_states, (counts.source, counts.target)
    if (
        len(counts.source) != len(counts.target)
        or len(counts.count) != len(counts.source)
        or counts.self_count.shape != (n,)
        or counts.rejected.shape != (n,)
        or any(len(a) and (a.min() < 0 or a.max() >= n) for a in arcs)
    ):
        raise DataError("a damaged fit file (its counts do not fit its states)", file=file)
    return counts, idata


_FIT_ATTRS = ("model", "method", "prior", "rest", "latent_sites")
