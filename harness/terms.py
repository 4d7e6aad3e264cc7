"""Curated clinical vocabulary, kept as data (``harness/vocab/*.json``), and phrase matching on it.

- ``clinical_terms.json``: concepts (tests, exam systems, findings, history topics) with their
  names, abbreviations and lay wordings ("EMG" = "electromyography"; "CBC" with its parts
  WBC, haemoglobin, platelets ...; "eyes" -> cranial nerves and ophthalmic findings);
- ``diagnosis_aliases.json``: for the diagnoses of the shared case sets, the names that count
  as the same diagnosis (``aliases``) and the words a patient must not say because they give it
  away (``giveaways``: aliases, abbreviations, partial names, lay names, paraphrases).

There is no offline terminology service: these tables are hand-written and versioned with the
code; ``python -m harness.calibrate`` measures what they achieve on labelled probes.

Matching is on normalised text (``normalize``: lower case, accents and apostrophes folded,
punctuation and hyphens as spaces, articles and possessive pronouns dropped), as whole phrases
(token sequences), longest first, so "chest x-ray" is one concept, not "chest" and "x-ray".
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

VOCAB_DIR = Path(__file__).parent / "vocab"
_DROPPED = frozenset("the a an his her my your their its our this that these those of".split())


def normalize(text: str) -> str:
    """Lower case, ASCII, apostrophes folded ("Parkinson's" -> "parkinson"), punctuation as spaces."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"[^a-z0-9&]+", " ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """Normalised tokens without articles, 'of' and possessive pronouns."""
    return [t for t in normalize(text).split() if t not in _DROPPED]


_SUFFIXES = ("ations", "ation", "ments", "ment", "ness", "ings", "ing", "ies", "ied", "ed", "es", "s", "al", "ly")


