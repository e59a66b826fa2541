"""The built wheel installs on its own and ships ``detailed_balance.models`` and the CLI (slow)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(cmd, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, **kwargs)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # build from a copy: a build in place would leave build/ and egg-info in the working tree
    tmp = tmp_path_factory.mktemp("wheel")
    skip = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, tmp / "src", ignore=skip)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp / "out"),
            str(tmp / "src"),
        ]
    )
    (path,) = (tmp / "out").glob("detailed_balance-*.whl")
    return path


def test_wheel_lists_the_models_the_commands_and_the_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("reversible", "nonreversible", "unconstrained", "_common"):
        assert f"detailed_balance/models/{module}.py" in names
    for module in ("counts", "fit", "compare", "report", "demo"):
        assert f"detailed_balance/commands/{module}.py" in names, (
            f"commands/{module}.py not in the wheel"
        )
    assert "_detailed_balance_entry.py" in names  # the console script's module
    assert "detailed_balance/formats/__init__.py" in names  # a subpackage: in the packages list
    assert "detailed_balance/formats/_csv.py" in names and "detailed_balance/synthetic.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "detailed-balance = _detailed_balance_entry:main"
        in zipfile.ZipFile(wheel).read(entry).decode()
    )


def test_wheel_in_a_fresh_venv_imports_a_model_and_runs_the_cli(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    # dependencies (numpy, jax, numpyro...) come from this environment's site-packages (every
    # one on its path: a venv with --system-site-packages has them in the system's), added as
    # plain paths: their .pth files (the editable install's finder) are NOT processed that way
    site = Path(
        run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip()
    )
    deps = [sysconfig.get_path("purelib")]
    deps += [p for p in sys.path if p.endswith("-packages") and p not in deps]
    (site / "zz_deps.pth").write_text("\n".join(deps) + "\n")
    code = (
        "import detailed_balance, detailed_balance.models as m; "
        "from detailed_balance.models import reversible; "
        "print(detailed_balance.__file__); print(m.__file__); print(callable(reversible))"
    )
    out = run([str(python), "-c", code], cwd=tmp_path).split()
    assert out[0].startswith(str(site)) and out[1].startswith(str(site)), out
    assert out[2] == "True"
    table = tmp_path / "t.csv"
    table.write_text("source,target,count\nA,B,2\nB,A,1\n")
    out = run([str(env_dir / "bin" / "detailed-balance"), "counts", str(table)], cwd=tmp_path)
    assert "2 states, 3 attempts" in out
