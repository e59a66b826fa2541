"""What counts as public in ``detailed_balance``, for the API reference and its test.

Public modules are the modules and subpackages of ``detailed_balance`` whose dotted path has no
component starting with ``_``, except the command line (``cli``, ``commands``: documented from
its own ``--help`` on the command-line page). A public module's public names are its ``__all__``
when it has one, otherwise the functions and classes it defines whose names do not start with
``_``. Every public object is documented once, under the module that defines it (its canonical
name); a re-export (``detailed_balance.fit``) links to that page.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

PACKAGE = "detailed_balance"
EXCLUDED = ("detailed_balance.cli", "detailed_balance.commands")


def public_modules() -> list[str]:
    """Dotted names of the public modules, the package itself first."""
    names = [PACKAGE]
    # detailed_balance.models lives in models/ (setuptools package-dir), so an editable install's
    # package path does not show it: walk it separately.
    for root in (PACKAGE, PACKAGE + ".models"):
        names.append(root)
        pkg = importlib.import_module(root)
        for info in pkgutil.walk_packages(pkg.__path__, root + "."):
            parts = info.name.split(".")
            if any(p.startswith("_") for p in parts) or info.name.startswith(EXCLUDED):
                continue
            names.append(info.name)
    return sorted(set(names), key=lambda n: (n != PACKAGE, n))


def public_names(module: ModuleType) -> list[str]:
    """The public names of one module (its ``__all__``, else what it defines)."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return sorted(
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    )


def canonical(obj, module: ModuleType, name: str) -> str:
    """The dotted name under which ``obj`` (``module.name``) is documented."""
    if inspect.ismodule(obj):
        return obj.__name__
    home = getattr(obj, "__module__", None)
    qual = getattr(obj, "__qualname__", None)
    if home and qual and home.startswith(PACKAGE) and "<" not in qual:
        # an object of a private module (inference._fit.fit) belongs to its public package
        parts = home.split(".")
        while parts[-1].startswith("_"):
            parts.pop()
        return f"{'.'.join(parts)}.{qual}"
    return f"{module.__name__}.{name}"  # data (a dict, a constant): documented where it lives


def kind(obj) -> str:
    """The autodoc kind: ``class``, ``exception``, ``function`` or ``data``."""
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def api_table() -> dict[str, list[tuple[str, str, str]]]:
    """For each public module, its public names as ``(name, canonical name, kind)``.

    An object defined in a private module (``models._common.FieldPrior``) is documented under
    the first public module that exports it.
    """
    modules = public_modules()
    table, documented = {}, set()
    for modname in modules:
        module = importlib.import_module(modname)
        rows = []
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue  # a submodule listed in __all__ gets its own section
            target = canonical(obj, module, name)
            home, leaf = target.rsplit(".", 1)
            listed = home in modules and leaf in public_names(importlib.import_module(home))
            if not listed and target not in documented:
                target = f"{modname}.{name}"
            documented.add(target)
            rows.append((name, target, kind(obj)))
        table[modname] = rows
    return table


def api_index() -> str:
    """The text of docs/api/index.md: a section per public module, an autosummary per object."""
    table = api_table()
    lines = [
        "# API reference",
        "",
        "Every public name of `detailed_balance`, generated from the docstrings. *Public* means:",
        "listed in a module's `__all__`, or, for a module without one, a function or class it",
        "defines whose name does not start with `_` (the rule is `docs/public_api.py`, and",
        "`tests/test_docs.py` checks that each such name is on this page). Each object has one",
        "page, under the module that defines it; the re-exports link there.",
        "",
        "```{contents}",
        ":local:",
        ":depth: 1",
        "```",
        "",
    ]
    for modname, rows in table.items():
        lines += [
            f"## `{modname}`",
            "",
            f"```{{eval-rst}}\n.. automodule:: {modname}\n   :no-members:\n   :no-index:\n```",
            "",
        ]
        own = [r for r in rows if r[1] == f"{modname}.{r[0]}"]
        reexports = [r for r in rows if r not in own]
        if own:
            lines += [
                "```{eval-rst}",
                f".. currentmodule:: {modname}",
                "",
                ".. autosummary::",
                "   :toctree: generated",
                "   :nosignatures:",
                "",
            ]
            lines += [f"   {name}" for name, _, _ in own]
            lines += ["```", ""]
        if reexports:
            lines += ["Re-exported here:", "", "| name | defined as |", "|---|---|"]
            lines += [f"| `{modname}.{name}` | {{py:obj}}`{c}` |" for name, c, _ in reexports]
            lines += [""]
    return "\n".join(lines) + "\n"
