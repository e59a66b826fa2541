"""Shared file helpers of the readers and writers: bounded reading and atomic output."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import DataError

# A compressed input may expand to at most this many bytes, or 100 times its own size if that is
# more: a real log compresses 5-20x, a "gzip bomb" of repeated bytes about 1000x.
MIN_EXPANSION_LIMIT = 16 * 2**20
EXPANSION_RATIO = 100


def read_bytes(path) -> bytes:
    """The file's bytes, or a one-line error (missing file, folder, no permission)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror or exc})", file=str(path)) from None


def check_expansion(expanded: int, compressed: int, file: str) -> None:
    """Refuse a compressed file that expands beyond the documented limit (a "zip bomb")."""
    limit = max(MIN_EXPANSION_LIMIT, EXPANSION_RATIO * compressed)
    if expanded > limit:
        raise DataError(
            f"expands to more than {limit:,} bytes ({EXPANSION_RATIO}x its size, at least "
            f"{MIN_EXPANSION_LIMIT // 2**20} MiB): refused as a likely decompression bomb",
            file=file,
        )


def short(value, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def atomic_output(path):
    """Yield a temporary path next to ``path``; on success rename it over ``path``, else delete it.

    An interrupted or failed writer never leaves a partial file under ``path``. The file gets the
    usual permissions (0666 minus the umask), not the private 0600 of a temporary file.

    Parameters
    ----------
    path : str or Path
        The file to write.

    Yields
    ------
    Path
        The temporary file to write to.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_output(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder, not a file", file=str(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write here ({exc.strerror or exc})", file=str(path)) from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def open_atomic(path, mode: str):
    """An open file (text mode: UTF-8, no newline translation) written through atomic_output."""
    with atomic_output(path) as tmp:
        kwargs = {"newline": "", "encoding": "utf-8"} if "b" not in mode else {}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
