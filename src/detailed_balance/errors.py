"""Errors a user can act on: one line that names the file, the row and the problem."""

from __future__ import annotations


class DetailedBalanceError(Exception):
    """Base class for every error this package raises on bad input or failed work."""


class DataError(DetailedBalanceError, ValueError):
    """Bad input data (counts, logs, features); the message names where and what.

    Parameters
    ----------
    problem : str
        What is wrong, in one line.
    file : str, optional
        The file it came from.
    row : int, optional
        The row (line, or entry of a JSON file), 1-based.

    Examples
    --------
    >>> raise DataError("count must be a whole number >= 0, got -1", file="counts.csv", row=3)
    Traceback (most recent call last):
    ...
    detailed_balance.errors.DataError: counts.csv, row 3: count must be a whole number >= 0, got -1
    """

    def __init__(self, problem: str, *, file: str | None = None, row: int | None = None):
        where = ""
        if file is not None:
            where = f"{file}"
            if row is not None:
                where += f", row {row}"
            where += ": "
        elif row is not None:
            where = f"row {row}: "
        super().__init__(f"{where}{problem}")


class FitError(DetailedBalanceError, RuntimeError):
    """A model cannot be fitted to these data (e.g. a single state)."""


class CollectionError(DetailedBalanceError, RuntimeError):
    """Collection cannot start or continue (endpoint down, log unwritable, config mismatch)."""
