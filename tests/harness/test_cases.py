import json
import re

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


LARGE_SETS = {"craftmd", "craftmd_medqa", "mediq_all"}  # 1269-2004 cases each: in the slow suite


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in LARGE_SETS else n for n in CASE_SETS])
def test_no_visible_field_names_the_diagnosis(name):
    shared_file(CASE_SETS[name].file.dataset, CASE_SETS[name].file.name)
    for case in load_cases(name):
        for alias in case.diagnosis_aliases():
            assert not any(mentions(v, alias) or mentions(k, alias) for k, v in case.tests.items()), (case.case_id, alias)
            assert not any(mentions(f.text, alias) for f in case.history), (case.case_id, alias)


@pytest.mark.slow  # over ~3 s: the fast loop leaves it out
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


@pytest.mark.slow
def test_mediq_consultation_set_keeps_only_diagnosis_questions_and_files_labs_as_tests():
    from harness.cases import asks_for_diagnosis

    shared_file("mediq", "all_dev_good.jsonl")
    cases = load_cases("mediq")
    assert 100 < len(cases) < 200 and all(asks_for_diagnosis(c.question) for c in cases)
    assert not asks_for_diagnosis("Which of the following is the most appropriate next step in diagnosis?")
    every = load_cases("mediq_all")
    lab = [f.text for c in every for f in c.history if re.search(r"\d\s*(?:mg/dl|meq/l|g/dl|/mm3)", f.text, re.I)]
    assert lab == []  # numeric lab results are test results, not patient history
    assert sum(len(c.tests) for c in every) > 1000


def test_craftmd_from_its_raw_csv():
    shared_file("craftmd", "usmle_and_derm_dataset.csv")
    derm = load_cases("craftmd_derm")
    assert len(derm) == 200 and all(c.options and c.answer_idx in c.options for c in derm)
    first = derm[0]
    assert first.case_id == "craftmd-case_0" and first.options[first.answer_idx] == first.diagnosis == "Lymphogranuloma venereum"
    assert "Lymphogranuloma" not in " ".join(f.text for f in first.history)
    hsp = next(c for c in derm if c.case_id == "craftmd-case_112")  # the answer is a synonym of its choice upstream
    assert hsp.options[hsp.answer_idx] == "IgA vasculitis" and any(f.startswith("answer_mismatch") for f in hsp.flags)


@pytest.mark.slow
def test_craftmd_vignettes_duplicating_medqa_are_flagged():
    from harness.cases import medqa_duplicates

    shared_file("craftmd", "usmle_and_derm_dataset.csv")
    shared_file("medqa", "phrases_no_exclude_test.jsonl")
    found = medqa_duplicates("craftmd")
    assert set(found.values()) == {"test", "dev"} and 200 < len(found) < 400
    assert all(case_id.startswith("craftmd-case_") for case_id in found)
