"""Inspect wrappers around the harness scoring functions (no scoring logic lives here)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ResponseSchema,
    get_model,
    model_roles,
)
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState
from inspect_ai.util import JSONSchema

from harness.cache import default_cache
from harness.errors import ArgumentError, GradingError
from harness.grading import Grader, GradingMode, RubricGrader
from harness.rubric import RubricItem, summarize

logger = logging.getLogger(__name__)

GRADER_ROLE = "grader"
_MESSAGE = {
    "system": ChatMessageSystem,
    "developer": ChatMessageSystem,
    "user": ChatMessageUser,
    "assistant": ChatMessageAssistant,
}


def chat_messages(messages: Sequence[dict[str, str]]) -> list[ChatMessage]:
    """Inspect chat messages from plain role/content dicts."""
    return [_MESSAGE[m["role"]](content=m["content"]) for m in messages]


def inspect_grader(model: Model, use_schema: bool = True) -> Grader:
    """Adapt an Inspect model to the engine's grader callable."""

    async def grade(messages: list[dict[str, str]], json_schema: dict | None) -> str:
        schema = None
        if use_schema and json_schema is not None:
            schema = ResponseSchema(name="verdict", json_schema=JSONSchema.model_validate(json_schema))
        config = GenerateConfig(temperature=0.0, response_schema=schema)
        output = await model.generate(chat_messages(messages), config=config)
        if output.error:
            raise RuntimeError(output.error)
        return output.completion

    return grade


def resolve_grader() -> tuple[Model, bool]:
    """The model bound to the ``grader`` role, else the model under test (self-graded)."""
    if GRADER_ROLE in model_roles():
        return get_model(role=GRADER_ROLE), False
    return get_model(), True


def fail_on_error(max_error_fraction: float) -> bool | float:
    """Inspect's ``fail_on_error`` for "the run fails when MORE than this fraction of samples errored".

    Inspect fails at ``errors >= fraction * total``, so a bare 0.0 would mark even an error-free
    run as failed (0 >= 0); 0 maps to "fail on any error", and other fractions become strict.
    """
    if isinstance(max_error_fraction, bool) or not 0 <= max_error_fraction < 1:
        raise ArgumentError("max_error_fraction", max_error_fraction, "a fraction in [0, 1)")
    return True if max_error_fraction <= 0 else max_error_fraction + 1e-9


def rubric_from_metadata(raw: Sequence[dict]) -> list[RubricItem]:
    return [RubricItem.from_dict(r) for r in raw]


def conversation_of(state: TaskState) -> list[dict[str, str]]:
    """The sample's prompt conversation (without the reply being graded)."""
    if isinstance(state.input, str):
        return [{"role": "user", "content": state.input}]
    return [{"role": m.role, "content": m.text} for m in state.input]


@metric(name="healthbench")
def healthbench_metrics() -> Metric:
    """Headline (clipped mean, bootstrap std) and every tag score, HealthBench style."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        per_example = [s.score.metadata["metrics"] for s in scores if s.score.metadata and s.score.metadata.get("metrics")]
        if not per_example:
            return {}
        summary = summarize(per_example)
        out = {"score": summary["overall_score"].mean, "bootstrap_std": summary["overall_score"].bootstrap_std}
        out.update({name: s.mean for name, s in summary.items() if name != "overall_score" and not name.startswith("level:")})
        return out

    return compute


class InspectEngines:
    """Rubric engines for the Inspect models a scorer grades with: one per model, built on first use."""

    def __init__(self, mode: GradingMode, structured_output: bool = True, max_attempts: int = 3):
        self.mode, self.structured_output, self.max_attempts = mode, structured_output, max_attempts
        self._engines: dict[str, RubricGrader] = {}
        self._warned_self_graded = False

    def engine(self, model: Model) -> RubricGrader:
        name = str(model)
        if name not in self._engines:
            self._engines[name] = RubricGrader(
                inspect_grader(model, self.structured_output),
                grader_id=name,
                mode=self.mode,
                max_attempts=self.max_attempts,
                cache=default_cache(),
            )
        return self._engines[name]

    def grader_role(self) -> tuple[Model, bool, RubricGrader]:
        """(grader model, self-graded?, its engine); warns once when the model grades itself."""
        model, self_graded = resolve_grader()
        if self_graded and not self._warned_self_graded:
            self._warned_self_graded = True
            logger.warning("no 'grader' model role bound: %s is grading its own answers", model)
        return model, self_graded, self.engine(model)


@scorer(metrics=[healthbench_metrics()])
def rubric_scorer(grading_mode: GradingMode = "per_criterion", max_attempts: int = 3, structured_output: bool = True):
    """Grade the final reply against the sample's rubric (``metadata['rubric']``)."""
    engines = InspectEngines(grading_mode, structured_output, max_attempts)

    async def score(state: TaskState, target: Target) -> Score:
        model, self_graded, engine = engines.grader_role()
        grader_name = str(model)
        rubric = rubric_from_metadata(state.metadata["rubric"])
        result = await engine.grade(
            conversation_of(state), state.output.completion, rubric, state.metadata.get("example_tags", ())
        )
        if result.errors:
            listing = "; ".join(f"{v.item.criterion[:80]!r}: {v.error}" for v in result.errors)
            raise GradingError(f"{len(result.errors)} of {len(rubric)} criteria could not be graded by {grader_name}: {listing}")
        if result.score is None:  # the loaders reject rubrics without positive points
            raise GradingError("the rubric has no criterion with positive points, so no score can be computed")
        return Score(
            value=result.score,
            answer=state.output.completion,
            explanation="\n".join(f"[{'met' if v.met else 'not met'}] {v.item} -- {v.explanation}" for v in result.verdicts),
            metadata={
                "metrics": result.metrics,
                "verdicts": [v.to_dict() for v in result.verdicts],
                "grader": grader_name,
                "self_graded": self_graded,
                "grading_mode": grading_mode,
                "grader_calls": result.grader_calls,
            },
        )

    return score
