"""Shared fixtures (kept small)."""

import pytest

import detailed_balance

# as the CLI does, before any JAX computation: two parallel NUTS chains and float64 throughout
# (importing the package configures nothing); no compilation cache written from tests
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
