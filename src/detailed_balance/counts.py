"""TransitionCounts: what was observed, row by row (array code plus state labels).

Every reader (CSV table, attempt log, native file, the paper's JSON layouts) ends in
:meth:`TransitionCounts.from_records`, so validation and aggregation live in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import numpy as np

from .attempts import state_problem
from .errors import DataError
from .graph import component_labels, undirected_edges

MAX_COUNT = 2**53  # every count, and the total: the models and kernels compute in float64
_TOO_LARGE = f"is too large (the limit is 2^53 = {MAX_COUNT:,}, the largest exact in float64)"


@dataclass(frozen=True, eq=False)
class TransitionCounts:
    """Row-conditional transition counts of an agent.

    Attributes
    ----------
    states : tuple of str
        State labels; index ``i`` of every array refers to ``states[i]``.
    source, target, count : (M,) int arrays
        Sparse directed counts ``C[source, target]`` with ``source != target``, sorted, unique, > 0.
    self_count : (S,) int array
        Replies that returned the prompt's own state.
    rejected : (S,) int array
        Replies rejected (invalid, unparseable): the paper's "escape".

    Examples
    --------
    >>> c = TransitionCounts.from_records(["A", "A", "B"], ["B", None, "A"], [3, 1, 2])
    >>> c.attempts.tolist()
    [4, 2]
    """

    states: tuple[str, ...]
    source: np.ndarray
    target: np.ndarray
    count: np.ndarray
    self_count: np.ndarray
    rejected: np.ndarray
    notes: tuple[str, ...] = field(default=(), compare=False)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        sources,
        targets,
        counts=None,
        *,
        states=None,
        file: str | None = None,
        first_row: int = 1,
        rows=None,
    ) -> TransitionCounts:
        """Aggregate ``(source, target, count)`` records; target ``None`` or ``""`` = a rejection.

        Vectorised: building counts costs one ``np.unique`` over the records, not a Python loop.
        Duplicate records are summed (and a note says so). ``states`` fixes the state order and
        may add states never seen; a source or target outside it is an error. Errors name record
        ``k`` as row ``first_row + k``, or as ``rows[k]`` when a reader skipped lines.
        """
        src = np.asarray(sources, dtype=object)
        tgt = np.asarray(targets, dtype=object)
        if src.shape != tgt.shape or src.ndim != 1:
            raise DataError("sources and targets must be 1-d and of equal length", file=file)
        n_rec = len(src)

        def row_of(k: int) -> int:
            return int(rows[k]) if rows is not None else k + first_row

        cnt = np.ones(n_rec, dtype=np.int64)
        if counts is not None:
            cnt = _check_counts(counts, file, row_of)
        if len(cnt) != n_rec:
            raise DataError("counts must have one entry per record", file=file)
        rejected_mask = np.array([t is None or t == "" for t in tgt.tolist()], dtype=bool)
        bad_src = np.array([not isinstance(s, str) or s == "" for s in src.tolist()], dtype=bool)
        if bad_src.any():
            first_bad = int(np.flatnonzero(bad_src)[0])
            raise DataError("empty source state", file=file, row=row_of(first_bad))
        # names are checked before numpy sees them: its strings drop trailing NULs ("A\0" == "A")
        seen = set(src.tolist()) | set(tgt[~rejected_mask].tolist())
        check_state_names(seen, file, lambda name: row_of(_first_record(src, tgt, name)))
        if states is not None:
            check_state_names(states, file)
        may_overflow = n_rec > 0 and int(cnt.max()) * n_rec >= 2**63
        total = sum(cnt.tolist()) if may_overflow else int(cnt.sum())
        if total > MAX_COUNT:
            raise DataError(
                f"{total:,} attempts in all: more than 2^53 = {MAX_COUNT:,}, the largest total "
                "kept exact in float64",
                file=file,
            )
        if states is None:
            labels = np.unique(np.concatenate([src, tgt[~rejected_mask]]).astype(str))
        else:
            labels = np.asarray(list(states), dtype=str)
            if len(set(labels.tolist())) != len(labels):
                raise DataError("duplicate state labels", file=file)
        if len(labels) == 0:
            raise DataError("no states (empty input)", file=file)
        order = np.argsort(labels)
        sorted_labels = labels[order]

        def index_of(values: np.ndarray, what: str, where: np.ndarray) -> np.ndarray:
            values = values.astype(str)
            pos = np.searchsorted(sorted_labels, values)
            pos = np.clip(pos, 0, len(sorted_labels) - 1)
            unknown = sorted_labels[pos] != values
            if unknown.any():
                k = int(np.flatnonzero(unknown)[0])
                problem = f"{what} {str(values[k])!r} is not a state of this file"
                raise DataError(problem, file=file, row=row_of(where[k]))
            return order[pos]

        s_idx = index_of(src, "source", np.arange(n_rec))
        t_idx = np.full(n_rec, -1, dtype=np.int64)
        if (~rejected_mask).any():
            t_idx[~rejected_mask] = index_of(
                tgt[~rejected_mask], "target", np.flatnonzero(~rejected_mask)
            )
        n = len(labels)
        rejected = np.bincount(s_idx[rejected_mask], weights=cnt[rejected_mask], minlength=n)
        is_self = (~rejected_mask) & (t_idx == s_idx)
        self_count = np.bincount(s_idx[is_self], weights=cnt[is_self], minlength=n)
        move = (~rejected_mask) & ~is_self
        key = s_idx[move] * n + t_idx[move]
        uniq, inverse = np.unique(key, return_inverse=True)
        summed = np.bincount(inverse, weights=cnt[move], minlength=len(uniq)).astype(np.int64)
        notes = []
        # duplicates among all rows (moves, self and rejected alike): target -1 = rejected
        n_dup = n_rec - len(np.unique(s_idx * (n + 1) + t_idx + 1))
        if n_dup > 0 and counts is not None:
            notes.append(f"{n_dup} duplicate (source, target) rows were summed")
        keep = summed > 0
        return cls(
            states=tuple(labels.tolist()),
            source=(uniq[keep] // n).astype(np.int64),
            target=(uniq[keep] % n).astype(np.int64),
            count=summed[keep],
            self_count=self_count.astype(np.int64),
            rejected=rejected.astype(np.int64),
            notes=tuple(notes),
        )

    # ---- basic quantities -------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def out_count(self) -> np.ndarray:
        """Transitions to other states, per source."""
        out = np.bincount(self.source, weights=self.count, minlength=self.n_states)
        return out.astype(np.int64)

    @property
    def in_count(self) -> np.ndarray:
        """Transitions arriving from other states, per target."""
        out = np.bincount(self.target, weights=self.count, minlength=self.n_states)
        return out.astype(np.int64)

    @property
    def attempts(self) -> np.ndarray:
        """Attempts per source N0 = moves + self + rejected."""
        return self.out_count + self.self_count + self.rejected

    def index(self, state: str) -> int:
        """Index of a state label (clear error if unknown)."""
        try:
            return self.states.index(state)
        except ValueError:
            raise DataError(f"unknown state {state!r}") from None

    def dense(self) -> np.ndarray:
        """Dense (S, S) count matrix with self counts on the diagonal (small problems only)."""
        m = np.zeros((self.n_states, self.n_states), dtype=np.int64)
        m[self.source, self.target] = self.count
        m[np.arange(self.n_states), np.arange(self.n_states)] = self.self_count
        return m

    # ---- graphs -------------------------------------------------------------------------------
    def support_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Undirected support graph: pairs ``a < b`` seen in either direction."""
        return undirected_edges(self.source, self.target)

    def two_way_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Pairs ``a < b`` seen in both directions."""
        n = self.n_states
        key = self.source * n + self.target
        rev = self.target * n + self.source
        both = np.isin(key, rev) & (self.source < self.target)
        return self.source[both], self.target[both]

    def two_way_components(self) -> np.ndarray:
        """Component label of each state in the two-way graph (one-way-only states are alone)."""
        a, b = self.two_way_edges()
        return component_labels(self.n_states, a, b)

    def support_components(self) -> np.ndarray:
        """Component label of each state in the undirected support graph."""
        a, b = self.support_edges()
        return component_labels(self.n_states, a, b)

    def no_incoming(self) -> list[str]:
        """States no other state moved to."""
        return [self.states[i] for i in np.flatnonzero(self.in_count == 0)]

    def no_outgoing(self) -> list[str]:
        """States that never moved to another state."""
        return [self.states[i] for i in np.flatnonzero(self.out_count == 0)]

    # ---- the paper's summary and estimators --------------------------------------------------
    def summary(self) -> dict:
        """The paper-style summary.

        ``states_sampled_more_than_once`` counts states generated (as a target, self included)
        at least twice.
        """
        generated = self.in_count + self.self_count
        comps = self.two_way_components()
        sizes = np.bincount(comps)
        return {
            "states": self.n_states,
            "attempts": int(self.attempts.sum()),
            "transition_samples": int(self.count.sum() + self.self_count.sum()),
            "moves": int(self.count.sum()),
            "self_transitions": int(self.self_count.sum()),
            "rejected": int(self.rejected.sum()),
            "unique_transitions": int(len(self.count) + (self.self_count > 0).sum()),
            "unique_moves": int(len(self.count)),
            "states_sampled_more_than_once": int((generated >= 2).sum()),
            "sources": int((self.attempts > 0).sum()),
            "two_way_pairs": int(len(self.two_way_edges()[0])),
            "largest_two_way_component": int(sizes.max()) if len(sizes) else 0,
            "two_way_components": int(len(sizes)),
            "no_incoming": len(self.no_incoming()),
            "no_outgoing": len(self.no_outgoing()),
        }

    def kernel(self, convention: str = "escape", min_samples: int = 1):
        """Empirical kernel T(g←f) as a sparse :class:`~detailed_balance.kernel.TransitionKernel`.

        Parameters
        ----------
        convention : {"escape", "within"}
            ``"escape"``: T = N / N0, rejections and self-replies are the escape (the paper's word
            task). ``"within"``: T = N / sum_{g≠f} N, self-loops dropped (the paper's expression
            task).
        min_samples : int
            Keep only states generated at least this often (the paper filters single-sample
            states with ``min_samples=2`` in the "within" convention).
        """
        from .kernel import TransitionKernel

        keep_state = (self.in_count + self.self_count) >= min_samples
        keep_state |= min_samples <= 1
        arc = keep_state[self.source] & keep_state[self.target]
        if convention == "escape":
            denom = self.attempts.astype(float)
        elif convention == "within":
            denom = np.bincount(self.source[arc], weights=self.count[arc], minlength=self.n_states)
        else:
            raise DataError(f"unknown kernel convention {convention!r} (use 'escape' or 'within')")
        src, tgt, cnt = self.source[arc], self.target[arc], self.count[arc]
        return TransitionKernel(
            states=self.states,
            source=src,
            target=tgt,
            log_prob=np.log(cnt / denom[src]),
            convention=convention,
        )

    def restrict(self, keep) -> TransitionCounts:
        """Counts on a subset of states; a move out of the subset becomes a rejection (an escape).

        ``keep`` is a boolean mask over states or an iterable of state labels. The escape
        convention keeps the kept rows' attempts unchanged, so V (with escapes) stays comparable.
        """
        keep = np.asarray(keep)
        if keep.dtype != bool:
            mask = np.zeros(self.n_states, dtype=bool)
            mask[[self.index(s) for s in keep.tolist()]] = True
            keep = mask
        if keep.shape != (self.n_states,):
            raise DataError("restrict() needs one boolean per state or a list of state labels")
        new_index = np.cumsum(keep) - 1
        src_kept = keep[self.source]
        inside = src_kept & keep[self.target]
        leaving = np.bincount(
            self.source[src_kept & ~inside],
            weights=self.count[src_kept & ~inside],
            minlength=self.n_states,
        ).astype(np.int64)
        return TransitionCounts(
            states=tuple(s for s, k in zip(self.states, keep, strict=True) if k),
            source=new_index[self.source[inside]],
            target=new_index[self.target[inside]],
            count=self.count[inside],
            self_count=self.self_count[keep],
            rejected=(self.rejected + leaving)[keep],
            notes=self.notes + (f"restricted to {int(keep.sum())} of {self.n_states} states",),
        )

    def largest_two_way_component(self) -> TransitionCounts:
        """Counts restricted to the largest connected component of the two-way graph."""
        labels = self.two_way_components()
        return self.restrict(labels == np.argmax(np.bincount(labels)))

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"TransitionCounts({s['states']} states, {s['attempts']} attempts, "
            f"{s['unique_moves']} distinct moves, {s['rejected']} rejected)"
        )


def _check_counts(counts, file: str | None, row_of) -> np.ndarray:
    """Counts must be exact non-negative integers up to ``MAX_COUNT``; name the first bad row.

    Exact means: an integer (not a bool), a float that is a whole number no larger than 2^53 (above
    that a float may already have lost digits), or text that is a whole number in decimal notation
    (``"3"``, ``"3.0"``, ``"1e3"``; read exactly, never through a float).
    """
    raw = original = np.asarray(counts)
    if raw.ndim != 1:
        raise DataError("counts must be a 1-d sequence", file=file)
    if raw.dtype.kind in "OU" and len(raw) and all(isinstance(v, str) for v in raw.tolist()):
        try:  # the fast path for text (a CSV): plain decimal integers, parsed exactly
            raw = raw.astype(str).astype(np.int64)
        except (ValueError, OverflowError):
            pass  # "3.0", "1e3", "nan"...: one by one below, exactly, naming the row
    if np.issubdtype(raw.dtype, np.integer):  # npz files, integer arrays, plain decimal text
        bad = (raw < 0) | (raw > MAX_COUNT)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(_bad_count(int(raw[k]), original[k]), file=file, row=row_of(k))
        return raw.astype(np.int64)
    out = np.empty(len(raw), dtype=np.int64)
    for k, v in enumerate(raw.tolist()):
        value, problem = _exact_count(v)
        if problem:
            raise DataError(f"count {v!r} {problem}", file=file, row=row_of(k))
        out[k] = value
    return out


def _first_record(src: np.ndarray, tgt: np.ndarray, name: str) -> int:
    hit = np.flatnonzero((src == name) | (tgt == name))
    return int(hit[0]) if len(hit) else 0


def _bad_count(v: int, shown) -> str:
    shown = shown.item() if isinstance(shown, np.generic) else shown
    return f"count {shown!r} {'is negative' if v < 0 else _TOO_LARGE}"


def _exact_count(v) -> tuple[int, str]:
    """``(value, "")`` for an exact whole count, else ``(0, what is wrong)``."""
    if isinstance(v, bool):
        return 0, "is a boolean, not a number"
    if isinstance(v, int):
        value = v
    elif isinstance(v, float):
        if not math.isfinite(v):
            return 0, "is not finite"
        if v != int(v):
            return 0, "is not a whole number"
        if abs(v) > MAX_COUNT:
            return 0, "is a float too large to be exact (write it as an integer)"
        value = int(v)
    elif isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return 0, "is not a number"
        if not d.is_finite():
            return 0, "is not finite"
        if d.adjusted() > 20:  # far beyond the limit: don't expand 1e999999 into digits
            return 0, _TOO_LARGE
        if d != d.to_integral_value():
            return 0, "is not a whole number"
        value = int(d)
    else:
        return 0, "is not a number"
    if value < 0:
        return 0, "is negative"
    if value > MAX_COUNT:
        return 0, _TOO_LARGE
    return value, ""


def check_state_names(names, file: str | None = None, row_of=None) -> None:
    r"""Raise a :class:`DataError` for the first name that cannot be a state.

    The rule is :func:`detailed_balance.attempts.state_problem`, the one the collector applies
    to replies: text of at most ``MAX_STATE_CHARS`` characters without control characters, line
    separators or lone surrogates. ``row_of(name)``, if given, names the row of a bad one.

    Parameters
    ----------
    names : iterable of str
        The state names to check.
    file : str, optional
        File named in the error message.
    row_of : callable, optional
        ``name -> row number`` named in the error message.

    Examples
    --------
    >>> check_state_names(["CAT", "x^2 + 1"])
    >>> check_state_names(["A\0"], file="t.csv")
    Traceback (most recent call last):
    detailed_balance.errors.DataError: t.csv: state 'A\x00' contains the control character '\x00'
    """
    for name in names:
        problem = state_problem(name)
        if problem:
            raise DataError(problem, file=file, row=row_of(name) if row_of else None)
