"""verl reward function: the harness scorers, unchanged, behind verl's ``compute_score`` signature.

verl loads it with ``reward.custom_reward_function.path=pkg://verl_recipes.m2_grpo.reward``
(``name=compute_score``). It is async, so verl's reward loop awaits one call per sample and many
calls run at once in one event loop; they all share one grading engine, one grader client and
one on-disk cache (built on first use, see ``engine()``).

Per data source:
- ``m2bench/healthbench``: ``harness.grading.RubricGrader`` on the row's rubric -> example score, with
  the official grader profile by default (as the HealthBench evals; ``M2BENCH_GRADER_PROFILE=m2bench``
  for our prompt and batched grading);
- ``m2bench/medqa``: ``harness.answers.score_choice`` (1.0 right letter, else 0.0), no grader;
- ``m2bench/consultation``: the consultation rubric score of the transcript (agent loop rows).

Every call returns the same keys (``EXTRA_KEYS``). Grading failures (a criterion the grader could
not judge after its retries) are logged and get ``score = invalid_score`` (default 0.0) with
``reward_valid = 0``; the GRPO group of such a sample is then dropped and counted, and the run
stops past ``m2.max_dropped_group_fraction`` (``failures.py``), so no update learns from a fallback.
Consultation rows arrive here through verl's reward manager like every other row
(``reward_manager.M2RewardManager`` hands over the episode the agent loop recorded).

The grader, its engine and the valid/invalid bookkeeping live in ``grader.py``; ``configure``,
``engine`` and ``reset`` are re-exported here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from harness.answers import score_choice
from harness.errors import GradingError
from harness.rubric import RubricItem
from verl_recipes.m2_grpo.consultation import consultation_reward
from verl_recipes.m2_grpo.grader import (  # noqa: F401  (configure/reset/engine: the reward's public API)
    EXTRA_KEYS,
    GRADER_MODEL_ENV,
    GRADER_URL_ENV,
    configure,
    engine,
    finish,
    healthbench_profile,
    json_field,
    reset,
    result,
)

HEALTHBENCH = "m2bench/healthbench"
MEDQA = "m2bench/medqa"
CONSULTATION = "m2bench/consultation"
DATA_SOURCES = (HEALTHBENCH, MEDQA, CONSULTATION)


async def rubric_reward(
    conversation: list[dict[str, str]],
    response: str,
    rubric: Sequence[RubricItem],
    example_tags: Sequence[str] = (),
    *,
    invalid_score: float = 0.0,
    item_id: str = "",
) -> dict[str, float]:
    """Rubric score of ``response`` through the harness engine, as a reward dict."""
    grade = await engine().grade(conversation, response, rubric, example_tags, profile=healthbench_profile())
    problem = "; ".join(f"{v.item.criterion[:60]!r}: {v.error}" for v in grade.errors) or "no positive points"
    return finish(
        grade.score,
        problem,
        grade.grader_calls,
        len(grade.verdicts) - len(grade.errors),
        what=f"reward for {item_id or 'sample'}",
        invalid_score=invalid_score,
    )


def rubric_items(raw: Any) -> tuple[RubricItem, ...]:
    """The rubric of a row (``ground_truth``: JSON text as verl reads it from the parquet file, or a list of dicts)."""
    if isinstance(raw, str):
        return _rubric_of_text(raw)
    return tuple(RubricItem.from_dict(r) for r in raw)


@functools.lru_cache(maxsize=4096)
def _rubric_of_text(text: str) -> tuple[RubricItem, ...]:
    """Parsed once per distinct rubric text: the rollouts of one prompt share it (items are immutable)."""
    return rubric_items(json.loads(text))


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    *,
    invalid_score: float = 0.0,
    **kwargs: Any,
) -> dict[str, float]:
    """verl's custom reward function. Returns ``{score, reward_valid, grader_calls, graded_criteria}``.

    ``invalid_score`` is set through ``reward.custom_reward_function.reward_kwargs`` (config/m2_grpo.yaml);
    other verl kwargs are ignored.
    """
    extra_info = extra_info or {}
    item_id = str(extra_info.get("item_id", ""))
    if data_source == MEDQA:
        options = json_field(extra_info["options"])
        return result(score_choice(solution_str, options, str(ground_truth)), True)
    if data_source == HEALTHBENCH:
        return await rubric_reward(
            json_field(extra_info["conversation"]),
            solution_str,
            rubric_items(ground_truth),
            json_field(extra_info.get("example_tags") or "[]"),
            invalid_score=invalid_score,
            item_id=item_id,
        )
    if data_source == CONSULTATION:
        return await consultation_reward(solution_str, ground_truth, extra_info, invalid_score=invalid_score)
    raise GradingError(f"unknown data_source {data_source!r}; this reward handles {', '.join(DATA_SOURCES)}")
