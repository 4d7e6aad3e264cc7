"""Shared fixtures. Helpers the tests import live in tests/helpers (tests never import each other)."""

import os

import pytest

from tests.helpers.paths import SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if not os.environ.get("M2BENCH_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["M2BENCH_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test gets its own cache dir, so no grading verdict leaks between tests."""
    monkeypatch.setenv("M2BENCH_CACHE_DIR", str(tmp_path / "cache"))
