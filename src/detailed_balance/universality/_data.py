"""The K datasets aligned on the union of their states: the arrays the joint models read."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..counts import TransitionCounts
from ..errors import DataError
from ..modeldata import ModelData, build_model_data, gauge_reference


class JointData(NamedTuple):
    """What the joint models read (see ``models/_joint.py``).

    states : the union of the datasets' states (sorted).
    datasets : one ModelData per dataset (its own arcs, attempts, rejections, gauge).
    index : per dataset, the union index of each of its states.
    union : ModelData of the summed counts over the union (the shared field's gauge).
    identified : per dataset, whether each state's potential is identified by its own data.
    counts : the datasets' counts (in the order given).
    """

    states: tuple[str, ...]
    datasets: tuple[ModelData, ...]
    index: tuple[np.ndarray, ...]
    union: ModelData
    identified: tuple[np.ndarray, ...]
    counts: tuple[TransitionCounts, ...]


def union_counts(counts_list) -> TransitionCounts:
    """The datasets' counts summed over the union of their states.

    Parameters
    ----------
    counts_list : sequence of TransitionCounts
        One per dataset; states matched by label.

    Returns
    -------
    TransitionCounts
    """
    src, tgt, cnt = [], [], []
    for c in counts_list:
        labels = np.asarray(c.states, dtype=object)
        src += labels[c.source].tolist() + list(c.states) + list(c.states)
        tgt += labels[c.target].tolist() + list(c.states) + [None] * c.n_states
        cnt += c.count.tolist() + c.self_count.tolist() + c.rejected.tolist()
    cnt = np.asarray(cnt, dtype=np.int64)
    keep = cnt > 0
    src = [s for s, k in zip(src, keep, strict=True) if k]
    tgt = [t for t, k in zip(tgt, keep, strict=True) if k]
    states = sorted(set().union(*(c.states for c in counts_list)))
    return TransitionCounts.from_records(src, tgt, cnt[keep], states=states)


def common_sources(counts_list) -> list[str]:
    """States that have attempts in every dataset, sorted.

    Parameters
    ----------
    counts_list : sequence of TransitionCounts
        One per dataset; states matched by label.

    Returns
    -------
    list of str
    """
    sets = [{s for s, n in zip(c.states, c.attempts, strict=True) if n > 0} for c in counts_list]
    return sorted(set.intersection(*sets))


def build_joint_data(counts_list, *, rest: bool = True) -> JointData:
    """Arrays for the joint models; :class:`DataError` on fewer than two or disjoint datasets.

    Parameters
    ----------
    counts_list : sequence of TransitionCounts
        One per dataset; states matched by label.
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row.

    Returns
    -------
    JointData
    """
    counts_list = tuple(counts_list)
    if len(counts_list) < 2:
        raise DataError(f"a joint fit needs at least two datasets, got {len(counts_list)}")
    union = union_counts(counts_list)
    position = {s: i for i, s in enumerate(union.states)}
    index = tuple(np.array([position[s] for s in c.states], dtype=np.int64) for c in counts_list)
    shared = np.zeros(union.n_states, dtype=int)
    for idx in index:
        shared[idx] += 1
    if not np.any(shared >= 2):
        raise DataError("the datasets have no state in common: nothing links their potentials")
    datasets = tuple(build_model_data(c, rest=rest) for c in counts_list)
    identified = tuple(gauge_reference(c)[2] for c in counts_list)
    return JointData(
        states=tuple(union.states),
        datasets=datasets,
        index=index,
        union=build_model_data(union, rest=rest),
        identified=identified,
        counts=counts_list,
    )


def _names(labels, k: int) -> list[str]:
    if labels is None:
        return [f"D{i + 1}" for i in range(k)]
    names = [lab["name"] if isinstance(lab, dict) else str(lab) for lab in labels]
    if len(names) != k:
        raise DataError(f"{len(names)} labels for {k} datasets")
    return names
