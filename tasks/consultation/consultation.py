from inspect_ai import Task, task

from harness.evals.consultation import consultation_task


@task
def consultation(
    cases: str = "agentclinic_medqa",
    max_turns: int = 20,
    persona: str = "neutral",
    mode: str = "conversation",
    grading_mode: str = "per_criterion",
    max_error_fraction: float = 0.05,
    answer: str = "free_text",
    generated_rubric: bool = True,
    allow_self_grading: bool = False,
) -> Task:
    """Interactive consultation: the model is the doctor, `patient` simulates, `grader` scores per-case rubrics."""
    return consultation_task(
        cases,
        max_turns,
        persona,
        mode,
        grading_mode,
        max_error_fraction,
        answer,
        generated_rubric=generated_rubric,
        allow_self_grading=allow_self_grading,
    )
