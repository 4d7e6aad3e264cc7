"""Leaderboard data files: published results, model parameter counts, own runs.

All three live in ``leaderboards/`` as CSV, so a result or a parameter count is added by
editing data, not code. Every loader validates and raises ``DataError(file, message, line,
field)`` (line 1 is the header, so the first data row is line 2).

- ``published.csv``: model, benchmark, subset, score (0-100), source, source_ref, date, and the
  comparability columns grader, grader_prompt, n, reported_by, reasoning (allowed values below), note
- ``models.csv``: model, aliases (``;``-separated names used in logs), architecture
  (dense | moe | unknown), params_total_b, params_active_b (billions), source, note.
  ``unknown`` means no public parameter count (closed models): both counts stay empty.
- ``own_runs.csv``: the ``harness.results`` table (scores as fractions 0-1), appended with
  ``python -m harness.tools.report add-runs``; whether each run is comparable with the published
  numbers is recomputed on load (``harness.comparable``), never trusted from the file.

Run ``python -m harness.reporting.leaderboard`` to validate the files.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from harness.errors import DataError, run_cli
from harness.evalsets import HEALTHBENCH, HEALTHBENCH_SUBSETS, MEDQA
from harness.results import BASE_COLUMNS, RESULT_COLUMNS, normalize

LEADERBOARD_DIR = Path(__file__).resolve().parents[2] / "leaderboards"
PUBLISHED_COLUMNS = [
    "model",
    "benchmark",
    "subset",
    "score",
    "source",
    "source_ref",
    "date",
    "grader",
    "grader_prompt",
    "n",
    "reported_by",
    "reasoning",
    "note",
]
MODEL_COLUMNS = ["model", "aliases", "architecture", "params_total_b", "params_active_b", "source", "note"]
ARCHITECTURES = ("dense", "moe", "unknown")
BENCHMARK_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
NOT_STATED = "not stated"
NOT_APPLICABLE = "n/a"  # grader and grader_prompt of a benchmark scored by answer matching (MedQA)
# benchmark -> (its subset, the official example count, graded by a model against rubrics?)
BENCHMARKS = {
    **{f"healthbench{'' if s == 'full' else '_' + s}": (s, HEALTHBENCH[s].rows, True) for s in HEALTHBENCH_SUBSETS},
    "medqa": ("test", MEDQA["test"].rows, False),
}
GRADER_PROMPTS = ("simple-evals", "own", NOT_STATED)  # simple-evals = the official HealthBench grader template and code
REPORTED_BY = ("authors", "third_party")
REASONING = ("thinking", "non-thinking", NOT_STATED)


def _rows(path: Path, columns: list[str], required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """(line, row) pairs of a CSV whose header must hold ``columns``; required fields non-empty."""
    if not path.is_file():
        raise DataError(path, "file not found")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(path, f"header lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}", 1)
        out = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise DataError(path, f"more values than the {len(header)} header columns (quote fields holding commas)", line)
            row = {k: (v or "").strip() for k, v in row.items()}
            if not any(row.values()):
                continue
            for name in required:
                if not row[name]:
                    raise DataError(path, "must not be empty", line, name)
            out.append((line, row))
    return out


def _number(path: Path, line: int, field: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(path, f"not a number: {text!r}", line, field) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise DataError(path, f"{value:g} is outside [{low:g}, {high:g}]", line, field)
    return value


def _one_of(path: Path, line: int, row: dict[str, str], field: str, allowed: Sequence[str]) -> None:
    if row[field] not in allowed:
        raise DataError(path, f"{row[field]!r} is not one of: {', '.join(allowed)}", line, field)


def _check_comparability(path: Path, line: int, row: dict[str, str]) -> None:
    """The columns saying under which conditions a published score was obtained (see leaderboards/README.md)."""
    benchmark = row["benchmark"]
    if benchmark in BENCHMARKS:
        subset, official_n, graded = BENCHMARKS[benchmark]
        _one_of(path, line, row, "subset", [subset])
    else:  # a benchmark without published numbers yet (e.g. consultation): nothing official to compare with
        official_n, graded = None, True
    if graded:
        if row["grader"] == NOT_APPLICABLE:
            raise DataError(path, f"{benchmark} is graded by a model: name it or write {NOT_STATED!r}", line, "grader")
        _one_of(path, line, row, "grader_prompt", GRADER_PROMPTS)
    else:
        for field in ("grader", "grader_prompt"):
            _one_of(path, line, row, field, [NOT_APPLICABLE])
    if row["n"] != NOT_STATED:
        if not re.fullmatch(r"[1-9]\d*", row["n"]):
            raise DataError(path, f"{row['n']!r} is neither a positive whole number nor {NOT_STATED!r}", line, "n")
        if official_n is not None and int(row["n"]) > official_n:
            raise DataError(path, f"{row['n']} exceeds the {official_n} examples of the official {benchmark} set", line, "n")
    _one_of(path, line, row, "reported_by", REPORTED_BY)
    _one_of(path, line, row, "reasoning", REASONING)


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    """Published results, validated; ``score`` is on the 0-100 scale."""
    path = Path(path) if path else LEADERBOARD_DIR / "published.csv"
    records: list[dict] = []
    seen: dict[tuple[str, ...], int] = {}
    required = [c for c in PUBLISHED_COLUMNS if c != "note"]
    for line, row in _rows(path, PUBLISHED_COLUMNS, required):
        if not BENCHMARK_NAME.match(row["benchmark"]):
            raise DataError(
                path, f"{row['benchmark']!r} must be lower-case letters, digits and _ (e.g. healthbench_hard)", line, "benchmark"
            )
        if not DATE.match(row["date"]):
            raise DataError(path, f"{row['date']!r} is not YYYY-MM-DD or YYYY-MM", line, "date")
        score = _number(path, line, "score", row["score"], 0, 100)
        _check_comparability(path, line, row)
        key = (row["model"], row["benchmark"], row["subset"], row["source"])
        if key in seen:
            raise DataError(path, f"duplicate of line {seen[key]} (same model, benchmark, subset, source)", line, "model")
        seen[key] = line
        records.append({**row, "score": score, "line": line})
    return pd.DataFrame(records, columns=PUBLISHED_COLUMNS + ["line"])


def load_models(path: str | Path | None = None) -> pd.DataFrame:
    """Model registry, validated. Dense models get params_active_b = params_total_b."""
    path = Path(path) if path else LEADERBOARD_DIR / "models.csv"
    records: list[dict] = []
    names: dict[str, int] = {}
    for line, row in _rows(path, MODEL_COLUMNS, ["model", "architecture", "source"]):
        arch = row["architecture"]
        if arch not in ARCHITECTURES:
            raise DataError(path, f"{arch!r} is not one of {', '.join(ARCHITECTURES)}", line, "architecture")
        total = _number(path, line, "params_total_b", row["params_total_b"], 1e-6, 1e5) if row["params_total_b"] else math.nan
        active = _number(path, line, "params_active_b", row["params_active_b"], 1e-6, 1e5) if row["params_active_b"] else math.nan
        if arch == "unknown" and not (math.isnan(total) and math.isnan(active)):
            raise DataError(
                path, "architecture 'unknown' means no public parameter count: leave it empty", line, "params_total_b"
            )
        if arch != "unknown" and math.isnan(total):
            raise DataError(
                path, f"a {arch} model needs its total parameter count (or architecture 'unknown')", line, "params_total_b"
            )
        if arch == "moe" and math.isnan(active):
            raise DataError(path, "a mixture-of-experts model needs its active parameter count", line, "params_active_b")
        if arch == "dense":
            if not math.isnan(active) and active != total:
                raise DataError(path, "a dense model's active count equals its total; leave it empty", line, "params_active_b")
            active = total
        if active > total:
            raise DataError(path, f"active ({active:g}) exceeds total ({total:g})", line, "params_active_b")
        aliases = [a.strip() for a in row["aliases"].split(";") if a.strip()]
        for name in [row["model"], *aliases]:
            if names.get(name.lower(), line) != line:
                raise DataError(path, f"name {name!r} already used on line {names[name.lower()]}", line, "aliases")
            names[name.lower()] = line
        records.append({**row, "aliases": aliases, "params_total_b": total, "params_active_b": active, "line": line})
    return pd.DataFrame(records, columns=MODEL_COLUMNS + ["line"])


def load_own_runs(path: str | Path | None = None) -> pd.DataFrame:
    """Own results table (``harness.results`` columns, comparability recomputed); empty when the file does not exist."""
    path = Path(path) if path else LEADERBOARD_DIR / "own_runs.csv"
    if not path.is_file():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    rows = _rows(path, BASE_COLUMNS, ["model", "benchmark", "score", "log"])
    for line, row in rows:
        _number(path, line, "score", row["score"], 0, 1)
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return normalize(frame) if len(frame) else pd.DataFrame(columns=RESULT_COLUMNS)


class ModelRegistry:
    """Looks up a model's parameter counts by name, alias, or the name without provider prefix."""

    def __init__(self, models: pd.DataFrame):
        self.models = models
        self._index: dict[str, int] = {}
        for i, (model, aliases) in enumerate(zip(models["model"], models["aliases"])):
            for name in [model, *aliases]:
                self._index[name.lower()] = i

    def find(self, name: str) -> pd.Series | None:
        parts = name.split("/")
        for candidate in ["/".join(parts[i:]) for i in range(len(parts))]:
            if (i := self._index.get(candidate.lower())) is not None:
                return self.models.iloc[i]
        return None


