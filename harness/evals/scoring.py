"""Inspect wrappers around the harness scoring functions (no scoring logic lives here)."""

from __future__ import annotations

from collections.abc import Sequence

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelOutput,
    ResponseSchema,
    get_model,
    model_roles,
)
from inspect_ai.model._generate_config import active_generate_config  # not exported: the eval's --max-retries etc.
from inspect_ai.model._model import active_model  # not exported; the model an eval is resolving tasks for
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState
from inspect_ai.util import JSONSchema

from harness.arguments import fraction, whole
from harness.cache import default_cache
from harness.clients import EndpointError, failure_cause, redact_url
from harness.errors import DataError, GradingError
from harness.evals.failures import TaskFailure
from harness.grading import (
    M2BENCH_PROFILE,
    MAX_GRADER_CHARS,
    OFFICIAL_PROFILE,
    Grader,
    GradingMode,
    RubricGrader,
    Sampling,
    check_grader_profile,
    check_grading_mode,
)
from harness.rubric import RubricItem, summarize
from harness.simple_evals import official_grading

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


# Limits for the helper roles (grader, patient, rubric generator) where neither the role's own config nor
# the eval's options set one. Inspect's own default is to retry forever, so a grader that stops answering
# would hang the run. Each grader call then ends within (max_retries + 1) x attempt_timeout plus Inspect's
# backoff waits (3-6 s, then 6-9 s): at most 375 s; the rubric engine tries a criterion 3 times, so an
# unreachable grader makes the criterion (and its sample) an error after at most 3 x 375 s + 1.5 s of calls.
ROLE_LIMITS = {"attempt_timeout": 120, "max_retries": 2}


def bounded(model: Model, config: GenerateConfig) -> GenerateConfig:
    """``config`` with ``ROLE_LIMITS`` filled in where the user set none (role config, eval options or ``config``).

    Inspect gives a role model the eval's ``--max-retries`` / ``--timeout`` but not ``--attempt-timeout``;
    here the eval's ``--attempt-timeout`` also reaches the roles. The embedded model runs in-process
    (no outage to bound, and a slow CPU must not time it out), so it is left as it is.
    """
    if str(model).startswith("m2bench/"):
        return config
    active = active_generate_config()
    filled = GenerateConfig()
    for key, default in ROLE_LIMITS.items():
        if getattr(config, key) is not None or getattr(model.config, key) is not None:
            continue  # set by the caller or in the role's own config
        if getattr(active, key) is None:
            setattr(filled, key, default)
        elif key == "attempt_timeout":  # Inspect applies the eval's value to the model under test only
            setattr(filled, key, getattr(active, key))
    return config.merge(filled)


def endpoint_of(model: Model) -> str:
    """``role model at base-url`` for error messages, credentials removed."""
    role = f"{model.role} " if model.role else ""
    url = model.api.base_url
    return f"{role}{model}" + (f" at {redact_url(url)}" if url else "")


