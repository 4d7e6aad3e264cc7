"""Where the tests find the project, its fixtures and the public data sets."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "tests" / "fixtures"
DATA_DIR = Path(os.environ.get("M2BENCH_DATA_DIR") or SHARED_DATA)


def shared_file(*parts: str) -> Path:
    """A public data file under the data directory; the test is skipped when this machine lacks it."""
    path = DATA_DIR.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"public data file not present: {path}")
    return path
