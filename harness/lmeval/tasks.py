"""lm-eval glue for tasks/lm_eval (m2_medqa*): data through harness.medqa, answers through harness.answers.

The YAMLs load data with ``custom_dataset: !function utils.load_medqa`` (utils.py re-exports this
module), so no relative ``data_files`` path is involved and ``lm_eval --include_path tasks/lm_eval``
works from any directory. ``python -m harness.lmeval.tasks`` prints that folder's absolute path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import medqa
from harness.answers import extract_choice
from harness.medqa import LETTERS, MCQuestion, format_prompt

TASK_DIR = Path(__file__).resolve().parents[2] / "tasks" / "lm_eval"


def to_doc(q: MCQuestion) -> dict[str, Any]:
    return {
        "id": q.id,
        "question": q.question,
        "options": [q.options[k] for k in LETTERS],
        "answer": q.answer,
        "label": LETTERS.index(q.answer),
        "meta_info": q.meta.get("meta_info") or "",
    }


def options_of(doc: dict[str, Any]) -> dict[str, str]:
    return dict(zip(LETTERS, doc["options"]))


def question_of(doc: dict[str, Any]) -> MCQuestion:
    return MCQuestion(doc["id"], doc["question"], options_of(doc), doc["answer"], {})


def load_medqa(shuffle_choices: int | str | None = None, data_file: str | None = None, **_: Any):
    """``custom_dataset`` for lm-eval: {"test": ..., "dev": ...} as datasets.Dataset.

    ``--metadata '{"shuffle_choices": 7}'`` reorders options; ``data_file`` replaces the test file.
    """
    import datasets

    seed = medqa.parse_shuffle_choices(shuffle_choices)
    out = {}
    for split in ("test", "dev"):
        questions = medqa.load_medqa(split, data_file if split == "test" else None, seed)
        out[split] = datasets.Dataset.from_list([to_doc(q) for q in questions])
    return datasets.DatasetDict(out)


def doc_to_text_mc(doc: dict[str, Any]) -> str:
    """Log-likelihood prompt, as in lm-eval's own medqa_4options task."""
    choices = "".join(f"{k}. {v}\n" for k, v in options_of(doc).items())
    return f"Question: {doc['question']}\n{choices}Answer:"


def doc_to_text_gen(doc: dict[str, Any]) -> str:
    """The same prompt the Inspect task sends (harness.medqa.format_prompt)."""
    return format_prompt(question_of(doc), cot=False)


def doc_to_text_cot(doc: dict[str, Any]) -> str:
    return format_prompt(question_of(doc), cot=True)


def process_results_gen(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Score one generation with harness.answers.extract_choice (the Inspect scorer's function)."""
    found = extract_choice(results[0], options_of(doc))
    return {
        "acc": 1.0 if found.matches(doc["answer"]) else 0.0,
        "no_answer": 1.0 if found.status == "no_answer" else 0.0,
        "ambiguous": 1.0 if found.status == "ambiguous" else 0.0,
    }


if __name__ == "__main__":
    print(TASK_DIR)
