"""Shared fixtures (kept small)."""

import pytest


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
