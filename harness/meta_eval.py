"""HealthBench meta-eval: a grader's verdicts against physician labels, with the official metric.

Data: the official meta-eval file (``harness.evalsets.HEALTHBENCH["meta_eval"]``; OpenAI simple-evals, MIT), one
row per (conversation, completion, rubric criterion): ``prompt`` (messages), ``completion``,
``rubric`` (criterion text), ``category``, ``binary_labels`` (one bool per physician) and
``anonymized_physician_ids``.

Grading: by default with the official grader profile, the criterion shown alone (no points), as
simple-evals' meta-eval shows it. A row whose grading failed after the retries is counted
(``grader_failed_rows``), left out of the agreement, and fails the run beyond ``max_error_fraction``.

Metric (``rater_metrics``, the computation of simple-evals' ``compute_metrics_for_rater_by_class``,
checked against it in the tests): every (rater label, other physician's label) pair on a row counts
once. Precision of class c = share of pairs with rater label c where the other physician agrees;
recall of class c = share of pairs with physician label c where the rater agrees; F1 per class;
**balanced F1 = (F1 positive + F1 negative) / 2**; overall and per ``category``. The grader is
scored against all physicians (``pairwise_model_f1_balanced``).

Physician baseline: each physician is scored, exactly as simple-evals scores them, against the
other physicians on the rows they labelled. simple-evals stops there (a per-physician list); the
single figure here (``pairwise_physician_f1_balanced``, overall and per category) is **our
reduction: the unweighted mean over the physicians for whom the metric is defined**, reported with
that count.

    python -m harness.meta_eval --base-url URL --model NAME [--grader-profile m2bench --mode batched]
        [--data-file F] [--limit N] [--max-error-fraction 0.05] [--out FILE]
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
from harness.errors import ArgumentError, DataError, GradingError, run_cli
from harness.evalsets import HEALTHBENCH
from harness.grading import GRADER_PROFILES, GRADING_MODES, OFFICIAL_PROFILE, RubricGrader
from harness.healthbench import official_path, parse_prompt
from harness.rubric import RubricItem

META_EVAL = HEALTHBENCH["meta_eval"]
CRITERION_POINTS = 1  # the rows carry the criterion text only; the grader is shown the criterion alone
Metrics = dict[str, dict[str, float | None]]  # metric name -> {"n": pairs, "value": value or None}


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
def rater_metrics(
    self_labels: Sequence[bool], other_labels: Sequence[Sequence[bool]], categories: Sequence[str], rater: str
) -> Metrics:
    """Pairwise precision, recall, F1 and balanced metrics of a rater (``model`` or ``physician``) against
    the other raters' labels, overall (``pairwise_<rater>_<metric>_<class>``) and per category
    (``<category>: pairwise_...``), each ``{"n", "value"}``; the value is None where undefined."""
    agree: dict[str, list[bool]] = defaultdict(list)
    for mine, others, category in zip(self_labels, other_labels, categories, strict=True):
        for other in others:
            for metric, cls in (("precision", "pos" if mine else "neg"), ("recall", "pos" if other else "neg")):
                name = f"pairwise_{rater}_{metric}_{cls}"
                agree[name].append(mine == other)
                agree[f"{category}: {name}"].append(mine == other)
    metrics: Metrics = {k: {"n": len(v), "value": sum(v) / len(v) if v else None} for k, v in agree.items()}
    metrics.update(
        {
            k.replace("precision", "f1"): _f1(v, metrics[k.replace("precision", "recall")])
            for k, v in list(metrics.items())
            if "precision" in k and k.replace("precision", "recall") in metrics
        }
    )
    metrics.update(
        {
            k.replace("pos", "balanced"): _balanced(v, metrics[k.replace("pos", "neg")])
            for k, v in list(metrics.items())
            if "pos" in k and k.replace("pos", "neg") in metrics
        }
    )
    return metrics


def _f1(precision: dict[str, float | None], recall: dict[str, float | None]) -> dict[str, float | None]:
    p, r, n_p, n_r = precision["value"], recall["value"], precision["n"] or 0, recall["n"] or 0
    if p is None or r is None:
        return {"n": n_p + n_r, "value": None}
    return {"n": n_p + n_r - p * n_p, "value": 0.0 if p == 0 and r == 0 else 2 * p * r / (p + r)}  # n: TP+FP+FN


def _balanced(pos: dict[str, float | None], neg: dict[str, float | None]) -> dict[str, float | None]:
    value = None if pos["value"] is None or neg["value"] is None else (pos["value"] + neg["value"]) / 2
    return {"n": (pos["n"] or 0) + (neg["n"] or 0), "value": value}


def grader_agreement(rows: Sequence[MetaEvalRow], grader_labels: Sequence[bool | None]) -> Metrics:
    """The grader's pairwise metrics against every physician (rows the grader failed on are left out)."""
    kept = [(r, label) for r, label in zip(rows, grader_labels, strict=True) if label is not None]
    return rater_metrics([label for _, label in kept], [r.labels for r, _ in kept], [r.category for r, _ in kept], "model")


def physician_metrics(rows: Sequence[MetaEvalRow]) -> dict[str, Metrics]:
    """Per physician id: their pairwise metrics against the other physicians on the rows they labelled."""
    per: dict[str, tuple[list, list, list]] = defaultdict(lambda: ([], [], []))
    for r in rows:
        for i, (pid, label) in enumerate(zip(r.physicians, r.labels)):
            per[pid][0].append(label)
            per[pid][1].append(r.labels[:i] + r.labels[i + 1 :])
            per[pid][2].append(r.category)
    return {pid: rater_metrics(mine, others, cats, "physician") for pid, (mine, others, cats) in per.items()}


