"""Shared fixtures (kept small)."""

import os

import pytest

import detailed_balance
from detailed_balance.runtime import CACHE_ENV

# as the CLI does, before any JAX computation: two parallel NUTS chains and float64 throughout
# (importing the package configures nothing); no compilation cache written from tests, not even
# by the CLI's own configure() in tests that call cli.main
os.environ.setdefault(CACHE_ENV, "off")
detailed_balance.configure(chains=2, cache=False)


@pytest.fixture(autouse=True)
def _release_compiled_programs(request):
    """After a slow test, drop JAX's compiled programs. Each NUTS fit compiles new ones (a
    pooled joint fit and its Savage–Dickey factor leave ~2,000 memory maps; the kernel allows
    65,530 per process), and the slow suite run as one process died with a segmentation fault
    in XLA's compilation near its end, as long calibration processes did when they ran out of
    maps. Clearing the caches took one process from 4,610 maps to 1,037
    (docs/readme/universality.md)."""
    yield
    if request.node.get_closest_marker("slow"):
        import jax

        jax.clear_caches()


@pytest.fixture
def write(tmp_path):
    """``write(name, text_or_bytes)`` -> path of a new file in a temporary folder."""

    def _write(name, content):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


def pytest_collection_modifyitems(config, items):
    """Slow tests check answers (recovery, calibration, agreement) from short NUTS runs, where an
    R-hat of 1.02 or an ESS below the per-chain target is expected and is a note, not the
    answer: there our ConvergenceWarning stays a warning. Every other warning is an error, and
    the default suite asserts ConvergenceWarning where it fires (tests/inference/test_fit.py)."""
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(
                pytest.mark.filterwarnings(
                    "default::detailed_balance.inference.ConvergenceWarning"
                )
            )
