"""The simulated patient: answers only from the case record, in a persona, guarded against leaks.

    sim = PatientSimulator(case, chat, persona="anxious")   # chat: async (messages) -> str
    reply = await sim.reply("Do you smoke?")               # PatientReply(text, leaked, revealed_fact_ids, regenerated)
    sim.examine("neurological")  /  sim.order_test("chest CT")   # deterministic lookups

Facts are released on demand: each turn the patient model sees only the presenting complaint,
the facts it already revealed and the facts relevant to the doctor's question (word overlap
with the fact and its topic), so it cannot volunteer the whole record at once. It never sees
the diagnosis, exam findings or test results.

Leak guard: each reply is checked for the diagnosis (and its aliases) and for values of tests
not yet ordered; a leaking reply is regenerated once with a stricter instruction, then the
leaking words are redacted. ``leaks`` counts leaking first drafts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from harness.cases import Case, Fact, mentions, scrub
from harness.errors import ArgumentError

Chat = Callable[[list[dict[str, str]]], Awaitable[str]]

PERSONAS: dict[str, str] = {
    "neutral": "You answer plainly and cooperatively.",
    "talkative": "You are chatty and add small personal asides, but you only state facts from your record.",
    "anxious": "You are worried about what this could be and say so, and you ask if it is serious.",
    "terse": "You answer in as few words as possible.",
    "low_health_literacy": "You have little medical knowledge: you use everyday words and ask what medical terms mean.",
}
REDACTED = "[...]"
OPEN_QUESTION = re.compile(
    r"\b(what brings|tell me (more|about)|anything else|how can i help|describe|go on|what happened)\b", re.I
)
STOPWORDS = frozenset(
    "a an the and or of to in on at for with is are was were be been do does did you your have has had any about "
    "me my i it this that what when how why where who can could would there their they he she his her them not no "
    "tell please any other some if so as by from patient patients history".split()
)
TOPIC_WORDS = {
    "symptoms": "symptom symptoms feel feeling problem complaint pain",
    "history of present illness": "start started began when long duration worse better since happen",
    "past medical history": "past medical illness illnesses conditions condition disease diseases surgery hospital before",
    "social history": "smoke smoking alcohol drink drinking drugs work job occupation live living travel sexual sex",
    "review of systems": "fever chest pain breath weight other systems",
    "current medications": "medication medications medicine medicines drugs pills take taking",
    "medications": "medication medications medicine medicines drugs pills take taking",
    "drug history": "medication medications medicine drugs pills take taking",
    "family history": "family mother father parents sister brother relatives run",
    "allergies": "allergy allergies allergic",
}
_NUMBER_WITH_UNIT = re.compile(r"\d+(?:[.,]\d+)?\s*(?:%|[a-zµμ]+/[a-z]+|mg|g|mmol|mmhg|u/l|iu|bpm|cells)", re.I)
_GENERIC_VALUES = frozenset(
    {"normal", "negative", "positive", "within normal limits", "unremarkable", "none", "absent", "present"}
)


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS and len(w) > 2}


@dataclass
class PatientReply:
    text: str
    leaked: bool  # the first draft leaked (diagnosis or an unordered test value)
    revealed_fact_ids: list[str] = field(default_factory=list)
    regenerated: bool = False
    redacted: bool = False
    leak_terms: list[str] = field(default_factory=list)


class PatientSimulator:
    def __init__(self, case: Case, chat: Chat, persona: str = "neutral", max_relevant: int = 4):
        if persona not in PERSONAS:
            raise ArgumentError("persona", persona, list(PERSONAS))
        self.case, self.chat, self.persona = case, chat, persona
        self.max_relevant = max_relevant
        self.history: list[dict[str, str]] = []  # doctor = user, patient = assistant
        self.revealed: list[str] = []
        self.ordered_tests: list[str] = []
        self.examined: list[str] = []
        self.replies = self.leaks = self.regenerations = self.redactions = 0

    # --- conversation ---------------------------------------------------------------------

    def relevant_facts(self, question: str) -> list[Fact]:
        """Facts the doctor's question asks about (never all of them at once)."""
        asked = words(question)
        scored = []
        for position, fact in enumerate(self.case.history):
            overlap = len(asked & (words(fact.text) | words(fact.topic) | set(TOPIC_WORDS.get(fact.topic, "").split())))
            if overlap:
                scored.append((-overlap, position, fact))
        chosen = [f for _, _, f in sorted(scored)[: self.max_relevant]]
        if not chosen and OPEN_QUESTION.search(question):
            chosen = [f for f in self.case.history if f.id not in self.revealed][:1]
        return chosen

    def system_prompt(self, facts: list[Fact]) -> str:
        known = [self.case.fact(i) for i in self.revealed]
        allowed = list({f.id: f for f in [*known, *facts]}.values())
        lines = "\n".join(f"- {f.text}" for f in allowed) or "- (nothing relevant to this question)"
        return (
            f"You are a patient ({self.case.demographics}) talking to a doctor. {PERSONAS[self.persona]}\n"
            f"Why you came: {self.case.presenting_complaint}\n"
            f"What you can tell the doctor now (answer only what is asked, from these facts):\n{lines}\n"
            "If the question is about something not listed, say you have not noticed it or do not know. "
            "You do not know your diagnosis or any test results; never guess a diagnosis or use medical jargon. "
            "Speak in the first person, in one to three sentences."
        )

    async def reply(self, doctor_text: str) -> PatientReply:
        facts = self.relevant_facts(doctor_text)
        messages = [
            {"role": "system", "content": self.system_prompt(facts)},
            *self.history,
            {"role": "user", "content": doctor_text},
        ]
        text = (await self.chat(messages)).strip()
        terms = self.leak_terms_in(text)
        result = PatientReply(text, leaked=bool(terms), leak_terms=terms)
        if terms:
            self.leaks += 1
            self.regenerations += 1
            result.regenerated = True
            strict = messages[:-1] + [
                {
                    "role": "system",
                    "content": "Your last answer named a diagnosis or a test result you cannot know. "
                    "Describe only what you feel and notice, in everyday words.",
                },
                messages[-1],
            ]
            text = (await self.chat(strict)).strip()
            if still := self.leak_terms_in(text):
                text = redact(text, still)
                self.redactions += 1
                result.redacted = True
            result.text = text
        self.replies += 1
        result.revealed_fact_ids = [f.id for f in self.revealed_in(result.text, facts)]
        self.revealed += [i for i in result.revealed_fact_ids if i not in self.revealed]
        self.history += [{"role": "user", "content": doctor_text}, {"role": "assistant", "content": result.text}]
        return result

    def revealed_in(self, text: str, offered: list[Fact]) -> list[Fact]:
        """Offered facts the reply conveys: at least half of the fact's content words appear."""
        said = words(text)
        out = []
        for fact in offered:
            own = words(fact.text)
            if own and len(own & said) >= max(1, len(own) / 2):
                out.append(fact)
        return out

    # --- leak guard -----------------------------------------------------------------------

    def leak_terms(self) -> list[str]:
        """The diagnosis, its aliases, and distinctive values of tests not yet ordered."""
        own_words = words(" ".join([self.case.presenting_complaint, *(f.text for f in self.case.history)]))
        terms = list(self.case.diagnosis_aliases())
        terms += [w for w in distinctive_words(self.case.diagnosis) if w.lower() not in own_words]  # "vomiting" may be a symptom
        for name, value in self.case.tests.items():
            if name in self.ordered_tests:
                continue
            terms += _NUMBER_WITH_UNIT.findall(value)
            if len(value) >= 12 and value.strip(" .").lower() not in _GENERIC_VALUES:
                terms.append(value.strip(" ."))
        return [t for t in dict.fromkeys(terms) if t.strip()]

    def leak_terms_in(self, text: str) -> list[str]:
        return [t for t in self.leak_terms() if mentions(text, t)]

    # --- deterministic lookups ------------------------------------------------------------

    def examine(self, system: str) -> str:
        found = lookup(self.case.exam, system)
        self.examined.append(system)
        if not found:
            return f"Examination of {system}: no abnormal findings recorded."
        return "\n".join(f"{k}: {v}" for k, v in found.items())

    def order_test(self, name: str) -> str:
        found = lookup(self.case.tests, name)
        self.ordered_tests += [k for k in found if k not in self.ordered_tests]
        if not found:
            return f"{name}: result within normal limits (no abnormal result recorded)."
        return "\n".join(f"{k}: {v}" for k, v in found.items())


