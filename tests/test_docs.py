"""The documentation: docstring examples run, the API reference covers every public name, the
README stays short and single-sourced, and (slow) the site builds with warnings as errors."""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _public_api():
    spec = importlib.util.spec_from_file_location("public_api", DOCS / "public_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _names_from_source() -> dict[str, list[str]]:
    """Public names read from the source files with ``ast`` (an oracle independent of imports).

    A module's ``__all__`` if it has one, else its top-level functions and classes without a
    leading underscore; private modules and the command line are skipped.
    """
    roots = {"detailed_balance": ROOT / "src" / "detailed_balance",
             "detailed_balance.models": ROOT / "models"}  # fmt: skip
    out = {}
    for prefix, root in roots.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modname = ".".join([prefix, *parts])
            if any(p.startswith("_") for p in parts) or modname.startswith(
                ("detailed_balance.cli", "detailed_balance.commands")
            ):
                continue
            tree = ast.parse(path.read_text())
            names = None
            for node in tree.body:
                if isinstance(node, ast.Assign) and any(
                    getattr(t, "id", None) == "__all__" for t in node.targets
                ):
                    names = []
                    for elt in node.value.elts:
                        if isinstance(elt, ast.Constant):
                            names.append(elt.value)
                        elif isinstance(elt, ast.Starred):  # *_LAZY: the keys of that dict
                            lazy = next(
                                n.value for n in tree.body if isinstance(n, ast.Assign)
                                and getattr(n.targets[0], "id", None) == elt.value.id
                            )  # fmt: skip
                            names += [k.value for k in lazy.keys]
            if names is None:
                names = [
                    n.name for n in tree.body
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                    and not n.name.startswith("_")
                ]  # fmt: skip
            out[modname] = names
    return out


def test_every_public_name_is_in_the_api_reference():
    index = _public_api().api_index()
    sections = dict(re.findall(r"^## `([\w.]+)`\n(.*?)(?=^## `|\Z)", index, re.M | re.S))
    missing = []
    for modname, names in _names_from_source().items():
        text = sections.get(modname)
        if text is None:
            missing.append(modname)
            continue
        submodules = {p.stem for p in (ROOT / "models").glob("*.py")}
        for name in names:
            listed = re.search(rf"^   {re.escape(name)}$", text, re.M) or (
                f"| `{modname}.{name}` |" in text
            )
            if not listed and not (modname == "detailed_balance.models" and name in submodules):
                missing.append(f"{modname}.{name}")
    assert not missing, f"not in the API reference: {missing}"


def _doctests(modname: str) -> list[doctest.DocTest]:
    """The docstring examples of a public module, including those of the objects it documents
    from its private modules (``detailed_balance.fit``, defined in ``inference._fit``), which
    ``DocTestFinder`` skips as foreign."""
    module = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = finder.find(module, modname)
    for name, target, _ in _public_api().api_table()[modname]:
        obj = getattr(module, name)
        if target == f"{modname}.{name}" and getattr(obj, "__module__", modname) != modname:
            tests += finder.find(obj, target, module=sys.modules[obj.__module__])
    return [t for t in tests if not t.name.split(".")[-1].startswith("_")]


@pytest.mark.parametrize("modname", _public_api().public_modules())
def test_docstring_examples_run(modname):
    """Every ``Examples`` section of a public module runs and prints what it says."""
    failures = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _doctests(modname):
        runner.run(test, out=failures.append)
    assert not failures, "".join(failures)


def test_docstring_examples_exist():
    """Docstring examples are not silently lost (a finder that sees none passes vacuously)."""
    found = sum(len(t.examples) for m in _public_api().public_modules() for t in _doctests(m))
    assert found > 40, f"only {found} docstring examples found"


def test_readme_is_short_and_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 8192, f"README.md is {len(readme.encode())} bytes"
    commands = re.findall(r"^python3 -m venv .*$", readme, re.M)
    assert commands[:2] == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install . && detailed-balance demo",
        "python3 -m venv .venv-test && . .venv-test/bin/activate && "
        'pip install -e ".[dev,local]" && pytest',
    ]
    before = readme[: readme.index(commands[1])]
    assert "## " not in before, "the two commands must come before any section"


def test_readme_text_is_not_copied_into_the_section_files():
    """One source: a paragraph of the README must not also be in docs/readme/*.md."""
    readme = (ROOT / "README.md").read_text()
    sections = "".join(p.read_text() for p in (DOCS / "readme").glob("*.md"))
    paragraphs = [p.strip() for p in readme.split("\n\n") if len(p.strip()) > 80]
    copied = [p[:60] for p in paragraphs if p in sections]
    assert not copied, f"README text also in docs/readme: {copied}"


@pytest.mark.slow
def test_site_builds_with_warnings_as_errors(tmp_path):
    """The documented command, gallery included; about 3 minutes on 2 cores."""
    pytest.importorskip("sphinx_gallery")
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", str(out)]
    env = {**os.environ, "MPLBACKEND": "agg"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    for page in ("index", "science", "stages/fit", "results/calibration", "api/index", "cli"):
        assert (out / f"{page}.html").exists(), page
    table = _public_api().api_table()
    for rows in table.values():
        for _, target, _ in rows:
            assert (out / "api" / "generated" / f"{target}.html").exists(), target
    gallery = sorted((out / "_images").glob("sphx_glr_plot_*_001.png"))
    assert len(gallery) >= 3, f"gallery figures: {gallery}"
