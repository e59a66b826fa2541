"""Fits shared by the fit and model tests (NUTS is the expensive part: fit once per session)."""

import warnings
from functools import cache

import numpy as np

from detailed_balance import TransitionCounts
from detailed_balance.inference import fit
from detailed_balance.synthetic import reversible_chain, sample_counts


def with_one_way_state(counts: TransitionCounts, name="zz", to="s00", moves=12, rejected=48):
    """Add a state that only ever leaves (to ``to``) and is never reached: unidentified."""
    st = counts.states
    src = [st[i] for i in counts.source] + [name, name]
    tgt = [st[j] for j in counts.target] + [to, None]
    cnt = list(counts.count) + [moves, rejected]
    for i, s in enumerate(st):
        src += [s, s]
        tgt += [s, None]
        cnt += [int(counts.self_count[i]), int(counts.rejected[i])]
    return TransitionCounts.from_records(src, tgt, cnt)


@cache
def main_fit(seed=0, draws=300, warmup=300, attempts=200, n_states=30):
    """NUTS fit of a reversible chain plus one one-way state; returns (chain, counts, idata)."""
    chain = reversible_chain(n_states, seed=seed)
    counts = with_one_way_state(sample_counts(chain, attempts_per_source=attempts, seed=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = fit(counts, draws=draws, warmup=warmup, chains=2, seed=seed)
    return chain, counts, idata


def truth_in_gauge(chain, counts):
    """The chain's true V on the counts' states, in the fit's gauge (one-way state: NaN)."""
    from detailed_balance.modeldata import apply_gauge, gauge_reference

    group, weight, identified = gauge_reference(counts)
    known = np.array([s in chain.states for s in counts.states])
    v = np.zeros(counts.n_states)
    v[known] = chain.V[chain.index_of([s for s in counts.states if s in chain.states])]
    v = apply_gauge(v, group, weight)
    v[~known] = np.nan
    return v, identified
