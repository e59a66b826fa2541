"""The ArviZ object a fit returns: groups, coordinates and attributes."""

from __future__ import annotations

import numpy as np

from .. import _arviz
from ..modeldata import ModelData


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
