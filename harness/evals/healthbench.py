"""The Inspect task behind tasks/healthbench*, built on the loader and the rubric scorer."""

from __future__ import annotations

from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageAssistant, ModelOutput
from inspect_ai.solver import Generate, Solver, TaskState, generate, solver

from harness import arguments
from harness.arguments import choice, flag
from harness.data import custom_data_label
from harness.evals.failures import one_line_errors
from harness.evals.scoring import chat_messages, check_max_grader_chars, fail_on_error, require_grader_role, rubric_scorer
from harness.evalsets import HEALTHBENCH
from harness.grading import MAX_GRADER_CHARS, OFFICIAL_PROFILE, check_grader_profile, check_grading_mode
from harness.healthbench import HealthBenchExample, load_healthbench

# where the graded replies come from: the model under test, or (no model needed) the physician-written
# reference of each row, or an empty reply (a floor); the two reference modes use only rows with a reference
RESPONSES = ("model", "ideal", "empty")
REFERENCE_MODEL = "reference"  # the model column of a reference-mode run: reference/ideal, reference/empty


def to_sample(example: HealthBenchExample, responses: str = "model") -> Sample:
    metadata: dict[str, Any] = {
        "prompt_id": example.prompt_id,
        "prompt": example.prompt,
        "rubric": [item.to_dict() for item in example.rubrics],
        "example_tags": example.example_tags,
    }
    if responses != "model":
        metadata["reference_reply"] = example.ideal_completion if responses == "ideal" else ""
    return Sample(id=example.prompt_id, input=chat_messages(example.prompt), metadata=metadata)


@solver
def reference_reply() -> Solver:
    """The reply to grade is given by the sample (``metadata['reference_reply']``); nothing is generated."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        text = state.metadata["reference_reply"]
        state.messages.append(ChatMessageAssistant(content=text, model=REFERENCE_MODEL))
        state.output = ModelOutput.from_content(model=REFERENCE_MODEL, content=text)
        return state

    return solve


@one_line_errors
def healthbench_task(
    subset: str = "full",
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
    name = "healthbench" if subset == "full" else f"healthbench_{subset}"
    check_grading_mode(grading_mode, check_grader_profile(grader_profile))
    choice("responses", responses, RESPONSES)
    allow_self_grading = flag("allow_self_grading", allow_self_grading)
    share_verdicts_across_epochs = flag("share_verdicts_across_epochs", share_verdicts_across_epochs)
    structured_output = None if structured_output is None else flag("structured_output", structured_output)
    on_error = fail_on_error(max_error_fraction)  # validates before any data is loaded
    max_grader_chars = check_max_grader_chars(max_grader_chars)
    path = arguments.data_file("data_file", data_file) if data_file else None
    require_grader_role(name, allow_self_grading)
    examples = load_healthbench(subset, path)
    skipped = 0
    if responses != "model":
        kept = [e for e in examples if e.ideal_completion and e.ideal_completion.strip()]
        skipped, examples = len(examples) - len(kept), kept
    return Task(
        dataset=MemoryDataset([to_sample(e, responses) for e in examples], name=name),
        solver=generate() if responses == "model" else reference_reply(),
        scorer=rubric_scorer(
            grading_mode=grading_mode,
            structured_output=structured_output,
            grader_profile=grader_profile,
            allow_self_grading=allow_self_grading,
            share_verdicts_across_epochs=share_verdicts_across_epochs,
            task=name,
            max_grader_chars=max_grader_chars,
        ),
        fail_on_error=on_error,
        metadata={
            "benchmark": name,
            "subset": subset,
            "rubric_graded": True,
            "grader_profile": grader_profile,
            "grading_mode": grading_mode,
            "data": custom_data_label(path) if path else HEALTHBENCH[subset].name,
            "data_file": str(path) if path else None,
            "responses": responses,
            "rows_without_reference": skipped,
            "allow_self_grading": allow_self_grading,
        },
    )
