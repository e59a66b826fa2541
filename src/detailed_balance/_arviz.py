"""The one module that calls ArviZ, so arviz 0.23 (``InferenceData``) and 1.x (``xarray.DataTree``)
both work. arviz is imported lazily: importing arviz 1.x takes seconds, too slow for CLI start-up.

Fit objects are built by hand from xarray Datasets (the same code for NUTS, MAP and SVI) and only
wrapped in the version's container here. Groups are read with ``obj["posterior"]``-style access
through :func:`group`, which works on both containers.
"""

from __future__ import annotations

import warnings

import numpy as np

#: the credible level of every interval the package reports ("94% HDI", ArviZ's default)
HDI_PROB = 0.94
#: how the intervals are named in text, tables and figures
HDI_LABEL = f"{round(100 * HDI_PROB)}% HDI"


def _az():
    with warnings.catch_warnings():
        # arviz 0.23 announces its 1.x refactor with a FutureWarning on import
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def is_datatree() -> bool:
    """True under arviz 1.x (fits are ``xarray.DataTree``).

    Decided by version: arviz 1.x still answers ``az.InferenceData`` (with a warning, as DataTree).
    Read from the installed metadata: under 1.x a fit is built without importing arviz at all.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = version("arviz").split(".")[0]
    except PackageNotFoundError:  # pragma: no cover - arviz without metadata
        major = _az().__version__.split(".")[0]
    return int(major) >= 1


def import_in_background():
    """Start importing the fit container's heavy dependencies on a thread; join it before
    :func:`make`.

    xarray, and under arviz 0.23 what arviz imports (matplotlib.pyplot, scipy.stats): ~0.7-1.2 s
    of a process's first fit. Started before the chains run, which release the GIL
    (``docs/readme/bench-fit.md``, round 10). arviz itself is left to the caller's thread:
    it announces its 1.x refactor with a FutureWarning, and ``warnings.catch_warnings`` on a
    second thread would race the caller's warning filters (it is process-wide, not thread-safe).
    Returns ``None`` when everything is imported already.
    """
    import sys
    import threading

    wanted = ["xarray"] if is_datatree() else ["xarray", "scipy.stats", "matplotlib.pyplot"]
    if all(name in sys.modules for name in wanted):
        return None

    def run():
        import importlib

        for name in wanted:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the caller's own import reports it, in its thread
                return

    thread = threading.Thread(target=run, name="detailed-balance-imports", daemon=True)
    thread.start()
    return thread


def make(groups: dict, attrs: dict | None = None):
    """Wrap ``{group name: xarray.Dataset}`` into the installed ArviZ's container, with attrs."""
    attrs = dict(attrs or {})
    if not is_datatree():
        for ds in groups.values():
            ds.attrs.update(attrs)
        return _az().InferenceData(**groups)
    import xarray as xr

    tree = xr.DataTree.from_dict(dict(groups))
    tree.attrs.update(attrs)
    for ds_name in groups:
        tree[ds_name].attrs.update(attrs)
    return tree


def group(obj, name: str):
    """One group as an ``xarray.Dataset`` (works on InferenceData and DataTree)."""
    g = obj[name]
    return g.to_dataset() if hasattr(g, "to_dataset") else g


def has_group(obj, name: str) -> bool:
    """Whether the fit has group ``name``."""
    if hasattr(obj, "children"):  # DataTree
        return name in obj.children
    return name in obj.groups()


def attrs(obj) -> dict:
    """Global attributes of a fit (stored on every group; read from the posterior)."""
    out = dict(getattr(obj, "attrs", {}) or {})
    if not out:
        out = dict(group(obj, "posterior").attrs)
    return out


def to_netcdf(obj, path) -> None:
    """Save a fit as one netCDF file (groups as netCDF groups), atomically."""
    import os

    path = str(path)
    tmp = path + ".tmp"
    obj.to_netcdf(tmp, engine=_engine())
    os.replace(tmp, path)


def from_netcdf(path):
    """Load a fit saved by :func:`to_netcdf` into memory (the file is closed afterwards)."""
    path = str(path)
    if not is_datatree():
        obj = _az().from_netcdf(path, engine=_engine())
        obj.load() if hasattr(obj, "load") else None
        return obj
    import xarray as xr

    tree = xr.open_datatree(path, engine=_engine())
    tree = tree.load()
    tree.close()
    return tree


def _engine() -> str:
    try:
        import h5netcdf  # noqa: F401

        return "h5netcdf"
    except ImportError:  # pragma: no cover - netCDF4 as a fallback
        return "netcdf4"


def rhat_ess(ds) -> tuple[dict, dict]:
    """Rank-normalised split R-hat and bulk ESS of every variable of a posterior Dataset.

    Returns two dicts ``{var: ndarray}`` with the variable's non-sample shape.
    """
    az = _az()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant (gauge-fixed) entries
        r = az.rhat(ds)
        e = az.ess(ds)
    r = group(r, "posterior") if not hasattr(r, "data_vars") else r
    e = group(e, "posterior") if not hasattr(e, "data_vars") else e
    return (
        {k: np.asarray(r[k].values, dtype=float) for k in ds.data_vars},
        {k: np.asarray(e[k].values, dtype=float) for k in ds.data_vars},
    )


def hdi(values: np.ndarray, prob: float = HDI_PROB) -> np.ndarray:
    """Highest-density interval of draws along the first axis: shape (2, ...) (lower, upper).

    Plain numpy (the shortest interval holding ``prob`` of the sorted draws), identical under
    every ArviZ version.
    """
    x = np.sort(np.asarray(values, dtype=float), axis=0)
    n = x.shape[0]
    k = max(int(np.floor(prob * n)), 1)
    if n == 1 or k >= n:
        return np.stack([x[0], x[-1]])
    widths = x[k:] - x[: n - k]
    lo = np.argmin(widths, axis=0)
    lower = np.take_along_axis(x, lo[None], axis=0)[0]
    upper = np.take_along_axis(x, (lo + k)[None], axis=0)[0]
    return np.stack([lower, upper])


def loo(obj, var_name: str = "y") -> dict:
    """PSIS-LOO as a plain dict with the same names under every ArviZ version.

    Keys: ``elpd``, ``se``, ``p``, ``pareto_k`` (array), ``elpd_i`` (array), ``warning`` (bool).
    """
    az = _az()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = az.loo(obj, pointwise=True, var_name=var_name)
    get = res.get if hasattr(res, "get") else lambda k, d=None: getattr(res, k, d)
    elpd = get("elpd_loo", None)
    if elpd is None:
        elpd = get("elpd")
    p = get("p_loo", None)
    if p is None:
        p = get("p")
    pointwise = get("loo_i", None)
    if pointwise is None:
        pointwise = get("elpd_i")
    return {
        "elpd": float(elpd),
        "se": float(get("se")),
        "p": float(p),
        "pareto_k": np.asarray(get("pareto_k")).ravel(),
        "elpd_i": np.asarray(pointwise).ravel(),
        "warning": bool(get("warning", False)),
    }
