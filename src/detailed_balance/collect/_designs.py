"""The collection designs: which source state attempt ``k`` starts from.

Attempt ids are fixed by the design, so a resumed run knows exactly which attempts are done:

- ``discovered`` (the paper's design) draws attempt ``k``'s source uniformly, with a generator
  seeded by ``(seed, k)``, from the states discovered so far (replayed from the log on resume);
- ``budget`` gives attempt ``k`` the source ``sources[k % n]``, the same budget per state;
- ``trajectory`` runs ``chains`` chains, attempt ``k`` being step ``k // chains`` of chain
  ``k % chains``, each step starting where the last one ended.

Each request also carries a seed derived from ``(seed, k)`` (:func:`request_seed`), so a local
model can reproduce a run.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from ..errors import CollectionError

#: The designs' names, the first being the default (the CLI's choices come from here).
DESIGNS = ("discovered", "budget", "trajectory")


def request_seed(seed: int, k: int) -> int:
    """The seed sent with attempt ``k``'s request (a 31-bit integer fixed by ``(seed, k)``)."""
    return (seed * 1_000_003 + k) % 2**31


def check_design(name: str) -> None:
    """Raise :class:`CollectionError` unless ``name`` is one of :data:`DESIGNS`."""
    if name not in DESIGNS:
        raise CollectionError(f"unknown design {name!r}; use one of {', '.join(DESIGNS)}")


class Design:
    """A design's state during a run: the states discovered and where each chain stands.

    Parameters
    ----------
    name : {"discovered", "budget", "trajectory"}
    seeds : sequence of str
        The starting states (``--sources``, else the agent's seeds); at least one.
    seed : int
        The run's seed (``discovered`` draws with it).
    chains : int
        Chains of the ``trajectory`` design.
    """

    def __init__(self, name: str, seeds: Sequence[str], *, seed: int = 0, chains: int = 1):
        check_design(name)
        self.name, self.seeds, self.seed, self.chains = name, list(seeds), seed, chains
        self.discovered = list(dict.fromkeys(self.seeds))  # in discovery order
        self._known = set(self.discovered)
        self._chain_start: dict[int, tuple[int, str]] = {
            c: (0, self.seeds[c % len(self.seeds)]) for c in range(chains)
        }

    def replay(self, records: Iterable[dict]) -> set[int]:
        """Recover the design's state from a log's records; returns the ids of done attempts.

        An attempt is done unless its last record (the last of an id wins) is an ``error``.
        """
        records = list(records)
        last: dict[int, dict] = {}
        for rec in records:
            last[int(rec["attempt"])] = rec
        done = {k for k, r in last.items() if r.get("outcome") != "error"}
        for rec in records:  # discovery order = log order, as in the original run
            if rec.get("outcome") == "transition":
                self.discover(rec["target"])
        if self.name == "trajectory":
            c = self.chains
            for chain in range(c):
                step, state = self._chain_start[chain]
                while step * c + chain in done:  # done steps of a chain form a prefix
                    rec = last[step * c + chain]
                    state = rec["target"] if rec["outcome"] in ("transition", "self") else state
                    step += 1
                self._chain_start[chain] = (step, state)
        return done

    def discover(self, state: str) -> None:
        """Add ``state`` to the discovered states (``discovered`` draws from them)."""
        if state not in self._known:
            self._known.add(state)
            self.discovered.append(state)

    def source(self, k: int) -> str:
        """The source of attempt ``k`` (``budget`` and ``discovered``)."""
        if self.name == "budget":
            return self.seeds[k % len(self.seeds)]
        rng = random.Random(self.seed * 1_000_003 + k)
        return self.discovered[rng.randrange(len(self.discovered))]

    def chain_start(self, chain: int) -> tuple[int, str]:
        """The next step of ``chain`` and the state it starts from (``trajectory``)."""
        return self._chain_start[chain]