def validate(directory: str | Path | None = None) -> list[str]:
    """Validate every leaderboard file; also checks each published model is in models.csv."""
    directory = Path(directory) if directory else LEADERBOARD_DIR
    published = load_published(directory / "published.csv")
    registry = ModelRegistry(load_models(directory / "models.csv"))
    for _, row in published.iterrows():
        if registry.find(row["model"]) is None:
            raise DataError(
                directory / "published.csv",
                f"model {row['model']!r} has no row in models.csv (add it; use architecture 'unknown' for closed models)",
                int(row["line"]),
                "model",
            )
    own = load_own_runs(directory / "own_runs.csv")
    return [
        f"{directory / 'published.csv'}: {len(published)} rows",
        f"{directory / 'models.csv'}: {len(registry.models)} rows",
        f"{directory / 'own_runs.csv'}: {len(own)} rows ({int(own['comparable'].sum())} comparable with published numbers)",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.reporting.leaderboard", description="Validate the leaderboard files."
    )
    parser.add_argument(
        "folder", nargs="?", default=None, help=f"folder with published.csv, models.csv, own_runs.csv (default {LEADERBOARD_DIR})"
    )
    args = parser.parse_args(argv)
    print("\n".join(validate(args.folder)) + "\nall leaderboard files are valid")
    return 0


if __name__ == "__main__":
    run_cli(main)
