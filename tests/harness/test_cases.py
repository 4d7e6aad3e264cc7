import json

import pytest

from harness.cases import CASE_SETS, WITHHELD, Case, load_cases, load_report, mentions
from harness.errors import ArgumentError, DataError
from tests.helpers.paths import shared_file


def test_agentclinic_medqa_real_file_and_scrub_count():
    shared_file("agentclinic", "agentclinic_medqa.jsonl")
    cases = load_cases("agentclinic_medqa")
    report = load_report("agentclinic_medqa")
    assert len(cases) == report["cases"] == 107
    scrubbed = [c for c in cases if "scrubbed:tests" in c.flags]
    assert report["scrubbed_test_cases"] == len(scrubbed) > 0
    assert all(WITHHELD in " ".join(c.tests.values()) + " ".join(c.tests) for c in scrubbed)
    first = cases[0]
    assert first.diagnosis == "Myasthenia gravis" and first.critical_facts and first.tests and first.exam


@pytest.mark.parametrize("name", list(CASE_SETS))
def test_no_visible_field_names_the_diagnosis(name):
    shared_file(CASE_SETS[name].file.dataset, CASE_SETS[name].file.name)
    for case in load_cases(name):
        for alias in case.diagnosis_aliases():
            assert not any(mentions(v, alias) or mentions(k, alias) for k, v in case.tests.items()), (case.case_id, alias)
            assert not any(mentions(f.text, alias) for f in case.history), (case.case_id, alias)


def test_mediq_counts_skipped_and_mismatched_rows():
    shared_file("mediq", "all_dev_good.jsonl")
    report = load_report("mediq_all")
    assert report["skipped_rows"] == 3 and report["cases"] == 1269
    craft = load_report("mediq_craftmd")
    assert craft["cases"] == 140 and craft["flags"].get("answer_mismatch") == 2  # rows 112 and 129 (PROVENANCE.md)


def test_nejm_case_has_options_and_tests():
    shared_file("agentclinic", "agentclinic_nejm.jsonl")
    case = load_cases("agentclinic_nejm")[0]
    assert case.options and case.options[case.answer_idx] == case.diagnosis == "Exogenous ochronosis"
    assert case.diagnosis not in case.differentials and len(case.differentials) == 4
    assert "Skin biopsy results" in case.tests


def test_round_trip():
    shared_file("agentclinic", "agentclinic_medqa.jsonl")
    case = load_cases("agentclinic_medqa")[3]
    assert Case.from_dict(json.loads(json.dumps(case.to_dict()))) == case


def test_bad_row_names_file_line_field(tmp_path):
    good = {
        "OSCE_Examination": {
            "Patient_Actor": {"Demographics": "30-year-old", "History": "Cough.", "Symptoms": {}},
            "Physical_Examination_Findings": {},
            "Test_Results": {},
            "Correct_Diagnosis": "Asthma",
        }
    }
    bad = json.loads(json.dumps(good))
    del bad["OSCE_Examination"]["Correct_Diagnosis"]
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as err:
        load_cases("agentclinic_medqa", path)
    assert err.value.line == 2 and err.value.field == "Correct_Diagnosis" and str(path) in str(err.value)


def test_unknown_case_set():
    with pytest.raises(ArgumentError, match="agentclinic_medqa"):
        load_cases("nope")
