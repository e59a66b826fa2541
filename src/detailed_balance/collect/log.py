"""The attempt log writer: append-only JSONL, one line per attempt, safe against ``kill -9``.

Each record is written with a single ``write`` of one whole line and flushed at once, so a killed
process leaves at most one torn last line (cut off on resume) and never loses a written attempt.
``fsync`` runs at most every ``fsync_every`` seconds and at close (power-loss safety without a disk
round trip per attempt). The run's configuration is the first line; resuming with another
configuration is refused. Counting is done by :func:`detailed_balance.formats.read_attempt_log`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import CollectionError

# Operational settings that may change between a run and its resumption.
NOT_COMPARED = ("attempts",)


def read_log_records(path: str | Path) -> tuple[dict | None, list[dict]]:
    """The run line (or None) and attempt records of a plain-JSONL log, for resuming a run.

    A torn last line (no trailing newline, from a killed writer) is ignored; any other bad line is
    an error naming its row.
    """
    from ..errors import DataError
    from ..formats import _parse_lines

    path = str(path)
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")[:-1]  # what follows the last newline is torn or empty
    try:
        _, values, _ = _parse_lines(lines, path, skip_bad_last=False)
    except DataError as exc:
        raise CollectionError(f"{exc}; cannot resume this log") from None
    run, records = None, []
    for obj in values:
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if kind == "run":
            run = obj
        elif kind == "attempt":
            records.append(obj)
    return run, records


def _describe_difference(old: dict, new: dict) -> str:
    keys = sorted(
        k for k in set(old) | set(new) if k not in NOT_COMPARED and old.get(k) != new.get(k)
    )
    return "; ".join(f"{k}: log has {old.get(k)!r}, now {new.get(k)!r}" for k in keys)


def check_log(path: str, config: dict, *, resume: bool) -> tuple[dict | None, list[dict]]:
    """Check that ``path`` may be written (new) or resumed (same configuration).

    Returns the run line and attempt records of an existing log, or ``(None, [])`` for a new one.
    """
    if path.endswith(".gz"):
        raise CollectionError(f"{path}: write a plain .jsonl log (gzip it when the run is done)")
    exists = os.path.exists(path) and os.path.getsize(path) > 0
    if exists and not resume:
        raise CollectionError(
            f"{path} already exists: pass --resume to continue it, or choose another --out"
        )
    if not exists:
        return None, []
    run, records = read_log_records(path)
    if run is None:
        raise CollectionError(f"{path}: no run line (first line); cannot check the configuration")
    diff = _describe_difference(run.get("config", {}), config)
    if diff:
        raise CollectionError(
            f"{path}: --resume with a different configuration is refused ({diff})"
        )
    return run, records


class AttemptLog:
    """Open (or resume) an attempt log and append records.

    Parameters
    ----------
    path : str or Path
        A plain ``.jsonl`` file (gzip it afterwards for shipping).
    config : dict
        The run configuration (no secrets); stored as the first line.
    run_id : str
        Used for a new log; a resumed log keeps its own.
    resume : bool
        Continue an existing log (refused if its configuration differs).
    """

    def __init__(
        self,
        path: str | Path,
        config: dict,
        run_id: str,
        *,
        resume: bool = False,
        fsync_every: float = 1.0,
    ):
        self.path = str(path)
        self.config = config
        self.fsync_every = fsync_every
        self.records: list[dict] = []
        run, self.records = check_log(self.path, config, resume=resume)
        exists = run is not None
        self.created = not exists
        if exists:
            self.run_id = run["run_id"]
            self._truncate_torn_tail()
        else:
            self.run_id = run_id
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab", buffering=0)
            if not exists:
                self._write({"kind": "run", "run_id": self.run_id, "config": config})
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise CollectionError(
                f"cannot write the attempt log {self.path}: {exc.strerror or exc}"
            ) from None
        self._last_sync = time.monotonic()

    def _truncate_torn_tail(self) -> None:
        with open(self.path, "rb+") as fh:
            data = fh.read()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):
                fh.truncate(keep)

    def _write(self, obj: dict) -> None:
        # One write() of a whole line on an unbuffered file: a kill leaves whole lines only.
        self._fh.write((json.dumps(obj, ensure_ascii=False) + "\n").encode())

    def append(self, record: dict) -> None:
        """Append one attempt record (flushed now; fsynced at most every ``fsync_every`` s)."""
        try:
            self._write(record)
            now = time.monotonic()
            if now - self._last_sync >= self.fsync_every:
                os.fsync(self._fh.fileno())
                self._last_sync = now
        except OSError as exc:
            raise CollectionError(
                f"writing the attempt log {self.path} failed: {exc.strerror or exc}; "
                "the lines already written are intact, rerun with --resume"
            ) from None
        self.records.append(record)

    def close(self) -> None:
        if not self._fh.closed:
            try:
                os.fsync(self._fh.fileno())
            finally:
                self._fh.close()

    def __enter__(self) -> AttemptLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