def physician_baseline(rows: Sequence[MetaEvalRow]) -> dict[str, dict[str, float | None]]:
    """Per physician metric name: the mean over physicians where it is defined (our reduction), and their count."""
    values: dict[str, list[float]] = defaultdict(list)
    for metrics in physician_metrics(rows).values():
        for name, m in metrics.items():
            if m["value"] is not None:
                values[name].append(m["value"])
    return {name: {"value": statistics.mean(v), "physicians": len(v)} for name, v in values.items()}


def f1_by_category(metrics: dict[str, dict[str, float | None]], rater: str) -> dict[str, float | None]:
    """``{category: balanced F1}`` out of a metrics dict."""
    suffix = f": pairwise_{rater}_f1_balanced"
    return {name[: -len(suffix)]: m["value"] for name, m in sorted(metrics.items()) if name.endswith(suffix)}


# ---- grading --------------------------------------------------------------------------------------
def conversation_groups(rows: Sequence[MetaEvalRow]) -> list[list[int]]:
    """Indexes of rows sharing (prompt, completion), in order of first appearance."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[json.dumps([row.prompt, row.completion])].append(i)
    return list(groups.values())


async def grade_rows(rows: Sequence[MetaEvalRow], engine: RubricGrader, profile: str | None = None) -> list[bool | None]:
    """Grader verdict per row (None where grading failed), each criterion shown alone as simple-evals'
    meta-eval shows it. Rows sharing (prompt, completion) are graded together, so in batched mode all
    their criteria go in one grader call; per-criterion mode still makes one call each."""
    labels: list[bool | None] = [None] * len(rows)

    async def grade(idx: list[int]) -> None:
        first = rows[idx[0]]
        items = [RubricItem(rows[i].rubric, CRITERION_POINTS) for i in idx]
        result = await engine.grade(first.prompt, first.completion, items, profile=profile, criterion_only=True)
        for i, verdict in zip(idx, result.verdicts):
            labels[i] = verdict.met

    await asyncio.gather(*(grade(idx) for idx in conversation_groups(rows)))
    return labels


def report(rows: Sequence[MetaEvalRow], grader_labels: Sequence[bool | None], **config) -> dict:
    """The grader's and the physicians' agreement, overall and per category, and the failed rows."""
    model = grader_agreement(rows, grader_labels)
    physicians = physician_baseline(rows)
    overall = "pairwise_{}_f1_balanced"
    return {
        **config,
        "rows": len(rows),
        "grader_failed_rows": sum(v is None for v in grader_labels),
        "pairwise_model_f1_balanced": model.get(overall.format("model"), {}).get("value"),
        "pairwise_physician_f1_balanced": physicians.get(overall.format("physician"), {}).get("value"),
        "physicians": physicians.get(overall.format("physician"), {}).get("physicians", 0),
        "by_category": {
            category: {"model_f1_balanced": f1, "physician_f1_balanced": f1_by_category(physicians, "physician").get(category)}
            for category, f1 in f1_by_category(model, "model").items()
        },
        "model": model,
        "physician_baseline": physicians,
    }


def check_failed_rows(failed: int, total: int, max_error_fraction: float) -> None:
    """GradingError when more than ``max_error_fraction`` of the rows could not be graded."""
    if not 0 <= max_error_fraction < 1:
        raise ArgumentError("max_error_fraction", max_error_fraction, "a fraction in [0, 1)")
    if failed > max_error_fraction * total:
        raise GradingError(
            f"{failed} of {total} meta-eval rows could not be graded (more than max_error_fraction={max_error_fraction}); "
            "the agreement figures would leave them out"
        )


def main(argv: Sequence[str] | None = None) -> int:
    from harness.cache import default_cache
    from harness.clients import OpenAIChat

    parser = argparse.ArgumentParser(prog="python -m harness.meta_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible server of the grader")
    parser.add_argument("--model", required=True, help="grader model name")
    parser.add_argument("--grader-profile", default=OFFICIAL_PROFILE, choices=GRADER_PROFILES)
    parser.add_argument("--mode", default="per_criterion", choices=GRADING_MODES, help="batched needs --grader-profile m2bench")
    parser.add_argument("--data-file", default=None, help=f"default: the official {META_EVAL.name}")
    parser.add_argument("--limit", type=int, default=None, help="first N rows only")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--max-error-fraction", type=float, default=0.05, help="fail when more rows than this could not be graded"
    )
    parser.add_argument("--out", default=None, help="write the JSON report here (also when the run fails)")
    args = parser.parse_args(argv)
    rows = load_meta_eval(args.data_file)[: args.limit]
    chat = OpenAIChat(args.base_url, args.model, max_connections=args.concurrency)
    engine = RubricGrader(
        chat,
        grader_id=chat.name,
        mode=args.mode,
        profile=args.grader_profile,
        max_concurrency=args.concurrency,
        cache=default_cache(),
    )
    labels = asyncio.run(grade_rows(rows, engine))
    result = report(
        rows,
        labels,
        grader=chat.name,
        grader_profile=args.grader_profile,
        mode=args.mode,
        data_file=args.data_file or META_EVAL.name,
    )
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    check_failed_rows(result["grader_failed_rows"], len(rows), args.max_error_fraction)
    return 0


if __name__ == "__main__":
    run_cli(main)
