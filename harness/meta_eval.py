"""HealthBench meta-eval: a grader's verdicts against physician labels, with the official metric.

Data: the official meta-eval file (``harness.evalsets.HEALTHBENCH["meta_eval"]``; OpenAI simple-evals, MIT), one
row per (conversation, completion, rubric criterion): ``prompt`` (messages), ``completion``,
``rubric`` (criterion text), ``category``, ``binary_labels`` (one bool per physician) and
``anonymized_physician_ids``.

Metric (as simple-evals ``healthbench_meta_eval.py``): every (rater label, other physician label)
pair on a row counts once. Precision of class c = share of pairs with rater label c where the other
physician agrees; recall of class c = share of pairs with physician label c where the rater agrees;
F1 per class; **balanced F1 = (F1 positive + F1 negative) / 2**. The grader is scored against all
physicians; the physician baseline scores each physician against the other physicians on the same
rows and averages over physicians. Both overall and per ``category``.

    python -m harness.meta_eval --base-url URL --model NAME [--mode batched] [--data-file F] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.data import Row, read_jsonl, user_path
from harness.errors import DataError
from harness.evalsets import HEALTHBENCH
from harness.grading import GRADING_MODES, RubricGrader
from harness.healthbench import official_path, parse_prompt
from harness.rubric import RubricItem

META_EVAL = HEALTHBENCH["meta_eval"]
CRITERION_POINTS = 1.0  # the meta-eval rows carry the criterion text only; the prompt shows 1 point


@dataclass
class MetaEvalRow:
    prompt: list[dict[str, str]]
    completion: str
    rubric: str
    category: str
    labels: list[bool]
    physicians: list[str]


def load_meta_eval(data_file: str | Path | None = None) -> list[MetaEvalRow]:
    """The official meta-eval file (``$M2BENCH_DATA_DIR/healthbench/<name>``, cache, or download) or ``data_file``."""
    if data_file:
        path = user_path(data_file)
    else:
        try:
            path = official_path("meta_eval")
        except DataError as exc:
            raise DataError(
                exc.path,
                f"the HealthBench meta-eval file is not available ({exc.message}). Download {META_EVAL.url} "
                f"and put it at $M2BENCH_DATA_DIR/healthbench/{META_EVAL.name}, or pass data_file=...",
            ) from exc
    rows = [parse_row(Row(obj, path, line)) for line, obj in read_jsonl(path)]
    if not rows:
        raise DataError(path, "no rows")
    return rows


def parse_row(row: Row) -> MetaEvalRow:
    prompt = parse_prompt(row, "prompt")
    labels = row.get("binary_labels", list)
    if not labels or not all(isinstance(v, bool) for v in labels):
        raise row.error("binary_labels", "expected a non-empty array of true/false")
    physicians = row.get("anonymized_physician_ids", list)
    if len(physicians) != len(labels) or not all(isinstance(p, str) for p in physicians):
        raise row.error("anonymized_physician_ids", f"expected {len(labels)} strings, one per binary label")
    return MetaEvalRow(
        prompt,
        row.text("completion", allow_empty=True),
        row.text("rubric"),
        row.text("category"),
        list(labels),
        list(physicians),
    )


# ---- the official metric -------------------------------------------------------------------------
def pairwise_f1(self_labels: Sequence[bool], other_labels: Sequence[Sequence[bool]]) -> dict[str, float | None]:
    """Precision, recall, F1 per class and balanced F1 of a rater against the other raters' labels."""
    agree: dict[str, list[bool]] = defaultdict(list)
    for mine, others in zip(self_labels, other_labels, strict=True):
        for other in others:
            agree[f"precision_{'pos' if mine else 'neg'}"].append(mine == other)
            agree[f"recall_{'pos' if other else 'neg'}"].append(mine == other)
    out: dict[str, float | None] = {}
    for cls in ("pos", "neg"):
        p, r = (agree.get(f"{m}_{cls}") for m in ("precision", "recall"))
        precision: float | None = sum(p) / len(p) if p else None
        recall: float | None = sum(r) / len(r) if r else None
        out[f"precision_{cls}"], out[f"recall_{cls}"] = precision, recall
        if precision is None or recall is None:
            out[f"f1_{cls}"] = None
        else:
            out[f"f1_{cls}"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    f1_pos, f1_neg = out["f1_pos"], out["f1_neg"]
    out["f1_balanced"] = None if f1_pos is None or f1_neg is None else (f1_pos + f1_neg) / 2
    out["pairs"] = float(sum(len(o) for o in other_labels))
    return out


def _by_category(rows, preds, pick) -> dict[str, dict]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[row.category].append(i)
    return {cat: pick([rows[i] for i in idx], [preds[i] for i in idx]) for cat, idx in sorted(groups.items())}


def grader_agreement(rows: Sequence[MetaEvalRow], grader_labels: Sequence[bool | None]) -> dict:
    """The grader's pairwise metrics against every physician (rows the grader failed on are left out)."""

    def pick(rs, ps):
        kept = [(r, p) for r, p in zip(rs, ps) if p is not None]
        return pairwise_f1([p for _, p in kept], [r.labels for r, _ in kept])

    return {**pick(rows, grader_labels), "by_category": _by_category(rows, grader_labels, pick)}


def physician_agreement(rows: Sequence[MetaEvalRow]) -> dict:
    """Each physician against the other physicians on the same rows; balanced F1 averaged over physicians."""

    def pick(rs, _):
        per: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        for r in rs:
            for i, (pid, label) in enumerate(zip(r.physicians, r.labels)):
                others = r.labels[:i] + r.labels[i + 1 :]
                if others:
                    per[pid][0].append(label)
                    per[pid][1].append(others)
        scores = [pairwise_f1(s, o)["f1_balanced"] for s, o in per.values()]
        scores = [s for s in scores if s is not None]
        return {"f1_balanced": statistics.mean(scores) if scores else None, "physicians": len(scores)}

    return {**pick(rows, None), "by_category": _by_category(rows, [None] * len(rows), pick)}


# ---- grading --------------------------------------------------------------------------------------
def conversation_groups(rows: Sequence[MetaEvalRow]) -> list[list[int]]:
    """Indexes of rows sharing (prompt, completion), in order of first appearance."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[json.dumps([row.prompt, row.completion])].append(i)
    return list(groups.values())


async def grade_rows(rows: Sequence[MetaEvalRow], engine: RubricGrader) -> list[bool | None]:
    """Grader verdict per row. Rows sharing (prompt, completion) are graded together, so in batched
    mode all their criteria go in one grader call; per-criterion mode still makes one call each."""
    labels: list[bool | None] = [None] * len(rows)

    async def grade(idx: list[int]) -> None:
        first = rows[idx[0]]
        items = [RubricItem(rows[i].rubric, CRITERION_POINTS) for i in idx]
        result = await engine.grade(first.prompt, first.completion, items)
        for i, verdict in zip(idx, result.verdicts):
            labels[i] = verdict.met

    await asyncio.gather(*(grade(idx) for idx in conversation_groups(rows)))
    return labels


def report(rows: Sequence[MetaEvalRow], grader_labels: Sequence[bool | None], **config) -> dict:
    model = grader_agreement(rows, grader_labels)
    physicians = physician_agreement(rows)
    return {
        **config,
        "rows": len(rows),
        "grader_failed_rows": sum(v is None for v in grader_labels),
        "pairwise_model_f1_balanced": model["f1_balanced"],
        "pairwise_physician_f1_balanced": physicians["f1_balanced"],
        "model": model,
        "physician": physicians,
    }


def main(argv: Sequence[str] | None = None) -> None:
    from harness.cache import default_cache
    from harness.clients import OpenAIChat

    parser = argparse.ArgumentParser(prog="python -m harness.meta_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible server of the grader")
    parser.add_argument("--model", required=True, help="grader model name")
    parser.add_argument("--mode", default="per_criterion", choices=GRADING_MODES)
    parser.add_argument("--data-file", default=None, help=f"default: the official {META_EVAL.name}")
    parser.add_argument("--limit", type=int, default=None, help="first N rows only")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", default=None, help="write the JSON report here")
    args = parser.parse_args(argv)
    rows = load_meta_eval(args.data_file)[: args.limit]
    chat = OpenAIChat(args.base_url, args.model, max_connections=args.concurrency)
    engine = RubricGrader(chat, grader_id=chat.name, mode=args.mode, max_concurrency=args.concurrency, cache=default_cache())
    labels = asyncio.run(grade_rows(rows, engine))
    result = report(rows, labels, grader=chat.name, mode=args.mode, data_file=args.data_file or META_EVAL.name)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
