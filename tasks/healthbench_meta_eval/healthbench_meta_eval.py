from inspect_ai import Task, task

from harness.evals.meta_eval import meta_eval_task
from harness.grading import OFFICIAL_PROFILE


@task
def healthbench_meta_eval(
    data_file: str | None = None,
    grading_mode: str = "per_criterion",
    structured_output: bool | None = None,
    grader_profile: str = OFFICIAL_PROFILE,
    max_error_fraction: float = 0.05,
) -> Task:
    """HealthBench meta-eval: the model under test grades rubric criteria; agreement with physicians."""
    return meta_eval_task(data_file, grading_mode, structured_output, grader_profile, max_error_fraction)
