"""The Inspect task behind tasks/healthbench*, built on the loader and the rubric scorer."""

from __future__ import annotations

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.solver import generate

from harness.data import user_path
from harness.evals.scoring import chat_messages, fail_on_error, rubric_scorer
from harness.grading import check_grading_mode
from harness.healthbench import HealthBenchExample, load_healthbench


def to_sample(example: HealthBenchExample) -> Sample:
    return Sample(
        id=example.prompt_id,
        input=chat_messages(example.prompt),
        metadata={
            "prompt_id": example.prompt_id,
            "rubric": [item.to_dict() for item in example.rubrics],
            "example_tags": example.example_tags,
        },
    )


def healthbench_task(
    subset: str = "full",
    data_file: str | None = None,
    grading_mode: str = "per_criterion",
    structured_output: bool = True,
    max_error_fraction: float = 0.05,
) -> Task:
    check_grading_mode(grading_mode)
    on_error = fail_on_error(max_error_fraction)  # validates before any data is loaded
    examples = load_healthbench(subset, data_file)
    name = "healthbench" if subset == "full" else f"healthbench_{subset}"
    return Task(
        dataset=MemoryDataset([to_sample(e) for e in examples], name=name),
        solver=generate(),
        scorer=rubric_scorer(grading_mode=grading_mode, structured_output=structured_output),
        fail_on_error=on_error,
        metadata={
            "benchmark": name,
            "subset": subset,
            "rubric_graded": True,
            "data_file": str(user_path(data_file)) if data_file else None,
        },
    )
