"""Sphinx configuration for the detailed-balance documentation.

Build (from the repository root, warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The text of the stage pages lives in ``docs/readme/*.md`` and README.md and is included, never
copied. Three things are generated at build time and not kept in git: the API reference
(``docs/api/``, from ``public_api.py``), the command-line page (``docs/cli.md``, from the parser's
own help) and the gallery (``docs/auto_examples/``, by running ``examples/plot_*.py`` at small
sizes).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "agg")
DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

import public_api  # noqa: E402

project = "detailed-balance"
author = "the detailed-balance authors"
copyright = "2026, the detailed-balance authors"
try:
    from detailed_balance import __version__ as release
except ImportError:  # pragma: no cover - the package must be installed to build the docs
    release = "unknown"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# The section files and the calibration table are included into pages, not pages themselves.
exclude_patterns = [
    "results/_bench_sections.md",
    "_build",
    "readme",
    "calibration",
    "**/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.ipynb",
    "auto_examples/*.zip",
    "auto_examples/*.json",
]
templates_path = ["_templates"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# The section files were written to be concatenated into one README: a page may start at "##"
# and a benchmark section at "###". That is their structure, not a mistake.
suppress_warnings = ["myst.header", "config.cache"]  # config.cache: the gallery's argv hook

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters section carries the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Every documented public object has a docstring (GL08); the section order is numpydoc's (GL07).
numpydoc_validation_checks = {"GL08", "GL07"}
# ... for functions and classes; their methods and dataclass constructors are not checked.
numpydoc_validation_exclude = {r"\.__init__$", r"\.[A-Z][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"}

html_theme = "pydata_sphinx_theme"
html_title = "detailed-balance"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []

# ---- the gallery: examples/plot_*.py, run with --quick so the build stays within minutes -------
GALLERY_OUT = DOCS / "_build" / "example-output"


def _gallery_argv(gallery_conf, script_vars):
    """Arguments for each example: small sizes, output kept out of the source tree."""
    name = Path(script_vars["src_file"]).stem
    return ["--quick", "--out", str(GALLERY_OUT / name)]


def _figure_scraper(block, block_vars, gallery_conf):
    """Figures made by the report's plot functions: plain ``Figure`` objects, not pyplot's.

    The matplotlib scraper only sees pyplot figures; ``report.plot_*`` return figures that are
    not registered with pyplot (so a report never leaks them). Any such figure bound to a name in
    the example, and not shown before, is saved after the block that made it.
    """
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    namespace = block_vars["example_globals"]
    shown = namespace.setdefault("__figures_shown__", set())
    paths = []
    for fig in list(namespace.values()):
        if isinstance(fig, Figure) and id(fig) not in shown and fig.canvas.manager is None:
            shown.add(id(fig))
            path = next(block_vars["image_path_iterator"])
            fig.savefig(path, dpi=150, bbox_inches="tight")  # titles wider than a column
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])


sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # Only plot_*.py scripts are gallery pages (and run); other scripts in examples/ (helpers
    # such as make_word_task_file.py) are left alone, whatever their docstring looks like.
    "ignore_pattern": r"__init__\.py|(^|/)(?!plot_)[^/]*\.py$",  # a file name or a full path
    "reset_argv": _gallery_argv,
    "abort_on_example_error": True,
    "download_all_examples": False,
    "min_reported_time": 1,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": (_figure_scraper, "matplotlib"),  # ours first: pyplot closes its figures
    "reference_url": {"detailed_balance": None},
}


# ---- generated pages -------------------------------------------------------------------------
def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already says it (keeps incremental builds incremental)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _drop_stale_gallery_pages() -> None:
    """Remove gallery pages of scripts that are no longer gallery examples (renamed, ignored)."""
    gallery = DOCS / "auto_examples"
    keep = {p.stem for p in (ROOT / "examples").glob("plot_*.py")} | {"index"}
    for page in gallery.glob("*.rst"):
        if page.stem not in keep and page.stem != "sg_execution_times":
            page.unlink()


def _api_pages() -> None:
    """docs/api/index.md: one section per public module, one autosummary page per object."""
    _write_if_changed(DOCS / "api" / "index.md", public_api.api_index())


def _cli_page() -> None:
    """docs/cli.md: the --help of the command and of every subcommand, as the parser prints it."""
    from detailed_balance.cli import build_parser

    parser = build_parser()
    parser.prog = "detailed-balance"
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    os.environ["COLUMNS"] = "100"
    lines = [
        "# Command line",
        "",
        "Every stage is one subcommand of `detailed-balance`. This page",
        "is the parser's own `--help`, generated when the documentation is built.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    for name, p in sub.choices.items():
        lines += [
            f"## `detailed-balance {name}`",
            "",
            "```text",
            p.format_help().rstrip(),
            "```",
            "",
        ]
    _write_if_changed(DOCS / "cli.md", "\n".join(lines))


def _universality_page() -> None:
    """docs/stages/universality.md: docs/readme/universality.md once it exists, else a note."""
    section = DOCS / "readme" / "universality.md"
    if section.exists():
        text = "```{include} ../readme/universality.md\n```\n"
    else:
        text = (
            "# Universality\n\nThe universality analysis is being built; this page will "
            "include `docs/readme/universality.md` once it exists.\n"
        )
    _write_if_changed(DOCS / "stages" / "universality.md", text)


def _benchmark_sections() -> None:
    """docs/results/_bench_sections.md: every docs/readme/bench-*.md, a new one included too."""
    order = ["counts", "fit", "least-action", "collect", "demo"]
    found = sorted(p.stem.removeprefix("bench-") for p in (DOCS / "readme").glob("bench-*.md"))
    found = [n for n in found if n != "calibration"]  # it has its own page
    names = [n for n in order if n in found] + [n for n in found if n not in order]
    text = "".join(
        f"```{{include}} ../readme/bench-{n}.md\n:relative-images:\n```\n\n" for n in names
    )
    _write_if_changed(DOCS / "results" / "_bench_sections.md", text)


_drop_stale_gallery_pages()
_api_pages()
_benchmark_sections()
_cli_page()
_universality_page()
