"""python -m harness.evals.check: non-zero unless every run succeeded with all planned samples."""

import subprocess
import sys

import pytest
from inspect_ai import eval as inspect_eval

from harness.evals.check import main
from tests.helpers.paths import ROOT
from tests.helpers.runs import task_with_failures
from tests.helpers.scripted import mock_model


def run(folder, **kwargs):
    return inspect_eval(
        task_with_failures(**{k: v for k, v in kwargs.items() if k in ("samples", "broken")}),
        model=mock_model(lambda prompt: "yes"),
        log_dir=str(folder),
        display="none",
        **{k: v for k, v in kwargs.items() if k not in ("samples", "broken")},
    )[0]


@pytest.mark.slow  # over ~3 s: the fast loop leaves it out
def test_complete_runs_pass(tmp_path, capsys):
    run(tmp_path / "ok")
    run(tmp_path / "ok", limit=2)  # a --limit run is complete as a run (comparability is judged elsewhere)
    assert main([str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    assert out.count("ok: ") == 2 and "4/4 samples scored" in out and "2/2 samples scored" in out


@pytest.mark.slow  # over ~1.5 s: the fast loop leaves it out
def test_an_errored_run_fails(tmp_path, capsys):
    log = run(tmp_path / "logs", broken=(2,))
    assert log.status == "error"
    assert main([str(tmp_path / "logs")]) == 1
    assert "FAILED: " in capsys.readouterr().out


def test_samples_left_unscored_fail_the_check(tmp_path, capsys):
    log = run(tmp_path / "logs", broken=(1,), fail_on_error=0.5)  # the run "succeeds" with one sample errored
    assert log.status == "success"
    assert main([str(tmp_path / "logs")]) == 1
    assert "3/4 samples scored" in capsys.readouterr().out


@pytest.mark.slow
def test_no_log_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "empty", tmp_path / "missing"):
        done = subprocess.run(
            [sys.executable, "-m", "harness.evals.check", str(target)], capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")


@pytest.mark.parametrize(
    "module", ["harness.evals.check", "harness.reporting.leaderboard", "harness.lmeval.results", "harness.tools.report"]
)
def test_help_works(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "usage:" in done.stdout and not done.stderr
