"""The shared Inspect scoring pieces: a grader role is required by every rubric-graded task, at once."""

import os

import pytest
from inspect_ai import eval as inspect_eval

from harness.errors import DataError
from harness.evals.failures import TaskFailure, one_line_errors
from tests.helpers.paths import ROOT
from tests.helpers.scripted import mock_model


@pytest.mark.parametrize("task, args", [("healthbench_hard", {}), ("consultation", {"cases": "agentclinic_medqa"})])
def test_rubric_graded_tasks_need_a_grader_role(tmp_path, task, args):
    asked = []
    model = mock_model(lambda prompt: asked.append(prompt) or "Drink fluids.")
    with pytest.raises(TaskFailure, match=f"^error: {task} needs a grader model: pass --model-role grader="):
        inspect_eval(os.path.relpath(ROOT / "tasks" / task), model=model, task_args=args, log_dir=str(tmp_path), display="none")
    assert asked == []


def test_one_line_errors_turns_our_errors_into_one_line_and_keeps_others():
    @one_line_errors
    def build(error):
        raise error

    with pytest.raises(TaskFailure) as failure:
        build(DataError("data.jsonl", "no rows [here]", 3))
    assert str(failure.value) == "error: data.jsonl:3: no rows [here]"
    assert failure.value.message == r"error: data.jsonl:3: no rows \[here]"  # rich prints it without markup
    with pytest.raises(KeyError):
        build(KeyError("a bug stays a bug"))
