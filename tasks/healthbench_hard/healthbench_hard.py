from inspect_ai import Task, task

from harness.evals.healthbench import healthbench_task


@task
def healthbench_hard(
    data_file: str | None = None,
    grading_mode: str = "per_criterion",
    structured_output: bool = True,
    max_error_fraction: float = 0.05,
) -> Task:
    """HealthBench Hard, rubric-graded by the `grader` model role."""
    return healthbench_task("hard", data_file, grading_mode, structured_output, max_error_fraction)
