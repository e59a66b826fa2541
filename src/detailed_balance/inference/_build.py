"""The ArviZ object a fit returns: groups, coordinates and attributes."""

from __future__ import annotations

import sys
import threading

import numpy as np

from .. import _arviz
from ..modeldata import ModelData


def _import_in_background() -> threading.Thread | None:
    """Start importing what ``_build`` needs on a thread; join it before calling ``_build``.

    xarray, and under arviz 0.23 arviz itself, which imports matplotlib.pyplot and scipy.stats:
    ~0.7-1.2 s of a process's first fit (arviz 1.x is never imported by a fit). Started before
    the chains run: XLA releases the GIL while they do, so the import no longer waits for them
    (``docs/readme/bench-fit.md``, round 10). ``None`` when everything is imported already.
    While it runs, the import's ``warnings.catch_warnings`` (arviz 0.23 announces its 1.x
    refactor with a FutureWarning) also holds for the caller's thread: only FutureWarnings are
    affected, and fits issue none.
    """
    wanted = ["xarray"] if _arviz.is_datatree() else ["xarray", "arviz"]
    if all(name in sys.modules for name in wanted):
        return None

    def run():
        try:
            import xarray  # noqa: F401

            if "arviz" in wanted:
                _arviz._az()
        except Exception:  # noqa: BLE001 - the caller's own import reports it, in its thread
            pass

    thread = threading.Thread(target=run, name="detailed-balance-imports", daemon=True)
    thread.start()
    return thread


def _build(counts, data: ModelData, posterior, loglik, stats, attrs, dims):
    """``dims``: each site's axis names, as its model declares them (``site_dims``)."""
    import xarray as xr

    states = list(counts.states)
    edge_labels = [
        f"{states[i]}<->{states[j]}"
        for i, j in zip(
            data.arc_source[: data.n_edges], data.arc_target[: data.n_edges], strict=True
        )
    ]
    arc_labels = [
        f"{states[i]}->{states[j]}" for i, j in zip(data.arc_source, data.arc_target, strict=True)
    ]
    # the model's cycle space holds the fundamental cycles of these edges
    cycles = data.cycles.basis.nodes
    cycle_labels = [">".join(states[i] for i in nodes + nodes[:1]) for nodes in cycles]
    coords = {"state": states, "edge": edge_labels, "cycle": cycle_labels, "arc": arc_labels}

    def dims_of(name, value, lead=("chain", "draw")):
        extra = value.ndim - len(lead)
        if extra == 0:
            return lead
        if len(dims.get(name, ())) == extra:
            return lead + dims[name]
        return lead + tuple(f"{name}_dim_{i}" for i in range(extra))

    def dataset(values: dict, lead=("chain", "draw")):
        variables = {k: (dims_of(k, np.asarray(v), lead), np.asarray(v)) for k, v in values.items()}
        used = {d for dims, _ in variables.values() for d in dims}
        return xr.Dataset(variables, coords={k: v for k, v in coords.items() if k in used})

    cell_source = np.concatenate([data.arc_source[data.cell_arc], data.cell_rest])
    cell_target = np.concatenate([data.arc_target[data.cell_arc], np.full(len(data.cell_rest), -1)])
    cell_count = np.concatenate([data.arc_count[data.cell_arc], data.rest_count[data.cell_rest]])
    cell_labels = [
        f"{states[s]}->{states[t] if t >= 0 else '<rest>'}"
        for s, t in zip(cell_source, cell_target, strict=True)
    ]
    cell = {"cell": cell_labels}
    constant = {
        "source": (("pair",), counts.source),
        "target": (("pair",), counts.target),
        "count": (("pair",), counts.count),
        "self_count": (("state",), counts.self_count),
        "rejected": (("state",), counts.rejected),
        "cell_source": (("cell",), cell_source),
        "cell_target": (("cell",), cell_target),
    }
    if data.features is not None:
        constant["features"] = (("state", "feature"), np.asarray(data.features))
    groups = {
        "posterior": dataset(posterior),
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "cell"), loglik)}, coords=cell),
        "sample_stats": dataset(stats),
        "observed_data": xr.Dataset({"y": (("cell",), cell_count)}, coords=cell),
        "constant_data": xr.Dataset(constant, coords={"state": states, **cell}),
    }
    return _arviz.make(groups, attrs)
