"""Regression tests for the defects reported against the consultation verifier (each failed before its fix).

They use the real shared case records (AgentClinic-MedQA case 0 = myasthenia gravis, 31 = CLL,
33 = coarctation, 49 = Stevens-Johnson syndrome, 56 = oppositional defiant disorder) and
scripted models only; the oracles are hand-written from the case records.
"""

import asyncio
import json

import pytest

from harness.cases import load_cases
from harness.consultation import score_consultation
from harness.grading import RubricGrader
from harness.patient import PatientSimulator
from harness.rubric_generator import deterministic_items
from tests.helpers.paths import shared_file
from tests.helpers.scripted import scripted_grader


@pytest.fixture(scope="module")
def medqa():
    shared_file("agentclinic", "agentclinic_medqa.jsonl")
    return {c.case_id: c for c in load_cases("agentclinic_medqa")}


def simulator(case, reply="I do not know.", grounded=True):
    async def chat(messages):
        return reply(messages) if callable(reply) else reply

    return PatientSimulator(case, chat, grounded=grounded)


# --- lookups mislead the doctor ---------------------------------------------------------------


def test_emg_request_returns_the_recorded_abnormal_emg(medqa):
    result = simulator(medqa["agentclinic_medqa-0"]).order_test("EMG")
    assert "Decreased muscle response" in result and "normal limits" not in result


def test_complete_blood_count_does_not_return_the_antibody_result(medqa):
    result = simulator(medqa["agentclinic_medqa-0"]).order_test("complete blood count")
    assert "Acetylcholine" not in result and "normal" not in result.lower()
    assert "not recorded" in result


@pytest.mark.parametrize("system", ["eyes", "neuro", "physical examination"])
def test_examining_eyes_or_nervous_system_finds_the_ptosis(medqa, system):
    result = simulator(medqa["agentclinic_medqa-0"]).examine(system)
    assert "ptosis" in result.lower() and "no abnormal findings" not in result


def test_unrecorded_test_is_not_reported_normal(medqa):
    result = simulator(medqa["agentclinic_medqa-0"]).order_test("serum ferritin")
    assert "normal" not in result.lower() and "not recorded" in result


# --- the patient denies recorded findings -------------------------------------------------------


@pytest.mark.parametrize(
    "case_id, question, fact",
    [
        ("agentclinic_medqa-0", "Does resting help?", "Improvement of symptoms after rest"),
        ("agentclinic_medqa-0", "Do you get tired with exertion?", "worsen after physical activity"),
        ("agentclinic_medqa-0", "Are you seeing two of everything?", "Double vision"),
        ("agentclinic_medqa-56", "Does he argue with adults or refuse rules?", "Refusal to follow instructions"),
    ],
)
def test_question_retrieves_the_recorded_fact(medqa, case_id, question, fact):
    offered = simulator(medqa[case_id]).relevant_facts(question)
    assert any(fact in f.text for f in offered), [f.text for f in offered]


# --- the leak guard over-redacts and misses ----------------------------------------------------


@pytest.mark.parametrize(
    "case_id, reply",
    [
        ("agentclinic_medqa-56", "He is very defiant."),
        ("agentclinic_medqa-1", "My walking has been progressive, it got worse and worse."),
        ("agentclinic_medqa-11", "It is a complex story, doctor."),
        ("agentclinic_medqa-18", "I was scared something would rupture."),
        ("agentclinic_medqa-42", "I am quite active and work full time."),
    ],
)
def test_ordinary_words_are_not_leaks(medqa, case_id, reply):
    sim = simulator(medqa[case_id], reply, grounded=False)  # the leak guard alone
    result = asyncio.run(sim.reply("How are you?"))
    assert not result.leaked and result.text == reply and sim.leaks == 0


