"""Inspect glue for multiple-choice exams (tasks/medqa): samples, the choice scorer, metrics.

The scorer only wraps ``harness.answers.extract_choice``; no answer checking lives here.
"""

from __future__ import annotations

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import CORRECT, INCORRECT, Metric, SampleScore, Score, Target, accuracy, metric, scorer, stderr
from inspect_ai.solver import TaskState, generate

from harness import arguments
from harness.answers import extract_choice
from harness.arguments import choice, flag
from harness.data import custom_data_label
from harness.evalsets import MEDQA
from harness.medqa import SPLITS, MCQuestion, format_prompt, load_medqa, parse_shuffle_choices


def to_sample(q: MCQuestion, cot: bool = False) -> Sample:
    return Sample(
        id=q.id,
        input=format_prompt(q, cot),
        target=q.answer,
        metadata={"options": q.options, **{k: v for k, v in q.meta.items() if v is not None}},
    )


@metric(name="answer_status", scores="unreduced")
def answer_status() -> Metric:
    """Share and count of replies with no answer or an ambiguous one (both scored wrong), over all epochs."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        statuses = [(s.score.metadata or {}).get("status") for s in scores]
        n = max(len(statuses), 1)
        out: dict[str, float] = {}
        for status in ("no_answer", "ambiguous"):
            count = statuses.count(status)
            out[status] = count / n
            out[f"{status}_count"] = float(count)
        return out

    return compute


@scorer(metrics=[accuracy(), stderr(), answer_status()])
def choice_scorer():
    """CORRECT when the letter extracted from the reply equals the target letter."""

    async def score(state: TaskState, target: Target) -> Score:
        reply = state.output.completion
        found = extract_choice(reply, state.metadata["options"])
        correct = found.matches(target.text)
        return Score(
            value=CORRECT if correct else INCORRECT,
            answer=found.letter or "",
            explanation=f"extracted {found.letter or '-'} ({found.status}, {found.method}); correct {target.text}",
            metadata=found.to_dict(),
        )

    return score


def medqa_task(
    split: str = "test", cot: bool | str = False, shuffle_choices: int | None = None, data_file: str | None = None
) -> Task:
    """MedQA-USMLE task; use Inspect's ``--epochs N`` for run-to-run variance."""
    choice("split", split, SPLITS)
    cot = flag("cot", cot)
    seed = parse_shuffle_choices(shuffle_choices)
    path = arguments.data_file("data_file", data_file) if data_file else None
    questions = load_medqa(split, path, seed)
    return Task(
        dataset=MemoryDataset([to_sample(q, cot) for q in questions], name=f"medqa_{split}"),
        solver=generate(),
        scorer=choice_scorer(),
        metadata={
            "benchmark": "medqa",
            "split": split,
            "subset": "usmle_4opt",
            "cot": cot,
            "shuffle_choices": seed,
            "data": (custom_data_label(path) if path else MEDQA[split].name)
            + (f" (choices shuffled, seed {seed})" if seed is not None else ""),
            "data_file": str(path) if path else None,
        },
    )
