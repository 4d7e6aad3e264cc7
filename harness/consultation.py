"""Interactive consultation: the episode runner and its scoring (plain Python, no Inspect).

Public API, shared by the Inspect task and the verl reward:

    episode = await run_consultation(case, doctor, patient, max_turns=20, mode="conversation", answer="free_text")
        case: harness.cases.Case; patient: harness.patient.PatientSimulator;
        doctor: any object with ``async act(observation: str, final_only: bool = False, fresh: bool = False) -> Action``
        (``ChatDoctor(chat)`` wraps a plain ``async (messages) -> str`` chat callable).
    result = await score_consultation(case, transcript, assessment, engine, rubric, tokens=...)
        transcript: Episode (or its ``events`` list); assessment: Assessment | None;
        engine: harness.grading.RubricGrader; rubric: list[RubricItem]
        (harness.rubric_generator.case_rubric). Returns ConsultationResult: score, diagnosis_correct
        and the checks behind it, critical_fact_recall, leak / hallucination / false-denial rates,
        turns, tokens, verdicts, metrics (for harness.rubric.summarize).

Modes (CRAFT-MD's three formats): ``vignette`` (the whole case at once), ``conversation`` (the
doctor asks, examines and orders tests: ask / examine / order_test / final_assessment),
``summary`` (the conversation, then a summary of it is given to the doctor afresh, who answers
from the summary alone). Answer types: ``free_text`` (the final assessment names a diagnosis)
or ``multiple_choice`` (the case's options are shown at the end and the doctor picks one). With
free text, a case that has options is also asked the multiple-choice question after the
conversation, as a cross-check (CRAFT-MD's design). The episode ends on final_assessment or at
the turn cap (one turn = one doctor action); at the cap the doctor is asked once more for a final
assessment (``timed_out`` stays True).

Diagnosis verdict (``diagnosis_verdict``): a non-answer ("pending", "unsure", none) is wrong by
rule, before any judge; a multiple-choice answer is checked against the answer letter; a free
text answer that names the case's diagnosis or a curated alias is correct; otherwise a dedicated
judge call on the final assessment only decides. The judge is asked in every decided case too,
so judge-check agreement is reported; a grader that marks every rubric criterion met, penalties
included, is flagged (``grader_all_met``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from harness.answers import extract_choice
from harness.cases import DIAGNOSIS_QUESTION, Case, Fact
from harness.errors import ArgumentError
from harness.grading import RubricGrader, parse_json_object
from harness.grounding import entailed
from harness.patient import PatientSimulator
from harness.rubric import RubricItem, Verdict, example_metrics
from harness.rubric_generator import DIAGNOSIS_TAG, diagnosis_item
from harness.terms import (
    abbreviated_words,
    abbreviation_owners,
    diagnosis_aliases,
    match_concepts,
    normalize,
    phrase_in,
    tokens,
)

logger = logging.getLogger(__name__)
ELICITED_TAG = "critical_fact"  # the tag of the criteria behind critical_fact_recall

TOOLS = ("ask", "examine", "order_test", "final_assessment")
ARGUMENT = {"ask": "question", "examine": "system", "order_test": "name"}  # tool -> its one argument
MODES = ("conversation", "vignette", "summary")
ANSWERS = ("free_text", "multiple_choice")
Mode = str  # one of MODES, checked where a run starts

DOCTOR_INSTRUCTIONS = """You are a physician seeing a patient. Take a focused history by asking questions
one at a time, examine the patient and order tests when useful, then give your final assessment.
Tools: ask(question) talks to the patient; examine(system) returns examination findings;
order_test(name) returns a test result; final_assessment(diagnosis, differential, plan) ends the visit."""
VIGNETTE_INSTRUCTIONS = """You are a physician. Read the case below and give your final assessment
with final_assessment(diagnosis, differential, plan)."""
FINAL_NOW = "The consultation time is over. Give your final assessment now with final_assessment."
MCQ_NOW = (
    "Which of the following is the answer to the case question? Reply with final_assessment, "
    "putting the letter and text of your choice as the diagnosis."
)
SUMMARY_PROMPT = """Summarise this doctor-patient consultation as a short clinical vignette: everything the
patient said, every examination finding and every test result that came up, and nothing else.
Do not add a diagnosis or any fact that is not in the consultation.

