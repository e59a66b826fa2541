"""Argument types that check an option when it is parsed, before any work starts.

Each is an ``argparse`` ``type=``: a bad value ends the command at once with one line
(``detailed-balance fit: error: argument --prior-scale: must be > 0, not -1``), instead of a
traceback or a failure after the expensive part. Kept free of numpy so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

SEED_MAX = 2**32 - 1  # JAX's PRNGKey takes a 32-bit seed


def integer(low: int | None = None, high: int | None = None):
    """An integer in ``[low, high]`` (either bound optional)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}, not {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be ≤ {high}, not {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its own messages
    return parse


def real(low: float | None = None, high: float | None = None, *, open_low: bool = False):
    """A finite number in ``[low, high]`` (``(low, high]`` with ``open_low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
        if low is not None and (value <= low if open_low else value < low):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if open_low else '≥'} {low}, not {text}"
            )
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be ≤ {high}, not {text}")
        return value

    parse.__name__ = "number"
    return parse


positive = real(0.0, open_low=True)
seed = integer(0, SEED_MAX)


def input_file(text: str) -> str:
    """An existing, readable file."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: cannot read it (permission denied)")
    return text


def output_file(*suffixes: str):
    """A file that can be written: not a folder, its folder exists and is writable, and (when
    ``suffixes`` are given) its name ends in one of them."""

    def parse(text: str) -> str:
        path = Path(text)
        if suffixes and not text.lower().endswith(suffixes):
            raise argparse.ArgumentTypeError(
                f"{text}: use a name ending in {' or '.join(suffixes)}"
            )
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
        _writable_folder(path.parent, text)
        return text

    parse.__name__ = "output file"
    return parse


def output_dir(text: str) -> str:
    """A folder that exists and is writable, or can be created (its nearest existing ancestor is
    a writable folder)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    _writable_folder(ancestor, text)
    return text


def _writable_folder(folder: Path, text: str) -> None:
    folder = folder if str(folder) else Path(".")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: folder {folder} is not writable")
