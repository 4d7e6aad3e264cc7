"""The vignette -> conversation gap in one command (CRAFT-MD's comparison, like for like).

    python -m harness.tools.gap --model openai/gpt-4.1 --model-role grader=openai/gpt-4.1 \
        --model-role patient=openai/gpt-4.1-mini --cases craftmd --answer multiple_choice --limit 50

runs the same cases in each format (``--formats vignette,conversation,summary``; default vignette and
conversation) with the same answer type, and prints diagnostic accuracy per format and the gap
(conversation minus vignette). The logs go to ``--log-dir`` (default logs/gap); the table is also
written as Markdown with ``--out``. CRAFT-MD reports GPT-4 0.82 (vignette) -> 0.63 (conversation)
on multiple choice (Johri et al., Nat Med 2025); figures from another doctor prompt, patient
model or grader are not directly comparable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import ArgumentError, M2BenchError


def parse_roles(values: list[str]) -> dict[str, str]:
    roles = {}
    for value in values:
        role, sep, model = value.partition("=")
        if not sep or not role or not model:
            raise ArgumentError("--model-role", value, "ROLE=MODEL, e.g. grader=openai/gpt-4.1")
        roles[role] = model
    return roles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.tools.gap", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--model-role", action="append", default=[], help="ROLE=MODEL (grader, patient, rubric_generator)")
    parser.add_argument("--cases", default="craftmd")
    parser.add_argument("--answer", default="multiple_choice", choices=["multiple_choice", "free_text"])
    parser.add_argument("--formats", default="vignette,conversation")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--grading-mode", default="batched", choices=["per_criterion", "batched"])
    parser.add_argument("--log-dir", default="logs/gap")
    parser.add_argument("--out", default=None, help="also write the table here (Markdown)")
    args = parser.parse_args(argv)
    try:
        roles = parse_roles(args.model_role)  # before the slow imports: a bad argument fails at once
        from inspect_ai import eval as inspect_eval

        from harness.evals.consultation import consultation_task

        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        tasks = [
            consultation_task(args.cases, args.max_turns, "neutral", f, args.grading_mode, 0.5, args.answer, benchmark="craftmd")
            for f in formats
        ]
        logs = inspect_eval(tasks, model=args.model, model_roles=roles or None, limit=args.limit, log_dir=args.log_dir)
    except M2BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    accuracy = {}
    lines = ["| format | answer | n | diagnostic_accuracy | log |", "|---|---|---|---|---|"]
    for fmt, log in zip(formats, logs):
        if log.status != "success" or log.results is None or not log.results.scores:
            print(f"error: the {fmt} run did not finish ({log.status}): {log.error}", file=sys.stderr)
            return 1
        metrics = {k: m.value for s in log.results.scores for k, m in s.metrics.items()}
        accuracy[fmt] = metrics.get("diagnostic_accuracy")
        lines.append(f"| {fmt} | {args.answer} | {log.results.completed_samples} | {accuracy[fmt]} | {log.location} |")
    vignette, conversation = accuracy.get("vignette"), accuracy.get("conversation")
    if isinstance(vignette, (int, float)) and isinstance(conversation, (int, float)):
        lines.append(f"\nvignette -> conversation gap: {conversation - vignette:+.3f}")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
