"""The results table: one row per evaluation run, whichever harness ran it.

Columns: model, benchmark, subset, split, score, stderr, n, grader, harness, date, log, and the
optional doctor_tokens (mean tokens the model under test used per sample, where the run reports it:
kept when a table has it, so tables written without it still load).
Adapters fill it (``harness.evals.logs`` from Inspect logs, ``harness.lmeval.results`` from
lm-eval output); the leaderboard and Pareto reports read only this table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

RESULT_COLUMNS = ["model", "benchmark", "subset", "split", "score", "stderr", "n", "grader", "harness", "date", "log"]
OPTIONAL_COLUMNS = ["doctor_tokens"]
KEY_COLUMNS = ["model", "benchmark", "subset", "log"]


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Put a table in the standard column order, deduplicated by (model, benchmark, subset, log)."""
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"results table lacks columns: {', '.join(missing)}")
    columns = RESULT_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    return frame[columns].drop_duplicates(subset=KEY_COLUMNS, keep="last").reset_index(drop=True)


def append_results(frame: pd.DataFrame, csv_path: str | Path) -> pd.DataFrame:
    """Merge ``frame`` into the CSV at ``csv_path`` (created if absent), deduplicated."""
    csv_path = Path(csv_path)
    if csv_path.exists():
        frame = pd.concat([pd.read_csv(csv_path, keep_default_na=False, na_values=[""]), frame], ignore_index=True)
    merged = normalize(frame)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    merged.to_csv(csv_path, index=False)
    return merged
