"""What every model of the ladder takes: its names (:data:`LADDER`), the arrays it reads
(support-graph arcs, rest counts, cycles, gauge: :class:`ModelData`) and its prior
(:class:`FieldPrior`). Free of JAX, so that the command line can read names and defaults from here.

For each source ``i`` with attempts, the categories are its neighbours ``j`` in the undirected
support graph (``C_ij + C_ji > 0``) and one ``rest`` category (self, rejected). Arcs ``0..E-1``
run ``a → b`` of edge ``e``, arcs ``E..2E-1`` run ``b → a``. Everything is O(edges + states).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from .counts import TransitionCounts
from .errors import FitError
from .graph import CycleSpace

#: the model ladder, in its order: no constraint, detailed balance, potential plus cycle flow
#: (the functions are :data:`detailed_balance.models.MODELS`)
LADDER = ("unconstrained", "reversible", "nonreversible")
#: how a model is fitted: NUTS sampling, MAP optimisation, SVI, MCLMC sampling
#: (:func:`detailed_balance.fit`)
METHODS = ("nuts", "map", "svi", "mclmc")
#: the methods that draw from the posterior by Markov chains (R-hat and ESS apply)
SAMPLERS = ("nuts", "mclmc")
#: NUTS's largest tree depth for the draws (numpyro's and Stan's default)
MAX_TREE_DEPTH = 10
#: NUTS's largest tree depth during warm-up for models of up to ``CAPPED_WARMUP_MAX_LATENT``
#: latent values, counted as the sampler moves them (unconstrained: the mass matrix's size)
#: (:func:`detailed_balance.fit`'s default ``warmup_tree_depth``; above, the full
#: ``MAX_TREE_DEPTH``). Warm-up starts from a unit mass matrix, under which the reversible model's
#: first 100 iterations (before the first adaptation of the diagonal) built trees of 250-650
#: leapfrog steps at 100-1,000 states, where the adapted trees take 31-127. Capped at depth 5,
#: fits at 100 and 300 states (303 and 903 latent values) took 32-45 % fewer gradients with the
#: same ESS per draw (4 seeds each); at 1,000 states (3,003) the capped fits were unreliable
#: (min ESS of log pi 15-207 against 68-216, R-hat up to 1.12; 5 seeds): short warm-up trees do
#: not follow the edge-scale funnel there (docs/readme/bench-fit.md, "Warm-up tree depth").
WARMUP_TREE_DEPTH = 5
CAPPED_WARMUP_MAX_LATENT = 1000
#: where bridge sampling refuses a model's log evidence, the estimators to try instead
#: (:func:`detailed_balance.comparison.model_evidence`'s ``fallback``; the first for the
#: hierarchical models: the Laplace fits' modes are far from their posteriors, bench-scale.md)
EVIDENCE_FALLBACKS = ("draws-smc", "laplace-smc", "laplace-ais")


@dataclass(frozen=True)
class FieldPrior:
    """Prior of the latent potential field phi and of the symmetric edge term u.

    Parameters
    ----------
    kind : {"normal", "gp", "flat"}
        Hierarchical normal (default), a Gaussian process over ``data.features``
        (squared-exponential kernel), or flat (improper; for MAP only).
    scale : float
        Prior scale of the field's spread, sigma_phi ~ HalfNormal(scale) (GP: its amplitude).
    edge_scale : float
        Spread of the edge terms, sigma_u ~ HalfNormal(edge_scale).
    edge_mean_scale : float
        Their mean, mu_u ~ Normal(0, edge_mean_scale).
    edge_trend_scale : float
        Their steepness trend, beta_u ~ Normal(0, edge_trend_scale).
    lengthscale : float
        GP lengthscale ~ LogNormal(log(lengthscale), 1), in feature units.
    cycle_scale : float
        tau ~ HalfNormal(cycle_scale), the scale of the circulating edge flow of the
        non-reversible model (nats per edge; ``models._common.cycle_flow``): a cycle of L edges has
        prior affinity sd ``tau * sqrt(L)`` given tau.
    cycle_tail : {"normal", "cauchy"}
        tau ~ HalfNormal(cycle_scale) (default) or tau ~ HalfCauchy(cycle_scale), a
        heavier-tailed scale mixture on the same cycle space.
    jitter : float
        Added to the GP covariance's diagonal.
    """

    kind: str = "normal"
    scale: float = 3.0
    edge_scale: float = 3.0
    edge_mean_scale: float = 5.0
    edge_trend_scale: float = 1.0
    lengthscale: float = 1.0
    cycle_scale: float = 1.0
    cycle_tail: str = "normal"
    jitter: float = 1e-6

    #: the field priors ``kind`` names (the command line's ``--prior`` choices)
    KINDS: ClassVar[tuple[str, ...]] = ("normal", "gp", "flat")

    def __post_init__(self):
        if self.cycle_tail not in ("normal", "cauchy"):
            raise ValueError(f"unknown cycle_tail {self.cycle_tail!r} (use 'normal' or 'cauchy')")


class ModelData(NamedTuple):
    """The counts as flat arrays in the layout every model takes (one row per arc or state).

    Each undirected edge of the support graph gives two arcs; every observed (count > 0) arc or
    rest cell is one likelihood cell. Built by :func:`build_model_data`; the shapes are in the
    field comments of the source (S states, E edges).
    """

    n_states: int
    n_edges: int
    n_chords: int
    has_rest: bool
    arc_source: np.ndarray  # (2E,)
    arc_target: np.ndarray  # (2E,)
    arc_edge: np.ndarray  # (2E,) undirected edge of each arc
    arc_count: np.ndarray  # (2E,)
    rest_count: np.ndarray  # (S,) self + rejected per source
    attempts: np.ndarray  # (S,)
    gauge_group: np.ndarray  # (S,) support-graph component
    gauge_weight: np.ndarray  # (S,) 1/|reference| on each group's reference states, else 0
    features: np.ndarray | None  # (S, F) state features for the GP prior
    cell_arc: np.ndarray  # observed arc cells (count > 0)
    cell_rest: np.ndarray  # sources with rest count > 0 (empty when has_rest is False)
    cycles: CycleSpace  # cycle space of the support graph's edge flows (n_chords = its dimension)
    flow_coordinates: str  # of the non-reversible model's flow_z (CycleSpace.flow_coordinates)

    def row_totals(self) -> np.ndarray:
        """(S,) categorical draws from each source: its arc counts, plus its rest count when the
        rest cell is modelled."""
        rows = np.bincount(self.arc_source, weights=self.arc_count, minlength=self.n_states)
        return rows + self.rest_count if self.has_rest else rows


GAUGE = (
    "V has mean zero over the reference states of each support-graph component: the largest "
    "two-way connected component inside it (all of its states when it has no two-way pair)"
)


def gauge_reference(counts: TransitionCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauge groups, weights and the ``identified`` flag of every state.

    A state's V is identified (by data, not prior) when it sits in the reference two-way
    component of its support-graph component and that component has at least two states.

    Parameters
    ----------
    counts : TransitionCounts

    Returns
    -------
    group : ndarray of int
        (S,) the support-graph component of each state.
    weight : ndarray of float
        (S,) one over the number of reference states on each component's reference states,
        else 0.
    identified : ndarray of bool
        (S,) whether the data (not the prior) determine the state's V.

    Examples
    --------
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(5, seed=0), attempts_per_source=100, seed=0)
    >>> group, weight, identified = gauge_reference(counts)
    >>> group.tolist(), weight.tolist(), bool(identified.all())
    ([0, 0, 0, 0, 0], [0.2, 0.2, 0.2, 0.2, 0.2], True)
    """
    group = counts.support_components()
    two_way = counts.two_way_components()
    n = counts.n_states
    weight = np.zeros(n)
    identified = np.zeros(n, dtype=bool)
    sizes = np.bincount(two_way, minlength=two_way.max() + 1 if n else 0)
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        comp_sizes = sizes[two_way[members]]
        best = two_way[members[np.argmax(comp_sizes)]]
        ref = members[two_way[members] == best]
        if comp_sizes.max() < 2:
            ref = members
        else:
            identified[ref] = True
        weight[ref] = 1.0 / len(ref)
    return group, weight, identified


