"""The results table: one row per evaluation run, whichever harness ran it.

Columns: model, benchmark, subset, split, score, stderr, n (scored samples), epochs, data (the official
file name, or ``custom:<file name>@<sha256 prefix>``), limited (``--limit`` or a sample selection cut
the data), grader, grader_profile, comparable, why_not_comparable, harness, date, log, and the optional
doctor_tokens (mean tokens the model under test used per sample, where the run reports it: kept when a
table has it, so tables written without it still load).

``comparable`` and ``why_not_comparable`` are never taken from the input: ``normalize`` recomputes them
with the one definition (``harness.comparable``) every time a table is built or read. Adapters fill the
table (``harness.evals.logs`` from Inspect logs, ``harness.lmeval.results`` from lm-eval output); the
leaderboard and Pareto reports read only this table. A table written before the label columns existed
reads with them empty, so its rows count as not comparable.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from harness.comparable import why_not_comparable
from harness.errors import DataError

BASE_COLUMNS = ["model", "benchmark", "subset", "split", "score", "stderr", "n", "grader", "harness", "date", "log"]
LABEL_COLUMNS = ["epochs", "data", "limited", "grader_profile"]
RESULT_COLUMNS = [
    "model",
    "benchmark",
    "subset",
    "split",
    "score",
    "stderr",
    "n",
    "epochs",
    "data",
    "limited",
    "grader",
    "grader_profile",
    "comparable",
    "why_not_comparable",
    "harness",
    "date",
    "log",
]
OPTIONAL_COLUMNS = ["doctor_tokens"]
KEY_COLUMNS = ["model", "benchmark", "subset", "log"]


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Standard column order, deduplicated by (model, benchmark, subset, log), comparability recomputed."""
    missing = [c for c in BASE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"results table lacks columns: {', '.join(missing)}")
    frame = frame.copy()
    for column in LABEL_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    reasons = [why_not_comparable(row) for row in frame.to_dict("records")]
    frame["comparable"] = [not r for r in reasons]
    frame["why_not_comparable"] = ["; ".join(r) for r in reasons]
    columns = RESULT_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    return frame[columns].drop_duplicates(subset=KEY_COLUMNS, keep="last").reset_index(drop=True)


def check_scores(frame: pd.DataFrame) -> None:
    """Refuse rows whose figures cannot be results: a score outside [0, 1] (or missing), a negative
    stderr, fewer than one scored sample. The error names the row's log and the field."""
    for row in frame.to_dict("records"):
        score, stderr, n = row.get("score"), row.get("stderr"), row.get("n")
        where = row.get("log") or f"{row.get('model')} on {row.get('benchmark')}"
        if not isinstance(score, int | float) or not math.isfinite(score) or not 0 <= score <= 1:
            raise DataError(where, f"score {score!r} is not a fraction in [0, 1]", field="score")
        if isinstance(stderr, int | float) and stderr < 0:
            raise DataError(where, f"stderr {stderr!r} is negative", field="stderr")
        if n is not None and not (isinstance(n, int | float) and n >= 1):
            raise DataError(where, f"n {n!r}: no scored sample", field="n")


def append_results(frame: pd.DataFrame, csv_path: str | Path) -> pd.DataFrame:
    """Merge ``frame`` into the CSV at ``csv_path`` (created if absent), deduplicated."""
    csv_path = Path(csv_path)
    if csv_path.exists():
        frame = pd.concat([pd.read_csv(csv_path, keep_default_na=False, na_values=[""]), frame], ignore_index=True)
    merged = normalize(frame)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    merged.to_csv(csv_path, index=False)
    return merged
