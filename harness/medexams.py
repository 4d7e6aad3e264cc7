"""MedMCQA and PubMedQA loaders (same question type and answer checking as MedQA).

Neither data set is in ``../shared/data``; the loaders read ``$M2BENCH_DATA_DIR/<dataset>/<file>``
(or the cache) and otherwise say where to get the files. No data is invented.

- MedMCQA (Pal et al. 2022, Apache-2.0): ``medmcqa/dev.json`` from the official archive
  (github.com/medmcqa/medmcqa -> Google Drive), JSON lines with question, opa..opd, cop (1-4).
  The official test set has no public answers, so the dev split (4183 rows) is the scored one.
- PubMedQA (Jin et al. 2019, MIT): ``pubmedqa/ori_pqal.json`` (1000 expert-labelled questions) and
  ``pubmedqa/test_ground_truth.json`` (the 500-question test split), both in github.com/pubmedqa/pubmedqa
  ``data/``; downloaded from there when online. Options: A yes, B no, C maybe.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.data import Row, read_jsonl, resolve_file, user_path
from harness.errors import ArgumentError, DataError
from harness.medqa import MCQuestion, local_file

MEDMCQA_SOURCE = "https://github.com/medmcqa/medmcqa (Google Drive archive data.zip)"
MEDMCQA_FILES = {"dev": ("dev.json", 4183)}
PUBMEDQA_URL = "https://raw.githubusercontent.com/pubmedqa/pubmedqa/master/data/"
PUBMEDQA_FILES = {"labeled": ("ori_pqal.json", 1000), "test": ("test_ground_truth.json", 500)}
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


def load_medmcqa(split: str = "dev", data_file: str | Path | None = None) -> list[MCQuestion]:
    if split not in MEDMCQA_FILES:
        raise ArgumentError("split", split, tuple(MEDMCQA_FILES))
    name, count = MEDMCQA_FILES[split]
    path = user_path(data_file) if data_file else local_file("medmcqa", name, MEDMCQA_SOURCE)
    questions = [parse_medmcqa(Row(obj, path, line)) for line, obj in read_jsonl(path)]
    if not questions:
        raise DataError(path, "no rows")
    if path.name == name and len(questions) != count:
        raise DataError(path, f"has {len(questions)} rows; the official file has {count}")
    return questions


def parse_medmcqa(row: Row) -> MCQuestion:
    options = {letter: row.text(field).strip() for letter, field in zip("ABCD", ("opa", "opb", "opc", "opd"))}
    cop = row.get("cop", int)
    if cop not in (1, 2, 3, 4):
        raise row.error("cop", f"expected 1-4 (the official test file has no answers), got {cop}")
    meta = {"subject": row.get("subject_name", str, required=False), "choice_type": row.get("choice_type", str, required=False)}
    return MCQuestion(row.text("id"), row.text("question").strip(), options, "ABCD"[cop - 1], meta)


def load_pubmedqa(split: str = "test") -> list[MCQuestion]:
    """PubMedQA PQA-L test split: question with its abstract contexts, answer yes / no / maybe."""
    if split != "test":
        raise ArgumentError("split", split, ("test",))
    labeled, test = (_pubmedqa_file(key) for key in ("labeled", "test"))
    truth = _json_object(test)
    data = _json_object(labeled)
    questions = []
    for pmid, decision in truth.items():
        if pmid not in data:
            raise DataError(labeled, f"has no entry for test PMID {pmid} (listed in {test.name})", field=pmid)
        row = Row(data[pmid], labeled, None)
        contexts = row.get("CONTEXTS", list)
        if decision not in PUBMEDQA_OPTIONS.values():
            raise DataError(test, f"decision {decision!r} for PMID {pmid} is not yes, no or maybe", field=pmid)
        text = "\n".join(str(c) for c in contexts) + "\n\nQuestion: " + row.text("QUESTION")
        answer = next(k for k, v in PUBMEDQA_OPTIONS.items() if v == decision)
        questions.append(MCQuestion(pmid, text, dict(PUBMEDQA_OPTIONS), answer, {"pmid": pmid}))
    if len(questions) != PUBMEDQA_FILES["test"][1]:
        raise DataError(test, f"has {len(questions)} questions; the official test split has {PUBMEDQA_FILES['test'][1]}")
    return questions


def _pubmedqa_file(key: str) -> Path:
    name = PUBMEDQA_FILES[key][0]
    return resolve_file("pubmedqa", name, PUBMEDQA_URL + name)


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object keyed by PMID, got {type(data).__name__}")
    return data