@pytest.mark.parametrize(
    "case_id, reply",
    [
        ("agentclinic_medqa-31", "Is it CLL?"),
        ("agentclinic_medqa-49", "The doctor mentioned SJS."),
        ("agentclinic_medqa-49", "Could this be Stevens-Johnson?"),
        ("agentclinic_medqa-33", "Is there a narrowing of his aorta?"),
    ],
)
def test_aliases_abbreviations_and_paraphrases_are_leaks(medqa, case_id, reply):
    result = asyncio.run(simulator(medqa[case_id], reply).reply("What do you think it is?"))
    assert result.leaked


# an independent list, written from the case records: strings no visible field may contain
FORBIDDEN = {
    "agentclinic_medqa-31": ["CLL", "SLL", "lymphocytic leukemia"],
    "agentclinic_medqa-33": ["coarctation", "Coarctation"],
    "agentclinic_medqa-49": ["Stevens", "Steven-Johnson", "SJS"],
    "agentclinic_medqa-1": ["PML", "leukoencephalopathy", "multifocal encephalopathy"],
    "agentclinic_medqa-0": ["myasthenia", "Myasthenia"],
}


@pytest.mark.parametrize("case_id", sorted(FORBIDDEN))
def test_scrubbed_cases_name_no_alias(medqa, case_id):
    case = medqa[case_id]
    visible = [*case.tests.values(), *case.exam.values(), *case.exam, *(f.text for f in case.history), case.presenting_complaint]
    for text in visible:
        for word in FORBIDDEN[case_id]:
            assert word not in text, (case_id, word, text)


def test_leak_rate_is_undefined_when_the_patient_never_spoke(medqa):
    case = medqa["agentclinic_medqa-0"]
    events = [{"role": "case", "content": "..."}, {"turn": 1, "role": "doctor", "tool": "examine", "content": "eyes"}]
    engine = RubricGrader(scripted_grader(lambda c: False), grader_id="scripted")
    result = asyncio.run(score_consultation(case, events, None, engine, deterministic_items(case)))
    assert result.leak_rate is None and "leak_rate" not in result.metrics


# --- diagnosis decided by one rubric item ------------------------------------------------------


def test_pending_diagnosis_is_wrong_even_when_the_grader_marks_everything_met(medqa):
    from harness.consultation import Assessment

    case = medqa["agentclinic_medqa-0"]
    assessment = Assessment("The diagnosis of the disease is currently pending")
    events = [{"role": "case", "content": "..."}]
    engine = RubricGrader(scripted_grader(lambda c: True), grader_id="scripted")
    result = asyncio.run(score_consultation(case, events, assessment, engine, deterministic_items(case)))
    assert result.diagnosis_correct is False and result.metrics["diagnostic_accuracy"] == 0.0
    assert result.metrics["grader_all_met"] == 1.0


# --- critical-fact recall is lexical ------------------------------------------------------------


def test_paraphrased_fact_counts_as_elicited(medqa):
    case = medqa["agentclinic_medqa-0"]
    events = [
        {"role": "case", "content": "..."},
        {"turn": 1, "role": "doctor", "tool": "ask", "content": "Does anything make it better or worse?"},
        {"turn": 1, "role": "patient", "content": "It gets worse when I'm active and better if I rest.", "revealed_fact_ids": []},
    ]
    grader = scripted_grader(lambda c: False)

    async def silent_on_facts(messages, json_schema=None):  # no verdict on the facts: the embedding check decides
        return "no verdict" if "patient's words" in messages[-1]["content"] else await grader(messages, json_schema)

    engine = RubricGrader(silent_on_facts, grader_id="scripted")
    result = asyncio.run(score_consultation(case, events, None, engine, deterministic_items(case)))
    rest = next(f.id for f in case.history if f.text == "Improvement of symptoms after rest")
    assert result.elicited_by == "embedding" and result.critical_fact_recall > 0 and rest in result.elicited_fact_ids


# --- no hallucination check ----------------------------------------------------------------------


