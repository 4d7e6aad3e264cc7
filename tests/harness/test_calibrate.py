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
