"""Cycle-walk moves over the count tables of one G² fiber (JAX, vmapped over chains).

The fiber (see ``_g2_test``): the tables with the quasi-symmetry sufficient statistics of the
observed one (edge totals C_ab + C_ba, rest counts, row totals), under the law P(C) ∝ Π 1/C!.
A move reverses one unit of flow around a directed cycle Γ of the current table x (every arc on
it has count >= 1): −1 on each arc of Γ, +1 on its reverse. Every state keeps its moves out
n_v, every edge its total: the table y stays in the fiber.

Why: fixed cycles proposed blindly are rarely movable on sparse tables (a cycle of L edges seen
once is movable with probability ~2^(1-L): 1% acceptance at 645 states); a walk along the
table's own arcs only ever finds movable cycles.

The proposal (one move), on arcs of edges that lie on a cycle (bridges carry no circulation):

1. Pick a start state with probability ∝ n_v (the same on every table of the fiber).
2. Walk without backtracking: from v, reached from p, take arc v -> w with probability
   C_vw / (n_v − C_vp), w != p (a uniform draw among v's units, redrawn while it points back
   to p; with no other unit the move ends: a dead end). The first step has no p.
3. Stop at the first state visited twice, w: the loop Γ = w -> v_1 -> ... -> v_{L-1} -> w
   (L >= 3, no backtracking) closes there; the tail from the start to w is off Γ.
4. Accept the reversal with probability min(1, A), A = Π_{j=1}^{L-1} (n_j − C(v_j -> v_{j−1})) /
   (n_j − C(v_j -> v_{j+1}) + 1) over the loop's states other than w (v_0 = v_L = w).

Exactness (involutive Metropolis–Hastings on the walk's path). Map (x, path) to (y, path'),
path' = the same tail then Γ walked backwards from w: an involution. The tail's arcs are off Γ,
so its probability is the same under x and y (its states' "back" arcs are off Γ too, and w's
back arc is the tail's last arc). Along Γ the numerators C_vw(x) (forwards under x) and
C_wv(y) = C_wv(x) + 1 (backwards under y) cancel π(y)/π(x) = Π_Γ C_vw(x) / (C_wv(x) + 1)
exactly, and w's first step has the same denominator both ways; what is left is the ratio of the
other states' denominators, A. So π(x) K(x, y) = π(y) K(y, x): the kernel is π-reversible.

Irreducibility. Two tables of the fiber differ by an integer circulation, a sum of simple
cycles conformal to it (the Graver basis of a graph's incidence matrix; Diaconis & Sturmfels
1998); moving along a conformal cycle from x only removes units from arcs x has more of, so it is
a directed cycle of x (length >= 3). The walk proposes it with positive probability (start on it
and follow it: it never backtracks) and A > 0 (each factor's numerator is at least the count of
the cycle's arc out of v_j, >= 1), so every table reaches every other.

Every chain advances one walk step or one reversal step per loop iteration, so chains run in
lock-step under ``vmap`` without waiting for each other's moves: a chain that finished its move
starts the next.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

RECORD = 40  # statistic snapshots per chain (for the autocorrelation of the statistic)
BATCH = 1024  # chains per vmapped batch: bounds memory (each chain holds its table's units)


def _bucket(n: int) -> int:
    """Round up to a power of two (>= 8): one compilation serves many graph sizes."""
    return max(8, 1 << (int(n) - 1).bit_length())


@jax.jit
def _run(slot_arc, arc_count, stat, key, moves, marks, tables):
    """Advance every chain by ``moves`` cycle moves; record the statistic at ``marks``.

    Per chain: ``slot_arc`` (N,) the arc held by each unit (unit slots grouped by source),
    ``arc_count`` (A,), ``stat`` Σ C log C, ``key`` one PRNG key. ``tables``: ``off`` (S,) first
    slot of each state, ``n_out`` (S,), ``slot_src`` (N,), ``arc_tgt`` (A,), ``arc_rev`` (A,),
    ``xlx`` (max count + 2,), ``n_slots`` (scalar, the real number of units). The last entry
    of every per-chain array is scratch: an iteration that has nothing to write there writes
    to it, so each iteration is the same few O(1) gathers and scatters per chain (branches
    under ``vmap`` would copy whole arrays).
    """
    off, n_out, slot_src, arc_tgt, arc_rev, xlx, n_slots = tables
    n_states = off.shape[0] - 1
    length = n_states + 2  # a walk revisits within S steps; the last entry is scratch
    trash_s, trash_p = n_states, length - 1
    trash_slot, trash_arc = slot_arc.shape[-1] - 1, arc_count.shape[-1] - 1
    i32 = jnp.int32

    def init(slot_arc, arc_count, stat):
        return (slot_arc, arc_count, stat.astype(jnp.float32),
                jnp.full(n_states + 1, -1, i32), jnp.zeros(n_states + 1, i32),  # stamp, pos
                jnp.zeros(length, i32), jnp.zeros(length, i32),  # path_slot, path_arc
                jnp.zeros(length, jnp.float32),  # log_a: running log acceptance along the path
                jnp.zeros(RECORD + 1, jnp.float32),  # trace
                # cur, i, reversing, j, first, last, move, it, mark, acc, flips, deads
                i32(-1), i32(0), False, i32(0), i32(0), i32(0), i32(0), i32(0), i32(0),
                jnp.float32(0.0), i32(0), i32(0))  # fmt: skip

    def body(c, bits):
        (slot_arc, arc_count, stat, stamp, pos, path_slot, path_arc, log_a, trace,
         cur, i, reversing, j, first, last, move, it, mark, acc, flips, deads) = c  # fmt: skip
        alive = move < moves  # a chain that has made its moves idles until all have
        reversing = reversing & alive
        walking = ~reversing & alive
        # (arrays are read after their scatter where possible: a read before it can make XLA
        # copy the whole array every iteration)
        # -- walk: one step (or, at a move's start, pick the start state)
        # uniform integers as 32 random bits mod n: bias below n / 2^32 (n <= a few 10^5)
        start = walking & (cur < 0)
        v = jnp.where(start, slot_src[(bits[0] % n_slots.astype(jnp.uint32)).astype(i32)],
                      jnp.maximum(cur, 0))  # fmt: skip
        slot = off[v] + (bits[1] % jnp.maximum(n_out[v], 1).astype(jnp.uint32)).astype(i32)
        arc = slot_arc[slot]
        w = arc_tgt[arc]
        trying = walking & ~start
        path_slot = path_slot.at[jnp.where(trying, i, trash_p)].set(slot)
        path_arc = path_arc.at[jnp.where(trying, i, trash_p)].set(arc)
        # -- reverse: unit j of the loop, arc v -> w, becomes v -> (the loop's previous state)
        prev = jnp.where(j > first, j - 1, last)
        a = path_arc[j]
        ra = arc_rev[a]
        slot_arc = slot_arc.at[jnp.where(reversing, path_slot[j], trash_slot)].set(
            arc_rev[path_arc[prev]]
        )
        arc_count = arc_count.at[jnp.where(reversing, a, trash_arc)].add(-1)
        arc_count = arc_count.at[jnp.where(reversing, ra, trash_arc)].add(1)
        c_a = arc_count[a] + reversing.astype(i32)  # the counts before this step
        c_r = arc_count[ra] - reversing.astype(i32)
        delta = (xlx[jnp.maximum(c_a - 1, 0)] - xlx[c_a]) + (xlx[c_r + 1] - xlx[c_r])
        stat = stat + jnp.where(reversing, delta, 0.0)
        # -- walk, continued (when walking, the reverse scatters above went to scratch)
        has_pred = i > 0
        back = arc_rev[path_arc[jnp.maximum(i - 1, 0)]]  # the arc v -> the previous state
        c_back = jnp.where(has_pred, arc_count[back], 0)
        free = n_out[v] - c_back  # units of v not pointing back
        dead = trying & (free <= 0)  # every unit of v points back: no move
        step = trying & ~dead & ~(has_pred & (arc == back))  # a unit pointing back is redrawn
        # this step's factor of the acceptance (module docstring), summed along the path
        f = jnp.where(
            has_pred,
            jnp.log(jnp.maximum(free, 1).astype(jnp.float32))
            - jnp.log((n_out[v] - arc_count[arc] + 1).astype(jnp.float32)),
            0.0,
        )
        acc_new = acc + f
        log_a = log_a.at[jnp.where(step, i, trash_p)].set(acc_new)
        stamp = stamp.at[jnp.where(walking, v, trash_s)].set(move)
        pos = pos.at[jnp.where(walking, v, trash_s)].set(i)
        closes = step & (stamp[w] == move)  # w != v: the scatter did not touch stamp[w]
        loop_at = pos[w]
        uniform = (bits[2] >> 8).astype(jnp.float32) * 2.0**-24 + 2.0**-25  # in (0, 1)
        accept = jnp.log(uniform) < acc_new - log_a[loop_at]
        flip = closes & accept
        done = (reversing & (j >= last)) | dead | (closes & ~accept)
        new_move = move + done.astype(i32)
        record = done & (new_move == marks[jnp.minimum(mark, RECORD - 1)]) & (mark < RECORD)
        trace = trace.at[jnp.where(record, mark, RECORD)].set(stat)
        moved = step & ~closes
        return (
            slot_arc, arc_count, stat, stamp, pos, path_slot, path_arc, log_a, trace,
            jnp.where(done, -1, jnp.where(start, v, jnp.where(moved, w, cur))),
            jnp.where(done, 0, jnp.where(moved, i + 1, i)),
            jnp.where(walking, flip, ~done),
            jnp.where(flip, loop_at, jnp.where(reversing, j + 1, j)),
            jnp.where(flip, loop_at, first),
            jnp.where(flip, i, last),
            new_move, it + alive.astype(i32), mark + record.astype(i32),
            jnp.where(done, 0.0, jnp.where(moved, acc_new, acc)),
            flips + flip.astype(i32), deads + dead.astype(i32),
        )  # fmt: skip

    # the loop runs until every chain has made its moves, with one scalar condition: a batched
    # condition would make JAX select every carried array after every step (whole copies)
    # one key per iteration gives every chain its 3 random words (cheaper than a key per chain)
    def loop(c):
        chains, it = c
        bits = jax.random.bits(jax.random.fold_in(key, it), (slot_arc.shape[0], 3), jnp.uint32)
        return jax.vmap(body)(chains, bits), it + 1

    out, _ = jax.lax.while_loop(
        lambda c: jnp.any(c[0][15] < moves),
        loop,
        (jax.vmap(init)(slot_arc, arc_count, stat), jnp.int32(0)),
    )
    return out[0], out[1], out[2], out[8][:, :RECORD], out[16], out[19], out[20]


class WalkFiber:
    """M chains of cycle-walk moves on one fiber (see the module docstring).

    Parameters
    ----------
    n_states : int
    source, target : (A,) int arrays
        The arcs that can move (both directions of every testable edge); arc ``k``'s reverse
        is ``k + A/2`` (mod A).
    count : (A,) int array
        The observed table on those arcs.
    seed : int
    """

    def __init__(self, n_states: int, source, target, count, seed: int):
        count = np.asarray(count, dtype=np.int64)
        n_arc = len(count)
        self.n_arc = n_arc
        self.count = count
        n_out = np.bincount(source, weights=count, minlength=n_states).astype(np.int64)
        n_slots = int(count.sum())
        # units grouped by source: slot_arc lists each arc count times, sorted by source
        order = np.argsort(source, kind="stable")
        slot_arc = np.repeat(order, count[order])
        off = np.concatenate([[0], np.cumsum(n_out)[:-1]])
        s_pad, a_pad, n_pad = _bucket(n_states + 1), _bucket(n_arc + 1), _bucket(n_slots + 1)
        half = n_arc // 2
        rev = (np.arange(n_arc) + half) % n_arc
        top = int((count + count[rev]).max()) + 2  # an arc can come to hold its edge's total
        xlx = np.zeros(_bucket(top))
        k = np.arange(1, top)
        xlx[1:top] = k * np.log(k)
        self.xlx = xlx
        self.tables = (
            _pad(off, s_pad, n_slots),
            _pad(n_out, s_pad, 0),
            _pad(source[slot_arc], n_pad, 0),
            _pad(target, a_pad, 0),
            _pad(rev, a_pad, 0),
            xlx.astype(np.float32),
            np.int32(n_slots),
        )
        self._order, self._n_pad, self._a_pad = order, n_pad, a_pad
        self.slot_arc, self.arc_count = self.state(count[None])
        self.slot_arc, self.arc_count = self.slot_arc[0], self.arc_count[0]
        self.rng = np.random.default_rng(seed)
        self.iterations = 0  # walk + reversal steps, summed over chains
        self.moves = self.flips = self.dead_ends = 0  # moves, those that changed the table

    def state(self, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chain states (``slot_arc``, ``arc_count``, padded) of tables (M, A) of this fiber."""
        count = np.asarray(count, dtype=np.int64)
        slot_arc = np.zeros((len(count), self._n_pad), dtype=np.int32)
        arc_count = np.zeros((len(count), self._a_pad), dtype=np.int32)
        for k, row in enumerate(count):
            units = np.repeat(self._order, row[self._order])  # grouped by source
            slot_arc[k, : len(units)] = units
            arc_count[k, : len(row)] = row
        return slot_arc, arc_count

    def statistic(self, arc_count: np.ndarray) -> np.ndarray:
        """Σ C log C over the moving arcs (G² / 2 up to a constant of the fiber), float64."""
        c = np.asarray(arc_count)[..., : self.n_arc].astype(np.int64)
        return np.sum(self.xlx[c], axis=-1)

    def run(self, slot_arc, arc_count, moves: int, record: bool = False):
        """``moves`` moves of each chain (rows of ``slot_arc`` / ``arc_count``), in batches.

        Returns the new ``slot_arc``, ``arc_count`` and, with ``record``, the statistic at
        :data:`RECORD` evenly spaced moves, the last at the end: (RECORD, M).
        """
        m = slot_arc.shape[0]
        n_rec = min(RECORD, moves)
        marks = np.full(RECORD, moves + 1, dtype=np.int32)  # padding: never reached
        marks[:n_rec] = np.linspace(0, moves, n_rec + 1).round()[1:]
        outs = []
        for lo in range(0, m, BATCH):
            sa, ac = slot_arc[lo : lo + BATCH], arc_count[lo : lo + BATCH]
            b = len(sa)
            stat = self.statistic(ac).astype(np.float32)
            key = jax.random.PRNGKey(int(self.rng.integers(0, 2**31 - 1)))
            res = _run(jnp.asarray(sa, jnp.int32), jnp.asarray(ac, jnp.int32),
                       jnp.asarray(stat), key, jnp.int32(moves), jnp.asarray(marks),
                       tuple(jnp.asarray(t) for t in self.tables))  # fmt: skip
            outs.append([np.asarray(r) for r in res])
            self.iterations += int(outs[-1][4].sum())
            self.flips += int(outs[-1][5].sum())
            self.dead_ends += int(outs[-1][6].sum())
            self.moves += moves * b
        slot_arc = np.concatenate([o[0] for o in outs])
        arc_count = np.concatenate([o[1] for o in outs])
        trace = np.concatenate([o[3] for o in outs]).T[:n_rec] if record else None
        return slot_arc, arc_count, trace


def _pad(x, size: int, fill) -> np.ndarray:
    x = np.asarray(x)
    dtype = np.float32 if x.dtype.kind == "f" else np.int32
    out = np.full(size, fill, dtype=dtype)
    out[: len(x)] = x
    return out
