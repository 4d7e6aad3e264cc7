"""HealthBench data: official files, validation, loading.

Official release (MIT, OpenAI simple-evals), one subfolder ``healthbench/`` under
``$M2BENCH_DATA_DIR`` or the cache; file names, URLs and row counts come from ``harness.evalsets``
and the row count of a registered file name is verified on load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from harness.data import DATA_DIR_ENV, Row, find_local, local_data_dir, read_jsonl, resolve, user_path
from harness.errors import ArgumentError, DataError
from harness.evalsets import HEALTHBENCH, HEALTHBENCH_SAMPLES, HEALTHBENCH_SUBSETS, official_count
from harness.rubric import RubricItem

ROLES = ("system", "user", "assistant", "developer")
MAX_ABS_POINTS = 10  # HealthBench rubric points lie in [-10, 10]


@dataclass
class HealthBenchExample:
    prompt_id: str
    prompt: list[dict[str, str]]
    rubrics: list[RubricItem]
    example_tags: list[str] = field(default_factory=list)
    ideal_completion: str | None = None


def official_path(subset: str) -> Path:
    """The official file of ``subset`` (or ``meta_eval``): local, cached or downloaded."""
    if subset not in HEALTHBENCH:
        raise ArgumentError("subset", subset, HEALTHBENCH_SUBSETS)
    return resolve(HEALTHBENCH[subset])


def missing_official_file(subset: str, problem: DataError) -> DataError:
    """The one-line error for an official file that is neither local nor downloadable: where to put it,
    where to get it, and, when the public sample of that subset is present, the exact ``data_file=`` instead."""
    official = HEALTHBENCH[subset]
    data_dir = local_data_dir()
    setting = f"${DATA_DIR_ENV}={data_dir}" if data_dir else f"${DATA_DIR_ENV} is not set"
    message = (
        f"the official HealthBench {subset} file is not there ({setting}) and downloading {official.url} failed "
        f"({problem.__cause__ or problem.message}); put the file there"
    )
    if subset in HEALTHBENCH_SAMPLES and (sample := find_local(HEALTHBENCH_SAMPLES[subset])) is not None:
        rows = HEALTHBENCH_SAMPLES[subset].rows
        message += f", or run on the public {rows}-row sample (not comparable with published scores): -T data_file={sample}"
    return DataError(f"${DATA_DIR_ENV}/{official.dataset}/{official.name}", message)


def load_healthbench(subset: str = "hard", data_file: str | Path | None = None) -> list[HealthBenchExample]:
    """Load a HealthBench subset (official file) or an explicit ``data_file`` in the same format."""
    if subset not in HEALTHBENCH_SUBSETS:
        raise ArgumentError("subset", subset, HEALTHBENCH_SUBSETS)
    if data_file:
        path = user_path(data_file)
    else:
        try:
            path = official_path(subset)
        except DataError as exc:
            raise missing_official_file(subset, exc) from None
    examples = load_file(path)
    expected = official_count("healthbench", path.name)
    if expected is not None and len(examples) != expected:
        raise DataError(path, f"has {len(examples)} rows; the official file has {expected}")
    return examples


def load_file(path: str | Path) -> list[HealthBenchExample]:
    examples: list[HealthBenchExample] = []
    seen: dict[str, int] = {}
    for line, obj in read_jsonl(path):
        example = parse_example(Row(obj, path, line))
        if example.prompt_id in seen:
            raise DataError(
                path, f"duplicate prompt_id {example.prompt_id!r} (first on line {seen[example.prompt_id]})", line, "prompt_id"
            )
        seen[example.prompt_id] = line
        examples.append(example)
    if not examples:
        raise DataError(path, "no rows")
    return examples


def parse_example(row: Row) -> HealthBenchExample:
    prompt_id = row.text("prompt_id")
    prompt = parse_prompt(row, "prompt")
    rubrics = parse_rubric(row, "rubrics")
    tags = row.get("example_tags", list, required=False, default=[])
    if not all(isinstance(t, str) for t in tags):
        raise row.error("example_tags", "expected an array of strings")
    ideal = None
    if isinstance(data := row.obj.get("ideal_completions_data"), dict):
        ideal = data.get("ideal_completion") if isinstance(data.get("ideal_completion"), str) else None
    return HealthBenchExample(prompt_id, prompt, rubrics, list(tags), ideal)


def parse_prompt(row: Row, field_name: str) -> list[dict[str, str]]:
    """Validate a non-empty list of chat messages, each {role, content}; returns plain copies."""
    messages = row.get(field_name, list)
    if not messages:
        raise row.error(field_name, "empty conversation")
    prompt = []
    for n, message in enumerate(messages):
        name = f"{field_name}[{n}]"
        if not isinstance(message, dict):
            raise row.error(name, "expected an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise row.error(f"{name}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise row.error(f"{name}.content", f"expected string, got {type(content).__name__}")
        prompt.append({"role": role, "content": content})
    return prompt


def parse_rubric(row: Row, field_name: str, unique: bool = False) -> list[RubricItem]:
    """Validate a HealthBench-format rubric list (criterion, points, tags).

    The official files repeat a criterion in a few rows, so ``unique`` is off for them.
    """
    raw = row.get(field_name, list)
    if not raw:
        raise row.error(field_name, "empty rubric")
    items = []
    seen: set[str] = set()
    for n, entry in enumerate(raw):
        name = f"{field_name}[{n}]"
        if not isinstance(entry, dict):
            raise row.error(name, "expected an object with criterion, points, tags")
        criterion = entry.get("criterion")
        if not isinstance(criterion, str) or not criterion.strip():
            raise row.error(f"{name}.criterion", "missing or empty")
        points = entry.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)):
            raise row.error(f"{name}.points", f"expected number, got {type(points).__name__}")
        if not math.isfinite(points) or points == 0 or abs(points) > MAX_ABS_POINTS:
            raise row.error(f"{name}.points", f"{points} is outside the valid range (non-zero, |points| <= {MAX_ABS_POINTS})")
        tags = entry.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise row.error(f"{name}.tags", "expected an array of strings")
        if unique and criterion in seen:
            raise row.error(f"{name}.criterion", f"duplicate criterion {criterion[:60]!r}")
        seen.add(criterion)
        items.append(RubricItem(criterion, points, tuple(tags)))
    if not any(i.points > 0 for i in items):
        raise row.error(field_name, "no criterion with positive points, so no score can be computed")
    return items
