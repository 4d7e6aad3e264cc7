"""End to end through `inspect eval`: exact scores with a scripted grader, and the embedded model."""

import os

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log

from harness.evals.logs import results_table
from tests.helpers.paths import FIXTURES, ROOT, shared_file
from tests.helpers.scripted import mock_model, scripted_grader_model, verdict_reply

TASK = os.path.relpath(ROOT / "tasks" / "healthbench_hard")
MINI = str(FIXTURES / "healthbench_mini.jsonl")


def decide(criterion: str) -> bool:
    return "hydration" in criterion or "unproven" in criterion


def run(grading_mode="per_criterion", roles=True, **kwargs):
    # answers as a doctor, and as a grader when handed a grading prompt (for the self-graded run)
    model = mock_model(lambda prompt: verdict_reply(prompt, decide) if "<criterion>" in prompt else "Drink plenty of fluids.")
    return inspect_eval(
        TASK,
        model=model,
        model_roles={"grader": scripted_grader_model(decide)} if roles else None,
        task_args={"data_file": MINI, "grading_mode": grading_mode},
        log_dir=str(kwargs.pop("log_dir")),
        display="none",
        **kwargs,
    )[0]


@pytest.mark.parametrize("mode", ["per_criterion", "batched"])
def test_exact_score_in_the_log(tmp_path, mode):
    log = run(mode, log_dir=tmp_path)
    assert log.status == "success"
    metrics = log.results.scores[0].metrics
    # mini-1: (5 - 3) / 10; mini-2: 4 / 10; mini-3: 3 / 10
    assert metrics["score"].value == pytest.approx((0.2 + 0.4 + 0.3) / 3)
    assert metrics["axis:accuracy"].value == pytest.approx((2 / 5 + 0 + 0) / 3)
    assert metrics["theme:hedging"].value == pytest.approx(0.4)
    sample = read_eval_log(log.location).samples[0]
    score = sample.scores["rubric_scorer"]
    assert score.metadata["self_graded"] is False
    assert [v["criteria_met"] for v in score.metadata["verdicts"]] == [True, False, True]
    table = results_table([tmp_path])
    assert table.loc[0, "benchmark"] == "healthbench_hard"
    assert table.loc[0, "score"] == pytest.approx(0.3) and table.loc[0, "n"] == 3
    assert table.loc[0, "grader"] == "mockllm/model"


def test_without_grader_role_the_log_says_self_graded(tmp_path):
    log = run(roles=False, log_dir=tmp_path)
    assert log.status == "success"
    sample = read_eval_log(log.location).samples[0]
    assert sample.scores["rubric_scorer"].metadata["self_graded"] is True
    assert results_table([tmp_path]).loc[0, "grader"] == "mockllm/model (self-graded)"


@pytest.mark.slow
def test_one_real_sample_through_the_embedded_model(tmp_path):
    data = shared_file("healthbench", "hard_sample50_seed42.jsonl")
    log = inspect_eval(
        TASK,
        model="m2bench/default",
        model_roles={"grader": "m2bench/default"},
        task_args={"data_file": str(data), "grading_mode": "batched"},
        limit=1,
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success", log.error
    sample = read_eval_log(log.location).samples[0]
    assert len(sample.output.completion) > 20  # the model wrote a reply
    verdicts = sample.scores["rubric_scorer"].metadata["verdicts"]
    assert len(verdicts) == len(sample.metadata["rubric"]) and all(v["criteria_met"] in (True, False) for v in verdicts)
    assert sample.model_usage["m2bench/default"].input_tokens > 0
