"""Shared fixtures. Helpers the tests import live in tests/helpers (tests never import each other)."""

import os

import platformdirs
import pytest

from tests.helpers.paths import SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if not os.environ.get("M2BENCH_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["M2BENCH_DATA_DIR"] = str(SHARED_DATA)
# the embedded model's de-quantised weights are shared by every test (and run): keyed by the GGUF's
# content, so sharing them cannot change a result, and each test process then loads in seconds
os.environ.setdefault("M2BENCH_MODEL_CACHE_DIR", str(platformdirs.user_cache_dir("m2bench")) + "/embedded-model")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test gets its own cache dir, so no grading verdict leaks between tests (the embedded model's
    weights cache stays shared, see above)."""
    monkeypatch.setenv("M2BENCH_CACHE_DIR", str(tmp_path / "cache"))
