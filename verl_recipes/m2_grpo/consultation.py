"""Consultation rows and their reward: the harness episode runner, patient simulator and scorer.

- ``opening_messages(case)``: the row prompt, exactly what ``harness.consultation.ChatDoctor``
  sends first (doctor instructions + JSON tool protocol, then the case opening);
- ``consultation_reward(...)``: ``harness.consultation.score_consultation`` on the episode record
  (rubric from ``harness.rubric_generator.case_rubric`` with the reward grader as generator);
- ``patient_chat()``: the patient model: ``M2BENCH_PATIENT_BASE_URL`` + ``M2BENCH_PATIENT_MODEL``
  (OpenAI-compatible), else the grader endpoint, else the embedded model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from harness.cases import Case
from harness.consultation import (
    DOCTOR_INSTRUCTIONS,
    TEXT_PROTOCOL,
    Action,
    Assessment,
    opening,
    run_consultation,
    score_consultation,
    tool_call_json,
)
from harness.local_model import local_grader
from harness.rubric_generator import case_rubric

from verl_recipes.m2_grpo import reward

PATIENT_URL_ENV = "M2BENCH_PATIENT_BASE_URL"
PATIENT_MODEL_ENV = "M2BENCH_PATIENT_MODEL"
MODE = "conversation"


def opening_messages(case: Case) -> list[dict[str, str]]:
    return [{"role": "system", "content": f"{DOCTOR_INSTRUCTIONS}\n\n{TEXT_PROTOCOL}"},
            {"role": "user", "content": opening(case, MODE)}]


def case_of(extra_info: dict) -> Case:
    return Case.from_dict(reward.json_field(extra_info["case"]))


_patient: dict[tuple, Callable[[list[dict[str, str]]], Awaitable[str]]] = {}


def patient_chat() -> Callable[[list[dict[str, str]]], Awaitable[str]]:
    """The patient simulator's model (see module docstring); one client per environment setting."""
    key = tuple(os.environ.get(k) for k in (PATIENT_URL_ENV, PATIENT_MODEL_ENV, reward.GRADER_URL_ENV, reward.GRADER_MODEL_ENV))
    if key not in _patient:
        _patient[key] = _make_patient_chat()
    return _patient[key]


def _make_patient_chat() -> Callable[[list[dict[str, str]]], Awaitable[str]]:
    url = os.environ.get(PATIENT_URL_ENV) or os.environ.get(reward.GRADER_URL_ENV)
    model = os.environ.get(PATIENT_MODEL_ENV) or os.environ.get(reward.GRADER_MODEL_ENV)
    if url and model:
        from harness.clients import OpenAIChat

        client = OpenAIChat(url, model, api_key=reward.grader_api_key(),
                            temperature=0.7, max_tokens=256)
        return lambda messages: client(messages)
    embedded = local_grader()
    return lambda messages: embedded(messages, None)


async def consultation_reward(solution_str: str, ground_truth: Any, extra_info: dict, *, invalid_score: float = 0.0,
                              max_invalid_fraction: float = 0.2) -> dict[str, float]:
    """Consultation rubric score of the episode in ``extra_info['transcript']`` (an Episode dict)."""
    item = str(extra_info.get("item_id", ""))
    raw = extra_info.get("transcript")
    problem = ""
    result = None
    if not raw:
        problem = "no transcript: consultation rows must be rolled out by the m2_consultation agent loop"
    else:
        record = reward.json_field(raw)
        case = case_of(extra_info)
        engine = reward.engine()
        try:
            rubric = await case_rubric(case, engine.grader, engine.grader_id)
            assessment = Assessment(**record["assessment"]) if record.get("assessment") else None
            result = await score_consultation(case, record["events"], assessment, engine, rubric)
        except Exception as exc:  # rubric generation / grading transport failure: the documented fallback
            problem = f"{type(exc).__name__}: {exc}"
        if result is not None and result.score is None:
            problem = "; ".join(result.errors) or "no score"
    calls = result.grader_calls if result is not None else 0
    graded = sum(v.met is not None for v in result.verdicts) if result is not None else 0
    return reward.finish(None if problem else result.score, problem, calls, graded,
                         what=f"consultation reward for {item}", invalid_score=invalid_score,
                         max_invalid_fraction=max_invalid_fraction)


class ScriptedDoctor:
    """Dry-run doctor: asks one question, then gives the case's diagnosis (exercises patient + scorer)."""

    def __init__(self, case: Case):
        self.case, self.turn = case, 0

    async def act(self, observation: str, final_only: bool = False) -> Action:
        self.turn += 1
        if self.turn == 1 and not final_only:
            return Action("ask", "When did this start, and has anything made it better or worse?")
        return Action.from_call("final_assessment", {"diagnosis": self.case.diagnosis, "differential": [],
                                                     "plan": "Confirm with the appropriate tests and treat."})


async def check_episode(row: dict, max_turns: int = 3) -> dict[str, float]:
    """One scripted episode against the real patient simulator, scored like the agent loop scores it."""
    from harness.patient import PatientSimulator

    case = case_of(row["extra_info"])
    episode = await run_consultation(case, ScriptedDoctor(case), PatientSimulator(case, patient_chat()), max_turns, MODE)
    final = tool_call_json(Action("final_assessment", case.diagnosis, episode.assessment)) if episode.assessment else ""
    extra = {**row["extra_info"], "transcript": json.dumps(episode.to_dict())}
    return await reward.compute_score(reward.CONSULTATION, final, row["reward_model"]["ground_truth"], extra)
