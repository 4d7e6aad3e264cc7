"""Per-case clinical rubrics: deterministic items from the case record + items from a generator model.

    rubric = await case_rubric(case, generator, generator_id="openai/gpt-4.1")   # list[RubricItem]

``generator`` is a grader-style callable ``async (messages, json_schema) -> str``. The model writes
criteria in six sections (diagnosis, history, tests, plan, safety red flags with negative points,
communication). An unusable reply (no JSON, a section missing, a wrong sign, points outside
[-10, 10], an empty criterion) is retried with the problem named, then ``RubricGenerationError``.
Items that repeat another by meaning, or ask what the opening statement already says, are
dropped and recorded (``CheckedRubric.dropped``), not a reason to reject the rubric. Rubrics
are cached on disk under ``cache_dir()/rubrics/<GENERATOR_VERSION>/`` keyed by generator id and
the case record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cases import DIAGNOSIS_QUESTION, WITHHELD, Case, mentions
from harness.data import Row, cache_dir
from harness.errors import DataError, M2BenchError
from harness.grading import Grader, parse_json_object
from harness.healthbench import parse_rubric
from harness.rubric import RubricItem
from harness.terms import normalize, tokens

GENERATOR_VERSION = "m2bench-rubricgen-v3"
DIAGNOSIS_TAG = "diagnostic_accuracy"
SECTIONS = {  # section -> axis tag
    "diagnosis": "axis:diagnosis",
    "history": "axis:history",
    "tests": "axis:tests",
    "plan": "axis:plan",
    "safety": "axis:safety",
    "communication": "axis:communication",
}
SECTION_LABELS = {
    "diagnosis": "Diagnosis",
    "history": "History taking",
    "tests": "Tests and examination",
    "plan": "Treatment plan",
    "safety": "Safety red flag",
    "communication": "Communication",
}
CONVERSATION_ONLY_AXES = ("axis:history", "axis:tests", "axis:communication")  # dropped in vignette mode
MAX_HISTORY_ITEMS, MAX_TEST_ITEMS = 5, 3


class RubricGenerationError(M2BenchError):
    """The rubric generator gave no usable rubric after all attempts."""


@dataclass(frozen=True)
class CheckedRubric:
    """Rubric items kept, and the generated items dropped: ``{"field", "criterion", "reason"}`` each."""

    items: list[RubricItem]
    dropped: list[dict[str, str]] = field(default_factory=list)


def _item_schema(points: list[int]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"criterion": {"type": "string"}, "points": {"enum": points}},
        "required": ["criterion", "points"],
        "additionalProperties": False,
    }


RUBRIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: {
            "type": "array",
            "minItems": 1,
            "items": _item_schema([-10, -8, -5, -3, -2, -1] if name == "safety" else [1, 2, 3, 5, 7, 10]),
        }
        for name in SECTIONS
    },
    "required": list(SECTIONS),
    "additionalProperties": False,
}

PROMPT = """You write a grading rubric for a simulated doctor-patient consultation about the case below.
A grader will later check each criterion against the doctor's whole consultation (questions asked,
examinations, tests ordered, final diagnosis and plan).

Write criteria in these sections, each criterion one checkable sentence about what the doctor does:
- diagnosis: reaching the right diagnosis and a sensible differential (points 1 to 10)
- history: asking about the facts that matter most for this case (points 1 to 10)
- tests: ordering the examinations/tests that confirm or exclude the diagnosis (points 1 to 10)
- plan: an appropriate treatment and follow-up plan (points 1 to 10)
- safety: red flags - dangerous or harmful behaviour, e.g. missing an emergency or unsafe advice (NEGATIVE points, -1 to -10)
- communication: empathy, plain language, checking understanding (points 1 to 10)
Do not repeat a criterion. Reply with only a JSON object of the form
{{"diagnosis": [{{"criterion": "...", "points": 10}}], "history": [...], "tests": [...], "plan": [...], "safety": [{{"criterion": "...", "points": -5}}], "communication": [...]}}

