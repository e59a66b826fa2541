"""The attempt log writer: append-only JSONL, one line per attempt, safe against ``kill -9``.

Each record is written whole or not at all: the line goes out in as many ``write`` calls as the
kernel needs (a full disk may take part of it), and a write that fails cuts the file back to the
last complete line before the error is raised, so the log is always readable and resumable. A
killed process leaves at most one torn last line (cut off on resume) and never loses a written
attempt. ``fsync`` runs at most every ``fsync_every`` seconds and at close (power-loss safety
without a disk round trip per attempt). Records are strict JSON: a non-finite float is written as
``null``, never as a bare ``NaN``.

A run holds an exclusive advisory lock (``flock``) on its log from opening to closing, so a second
collector on the same file (fresh or ``--resume``) is refused, naming the process that holds it.
The run's configuration is the first line; resuming with another configuration is refused.
The record's fields are :class:`detailed_balance.attempts.AttemptRecord`.
Counting is done by :func:`detailed_balance.formats.read_attempt_log`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
import warnings
from pathlib import Path

from ..attempts import attempt_problem
from ..errors import CollectionError

# The one call that writes records (a name of its own, so tests can inject short writes).
_os_write = os.write

# Operational settings that may change between a run and its resumption.
NOT_COMPARED = ("attempts",)


def read_log_records(path: str | Path) -> tuple[dict | None, list[dict]]:
    """The run line (or None) and attempt records of a plain-JSONL log, for resuming a run.

    A torn last line (no trailing newline, from a killed writer) is ignored; any other bad line is
    an error naming its row.

    Parameters
    ----------
    path : str or Path
        The attempt log.

    Returns
    -------
    run : dict or None
        The run line.
    records : list of dict
        The attempt records.
    """
    from ..errors import DataError
    from ..formats import parse_json_lines

    path = str(path)
    try:
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")[:-1]  # what follows the last newline is torn or empty
    except OSError as exc:
        raise CollectionError(
            f"cannot read the attempt log {path}: {exc.strerror or exc}"
        ) from None
    try:
        linenos, values, _ = parse_json_lines(lines, path, skip_bad_last=False)
    except DataError as exc:  # strict parsing: deep nesting is a DataError too, never recursion
        raise CollectionError(f"{exc}; cannot resume this log") from None
    run, records = None, []
    for lineno, obj in zip(linenos, values, strict=True):
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if kind == "run":
            run = obj
        elif kind == "attempt":
            problem = attempt_problem(obj)
            if problem:
                raise CollectionError(f"{path}, line {lineno}: {problem}; cannot resume this log")
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

    Parameters
    ----------
    path : str
        The attempt log.
    config : dict
        The run's configuration.
    resume : bool
        Whether an existing log may be resumed.

    Returns
    -------
    run : dict or None
    records : list of dict
    """
    if path.endswith(".gz"):
        raise CollectionError(f"{path}: write a plain .jsonl log (gzip it when the run is done)")
    if os.path.isdir(path):
        raise CollectionError(f"{path} is a folder; --out must name the attempt log file")
    exists = os.path.exists(path) and os.path.getsize(path) > 0
    if exists and not resume:
        raise CollectionError(
            f"{path} already exists: pass --resume to continue it, or choose another --out"
        )
    if not exists:
        return None, []
    run, records = read_log_records(path)
    if run is None or not isinstance(run.get("config"), dict) or "run_id" not in run:
        raise CollectionError(f"{path}: no run line (first line); cannot check the configuration")
    diff = _describe_difference(run["config"], config)
    if diff:
        raise CollectionError(
            f"{path}: --resume with a different configuration is refused ({diff})"
        )
    return run, records


def json_line(obj) -> bytes:
    """One strict-JSON line (UTF-8, newline-terminated); NaN and infinities become ``null``.

    Parameters
    ----------
    obj : object
        A JSON-serialisable value (non-finite floats allowed).

    Returns
    -------
    bytes
    """
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a non-finite float somewhere (e.g. in logprobs a server sent)
        from ..formats import json_safe  # the one NaN -> null rule (imported only when needed)

        text = json.dumps(json_safe(obj), ensure_ascii=False, allow_nan=False)
    # a lone surrogate (a reply may hold the JSON escape of one) stays an escape: valid UTF-8
    return (text + "\n").encode("utf-8", "backslashreplace")


def lock_holder(fd: int) -> str | None:
    """The pid holding a ``flock`` on the file of ``fd``, from ``/proc/locks`` (Linux), or None.

    Parameters
    ----------
    fd : int
        An open file descriptor.

    Returns
    -------
    str or None
        The holder's pid.
    """
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as fh:
            for line in fh:
                parts = line.split()
                if "->" not in parts and "FLOCK" in parts and inode in parts:
                    return parts[parts.index(inode) - 1]
    except OSError:
        pass
    return None


def _held(path: str, holder: str | None) -> str:
    who = f"process {holder}" if holder else "another process"
    return f"{path} is being written by another collector ({who}); wait for it to end or stop it"


