"""verl reward function: the harness scorers, unchanged, behind verl's ``compute_score`` signature.

verl loads it with ``reward.custom_reward_function.path=pkg://verl_recipes.m2_grpo.reward``
(``name=compute_score``). It is async, so verl's reward loop awaits one call per sample and many
calls run at once in one event loop; they all share one grading engine, one grader client and
one on-disk cache (built on first use, see ``engine()``).

Per data source:
- ``m2bench/healthbench``: ``harness.grading.RubricGrader`` on the row's rubric -> example score;
- ``m2bench/medqa``: ``harness.answers.score_choice`` (1.0 right letter, else 0.0), no grader;
- ``m2bench/consultation``: the consultation rubric score of the transcript (agent loop rows).

Every call returns the same keys (``EXTRA_KEYS``). Grading failures (a criterion the grader could
not judge after its retries) are logged and get the documented fallback: ``score =
invalid_score`` (default 0.0) with ``reward_valid = 0`` so they can be told apart and counted
(``reward_valid`` is averaged into verl's metrics). If more than ``max_invalid_fraction`` of the
last ``INVALID_WINDOW`` rewards are invalid, the reward raises: training on a broken grader stops
instead of learning from fallbacks.

Grader (first match): ``configure(...)`` (tests, benchmarks); ``M2BENCH_GRADER_BASE_URL`` +
``M2BENCH_GRADER_MODEL`` (any OpenAI-compatible server, key from ``M2BENCH_GRADER_API_KEY`` or
``OPENAI_API_KEY``); otherwise the embedded offline model (``m2bench/default``, slow, for checks).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from harness.answers import score_choice
from harness.cache import GradingCache, default_cache
from harness.errors import GradingError
from harness.grading import Grader, RubricGrader
from harness.local_model import local_grader
from harness.rubric import RubricItem

logger = logging.getLogger(__name__)

HEALTHBENCH = "m2bench/healthbench"
MEDQA = "m2bench/medqa"
CONSULTATION = "m2bench/consultation"
DATA_SOURCES = (HEALTHBENCH, MEDQA, CONSULTATION)

# the keys of every result (verl requires the same extra keys for every sample of a batch)
EXTRA_KEYS = ("score", "reward_valid", "grader_calls", "graded_criteria")
INVALID_WINDOW = 200

GRADER_URL_ENV = "M2BENCH_GRADER_BASE_URL"
GRADER_MODEL_ENV = "M2BENCH_GRADER_MODEL"
GRADER_KEY_ENV = "M2BENCH_GRADER_API_KEY"
GRADING_MODE_ENV = "M2BENCH_GRADING_MODE"
CONCURRENCY_ENV = "M2BENCH_GRADER_CONCURRENCY"
EMBEDDED_GRADER = "m2bench/default"


@dataclass
class RewardState:
    engine: RubricGrader
    recent_valid: deque


_state: RewardState | None = None
_lock = threading.Lock()
_build_lock = threading.Lock()


def grader_api_key() -> str | None:
    return os.environ.get(GRADER_KEY_ENV) or os.environ.get("OPENAI_API_KEY")


def grader_from_env() -> tuple[Grader, str]:
    """(grader callable, grader id safe to log) from the environment."""
    url, model = os.environ.get(GRADER_URL_ENV), os.environ.get(GRADER_MODEL_ENV)
    if url and model:
        from harness.clients import OpenAIChat

        client = OpenAIChat(url, model, api_key=grader_api_key())
        return client, client.name
    if url or model:
        raise GradingError(f"set both {GRADER_URL_ENV} and {GRADER_MODEL_ENV} (only one is set)")
    return local_grader(), EMBEDDED_GRADER


def configure(
    grader: Grader | None = None,
    *,
    grader_id: str | None = None,
    mode: str | None = None,
    max_concurrency: int | None = None,
    cache: GradingCache | None | bool = True,
) -> RubricGrader:
    """Build the shared engine (call before training/benchmarks to choose the grader explicitly)."""
    global _state
    if grader is None:
        grader, env_id = grader_from_env()
        grader_id = grader_id or env_id
    engine = RubricGrader(
        grader,
        grader_id=grader_id or "custom-grader",
        mode=mode or os.environ.get(GRADING_MODE_ENV, "per_criterion"),
        max_concurrency=max_concurrency or int(os.environ.get(CONCURRENCY_ENV, "64")),
        cache=default_cache() if cache is True else (None if cache is False else cache),
    )
    with _lock:
        _state = RewardState(engine, deque(maxlen=INVALID_WINDOW))
    return engine


def engine() -> RubricGrader:
    """The shared engine, built from the environment on first use."""
    state = _state
    if state is None:
        with _build_lock:  # concurrent first calls build it once
            if _state is None:
                configure()
        state = _state
    return state.engine


def reset() -> None:
    """Forget the shared engine (tests)."""
    global _state
    with _lock:
        _state = None


def json_field(value: Any) -> Any:
    """extra_info values are stored as JSON text in the parquet files (a stable column schema)."""
    return json.loads(value) if isinstance(value, str) else value


def _result(score: float, valid: bool, grader_calls: int = 0, graded: int = 0) -> dict[str, float]:
    return {"score": float(score), "reward_valid": 1.0 if valid else 0.0, "grader_calls": float(grader_calls),
            "graded_criteria": float(graded)}


def _check_invalid_rate(valid: bool, max_invalid_fraction: float, problem: str) -> None:
    state = _state
    if state is None:
        return
    state.recent_valid.append(valid)
    window = state.recent_valid
    invalid = window.count(False)
    if len(window) >= 20 and invalid > max_invalid_fraction * len(window):
        raise GradingError(
            f"{invalid} of the last {len(window)} rewards could not be graded by {state.engine.grader_id} "
            f"(more than max_invalid_fraction={max_invalid_fraction}); last problem: {problem}"
        )


def finish(score: float | None, problem: str, grader_calls: int, graded: int, *, what: str, invalid_score: float,
           max_invalid_fraction: float) -> dict[str, float]:
    """The reward dict for a graded sample, or the logged, counted fallback when ``score`` is None."""
    if score is None:
        logger.error("%s not graded (fallback score %s): %s", what, invalid_score, problem)
        _check_invalid_rate(False, max_invalid_fraction, problem)
        return _result(invalid_score, False, grader_calls, graded)
    _check_invalid_rate(True, max_invalid_fraction, "")
    return _result(score, True, grader_calls, graded)


async def rubric_reward(conversation: list[dict[str, str]], response: str, rubric: list[RubricItem],
                        example_tags: list[str] = (), *, invalid_score: float = 0.0,
                        max_invalid_fraction: float = 0.2, item_id: str = "") -> dict[str, float]:
    """Rubric score of ``response`` through the harness engine, as a reward dict."""
    grade = await engine().grade(conversation, response, rubric, example_tags)
    problem = "; ".join(f"{v.item.criterion[:60]!r}: {v.error}" for v in grade.errors) or "no positive points"
    return finish(grade.score, problem, grade.grader_calls, len(grade.verdicts) - len(grade.errors),
                  what=f"reward for {item_id or 'sample'}", invalid_score=invalid_score,
                  max_invalid_fraction=max_invalid_fraction)


def rubric_items(raw: Any) -> list[RubricItem]:
    return [RubricItem.from_dict(r) for r in json_field(raw)]


async def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None,
                        *, invalid_score: float = 0.0, max_invalid_fraction: float = 0.2, **kwargs: Any) -> dict[str, float]:
    """verl's custom reward function. Returns ``{score, reward_valid, grader_calls, graded_criteria}``.

    ``invalid_score`` and ``max_invalid_fraction`` can be set through
    ``reward.custom_reward_function.reward_kwargs``; other verl kwargs are ignored.
    """
    extra_info = extra_info or {}
    item_id = str(extra_info.get("item_id", ""))
    if data_source == MEDQA:
        options = json_field(extra_info["options"])
        return _result(score_choice(solution_str, options, str(ground_truth)), True)
    if data_source == HEALTHBENCH:
        return await rubric_reward(
            json_field(extra_info["conversation"]), solution_str, rubric_items(ground_truth),
            json_field(extra_info.get("example_tags") or "[]"),
            invalid_score=invalid_score, max_invalid_fraction=max_invalid_fraction, item_id=item_id,
        )
    if data_source == CONSULTATION:
        from verl_recipes.m2_grpo.consultation import consultation_reward

        return await consultation_reward(solution_str, ground_truth, extra_info, invalid_score=invalid_score,
                                         max_invalid_fraction=max_invalid_fraction)
    raise GradingError(f"unknown data_source {data_source!r}; this reward handles {', '.join(DATA_SOURCES)}")
