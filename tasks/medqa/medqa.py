from inspect_ai import Task, task

from harness.evals.medqa import medqa_task


@task
def medqa(split: str = "test", cot: bool = False, shuffle_choices: int | None = None, data_file: str | None = None) -> Task:
    """MedQA-USMLE 4-option (split = test | dev); letter extracted from the reply by harness.answers."""
    return medqa_task(split, cot, shuffle_choices, data_file)