def apply_gauge(values: np.ndarray, group: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Shift ``values`` (..., S) so each group's weighted mean is zero.

    The numpy twin of ``models._common.centre`` (which does the same inside a model, in jax).

    Parameters
    ----------
    values : array_like
        (..., S) potentials.
    group, weight : ndarray
        From :func:`gauge_reference`.

    Returns
    -------
    ndarray
        ``values`` shifted per group.

    Examples
    --------
    >>> import numpy as np
    >>> apply_gauge(np.arange(5.0), np.zeros(5, int), np.full(5, 0.2)).tolist()
    [-2.0, -1.0, 0.0, 1.0, 2.0]
    """
    values = np.asarray(values, dtype=float)
    offset = np.zeros(values.shape[:-1] + (int(np.max(group)) + 1,))
    np.add.at(offset, (..., group), values * weight)  # O(S) per draw, no dense (S, G) matrix
    return values - offset[..., group]


def build_model_data(
    counts: TransitionCounts,
    *,
    rest: bool = True,
    features: np.ndarray | None = None,
    flow_coordinates: str | None = None,
) -> ModelData:
    """Arrays for the models; raises :class:`FitError` on data no model can use.

    Parameters
    ----------
    counts : TransitionCounts
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row.
    features : ndarray, optional
        (S, F) state features for the GP prior.
    flow_coordinates : {"orthonormal", "chord"}, optional
        The coordinates of the non-reversible model's flow (site ``flow_z``): those a stored
        fit records, to read its draws; default: the rule for the size of the cycle space
        (:meth:`graph.CycleSpace.flow_coordinates`, which also refuses a value it cannot honour).

    Returns
    -------
    ModelData
    """
    if counts.n_states < 2:
        raise FitError("counts have a single state: there is no transition to model")
    a, b = counts.support_edges()
    if len(a) == 0:
        raise FitError("counts have no transition between distinct states")
    n, n_edges = counts.n_states, len(a)
    dense_key = counts.source * n + counts.target
    order = np.argsort(dense_key)

    def lookup(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        key = src * n + tgt
        pos = np.clip(np.searchsorted(dense_key[order], key), 0, max(len(order) - 1, 0))
        hit = dense_key[order][pos] == key
        return np.where(hit, counts.count[order][pos], 0)

    arc_source = np.concatenate([a, b])
    arc_target = np.concatenate([b, a])
    arc_edge = np.concatenate([np.arange(n_edges), np.arange(n_edges)])
    cycles = CycleSpace(n, a, b)
    arc_count = lookup(arc_source, arc_target)
    rest_count = counts.self_count + counts.rejected if rest else np.zeros(n, dtype=np.int64)
    group, weight, _ = gauge_reference(counts)
    if features is not None:
        features = np.asarray(features, dtype=float)
    return ModelData(
        n_states=n,
        n_edges=n_edges,
        n_chords=cycles.n_cycles,
        has_rest=rest,
        arc_source=arc_source,
        arc_target=arc_target,
        arc_edge=arc_edge,
        arc_count=arc_count,
        rest_count=rest_count,
        attempts=counts.attempts,
        gauge_group=group,
        gauge_weight=weight,
        features=features,
        cell_arc=np.flatnonzero(arc_count > 0),
        cell_rest=np.flatnonzero(rest_count > 0) if rest else np.zeros(0, dtype=np.int64),
        cycles=cycles,
        flow_coordinates=cycles.flow_coordinates(flow_coordinates),
    )


__all__ = [
    "GAUGE",
    "LADDER",
    "METHODS",
    "SAMPLERS",
    "FieldPrior",
    "ModelData",
    "apply_gauge",
    "build_model_data",
    "gauge_reference",
]
