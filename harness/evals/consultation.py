"""The Inspect tasks behind tasks/consultation and tasks/craftmd: Inspect adapters around harness.consultation.

Roles: the model under test is the doctor (tools ask / examine / order_test / final_assessment);
``grader`` grades the rubric, judges the final diagnosis and (summary mode) writes the summary;
``patient`` drives the simulator and ``rubric_generator`` writes per-case rubrics — both default
to the embedded offline model ``m2bench/default`` when not bound, and the log says so (a warning,
the eval's metadata and every score's metadata name the model used). An optional ``measurement``
role (else a bound ``patient``) chooses among the best-scored facts (``harness.llm_checks.llm_selector``);
without one, fact selection is the calibrated deterministic retrieval. Without a ``grader`` the run
stops at once, unless ``allow_self_grading=true`` lets the model under test grade itself.
No scoring logic lives here: the scorer calls ``score_consultation`` with a ``RubricGrader``.
"""

from __future__ import annotations

import logging
from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.log import transcript
from inspect_ai.model import (
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelOutput,
    get_model,
    model_roles,
)
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import Tool, ToolChoice, ToolFunction, tool

from harness.arguments import flag
from harness.cases import CASE_SETS, Case, load_cases
from harness.consultation import (
    DOCTOR_INSTRUCTIONS,
    VIGNETTE_INSTRUCTIONS,
    Action,
    Assessment,
    check_max_turns,
    check_mode,
    opening,
    run_consultation,
    score_record,
)
from harness.errors import ArgumentError, GradingError
from harness.evals.scoring import (
    GRADER_ROLE,
    InspectEngines,
    chat_messages,
    fail_on_error,
    generate_bounded,
    inspect_grader,
    require_grader_role,
)
from harness.grading import check_grading_mode
from harness.llm_checks import llm_selector
from harness.patient import PERSONAS, PatientSimulator
from harness.rubric import summarize
from harness.rubric_generator import build_case_rubric

logger = logging.getLogger(__name__)

PATIENT_ROLE, GENERATOR_ROLE, MEASUREMENT_ROLE = "patient", "rubric_generator", "measurement"
EMBEDDED = "m2bench/default"  # the offline default of the patient and rubric_generator roles
SUMMARY_METRICS = (
    "diagnostic_accuracy",
    "mcq_accuracy",
    "critical_fact_recall",
    "elicited_check_agreement",
    "leak_rate",
    "hallucination_rate",
    "false_denial_rate",
    "timeout_rate",
    "judge_check_agreement",
    "judge_mcq_agreement",
    "grader_all_met",
)


# --- doctor tools (executed by the consultation runner, not by Inspect) -----------------------


@tool
def ask() -> Tool:
    async def execute(question: str) -> str:
        """Ask the patient one question.

        Args:
            question: The question to ask the patient.
        """
        return ""

    return execute


@tool
def examine() -> Tool:
    async def execute(system: str) -> str:
        """Physically examine the patient.

        Args:
            system: The body system or part to examine, e.g. "cardiovascular" or "vital signs".
        """
        return ""

    return execute


@tool
def order_test() -> Tool:
    async def execute(name: str) -> str:
        """Order a laboratory test or imaging study and get its result.

        Args:
            name: The test to order, e.g. "complete blood count" or "chest CT".
        """
        return ""

    return execute


@tool
def final_assessment() -> Tool:
    async def execute(diagnosis: str, differential: list[str], plan: str) -> str:
        """Give your final assessment; this ends the consultation.

        Args:
            diagnosis: The most likely diagnosis (or the answer to the case question).
            differential: Other diagnoses considered.
            plan: Management and follow-up plan.
        """
        return ""

    return execute


def _add_usage(usage: dict[str, int], role: str, output: ModelOutput) -> None:
    if output.usage is not None:
        usage[role] = usage.get(role, 0) + int(output.usage.total_tokens)


