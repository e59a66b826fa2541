"""TransitionCounts: what was observed, row by row (array code plus state labels).

Every reader (CSV table, attempt log, native file, the paper's JSON layouts) ends in
:meth:`TransitionCounts.from_records`, so validation and aggregation live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError
from .graph import component_labels, undirected_edges


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
    """Counts must be finite non-negative integers; name the first bad row."""
    raw = np.asarray(counts, dtype=object)
    values = np.empty(len(raw), dtype=float)
    for k, v in enumerate(raw.tolist()):
        try:
            values[k] = float(v)
        except (TypeError, ValueError):
            raise DataError(f"count {v!r} is not a number", file=file, row=row_of(k)) from None
    problems = [
        (~np.isfinite(values), "is not finite"),
        (values < 0, "is negative"),
        (values != np.round(values), "is not a whole number"),
    ]
    for mask, what in problems:
        if mask.any():
            k = int(np.flatnonzero(mask)[0])
            raise DataError(f"count {raw[k]!r} {what}", file=file, row=row_of(k))
    return values.astype(np.int64)