def test_contradicting_the_record_is_caught_regenerated_and_counted(medqa):
    drafts = iter(["He's a bit of a loner, he doesn't have friends.", "He gets on well with the other children."])
    sim = simulator(medqa["agentclinic_medqa-56"], lambda messages: next(drafts))
    result = asyncio.run(sim.reply("How does he get on with other kids?"))
    assert result.hallucinated and result.regenerated and "loner" not in result.text
    assert sim.hallucinations == 1


# --- rubric generator validation ----------------------------------------------------------------


def _sections(**override):
    body = {
        "diagnosis": [{"criterion": "names myasthenia gravis", "points": 10}],
        "history": [{"criterion": "asks whether symptoms improve with rest", "points": 5}],
        "tests": [{"criterion": "orders acetylcholine receptor antibodies", "points": 5}],
        "plan": [{"criterion": "starts pyridostigmine", "points": 5}],
        "safety": [{"criterion": "misses respiratory failure warning signs", "points": -8}],
        "communication": [{"criterion": "explains the next steps in plain language", "points": 3}],
    }
    body.update(override)
    return json.dumps(body)


@pytest.mark.parametrize(
    "reply, problem",
    [
        (
            json.dumps({"diagnosis": [{"criterion": "names MG", "points": 10}], "safety": [{"criterion": "harm", "points": -5}]}),
            "missing section",
        ),
        (
            _sections(
                safety=[{"criterion": "misses respiratory failure", "points": -8}, {"criterion": "safety red flag", "points": 6}]
            ),
            "must be negative",
        ),
        (_sections(diagnosis=[{"criterion": "names myasthenia gravis", "points": -8}]), "must be positive"),
    ],
)
def test_rubric_generator_rejects_invalid_rubrics(medqa, reply, problem):
    from harness.errors import DataError
    from harness.rubric_generator import parse_generated

    with pytest.raises(DataError, match=problem):
        parse_generated(reply, case=medqa["agentclinic_medqa-0"])


def test_duplicates_across_sections_are_dropped_and_recorded(medqa):
    from harness.rubric_generator import parse_generated

    diplopia = [{"criterion": "asks about diplopia", "points": 3}]
    reply = _sections(history=diplopia, tests=[*diplopia, {"criterion": "orders an EMG", "points": 3}], plan=[*diplopia, *_PLAN])
    items, dropped = parse_generated(reply, case=medqa["agentclinic_medqa-0"])
    assert sum("diplopia" in i.criterion for i in items) == 1  # the first one, under History taking
    assert [(d["field"], d["reason"].split(":")[0]) for d in dropped] == [("tests[0]", "duplicate"), ("plan[0]", "duplicate")]
    assert all("history[0]" in d["reason"] for d in dropped)


_PLAN = [{"criterion": "starts pyridostigmine", "points": 5}]


def test_generator_tags_are_replaced_by_ours(medqa):
    from harness.rubric_generator import DIAGNOSIS_TAG, parse_generated

    reply = _sections(communication=[{"criterion": "is kind", "points": 3, "tags": [DIAGNOSIS_TAG]}])
    items, _ = parse_generated(reply, case=medqa["agentclinic_medqa-0"])
    kind = next(i for i in items if "is kind" in i.criterion)
    assert DIAGNOSIS_TAG not in kind.tags and "axis:communication" in kind.tags


def test_items_answered_by_the_opening_statement_are_dropped(medqa):
    from harness.rubric_generator import parse_generated

    reply = _sections(
        history=[{"criterion": "asks about double vision", "points": 3}, {"criterion": "asks whether rest helps", "points": 3}]
    )
    items, dropped = parse_generated(reply, case=medqa["agentclinic_medqa-0"])
    assert not any("double vision" in i.criterion for i in items)
    assert any("rest helps" in i.criterion for i in items)
    assert [(d["field"], d["reason"]) for d in dropped] == [("history[0]", "answered by the opening statement")]
