"""The Inspect task behind tasks/healthbench_meta_eval: the model under test is the grader.

One sample per (conversation, completion); its rubric rows and physician labels are in the
metadata. The scorer grades them with the harness engine (``harness.meta_eval.grade_rows``,
official grader profile by default) and the metric is the official pairwise balanced F1 against
physicians, overall and per category, beside the physician baseline (``harness.meta_eval``). A
sample with a row the grader could not judge is a sample error (listed in the log, counted by
Inspect), and the run fails beyond ``max_error_fraction``.
"""

from __future__ import annotations

from dataclasses import asdict

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import Generate, TaskState, solver

from harness import arguments
from harness.arguments import flag
from harness.data import custom_data_label
from harness.errors import GradingError
from harness.evals.failures import one_line_errors
from harness.evals.scoring import InspectEngines, chat_messages, fail_on_error
from harness.grading import OFFICIAL_PROFILE, check_grader_profile, check_grading_mode
from harness.meta_eval import (
    META_EVAL,
    MetaEvalRow,
    conversation_groups,
    f1_by_category,
    grade_rows,
    grader_agreement,
    load_meta_eval,
    physician_baseline,
)


def samples(rows: list[MetaEvalRow]) -> list[Sample]:
    return [
        Sample(id=n, input=chat_messages(rows[idx[0]].prompt), metadata={"rows": [asdict(rows[i]) for i in idx]})
        for n, idx in enumerate(conversation_groups(rows), 1)
    ]


@solver
def no_generation():
    """The graded completion is given by the data; nothing is generated."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        return state

    return solve


def _rows_and_labels(scores: list[SampleScore]) -> tuple[list[MetaEvalRow], list]:
    rows, labels = [], []
    for s in scores:
        metadata = s.score.metadata or {}
        for raw, label in zip(metadata["rows"], metadata["grader_labels"]):
            rows.append(MetaEvalRow(**raw))
            labels.append(label)
    return rows, labels


@metric(name="meta_eval", scores="unreduced")
def meta_eval_metrics() -> Metric:
    """Official pairwise balanced F1 of the grader vs physicians and the physician baseline, overall and per category
    (every epoch's verdicts count, as simple-evals counts its repeats)."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        rows, labels = _rows_and_labels(scores)
        model, physician = grader_agreement(rows, labels), physician_baseline(rows)
        out: dict[str, float | None] = {
            "pairwise_model_f1_balanced": model.get("pairwise_model_f1_balanced", {}).get("value"),
            "pairwise_physician_f1_balanced": physician.get("pairwise_physician_f1_balanced", {}).get("value"),
            "rows_graded": float(len(rows)),
        }
        for rater, metrics in (("model", model), ("physician", physician)):
            for category, f1 in f1_by_category(metrics, rater).items():  # the physicians' figure beside the model's
                out[f"{category}: pairwise_{rater}_f1_balanced"] = f1
        return {k: v for k, v in out.items() if v is not None}

    return compute


@scorer(metrics=[meta_eval_metrics()])
def meta_eval_scorer(
    grading_mode: str = "per_criterion", structured_output: bool | None = None, grader_profile: str = OFFICIAL_PROFILE
):
    engines = InspectEngines(grading_mode, structured_output, profile=grader_profile, task="healthbench_meta_eval")

    async def score(state: TaskState, target: Target) -> Score:
        rows = [MetaEvalRow(**r) for r in state.metadata["rows"]]
        labels = await grade_rows(rows, engines.engine(get_model()))
        failed = [r.rubric[:80] for r, label in zip(rows, labels) if label is None]
        if failed:
            raise GradingError(f"{len(failed)} of {len(rows)} rows could not be graded: {failed}")
        agree = [label == (sum(r.labels) * 2 > len(r.labels)) for r, label in zip(rows, labels)]
        return Score(
            value=sum(agree) / len(agree),  # per sample: agreement with the physician majority
            metadata={
                "rows": state.metadata["rows"],
                "grader_labels": labels,
                "grading_mode": grading_mode,
                "grader_profile": grader_profile,
            },
        )

    return score


@one_line_errors
def meta_eval_task(
    data_file: str | None = None,
    grading_mode: str = "per_criterion",
    structured_output: bool | None = None,
    grader_profile: str = OFFICIAL_PROFILE,
    max_error_fraction: float = 0.05,
) -> Task:
    check_grading_mode(grading_mode, check_grader_profile(grader_profile))
    structured_output = None if structured_output is None else flag("structured_output", structured_output)
    on_error = fail_on_error(max_error_fraction)
    path = arguments.data_file("data_file", data_file) if data_file else None
    rows = load_meta_eval(path)
    return Task(
        dataset=MemoryDataset(samples(rows), name="healthbench_meta_eval"),
        solver=no_generation(),
        scorer=meta_eval_scorer(grading_mode, structured_output, grader_profile),
        fail_on_error=on_error,
        metadata={
            "benchmark": "healthbench_meta_eval",
            "grading_mode": grading_mode,
            "grader_profile": grader_profile,
            "data": custom_data_label(path) if path else META_EVAL.name,
        },
    )
