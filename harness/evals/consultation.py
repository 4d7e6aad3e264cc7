"""The Inspect task behind tasks/consultation: Inspect adapters around harness.consultation.

Roles: the model under test is the doctor (tools ask / examine / order_test / final_assessment);
``patient`` drives the simulator (default: the model under test); ``grader`` grades (required, unless
``allow_self_grading=true`` lets the model under test grade itself); ``rubric_generator`` writes
per-case rubrics (default: the grader).
No scoring logic lives here: the scorer calls ``score_consultation`` with a ``RubricGrader``.
"""

from __future__ import annotations

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
    MODES,
    VIGNETTE_INSTRUCTIONS,
    Action,
    Assessment,
    check_max_turns,
    opening,
    run_consultation,
    score_consultation,
)
from harness.errors import ArgumentError, GradingError
from harness.evals.scoring import InspectEngines, chat_messages, fail_on_error, inspect_grader, require_grader_role
from harness.grading import check_grading_mode
from harness.patient import PERSONAS, PatientSimulator
from harness.rubric import summarize
from harness.rubric_generator import case_rubric

PATIENT_ROLE, GENERATOR_ROLE = "patient", "rubric_generator"


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

    async def act(self, observation: str, final_only: bool = False) -> Action:
        self._answer(observation)
        tools = [final_assessment()] if final_only else self.tools
        choice: ToolChoice = ToolFunction("final_assessment") if final_only else "auto"
        output = await self.model.generate(self.state.messages, tools=tools, tool_choice=choice)
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


def inspect_chat(model: Model, role: str, usage: dict[str, int]):
    """``async (messages) -> str`` over an Inspect model, counting tokens under ``role``."""

    async def chat(messages: list[dict[str, str]]) -> str:
        output = await model.generate(chat_messages(messages), config=GenerateConfig(max_tokens=120))
        if output.error:
            raise RuntimeError(output.error)
        _add_usage(usage, role, output)
        return output.completion

    return chat


def role_model(role: str, default: Model) -> Model:
    return get_model(role=role) if role in model_roles() else default


@solver
def consultation_agent(max_turns: int = 20, persona: str = "neutral", mode: str = "conversation") -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        case = Case.from_dict(state.metadata["case"])
        usage: dict[str, int] = {}
        doctor_model = get_model()
        patient = PatientSimulator(case, inspect_chat(role_model(PATIENT_ROLE, doctor_model), "patient", usage), persona)
        doctor = InspectDoctor(state, doctor_model, mode, usage)
        episode = await run_consultation(case, doctor, patient, max_turns, mode)
        doctor.close("Assessment recorded. The consultation is over.")
        episode.tokens = dict(usage)
        record = episode.to_dict()
        state.metadata["consultation"] = record
        text = episode.assessment.text() if episode.assessment else "(no final assessment given)"
        state.output = ModelOutput.from_content(model=str(doctor_model), content=text)
        summary: dict[str, Any] = {
            "revealed_facts": {i: case.fact(i).text for i in episode.revealed_fact_ids},
            "tests_ordered": episode.tests_ordered,
            "exams": episode.exams,
            "turns_used": episode.turns_used,
            "timed_out": episode.timed_out,
            "leaks": episode.leaks,
            "patient_replies": episode.patient_replies,
            "tokens": episode.tokens,
        }
        transcript().info(summary, source="consultation")
        return state

    return solve


# --- scoring ---------------------------------------------------------------------------------


@metric(name="consultation")
def consultation_metrics() -> Metric:
    """Headline rubric score (clipped mean, bootstrap std) and the consultation metrics."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        meta = [s.score.metadata for s in scores if s.score.metadata and s.score.metadata.get("metrics")]
        if not meta:
            return {}
        summary = summarize([m["metrics"] for m in meta])
        out = {"score": summary["overall_score"].mean, "bootstrap_std": summary["overall_score"].bootstrap_std}
        for name in ("diagnostic_accuracy", "critical_fact_recall", "leak_rate", "timeout_rate"):
            if name in summary:
                out[name] = summary[name].mean
                out[f"{name}_std"] = summary[name].bootstrap_std
        out["turns_used"] = sum(m["turns_used"] for m in meta) / len(meta)
        out.update({k: v.mean for k, v in summary.items() if k.startswith("axis:")})
        return out

    return compute


@scorer(metrics=[consultation_metrics()])
def consultation_scorer(
    grading_mode: str = "per_criterion", max_attempts: int = 3, structured_output: bool = True, allow_self_grading: bool = False
):
    engines = InspectEngines(
        grading_mode, structured_output, max_attempts, allow_self_grading=allow_self_grading, task="consultation"
    )

    async def score(state: TaskState, target: Target) -> Score:
        case = Case.from_dict(state.metadata["case"])
        record = state.metadata["consultation"]
        grader_model, self_graded, engine = engines.grader_role()
        generator_model = role_model(GENERATOR_ROLE, grader_model)
        rubric = await case_rubric(
            case,
            inspect_grader(generator_model, structured_output),
            str(generator_model),
            max_attempts,
            vignette=record["mode"] == "vignette",
        )
        assessment = Assessment(**record["assessment"]) if record["assessment"] else None
        result = await score_consultation(case, record["events"], assessment, engine, rubric)
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
                "critical_fact_recall": result.critical_fact_recall,
                "turns_used": result.turns_used,
                "timed_out": result.timed_out,
                "leak_rate": result.leak_rate,
                "tokens": result.tokens,
                "grader": str(grader_model),
                "self_graded": self_graded,
                "rubric_generator": str(generator_model),
                "grader_calls": result.grader_calls,
            },
        )

    return score


def to_sample(case: Case, mode: str, persona: str) -> Sample:
    return Sample(
        id=case.case_id,
        input=opening(case, mode),
        target=case.diagnosis,
        metadata={"case": case.to_dict(), "case_id": case.case_id, "mode": mode, "persona": persona, "flags": case.flags},
    )


def consultation_task(
    cases: str = "agentclinic_medqa",
    max_turns: int = 20,
    persona: str = "neutral",
    mode: str = "conversation",
    grading_mode: str = "per_criterion",
    max_error_fraction: float = 0.05,
    allow_self_grading: bool = False,
) -> Task:
    if cases not in CASE_SETS:
        raise ArgumentError("cases", cases, list(CASE_SETS))
    check_max_turns(max_turns)
    if persona not in PERSONAS:
        raise ArgumentError("persona", persona, list(PERSONAS))
    if mode not in MODES:
        raise ArgumentError("mode", mode, MODES)
    check_grading_mode(grading_mode)
    on_error = fail_on_error(max_error_fraction)  # validates before any data is loaded
    allow_self_grading = flag("allow_self_grading", allow_self_grading)
    require_grader_role("consultation", allow_self_grading)
    samples = [to_sample(c, mode, persona) for c in load_cases(cases)]
    return Task(
        dataset=MemoryDataset(samples, name=f"consultation_{cases}"),
        solver=consultation_agent(max_turns, persona, mode),
        scorer=consultation_scorer(grading_mode, allow_self_grading=allow_self_grading),
        fail_on_error=on_error,
        metadata={
            "benchmark": "consultation",
            "subset": cases,
            "split": mode,
            "rubric_graded": True,
            "max_turns": max_turns,
            "persona": persona,
            "mode": mode,
            "allow_self_grading": allow_self_grading,
        },
    )
