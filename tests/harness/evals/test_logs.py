"""Inspect logs -> results rows: only finished runs count; the others are listed with their status."""

from __future__ import annotations

import pandas as pd
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log, write_eval_log

from harness.errors import DataError
from harness.evals.logs import incomplete_runs, results_table
from harness.tools.report import add_own_runs
from tests.helpers.runs import task_with_failures
from tests.helpers.scripted import mock_model


def run(folder, samples=20, broken=(), **options):
    task = task_with_failures(samples, broken)
    [log] = inspect_eval(task, model=mock_model(lambda prompt: "yes"), log_dir=str(folder), display="none", **options)
    return log


def cancelled_copy(log, folder, completed=5, score=0.397):
    """The log of the same run as if Ctrl-C had stopped it after ``completed`` samples."""
    cut = read_eval_log(log.location)
    cut.status = "cancelled"
    cut.results.completed_samples = completed
    cut.results.scores[0].metrics["accuracy"].value = score
    cut.samples = cut.samples[:completed]
    folder.mkdir(parents=True, exist_ok=True)
    write_eval_log(cut, str(folder / "cancelled.eval"))
    return folder / "cancelled.eval"


def test_a_cancelled_5_of_20_run_is_no_result_row(tmp_path):
    full = run(tmp_path / "logs")
    cancelled_copy(full, tmp_path / "logs")
    table = results_table([tmp_path / "logs"])
    assert table["n"].tolist() == [20] and table["score"].tolist() == [1.0]  # the full run only
    [skipped] = incomplete_runs([tmp_path / "logs"])
    assert (skipped.status, skipped.completed, skipped.planned) == ("cancelled", 5, 20)
    # asked for explicitly, it is a row (with its 5 scored samples)
    assert sorted(results_table([tmp_path / "logs"], include_incomplete=True)["n"]) == [5, 20]


def test_a_success_with_errored_samples_is_incomplete(tmp_path):
    log = run(tmp_path / "logs", samples=4, broken=(1,), fail_on_error=0.5)
    assert log.status == "success"
    assert results_table([tmp_path / "logs"]).empty
    assert [(r.status, r.completed, r.planned) for r in incomplete_runs([tmp_path / "logs"])] == [("success", 3, 4)]


def test_add_runs_skips_incomplete_runs_and_says_so(tmp_path, capsys):
    full = run(tmp_path / "logs")
    cancelled_copy(full, tmp_path / "logs")
    table = add_own_runs([tmp_path / "logs"], tmp_path / "own_runs.csv")
    assert table["n"].tolist() == [20]
    assert pd.read_csv(tmp_path / "own_runs.csv")["n"].tolist() == [20]
    err = capsys.readouterr().err
    assert "skipped: " in err and "cancelled, 5/20 samples scored" in err


@pytest.mark.parametrize("score", [1.5, -0.1, float("nan")])
def test_add_runs_refuses_impossible_scores_before_writing(tmp_path, score):
    full = run(tmp_path / "logs", samples=2)
    bad = read_eval_log(full.location)
    bad.results.scores[0].metrics["accuracy"].value = score
    write_eval_log(bad, full.location)
    own = tmp_path / "own_runs.csv"
    own.write_text("model,benchmark,subset,split,score,stderr,n,grader,harness,date,log\n")
    before = own.read_bytes()
    with pytest.raises(DataError, match="score"):
        add_own_runs([tmp_path / "logs"], own)
    assert own.read_bytes() == before