# words of a diagnosis name that a patient may say without naming the diagnosis
_GENERIC_WORDS = {
    "syndrome",
    "disease",
    "disorder",
    "infection",
    "chronic",
    "acute",
    "primary",
    "secondary",
    "deficiency",
    "failure",
    "injury",
    "reaction",
    "benign",
    "malignant",
    "congenital",
    "idiopathic",
    "bilateral",
    "lateral",
    "medial",
    "anterior",
    "posterior",
    "inferior",
    "superior",
    "multiple",
    "partial",
    "complete",
    "severe",
    "stomach",
    "kidney",
    "kidneys",
    "breast",
    "throat",
    "artery",
    "nerve",
    "muscle",
    "muscles",
    "pressure",
    "fracture",
    "poisoning",
    "overdose",
    "associated",
    "induced",
    "related",
    "type",
    "stage",
    "major",
    "minor",
}


def distinctive_words(diagnosis: str) -> list[str]:
    """Single words of a multi-word diagnosis specific enough to give it away ("myasthenia")."""
    found = re.findall(r"[A-Za-z][A-Za-z'-]+", diagnosis)
    if len(found) < 2:
        return []
    return [w for w in found if len(w) >= 6 and w.lower() not in _GENERIC_WORDS]


def lookup(record: dict[str, str], query: str) -> dict[str, str]:
    """Entries whose name best matches the query's words (all ties), else those whose value does."""
    asked = words(query) - {"test", "tests", "level", "levels", "exam", "examination", "results", "result", "check"}
    if not asked:
        return {}
    for field_of in (lambda k, v: k, lambda k, v: f"{k} {v}"):
        scores = {k: len(asked & words(field_of(k, v))) for k, v in record.items()}
        best = max(scores.values(), default=0)
        if best:
            return {k: record[k] for k, s in scores.items() if s == best}
    return {}


def redact(text: str, terms: list[str]) -> str:
    return scrub(text, terms, REDACTED)