{transcript}"""


@dataclass
class Assessment:
    diagnosis: str
    differential: list[str] = field(default_factory=list)
    plan: str = ""

    def text(self) -> str:
        return f"Final diagnosis: {self.diagnosis}\nDifferential: {', '.join(self.differential) or '-'}\nPlan: {self.plan or '-'}"


@dataclass
class Action:
    tool: str  # one of TOOLS, or "invalid" (the doctor's call could not be used)
    text: str = ""  # question / system / test name / error
    assessment: Assessment | None = None

    @classmethod
    def from_call(cls, name: str, arguments: dict[str, Any]) -> Action:
        """An action from a tool call; a bad call gives an ``invalid`` action naming the problem."""
        if name not in TOOLS:
            return cls("invalid", f"unknown tool {name!r}; use one of {', '.join(TOOLS)}")
        if name == "final_assessment":
            diagnosis = arguments.get("diagnosis")
            if not isinstance(diagnosis, str) or not diagnosis.strip():
                return cls("invalid", "final_assessment needs a non-empty 'diagnosis'")
            differential = arguments.get("differential") or []
            if isinstance(differential, str):
                differential = [d.strip() for d in re.split(r"[;,\n]", differential) if d.strip()]
            plan = arguments.get("plan") or ""
            return cls(name, diagnosis.strip(), Assessment(diagnosis.strip(), [str(d) for d in differential], str(plan)))
        key = ARGUMENT[name]
        value = arguments.get(key)
        if not isinstance(value, str) or not value.strip():
            return cls("invalid", f"{name} needs a non-empty '{key}'")
        return cls(name, value.strip())


class Doctor(Protocol):
    async def act(self, observation: str, final_only: bool = False, fresh: bool = False) -> Action: ...


Summarizer = Callable[[list[dict[str, str]]], Awaitable[str]]  # chat callable that writes the summary


@dataclass
class Episode:
    case_id: str
    mode: str
    events: list[dict[str, Any]]
    assessment: Assessment | None
    turns_used: int
    timed_out: bool
    tests_ordered: list[str]
    exams: list[str]
    revealed_fact_ids: list[str]
    patient_replies: int
    leaks: int
    regenerations: int
    redactions: int
    persona: str = "neutral"
    tokens: dict[str, int] = field(default_factory=dict)  # role -> tokens, where the adapters report them
    answer: str = "free_text"
    hallucinations: int = 0
    false_denials: int = 0
    mcq_answer: str | None = None  # the multiple-choice cross-check's reply (free text, case with options)
    summary: str | None = None  # summary mode: the summary the final answer was given from

    @property
    def leak_rate(self) -> float | None:
        """Share of patient replies whose first draft leaked; None when the patient never spoke."""
        return self.leaks / self.patient_replies if self.patient_replies else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "leak_rate": self.leak_rate}


def check_max_turns(max_turns: object) -> None:
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 0:
        raise ArgumentError("max_turns", max_turns, "a whole number >= 0 (e.g. 20)")


def check_mode(mode: str, answer: str = "free_text") -> None:
    if mode not in MODES:
        raise ArgumentError("mode", mode, MODES)
    if answer not in ANSWERS:
        raise ArgumentError("answer", answer, ANSWERS)


def options_text(case: Case) -> str:
    return "\n".join(f"{k}. {v}" for k, v in (case.options or {}).items())


def opening(case: Case, mode: Mode, answer: str = "free_text") -> str:
    """What the doctor sees first. Options are shown up front only in vignette mode with multiple-choice answers."""
    if mode == "vignette":
        text = case.vignette()
    else:
        text = f"Your patient: {case.demographics}. Presenting complaint: {case.presenting_complaint}"
    if case.question and case.question != DIAGNOSIS_QUESTION:
        text += f"\nQuestion to answer in your final assessment: {case.question}"
    if mode == "vignette" and answer == "multiple_choice" and case.options:
        text += "\nOptions:\n" + options_text(case)
    return text


def mcq_prompt(case: Case) -> str:
    return f"{case.question or DIAGNOSIS_QUESTION}\n{options_text(case)}\n\n{MCQ_NOW}"


async def run_consultation(
    case: Case,
    doctor: Doctor,
    patient: PatientSimulator,
    max_turns: int = 20,
    mode: Mode = "conversation",
    force_final: bool = True,
    tokens: dict[str, int] | None = None,
    answer: str = "free_text",
    summarizer: Summarizer | None = None,
    mcq_check: bool = True,
) -> Episode:
    """Run one consultation to a final assessment or the turn cap (see module docstring)."""
    check_max_turns(max_turns)
    check_mode(mode, answer)
    if answer == "multiple_choice" and not case.options:
        raise ArgumentError("answer", answer, f"free_text (case {case.case_id} has no options)")
    if mode == "summary" and summarizer is None:
        raise ArgumentError("mode", mode, "conversation or vignette (summary mode needs a summarizer model)")
    observation = opening(case, mode, answer)
    events: list[dict[str, Any]] = [{"role": "case", "content": observation}]
    assessment: Assessment | None = None
    turns = 0
    limit = 0 if mode == "vignette" else max_turns
    multiple_choice = answer == "multiple_choice" and mode != "vignette"
    while turns < limit and assessment is None:
        action = await doctor.act(observation)
        turns += 1
        observation = await _perform(action, patient, events, turns)
        assessment = action.assessment
    timed_out = assessment is None and mode != "vignette"
    if timed_out:
        events.append({"role": "system", "content": f"turn cap reached ({max_turns} turns)"})
    summary = None
    if mode == "summary" and summarizer is not None:
        prompt = SUMMARY_PROMPT.format(transcript=transcript_text(events))
        summary = (await summarizer([{"role": "user", "content": prompt}])).strip()
        events.append({"role": "summary", "content": summary})
        ask = f"Summary of the consultation with your patient ({case.demographics}):\n{summary}"
        ask += f"\n\n{mcq_prompt(case)}" if multiple_choice else f"\n\n{FINAL_NOW}"
        action = await doctor.act(ask, final_only=True, fresh=True)
        events.append(_doctor_event(action, turns + 1, forced=True, from_summary=True))
        assessment = action.assessment
    elif multiple_choice:
        action = await doctor.act((observation + "\n\n" if observation else "") + mcq_prompt(case), final_only=True)
        events.append(_doctor_event(action, turns + 1, forced=True, multiple_choice=True))
        assessment = action.assessment
    elif assessment is None and (force_final or mode == "vignette"):
        action = await doctor.act(observation + ("\n\n" + FINAL_NOW if timed_out else ""), final_only=True)
        events.append(_doctor_event(action, turns + 1, forced=True))
        assessment = action.assessment
    mcq_answer = None
    if mcq_check and answer == "free_text" and case.options and assessment is not None and mode != "summary":
        action = await doctor.act(mcq_prompt(case), final_only=True)
        mcq_answer = action.assessment.diagnosis if action.assessment else action.text
        events.append({"role": "mcq_check", "content": mcq_answer})
    return Episode(
        case_id=case.case_id,
        mode=mode,
        events=events,
        assessment=assessment,
        turns_used=turns,
        timed_out=timed_out,
        tests_ordered=list(patient.ordered_tests),
        exams=list(patient.examined),
        revealed_fact_ids=list(patient.revealed),
        patient_replies=patient.replies,
        leaks=patient.leaks,
        regenerations=patient.regenerations,
        redactions=patient.redactions,
        persona=patient.persona,
        tokens=dict(tokens or {}),
        answer=answer,
        hallucinations=patient.hallucinations,
        false_denials=patient.false_denials,
        mcq_answer=mcq_answer,
        summary=summary,
    )


def _doctor_event(action: Action, turn: int, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"turn": turn, "role": "doctor", "tool": action.tool, "content": action.text, **extra}
    if action.assessment:
        event["assessment"] = asdict(action.assessment)
    return event


async def _perform(action: Action, patient: PatientSimulator, events: list[dict[str, Any]], turn: int) -> str:
    events.append(_doctor_event(action, turn))
    if action.tool == "ask":
        reply = await patient.reply(action.text)
        events.append(
            {
                "turn": turn,
                "role": "patient",
                "content": reply.text,
                "leaked": reply.leaked,
                "leak_terms": reply.leak_terms,
                "regenerated": reply.regenerated,
                "redacted": reply.redacted,
                "hallucinated": reply.hallucinated,
                "false_denial": reply.false_denial,
                "unsupported": reply.unsupported,
                "revealed_fact_ids": reply.revealed_fact_ids,
            }
        )
        return reply.text
    if action.tool == "examine":
        result = patient.examine(action.text)
    elif action.tool == "order_test":
        result = patient.order_test(action.text)
    elif action.tool == "final_assessment":
        return ""
    else:
        result = f"Error: {action.text}"
    events.append({"turn": turn, "role": action.tool if action.tool != "invalid" else "error", "content": result})
    return result


def transcript_text(events: Sequence[dict[str, Any]]) -> str:
    """The consultation as lines ("Doctor (ask): ...", "Patient: ...", findings and results)."""
    lines = []
    labels = {"patient": "Patient", "examine": "Exam findings", "order_test": "Test result", "error": "Error"}
    for e in events:
        if e["role"] == "doctor" and e.get("tool") != "final_assessment":
            lines.append(f"Doctor ({e.get('tool')}): {e['content']}")
        elif e["role"] in labels:
            lines.append(f"{labels[e['role']]}: {e['content']}")
    return "\n".join(lines)


# --- a doctor driven by a plain chat callable (verl, OpenAIChat) ------------------------------

TEXT_PROTOCOL = """Reply with exactly one JSON object per turn, one of:
{"tool": "ask", "arguments": {"question": "..."}}
{"tool": "examine", "arguments": {"system": "..."}}
{"tool": "order_test", "arguments": {"name": "..."}}
{"tool": "final_assessment", "arguments": {"diagnosis": "...", "differential": ["..."], "plan": "..."}}"""


def parse_action(text: str) -> Action:
    """An action from a text reply: a JSON tool call, else the text is a question to the patient."""
    obj = parse_json_object(text)
    if obj is not None and isinstance(obj.get("tool"), str):
        arguments = obj.get("arguments")
        return Action.from_call(obj["tool"], arguments if isinstance(arguments, dict) else {})
    text = text.strip()
    return Action("ask", text) if text else Action("invalid", "empty reply")


class ChatDoctor:
    """A doctor from ``async chat(messages) -> str`` using the JSON text protocol above."""

    def __init__(self, chat: Callable[[list[dict[str, str]]], Awaitable[str]], mode: Mode = "conversation"):
        self.chat = chat
        intro = VIGNETTE_INSTRUCTIONS if mode == "vignette" else DOCTOR_INSTRUCTIONS
        self.messages: list[dict[str, str]] = [{"role": "system", "content": f"{intro}\n\n{TEXT_PROTOCOL}"}]

    async def act(self, observation: str, final_only: bool = False, fresh: bool = False) -> Action:
        note = "\n\n(Only final_assessment is allowed now.)" if final_only else ""
        if fresh:  # summary mode: the doctor answers from the summary alone, in a new context
            self.messages = [{"role": "system", "content": f"{VIGNETTE_INSTRUCTIONS}\n\n{TEXT_PROTOCOL}"}]
        self.messages.append({"role": "user", "content": observation + note})
        reply = await self.chat(self.messages)
        self.messages.append({"role": "assistant", "content": reply})
        action = parse_action(reply)
        if final_only and action.tool != "final_assessment":
            return Action("invalid", "no final assessment given")
        return action


# --- the diagnosis verdict ----------------------------------------------------------------------

NON_ANSWER = re.compile(
    r"^\W*(?:none|n/?a|na|unknown|unclear|unsure|undetermined|uncertain|pending|tbd|to be determined|not sure|"
    r"no diagnosis|i don'?t know|do not know|cannot (?:say|determine|tell)|can'?t (?:say|determine|tell)|not determined|"
    r"\?+|-+)\W*$"
    r"|\b(?:pending|undetermined|to be determined|not yet (?:determined|known|established|clear)|cannot be determined|"
    r"can(?:no|')t be (?:determined|established|made)|unable to (?:determine|establish|make|give|reach)|"
    r"await(?:ing|s)? (?:\w+\s+){0,3}(?:results?|workup|work-up|tests?|investigations?|biopsy|cultures?)|"
    r"(?:needs?|requires?|need) (?:\w+\s+){0,4}to (?:make|establish|determine|confirm) (?:a|the) diagnosis|"
    r"further (?:work-?up|investigations?|testing|tests|evaluation|imaging|scans?|bloods|labs|studies) (?:is |are )?(?:needed|required)|"
    r"(?:cause|etiology|type|diagnosis)\s+(?:is\s+)?(?:unknown|undetermined|unclear|uncertain|to be determined)|"
    r"no (?:definitive|clear|final|specific) diagnosis|diagnosis (?:is )?(?:uncertain|unclear|unknown)|"
    r"not sure|i am not sure|i'?m not sure|unsure|unknown|cannot determine|can'?t determine|unable to say|"
    r"to be confirmed|to be decided|deferred|not decided|undecided|differential only|no (?:final )?diagnosis yet|"
    r"no final diagnosis)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:not|no|ruled out|rule out|excluded?|unlikely|without|vs\.?|versus|rather than|pseudo|non)\s+$", re.IGNORECASE
)  # "pseudo" / "non": "Pseudo-Meigs syndrome" is another condition (hyphens are spaces after normalize)


_HEDGE_OPENING = re.compile(
    r"^\W*(?:unclear|uncertain|unknown|undetermined|indeterminate|inconclusive|unsure|not (?:yet )?(?:clear|known|certain|"
    r"sure|determined))(?:\s+(?:yet|for now|so far|as yet|at present|at (?:this|the) (?:point|time|stage|moment)))?"
    r"\s*(?:[,;:.\-\u2013\u2014]+\s*|$)",
    re.IGNORECASE,
)
_WORKUP = re.compile(
    r"\b(?:needed|required|pending|awaited|awaiting|await|needs?|requires?|to follow|to come|to be done|ordered|planned|"
    r"refer|referral|referring|"
    r"will (?:tell|show|decide))\b",
    re.IGNORECASE,
)
_DEFERRAL = re.compile(  # counts only when no candidate is named ("Probably X, biopsy needed before I can say" names one)
    r"\b(?:before (?:i|we) (?:can |could )?(?:say|tell|commit|decide|be sure|give)|before committing|"
    r"too (?:early|soon) to (?:say|tell)|can(?:no|')t (?:say|tell) (?:yet|for now|until|without|at this (?:point|stage))|"
    r"(?:needs?|requires?|want|would like|'d like) (?:[\w'-]+\s+){0,8}(?:before|back first)|"
    r"before (?:saying|deciding|committing|naming)|can(?:no|')t (?:say|tell) (?:which|what)|(?:hard|difficult|impossible) to (?:say|tell)|"
    r"(?:can(?:no|')?t|unable to|won'?t|not (?:able|ready) to) commit|"
    r"(?:needs?|requires?) (?:[\w'-]+\s+){0,4}to (?:say|tell) (?:which|what (?:kind|type)))\b",
    re.IGNORECASE,
)
_CANDIDATE = re.compile(
    r"\b(?:possibl[ey]|likely|probabl[ey]|suspect(?:ed)?|consider|favou?r|query|maybe|perhaps|could be|suggests?|"
    r"consistent with|vs\.?|versus|or)\b|\?",
    re.IGNORECASE,
)


# words that frame a diagnosis without naming one: an answer made only of these is a placeholder
# (no single letters: "A" is an option letter)
_FRAME_WORDS = frozenset(
    "diagnosis diagnoses final answer the an is of my our most likely probable working primary main assessment".split()
)


_MORE_NEEDED = re.compile(
    r"\b(?:(?:need|needs|needed|require|requires|required|want|wants)\s+(?:much\s+|a\s+lot\s+|some\s+|a\s+bit\s+)?more|"
    r"more)\s+(?:information|info|details|data|history|tests?|testing|investigations?|results|time|work-?up)"
    r"(?:\s+(?:is|are)\s+(?:needed|required))?",
    re.IGNORECASE,
)
# what may surround a request for more information in an answer that names nothing ("I need more information first")
_FILLER_WORDS = frozenset(
    "i we would will still really do first please before to can could be sure say tell decide confirm make a the "
    "diagnosis it this that yet now".split()
)


_UNEXPLAINED = re.compile(
    r"^(?P<finding>.*?)\s+of\s+(?:uncertain|unknown|unclear|undetermined|indeterminate)\s+(?:cause|origin|a?etiology)\W*$",
    re.IGNORECASE,
)


_WORKUP_VERB = re.compile(r"\s*(?:needs?|requires?|wants?|would|will|should)\b", re.IGNORECASE)


def _names_a_candidate(text: str) -> bool:
    """A hedge word that introduces a condition ("probably MG"), not one that qualifies the work-up ("probably needs an MRI")."""
    return any(not _WORKUP_VERB.match(text, m.end()) for m in _CANDIDATE.finditer(text))


def is_non_answer(text: str | None) -> bool:
    """A final diagnosis that names nothing: empty, "pending", "unsure", "needs more tests", "unknown" ...,
    a placeholder made only of framing words ("diagnosis_diagnosis_", "Final diagnosis: diagnosis"),
    a hedge followed only by the work-up it waits for ("Uncertain for now, CT required"), only a request for more
    information ("I need more information first"), or a finding of unknown cause ("A rash of uncertain cause")."""
    if not text or not text.strip():
        return True
    text = text.strip()
    if all(word in _FRAME_WORDS for word in re.findall(r"[a-z]+", text.lower())):
        return True
    if NON_ANSWER.search(text):
        return True
    unexplained = _UNEXPLAINED.match(text)  # "An itchy rash of uncertain cause" names a finding, not a condition
    if unexplained and match_concepts(unexplained["finding"], ("finding",)).concept_ids:
        return True
    more = _MORE_NEEDED.search(text)
    if more and set(re.findall(r"[a-z]+", (text[: more.start()] + " " + text[more.end() :]).lower())) <= _FILLER_WORDS:
        return True
    if _DEFERRAL.search(text) and not _names_a_candidate(text):
        return True
    hedge = _HEDGE_OPENING.match(text)
    if not hedge:
        return False
    rest = text[hedge.end() :].strip(" .!")
    return not rest or (_WORKUP.search(rest) is not None and not _CANDIDATE.search(rest) and len(rest.split()) <= 5)


def chosen_option(case: Case, text: str) -> str | None:
    """The option letter a reply picks (an answer that is a letter, "B. <option>", or an option's text), else None."""
    if not case.options:
        return None
    choice = extract_choice(text, case.options)
    if choice.status == "ok" and choice.letter:
        return choice.letter
    said = normalize(text)
    exact = [k for k, v in case.options.items() if normalize(v) == said]
    return exact[0] if len(exact) == 1 else None


_COURSE = frozenset(("acute", "subacute", "chronic"))
_QUALIFIERS = _COURSE | frozenset("active infection disease disorder syndrome condition".split())  # course and kind words
_NEGATING = frozenset(("not", "no", "non", "pseudo", "without"))  # words that make a shortened name another claim


def alias_match(case: Case, text: str) -> bool:
    """Whether the answer names the case's diagnosis or a curated alias (not negated, not inside another option's name,
    not with a course the diagnosis contradicts: "Acute hepatitis B" is not chronic hepatitis B), also when it abbreviates
    a word of the name ("Borderline PD"), gives the initials of a name of three or more words ("AIN"), or says the name's
    words in another order ("Atresia of the jejunum" for "Jejunal atresia")."""
    return any(_names_diagnosis(case, said) for said in _spelled_out(text))


def _spelled_out(text: str) -> list[str]:
    """The answer, without its parenthesised asides, and with each abbreviated word of a diagnosis name spelled out
    (every spelling)."""
    variants = list(dict.fromkeys([text, " ".join(re.sub(r"\([^)]*\)", " ", text).split())]))
    for abbreviation, spellings in abbreviated_words().items():
        pattern = re.compile(r"(?<![\w-])" + re.escape(abbreviation) + r"(?![\w-])")
        if pattern.search(text):
            variants += [pattern.sub(spelling, variant) for variant in variants for spelling in spellings]
    return variants[:16]


_INITIALS_SKIPPED = frozenset("of the and a an in on with to due for s".split())
_ROOT_SKIPPED = frozenset("of the a an".split())
_ADJECTIVE_ENDINGS = ("ial", "eal", "al", "ic", "ar", "um", "us", "a", "y")


@functools.cache
def _initials(alias: str) -> str:
    """The capital initials of a name of three or more words ("Acute interstitial nephritis" -> "AIN"), else ""."""
    words = [w for w in normalize(alias).split() if w not in _INITIALS_SKIPPED]
    return "".join(w[0] for w in words).upper() if len(words) >= 3 and all(w[0].isalpha() for w in words) else ""


def _root(word: str) -> str:
    """A word without an adjective or noun ending ("duodenal", "duodenum" -> "duoden"), keeping at least five letters."""
    for ending in _ADJECTIVE_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 5:
            return word[: -len(ending)]
    return word


@functools.cache
def _roots(text: str) -> tuple[str, ...]:
    return tuple(sorted(_root(w) for w in normalize(text).split() if w not in _ROOT_SKIPPED))


def _names_diagnosis(case: Case, text: str) -> bool:
    name, said = set(tokens(case.diagnosis)), set(tokens(text))
    if name & _COURSE and (said & _COURSE) - name:
        return False
    owners, diagnosis = abbreviation_owners(), normalize(case.diagnosis)
    for alias in diagnosis_aliases(case.diagnosis):
        initials = _initials(alias)  # not when a curated abbreviation of another diagnosis ("AF" is not atrial flutter)
        if initials and diagnosis in owners.get(initials, {diagnosis}):
            starts = [m.start() for m in re.finditer(r"(?<![\w-])" + initials + r"(?![\w-])", text)]
            if any(not _NEGATED.search(text[:at]) for at in starts):
                return True
        if len(normalize(alias).split()) >= 2 and _roots(alias) == _roots(text) and not said & _NEGATING:
            return True
        if alias.isupper() and len(alias) <= 5:  # abbreviations: case-sensitive, on the raw text
            haystack, pattern = text, r"(?<![\w-])" + re.escape(alias) + r"(?![\w-])"
        else:
            words = normalize(alias).split()
            if not words:
                continue
            haystack = normalize(text)
            pattern = r"(?<!\w)" + r"\s+(?:(?:the|a|an|of|his|her|my|your|their)\s+)*".join(map(re.escape, words)) + r"(?!\w)"
        starts = [m.start() for m in re.finditer(pattern, haystack)]
        if any(not _NEGATED.search(haystack[:at]) for at in starts) and not _longer_other_name(case, text, alias):
            return True
    return _shortened_name(name, said)


def _shortened_name(name: set[str], said: set[str]) -> bool:
    """The diagnosis name (its tokens) said with words left out and nothing added: one word of a long name ("Rupture
    of the FDP tendon at its insertion" for "... at its point of insertion": at least five words, all but one said),
    or only course and kind words ("Hepatitis B" for "Active chronic hepatitis B infection"; never "Acute X" for
    "Chronic X", which adds a word)."""
    if not said <= name or said & _NEGATING or not said - _QUALIFIERS:
        return False
    left_out = name - said
    return (len(name) >= 5 and len(left_out) <= 1) or left_out <= _QUALIFIERS


def _longer_other_name(case: Case, text: str, alias: str) -> bool:
    """True when the alias only occurs inside a different option's name ("pityriasis rosea" vs "pityriasis")."""
    for other in case.differentials:
        if phrase_in(other, text) and phrase_in(alias, other) and not phrase_in(other, case.diagnosis):
            return True
    return False


@dataclass
class DiagnosisVerdict:
    correct: bool | None  # None: the judge could not be graded
    decided_by: str  # rule:non_answer | option | alias | judge
    non_answer: bool = False
    alias: bool = False
    option: str | None = None  # the letter a multiple-choice answer picked
    judge: bool | None = None  # the dedicated judge's verdict (None when not asked or failed)
    judge_explanation: str = ""
    mcq_letter: str | None = None  # the multiple-choice cross-check (free text answers)
    mcq_correct: bool | None = None
    grader_calls: int = 0  # the judge's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_frame(case: Case) -> list[dict[str, str]]:
    return [
        {
            "role": "user",
            "content": f"A doctor saw a patient ({case.demographics}) presenting with: {case.presenting_complaint}\n"
            f"Case question: {case.question or DIAGNOSIS_QUESTION}\nGive your final assessment.",
        }
    ]


async def diagnosis_verdict(
    case: Case, assessment: Assessment | None, engine: RubricGrader, answer: str = "free_text", mcq_answer: str | None = None
) -> DiagnosisVerdict:
    """The verdict on the final diagnosis (see module docstring); the judge sees the final assessment only."""
    text = assessment.diagnosis if assessment else ""
    mcq_letter = chosen_option(case, mcq_answer) if mcq_answer else None
    mcq_correct = (mcq_letter == case.answer_idx) if mcq_answer and case.answer_idx else None
    if is_non_answer(text):
        return DiagnosisVerdict(False, "rule:non_answer", non_answer=True, mcq_letter=mcq_letter, mcq_correct=mcq_correct)
    option = chosen_option(case, text) if case.options else None
    verdict = DiagnosisVerdict(
        None, "judge", option=option, alias=alias_match(case, text), mcq_letter=mcq_letter, mcq_correct=mcq_correct
    )
    grade = await engine.grade(judge_frame(case), assessment.text() if assessment else "", [diagnosis_item(case)])
    judged = grade.verdicts[0]
    verdict.judge, verdict.judge_explanation = judged.met, judged.explanation or (judged.error or "")
    verdict.grader_calls = grade.grader_calls
    if answer == "multiple_choice" and case.answer_idx:
        verdict.correct, verdict.decided_by = option == case.answer_idx, "option"
    elif verdict.alias:
        verdict.correct, verdict.decided_by = True, "alias"
    elif option is not None and case.answer_idx and len(text.strip()) <= 3:
        verdict.correct, verdict.decided_by = option == case.answer_idx, "option"
    else:
        verdict.correct = verdict.judge
    return verdict


# --- scoring ----------------------------------------------------------------------------------


@dataclass
class ConsultationResult:
    score: float | None
    diagnosis_correct: bool | None
    critical_fact_recall: float | None
    turns_used: int
    timed_out: bool
    leak_rate: float | None
    tokens: dict[str, int]
    verdicts: list[Verdict]
    metrics: dict[str, float]
    errors: list[str] = field(default_factory=list)
    grader_calls: int = 0  # every grader call: the rubric, the diagnosis judge and the critical-fact check
    elicited_fact_ids: list[str] = field(default_factory=list)  # critical facts conveyed, by ``elicited_by``
    elicited_by: str = "grader"  # "grader", or "embedding" when the grader gave no verdict on a fact
    elicited_by_embedding: list[str] = field(default_factory=list)  # the calibrated embedding check's, beside it
    hallucination_rate: float | None = None
    false_denial_rate: float | None = None
    diagnosis: DiagnosisVerdict | None = None
    grader_all_met: bool = False  # the grader marked every criterion met, penalties included

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdicts"] = [v.to_dict() for v in self.verdicts]
        return out


def render_consultation(
    case: Case, events: Sequence[dict[str, Any]], assessment: Assessment | None
) -> tuple[list[dict[str, str]], str]:
    """(conversation, response) for the grading engine: the whole consultation is the 'reply'."""
    frame = (
        f"A simulated clinical consultation. Patient: {case.demographics}, presenting with: {case.presenting_complaint}. "
        "The assistant played the doctor: it could ask the patient questions, examine, order tests, and had to end "
        "with a final assessment. Its whole consultation record is the reply to be graded."
    )
    final = assessment.text() if assessment else "(no final assessment given)"
    return [{"role": "user", "content": frame}], "\n".join([transcript_text(events), "", "FINAL ASSESSMENT:", final])


def elicited_facts(case: Case, events: Sequence[dict[str, Any]]) -> list[str]:
    """Ids of the critical facts the patient's replies convey, by the calibrated embedding check (entailment, so
    paraphrases count)."""
    said = [e["content"] for e in events if e["role"] == "patient"]
    return [f.id for f in entailed(said, case.critical_facts)] if said else []


def elicited_item(fact: Fact) -> RubricItem:
    return RubricItem(f"The patient's words state or clearly convey, in any wording, that: {fact.text}", 1, (ELICITED_TAG,))


async def elicited_by_grader(
    case: Case, events: Sequence[dict[str, Any]], engine: RubricGrader, facts: Sequence[Fact] | None = None
) -> tuple[list[str] | None, int]:
    """(ids of the critical facts (or of ``facts``) the grader finds in the patient's replies, grader calls made):
    everything the patient said is the reply it grades, one criterion per fact; the ids are None when it gave no
    verdict on one of them."""
    facts = case.critical_facts if facts is None else facts
    said = [e["content"] for e in events if e["role"] == "patient"]
    if not said or not facts:
        return [], 0
    frame = [
        {
            "role": "user",
            "content": f"A doctor interviewed a patient ({case.demographics}). The reply is everything the patient said.",
        }
    ]
    grade = await engine.grade(frame, "\n".join(said), [elicited_item(f) for f in facts])
    if any(v.met is None for v in grade.verdicts):
        return None, grade.grader_calls
    return [f.id for f, v in zip(facts, grade.verdicts, strict=True) if v.met], grade.grader_calls


async def score_consultation(
    case: Case,
    transcript: Episode | Sequence[dict[str, Any]],
    assessment: Assessment | None,
    engine: RubricGrader,
    rubric: Sequence[RubricItem],
    tokens: dict[str, int] | None = None,
    answer: str | None = None,
    mcq_answer: str | None = None,
) -> ConsultationResult:
    """Grade one consultation with the rubric engine and compute the consultation metrics.

    The rubric's diagnosis item is not graded on the whole consultation: its verdict is
    ``diagnosis_verdict`` (rule, option, alias, or the dedicated judge on the final assessment).
    """
    episode = transcript if isinstance(transcript, Episode) else None
    events = episode.events if episode is not None else list(transcript)  # type: ignore[arg-type]
    if episode is not None:
        answer = answer or episode.answer
        mcq_answer = mcq_answer if mcq_answer is not None else episode.mcq_answer
        tokens = tokens if tokens is not None else episode.tokens
    answer = answer or "free_text"
    conversation, response = render_consultation(case, events, assessment)
    rest = [item for item in rubric if DIAGNOSIS_TAG not in item.tags]
    dx_item = next((item for item in rubric if DIAGNOSIS_TAG in item.tags), diagnosis_item(case))
    grade = await engine.grade(conversation, response, rest)
    dx = await diagnosis_verdict(case, assessment, engine, answer, mcq_answer)
    explanation = f"decided by {dx.decided_by}" + (f"; judge: {dx.judge_explanation}" if dx.judge_explanation else "")
    verdicts = [
        Verdict(dx_item, dx.correct, explanation, None if dx.correct is not None else "the diagnosis judge failed"),
        *grade.verdicts,
    ]
    metrics = example_metrics(verdicts)
    graded = [v for v in grade.verdicts if v.met is not None]
    all_met = bool(graded) and all(v.met for v in graded) and any(v.item.points < 0 for v in graded)
    if all_met:
        logger.warning("grader %s marked every criterion of %s met, penalties included", engine.grader_id, case.case_id)
    patient_events = [e for e in events if e["role"] == "patient"]
    critical = [f.id for f in case.critical_facts]
    by_embedding = elicited_facts(case, events)
    by_grader, elicited_calls = await elicited_by_grader(case, events, engine)
    elicited = by_grader if by_grader is not None else by_embedding
    recall = len(set(elicited) & set(critical)) / len(critical) if critical else None
    replies = len(patient_events)
    rate = lambda key: sum(bool(e.get(key)) for e in patient_events) / replies if replies else None  # noqa: E731
    leak_rate = rate("leaked")
    turns = sum(1 for e in events if e["role"] == "doctor" and not e.get("forced"))
    timed_out = episode.timed_out if episode else any(e["role"] == "system" and "turn cap" in e["content"] for e in events)
    if dx.correct is not None:
        metrics["diagnostic_accuracy"] = float(dx.correct)
    if dx.judge is not None and (dx.non_answer or dx.alias or dx.decided_by == "option"):
        metrics["judge_check_agreement"] = float(dx.judge == dx.correct)
    if dx.judge is not None and dx.mcq_correct is not None:
        metrics["judge_mcq_agreement"] = float(dx.judge == dx.mcq_correct)
    if dx.mcq_correct is not None:
        metrics["mcq_accuracy"] = float(dx.mcq_correct)
    if recall is not None:
        metrics["critical_fact_recall"] = recall
    if by_grader is not None and critical and patient_events:  # no agreement to claim on nothing said
        metrics["elicited_check_agreement"] = sum((i in by_grader) == (i in by_embedding) for i in critical) / len(critical)
    for name, value in (
        ("leak_rate", leak_rate),
        ("hallucination_rate", rate("hallucinated")),
        ("false_denial_rate", rate("false_denial")),
    ):
        if value is not None:
            metrics[name] = value
    metrics["timeout_rate"] = float(timed_out)
    metrics["grader_all_met"] = float(all_met)
    errors = [f"{v.item.criterion[:80]}: {v.error}" for v in verdicts if v.met is None]
    return ConsultationResult(
        score=metrics.get("overall_score") if not errors else None,
        diagnosis_correct=dx.correct,
        critical_fact_recall=recall,
        turns_used=turns,
        timed_out=timed_out,
        leak_rate=leak_rate,
        tokens=dict(tokens or {}),
        verdicts=verdicts,
        metrics=metrics,
        errors=errors,
        grader_calls=grade.grader_calls + dx.grader_calls + elicited_calls,
        elicited_fact_ids=elicited,
        elicited_by="grader" if by_grader is not None else "embedding",
        elicited_by_embedding=by_embedding,
        hallucination_rate=rate("hallucinated"),
        false_denial_rate=rate("false_denial"),
        diagnosis=dx,
        grader_all_met=all_met,
    )


async def score_record(
    case: Case, record: dict[str, Any], engine: RubricGrader, rubric: Sequence[RubricItem]
) -> ConsultationResult:
    """``score_consultation`` on an episode record (``Episode.to_dict()``, as logged by Inspect or passed to the verl reward)."""
    assessment = Assessment(**record["assessment"]) if record.get("assessment") else None
    return await score_consultation(
        case,
        record["events"],
        assessment,
        engine,
        rubric,
        tokens=record.get("tokens"),
        answer=record.get("answer"),
        mcq_answer=record.get("mcq_answer"),
    )


def tool_call_json(action: Action) -> str:
    """An action written in the text protocol (for logs and scripted doctors)."""
    if action.assessment:
        args: dict[str, Any] = asdict(action.assessment)
    else:
        args = {ARGUMENT.get(action.tool, "text"): action.text}
    return json.dumps({"tool": action.tool, "arguments": args})
