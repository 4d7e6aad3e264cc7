"""Consultation rows and their reward: the harness episode runner, patient simulator and scorer.

- ``opening_messages(case)``: the row prompt, exactly what ``harness.consultation.ChatDoctor``
  sends first (doctor instructions + JSON tool protocol, then the case opening);
- ``consultation_reward(...)``: ``harness.consultation.score_record`` (``score_consultation`` on the episode record)
  (rubric from ``harness.rubric_generator.case_rubric`` with the reward grader as generator);
- ``patient_chat()``: the patient model, ``grader.endpoint("patient")`` (the recipe's one role
  lookup: ``M2BENCH_PATIENT_*``, else the grader's endpoint), else the embedded model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from harness.cases import Case
from harness.consultation import (
    DOCTOR_INSTRUCTIONS,
    TEXT_PROTOCOL,
    opening,
    score_record,
)
from harness.local_model import local_grader
from harness.rubric_generator import case_rubric
from verl_recipes.m2_grpo import grader

MODE = "conversation"


def opening_messages(case: Case) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": f"{DOCTOR_INSTRUCTIONS}\n\n{TEXT_PROTOCOL}"},
        {"role": "user", "content": opening(case, MODE)},
    ]


def case_of(extra_info: dict) -> Case:
    return Case.from_dict(grader.json_field(extra_info["case"]))


_patient: dict[grader.Endpoint | None, Callable[[list[dict[str, str]]], Awaitable[str]]] = {}


def patient_chat() -> Callable[[list[dict[str, str]]], Awaitable[str]]:
    """The patient simulator's model (see module docstring); one client per endpoint."""
    found = grader.endpoint("patient")
    if found not in _patient:
        if found is None:
            embedded = local_grader()
            _patient[found] = lambda messages: embedded(messages, None)
        else:
            _patient[found] = found.client(temperature=0.7, max_tokens=256)  # called as chat(messages)
    return _patient[found]


async def consultation_reward(
    solution_str: str, ground_truth: Any, extra_info: dict, *, invalid_score: float = 0.0
) -> dict[str, float]:
    """Consultation rubric score of the episode in ``extra_info['transcript']`` (an Episode dict)."""
    item = str(extra_info.get("item_id", ""))
    raw = extra_info.get("transcript")
    problem = ""
    result = None
    if not raw:
        problem = "no transcript: consultation rows must be rolled out by the m2_consultation agent loop"
    else:
        record = grader.json_field(raw)
        case = case_of(extra_info)
        engine = grader.engine()
        try:
            rubric = await case_rubric(case, engine.grader, engine.grader_id)
            result = await score_record(case, record, engine, rubric)
        except Exception as exc:  # rubric generation / grading transport failure: the documented fallback
            problem = f"{type(exc).__name__}: {exc}"
        if result is not None and result.score is None:
            problem = "; ".join(result.errors) or "no score"
    calls = result.grader_calls if result is not None else 0
    graded = sum(v.met is not None for v in result.verdicts) if result is not None else 0
    return grader.finish(
        result.score if result is not None and not problem else None,
        problem,
        calls,
        graded,
        what=f"consultation reward for {item}",
        invalid_score=invalid_score,
    )
