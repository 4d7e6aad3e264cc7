"""MedMCQA and PubMedQA loaders (same question type and answer checking as MedQA).

Neither data set is in ``../shared/data``; the loaders read ``$M2BENCH_DATA_DIR/<dataset>/<file>``
(or the cache) and otherwise say where to get the files. No data is invented.

- MedMCQA (Pal et al. 2022, Apache-2.0): the dev file of the official archive
  (github.com/medmcqa/medmcqa -> Google Drive), JSON lines with question, opa..opd, cop (1-4).
  The official test set has no public answers, so the dev split (4183 rows) is the scored one.
- PubMedQA (Jin et al. 2019, MIT): the 1000 expert-labelled questions and the 500-question test
  split's ground truth, both in github.com/pubmedqa/pubmedqa ``data/``; downloaded from there when
  online. Options: A yes, B no, C maybe.
File names, URLs and row counts: ``harness.evalsets`` (MEDMCQA, PUBMEDQA).
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.data import Row, read_jsonl, resolve, user_path
from harness.errors import ArgumentError, DataError
from harness.evalsets import MEDMCQA, PUBMEDQA, official_count
from harness.medqa import MCQuestion

PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


def load_medmcqa(split: str = "dev", data_file: str | Path | None = None) -> list[MCQuestion]:
    if split not in MEDMCQA:
        raise ArgumentError("split", split, tuple(MEDMCQA))
    path = user_path(data_file) if data_file else resolve(MEDMCQA[split])
    questions = [parse_medmcqa(Row(obj, path, line)) for line, obj in read_jsonl(path)]
    if not questions:
        raise DataError(path, "no rows")
    count = official_count("medmcqa", path.name)
    if count is not None and len(questions) != count:
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
    if len(questions) != PUBMEDQA["test"].rows:
        raise DataError(test, f"has {len(questions)} questions; the official test split has {PUBMEDQA['test'].rows}")
    return questions


def _pubmedqa_file(key: str) -> Path:
    return resolve(PUBMEDQA[key])


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object keyed by PMID, got {type(data).__name__}")
    return data