def stem(word: str) -> str:
    """A crude stem ("refusal", "refuses", "refuse" -> "refus"; "feeding" -> "feed") for word overlap."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


_DRUG = re.compile(
    r"\b[a-z]{3,}(?:pril|sartan|olol|alol|dipine|statin|prazole|azole|tidine|mab|nib|cillin|mycin|micin|floxacin|cycline|"
    r"cef[a-z]*|ceph[a-z]*|peridol|apine|idone|zepam|zolam|oxetine|pramine|triptyline|sone|solone|olone|formin|gliptin|"
    r"glitazone|glide|triptan|setron|terol|amine|trigine|etam|pam|barbital|toin|parin|xaban|gatran|afil|lukast|"
    r"quinone|quine|vir|conazole|dronate|thiazide|semide|lactone|ucil|phen|fen|profen|coxib|codone|morphone|tadine|ium)\b"
    r"|\b(?:insulin|aspirin|acetaminophen|paracetamol|ibuprofen|naproxen|warfarin|heparin|metformin|levothyroxine|"
    r"prednisone|methotrexate|lithium|haloperidol|natalizumab|mesalamine|hydroquinone|lamotrigine|amoxicillin|cephalexin|"
    r"levofloxacin|albuterol|salbutamol|antibiotics?|steroids?|corticosteroids?|contraceptives?|inhalers?|creams?|pills?|"
    r"tablets?|vitamins?|supplements?|chemotherapy|immunosuppressants?)\b",
    re.IGNORECASE,
)


def mentions_drug(text: str) -> bool:
    """Whether the text names a medicine (common drug-name endings and a short list of common drugs)."""
    return _DRUG.search(text) is not None


def phrase_in(phrase: str, text: str) -> bool:
    """Whether the tokens of ``phrase`` occur consecutively in ``text`` (both normalised)."""
    needle, hay = tokens(phrase), tokens(text)
    if not needle:
        return False
    n = len(needle)
    return any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


@dataclass(frozen=True)
class Concept:
    id: str
    kind: str  # test, exam, region, finding, topic, manoeuvre, specimen
    names: tuple[str, ...]
    parts: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()
    panel: bool = False


@cache
def concepts() -> dict[str, Concept]:
    raw = json.loads((VOCAB_DIR / "clinical_terms.json").read_text(encoding="utf-8"))["concepts"]
    return {
        cid: Concept(
            cid,
            c["kind"],
            tuple(c["names"]),
            tuple(c.get("parts", ())),
            tuple(c.get("implies", ())),
            bool(c.get("panel", False)),
        )
        for cid, c in raw.items()
    }


@cache
def _index(kinds: tuple[str, ...]) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """first token -> [(name tokens, concept id)], longest names first."""
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for concept in concepts().values():
        if concept.kind not in kinds:
            continue
        for name in concept.names:
            toks = tuple(tokens(name))
            if toks:
                index.setdefault(toks[0], []).append((toks, concept.id))
    for entries in index.values():
        entries.sort(key=lambda e: -len(e[0]))
    return index


@dataclass
class Match:
    concept_ids: set[str]  # concepts named in the text (with the concepts they imply)
    leftover: list[str]  # tokens not covered by any concept name


def match_concepts(text: str, kinds: tuple[str, ...]) -> Match:
    """Concepts of the given kinds named in ``text`` (longest phrase wins), and the uncovered tokens."""
    toks = tokens(text)
    index = _index(kinds)
    found: set[str] = set()
    leftover: list[str] = []
    i = 0
    while i < len(toks):
        best = 0
        for name, cid in index.get(toks[i], ()):
            n = len(name)
            if n < best:
                break
            if tuple(toks[i : i + n]) == name:
                found.add(cid)
                best = n
        if best:
            i += best
        else:
            leftover.append(toks[i])
            i += 1
    table = concepts()
    for cid in list(found):
        found.update(i for i in table[cid].implies if i in table)
    if "topic" in kinds and "medications" in table and mentions_drug(text):
        found.add("medications")
    return Match(found, leftover)


def expand(concept_ids: set[str]) -> set[str]:
    """The concepts plus their parts (recursively): ordering a panel asks for its parts."""
    table = concepts()
    out, todo = set(), list(concept_ids)
    while todo:
        cid = todo.pop()
        if cid in out or cid not in table:
            continue
        out.add(cid)
        todo.extend(table[cid].parts)
    return out


def concept_names(concept_ids: set[str]) -> list[str]:
    table = concepts()
    return [name for cid in sorted(concept_ids) if cid in table for name in table[cid].names]


# --- diagnoses ---------------------------------------------------------------------------------


@cache
def _diagnosis_file() -> dict[str, Any]:
    return json.loads((VOCAB_DIR / "diagnosis_aliases.json").read_text(encoding="utf-8"))


@cache
def _diagnosis_table() -> dict[str, dict[str, list[str]]]:
    raw = _diagnosis_file()["diagnoses"]
    table: dict[str, dict[str, list[str]]] = {}
    for name, entry in raw.items():
        table[normalize(name)] = {"aliases": entry.get("aliases", []), "giveaways": entry.get("giveaways", [])}
    return table


@cache
def ordinary_words() -> frozenset[str]:
    """Everyday words found in diagnosis names that a patient may say without naming the diagnosis."""
    return frozenset(normalize(w) for w in _diagnosis_file()["ordinary_words"])


def abbreviated_words() -> dict[str, list[str]]:
    """Abbreviations of words inside diagnosis names and their spellings ("PD": personality disorder), case-sensitive."""
    return _diagnosis_file()["abbreviated_words"]


@cache
def abbreviation_owners() -> dict[str, frozenset[str]]:
    """Each curated all-capital abbreviation ("ASD", "AF") and the (normalised) diagnoses it names."""
    owners: dict[str, set[str]] = {}
    for name, entry in _diagnosis_table().items():
        for alias in entry["aliases"]:
            if alias.isupper() and len(alias) <= 5:
                owners.setdefault(alias, set()).add(name)
    return {abbreviation: frozenset(names) for abbreviation, names in owners.items()}


def curated(diagnosis: str) -> dict[str, list[str]]:
    """The curated entry for a diagnosis (empty lists when it has none)."""
    return _diagnosis_table().get(normalize(diagnosis), {"aliases": [], "giveaways": []})


def name_variants(diagnosis: str) -> list[str]:
    """The diagnosis, its parenthesised abbreviation, its name without it, and 'A or B' / 'A/B' parts."""
    text = diagnosis.strip().strip(".")
    out = [text]
    for inner in re.findall(r"\(([^)]+)\)", text):
        if len(inner.strip()) >= 3 or inner.strip().isupper():
            out.append(inner.strip())
    bare = re.sub(r"\s*\([^)]*\)", "", text).strip()
    out.append(bare)
    for part in re.split(r"\s+or\s+|/|;", bare):
        if len(part.strip()) >= 4:
            out.append(part.strip())
    return [a for a in dict.fromkeys(out) if a]


def diagnosis_aliases(diagnosis: str) -> list[str]:
    """Names that count as the same diagnosis: the name's variants plus curated synonyms."""
    return list(dict.fromkeys([*name_variants(diagnosis), *curated(diagnosis)["aliases"]]))


def distinctive_words(diagnosis: str) -> list[str]:
    """Single words of a multi-word diagnosis that give it away ("myasthenia"), not everyday words ("rupture")."""
    found = re.findall(r"[A-Za-z][A-Za-z'-]+", re.sub(r"\([^)]*\)", "", diagnosis))
    if len(found) < 2:
        return []
    ordinary = ordinary_words()
    return [w for w in found if len(w) >= 5 and normalize(w) not in ordinary and "-" not in w]


def giveaways(diagnosis: str) -> list[str]:
    """Everything a patient must not say: aliases, curated giveaways, distinctive words of the name."""
    entry = curated(diagnosis)
    return list(dict.fromkeys([*diagnosis_aliases(diagnosis), *entry["giveaways"], *distinctive_words(diagnosis)]))
