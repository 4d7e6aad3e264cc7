from inspect_ai import Task, task

from harness.evals.healthbench import healthbench_task
from harness.grading import MAX_GRADER_CHARS, OFFICIAL_PROFILE


@task
def healthbench_hard(
    data_file: str | None = None,
    grading_mode: str = "per_criterion",
    grader_profile: str = OFFICIAL_PROFILE,
    structured_output: bool | None = None,
    max_error_fraction: float = 0.05,
    allow_self_grading: bool = False,
    responses: str = "model",
    share_verdicts_across_epochs: bool = False,
    max_grader_chars: int = MAX_GRADER_CHARS,
) -> Task:
    """HealthBench Hard, rubric-graded by the `grader` model role (official simple-evals grading by default)."""
    return healthbench_task(
        "hard",
        data_file,
        grading_mode,
        grader_profile,
        structured_output,
        max_error_fraction,
        allow_self_grading,
        responses,
        share_verdicts_across_epochs,
        max_grader_chars,
    )
