"""The documented commands that regenerate the committed reports leave a fresh clone clean: outputs
change only when their content does (no dates, machine paths or unstable image bytes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.paths import DATA_DIR, ROOT

# documented in README.md ("Leaderboards and Pareto reports"); they need no model
REPORT_COMMANDS = [
    ["-m", "harness.tools.report", "pareto", "--benchmark", "all", "--params", "total"],
    ["-m", "harness.tools.report", "pareto", "--benchmark", "all", "--params", "active"],
    ["-m", "harness.tools.report", "index"],
    ["-m", "harness.reporting.leaderboard"],
]


def git(*args: str, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_report_commands_leave_a_fresh_clone_clean(tmp_path):
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(ROOT), str(clone), cwd=tmp_path)
    env = {**os.environ, "M2BENCH_DATA_DIR": str(DATA_DIR), "MPLBACKEND": "Agg"}
    for command in REPORT_COMMANDS:
        done = subprocess.run([sys.executable, *command], cwd=clone, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert git("status", "--porcelain", cwd=clone) == ""
