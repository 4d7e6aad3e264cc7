"""MedMCQA and PubMedQA loaders: clear errors when the files are absent, validation when present."""

import json

import pytest

import harness.data
from harness.errors import ArgumentError, DataError
from harness.medexams import load_medmcqa, load_pubmedqa

MEDMCQA_ROW = {
    "id": "4e1715fe",
    "question": "Which term best describes marked leukocytosis with a left shift?",
    "opa": "Leukemoid reaction",
    "opb": "Leukopenia",
    "opc": "Myeloid metaplasia",
    "opd": "Neutrophilia",
    "cop": 1,
    "subject_name": "Pathology",
    "choice_type": "single",
}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("M2BENCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_medmcqa_missing_file_says_where_to_put_it(data_dir):
    with pytest.raises(DataError) as err:
        load_medmcqa()
    assert "medmcqa/dev.json" in str(err.value) and "github.com/medmcqa/medmcqa" in str(err.value)


def test_medmcqa_rows(tmp_path, data_dir):
    path = tmp_path / "few.json"
    second = dict(MEDMCQA_ROW, id="b2", cop=4)
    path.write_text(json.dumps(MEDMCQA_ROW) + "\n" + json.dumps(second) + "\n")
    questions = load_medmcqa(data_file=str(path))
    assert [q.answer for q in questions] == ["A", "D"]
    assert questions[0].answer_text == "Leukemoid reaction" and questions[0].meta["subject"] == "Pathology"
    (data_dir / "medmcqa").mkdir(parents=True)
    (data_dir / "medmcqa" / "dev.json").write_text(path.read_text())
    with pytest.raises(DataError, match="has 2 rows; the official file has 4183"):
        load_medmcqa()


@pytest.mark.parametrize(
    "change,field", [({"cop": -1}, "cop"), ({"cop": "1"}, "cop"), ({"opc": ""}, "opc"), ({"question": None}, "question")]
)
def test_medmcqa_bad_rows(tmp_path, change, field):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(MEDMCQA_ROW) + "\n" + json.dumps({**MEDMCQA_ROW, **change}) + "\n")
    with pytest.raises(DataError) as err:
        load_medmcqa(data_file=str(path))
    assert (err.value.line, err.value.field) == (2, field)


def test_medmcqa_split():
    with pytest.raises(ArgumentError, match="valid values: dev"):
        load_medmcqa("test")


def test_pubmedqa_offline_says_where_to_put_it(data_dir, monkeypatch):
    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr(harness.data, "_download", offline)
    with pytest.raises(DataError) as err:
        load_pubmedqa()
    assert "$M2BENCH_DATA_DIR/pubmedqa/ori_pqal.json" in str(err.value)
    assert "pubmedqa/pubmedqa" in str(err.value)


def write_pubmedqa(data_dir, labeled, truth):
    folder = data_dir / "pubmedqa"
    folder.mkdir(parents=True)
    (folder / "ori_pqal.json").write_text(json.dumps(labeled))
    (folder / "test_ground_truth.json").write_text(json.dumps(truth))


def entry(question):
    return {"QUESTION": question, "CONTEXTS": ["Background sentence.", "Results sentence."], "final_decision": "yes"}


def test_pubmedqa_checks_test_split(data_dir):
    write_pubmedqa(data_dir, {"1": entry("Does X help?"), "2": entry("Is Y safe?")}, {"1": "yes", "2": "maybe"})
    with pytest.raises(DataError, match="has 2 questions; the official test split has 500"):
        load_pubmedqa()


def test_pubmedqa_missing_pmid_and_bad_decision(data_dir):
    write_pubmedqa(data_dir, {"1": entry("Does X help?")}, {"1": "yes", "7": "no"})
    with pytest.raises(DataError, match="no entry for test PMID 7"):
        load_pubmedqa()


def test_pubmedqa_bad_decision(data_dir):
    write_pubmedqa(data_dir, {"1": entry("Does X help?")}, {"1": "probably"})
    with pytest.raises(DataError, match="'probably' for PMID 1"):
        load_pubmedqa()
