from inspect_ai import Task, task

from harness.evals.consultation import consultation_task


@task
def craftmd(
    format: str = "conversation",
    answer: str = "multiple_choice",
    cases: str = "craftmd",
    max_turns: int = 10,
    persona: str = "neutral",
    grading_mode: str = "per_criterion",
    max_error_fraction: float = 0.05,
    allow_self_grading: bool = False,
) -> Task:
    """CRAFT-MD: the same cases as a vignette, a multi-turn conversation or a summarised conversation, answered by multiple choice or free text."""
    return consultation_task(
        cases,
        max_turns,
        persona,
        format,
        grading_mode,
        max_error_fraction,
        answer,
        benchmark="craftmd",
        allow_self_grading=allow_self_grading,
    )
