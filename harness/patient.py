"""The simulated patient: answers only from the case record, in a persona, grounded and leak-guarded.

    sim = PatientSimulator(case, chat, persona="anxious")   # chat: async (messages) -> str
    reply = await sim.reply("Do you smoke?")               # PatientReply(text, leaked, revealed_fact_ids, ...)
    sim.examine("neurological")  /  sim.order_test("chest CT")   # deterministic lookups

Facts are released on demand: each turn the patient model sees only the presenting complaint,
the facts it already revealed and the facts the doctor's question asks about (retrieved by
meaning, ``harness.grounding.retrieve_facts``), so it cannot volunteer the whole record at
once. It never sees the diagnosis, exam findings or test results. Where a ``selector`` is
given (an LLM bound to the ``patient`` or ``measurement`` role), it chooses by number among the
best-scored facts (``harness.grounding.selector_candidates``, more than the threshold lets through, so
that it can recall what the threshold misses): it selects facts verbatim, it never writes new ones.

Every reply is checked twice before the doctor sees it:
- grounding (``harness.grounding.check_reply``): a sentence that asserts a medical fact no
  record fact supports is a hallucination, one that denies a recorded fact a false denial;
  "I have not noticed that" about something unrecorded is correct behaviour;
- the leak guard: the diagnosis, its aliases and giveaway words (``harness.terms``) and values
  of tests not yet ordered.
A failing first draft is regenerated once with a stricter instruction; what still fails is
removed (unsupported sentences) or redacted (leaking words). ``hallucinations``,
``false_denials`` and ``leaks`` count failing first drafts.

Lookups answer from the record only: a request matching nothing recorded reads "not recorded",
never "normal" (only a recorded normal result reads normal).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from harness.cases import Case, Fact, mentions, scrub
from harness.errors import ArgumentError
from harness.grounding import (
    OPEN_QUESTION,
    Grounding,
    check_reply,
    entailed,
    lookup,
    retrieve_facts,
    selector_choice,
    sentences,
)
from harness.terms import giveaways, match_concepts, normalize, phrase_in, stem, tokens

Chat = Callable[[list[dict[str, str]]], Awaitable[str]]
Selector = Callable[[str, list[str]], Awaitable[list[int] | None]]  # (question, candidates) -> chosen indexes; None: unusable

# Speaking styles, Baichuan-M2-style psychological and social attributes, and AgentClinic-style biases.
PERSONAS: dict[str, str] = {
    "neutral": "You answer plainly and cooperatively.",
    "talkative": "You are chatty and add small personal asides, but you only state facts from your record.",
    "anxious": "You are worried about what this could be and say so, and you ask if it is serious.",
    "terse": "You answer in as few words as possible.",
    "low_health_literacy": "You have little medical knowledge: you use everyday words and ask what medical terms mean.",
    "health_anxiety": "You worry a lot about your health, fear the worst and ask repeatedly whether it could be something terrible.",
    "low_trust": "You are wary of doctors, give short guarded answers at first and ask why each question matters.",
    "cost_worried": "You worry about what tests and treatment will cost and ask whether each one is really necessary.",
    "caregiver": "You are the parent or carer of the patient and answer on their behalf, in the third person, from what you have seen.",
    "recency_bias": "A friend recently had something similar, so you keep mentioning that it might be the same thing, without naming any disease.",
    "self_diagnosis": "You have read about your symptoms online and are convinced it is something serious, but you never name a disease.",
}
REDACTED = "[...]"
NOT_RECORDED = "not recorded (no result for this request in the patient's record)"
SAFE_REPLY = "I'm not sure about that."
_NUMBER_WITH_UNIT = re.compile(r"\d+(?:[.,]\d+)?\s*(?:%|[a-zµμ]+/[a-z0-9]+|mg|g|mmol|mmhg|u/l|iu|bpm|cells)", re.I)
_GENERIC_VALUES = frozenset(
    {"normal", "negative", "positive", "within normal limits", "unremarkable", "none", "absent", "present", "pending"}
)
_TEST_WORDS = re.compile(
    r"\b(tests?|scans?|x-?rays?|ct|mri|ultrasounds?|biops(y|ies)|bloods|blood (tests?|work|results?)|labs?|results?|"
    r"levels?|counts?|swabs?|cultures?|smears?|screens?|ecg|ekg|echo|scrapings?|hearing test|titres?|titers?|tested|"
    r"antibod(?:y|ies))\b",
    re.IGNORECASE,
)
_RESULT_WORDS = re.compile(
    r"\b(showed|shows|came back|has come back|revealed|found|grew|detected|confirmed|(was|were|is|are) (\d|high|low|"
    r"raised|elevated|positive|negative|abnormal|normal|really (high|low)|very (high|low)))|\b(positive|negative) for\b",
    re.IGNORECASE,
)
_VALUE_STOP = frozenset("with without and or in on at to for from by no not was were is are be left right".split())


@dataclass
class PatientReply:
    text: str
    leaked: bool  # the first draft leaked (diagnosis or an unordered test value)
    revealed_fact_ids: list[str] = field(default_factory=list)
    regenerated: bool = False
    redacted: bool = False
    leak_terms: list[str] = field(default_factory=list)
    hallucinated: bool = False  # the first draft asserted a medical fact the record does not support
    false_denial: bool = False  # the first draft denied a recorded fact
    unsupported: list[str] = field(default_factory=list)  # the first draft's failing sentences
    removed: bool = False  # failing sentences of the second draft were removed


class PatientSimulator:
    def __init__(
        self,
        case: Case,
        chat: Chat,
        persona: str = "neutral",
        max_relevant: int | None = None,
        selector: Selector | None = None,
        grounded: bool = True,
    ):
        if persona not in PERSONAS:
            raise ArgumentError("persona", persona, list(PERSONAS))
        self.case, self.chat, self.persona = case, chat, persona
        self.max_relevant = max_relevant  # None: the calibrated limit (grounding.settings().retrieval_max)
        self.selector = selector
        self.grounded = grounded
        self.history: list[dict[str, str]] = []  # doctor = user, patient = assistant
        self.revealed: list[str] = []
        self.ordered_tests: list[str] = []
        self.examined: list[str] = []
        self.replies = self.leaks = self.regenerations = self.redactions = 0
        self.hallucinations = self.false_denials = self.removals = 0
        self._leak_terms: list[str] | None = None

    # --- conversation ---------------------------------------------------------------------

    def candidates(self, question: str) -> list[Fact]:
        """The facts the question asks about, best first: ``harness.grounding.retrieve_facts``, the function
        ``python -m harness.calibrate`` measures (an open question retrieves the presenting complaint's facts)."""
        facts = self.case.history
        found = retrieve_facts(question, facts, self.max_relevant, complaint=self.case.presenting_complaint)
        if OPEN_QUESTION.search(question) and all(f.id in self.revealed for f in found):
            found = [f for f in facts if f.id not in self.revealed][:1] or found  # "Tell me more": one new fact at a time
        return found

    def relevant_facts(self, question: str) -> list[Fact]:
        """Facts the doctor's question asks about (never all of them at once)."""
        return self.candidates(question)

    async def _select(self, question: str) -> list[Fact]:
        """The facts for this question: the selector's choice among ``selector_candidates`` (at most the calibrated
        limit + 2), or without a selector, or when its reply is unusable, ``candidates``."""
        if self.selector is None:
            return self.candidates(question)
        chosen = await selector_choice(
            question, self.case.history, self.selector, complaint=self.case.presenting_complaint, limit=self.max_relevant
        )
        return chosen if chosen is not None else self.candidates(question)

    def system_prompt(self, facts: list[Fact], strict: str = "") -> str:
        known = [self.case.fact(i) for i in self.revealed]
        allowed = list({f.id: f for f in [*known, *facts]}.values())
        lines = "\n".join(f"- {f.text}" for f in allowed) or "- (nothing relevant to this question)"
        return (
            f"You are a patient ({self.case.demographics}) talking to a doctor. {PERSONAS[self.persona]}\n"
            f"Why you came: {self.case.presenting_complaint}\n"
            f"What you can tell the doctor now (answer only what is asked, from these facts):\n{lines}\n"
            "If the question is about something not listed, say you have not noticed it or do not know. "
            "Never deny anything listed, and never add symptoms, history or details that are not listed. "
            "You do not know your diagnosis or any test results; never guess a diagnosis or use medical jargon. "
            "Speak in the first person, in one to three sentences." + (f"\n{strict}" if strict else "")
        )

    def allowed_texts(self, facts: list[Fact]) -> list[str]:
        known = [self.case.fact(i).text for i in self.revealed]
        return [*known, *(f.text for f in facts), self.case.presenting_complaint, self.case.demographics]

    def check(self, text: str, facts: list[Fact]) -> tuple[list[str], Grounding]:
        """(leak terms, grounding verdicts) for a draft reply."""
        terms = self.leak_terms_in(text)
        if not self.grounded:
            return terms, Grounding()
        return terms, check_reply(text, self.allowed_texts(facts), [f.text for f in self.case.history])

    async def reply(self, doctor_text: str) -> PatientReply:
        facts = await self._select(doctor_text)
        messages = [
            {"role": "system", "content": self.system_prompt(facts)},
            *self.history,
            {"role": "user", "content": doctor_text},
        ]
        text = (await self.chat(messages)).strip()
        terms, grounding = self.check(text, facts)
        labels = {label for _, label in grounding.verdicts}
        result = PatientReply(text, leaked=bool(terms), leak_terms=terms, unsupported=grounding.unsupported)
        result.hallucinated, result.false_denial = "hallucination" in labels, "false_denial" in labels
        self.leaks += bool(terms)
        self.hallucinations += result.hallucinated
        self.false_denials += result.false_denial
        if terms or grounding.unsupported:
            self.regenerations += 1
            result.regenerated = True
            problems = []
            if terms:
                problems.append("named a diagnosis or a test result you cannot know")
            if grounding.unsupported:
                problems.append("said something your facts do not state (or denied something they do)")
            strict = (
                f"Your last answer {' and '.join(problems)}. Describe only what you feel and notice, in everyday "
                "words, using only the listed facts."
            )
            messages[0] = {"role": "system", "content": self.system_prompt(facts, strict)}
            text = (await self.chat(messages)).strip()
            terms, grounding = self.check(text, facts)
            if grounding.unsupported:
                kept = [s for s in sentences(text) if s not in grounding.unsupported]
                text = " ".join(kept) or SAFE_REPLY
                self.removals += 1
                result.removed = True
                terms = self.leak_terms_in(text)
            if terms:
                text = redact(text, terms)
                self.redactions += 1
                result.redacted = True
            result.text = text
        self.replies += 1
        result.revealed_fact_ids = [f.id for f in self.revealed_in(result.text, facts)]
        self.revealed += [i for i in result.revealed_fact_ids if i not in self.revealed]
        self.history += [{"role": "user", "content": doctor_text}, {"role": "assistant", "content": result.text}]
        return result

    def revealed_in(self, text: str, offered: list[Fact]) -> list[Fact]:
        """Offered facts the reply conveys (by entailment, so paraphrases count)."""
        return entailed([text], offered)

    # --- leak guard -----------------------------------------------------------------------

    def _own_text(self) -> str:
        return " ".join([self.case.presenting_complaint, self.case.demographics, *(f.text for f in self.case.history)])

    def leak_terms(self) -> list[str]:
        """Diagnosis names and giveaways, and distinctive phrases of tests not yet ordered.

        Words the patient's own record uses (a symptom that shares a word with the diagnosis)
        are allowed.
        """
        if self._leak_terms is None:
            own = self._own_text()
            self._leak_terms = [t for t in giveaways(self.case.diagnosis) if not phrase_in(t, own)]
        terms = list(self._leak_terms)
        own_tokens = set(tokens(self._own_text()))
        for name, value in self.case.tests.items():
            if name in self.ordered_tests:
                continue
            terms += _NUMBER_WITH_UNIT.findall(value)
            if len(value.strip(" .")) >= 12 and value.strip(" .").lower() not in _GENERIC_VALUES:
                terms.append(value.strip(" ."))
            terms += _value_phrases(value, own_tokens)
        return [t for t in dict.fromkeys(terms) if t.strip()]

    def leak_terms_in(self, text: str) -> list[str]:
        """The leak terms the text says, and each sentence that reports a result of a test not yet ordered."""
        said = [t for t in self.leak_terms() if _said(text, t)]
        return said + [s for s in sentences(text) if s not in said and self._reports_unordered_result(s)]

    def _reports_unordered_result(self, sentence: str) -> bool:
        """A sentence that reports a test's result ("My white count was 63,000", "The scan showed a cyst") for a
        test the doctor has not ordered, unless the patient's own history says it (a previous test)."""
        asked = match_concepts(sentence, ("test",)).concept_ids
        if not (asked or _TEST_WORDS.search(sentence)) or not _RESULT_WORDS.search(sentence):
            return False
        ordered = {c for name in self.ordered_tests for c in match_concepts(name, ("test",)).concept_ids}
        if asked and asked <= ordered:
            return False
        words = {stem(t) for t in tokens(sentence) if len(t) > 2}
        return not any(len(words & fact) >= max(2, len(words) // 2) for fact in self._history_stems)

    @functools.cached_property
    def _history_stems(self) -> list[set[str]]:
        """Each history fact's word stems (the case does not change during a consultation)."""
        return [{stem(t) for t in tokens(f.text)} for f in self.case.history]

    # --- deterministic lookups ------------------------------------------------------------

    def examine(self, system: str) -> str:
        found = lookup(self.case.exam, system, "exam")
        self.examined.append(system)
        if not found:
            return f"Examination of {system}: {NOT_RECORDED}."
        return "\n".join(f"{k}: {v}" for k, v in found.items())

    def order_test(self, name: str) -> str:
        found = lookup(self.case.tests, name, "test")
        self.ordered_tests += [k for k in found if k not in self.ordered_tests]
        if not found:
            return f"{name}: {NOT_RECORDED}."
        return "\n".join(f"{k}: {v}" for k, v in found.items())


def _said(text: str, term: str) -> bool:
    """Whether ``text`` says ``term``: short all-capital abbreviations case-sensitively, else by normalised phrase; a
    term of two or more words also in other word forms and with auxiliaries between its words ("my uterus has
    ruptured" says "uterus ruptured", "his liver is shutting down" says "liver shutting down")."""
    if term.isupper() and len(term) <= 5:
        return mentions(text, term)
    return phrase_in(term, text) or _said_loosely([stem(t) for t in tokens(term)], [stem(t) for t in tokens(text)])


_AUXILIARIES = frozenset("is are was were has have had been be being got gotten just all really".split())


def _said_loosely(needle: list[str], hay: list[str]) -> bool:
    """The stemmed words of a term of two or more words in order, with at most two auxiliaries between consecutive ones."""
    if len(needle) < 2:  # one word stems too loosely ("scared" -> "scar")
        return False
    for start in (i for i, word in enumerate(hay) if word == needle[0]):
        at = start
        for word in needle[1:]:
            gap = 0
            at += 1
            while at < len(hay) and hay[at] != word and hay[at] in _AUXILIARIES and gap < 2:
                at, gap = at + 1, gap + 1
            if at >= len(hay) or hay[at] != word:
                break
        else:
            return True
    return False


def _value_phrases(value: str, own: set[str]) -> list[str]:
    """Three-word runs of a test value's content words ("multiple noncaseating granulomas"), unless the patient's record uses them."""
    if value.strip(" .").lower() in _GENERIC_VALUES:
        return []
    words = [w for w in normalize(value).split() if w not in _VALUE_STOP and not w.isdigit()]
    out = []
    for i in range(len(words) - 2):
        run = words[i : i + 3]
        if len(set(run) - own) >= 2 and all(len(w) > 2 for w in run):
            out.append(" ".join(run))
    return out


def redact(text: str, terms: list[str]) -> str:
    """Replace each term by REDACTED: literally where it occurs so, else by its normalised words."""
    for term in sorted(terms, key=len, reverse=True):
        literal = scrub(text, [term], REDACTED)
        if literal != text or (term.isupper() and len(term) <= 5):
            text = literal
            continue
        words = normalize(term).split()
        if not words:
            continue
        pattern = r"(?<![\w-])" + r"[^\w]+(?:(?:the|a|an|his|her|my|your|their|of)[^\w]+)*".join(map(re.escape, words))
        text = re.sub(pattern + r"(?:'s|\u2019s)?(?![\w-])", REDACTED, text, flags=re.IGNORECASE)
    return text