class InspectDoctor:
    """The model under test as the doctor; its chat (tool calls and results) is the sample's messages."""

    def __init__(self, state: TaskState, model: Model, mode: str, usage: dict[str, int]):
        self.state, self.model, self.usage = state, model, usage
        self.tools = [ask(), examine(), order_test(), final_assessment()] if mode == "conversation" else [final_assessment()]
        intro = DOCTOR_INSTRUCTIONS if mode == "conversation" else VIGNETTE_INSTRUCTIONS
        self.state.messages = [ChatMessageSystem(content=intro)]
        self.pending: list[Any] = []  # tool calls still waiting for their result
        self.fresh_from: int | None = None  # summary mode: where the fresh context starts

    def _answer(self, observation: str) -> None:
        if not self.pending:
            self.state.messages.append(ChatMessageUser(content=observation))
            return
        first, *rest = self.pending
        self.state.messages.append(ChatMessageTool(content=observation, tool_call_id=first.id, function=first.function))
        for call in rest:
            self.state.messages.append(
                ChatMessageTool(content="Ignored: one action per turn.", tool_call_id=call.id, function=call.function)
            )
        self.pending = []

    async def act(self, observation: str, final_only: bool = False, fresh: bool = False) -> Action:
        if fresh:  # summary mode: answer from the summary alone; the transcript keeps both parts
            self.close("The consultation is over; its summary follows.")
            self.state.messages.append(ChatMessageSystem(content=VIGNETTE_INSTRUCTIONS))
            self.fresh_from = len(self.state.messages) - 1
        self._answer(observation)
        tools = [final_assessment()] if final_only else self.tools
        choice: ToolChoice = ToolFunction("final_assessment") if final_only else "auto"
        context = self.state.messages[self.fresh_from :] if self.fresh_from is not None else self.state.messages
        output = await self.model.generate(context, tools=tools, tool_choice=choice)
        _add_usage(self.usage, "doctor", output)
        self.state.messages.append(output.message)
        self.state.output = output
        calls = output.message.tool_calls or []
        self.pending = list(calls)
        if calls:
            return Action.from_call(calls[0].function, calls[0].arguments or {})
        text = output.completion.strip()
        if final_only:
            return Action("invalid", "no final assessment given")
        return Action("ask", text) if text else Action("invalid", "empty reply")

    def close(self, note: str) -> None:
        if self.pending:
            self._answer(note)


def inspect_chat(model: Model, role: str, usage: dict[str, int], max_tokens: int = 120):
    """``async (messages) -> str`` over an Inspect model, counting tokens under ``role``."""

    async def chat(messages: list[dict[str, str]]) -> str:
        output = await generate_bounded(model, chat_messages(messages), GenerateConfig(max_tokens=max_tokens))
        _add_usage(usage, role, output)
        return output.completion

    return chat


def role_model(role: str, default: Model | str) -> tuple[Model, bool]:
    """(the model bound to ``role``, else ``default``; whether the default was used)."""
    if role in model_roles():
        return get_model(role=role), False
    return (get_model(default) if isinstance(default, str) else default), True


_warned: set[str] = set()


def default_role_note(role: str, model: Model) -> str:
    note = f"no '{role}' model role bound: the {role} is {model} (the embedded offline model)"
    if role not in _warned:
        _warned.add(role)
        logger.warning(note)
    return note


@solver
def consultation_agent(
    max_turns: int = 20, persona: str = "neutral", mode: str = "conversation", answer: str = "free_text"
) -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        case = Case.from_dict(state.metadata["case"])
        persona_here = state.metadata.get("persona", persona)
        usage: dict[str, int] = {}
        doctor_model = get_model()
        patient_model, patient_default = role_model(PATIENT_ROLE, EMBEDDED)
        notes = [default_role_note(PATIENT_ROLE, patient_model)] if patient_default else []
        selector = None
        if MEASUREMENT_ROLE in model_roles() or not patient_default:
            chooser, _ = role_model(MEASUREMENT_ROLE, patient_model)
            selector = llm_selector(inspect_grader(chooser))
        patient = PatientSimulator(case, inspect_chat(patient_model, "patient", usage), persona_here, selector=selector)
        doctor = InspectDoctor(state, doctor_model, mode, usage)
        summarizer = None
        if mode == "summary":
            grader_model, _ = role_model(GRADER_ROLE, doctor_model)
            summarizer = inspect_chat(grader_model, "summarizer", usage, max_tokens=400)
        episode = await run_consultation(case, doctor, patient, max_turns, mode, answer=answer, summarizer=summarizer)
        doctor.close("Assessment recorded. The consultation is over.")
        episode.tokens = dict(usage)
        record = episode.to_dict()
        state.metadata["consultation"] = record
        state.metadata["patient_model"] = str(patient_model)
        text = episode.assessment.text() if episode.assessment else "(no final assessment given)"
        state.output = ModelOutput.from_content(model=str(doctor_model), content=text)
        summary: dict[str, Any] = {
            "revealed_facts": {i: case.fact(i).text for i in episode.revealed_fact_ids},
            "tests_ordered": episode.tests_ordered,
            "exams": episode.exams,
            "turns_used": episode.turns_used,
            "timed_out": episode.timed_out,
            "leaks": episode.leaks,
            "hallucinations": episode.hallucinations,
            "false_denials": episode.false_denials,
            "patient_replies": episode.patient_replies,
            "patient_model": str(patient_model),
            "tokens": episode.tokens,
            "notes": notes,
        }
        transcript().info(summary, source="consultation")
        return state

    return solve


