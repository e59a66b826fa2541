"""pyproject's hand-written packages list names every subpackage (fast; the wheel test is slow).

An editable install finds any subpackage, so a missing entry only shows on ``pip install .``:
``detailed-balance demo`` then failed on a fresh machine with "No module named
'detailed_balance.universality'".
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_in_the_packages_list():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    src = ROOT / "src"
    found = {".".join(p.parent.relative_to(src).parts) for p in src.rglob("__init__.py")}
    found |= set(config["package-dir"]) - {""}  # packages kept outside src (models/)
    assert found - listed == set(), f"not in [tool.setuptools] packages: {sorted(found - listed)}"
    assert listed - found == set(), f"listed but not found: {sorted(listed - found)}"
