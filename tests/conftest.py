import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if not os.environ.get("M2BENCH_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["M2BENCH_DATA_DIR"] = str(SHARED_DATA)
DATA_DIR = Path(os.environ.get("M2BENCH_DATA_DIR", SHARED_DATA))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test gets its own cache dir, so no grading verdict leaks between tests."""
    monkeypatch.setenv("M2BENCH_CACHE_DIR", str(tmp_path / "cache"))


def shared_file(*parts: str) -> Path:
    path = DATA_DIR.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"public data file not present: {path}")
    return path