# --- scoring ---------------------------------------------------------------------------------


@metric(name="consultation")
def consultation_metrics() -> Metric:
    """Headline rubric score (clipped mean, bootstrap std), the consultation metrics, per-persona scores, doctor tokens."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        meta = [s.score.metadata for s in scores if s.score.metadata and s.score.metadata.get("metrics")]
        if not meta:
            return {}
        summary = summarize([m["metrics"] for m in meta])
        out = {"score": summary["overall_score"].mean, "bootstrap_std": summary["overall_score"].bootstrap_std}
        for name in SUMMARY_METRICS:
            if name in summary:
                out[name] = summary[name].mean
                out[f"{name}_std"] = summary[name].bootstrap_std
        out["turns_used"] = sum(m["turns_used"] for m in meta) / len(meta)
        doctor = [m["tokens"]["doctor"] for m in meta if (m.get("tokens") or {}).get("doctor") is not None]
        if doctor:
            out["doctor_tokens"] = sum(doctor) / len(doctor)
        personas = sorted({m.get("persona", "") for m in meta} - {""})
        if len(personas) > 1:
            for persona in personas:
                group = summarize([m["metrics"] for m in meta if m.get("persona") == persona])
                out[f"persona:{persona}"] = group["overall_score"].mean
                if "diagnostic_accuracy" in group:
                    out[f"persona:{persona}:diagnostic_accuracy"] = group["diagnostic_accuracy"].mean
        out.update({k: v.mean for k, v in summary.items() if k.startswith("axis:")})
        return out

    return compute


@scorer(metrics=[consultation_metrics()])
def consultation_scorer(
    grading_mode: str = "per_criterion",
    max_attempts: int = 3,
    structured_output: bool = True,
    allow_self_grading: bool = False,
    generated_rubric: bool = True,
):
    engines = InspectEngines(
        grading_mode, structured_output, max_attempts, allow_self_grading=allow_self_grading, task="consultation"
    )

    async def score(state: TaskState, target: Target) -> Score:
        case = Case.from_dict(state.metadata["case"])
        record = state.metadata["consultation"]
        grader_model, self_graded, engine = engines.grader_role()
        generator_model, generator_default = role_model(GENERATOR_ROLE, EMBEDDED)
        if generator_default and generated_rubric:
            default_role_note(GENERATOR_ROLE, generator_model)
        built = await build_case_rubric(
            case,
            inspect_grader(generator_model, structured_output) if generated_rubric else None,
            str(generator_model),
            max_attempts,
            vignette=record["mode"] == "vignette",
        )
        rubric = built.items
        assessment = Assessment(**record["assessment"]) if record["assessment"] else None
        result = await score_record(case, record, engine, rubric)
        if result.errors:
            raise GradingError(
                f"{len(result.errors)} of {len(rubric)} criteria could not be graded by {grader_model}: "
                + "; ".join(result.errors)
            )
        if result.score is None:  # the loaders reject rubrics without positive points
            raise GradingError("the rubric has no criterion with positive points, so no score can be computed")
        return Score(
            value=result.score,
            answer=assessment.diagnosis if assessment else "",
            explanation="\n".join(f"[{'met' if v.met else 'not met'}] {v.item} -- {v.explanation}" for v in result.verdicts),
            metadata={
                "metrics": result.metrics,
                "verdicts": [v.to_dict() for v in result.verdicts],
                "diagnosis_correct": result.diagnosis_correct,
                "diagnosis": result.diagnosis.to_dict() if result.diagnosis else None,
                "critical_fact_recall": result.critical_fact_recall,
                "elicited_fact_ids": result.elicited_fact_ids,
                "elicited_by": result.elicited_by,
                "elicited_by_embedding": result.elicited_by_embedding,
                "turns_used": result.turns_used,
                "timed_out": result.timed_out,
                "leak_rate": result.leak_rate,
                "hallucination_rate": result.hallucination_rate,
                "false_denial_rate": result.false_denial_rate,
                "grader_all_met": result.grader_all_met,
                "tokens": result.tokens,
                "persona": record.get("persona", ""),
                "grader": str(grader_model),
                "self_graded": self_graded,
                "patient": state.metadata.get("patient_model", ""),
                "rubric_generator": str(generator_model) if generated_rubric else "(none: case-derived items only)",
                "rubric_generator_default": generator_default,
                "rubric_items": len(rubric),
                "rubric_dropped": built.dropped,  # generated items dropped (duplicates, answered by the opening)
                "grader_calls": result.grader_calls,
            },
        )

    return score


def to_sample(case: Case, mode: str, persona: str, answer: str = "free_text", multi_persona: bool = False) -> Sample:
    return Sample(
        id=f"{case.case_id}:{persona}" if multi_persona else case.case_id,
        input=opening(case, mode, answer),
        target=case.diagnosis,
        metadata={"case": case.to_dict(), "case_id": case.case_id, "mode": mode, "persona": persona, "flags": case.flags},
    )


def parse_personas(persona: str) -> list[str]:
    """One persona, a comma-separated list, or "all" (each case is run once per persona)."""
    names = list(PERSONAS) if persona == "all" else [p.strip() for p in persona.split(",") if p.strip()]
    for name in names or [persona]:
        if name not in PERSONAS:
            raise ArgumentError("persona", name, [*PERSONAS, "all"])
    return names


def consultation_task(
    cases: str = "agentclinic_medqa",
    max_turns: int = 20,
    persona: str = "neutral",
    mode: str = "conversation",
    grading_mode: str = "per_criterion",
    max_error_fraction: float = 0.05,
    answer: str = "free_text",
    benchmark: str = "consultation",
    generated_rubric: bool = True,
    allow_self_grading: bool = False,
) -> Task:
    if cases not in CASE_SETS:
        raise ArgumentError("cases", cases, list(CASE_SETS))
    check_max_turns(max_turns)
    personas = parse_personas(persona)
    check_mode(mode, answer)
    check_grading_mode(grading_mode)
    on_error = fail_on_error(max_error_fraction)  # validates before any data is loaded
    allow_self_grading = flag("allow_self_grading", allow_self_grading)
    generated_rubric = flag("generated_rubric", generated_rubric)
    require_grader_role(benchmark, allow_self_grading)
    loaded = load_cases(cases)
    if answer == "multiple_choice" and not all(c.options for c in loaded):
        raise ArgumentError("answer", answer, f"free_text (case set {cases} has cases without options)")
    samples = [to_sample(c, mode, p, answer, len(personas) > 1) for c in loaded for p in personas]
    return Task(
        dataset=MemoryDataset(samples, name=f"{benchmark}_{cases}"),
        solver=consultation_agent(max_turns, personas[0], mode, answer),
        scorer=consultation_scorer(grading_mode, allow_self_grading=allow_self_grading, generated_rubric=generated_rubric),
        fail_on_error=on_error,
        metadata={
            "benchmark": benchmark,
            "subset": cases,
            "split": mode if answer == "free_text" else f"{mode}/{answer}",
            "rubric_graded": True,
            "max_turns": max_turns,
            "persona": persona,
            "mode": mode,
            "answer": answer,
            "generated_rubric": generated_rubric,  # false: only the case-derived rubric items
            "role_defaults": {PATIENT_ROLE: EMBEDDED, GENERATOR_ROLE: EMBEDDED},  # used when the role is not bound
            "allow_self_grading": allow_self_grading,
        },
    )
