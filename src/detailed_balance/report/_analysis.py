"""The numbers behind a report: least action (point and posterior) and every diagnostic."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import diagnostics as dg
from ..counts import TransitionCounts
from ..least_action import LeastActionResult, equilibrium_discrepancy, minimise_action
from ..modeldata import gauge_reference


@dataclass
class Analysis:
    """Everything the figures and tables show (numbers only; no plotting)."""

    counts: TransitionCounts
    K: str
    source: str  # where the posterior over T came from
    point: LeastActionResult  # least action on the raw-count kernel
    posterior: LeastActionResult  # least action per posterior draw of T
    model: str | None = None
    model_V: np.ndarray | None = None  # (draws, S) the fit's V, thinned like the kernel
    equilibrium_gap: float | None = None
    cycle_affinity: np.ndarray | None = None  # (draws, C) from a non-reversible fit
    cycle_labels: list = field(default_factory=list)
    pairwise: dg.PairwiseTest | None = None
    triangles: dg.LoopTest | None = None
    basis: dg.LoopTest | None = None
    one_way: dg.OneWayBounds | None = None
    width: dict = field(default_factory=dict)
    downhill: dict | None = None
    comparison: object = None
    comparison_note: str = ""
    notes: list = field(default_factory=list)


def _thin(n_total: int, n_keep: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_total - 1, min(n_total, n_keep)).round().astype(int))


def analyse(
    counts: TransitionCounts,
    idata=None,
    *,
    K: str | Callable = "exp",
    draws: int = 1000,
    seed: int = 0,
    potential: Callable[[str], float] | None = None,
    threshold: float = 0.05,
    min_count: int = 2,
    step: Callable[[str], None] = lambda s: None,
) -> Analysis:
    """Least action (point and posterior) and every diagnostic, for counts and optionally a fit.

    Parameters
    ----------
    counts : TransitionCounts
    idata : InferenceData or DataTree, optional
        A fit of ``counts``: its posterior draws of T are used. Without it, T is drawn from the
        exact posterior of the unconstrained model (Dirichlet(1) rows; no sampler needed).
    K : {"exp", "softplus"} or callable
        The least-action kernel.
    draws : int
        Posterior draws of T (a fit's draws are thinned to this many).
    seed : int
    potential : callable, optional
        ``state -> V``: adds the downhill-fraction diagnostic.
    threshold : float
        Transitions with T above it count as strong (downhill fraction).
    min_count : int
        Pairs need this many transitions each way for the pairwise test.
    step : callable
        Called with a short description before each stage (a progress hook).

    Returns
    -------
    Analysis
        The numbers behind every figure and table of the report.
    """
    group, weight, _ = gauge_reference(counts)
    notes = []
    step("least action on the raw counts")
    point = minimise_action(counts.kernel("escape"), K)
    step("posterior over T")
    model = model_V = cyc = None
    labels: list = []
    if idata is not None:
        from .. import _arviz
        from ..inference import posterior_kernel

        attrs = _arviz.attrs(idata)
        model = attrs["model"]
        diagnostics = json.loads(attrs.get("diagnostics", "{}"))
        notes += [f"fit ({model}, {attrs['method']}): {w}" for w in diagnostics.get("warnings", [])]
        kernel = posterior_kernel(idata, counts)
        keep = _thin(kernel.log_prob.shape[0], draws)
        kernel = type(kernel)(kernel.states, kernel.source, kernel.target, kernel.log_prob[keep])
        post = _arviz.group(idata, "posterior")
        if "V" in post:
            model_V = np.asarray(post["V"].values, float).reshape(-1, counts.n_states)[keep]
        if "cycle_affinity" in post:
            cyc = np.asarray(post["cycle_affinity"].values, float)
            cyc = cyc.reshape(-1, cyc.shape[-1])[keep]
            labels = [str(c) for c in post["cycle"].values.tolist()]
        source = f"the posterior of the {model} model fit ({len(keep)} draws)"
    else:
        kernel = dg.unconstrained_posterior_kernel(counts, draws, seed=seed)
        source = (
            f"the exact posterior of the unconstrained (Dirichlet(1) rows) model, {draws} draws "
            "(no sampler needed)"
        )
    step("least action per posterior draw")
    posterior = minimise_action(kernel, K, gauge=(group, weight))
    gap = None
    if model == "reversible" and model_V is not None:
        gap = equilibrium_discrepancy(posterior, model_V, group, weight)
        if gap > 1e-4:
            notes.append(
                f"V_LA differs from the reversible model's V by up to {gap:.2g} (expected < 1e-4)"
            )
    if not np.all(posterior.converged):
        notes.append(f"least action did not converge in {int((~posterior.converged).sum())} draws")
    step("diagnostics")
    finite_v = np.where(np.isfinite(posterior.V), posterior.V, np.nan)
    pairwise = dg.pairwise_test(counts, finite_v, min_count=min_count)
    tri = dg.loop_test(counts, cycles="triangles")
    basis = dg.loop_test(counts, cycles="basis")
    one_way = dg.one_way_bounds(counts, point.V)
    width = dg.gaussian_width(finite_v[:, posterior.reference], K, S_min=posterior.S_min)
    downhill = None
    if potential is not None:
        downhill = dg.downhill_fraction(kernel, potential, threshold=threshold)
    return Analysis(
        counts=counts,
        K=point.kernel_name,
        source=source,
        point=point,
        posterior=posterior,
        model=model,
        model_V=model_V,
        equilibrium_gap=gap,
        cycle_affinity=cyc,
        cycle_labels=labels,
        pairwise=pairwise,
        triangles=tri,
        basis=basis,
        one_way=one_way,
        width=width,
        downhill=downhill,
        notes=notes,
    )