async def generate_bounded(model: Model, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
    """One generation by a helper role within ``ROLE_LIMITS``; a failure is one ``EndpointError`` line naming
    the endpoint and the cause (not Inspect's ``RetryError[<Future ...>]``)."""
    try:
        output = await model.generate(messages, config=bounded(model, config))
    except Exception as exc:
        raise EndpointError(f"{endpoint_of(model)} failed: {failure_cause(exc)}") from exc
    if output.error:
        raise EndpointError(f"{endpoint_of(model)} failed: {output.error}")
    return output


def inspect_grader(model: Model, use_schema: bool | None = None) -> Grader:
    """Adapt an Inspect model to the engine's grader callable.

    The profile's sampling settings go into the request; the JSON schema goes as a response format
    when ``use_schema`` says so (None: when the profile asks for it).
    """

    async def grade(messages: list[dict[str, str]], json_schema: dict | None, sampling: Sampling | None = None) -> str:
        sampling = sampling or Sampling()
        schema = None
        if json_schema is not None and (sampling.use_schema if use_schema is None else use_schema):
            schema = ResponseSchema(name="verdict", json_schema=JSONSchema.model_validate(json_schema))
        config = GenerateConfig(temperature=sampling.temperature, max_tokens=sampling.max_tokens, response_schema=schema)
        return (await generate_bounded(model, chat_messages(messages), config)).completion

    return grade


def resolve_grader() -> tuple[Model, bool]:
    """The model bound to the ``grader`` role, else the model under test (self-graded)."""
    if GRADER_ROLE in model_roles():
        return get_model(role=GRADER_ROLE), False
    return get_model(), True


def grader_required(task: str) -> str:
    """The one-line message for a rubric-graded run without a grader role."""
    try:
        official = official_grading().grader_model  # read from simple-evals' source
        which = f"the official HealthBench grader is {official}, e.g. --model-role grader=openai/{official}"
    except DataError as exc:
        which = f"the official HealthBench grader is named in simple-evals' source, not available here: {exc}"
    return (
        f"{task} needs a grader model: pass --model-role grader=MODEL ({which}; offline: --model-role grader=m2bench/default), "
        "or -T allow_self_grading=true to let the model under test grade its own answers (its scores are then "
        "marked self-graded and not comparable)"
    )


def require_grader_role(task: str, allow_self_grading: bool) -> None:
    """Stop a rubric-graded task at once when no ``grader`` role is bound (unless self-grading is allowed).

    Inspect binds the model roles before it builds the tasks of an eval, so a task builder called by
    ``inspect eval`` / ``eval("tasks/...")`` sees them and fails before any sample runs. A Task built
    outside an eval (then passed to ``eval()``) cannot see them: its scorer checks when it first scores.
    """
    if active_model() is None:  # not inside an eval's task resolution
        return
    if GRADER_ROLE not in model_roles() and not allow_self_grading:
        raise TaskFailure(grader_required(task))


def fail_on_error(max_error_fraction: float) -> bool | float:
    """Inspect's ``fail_on_error`` for "the run fails when MORE than this fraction of samples errored".

    Inspect fails at ``errors >= fraction * total``, so a bare 0.0 would mark even an error-free
    run as failed (0 >= 0); 0 maps to "fail on any error", and other fractions become strict.
    """
    max_error_fraction = fraction("max_error_fraction", max_error_fraction)
    return True if max_error_fraction <= 0 else max_error_fraction + 1e-9


def check_max_grader_chars(value: object) -> int:
    """``-T max_grader_chars=N``: the most characters of conversation + reply a grading may send (>= 1)."""
    return whole("max_grader_chars", value, minimum=1, meaning=f" (characters; default {MAX_GRADER_CHARS})")


def rubric_from_metadata(raw: Sequence[dict]) -> list[RubricItem]:
    return [RubricItem.from_dict(r) for r in raw]


def conversation_of(state: TaskState) -> list[dict[str, str]]:
    """The sample's prompt conversation (without the reply being graded)."""
    if isinstance(state.input, str):
        return [{"role": "user", "content": state.input}]
    return [{"role": m.role, "content": m.text} for m in state.input]


@metric(name="healthbench", scores="unreduced")
def healthbench_metrics() -> Metric:
    """Headline (clipped mean, bootstrap std) and every tag score, HealthBench style.

    Every (sample, epoch) is one entry, as simple-evals pools its repeats: the metric asks Inspect
    for unreduced scores, so the epochs reducer never averages them first.
    """

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        meta = [s.score.metadata for s in scores if s.score.metadata and s.score.metadata.get("metrics")]
        if not meta:
            return {}
        summary = summarize([m["metrics"] for m in meta])
        out = {
            "score": summary["overall_score"].mean,
            "bootstrap_std": summary["overall_score"].bootstrap_std,
            "n_scored": float(len(meta)),
        }
        out.update({name: s.mean for name, s in summary.items() if name != "overall_score" and not name.startswith("level:")})
        out["grader_retries"] = float(sum(v.get("retries", 0) for m in meta for v in m.get("verdicts", [])))
        if any(m.get("self_graded") for m in meta):
            out["self_graded"] = 1.0
        return out

    return compute


class InspectEngines:
    """Rubric engines for the Inspect models a scorer grades with: one per model, built on first use.

    ``structured_output``: send the JSON schema as a response format (None: the embedded model always,
    others when the profile asks for it, i.e. ``m2bench`` yes, ``simple_evals`` no, as upstream).
    ``allow_self_grading``: without it, grading with the model under test (no ``grader`` role) fails.
    ``share_verdicts_across_epochs``: identical replies in different epochs share verdicts (default:
    each epoch is graded afresh).
    """

    def __init__(
        self,
        mode: GradingMode,
        structured_output: bool | None = None,
        max_attempts: int = 3,
        *,
        profile: str = M2BENCH_PROFILE,
        allow_self_grading: bool = False,
        share_verdicts_across_epochs: bool = False,
        task: str = "this task",
        max_grader_chars: int = MAX_GRADER_CHARS,
    ):
        check_grading_mode(mode, check_grader_profile(profile))
        self.max_grader_chars = check_max_grader_chars(max_grader_chars)
        self.mode, self.profile, self.structured_output, self.max_attempts = mode, profile, structured_output, max_attempts
        self.allow_self_grading, self.share_verdicts_across_epochs = allow_self_grading, share_verdicts_across_epochs
        self.task = task
        self._engines: dict[str, RubricGrader] = {}

    def engine(self, model: Model) -> RubricGrader:
        name = str(model)
        if name not in self._engines:
            embedded = name.startswith("m2bench/")
            use_schema = self.structured_output if self.structured_output is not None else (True if embedded else None)
            self._engines[name] = RubricGrader(
                inspect_grader(model, use_schema),
                grader_id=name,
                mode=self.mode,
                profile=self.profile,
                max_attempts=self.max_attempts,
                cache=default_cache(),
                max_grader_chars=self.max_grader_chars,
            )
        return self._engines[name]

    def grader_role(self) -> tuple[Model, bool, RubricGrader]:
        """(grader model, self-graded?, its engine); self-grading only when allowed."""
        model, self_graded = resolve_grader()
        if self_graded and not self.allow_self_grading:
            raise TaskFailure(grader_required(self.task))
        return model, self_graded, self.engine(model)

    def epoch(self, state: TaskState) -> int | None:
        """The epoch for the grading cache key (None when epochs share verdicts)."""
        return None if self.share_verdicts_across_epochs else state.epoch


def failure_listing(errors) -> str:
    """The errors of ungraded criteria, each distinct error once (an outage fails every criterion alike)."""
    groups: dict[str, list[str]] = {}
    for v in errors:
        groups.setdefault(v.error, []).append(v.item.criterion)
    return "; ".join(
        f"{criteria[0][:80]!r}: {error}" if len(criteria) == 1 else f"{len(criteria)} criteria: {error}"
        for error, criteria in groups.items()
    )


def verdict_lines(verdicts, grader: str, self_graded: bool) -> str:
    head = f"graded by {grader}" + (" (SELF-GRADED: the model under test graded its own answer)" if self_graded else "")
    return "\n".join([head] + [f"[{'met' if v.met else 'not met'}] {v.item} -- {v.explanation}" for v in verdicts])


@scorer(metrics=[healthbench_metrics()])
def rubric_scorer(
    grading_mode: GradingMode = "per_criterion",
    max_attempts: int = 3,
    structured_output: bool | None = None,
    grader_profile: str = OFFICIAL_PROFILE,
    allow_self_grading: bool = False,
    share_verdicts_across_epochs: bool = False,
    task: str = "this task",
    max_grader_chars: int = MAX_GRADER_CHARS,
):
    """Grade the final reply against the sample's rubric (``metadata['rubric']``), by default as simple-evals does."""
    engines = InspectEngines(
        grading_mode,
        structured_output,
        max_attempts,
        profile=grader_profile,
        allow_self_grading=allow_self_grading,
        share_verdicts_across_epochs=share_verdicts_across_epochs,
        task=task,
        max_grader_chars=max_grader_chars,
    )

    async def score(state: TaskState, target: Target) -> Score:
        model, self_graded, engine = engines.grader_role()
        grader_name = str(model)
        rubric = rubric_from_metadata(state.metadata["rubric"])
        result = await engine.grade(
            state.metadata.get("prompt") or conversation_of(state),  # the row's own messages, roles as written
            state.output.completion,
            rubric,
            state.metadata.get("example_tags", ()),
            epoch=engines.epoch(state),
        )
        if result.errors:
            listing = failure_listing(result.errors)
            raise GradingError(f"{len(result.errors)} of {len(rubric)} criteria could not be graded by {grader_name}: {listing}")
        if result.score is None:  # the loaders reject rubrics without positive points
            raise GradingError("the rubric has no criterion with positive points, so no score can be computed")
        return Score(
            value=result.score,
            answer=state.output.completion,
            explanation=verdict_lines(result.verdicts, grader_name, self_graded),
            metadata={
                "metrics": result.metrics,
                "verdicts": [v.to_dict() for v in result.verdicts],
                "grader": grader_name,
                "self_graded": self_graded,
                "grader_profile": grader_profile,
                "grading_mode": grading_mode,
                "grader_calls": result.grader_calls,
                "epoch": state.epoch,
            },
        )

    return score