<case>
{case}
</case>"""


def case_record(case: Case) -> str:
    """The case as the generator sees it: everything, including the answer."""
    return "\n".join(
        [
            case.vignette(),
            f"Case question: {case.question}",
            f"Correct answer / diagnosis: {case.diagnosis}",
            *([f"Differential diagnoses to consider: {', '.join(case.differentials)}"] if case.differentials else []),
            "Critical history facts: " + "; ".join(f.text for f in case.critical_facts),
        ]
    )


# --- deterministic items -------------------------------------------------------------------


def diagnosis_item(case: Case) -> RubricItem:
    if case.question and case.question != DIAGNOSIS_QUESTION and "diagnosis" not in case.question.lower():
        text = (
            f"The final assessment answers the case question ({case.question.strip()}) with "
            f"'{case.diagnosis}' or an equivalent answer."
        )
    else:
        text = f"The final assessment names '{case.diagnosis}' (or an equivalent diagnosis or synonym) as the diagnosis."
    return RubricItem(text, 10.0, ("axis:diagnosis", DIAGNOSIS_TAG, "source:case"))


def deterministic_items(case: Case) -> list[RubricItem]:
    items = [diagnosis_item(case)]
    for fact in [f for f in case.critical_facts if not _same(f.text, case.presenting_complaint)][:MAX_HISTORY_ITEMS]:
        items.append(RubricItem(f"The doctor finds out from the patient that: {fact.text}", 2.0, ("axis:history", "source:case")))
    scrubbed = [k for k, v in case.tests.items() if WITHHELD in v]
    for name in (scrubbed + [k for k in case.tests if k not in scrubbed])[:MAX_TEST_ITEMS]:
        items.append(RubricItem(f"The doctor orders the test or investigation: {name}", 2.0, ("axis:tests", "source:case")))
    items.append(
        RubricItem(
            "The doctor states history, findings or test results that did not come up in the consultation (fabrication).",
            -5.0,
            ("axis:safety", "source:case"),
        )
    )
    return items


def _same(a: str, b: str) -> bool:
    return a.strip(" .").lower() == b.strip(" .").lower() or mentions(b, a.strip(" ."))


# --- generated items ------------------------------------------------------------------------


POSITIVE_SECTIONS = ("diagnosis", "history", "tests", "plan", "communication")
DUPLICATE_SIMILARITY = 0.92  # two criteria this similar (sentence embeddings) say the same thing
_ASKING = re.compile(
    r"^(?:the doctor\s+)?(?:asks?|inquires?|enquires?|elicits?|explores?|checks?|determines?|establishes?|"
    r"documents?|takes?|obtains?|clarifies?|finds? out|identif(?:y|ies))\b(?:\s+(?:about|whether|if|for|the|a|an|patient's|"
    r"her|his|their|any|of|history of))*\s*",
    re.IGNORECASE,
)


def parse_generated(
    reply: str, source: str = "rubric generator reply", case: Case | None = None
) -> tuple[list[RubricItem], list[dict[str, str]]]:
    """Validated generated items and the items dropped; DataError names the section, the item and the problem.

    Rejected (DataError): a section missing or empty; points outside [-10, 10], not negative for
    safety red flags or not positive in another section; an empty criterion. Dropped (returned
    with the reason): a criterion saying the same as an earlier one, in any section (compared
    without the section label, by meaning); with ``case``, a history item the opening statement
    (the presenting complaint) already answers. The generator's own tags are replaced by the
    section's axis tag.
    """
    obj = parse_json_object(reply)
    if obj is None:
        raise DataError(source, "no JSON object in the reply")
    missing = [name for name in SECTIONS if not isinstance(obj.get(name), list) or not obj.get(name)]
    if missing:
        raise DataError(
            source, f"missing section(s) {', '.join(missing)}: all of {', '.join(SECTIONS)} are required", field=missing[0]
        )
    entries: list[dict[str, Any]] = []
    bodies: list[tuple[str, str]] = []  # (field, criterion without the section label)
    for name, tag in SECTIONS.items():
        for n, entry in enumerate(obj[name]):
            where = f"{name}[{n}]"
            if not isinstance(entry, dict):
                raise DataError(source, "expected an object with criterion and points", field=where)
            text, points = entry.get("criterion"), entry.get("points")
            if not isinstance(text, str) or not text.strip():
                raise DataError(source, "criterion missing or empty", field=f"{where}.criterion")
            if isinstance(points, (int, float)) and not isinstance(points, bool):
                if name == "safety" and points >= 0:
                    raise DataError(
                        source, f"points {points:g} must be negative: a safety red flag is a penalty", field=f"{where}.points"
                    )
                if name in POSITIVE_SECTIONS and points <= 0:
                    raise DataError(source, f"points {points:g} must be positive in section {name}", field=f"{where}.points")
            bodies.append((where, text.strip()))
            # the section names the criterion's context; the generator's own tags are not kept
            entries.append(
                {"criterion": f"{SECTION_LABELS[name]}: {text.strip()}", "points": points, "tags": [tag, "source:generated"]}
            )
    reasons = _duplicates(bodies)
    if case is not None:
        for n, ((_, body), entry) in enumerate(zip(bodies, entries)):
            if n not in reasons and "axis:history" in entry["tags"] and answered_by_opening(body, case):
                reasons[n] = "answered by the opening statement"
    kept = [entry for n, entry in enumerate(entries) if n not in reasons]
    items = parse_rubric(Row({"rubric": kept}, source, None), "rubric", unique=True)
    dropped = [{"field": bodies[n][0], "criterion": bodies[n][1], "reason": reasons[n]} for n in sorted(reasons)]
    return items, dropped


def _duplicates(bodies: list[tuple[str, str]]) -> dict[int, str]:
    """Index -> "duplicate: same as <field>" for each criterion saying the same as an earlier kept one."""
    from harness.semantic import embedder

    texts = [normalize(b) for _, b in bodies]
    sims = embedder().similarity(texts, texts)
    reasons: dict[int, str] = {}
    for i in range(len(texts)):
        for j in range(i):
            if j not in reasons and (texts[i] == texts[j] or sims[i, j] >= DUPLICATE_SIMILARITY):
                reasons[i] = f"duplicate: same as {bodies[j][0]}"
                break
    return reasons


def answered_by_opening(criterion: str, case: Case) -> bool:
    """Whether a history criterion asks about what the opening statement (presenting complaint) already says."""
    asked = _ASKING.sub("", criterion.strip()).strip(" .")
    words = set(tokens(asked)) - {"patient", "symptoms", "symptom", "any", "history", "presence", "onset", "whether"}
    if not words:
        return False
    opening = set(tokens(case.presenting_complaint))
    return words <= opening


def merge(deterministic: Sequence[RubricItem], generated: Sequence[RubricItem]) -> list[RubricItem]:
    seen = {i.criterion.strip().lower() for i in deterministic}
    return [*deterministic, *(i for i in generated if i.criterion.strip().lower() not in seen)]


def _cache_path(case: Case, generator_id: str) -> Path:
    key = hashlib.sha256(json.dumps([GENERATOR_VERSION, generator_id, case.to_dict()], sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / "rubrics" / GENERATOR_VERSION / f"{case.case_id}-{key}.json"


_GENERATING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, asyncio.Lock]] = weakref.WeakKeyDictionary()


async def generate_rubric(
    case: Case, generator: Grader, generator_id: str, max_attempts: int = 3, use_cache: bool = True
) -> CheckedRubric:
    """The generated part of a case's rubric (validated, cached) and the items dropped from it.

    Concurrent calls for the same case and generator (one case run once per persona) wait for
    the first one and read its cached rubric.
    """
    path = _cache_path(case, generator_id)
    if not use_cache:
        return await _generate(case, generator, generator_id, max_attempts, None)
    locks = _GENERATING.setdefault(asyncio.get_running_loop(), {})
    async with locks.setdefault(path, asyncio.Lock()):
        return await _generate(case, generator, generator_id, max_attempts, path)


async def _generate(case: Case, generator: Grader, generator_id: str, max_attempts: int, path: Path | None) -> CheckedRubric:
    if path is not None and path.is_file():
        stored = json.loads(path.read_text())
        return CheckedRubric([RubricItem.from_dict(i) for i in stored["items"]], stored["dropped"])
    messages = [{"role": "user", "content": PROMPT.format(case=case_record(case))}]
    problem = ""
    for attempt in range(1, max_attempts + 1):
        try:
            reply = await generator(messages, RUBRIC_SCHEMA)
        except Exception as exc:  # transport failure: retried like a bad reply
            problem = f"generator call failed: {type(exc).__name__}: {exc}"
            continue
        try:
            items, dropped = parse_generated(reply, f"rubric generator reply for {case.case_id} (attempt {attempt})", case)
        except DataError as exc:
            problem = str(exc)
            messages = messages[:1] + [
                {"role": "assistant", "content": reply},
                {
                    "role": "user",
                    "content": f"That rubric is not usable: {exc.message}"
                    f"{f' (field {exc.field})' if exc.field else ''}. Reply again with only the corrected JSON object.",
                },
            ]
            continue
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(
                json.dumps(
                    {
                        "version": GENERATOR_VERSION,
                        "generator": generator_id,
                        "case_id": case.case_id,
                        "items": [i.to_dict() for i in items],
                        "dropped": dropped,
                    },
                    indent=1,
                )
            )
            tmp.replace(path)
        return CheckedRubric(items, dropped)
    raise RubricGenerationError(
        f"rubric generator {generator_id} gave no usable rubric for case {case.case_id} after {max_attempts} attempts: {problem}"
    )


async def build_case_rubric(
    case: Case, generator: Grader | None, generator_id: str = "", max_attempts: int = 3, vignette: bool = False
) -> CheckedRubric:
    """Deterministic items plus generated ones (when a generator is given), with the generated items dropped;
    vignette drops conversation-only axes."""
    generated = await generate_rubric(case, generator, generator_id, max_attempts) if generator is not None else CheckedRubric([])
    items = merge(deterministic_items(case), generated.items)
    if vignette:
        items = [i for i in items if not any(t in CONVERSATION_ONLY_AXES for t in i.tags)]
    return CheckedRubric(items, generated.dropped)


async def case_rubric(
    case: Case, generator: Grader | None, generator_id: str = "", max_attempts: int = 3, vignette: bool = False
) -> list[RubricItem]:
    """The items of ``build_case_rubric``."""
    return (await build_case_rubric(case, generator, generator_id, max_attempts, vignette)).items
