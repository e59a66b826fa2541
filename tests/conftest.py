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
