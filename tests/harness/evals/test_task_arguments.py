"""Every -T argument of every task is checked by type and range before any data is loaded:
one line naming the argument and the value, never a raw TypeError."""

from __future__ import annotations

import pytest

from harness.errors import ArgumentError
from harness.evals.consultation import consultation_task
from harness.evals.failures import TaskFailure
from harness.evals.healthbench import healthbench_task
from harness.evals.medqa import medqa_task
from harness.evals.meta_eval import meta_eval_task

BAD = [
    (healthbench_task, "max_error_fraction", "abc"),
    (healthbench_task, "max_error_fraction", 1.5),
    (healthbench_task, "structured_output", "maybe"),
    (healthbench_task, "allow_self_grading", 1.5),
    (healthbench_task, "share_verdicts_across_epochs", "often"),
    (healthbench_task, "responses", "gpt"),
    (healthbench_task, "max_grader_chars", "abc"),
    (healthbench_task, "max_grader_chars", 0),
    (healthbench_task, "max_grader_chars", 1.5),
    (medqa_task, "cot", "maybe"),
    (medqa_task, "shuffle_choices", 1.5),
    (medqa_task, "split", "everything"),
    (meta_eval_task, "max_error_fraction", "abc"),
    (meta_eval_task, "structured_output", "maybe"),
    (consultation_task, "max_turns", "x"),
    (consultation_task, "max_turns", 1.5),
    (consultation_task, "max_error_fraction", "abc"),
    (consultation_task, "generated_rubric", "maybe"),
    (consultation_task, "allow_self_grading", "sometimes"),
]


@pytest.mark.parametrize("build, name, value", BAD, ids=[f"{b.__name__}-{n}={v!r}" for b, n, v in BAD])
def test_bad_task_arguments_are_one_line_errors(build, name, value):
    with pytest.raises((TaskFailure, ArgumentError)) as caught:
        build(**{name: value})
    message = str(caught.value)
    assert f"invalid {name}=" in message and "\n" not in message
