"""Publication-ready report: figures (PNG + PDF), tables (Markdown + LaTeX) and an index.md.

:func:`build_report` takes counts (any file :func:`formats.read_counts` reads) or a saved fit and
writes, under ``out``:

* ``figures/``: potential landscape with 94% HDI, forward vs backward (pairwise) plot, 3-cycle loop
  plot, cycle affinities, potential histogram with its Gaussian, least-action posterior;
* ``tables/``: potentials, diagnostics and (when run) the model comparison, as ``.md`` and ``.tex``;
* ``report.json``: every number of the tables; ``index.md``: what was done, the verdict, the
  figures.

Where the posterior over T comes from: a fit's ``posterior_kernel`` when the input is a fit;
otherwise the exact conjugate posterior of the unconstrained (Dirichlet-row) model, which needs no
sampler (:func:`diagnostics.unconstrained_posterior_kernel`). Song, Cao, Luo & Zhu,
arXiv:2512.10047, for the least-action estimator and the diagnostics.

The report stage (one idea per private module, the public names re-exported here):

* ``_inputs``: reading what the report is made from (counts, or a fit saved by
  :func:`detailed_balance.save_fit`);
* ``_analysis``: :func:`analyse`, every number the figures and tables show;
* ``_tables``: the potentials and diagnostics tables (pandas DataFrames);
* ``_markup``: tables as Markdown and LaTeX, with escaping of any text;
* ``_figures``: the figures (matplotlib, one column of a paper);
* ``_index``: the report's ``index.md`` text and its notes;
* ``_build``: :func:`build_report`, writing it all atomically into a folder.
"""

from .._arviz import HDI_LABEL, HDI_PROB
from ._analysis import Analysis, analyse
from ._build import build_report
from ._figures import (
    FIGURES,
    plot_cycle_affinities,
    plot_landscape,
    plot_least_action_posterior,
    plot_loops,
    plot_pairwise,
    plot_potential_histogram,
    save_figure,
)
from ._index import report_notes
from ._inputs import load_input
from ._markup import (
    LATEX_MAX_COLUMNS,
    LATEX_ROWS_PER_FLOAT,
    latex_escape,
    markdown_escape,
    to_latex,
    to_markdown,
)
from ._tables import diagnostics_table, potential_table

__all__ = [
    "FIGURES",
    "HDI_LABEL",
    "HDI_PROB",
    "LATEX_MAX_COLUMNS",
    "LATEX_ROWS_PER_FLOAT",
    "Analysis",
    "analyse",
    "build_report",
    "diagnostics_table",
    "latex_escape",
    "load_input",
    "markdown_escape",
    "plot_cycle_affinities",
    "plot_landscape",
    "plot_least_action_posterior",
    "plot_loops",
    "plot_pairwise",
    "plot_potential_histogram",
    "potential_table",
    "report_notes",
    "save_figure",
    "to_latex",
    "to_markdown",
]
