"""Consultation reward: the verl path scores a recorded episode exactly like the Inspect consultation scorer."""

import asyncio
import json

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset
from inspect_ai.solver import solver

from harness.cases import load_cases
from harness.consultation import run_consultation
from harness.evals.consultation import consultation_scorer, to_sample
from harness.grading import parse_grading_prompt
from harness.patient import PatientSimulator
from harness.rubric import RubricItem
from harness.rubric_generator import GENERATOR_VERSION, _cache_path
from tests.helpers.paths import shared_file
from tests.helpers.scripted import mock_model
from verl_recipes.m2_grpo import check, consultation, data, reward

GRADER = "mockllm/model"


def decide(prompt: str) -> bool:
    criterion = parse_grading_prompt(prompt).criteria[0].lower()
    return "names" in criterion or "fabrication" in criterion or "started" in criterion


def grader_reply(prompt: str) -> str:
    return json.dumps({"explanation": "s", "criteria_met": decide(prompt)})


async def grade(messages, json_schema=None):
    return grader_reply(messages[-1]["content"])


async def patient_chat(messages):
    return "It started three days ago and nothing helps."


@pytest.fixture(autouse=True)
def _fresh():
    reward.reset()
    yield
    reward.reset()


def test_consultation_parity_with_the_inspect_scorer(tmp_path):
    shared_file("agentclinic", "agentclinic_medqa_extended.jsonl")
    case = load_cases("agentclinic_medqa_extended")[0]
    # the same generated rubric part for both paths (the generator is a model; here it is fixed)
    generated = [
        RubricItem("The doctor asks when the symptoms started.", 3.0, ("axis:history",)),
        RubricItem("The doctor is rude.", -2.0, ("axis:communication",)),
    ]
    path = _cache_path(case, GRADER)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "version": GENERATOR_VERSION,
                "generator": GRADER,
                "case_id": case.case_id,
                "items": [i.to_dict() for i in generated],
                "dropped": [],
            }
        )
    )
    episode = asyncio.run(
        run_consultation(case, check.ScriptedDoctor(case), PatientSimulator(case, patient_chat), 3, "conversation")
    )
    record = episode.to_dict()

    @solver
    def replay():
        async def solve(state, generate):
            state.metadata["consultation"] = record
            return state

        return solve

    task = Task(
        dataset=MemoryDataset([to_sample(case, "conversation", "neutral")]), solver=replay(), scorer=consultation_scorer()
    )
    log = inspect_eval(
        task,
        model=mock_model(lambda p: "unused"),
        model_roles={
            "grader": mock_model(grader_reply),
            "rubric_generator": mock_model(grader_reply),
        },  # the verl reward generates with its grader
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success", log.error
    inspect_score = log.samples[0].scores["consultation_scorer"].value

    reward.configure(grade, grader_id=GRADER, cache=False)
    row = data.row(
        reward.CONSULTATION,
        consultation.opening_messages(case),
        "medical_consultation",
        case.diagnosis,
        f"consultation:{case.case_id}",
        agent_name=data.CONSULTATION_AGENT,
        case_id=case.case_id,
        case=case.to_dict(),
    )
    extra = {**row["extra_info"], "transcript": json.dumps(record)}
    out = asyncio.run(reward.compute_score(reward.CONSULTATION, "final", case.diagnosis, extra))
    assert out["reward_valid"] == 1.0
    assert out["score"] == pytest.approx(inspect_score)
    assert 0 < out["score"] < 1  # some criteria met, some not


def test_consultation_row_without_a_transcript_is_invalid_not_zero():
    shared_file("agentclinic", "agentclinic_medqa_extended.jsonl")
    case = load_cases("agentclinic_medqa_extended")[0]
    reward.configure(grade, grader_id=GRADER, cache=False)
    extra = data.row(reward.CONSULTATION, [], "x", case.diagnosis, "c", case=case.to_dict())["extra_info"]
    out = asyncio.run(reward.compute_score(reward.CONSULTATION, "final", case.diagnosis, extra))
    assert out["reward_valid"] == 0.0 and sorted(out) == sorted(reward.EXTRA_KEYS)


@pytest.mark.slow  # over ~3 s: the fast loop leaves it out
def test_consultation_export_excludes_the_reporting_cases():
    shared_file("agentclinic", "agentclinic_medqa_extended.jsonl")
    export = data.build(["consultation"], val_fraction=0.1)
    rows = export.train + export.val
    assert rows and all(r["agent_name"] == "m2_consultation" for r in rows)
    eval_keys = {data.case_key(c) for c in load_cases("agentclinic_medqa")}
    train_cases = [consultation.case_of(r["extra_info"]) for r in rows]
    assert not {data.case_key(c) for c in train_cases} & eval_keys
    assert export.manifest["consultation"]["excluded_rows"] > 0
    assert rows[0]["prompt"][0]["role"] == "system" and "final_assessment" in rows[0]["prompt"][0]["content"]
