"""A fit on disk: one netCDF file per fit, written atomically and read back checked."""

from __future__ import annotations

from pathlib import Path

from .. import _arviz
from ..errors import DataError
from ._read import counts_from_fit

#: file suffixes read as a fit (anything else is read as counts)
FIT_SUFFIXES = (".nc", ".netcdf", ".h5")
#: the attributes every fit written by :func:`save_fit` carries (a foreign netCDF lacks them)
_FIT_ATTRS = ("model", "method", "prior", "rest", "latent_sites")


def save_fit(idata, path) -> Path:
    """Write a fit to one netCDF file (all groups and attributes), atomically.

    An interrupted or failed write leaves no file (and no partial one) under ``path``.

    Parameters
    ----------
    idata : InferenceData or DataTree
        A fit returned by :func:`detailed_balance.fit`.
    path : str or Path
        The file to write, conventionally ``*.nc``; its folder must exist.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import detailed_balance as db
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=50, seed=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fit.nc"
    >>> _ = db.save_fit(db.fit(counts, method="map"), path)
    >>> db.counts_from_fit(db.load_fit(path)).attempts.tolist()
    [50, 50, 50, 50]
    """
    from ..formats import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        try:
            _arviz.to_netcdf(idata, tmp)
        finally:
            Path(f"{tmp}.tmp").unlink(missing_ok=True)  # to_netcdf's own temporary file
    return path


def load_fit(path):
    """Read a fit written by :func:`save_fit` (or ``detailed-balance fit``) into memory.

    Anything else (a missing file, another netCDF, damaged arrays) is one :class:`DataError`.

    Parameters
    ----------
    path : str or Path
        The fit's netCDF file.

    Returns
    -------
    InferenceData or DataTree
        The fit; its counts are :func:`counts_from_fit` of it.
    """
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
    return idata
