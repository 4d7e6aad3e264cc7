"""The one multiple-choice answer extractor: Inspect scorer, lm-eval filter and verl reward all call it.

``extract_choice(text, options)`` reads a letter from free text, in this order:
1. explicit answer statements ("Answer: C", "the answer is (C)", "\\boxed{C}", "I choose C",
   "not A but C"); when there are several, the last one wins (reasoning comes before the final answer);
2. a reply that is only letters ("C", "(c)", "A or C");
3. a reply opening with a letter ("C. <option text>", "B) ..."), unless the rest points at other options;
4. the text of options echoed in the reply and letters marked as options ("(C)", "option C"), if they agree.
Several different letters in the deciding step make the answer "ambiguous"; nothing found is
"no_answer". Both count as wrong and are reported separately. Text inside <think>...</think> is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Status = Literal["ok", "no_answer", "ambiguous"]
STATUSES = ("ok", "no_answer", "ambiguous")


@dataclass(frozen=True)
class ChoiceAnswer:
    letter: str | None
    status: Status
    method: str = ""  # which rule decided: statement, only_letter, mention, none

    def matches(self, correct_letter: str) -> bool:
        """True when a clear answer was found and it is ``correct_letter``."""
        return self.status == "ok" and self.letter == str(correct_letter).strip().upper()

    def to_dict(self) -> dict:
        return {"letter": self.letter, "status": self.status, "method": self.method}


def as_options(options: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    """Options as {letter: text}; a plain list is lettered A, B, C, ..."""
    if isinstance(options, Mapping):
        return {str(k).strip().upper(): str(v) for k, v in options.items()}
    return {chr(ord("A") + n): str(v) for n, v in enumerate(options)}


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_VERB = r"(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|=|:|-)"
_CUE = (
    r"(?i:(?:(?:final|correct|best|right|true)\s+)?answer(?:\s+choice)?\s*"
    + _VERB
    + r"|(?:correct|best|right|true|most\s+appropriate|most\s+likely)\s+(?:option|choice|response)\s*"
    + _VERB
    + r"|i(?:\s+would|'d)?\s+(?:choose|select|pick|go\s+with)"
    + r"|\\boxed\s*\{(?:\\text\s*\{)?)"
)
_ADVERB = r"(?i:(?:therefore|thus|clearly|probably|likely|most\s+likely|definitely|option|choice)\s+)*"


def _letter(letters: str) -> str:
    """An upper-case letter, or a lower-case one that cannot be a word ("a" only in parentheses or before punctuation)."""
    lower = letters.lower().replace("a", "")
    lower_part = f"|[{lower}](?![A-Za-z0-9'])" if lower else ""
    return rf"(?:[{letters}](?![A-Za-z0-9'])|a(?=\s*(?:$|[.,;:!?)\]}}]))|(?<=\()a{lower_part})"


@lru_cache(maxsize=32)
def _patterns(letters: str) -> tuple[re.Pattern, ...]:
    item = rf"[\(\[]?{_ADVERB}[\(\[]?{_letter(letters)}[\)\]]?"
    link = r"(?i:\s*(?:,|/|\bor\b|\band\b|\bbut\b|\bnot\b|\brather\s+than\b|\binstead\s+of\b|\brather\b)\s*)+"
    seq = rf"(?i:not\s+)?{item}(?:{link}{item})*"
    both = letters + letters.lower()
    only = re.compile(
        rf"^\s*(?:[\(\[](?P<x>[{both}])[\)\]]|(?P<y>[{both}])[.:)\]]|(?P<z>[{letters}])(?=\s+-\s))(?P<rest>.*)$", re.DOTALL
    )
    statement = re.compile(rf"(?:{_CUE})\s*{_ADVERB}(?P<seq>{seq})")
    not_but = re.compile(rf"(?P<seq>(?i:\bnot\s+){item}\s*,?\s*(?i:but)\s+(?i:rather\s+)?{item})")
    mention = re.compile(rf"(?:[\(\[](?P<p>[{both}])[\)\]]|(?i:\b(?:option|choice)\s+)(?P<o>[{letters}])(?![A-Za-z0-9]))")
    bare = re.compile(rf"^\s*(?P<seq>{seq})\s*[.!]?\s*$")
    return only, bare, statement, not_but, mention


def _letters_in(seq: str, letters: str) -> set[str]:
    """Letters a statement picks: each letter not preceded by a negation ("not A but C" picks C)."""
    picked: set[str] = set()
    tokens = re.findall(
        rf"\b(not|than|instead)\b|(?<![A-Za-z0-9])([{letters}{letters.lower()}])(?![A-Za-z0-9])", seq, re.IGNORECASE
    )
    negate = False
    for word, letter in tokens:
        if word:
            negate = True
        elif letter:
            if not negate:
                picked.add(letter.upper())
            negate = False
    return picked


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _clean(text: str) -> str:
    """Drop reasoning blocks (<think>...</think>) and markdown emphasis."""
    if re.search(r"</think>", text, re.IGNORECASE):
        text = re.split(r"</think>", text, flags=re.IGNORECASE)[-1]
    text = _THINK.sub(" ", text)
    return re.sub(r"[*_`#]+", "", text)


def extract_choice(text: str | None, options: Mapping[str, str] | Sequence[str]) -> ChoiceAnswer:
    """The letter a free-text reply chooses among ``options`` (status ok / no_answer / ambiguous)."""
    opts = as_options(options)
    letters = "".join(sorted(k for k in opts if len(k) == 1 and "A" <= k <= "Z"))
    if not text or not text.strip() or not letters:
        return ChoiceAnswer(None, "no_answer", "none")
    body = _clean(text)
    only, bare, statement, not_but, mention = _patterns(letters)

    found = sorted(
        [(m.start("seq"), m.group("seq")) for m in statement.finditer(body)]
        + [(m.start("seq"), m.group("seq")) for m in not_but.finditer(body)]
    )
    if found:
        picked = _letters_in(found[-1][1], letters)
        if len(picked) == 1:
            return ChoiceAnswer(picked.pop(), "ok", "statement")
        if len(picked) > 1:
            return ChoiceAnswer(None, "ambiguous", "statement")

    if m := bare.match(body):
        picked = _letters_in(m.group("seq"), letters)
        if len(picked) == 1:
            return ChoiceAnswer(picked.pop(), "ok", "only_letter")
        if len(picked) > 1:
            return ChoiceAnswer(None, "ambiguous", "only_letter")

    candidates = _candidates(body, opts, mention)
    if m := only.match(body):
        # "C. <text>": the leading letter, unless the rest points at other options too
        letter = (m.group("x") or m.group("y") or m.group("z")).upper()
        rest = _norm(m.group("rest"))
        if not rest or rest.startswith(_norm(opts.get(letter, ""))[:30]) or not (candidates - {letter}):
            return ChoiceAnswer(letter, "ok", "only_letter")
        candidates.add(letter)
    if len(candidates) == 1:
        return ChoiceAnswer(candidates.pop(), "ok", "mention")
    if candidates:
        return ChoiceAnswer(None, "ambiguous", "mention")
    return ChoiceAnswer(None, "no_answer", "none")


def _candidates(body: str, opts: dict[str, str], mention: re.Pattern) -> set[str]:
    found = set(_echoed_options(body, opts))
    return found | {(m.group("p") or m.group("o")).upper() for m in mention.finditer(body)}


def _echoed_options(body: str, opts: dict[str, str]) -> list[str]:
    """Letters whose option text appears in the reply (an option inside a longer echoed one does not count)."""
    text = f" {_norm(body)} "
    hits = {k: n for k, v in opts.items() if len(n := _norm(v)) >= 3 and f" {n} " in text}
    return sorted(k for k, v in hits.items() if not any(v != w and v in w for w in hits.values()))


def score_choice(text: str | None, options: Mapping[str, str] | Sequence[str], correct_letter: str) -> float:
    """Verifiable reward: 1.0 when the extracted letter is the correct one, else 0.0 (ambiguous/missing = 0)."""
    return 1.0 if extract_choice(text, options).matches(correct_letter) else 0.0
