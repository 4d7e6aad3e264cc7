"""Consultation rows and their reward: the harness episode runner, patient simulator and scorer.

- ``opening_messages(case)``: the row prompt, exactly what ``harness.consultation.ChatDoctor``
  sends first (doctor instructions + JSON tool protocol, then the case opening);
- ``consultation_reward(...)``: ``harness.consultation.score_record`` (``score_consultation`` on the episode record)
  (rubric from ``harness.rubric_generator.case_rubric`` with the reward grader as generator);
- ``patient_chat()``: the patient model: ``M2BENCH_PATIENT_BASE_URL`` + ``M2BENCH_PATIENT_MODEL``
  (OpenAI-compatible), else the grader endpoint, else the embedded model.
"""

from __future__ import annotations

import os
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

PATIENT_URL_ENV = "M2BENCH_PATIENT_BASE_URL"
PATIENT_MODEL_ENV = "M2BENCH_PATIENT_MODEL"
MODE = "conversation"


def opening_messages(case: Case) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": f"{DOCTOR_INSTRUCTIONS}\n\n{TEXT_PROTOCOL}"},
        {"role": "user", "content": opening(case, MODE)},
    ]


def case_of(extra_info: dict) -> Case:
    return Case.from_dict(grader.json_field(extra_info["case"]))


_patient: dict[tuple, Callable[[list[dict[str, str]]], Awaitable[str]]] = {}


def patient_chat() -> Callable[[list[dict[str, str]]], Awaitable[str]]:
    """The patient simulator's model (see module docstring); one client per environment setting."""
    key = tuple(os.environ.get(k) for k in (PATIENT_URL_ENV, PATIENT_MODEL_ENV, grader.GRADER_URL_ENV, grader.GRADER_MODEL_ENV))
    if key not in _patient:
        _patient[key] = _make_patient_chat()
    return _patient[key]


def _make_patient_chat() -> Callable[[list[dict[str, str]]], Awaitable[str]]:
    url = os.environ.get(PATIENT_URL_ENV) or os.environ.get(grader.GRADER_URL_ENV)
    model = os.environ.get(PATIENT_MODEL_ENV) or os.environ.get(grader.GRADER_MODEL_ENV)
    if url and model:
        from harness.clients import OpenAIChat

        client = OpenAIChat(url, model, api_key=grader.grader_api_key(), temperature=0.7, max_tokens=256)
        return lambda messages: client(messages)
    embedded = local_grader()
    return lambda messages: embedded(messages, None)


async def consultation_reward(
    solution_str: str, ground_truth: Any, extra_info: dict, *, invalid_score: float = 0.0, max_invalid_fraction: float = 0.2
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
        max_invalid_fraction=max_invalid_fraction,
    )
