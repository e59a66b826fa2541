"""Exact log evidence of the unconstrained (Dirichlet-row) model, and its exact posterior."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ..counts import TransitionCounts
from ..modeldata import ModelData, build_model_data


def log_evidence_dirichlet(
    counts: TransitionCounts | ModelData, alpha: float = 1.0, *, rest: bool = True
) -> float:
    """Exact log evidence of the unconstrained model (independent Dirichlet(alpha) rows).

    Row i's categories are its support-graph neighbours plus ``rest`` (self + rejected), as in
    ``models/unconstrained.py``. Sparse: cells with zero count contribute nothing, so the cost
    grows with the observed cells, not with states².

    log p(C) = Σ_i [lnΓ(K_i α) − lnΓ(K_i α + n_i) + Σ_{j: C_ij>0} (lnΓ(α + C_ij) − lnΓ(α))]

    Parameters
    ----------
    counts : TransitionCounts or ModelData
    alpha : float
        Dirichlet concentration of every category.
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row.

    Returns
    -------
    float
        log p(counts), natural log, with the package's per-attempt likelihood convention (no
        multinomial coefficient).

    Examples
    --------
    Two states, each row with two categories (the other state, and ``rest``): Beta integrals,
    B(4, 2) · B(3, 3) / B(1, 1)² = 1/600.

    >>> import math, pathlib, tempfile
    >>> from detailed_balance.formats import read_counts
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "counts.csv"
    >>> _ = path.write_text("source,target,count\\nA,B,3\\nA,,1\\nB,A,2\\nB,,2\\n")
    >>> math.isclose(log_evidence_dirichlet(read_counts(path)), math.log(1 / 600))
    True
    """
    if alpha <= 0:
        raise ValueError("alpha must be > 0 (alpha = 0 is an improper prior with no evidence)")
    data = counts if isinstance(counts, ModelData) else build_model_data(counts, rest=rest)
    n = data.n_states
    n_cat = np.bincount(data.arc_source, minlength=n) + (1 if data.has_rest else 0)
    n_row = data.row_totals()
    cells = np.concatenate([data.arc_count[data.cell_arc], data.rest_count[data.cell_rest]])
    rows = n_row > 0
    k_alpha = n_cat[rows] * alpha
    total = np.sum(gammaln(k_alpha) - gammaln(k_alpha + n_row[rows]))
    total += np.sum(gammaln(alpha + cells) - gammaln(alpha))
    return float(total)


def dirichlet_posterior_draws(
    data: ModelData, alpha: float = 1.0, *, chains: int = 2, draws: int = 1000, seed: int = 0
) -> dict:
    """Exact iid posterior draws of ``models/unconstrained.py``'s latent sites.

    Given the counts, row i's probabilities are Dirichlet(alpha + counts), and its Gamma total,
    which the likelihood does not see, keeps its prior Gamma(K_i alpha): ``g = p × total``. With
    :func:`log_evidence_dirichlet` this makes the unconstrained model an exact test bed for the
    numerical estimators (what NUTS would give at unlimited ESS).

    Parameters
    ----------
    data : ModelData
        The counts and their support graph.
    alpha : float
        Dirichlet concentration of every category.
    chains, draws : int
        Shape of the returned draws.
    seed : int
        Seed of the draws.

    Returns
    -------
    dict
        ``g_arc`` (chains, draws, 2E) and, with a rest category, ``g_rest`` (chains, draws, S).
    """
    rng = np.random.default_rng(seed)
    shape = (chains, draws)
    g_arc = rng.gamma(alpha + data.arc_count, size=shape + (len(data.arc_count),))
    g_rest = rng.gamma(alpha + data.rest_count, size=shape + (data.n_states,))
    row = np.zeros(shape + (data.n_states,))
    np.add.at(row, (..., data.arc_source), g_arc)
    n_cat = np.bincount(data.arc_source, minlength=data.n_states).astype(float)
    if data.has_rest:
        row += g_rest
        n_cat += 1
    total = rng.gamma(np.maximum(n_cat, 1) * alpha, size=shape + (data.n_states,))
    scale = total / np.where(row > 0, row, 1.0)
    out = {"g_arc": g_arc * scale[..., data.arc_source]}
    if data.has_rest:
        out["g_rest"] = g_rest * scale
    return out
