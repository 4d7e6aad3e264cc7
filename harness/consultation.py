"""Interactive consultation: the episode runner and its scoring (plain Python, no Inspect).

Public API, shared by the Inspect task and the verl reward:

    episode = await run_consultation(case, doctor, patient, max_turns=20, mode="conversation")
        case: harness.cases.Case; patient: harness.patient.PatientSimulator;
        doctor: any object with ``async act(observation: str, final_only: bool = False) -> Action``
        (``ChatDoctor(chat)`` wraps a plain ``async (messages) -> str`` chat callable).
    result = await score_consultation(case, transcript, assessment, engine, rubric)
        transcript: Episode (or its ``events`` list); assessment: Assessment | None;
        engine: harness.grading.RubricGrader; rubric: list[RubricItem]
        (harness.rubric_generator.case_rubric). Returns ConsultationResult: score (rubric score,
        None when a criterion could not be graded), diagnosis_correct, critical_fact_recall,
        turns_used, timed_out, leak_rate, tokens, verdicts, metrics (for harness.rubric.summarize).

The doctor acts with four tools: ask(question), examine(system), order_test(name) and
final_assessment(diagnosis, differential, plan). The episode ends on final_assessment or at the
turn cap (one turn = one doctor action); at the cap the doctor is asked once more for a final
assessment (``timed_out`` stays True). Diagnostic accuracy is the grader's verdict on the
rubric's diagnosis item, judged by the same engine as every other criterion.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from harness.cases import DIAGNOSIS_QUESTION, Case
from harness.errors import ArgumentError
from harness.grading import RubricGrader, parse_json_object
from harness.patient import PatientSimulator
from harness.rubric import RubricItem, Verdict
from harness.rubric_generator import DIAGNOSIS_TAG, diagnosis_item

TOOLS = ("ask", "examine", "order_test", "final_assessment")
ARGUMENT = {"ask": "question", "examine": "system", "order_test": "name"}  # tool -> its one argument
MODES = ("conversation", "vignette")
Mode = str  # one of MODES, checked where a run starts

DOCTOR_INSTRUCTIONS = """You are a physician seeing a patient. Take a focused history by asking questions
one at a time, examine the patient and order tests when useful, then give your final assessment.
Tools: ask(question) talks to the patient; examine(system) returns examination findings;
order_test(name) returns a test result; final_assessment(diagnosis, differential, plan) ends the visit."""
VIGNETTE_INSTRUCTIONS = """You are a physician. Read the case below and give your final assessment
with final_assessment(diagnosis, differential, plan)."""
FINAL_NOW = "The consultation time is over. Give your final assessment now with final_assessment."


@dataclass
class Assessment:
    diagnosis: str
    differential: list[str] = field(default_factory=list)
    plan: str = ""

    def text(self) -> str:
        return f"Final diagnosis: {self.diagnosis}\nDifferential: {', '.join(self.differential) or '-'}\nPlan: {self.plan or '-'}"


@dataclass
class Action:
    tool: str  # one of TOOLS, or "invalid" (the doctor's call could not be used)
    text: str = ""  # question / system / test name / error
    assessment: Assessment | None = None

    @classmethod
    def from_call(cls, name: str, arguments: dict[str, Any]) -> Action:
        """An action from a tool call; a bad call gives an ``invalid`` action naming the problem."""
        if name not in TOOLS:
            return cls("invalid", f"unknown tool {name!r}; use one of {', '.join(TOOLS)}")
        if name == "final_assessment":
            diagnosis = arguments.get("diagnosis")
            if not isinstance(diagnosis, str) or not diagnosis.strip():
                return cls("invalid", "final_assessment needs a non-empty 'diagnosis'")
            differential = arguments.get("differential") or []
            if isinstance(differential, str):
                differential = [d.strip() for d in re.split(r"[;,\n]", differential) if d.strip()]
            plan = arguments.get("plan") or ""
            return cls(name, diagnosis.strip(), Assessment(diagnosis.strip(), [str(d) for d in differential], str(plan)))
        key = ARGUMENT[name]
        value = arguments.get(key)
        if not isinstance(value, str) or not value.strip():
            return cls("invalid", f"{name} needs a non-empty '{key}'")
        return cls(name, value.strip())


class Doctor(Protocol):
    async def act(self, observation: str, final_only: bool = False) -> Action: ...


@dataclass
class Episode:
    case_id: str
    mode: str
    events: list[dict[str, Any]]
    assessment: Assessment | None
    turns_used: int
    timed_out: bool
    tests_ordered: list[str]
    exams: list[str]
    revealed_fact_ids: list[str]
    patient_replies: int
    leaks: int
    regenerations: int
    redactions: int
    persona: str = "neutral"
    tokens: dict[str, int] = field(default_factory=dict)  # role -> tokens, where the adapters report them

    @property
    def leak_rate(self) -> float:
        return self.leaks / self.patient_replies if self.patient_replies else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "leak_rate": self.leak_rate}


def check_max_turns(max_turns: object) -> None:
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 0:
        raise ArgumentError("max_turns", max_turns, "a whole number >= 0 (e.g. 20)")


def opening(case: Case, mode: Mode) -> str:
    if mode == "vignette":
        text = case.vignette()
    else:
        text = f"Your patient: {case.demographics}. Presenting complaint: {case.presenting_complaint}"
    if case.question and case.question != DIAGNOSIS_QUESTION:
        text += f"\nQuestion to answer in your final assessment: {case.question}"
    if mode == "vignette" and case.options:
        text += "\nOptions: " + "; ".join(f"{k}. {v}" for k, v in case.options.items())
    return text


async def run_consultation(
    case: Case,
    doctor: Doctor,
    patient: PatientSimulator,
    max_turns: int = 20,
    mode: Mode = "conversation",
    force_final: bool = True,
    tokens: dict[str, int] | None = None,
) -> Episode:
    """Run one consultation to a final assessment or the turn cap (see module docstring)."""
    check_max_turns(max_turns)
    if mode not in MODES:
        raise ArgumentError("mode", mode, MODES)
    observation = opening(case, mode)
    events: list[dict[str, Any]] = [{"role": "case", "content": observation}]
    assessment: Assessment | None = None
    turns = 0
    limit = 0 if mode == "vignette" else max_turns
    while turns < limit and assessment is None:
        action = await doctor.act(observation)
        turns += 1
        observation = await _perform(action, patient, events, turns)
        assessment = action.assessment
    timed_out = assessment is None and mode == "conversation"
    if assessment is None:
        if timed_out:
            events.append({"role": "system", "content": f"turn cap reached ({max_turns} turns)"})
        if force_final or mode == "vignette":
            action = await doctor.act(observation + ("\n\n" + FINAL_NOW if timed_out else ""), final_only=True)
            events.append(_doctor_event(action, turns + 1, forced=True))
            assessment = action.assessment
    return Episode(
        case_id=case.case_id,
        mode=mode,
        events=events,
        assessment=assessment,
        turns_used=turns,
        timed_out=timed_out,
        tests_ordered=list(patient.ordered_tests),
        exams=list(patient.examined),
        revealed_fact_ids=list(patient.revealed),
        patient_replies=patient.replies,
        leaks=patient.leaks,
        regenerations=patient.regenerations,
        redactions=patient.redactions,
        persona=patient.persona,
        tokens=dict(tokens or {}),
    )


def _doctor_event(action: Action, turn: int, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"turn": turn, "role": "doctor", "tool": action.tool, "content": action.text, **extra}
    if action.assessment:
        event["assessment"] = asdict(action.assessment)
    return event


async def _perform(action: Action, patient: PatientSimulator, events: list[dict[str, Any]], turn: int) -> str:
    events.append(_doctor_event(action, turn))
    if action.tool == "ask":
        reply = await patient.reply(action.text)
        events.append(
            {
                "turn": turn,
                "role": "patient",
                "content": reply.text,
                "leaked": reply.leaked,
                "leak_terms": reply.leak_terms,
                "regenerated": reply.regenerated,
                "redacted": reply.redacted,
                "revealed_fact_ids": reply.revealed_fact_ids,
            }
        )
        return reply.text
    if action.tool == "examine":
        result = patient.examine(action.text)
    elif action.tool == "order_test":
        result = patient.order_test(action.text)
    elif action.tool == "final_assessment":
        return ""
    else:
        result = f"Error: {action.text}"
    events.append({"turn": turn, "role": action.tool if action.tool != "invalid" else "error", "content": result})
    return result


# --- a doctor driven by a plain chat callable (verl, OpenAIChat) ------------------------------

TEXT_PROTOCOL = """Reply with exactly one JSON object per turn, one of:
{"tool": "ask", "arguments": {"question": "..."}}
{"tool": "examine", "arguments": {"system": "..."}}
{"tool": "order_test", "arguments": {"name": "..."}}
{"tool": "final_assessment", "arguments": {"diagnosis": "...", "differential": ["..."], "plan": "..."}}"""


def parse_action(text: str) -> Action:
    """An action from a text reply: a JSON tool call, else the text is a question to the patient."""
    obj = parse_json_object(text)
    if obj is not None and isinstance(obj.get("tool"), str):
        arguments = obj.get("arguments")
        return Action.from_call(obj["tool"], arguments if isinstance(arguments, dict) else {})
    text = text.strip()
    return Action("ask", text) if text else Action("invalid", "empty reply")


class ChatDoctor:
    """A doctor from ``async chat(messages) -> str`` using the JSON text protocol above."""

    def __init__(self, chat: Callable[[list[dict[str, str]]], Awaitable[str]], mode: Mode = "conversation"):
        self.chat = chat
        intro = VIGNETTE_INSTRUCTIONS if mode == "vignette" else DOCTOR_INSTRUCTIONS
        self.messages: list[dict[str, str]] = [{"role": "system", "content": f"{intro}\n\n{TEXT_PROTOCOL}"}]

    async def act(self, observation: str, final_only: bool = False) -> Action:
        note = "\n\n(Only final_assessment is allowed now.)" if final_only else ""
        self.messages.append({"role": "user", "content": observation + note})
        reply = await self.chat(self.messages)
        self.messages.append({"role": "assistant", "content": reply})
        action = parse_action(reply)
        if final_only and action.tool != "final_assessment":
            return Action("invalid", "no final assessment given")
        return action


# --- scoring ----------------------------------------------------------------------------------


@dataclass
class ConsultationResult:
    score: float | None
    diagnosis_correct: bool | None
    critical_fact_recall: float | None
    turns_used: int
    timed_out: bool
    leak_rate: float
    tokens: dict[str, int]
    verdicts: list[Verdict]
    metrics: dict[str, float]
    errors: list[str] = field(default_factory=list)
    grader_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdicts"] = [v.to_dict() for v in self.verdicts]
        return out


def render_consultation(
    case: Case, events: Sequence[dict[str, Any]], assessment: Assessment | None
) -> tuple[list[dict[str, str]], str]:
    """(conversation, response) for the grading engine: the whole consultation is the 'reply'."""
    frame = (
        f"A simulated clinical consultation. Patient: {case.demographics}, presenting with: {case.presenting_complaint}. "
        "The assistant played the doctor: it could ask the patient questions, examine, order tests, and had to end "
        "with a final assessment. Its whole consultation record is the reply to be graded."
    )
    lines = []
    for e in events:
        if e["role"] == "doctor" and e.get("tool") != "final_assessment":
            lines.append(f"Doctor ({e.get('tool')}): {e['content']}")
        elif e["role"] in ("patient", "examine", "order_test", "error"):
            label = {"patient": "Patient", "examine": "Exam findings", "order_test": "Test result", "error": "Error"}[e["role"]]
            lines.append(f"{label}: {e['content']}")
    final = assessment.text() if assessment else "(no final assessment given)"
    return [{"role": "user", "content": frame}], "\n".join(lines + ["", "FINAL ASSESSMENT:", final])


async def score_consultation(
    case: Case,
    transcript: Episode | Sequence[dict[str, Any]],
    assessment: Assessment | None,
    engine: RubricGrader,
    rubric: Sequence[RubricItem],
) -> ConsultationResult:
    """Grade one consultation with the rubric engine and compute the consultation metrics."""
    events = transcript.events if isinstance(transcript, Episode) else list(transcript)
    conversation, response = render_consultation(case, events, assessment)
    rubric = list(rubric)
    if not any(DIAGNOSIS_TAG in item.tags for item in rubric):
        rubric.append(diagnosis_item(case))
    grade = await engine.grade(conversation, response, rubric)
    dx = [v for v in grade.verdicts if DIAGNOSIS_TAG in v.item.tags]
    diagnosis_correct = None if any(v.met is None for v in dx) else (assessment is not None and all(v.met for v in dx))
    patient_events = [e for e in events if e["role"] == "patient"]
    revealed = {i for e in patient_events for i in e.get("revealed_fact_ids", [])}
    critical = [f.id for f in case.critical_facts]
    recall = len(revealed & set(critical)) / len(critical) if critical else None
    leaks = sum(bool(e.get("leaked")) for e in patient_events)
    leak_rate = leaks / len(patient_events) if patient_events else 0.0
    turns = sum(1 for e in events if e["role"] == "doctor" and not e.get("forced"))
    timed_out = (
        transcript.timed_out
        if isinstance(transcript, Episode)
        else any(e["role"] == "system" and "turn cap" in e["content"] for e in events)
    )
    metrics = dict(grade.metrics)
    if diagnosis_correct is not None:
        metrics["diagnostic_accuracy"] = float(diagnosis_correct)
    if recall is not None:
        metrics["critical_fact_recall"] = recall
    metrics["leak_rate"] = leak_rate
    metrics["timeout_rate"] = float(timed_out)
    return ConsultationResult(
        score=grade.score,
        diagnosis_correct=diagnosis_correct,
        critical_fact_recall=recall,
        turns_used=turns,
        timed_out=timed_out,
        leak_rate=leak_rate,
        tokens=dict(transcript.tokens) if isinstance(transcript, Episode) else {},
        verdicts=grade.verdicts,
        metrics=metrics,
        errors=[f"{v.item.criterion[:80]}: {v.error}" for v in grade.errors],
        grader_calls=grade.grader_calls,
    )


def tool_call_json(action: Action) -> str:
    """An action written in the text protocol (for logs and scripted doctors)."""
    if action.assessment:
        args: dict[str, Any] = asdict(action.assessment)
    else:
        args = {ARGUMENT.get(action.tool, "text"): action.text}
    return json.dumps({"tool": action.tool, "arguments": args})
