"""Readers and writers of transition counts: CSV table, attempt log, native npz, the paper's JSON.

Every reader ends in :meth:`TransitionCounts.from_records`, which validates and aggregates; the
readers only parse, and name the file and row (line, or entry of a JSON file) of a bad record.

Formats, chosen by extension unless ``format=`` is given:

==========================  ===============  ======================================================
extension                   ``format``       content
==========================  ===============  ======================================================
``.csv``                    ``"csv"``        ``source,target,count``; empty target = rejected,
                                             ``target == source`` = self-transition
``.jsonl``, ``.jsonl.gz``   ``"log"``        the attempt log written by ``collect`` (one JSON
                                             object per line)
``.npz``                    ``"npz"``        lossless native file (states in order, arrays, notes)
``.json``                   ``"json"``       the paper's layouts, detected: ``"words"`` (object:
                                             prompt word -> generated words) or ``"expressions"``
                                             (list of ``target_expression``/``source_expressions``)
==========================  ===============  ======================================================

The stage is split into private modules, one idea each, re-exported here (nothing outside
``formats`` imports them): ``_dispatch`` (:func:`read_counts`, :func:`write_counts`: choose by
extension), ``_csv`` (the counts table), ``_native`` (npz), ``_paper`` (the paper's JSON
layouts), ``_log`` (the attempt log, reader and synthetic writer; the record's schema is
:mod:`detailed_balance.attempts`), ``_json`` (strict JSON out and in, JSON Lines) and ``_io``
(size-limited reading, atomic output).
"""

from ..attempts import OUTCOMES
from ._csv import CSV_COLUMNS, read_counts_csv, write_counts_csv
from ._dispatch import READ_FORMATS, WRITE_FORMATS, detect_format, read_counts, write_counts
from ._io import EXPANSION_RATIO, MIN_EXPANSION_LIMIT, atomic_output
from ._json import json_safe, parse_json_lines, to_json
from ._log import read_attempt_log, write_attempt_log
from ._native import NATIVE_VERSION, read_native, write_native
from ._paper import INVALID_PLACEHOLDER, read_paper_expressions, read_paper_words

__all__ = [
    "CSV_COLUMNS",
    "EXPANSION_RATIO",
    "INVALID_PLACEHOLDER",
    "MIN_EXPANSION_LIMIT",
    "NATIVE_VERSION",
    "OUTCOMES",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "atomic_output",
    "detect_format",
    "json_safe",
    "parse_json_lines",
    "read_attempt_log",
    "read_counts",
    "read_counts_csv",
    "read_native",
    "read_paper_expressions",
    "read_paper_words",
    "to_json",
    "write_attempt_log",
    "write_counts",
    "write_counts_csv",
    "write_native",
]

# The functions live in private modules, where doctest (which looks only at objects defined in
# the module it is given) would not find their examples: list them for it here.
__test__ = {name: obj for name, obj in list(globals().items()) if name in __all__ and callable(obj)}