def refuse_if_locked(path: str) -> None:
    """Raise :class:`CollectionError` naming the holder when a collector is writing ``path``.

    A probe for the command line, before it checks anything else: the run itself takes the lock
    when it opens the log (:class:`AttemptLog`).

    Parameters
    ----------
    path : str
        The attempt log.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the close below
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise CollectionError(_held(path, lock_holder(fd))) from None
    finally:
        os.close(fd)


def _open_locked(path: str) -> tuple[int, bool]:
    """Open ``path`` for appending with an exclusive ``flock``; returns ``(fd, created)``.

    A file that another process holds is refused with its pid. The lock is taken on the file the
    path names *after* locking (a holder may delete a log it created and nothing was written to).
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        try:
            fd, created = (
                os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644),
                True,
            )
        except FileExistsError:
            try:
                fd, created = os.open(path, os.O_RDWR | os.O_APPEND), False
            except FileNotFoundError:
                continue  # deleted in between: try to create it again
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                warnings.warn(
                    f"{path}: this file system has no file locks; make sure no other collector "
                    "writes this log",
                    stacklevel=3,
                )
                return fd, created
            holder = lock_holder(fd) if exc.errno in (errno.EAGAIN, errno.EACCES) else None
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise CollectionError(_held(path, holder)) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd, created
        os.close(fd)  # the file was replaced or deleted while we waited: lock the new one
    raise CollectionError(f"{path} keeps changing under the collector; is another one running?")


class AttemptLog:
    """Open (or resume) an attempt log under an exclusive lock and append records.

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
    fsync_every : float
        Seconds between ``fsync`` calls (and one at close).

    Raises
    ------
    CollectionError
        When another process holds the log, the configuration differs, or it cannot be written.
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
        if self.path.endswith(".gz") or os.path.isdir(self.path):
            check_log(self.path, config, resume=resume)  # raises the clear message
        try:
            self._fd, made = _open_locked(self.path)
        except OSError as exc:
            raise CollectionError(
                f"cannot write the attempt log {self.path}: {exc.strerror or exc}"
            ) from None
        self.created = False
        try:
            # read under the lock: what another collector wrote before it ended is seen here
            run, self.records = check_log(self.path, config, resume=resume)
            self.created = run is None
            self.run_id = run["run_id"] if run is not None else run_id
            self._end = os.fstat(self._fd).st_size
            if run is not None:
                self._truncate_torn_tail()
            else:
                self._write({"kind": "run", "run_id": self.run_id, "config": config})
            os.fsync(self._fd)
        except BaseException as exc:
            if made:  # nothing of ours is in it: leave no file behind
                self._unlink()
            os.close(self._fd)
            if isinstance(exc, OSError):
                raise CollectionError(
                    f"cannot write the attempt log {self.path}: {exc.strerror or exc}"
                ) from None
            raise
        self._closed = False
        self._last_sync = time.monotonic()

    def _unlink(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _truncate_torn_tail(self) -> None:
        size = self._end
        tail = os.pread(self._fd, min(size, 1 << 20), max(0, size - (1 << 20)))
        if tail.endswith(b"\n") or size == 0:
            return
        cut = tail.rfind(b"\n")
        if cut < 0:  # no newline in the last MiB: find the last one from the start
            data = os.pread(self._fd, size, 0)
            keep = data.rfind(b"\n") + 1
        else:
            keep = size - len(tail) + cut + 1
        os.ftruncate(self._fd, keep)
        self._end = keep

    def _write(self, obj: dict) -> None:
        """Append one whole line, or raise with the file cut back to its last complete line."""
        line = json_line(obj)
        data = memoryview(line)
        try:
            while data:
                n = _os_write(self._fd, data)
                if n <= 0:
                    raise OSError(errno.EIO, "write returned nothing")
                data = data[n:]
        except BaseException:
            try:  # a partial line must not stay: the next record would be glued to it
                os.ftruncate(self._fd, self._end)
            except OSError:
                pass
            raise
        self._end += len(line)

    def append(self, record: dict) -> None:
        """Append one attempt record, whole or not at all (fsynced every ``fsync_every`` s)."""
        try:
            self._write(record)
            now = time.monotonic()
            if now - self._last_sync >= self.fsync_every:
                os.fsync(self._fd)
                self._last_sync = now
        except OSError as exc:
            raise CollectionError(
                f"writing the attempt log {self.path} failed: {exc.strerror or exc}; "
                "the lines already written are intact, rerun with --resume"
            ) from None
        self.records.append(record)

    def discard(self) -> None:
        """Delete a new log nothing was collected into (while still holding its lock), and close."""
        if self.created and not self._closed:
            self._unlink()
        self.close()

    def close(self) -> None:
        """fsync, release the lock and close (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            os.fsync(self._fd)
        except OSError:
            pass
        finally:
            os.close(self._fd)

    def __enter__(self) -> AttemptLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
