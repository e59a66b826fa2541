"""Synthetic datasets drawn from the joint models' own parameterisation, with known truth."""

from __future__ import annotations

import numpy as np

from ..counts import TransitionCounts
from ..errors import DataError


def synthetic_joint(
    n_states: int = 20,
    betas=(1.0, 0.5, 2.0),
    *,
    width: float = 1.0,
    degree: float = 4.0,
    attempts_per_source: int = 300,
    edge_mean: float = -1.0,
    edge_sd: float = 0.5,
    independent=(),
    drop: float = 0.0,
    seed: int = 0,
) -> tuple[list[TransitionCounts], dict]:
    """Datasets drawn from the joint models' own parameterisation, with known truth.

    Dataset k: the states (all, or all but a random fraction ``drop``), its own random support
    graph of mean degree ``degree``, edge terms ``u ~ Normal(edge_mean, edge_sd)``, field
    ``beta_k phi`` with ``phi ~ Normal(0, width)`` shared, or ``beta_k phi'_k`` with a fresh
    field of the same width for ``k in independent``; rows are softmax(arc logits, rest = 0),
    with ``attempts_per_source`` attempts from every state (a budget design).

    Parameters
    ----------
    n_states : int
        Number of states of the union.
    betas : sequence of float
        beta_k of each dataset.
    width, degree : float
        Field sd and mean degree of each support graph.
    attempts_per_source : int
        Attempts from every state of every dataset.
    edge_mean, edge_sd : float
        Mean and sd of the edge terms.
    independent : sequence of int
        Datasets with their own field instead of the shared one.
    drop : float
        Fraction of states each dataset lacks.
    seed : int
        Seed of everything.

    Returns
    -------
    counts : list of TransitionCounts
        One per dataset.
    truth : dict
        ``phi`` (union field), ``phi_k`` (list of per-dataset fields over the union, NaN where
        absent), ``betas``, ``independent``.
    """
    from ..synthetic import random_graph

    if n_states < 3:
        raise DataError("a synthetic joint dataset needs at least 3 states")
    rng = np.random.default_rng(seed)
    states = [f"s{i:03d}" for i in range(n_states)]
    phi = rng.normal(0.0, width, n_states)
    counts, fields = [], []
    for k, beta in enumerate(betas):
        own = rng.normal(0.0, width, n_states) if k in set(independent) else phi
        keep = np.ones(n_states, dtype=bool)
        if drop > 0:
            keep[rng.choice(n_states, int(drop * n_states), replace=False)] = False
        members = np.flatnonzero(keep)
        a, b = random_graph(len(members), degree, rng)
        a, b = members[a], members[b]
        f = beta * own
        u = rng.normal(edge_mean, edge_sd, len(a))
        src, tgt = np.concatenate([a, b]), np.concatenate([b, a])
        logit = np.concatenate([u, u]) + 0.5 * (f[src] - f[tgt])
        recs_s, recs_t, recs_c = [], [], []
        for i in members:
            arcs = np.flatnonzero(src == i)
            z = np.concatenate([logit[arcs], [0.0]])
            p = np.exp(z - z.max())
            draw = rng.multinomial(attempts_per_source, p / p.sum())
            for j, c in zip(tgt[arcs], draw[:-1], strict=True):
                if c:
                    recs_s.append(states[i]), recs_t.append(states[j]), recs_c.append(c)
            if draw[-1]:
                recs_s.append(states[i]), recs_t.append(None), recs_c.append(draw[-1])
        counts.append(
            TransitionCounts.from_records(
                recs_s, recs_t, recs_c, states=[states[i] for i in members]
            )
        )
        fk = np.full(n_states, np.nan)
        fk[members] = f[members]
        fields.append(fk)
    truth = {"phi": phi, "phi_k": fields, "betas": np.asarray(betas), "independent": independent}
    return counts, truth
