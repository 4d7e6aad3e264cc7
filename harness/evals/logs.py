"""Inspect logs -> the results table (``harness.results``).

Only finished runs become rows: status ``success`` with every planned sample scored (dataset samples
x epochs, after ``--limit``). A cancelled, failed or still running run, or one whose errored samples
were tolerated by ``max_error_fraction``, is listed by ``incomplete_runs`` with its status instead,
and becomes a row only when asked (``include_incomplete=True``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.comparable import REFERENCE_PREFIX, SELF_GRADED
from harness.data import custom_data_label
from harness.errors import DataError
from harness.results import OPTIONAL_COLUMNS, RESULT_COLUMNS, normalize

# headline metric and its error, in order of preference
SCORE_METRICS = ("score", "accuracy", "mean")
ERROR_METRICS = ("bootstrap_std", "stderr")


def log_files(paths: Iterable[str | Path]) -> list[Path]:
    """Inspect log files: the files given, and the ``.eval`` / ``.json`` files of the folders given."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(path.glob("*.eval")) + sorted(path.glob("*.json")))
        elif path.exists():
            files.append(path)
        else:
            raise DataError(path, "file or folder not found")
    return files


def _data_label(meta: dict) -> str:
    """The data column: recorded by the task, else (older logs) the user's file, else unknown."""
    if meta.get("data"):
        return str(meta["data"])
    return custom_data_label(meta["data_file"]) if meta.get("data_file") else ""


@dataclass
class RunStatus:
    log: Path
    task: str
    status: str
    completed: int
    planned: int

    @property
    def ok(self) -> bool:
        return self.status == "success" and self.planned > 0 and self.completed == self.planned

    def line(self) -> str:
        return f"{self.task} {self.status}, {self.completed}/{self.planned} samples scored ({self.log})"


def read_log(path: str | Path) -> Any:
    """The header of an Inspect log (an ``EvalLog`` without samples); an unreadable file is a DataError."""
    from inspect_ai.log import read_eval_log

    try:
        return read_eval_log(str(path), header_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise DataError(path, f"not a readable Inspect log ({type(exc).__name__}: {exc})") from None


def status_of(log: Any, path: str | Path) -> RunStatus:
    results = log.results
    planned = results.total_samples if results else 0
    if results and results.logged_samples is not None:  # a drained or cancelled run planned more than it resolved
        planned = max(planned, results.logged_samples)
    completed = results.completed_samples if results else 0
    return RunStatus(Path(path), log.eval.task, log.status, completed, planned)


def run_status(path: str | Path) -> RunStatus:
    return status_of(read_log(path), path)


def incomplete_runs(paths: Iterable[str | Path]) -> list[RunStatus]:
    """The runs that ``results_table`` leaves out by default, with their status."""
    return [status for f in log_files(paths) if not (status := run_status(f)).ok]


def log_row(path: str | Path, include_incomplete: bool = False) -> dict | None:
    """The results row for one Inspect log, or None when the run has no scores or (by default) did not finish."""
    log = read_log(path)
    if not include_incomplete and not status_of(log, path).ok:
        return None
    if log.results is None or not log.results.scores:
        return None
    metrics = {name: m.value for s in log.results.scores for name, m in s.metrics.items()}
    score = next((metrics[m] for m in SCORE_METRICS if m in metrics), None)
    if score is None:
        return None
    stderr = next((metrics[m] for m in ERROR_METRICS if m in metrics), None)
    spec = log.eval
    meta = spec.metadata or {}
    args = spec.task_args or {}
    roles = spec.model_roles or {}
    epochs = max(1, spec.config.epochs or 1)
    rubric_graded = bool(meta.get("rubric_graded"))
    grader_cfg = roles.get("grader")
    if isinstance(grader_cfg, list):
        grader_cfg = grader_cfg[0] if grader_cfg else None
    grader = grader_cfg.model if grader_cfg is not None else (f"{spec.model}{SELF_GRADED}" if rubric_graded else "")
    responses = meta.get("responses", "model")
    n = int(log.results.completed_samples) // epochs  # samples, not samples x epochs
    selected = int(log.results.total_samples) // epochs  # what --limit / --sample-id left of the dataset
    return {
        "model": spec.model if responses == "model" else f"{REFERENCE_PREFIX}{responses}",
        "benchmark": meta.get("benchmark", spec.task.split("/")[-1]),
        "subset": meta.get("subset", args.get("subset", "")) or "",
        "split": meta.get("split", args.get("split", "")) or "",
        "score": float(score),
        "stderr": float(stderr) if stderr is not None else float("nan"),
        "n": n,
        "epochs": epochs,
        "data": _data_label(meta),
        "limited": selected < (spec.dataset.samples or 0),
        "grader": grader,
        "grader_profile": meta.get("grader_profile", "") if rubric_graded else "",
        "harness": "inspect",
        "date": spec.created[:10],
        "log": str(Path(path).resolve()),
        "doctor_tokens": float(metrics["doctor_tokens"]) if "doctor_tokens" in metrics else float("nan"),
    }


def results_table(paths: Iterable[str | Path], include_incomplete: bool = False) -> pd.DataFrame:
    """Results table from Inspect log files or folders of them (finished runs only, unless ``include_incomplete``)."""
    rows = [row for f in log_files(paths) if (row := log_row(f, include_incomplete)) is not None]
    return normalize(pd.DataFrame(rows, columns=RESULT_COLUMNS + OPTIONAL_COLUMNS))
