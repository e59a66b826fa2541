"""The package's layout: stages import each other in one direction, only through their public
names, and importing the package leaves JAX as it was.

A *stage* is a top-level module or subpackage of ``detailed_balance`` (``inference``,
``comparison``, ``report``, ``counts``, ...). Imports are read from the source with ``ast``
(including those inside functions), so the test needs no import of the package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    (ROOT / "src" / "detailed_balance", "detailed_balance"),
    (ROOT / "models", "detailed_balance.models"),
)
# the pipeline, in order: no stage imports a later one (issue 11)
PIPELINE = ("formats", "inference", "comparison", "report", "commands")


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package)."""
    out = {}
    for base, package in PACKAGES:
        for path in base.rglob("*.py"):
            parts = [p for p in path.relative_to(base).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = (path, path.name == "__init__.py")
    return out


MODULES = _modules()


def _imports(name: str) -> list[str]:
    """The ``detailed_balance`` modules (or module.name) that module ``name`` imports."""
    path, is_package = MODULES[name]
    package = name if is_package else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from pkg import name": name is a submodule or an attribute of pkg
            out += [f"{module}.{a.name}" for a in node.names]
    return [m for m in out if m.split(".")[0] == "detailed_balance"]


def _stage(name: str) -> str:
    parts = name.split(".")
    stage = parts[1] if len(parts) > 1 else ""
    return "commands" if stage == "cli" else stage  # cli.py is the front of the command line


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name in MODULES:
        for target in _imports(name):
            if _stage(target) and _stage(target) != _stage(name):
                edges.setdefault(_stage(name), set()).add(_stage(target))
    return edges


def test_the_source_was_found():
    assert {"detailed_balance.inference._fit", "detailed_balance.report._build"} <= set(MODULES)
    assert "inference" in _edges()["report"]


def test_no_stage_imports_the_private_modules_or_names_of_another():
    """``detailed_balance.<stage>._x`` (a module or a name) is used inside ``<stage>`` only;
    root-level helpers (``detailed_balance._arviz``) belong to no stage and are shared."""
    bad = []
    for name in MODULES:
        for target in _imports(name):
            parts = target.split(".")
            private = next((i for i, p in enumerate(parts) if p.startswith("_")), None)
            if private is None or private < 2:  # public, or a root-level helper
                continue
            if _stage(target) != _stage(name):
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(bad)


def test_universality_is_a_stage_over_fit_and_compare_used_by_commands_only():
    """The joint fits (``universality/``) read the fit and compare stages' public names; only the
    command line reads them (the private-name rule above covers its ``_x`` modules too)."""
    assert "detailed_balance.universality._fit" in MODULES
    edges = _edges()
    assert {"inference", "comparison"} <= edges["universality"]
    assert not {"report", "commands"} & edges["universality"]
    assert {a for a, b in edges.items() if "universality" in b} == {"commands"}


def test_stages_import_each_other_without_cycles_and_in_pipeline_order():
    edges = _edges()
    try:
        order = list(TopologicalSorter(edges).static_order())
    except CycleError as exc:  # pragma: no cover - the failure message
        pytest.fail(f"import cycle between stages: {exc.args[1]}")
    assert set(PIPELINE) <= set(order)
    backwards = [
        f"{a} imports {b}"
        for i, a in enumerate(PIPELINE)
        for b in PIPELINE[i + 1 :]
        if b in edges.get(a, set())
    ]
    assert not backwards, backwards


def test_importing_every_module_leaves_jax_as_it_was(tmp_path):
    """``import detailed_balance`` and all its modules: no float64, no device count, no cache."""
    code = f"""
import importlib, jax
before = (jax.config.jax_enable_x64, jax.config.jax_num_cpu_devices,
          jax.config.jax_compilation_cache_dir)
for name in {sorted(n for n in MODULES if "._" not in n and ".testing" not in n)!r}:
    importlib.import_module(name)
after = (jax.config.jax_enable_x64, jax.config.jax_num_cpu_devices,
         jax.config.jax_compilation_cache_dir)
print(before == after, jax.device_count())
"""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("JAX_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "1"]
