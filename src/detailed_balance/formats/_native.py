"""The native format: a lossless ``.npz`` of the states in order, the sparse arrays and notes."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace

import numpy as np

from ..counts import TransitionCounts
from ..errors import DataError
from ._io import check_expansion, open_atomic, read_bytes, short

NATIVE_VERSION = "detailed-balance-counts/1"


def write_native(counts: TransitionCounts, path) -> None:
    """Lossless native file: states in order, the sparse arrays and the notes.

    Parameters
    ----------
    counts : TransitionCounts
        The counts to write.
    path : str or Path
        The ``.npz`` file.
    """
    arrays = {
        "format": np.array(NATIVE_VERSION),
        "states": np.array(counts.states, dtype=str),
        "source": counts.source.astype(np.int64),
        "target": counts.target.astype(np.int64),
        "count": counts.count.astype(np.int64),
        "self_count": counts.self_count.astype(np.int64),
        "rejected": counts.rejected.astype(np.int64),
        "notes": np.array(counts.notes, dtype=str),
    }
    with open_atomic(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def read_native(path) -> TransitionCounts:
    """Read a native npz file, checking every array (row = arc number, 1-based).

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file.

    Returns
    -------
    TransitionCounts
    """
    file = str(path)
    raw = read_bytes(path)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"not a native counts file (not a zip archive: {exc})", file=file) from None
    check_expansion(expanded, len(raw), file)  # zipfile never reads past a member's size
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # numpy's parser of untrusted bytes raises many kinds; none is ours
        raise DataError(f"not a native counts file ({short(str(exc), 120)})", file=file) from None
    needed = ("format", "states", "source", "target", "count", "self_count", "rejected")
    missing = [k for k in needed if k not in data]
    if missing:
        raise DataError(f"not a native counts file (missing {', '.join(missing)})", file=file)
    if data["format"].shape != () or str(data["format"]) != NATIVE_VERSION:
        raise DataError(f"unsupported native format {short(str(data['format']))}", file=file)
    ints = ("source", "target", "count", "self_count", "rejected")
    if any(data[k].ndim != 1 or not np.issubdtype(data[k].dtype, np.integer) for k in ints):
        raise DataError("index and count arrays must be 1-d integer arrays", file=file)
    texts = [k for k in ("states", "notes") if k in data]
    if any(data[k].ndim != 1 or data[k].dtype.kind != "U" for k in texts):
        raise DataError("states and notes must be 1-d arrays of text", file=file)
    states = data["states"].tolist()
    n = len(states)
    src, tgt = data["source"], data["target"]
    if (
        not (len(src) == len(tgt) == len(data["count"]))
        or data["self_count"].shape != (n,)
        or data["rejected"].shape != (n,)
    ):
        raise DataError("array lengths do not match", file=file)
    for what, idx in (("source", src), ("target", tgt)):
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{what} index {int(idx[k])} is not a state of this file", file=file, row=k + 1
            )
    if (src == tgt).any():
        k = int(np.flatnonzero(src == tgt)[0])
        raise DataError(
            "a move from a state to itself (self counts belong in self_count)", file=file, row=k + 1
        )
    labels = np.asarray(states, dtype=object)
    everyone = np.arange(n)
    counts = TransitionCounts.from_records(
        np.concatenate([labels[src], labels[everyone], labels[everyone]]),
        np.concatenate([labels[tgt], labels[everyone], np.full(n, None, dtype=object)]),
        np.concatenate([data["count"], data["self_count"], data["rejected"]]),
        states=states,
        file=file,
    )
    if len(counts.count) != len(src) or (data["count"] == 0).any():
        raise DataError("moves must be unique with positive counts", file=file)
    notes = tuple(data["notes"].tolist()) if "notes" in data else ()
    return replace(counts, notes=notes)
