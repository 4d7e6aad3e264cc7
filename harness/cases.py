"""One schema for a clinical case, with converters from the public case sets.

``load_cases(name)`` for name in ``CASE_SETS`` reads ``$M2BENCH_DATA_DIR/<dataset>/<file>``
(AgentClinic OSCE jsonl, MediQ jsonl). Malformed rows raise DataError (file:line:field).

Test results (and every other field the doctor or patient can see) must not name the
diagnosis: each mention is replaced by ``WITHHELD`` and the case gets a flag;
``load_report(name)`` counts scrubbed cases and other data-quality flags.

``Case.diagnosis`` is the ground-truth answer to ``Case.question`` (for AgentClinic and the
diagnosis questions of MediQ a diagnosis; a few MediQ questions ask for a drug or a mechanism).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.data import Row, read_jsonl, resolve
from harness.errors import ArgumentError, DataError
from harness.evalsets import CASE_SETS
from harness.terms import curated, diagnosis_aliases, giveaways, normalize

WITHHELD = "[withheld]"
DIAGNOSIS_QUESTION = "What is the most likely diagnosis?"


@dataclass
class Fact:
    id: str
    text: str
    topic: str = "history"  # symptoms, past medical history, social history, medications, ...
    critical: bool = False


@dataclass
class Case:
    case_id: str
    source: str
    presenting_complaint: str
    demographics: str
    history: list[Fact]
    exam: dict[str, str]  # system / finding name -> finding
    tests: dict[str, str]  # test name -> result
    diagnosis: str
    differentials: list[str] = field(default_factory=list)
    persona: str = ""  # source-specific patient background (e.g. NEJM patient_info), may be empty
    question: str = DIAGNOSIS_QUESTION
    options: dict[str, str] | None = None  # MCQ options where the source has them
    answer_idx: str | None = None
    flags: list[str] = field(default_factory=list)  # data-quality notes, e.g. "scrubbed:tests"

    @property
    def critical_facts(self) -> list[Fact]:
        return [f for f in self.history if f.critical]

    def fact(self, fact_id: str) -> Fact:
        return next(f for f in self.history if f.id == fact_id)

    def diagnosis_aliases(self) -> list[str]:
        return diagnosis_aliases(self.diagnosis)

    def vignette(self) -> str:
        """The whole case as one text (vignette mode), without the answer."""
        lines = [f"Patient: {self.demographics}.", f"Presenting complaint: {self.presenting_complaint}", "History:"]
        lines += [f"- {f.text}" for f in self.history]
        if self.exam:
            lines += ["Examination:"] + [f"- {k}: {v}" for k, v in self.exam.items()]
        if self.tests:
            lines += ["Test results:"] + [f"- {k}: {v}" for k, v in self.tests.items()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        data = dict(data)
        data["history"] = [Fact(**f) for f in data["history"]]
        return cls(**data)


def term_pattern(term: str) -> re.Pattern[str]:
    """Whole-word match; hyphens and spaces interchangeable ("Stevens Johnson" = "Stevens-Johnson"),
    a possessive allowed; short all-capital abbreviations (MG, PML) match case-sensitively."""
    flags = 0 if term.isupper() and len(term) <= 5 else re.IGNORECASE
    words = [re.escape(w) for w in re.split(r"[\s\-]+", term.strip()) if w]
    body = r"[\s\-]+".join(words) if words else re.escape(term)
    return re.compile(r"(?<![\w-])" + body + r"(?:['\u2019]s)?(?![\w-])", flags)


def mentions(text: str, term: str) -> bool:
    return term_pattern(term).search(text) is not None


def scrub(text: str, terms: list[str], mark: str = WITHHELD) -> str:
    for term in sorted(terms, key=len, reverse=True):
        text = term_pattern(term).sub(mark, text)
    return text


def case_path(name: str) -> Path:
    if name not in CASE_SETS:
        raise ArgumentError("cases", name, list(CASE_SETS))
    return resolve(CASE_SETS[name].file)


def load_cases(name: str, path: str | Path | None = None) -> list[Case]:
    """All cases of a public case set (or ``path``, a file in that set's format)."""
    return _load(name, path)[0]


def _load(name: str, path: str | Path | None) -> tuple[list[Case], list[int]]:
    """(cases, line numbers of rows skipped: no patient case, another subset, or not a diagnosis question)."""
    if name not in CASE_SETS:
        raise ArgumentError("cases", name, list(CASE_SETS))
    case_set = CASE_SETS[name]
    path = Path(path) if path else case_path(name)
    convert = _CONVERTERS[case_set.format]
    cases: list[Case] = []
    skipped: list[int] = []
    seen: dict[str, int] = {}
    rows = _read_csv(path) if case_set.format == "craftmd" else read_jsonl(path)
    for line, obj in rows:
        row = Row(obj, path, line)
        if case_set.subset and row.text("dataset") not in case_set.subset:
            continue
        case = convert(row, f"{name}-{len(cases) + len(skipped)}", name)
        if case is None or (case_set.diagnosis_only and not asks_for_diagnosis(case.question)):
            skipped.append(line)
        elif case.case_id in seen:  # only source ids (MediQ "id", CRAFT-MD "case_id") can repeat
            raise DataError(path, f"duplicate case id {case.case_id!r} (first on line {seen[case.case_id]})", line, "id")
        else:
            seen[case.case_id] = line
            cases.append(_scrub_case(case))
    if not cases:
        raise DataError(path, "no cases")
    return cases, skipped


_ASKS_FOR_DIAGNOSIS = re.compile(
    r"\b(?:most likely|most probable|likely|probable|correct|what is the|what's the|which of the following is the)\s+diagnos[ie]s\b"
    r"|\bdiagnosis\s+(?:is|for|in)\b|^\s*diagnosis\s*\??\s*$",
    re.IGNORECASE,
)


def asks_for_diagnosis(question: str) -> bool:
    """Whether a case question asks for a diagnosis ("most likely diagnosis?"), not a test, step or mechanism."""
    return bool(_ASKS_FOR_DIAGNOSIS.search(question)) and not re.search(
        r"next (?:best )?step|confirm|establish|diagnostic (?:test|study)|best initial test", question, re.IGNORECASE
    )


def _read_csv(path: Path):
    """(line, row) for each CSV record; the line is where the record starts."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        start = reader.line_num + 1
        for row in reader:
            yield start, {k or "index": v for k, v in row.items()}
            start = reader.line_num + 1


def load_report(name: str, path: str | Path | None = None) -> dict[str, Any]:
    """Counts for a case set: cases, scrubbed cases (diagnosis named in a visible field), flags."""
    cases, skipped = _load(name, path)
    flags = Counter(flag if flag.startswith("scrubbed:") else flag.split(":")[0] for c in cases for flag in c.flags)
    return {
        "cases": len(cases),
        "skipped_rows": len(skipped),  # rows with no patient context, or (diagnosis-only sets) not asking for a diagnosis
        "scrubbed_cases": sum(any(f.startswith("scrubbed:") for f in c.flags) for c in cases),
        "scrubbed_test_cases": sum("scrubbed:tests" in c.flags for c in cases),
        "flagged_cases": sum(bool(c.flags) for c in cases),
        "flags": dict(sorted(flags.items())),
        "critical_facts": sum(len(c.critical_facts) for c in cases),
        "cases_without_tests": sum(not c.tests for c in cases),
    }


def _scrub_case(case: Case) -> Case:
    """Replace every name of the diagnosis in the fields the doctor or patient sees by WITHHELD.

    Test results and exam findings lose the diagnosis, its aliases and its giveaway words
    (``harness.terms.giveaways``: "consistent with CLL/SLL" -> "consistent with [withheld]");
    the patient's record loses the aliases and curated giveaways but keeps its own everyday
    words (a mother's "rheumatoid arthritis" in a reactive-arthritis case); test names lose only
    full aliases, so "STI screen / Gonorrhea" can still be ordered.
    """
    names = giveaways(case.diagnosis)
    aliases = case.diagnosis_aliases()
    spoken = [*aliases, *curated(case.diagnosis)["giveaways"]]  # the record's own words ("rheumatoid arthritis") stay
    hit = lambda text, terms=names: any(mentions(text, t) for t in terms)  # noqa: E731
    if any(hit(v) or hit(k, aliases) for k, v in case.tests.items()):
        case.tests = {scrub(k, aliases): scrub(v, names) for k, v in case.tests.items()}
        case.flags.append("scrubbed:tests")
    if any(hit(v) or hit(k) for k, v in case.exam.items()):
        case.exam = {scrub(k, names): scrub(v, names) for k, v in case.exam.items()}
        case.flags.append("scrubbed:exam")
    if any(hit(f.text, spoken) for f in case.history) or hit(case.presenting_complaint, spoken) or hit(case.persona, spoken):
        for f in case.history:
            f.text = scrub(f.text, spoken)
        case.presenting_complaint = scrub(case.presenting_complaint, spoken)
        case.persona = scrub(case.persona, spoken)
        case.flags.append("scrubbed:history")
    return case


# --- AgentClinic OSCE (MedQA) -------------------------------------------------------------

_CRITICAL_TOPICS = ("symptoms", "history of present illness")


def _label(key: str) -> str:
    return key.replace("_", " ").strip()


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts -> {"A / B": "text"}; a trailing 'Findings' key is dropped from the name."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, sub in value.items():
            name = _label(key)
            path = f"{prefix} / {name}" if prefix and name.lower() not in ("findings", "result", "results") else (prefix or name)
            for k, v in _flatten(sub, path).items():
                out[k] = f"{out[k]}; {v}" if k in out else v
        return out
    if isinstance(value, list):
        return {
            prefix: "; ".join(
                str(v) if not isinstance(v, dict) else "; ".join(f"{a}: {b}" for a, b in _flatten(v).items()) for v in value
            )
        }
    return {prefix: str(value)}


def _osce(row: Row, case_id: str, source: str) -> Case:
    osce = row.sub("OSCE_Examination")
    actor = osce.sub("Patient_Actor")
    diagnosis = osce.text("Correct_Diagnosis").strip()
    facts: list[Fact] = []

    def add(text: str, topic: str, critical: bool) -> None:
        text = text.strip()
        if text and text.lower() not in ("none", "n/a", "not applicable"):
            facts.append(Fact(f"f{len(facts) + 1}", text, topic, critical))

    symptoms = actor.get("Symptoms", dict, required=False, default={})
    primary = symptoms.get("Primary_Symptom")
    if isinstance(primary, str):
        add(primary, "symptoms", True)
    secondary = symptoms.get("Secondary_Symptoms", [])
    if isinstance(secondary, str):
        secondary = [secondary]
    if not isinstance(secondary, list):
        raise actor.error("Symptoms.Secondary_Symptoms", "expected an array of strings")
    for item in secondary:
        add(str(item), "symptoms", True)
    history = actor.text("History")
    for sentence in _sentences(history):
        add(sentence, "history of present illness", True)
    for key, value in actor.obj.items():
        if key in ("Demographics", "History", "Symptoms"):
            continue
        for name, text in _flatten(value, _label(key)).items():
            topic = _label(key).lower()
            add(text if name.lower() == topic else f"{name.split(' / ', 1)[-1]}: {text}" if " / " in name else text, topic, False)
    exam = _flatten(osce.get("Physical_Examination_Findings", dict))
    tests = _flatten(osce.get("Test_Results", dict))
    complaint = primary if isinstance(primary, str) and primary.strip() else _sentences(history)[0]
    return Case(
        case_id=case_id,
        source=source,
        presenting_complaint=complaint.strip(),
        demographics=actor.text("Demographics"),
        history=facts,
        exam=exam,
        tests=tests,
        diagnosis=diagnosis,
    )


# --- AgentClinic NEJM -----------------------------------------------------------------------

_HEADER = re.compile(r"(?:\s+|^)[A-Z][\w-]*(?:\s+[a-z][\w-]*){0,2}\s+(?:results?|findings?|tests?|readings?):\s*$")


def _nejm_tests(body: str) -> dict[str, str]:
    """'1. Name: value 2. ...' or '- Name: value - ...' lists -> {name: value}."""
    tests: dict[str, str] = {}
    for part in re.split(r"(?:^|\s+)(?:\d+\.|-)\s+", re.sub(r"\*\*", "", body)):
        part = _HEADER.sub("", part).strip(" .;")
        if not part or part.endswith(":"):
            continue
        name, value = part.split(":", 1) if ":" in part else (" ".join(part.split()[:6]), part)
        if name.strip() and value.strip():
            tests[name.strip()] = value.strip()
    return tests


_AGE = re.compile(r"\b(\d+)[- ](year|month|week|day)[- ]old (\w+)", re.IGNORECASE)


def _nejm(row: Row, case_id: str, source: str) -> Case:
    question = row.text("question")
    info = row.text("patient_info")
    exams = row.text("physical_exams")
    answers = row.get("answers", list)
    options: dict[str, str] = {}
    correct = []
    for n, answer in enumerate(answers):
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise row.error(f"answers[{n}]", "expected an object with text and correct")
        options[chr(ord("A") + n)] = answer["text"].strip()
        if answer.get("correct") is True:
            correct.append(chr(ord("A") + n))
    if len(correct) != 1:
        raise row.error("answers", f"expected exactly one correct answer, found {len(correct)}")
    diagnosis = options[correct[0]]
    body = exams.split(":", 1)[1] if exams.lower().startswith("the information") and ":" in exams else exams
    tests = _nejm_tests(body)
    if not tests:
        tests = {"Findings": body.strip()}
    sentences = _sentences(question)
    exam_text = " ".join(s for s in sentences if re.search(r"examination|exam\b", s, re.IGNORECASE))
    exam = {"Examination": exam_text} if exam_text else {}
    facts = [Fact(f"f{n}", s, "history", True) for n, s in enumerate(_patient_sentences(info), 1)]
    age = _AGE.search(question)
    demographics = f"{age.group(1)}-{age.group(2)}-old {age.group(3)}" if age else "adult"
    return Case(
        case_id=case_id,
        source=source,
        presenting_complaint=sentences[0],
        demographics=demographics,
        history=facts,
        exam=exam,
        tests=tests,
        diagnosis=diagnosis,
        differentials=[v for k, v in options.items() if k != correct[0]],
        persona=info,
        question=sentences[-1] if sentences[-1].endswith("?") else DIAGNOSIS_QUESTION,
        options=options,
        answer_idx=correct[0],
        flags=[],
    )


def _patient_sentences(info: str) -> list[str]:
    """Facts from a 'For your role as a patient...' text: role-play framing dropped."""
    text = re.sub(r"\*\*", "", info)
    parts = re.split(r"(?<=[.!?])\s+|\s+-\s+", text)
    keep = []
    for part in parts:
        part = part.strip(" -")
        low = part.lower()
        if (
            len(part) < 12
            or part.endswith(":")
            or low.startswith(("for your role", "remember", "your character", "as a patient"))
        ):
            continue
        part = re.sub(r"^[A-Z][\w ]{0,30}:\s+", "", part)  # 'Age and Background: You are ...'
        keep.append(part)
    return keep or [text.strip()]


# --- MediQ ------------------------------------------------------------------------------------

_TEST_WORDS = re.compile(
    r"\b(laborator|lab\b|labs\b|serum|plasma|blood (?:test|count|culture|gas)|culture|biopsy|x-ray|radiograph|ct\b|mri|ultraso|"
    r"echocardiogra|ecg|ekg|electrocardiogra|urinalysis|urine (?:shows|reveals|analysis|studies|culture)|smear|stain|titer|assay|"
    r"level[s]?\b|concentration|hemoglobin|haemoglobin|hematocrit|reticulocyte|leukocyte|platelet|sodium|potassium|creatinine|"
    r"glucose|antibod|antigen|pcr|scan|imaging|histolog|patholog|microscop|cerebrospinal|lumbar puncture|csf|aspirat|"
    r"spirometr|fev1|angiogra|endoscop|colonoscop|electrophoresis|cholesterol|triglycerides|bilirubin|albumin|ldh|"
    r"arterial blood|hco3|koh|\bige\b|\bigg\b|\bigm\b|cd4|ferritin|troponin|tsh|lipase|amylase|cortisol|enzyme)",
    re.IGNORECASE,
)
_LAB_VALUE = re.compile(
    r"\d[\d,.]*\s*(?:mg/dl|meq/l|mmol/l|g/dl|u/l|iu/l|/mm3|/mm\^3|/[μµu]l|[μµ]g|ng/ml|pg/ml|mm/h|mosm)", re.IGNORECASE
)
_SUBJECT = re.compile(r"\s*(?:\b(?:is|are|was|were|shows?|showed|reveals?|revealed|demonstrates?|of)\b|:)", re.IGNORECASE)


def _test_name(text: str, n: int) -> str:
    """A short name for a MediQ lab fact ("Cerebrospinal fluid analysis shows ..." -> "Cerebrospinal fluid analysis")."""
    subject = _SUBJECT.split(text, maxsplit=1)[0]
    subject = re.sub(r"^(?:the |patient's |his |her |a |an )", "", subject.strip(), flags=re.IGNORECASE)
    words = subject.split()[:8] or text.split()[:4]
    return f"{' '.join(words).strip(' ,.')} (finding {n})"


_EXAM_WORDS = re.compile(
    r"\b(temperature|blood pressure|pulse|heart rate|respirations|respiratory rate|oxygen saturation|bmi|"
    r"examination|exam\b|auscultation|palpation|tender|murmur|reflex|on inspection|vital signs|°)",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(denie[sd]|deny|no\b|not\b|never|without|negative)\b", re.IGNORECASE)


def _mediq(row: Row, case_id: str, source: str) -> Case | None:
    raw_id = row.get("id", (int, str))
    context = row.get("context", list)
    if context == [] and row.get("facts", list) == []:
        return None  # a knowledge question with no patient: nothing to simulate
    if not context or not all(isinstance(c, str) for c in context):
        raise row.error("context", "expected a non-empty array of strings")
    facts_raw = row.get("facts", list)
    if not facts_raw or not all(isinstance(f, str) for f in facts_raw):
        raise row.error("facts", "expected a non-empty array of strings")
    options = row.get("options", dict)
    answer = row.text("answer").strip()
    answer_idx = row.text("answer_idx").strip()
    if answer_idx not in options:
        raise row.error("answer_idx", f"{answer_idx!r} is not one of the options {sorted(options)}")
    flags = []
    if str(options[answer_idx]).strip() != answer:
        flags.append(f"answer_mismatch:{answer_idx}={options[answer_idx]!r} vs answer={answer!r}")
    patient = row.get("patient", dict, required=False, default={})
    demographics = " ".join(str(patient[k]) for k in ("age", "gender") if patient.get(k)) or "adult"
    history: list[Fact] = []
    exam: dict[str, str] = {}
    tests: dict[str, str] = {}
    for n, text in enumerate(facts_raw, 1):
        text = re.sub(r"^\s*\d+\.\s*", "", text).strip()
        if _TEST_WORDS.search(text) or _LAB_VALUE.search(text):
            tests[_test_name(text, n)] = text
        elif _EXAM_WORDS.search(text):
            exam[f"finding {n}"] = text
        else:
            history.append(Fact(f"f{n}", text, "history", _NEGATION.search(text) is None))
    return Case(
        case_id=f"{source}-{raw_id}",
        source=source,
        presenting_complaint=context[0].strip(),
        demographics=demographics,
        history=history,
        exam=exam,
        tests=tests,
        diagnosis=answer,
        differentials=[str(v).strip() for k, v in options.items() if k != answer_idx],
        question=row.text("question"),
        options={k: str(v).strip() for k, v in options.items()},
        answer_idx=answer_idx,
        flags=flags,
    )


def _sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text.strip()) if p.strip()]
    return parts or [text.strip()]


# --- CRAFT-MD (raw CSV) ----------------------------------------------------------------------

_CRAFTMD_AGE = re.compile(
    r"\b(\d+)[- ](year|month|week|day)s?[- ]old\s+(?:\w+\s+){0,2}?(man|woman|boy|girl|male|female|infant|baby|child|patient)",
    re.I,
)


def _craftmd(row: Row, case_id: str, source: str) -> Case:
    """One CRAFT-MD row (case_vignette, choice_1..4, answer, category, dataset, case_id) as a case.

    The vignette's sentences become history facts, exam findings (examination, vital signs) or
    test results (laboratory, imaging); a closing question sentence becomes the case question.
    """
    vignette = row.text("case_vignette").strip()
    options = {chr(ord("A") + i): row.text(f"choice_{i + 1}").strip() for i in range(4)}
    answer = row.text("answer").strip()
    letters = [k for k, v in options.items() if v.lower() == answer.lower()]
    flags = [f"dataset:{row.text('dataset')}", f"category:{row.text('category', required=False)}"]
    if not letters:  # upstream row 112: answer 'Henoch-Scholein vasculitis', choice 'IgA vasculitis' (a synonym)
        names = {normalize(a) for a in diagnosis_aliases(answer)}
        letters = [k for k, v in options.items() if normalize(v) in names]
        if not letters:
            raise row.error("answer", f"{answer!r} is not one of the choices {list(options.values())}")
        flags.append(f"answer_mismatch:{letters[0]}={options[letters[0]]!r} vs answer={answer!r}")
    sentences = _sentences(vignette)
    question = DIAGNOSIS_QUESTION
    if len(sentences) > 1 and sentences[-1].endswith("?"):
        question = sentences.pop()
    history: list[Fact] = []
    exam: dict[str, str] = {}
    tests: dict[str, str] = {}
    for n, text in enumerate(sentences, 1):
        if n > 1 and (_TEST_WORDS.search(text) or _LAB_VALUE.search(text)):
            tests[_test_name(text, n)] = text
        elif n > 1 and _EXAM_WORDS.search(text):
            exam[f"finding {n}"] = text
        else:
            history.append(Fact(f"f{n}", text, "history", _NEGATION.search(text) is None))
    age = _CRAFTMD_AGE.search(vignette)
    demographics = f"{age.group(1)}-{age.group(2)}-old {age.group(3)}" if age else "adult"
    return Case(
        case_id=f"{source.split('_')[0]}-{row.text('case_id').strip()}",
        source=source,
        presenting_complaint=sentences[0] if sentences else vignette,
        demographics=demographics,
        history=history,
        exam=exam,
        tests=tests,
        diagnosis=answer,
        differentials=[v for k, v in options.items() if k != letters[0]],
        question=question,
        options=options,
        answer_idx=letters[0],
        flags=flags,
    )


def medqa_duplicates(name: str = "craftmd", threshold: float = 0.8) -> dict[str, str]:
    """Cases of a case set whose vignette duplicates a MedQA test or dev question: {case_id: "test" | "dev"}.

    CRAFT-MD's MedQA-USMLE vignettes come from MedQA; a training export that draws on MedQA dev
    (or any set reported next to CRAFT-MD) holds these out. A duplicate is a question whose
    word set overlaps the vignette's by at least ``threshold`` (Jaccard), so light edits count.
    """
    from harness.medqa import load_medqa

    def words(text: str) -> frozenset[str]:
        return frozenset(re.findall(r"[a-z0-9]+", text.lower()))

    index: dict[str, list[tuple[frozenset[str], str]]] = {}
    for split in ("test", "dev"):
        for q in load_medqa(split):
            w = words(q.question)
            for key in _shingles(w):
                index.setdefault(key, []).append((w, split))
    found: dict[str, str] = {}
    for case in load_cases(name):
        text = " ".join([case.presenting_complaint, *(f.text for f in case.history), *case.exam.values(), *case.tests.values()])
        w = words(text)
        best = 0.0
        for key in _shingles(w):
            for other, split in index.get(key, ()):
                score = len(w & other) / len(w | other)
                if score > best:
                    best, found[case.case_id] = score, split
        if best < threshold:
            found.pop(case.case_id, None)
    return found


def _shingles(words: frozenset[str]) -> list[str]:
    """A few rare-ish words that two near-identical questions share (candidate keys)."""
    long = sorted(w for w in words if len(w) >= 7)
    return long[:3] + long[-3:]


_CONVERTERS = {"osce": _osce, "nejm": _nejm, "mediq": _mediq, "craftmd": _craftmd}


if __name__ == "__main__":  # python -m harness.cases: data-quality counts for every case set
    import json

    for set_name in CASE_SETS:
        print(json.dumps({"case_set": set_name, **load_report(set_name)}))
