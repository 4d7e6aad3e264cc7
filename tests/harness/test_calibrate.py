import json

import pytest

from harness.calibrate import KINDS, SPLITS, Cases, entries_named, facts_named, load_probes, main
from harness.errors import DataError
from tests.helpers.paths import shared_file


@pytest.fixture(scope="module", autouse=True)
def _data():
    shared_file("agentclinic", "agentclinic_medqa.jsonl")
    shared_file("mediq", "all_craft_md.jsonl")


def test_every_probe_label_resolves_to_the_case_record():
    """A few hundred hand-written probes, both splits; each names text that is in its case record."""
    cases = Cases()
    total = 0
    for split in SPLITS:
        probes = load_probes(split)
        assert {p["kind"] for p in probes} == set(KINDS)
        total += len(probes)
        for p in probes:
            case = cases.get(p["case"], p["_where"])
            if p["kind"] in ("retrieval", "entailment"):
                facts_named(case, p["facts"] + p.get("also", []), p["_where"])
            elif p["kind"] == "lookup":
                entries_named(case.exam if p["tool"] == "examine" else case.tests, p["expect"], p["_where"])
            elif p["kind"] == "grounding":
                facts_named(case, p["released"], p["_where"])
    assert total >= 300


def test_ci_slice_writes_the_report_with_figures_and_definitions(tmp_path):
    out = tmp_path / "calibration.md"
    assert main(["--limit", "40", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| retrieval.recall | ≥ 0.95 |" in text and "## Metric definitions" in text
    assert "lookup.normal_answers" in text and "held-out" in text


def test_a_bad_probe_names_file_line_and_field(tmp_path):
    bad = tmp_path / "dev_probes.jsonl"
    bad.write_text(
        json.dumps({"kind": "retrieval", "case": "agentclinic_medqa-0", "question": "?", "facts": ["no such text"]}) + "\n"
    )
    [probe] = load_probes("dev", bad)
    with pytest.raises(DataError) as err:
        facts_named(Cases().get(probe["case"], probe["_where"]), probe["facts"], probe["_where"])
    assert err.value.line == 1 and err.value.field == "facts" and "no such text" in str(err.value)


def test_no_normal_answer_for_unrecorded_or_differently_named_results():
    """The zero-'normal' target holds on every lookup probe of both splits (not a slice)."""
    from harness.calibrate import figures, run_deterministic

    cases = Cases()
    for split in SPLITS:
        probes = [p for p in load_probes(split) if p["kind"] == "lookup"]
        assert figures(run_deterministic(probes, cases))["lookup.normal_answers"] == 0


@pytest.mark.slow  # a few seconds of retrieval over the development questions
def test_the_patient_is_offered_exactly_the_facts_calibration_measures():
    """Calibration measures ``harness.grounding.retrieve_facts``; the simulator must run that function, with the
    same limit and the same restated facts, or the calibrated figures describe something else."""
    from harness.grounding import OPEN_QUESTION, retrieve_facts
    from harness.patient import PatientSimulator

    async def silent(messages):
        return ""

    cases = Cases()
    questions = [p for p in load_probes("dev") if p["kind"] == "retrieval" and not OPEN_QUESTION.search(p["question"])]
    assert len(questions) > 300
    for p in questions:
        case = cases.get(p["case"], p["_where"])
        measured = retrieve_facts(p["question"], case.history, complaint=case.presenting_complaint)
        assert PatientSimulator(case, silent).candidates(p["question"]) == measured, p["question"]


def test_a_missed_non_answer_that_the_alias_check_accepts_is_reported_as_both():
    """The report must show why alias precision fell: a labelled non-answer the check accepted as correct."""
    from harness.calibrate import run_deterministic

    probe = {
        "kind": "diagnosis",
        "case": "mediq_craftmd-11",  # ichthyosis vulgaris; "ichthyosis" is a curated alias
        "answer": "Some kind of ichthyosis",
        "correct": False,
        "note": "non-answer",
        "_where": ("probes.jsonl", 1),
    }
    tally = run_deterministic([probe], Cases())["diagnosis"]
    assert tally.found == 1 and tally.correct_found == 0
    assert tally.failures == [
        "probes.jsonl:1 non-answer missed and accepted: 'Some kind of ichthyosis' for 'Ichthyosis vulgaris'"
    ]


def _probe(line: int, **fields):
    return {"case": "agentclinic_medqa-0", **fields, "_where": ("probes.jsonl", line)}


def test_a_second_labeller_is_scored_against_the_first_exactly_as_a_component_is():
    """Second labels of the same items, counted by hand: the first question's second label gives one of the two
    required facts plus one the first labeller did not allow; the second agrees; the leak reply is judged benign."""
    from harness.calibrate import agreement, second_answers

    first = [
        _probe(
            1,
            kind="retrieval",
            question="Does resting help?",
            facts=["Improvement of symptoms after rest", "improve significantly"],
            also=[],
        ),
        _probe(2, kind="retrieval", question="Do you smoke?", facts=["Non-smoker"], also=[]),
        _probe(3, kind="leak", reply="They said it might be myasthenia.", leak=True),
        _probe(4, kind="diagnosis", answer="Not sure yet", correct=False, note="non-answer"),
    ]
    second = [
        _probe(
            1,
            kind="retrieval",
            question="Does resting help?",
            facts=["Improvement of symptoms after rest", "Weakness in upper limbs"],
            also=[],
        ),
        _probe(2, kind="retrieval", question="Do you smoke?", facts=["Non-smoker"], also=[]),
        _probe(3, kind="leak", reply="They said it might be myasthenia.", leak=False),
        _probe(4, kind="diagnosis", answer="Not sure yet", correct=False, note="non-answer"),
        _probe(5, kind="retrieval", question="A question nobody asked the first labeller", facts=[], also=[]),
    ]
    shown = agreement(first, [set(), set(), [], (True, False)], second_answers(first, second, Cases()), Cases())
    assert shown["counts"] == {"retrieval": 2, "leak": 1, "diagnosis": 1}  # the unmatched second label is left out
    by_second = shown["second"]
    assert by_second["retrieval.recall"] == 2 / 3  # f4 and f8 of the three required (f4, f6, f8)
    assert by_second["retrieval.precision"] == 2 / 3  # f3 (weakness in the upper limbs) was not allowed
    assert by_second["leak.recall"] == 0.0 and by_second["diagnosis.non_answer_recall"] == 1.0
    assert shown["component"]["retrieval.recall"] == 0.0  # the component's answers given: nothing offered


def test_every_second_label_belongs_to_one_probe_and_names_recorded_text():
    from harness.calibrate import SECOND_LABELS, item_key, second_labeller_answer

    keys = {item_key(p) for split in SPLITS for p in load_probes(split)}
    seconds = load_probes("second", SECOND_LABELS)
    assert len(seconds) >= 300 and len({item_key(s) for s in seconds}) == len(seconds)
    cases = Cases()
    for s in seconds:
        assert item_key(s) in keys, s["_where"]
        second_labeller_answer(s, cases.get(s["case"], s["_where"]))


def test_the_report_sets_the_components_beside_a_second_labeller(tmp_path):
    out = tmp_path / "calibration.md"
    assert main(["--split", "heldout", "--limit", "40", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Two labellers" in text and "| heldout: component | heldout: second labeller |" in text
    assert "## What an LLM selector is shown" in text and "| candidates recall |" in text


def test_the_selector_candidates_bound_what_any_selector_can_recall(monkeypatch):
    """Shown nothing, a selector recalls nothing; shown the whole record, all it can miss is its own choice."""
    from dataclasses import replace

    from harness import grounding
    from harness.calibrate import second_answers, selector_candidates_figures
    from harness.semantic import embedder

    first = [_probe(1, kind="retrieval", question="Does resting help?", facts=["Improvement of symptoms after rest"], also=[])]
    second = [
        _probe(
            1, kind="retrieval", question="Does resting help?", facts=["Improvement of symptoms", "Weakness in upper"], also=[]
        )
    ]
    name = embedder().name
    for shown, recall in ((0, 0.0), (9, 1.0)):  # agentclinic_medqa-0 records 9 facts
        monkeypatch.setitem(grounding.SETTINGS, name, replace(grounding.SETTINGS[name], selector_candidates=shown))
        figures = selector_candidates_figures(first, second_answers(first, second, Cases()), Cases())
        assert figures["candidates_recall"] == recall and figures["second_recall"] == recall
    assert figures["second_precision"] == 0.5  # the second label's other fact (f3) is not labelled by the first


def test_the_graders_entailment_check_is_measured_on_the_entailment_probes():
    """``--llm`` measures the check behind critical_fact_recall: one criterion per recorded fact, scored as entailment."""
    import asyncio

    from harness.calibrate import run_llm
    from tests.helpers.scripted import scripted_grader

    probe = _probe(1, kind="entailment", snippet="I keep seeing two of everything.", facts=["Double vision"], also=[])
    exact = scripted_grader(lambda c: "patient's words" in c and "double vision" in c.lower())
    out = asyncio.run(run_llm([probe], Cases(), exact, 20))
    assert out["entailment_check.recall"] == 1.0 and out["entailment_check.precision"] == 1.0  # f1 and f5 both say it
    assert exact.calls == 9  # one criterion per recorded fact of agentclinic_medqa-0
    everything = asyncio.run(run_llm([probe], Cases(), scripted_grader(lambda c: True), 20))
    assert everything["entailment_check.precision"] == 2 / 9


@pytest.mark.parametrize(
    "probe, field",
    [
        ({"kind": "retrieval", "case": "agentclinic_medqa-0", "question": "Any fever?"}, "facts"),
        ({"kind": "leak", "case": "agentclinic_medqa-0", "leak": True}, "reply"),
        ({"kind": "diagnosis", "answer": "MG", "correct": True, "note": "abbreviation"}, "case"),
    ],
)
def test_a_probe_missing_a_field_is_an_error_naming_file_line_and_field(tmp_path, probe, field):
    bad = tmp_path / "second_labels.jsonl"
    bad.write_text("\n" + json.dumps(probe) + "\n")
    with pytest.raises(DataError) as err:
        load_probes("second", bad)
    assert err.value.line == 2 and err.value.field == field and "second_labels.jsonl" in str(err.value)
