"""MedQA (USMLE, 4 options): files, validation, loading, prompt.

Jin et al. 2020 (arXiv:2009.13081), MIT. The original is a Google Drive archive
(jind11/MedQA -> data_clean/questions/US/4_options/), so there is no direct URL: the files are
read from ``$M2BENCH_DATA_DIR/medqa/`` or the cache folder ``medqa/``. Row counts are verified.
The same question type also serves MedMCQA and PubMedQA (harness.medexams).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

from harness.arguments import whole
from harness.data import Row, read_jsonl, resolve, user_path
from harness.errors import ArgumentError, DataError
from harness.evalsets import MEDQA, official_count

SPLITS = tuple(MEDQA)
LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class MCQuestion:
    """One multiple-choice question; ``answer`` is the correct letter."""

    id: str
    question: str
    options: dict[str, str]
    answer: str
    meta: dict[str, str | None]

    @property
    def answer_text(self) -> str:
        return self.options[self.answer]


def official_path(split: str) -> Path:
    if split not in MEDQA:
        raise ArgumentError("split", split, SPLITS)
    return resolve(MEDQA[split])


def load_medqa(split: str = "test", data_file: str | Path | None = None, shuffle_seed: int | None = None) -> list[MCQuestion]:
    """MedQA-USMLE 4-option questions of ``split`` (or an explicit ``data_file`` in the same format).

    ``shuffle_seed`` (non-zero) reorders each question's options deterministically.
    """
    if split not in SPLITS:
        raise ArgumentError("split", split, SPLITS)
    path = user_path(data_file) if data_file else official_path(split)
    questions = load_file(path, split)
    count = official_count("medqa", path.name)
    if count is not None and len(questions) != count:
        raise DataError(path, f"has {len(questions)} rows; the official file has {count}")
    if shuffle_seed:
        questions = [shuffle_options(q, shuffle_seed) for q in questions]
    return questions


def load_file(path: str | Path, split: str = "test") -> list[MCQuestion]:
    questions = [parse_question(Row(obj, path, line), f"{split}-{line:04d}") for line, obj in read_jsonl(path)]
    if not questions:
        raise DataError(path, "no rows")
    return questions


def parse_question(row: Row, qid: str) -> MCQuestion:
    """Validate one MedQA row: question, options A-D, answer_idx, answer text matching options[answer_idx]."""
    question = row.text("question")
    raw = row.get("options", dict)
    if sorted(raw) != list(LETTERS):
        raise row.error("options", f"expected exactly the keys {', '.join(LETTERS)}, got {', '.join(map(str, raw)) or 'none'}")
    options = {}
    for letter in LETTERS:
        text = raw[letter]
        if not isinstance(text, str) or not text.strip():
            raise row.error(f"options.{letter}", "missing or empty option text")
        options[letter] = text.strip()
    if len({t.lower() for t in options.values()}) != len(options):
        raise row.error("options", "two options have the same text")
    answer = row.text("answer_idx").strip()
    if answer not in LETTERS:
        raise row.error("answer_idx", f"expected one of {', '.join(LETTERS)}, got {answer!r}")
    answer_text = row.text("answer").strip()
    if answer_text != options[answer]:
        other = [k for k, v in options.items() if v == answer_text]
        if other:
            raise row.error("answer_idx", f"is {answer} but the answer text is options.{other[0]}")
        # either field may be the wrong one, so the message names both
        raise DataError(
            row.path,
            f"answer {answer_text[:60]!r} does not match options.{answer} {options[answer][:60]!r} (answer_idx {answer})",
            row.line,
        )
    meta = {"meta_info": row.get("meta_info", str, required=False)}
    return MCQuestion(qid, question.strip(), options, answer, meta)


def parse_shuffle_choices(value: int | bool | str | None) -> int | None:
    """The ``shuffle_choices`` argument (task arg, lm-eval metadata) as a seed; None when off."""
    if value in (None, False, 0, "0", "", "none", "None", "false", "False"):
        return None
    return whole("shuffle_choices", value, minimum=1, meaning=" (the shuffle seed; 0 or none = off)")


def shuffle_options(q: MCQuestion, seed: int) -> MCQuestion:
    """The question with its option texts reordered (same seed and id -> same order); answer follows."""
    letters = list(q.options)
    texts = [q.options[k] for k in letters]
    order = list(range(len(texts)))
    random.Random(f"{seed}:{q.id}").shuffle(order)
    options = {letters[n]: texts[i] for n, i in enumerate(order)}
    answer = letters[order.index(letters.index(q.answer))]
    return replace(q, options=options, answer=answer, meta={**q.meta, "original_answer": q.answer})


# The one prompt both harnesses use (Inspect task and lm-eval generation task).
PROMPT = "Answer the following multiple choice question. {instruction}\n\n{question}\n\n{choices}"
DIRECT = "Reply with the letter of the correct option only, in the form 'ANSWER: $LETTER' (without quotes) where LETTER is one of {letters}."
COT = (
    "Think step by step, then give your final answer on the last line in the form 'ANSWER: $LETTER' "
    "(without quotes) where LETTER is one of {letters}."
)


def format_choices(options: dict[str, str]) -> str:
    return "\n".join(f"{k}) {v}" for k, v in options.items())


def format_prompt(q: MCQuestion, cot: bool = False) -> str:
    instruction = (COT if cot else DIRECT).format(letters="".join(q.options))
    return PROMPT.format(instruction=instruction, question=q.question, choices=format_choices(q.options))
