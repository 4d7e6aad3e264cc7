"""The Inspect task behind tasks/healthbench_meta_eval: the model under test is the grader.

One sample per (conversation, completion); its rubric rows and physician labels are in the
metadata. The scorer grades them with the harness engine (``harness.meta_eval.grade_rows``)
and the metric is the official pairwise balanced F1 against physicians (``harness.meta_eval``).
"""

from __future__ import annotations

from dataclasses import asdict

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import Generate, TaskState, solver

from harness.evals.scoring import InspectEngines, chat_messages
from harness.grading import check_grading_mode
from harness.meta_eval import MetaEvalRow, conversation_groups, grade_rows, grader_agreement, load_meta_eval, physician_agreement


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


@metric(name="meta_eval")
def meta_eval_metrics() -> Metric:
    """Official pairwise balanced F1 of the grader vs physicians, and the physician baseline."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        rows, labels = _rows_and_labels(scores)
        model, physician = grader_agreement(rows, labels), physician_agreement(rows)
        out = {"pairwise_model_f1_balanced": model["f1_balanced"], "pairwise_physician_f1_balanced": physician["f1_balanced"]}
        for cat, values in model["by_category"].items():
            out[f"{cat}: pairwise_model_f1_balanced"] = values["f1_balanced"]
        return {k: v for k, v in out.items() if v is not None}

    return compute


@scorer(metrics=[meta_eval_metrics()])
def meta_eval_scorer(grading_mode: str = "per_criterion", structured_output: bool = True):
    engines = InspectEngines(grading_mode, structured_output)

    async def score(state: TaskState, target: Target) -> Score:
        rows = [MetaEvalRow(**r) for r in state.metadata["rows"]]
        labels = await grade_rows(rows, engines.engine(get_model()))
        agree = [label == (sum(r.labels) * 2 > len(r.labels)) for r, label in zip(rows, labels) if label is not None]
        return Score(
            value=sum(agree) / len(agree) if agree else 0.0,  # per sample: agreement with the physician majority
            metadata={"rows": state.metadata["rows"], "grader_labels": labels, "grading_mode": grading_mode},
        )

    return score


def meta_eval_task(data_file: str | None = None, grading_mode: str = "per_criterion", structured_output: bool = True) -> Task:
    check_grading_mode(grading_mode)
    rows = load_meta_eval(data_file)
    return Task(
        dataset=MemoryDataset(samples(rows), name="healthbench_meta_eval"),
        solver=no_generation(),
        scorer=meta_eval_scorer(grading_mode, structured_output),
        metadata={"benchmark": "healthbench_meta_eval", "grading_mode": grading_mode},
    )
