"""Universality: do several datasets (models, prompt templates, temperatures) share one potential?

Song et al. (arXiv:2512.10047) suggest that agents learn "a class of underlying potential
functions that may transcend different LLM architectures and prompt templates". This module makes
that testable. K datasets (one :class:`TransitionCounts` each, over overlapping states, each with
its own attempts, rejections and support graph) are fitted jointly under three hypotheses
(``models/joint_*.py``, one file each):

- ``separate``: an independent reversible field per dataset;
- ``shared``: one field phi over the union of states, ``phi_k = beta_k phi`` (beta_1 = 1), own
  edge terms per dataset; beta_k acts as an inverse temperature;
- ``pooled``: ``phi_k = beta_k (phi + delta_k)``, ``delta_k ~ Normal(0, tau^2)``.

:func:`compare_universality` fits all three and reports, with 94% HDIs: beta_k, tau, the
correlation of the datasets' fields over their common identified states, the per-state departures
delta_k, the log Bayes factor of one landscape against partial pooling (Savage–Dickey at tau = 0
from the pooled posterior, :func:`one_landscape_bf`, with its Monte Carlo error), PSIS-LOO over
attempts of shared and pooled against separate (bridge-sampled evidences only on request), and
the slope of log beta_k against log T_k when sampling temperatures are known (-1 if temperature
acts as an inverse temperature).
For example, a joint fit on synthetic data:

>>> from detailed_balance.universality import synthetic_joint, fit_joint
>>> counts, truth = synthetic_joint(n_states=10, betas=(1.0, 0.5), attempts_per_source=100)
>>> fit = fit_joint(counts, model="shared", method="map")
>>> round(float(fit.posterior["beta"][0, 0, 1]), 1)  # doctest: +SKIP
0.5

The stage, one idea per private module (public names re-exported here):

* ``_data``: the K datasets aligned on the union of their states (:func:`build_joint_data`);
* ``_series``: dataset labels from attempt logs, and the shipped temperature series;
* ``_synthetic``: datasets with known truth (:func:`synthetic_joint`);
* ``_fit``: one joint hypothesis fitted (:func:`fit_joint`);
* ``_evidence``: bridge evidence, the one-landscape Bayes factor and its call, LOO;
* ``_summaries``: field correlations, departures, the temperature slope (94% HDIs);
* ``_compare``: :func:`compare_universality` and its :class:`UniversalityResult`;
* ``_markdown``: the verdict paragraph and the Markdown section;
* ``_outputs``: JSON, Markdown and figures on disk (:func:`write_outputs`).
"""

from __future__ import annotations

from ._compare import UniversalityResult, compare_universality
from ._data import JointData, build_joint_data, common_sources, union_counts
from ._evidence import bf_call, joint_evidence, one_landscape_bf
from ._fit import MODEL_NAMES, JointFit, fit_joint
from ._markdown import format_markdown, write_verdict
from ._outputs import plot_beta, plot_fields, write_outputs
from ._series import SERIES, read_labels, series_paths
from ._summaries import departures, field_correlations, temperature_slope
from ._synthetic import synthetic_joint

__all__ = [
    "JointData",
    "JointFit",
    "MODEL_NAMES",
    "SERIES",
    "UniversalityResult",
    "bf_call",
    "build_joint_data",
    "common_sources",
    "compare_universality",
    "departures",
    "field_correlations",
    "fit_joint",
    "format_markdown",
    "joint_evidence",
    "one_landscape_bf",
    "plot_beta",
    "plot_fields",
    "read_labels",
    "series_paths",
    "synthetic_joint",
    "temperature_slope",
    "union_counts",
    "write_outputs",
    "write_verdict",
]
