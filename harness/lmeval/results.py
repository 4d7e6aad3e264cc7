"""Import lm-eval results JSON files into the results table (harness.results.RESULT_COLUMNS).

    python -m harness.lmeval.results OUTPUT_PATH... [--csv reports/results.csv] [--model NAME]

OUTPUT_PATH is a ``results_*.json`` written by ``lm_eval --output_path`` or a folder holding them.
One row per task; the ``log`` column is ``<file>#<task>`` so tasks from one file stay apart.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from harness.data import custom_data_label
from harness.errors import DataError, run_cli
from harness.evalsets import MEDQA
from harness.results import RESULT_COLUMNS, append_results, normalize

# lm-eval task -> (benchmark, subset, split); the subset matches the Inspect task's metadata
TASKS: dict[str, tuple[str, str, str]] = {
    "m2_medqa": ("medqa", "usmle_4opt_loglik", "test"),
    "m2_medqa_dev": ("medqa", "usmle_4opt_loglik", "dev"),
    "m2_medqa_gen": ("medqa", "usmle_4opt", "test"),
    "m2_medqa_cot_gen": ("medqa", "usmle_4opt", "test"),
    "medqa_4options": ("medqa", "usmle_4opt_loglik", "test"),  # lm-eval's own task (HF copy of the data)
}
SCORE_METRICS = ("acc", "exact_match", "acc_norm")
# lm-eval backends named as Inspect names the same model
MODEL_ALIASES = {"m2bench-default": "m2bench/default", "EmbeddedLM": "m2bench/default"}


def result_files(paths) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(path.rglob("results_*.json")))
        elif path.exists():
            files.append(path)
        else:
            raise DataError(path, "file or folder not found")
    return files


def _metric(results: dict, name: str) -> tuple[float, float] | None:
    """(value, stderr) of ``name`` under the first filter that has it ("acc,none", "acc,strict", ...)."""
    for key, value in results.items():
        if key.split(",")[0] == name and isinstance(value, (int, float)):
            stderr = results.get(key.replace(f"{name},", f"{name}_stderr,", 1))
            return float(value), float(stderr) if isinstance(stderr, (int, float)) else math.nan
    return None


def _model_name(data: dict) -> str:
    config = data.get("config") or {}
    args = config.get("model_args") or {}
    if isinstance(args, str):
        args = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    backend = str(config.get("model") or "lm-eval")
    if backend in MODEL_ALIASES:
        return MODEL_ALIASES[backend]
    name = args.get("pretrained") or args.get("model") or data.get("model_name") or ""
    return f"{backend}/{name}" if name else backend


def _date(data: dict) -> str:
    value = data.get("date")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC).date().isoformat()
    return str(value or "")[:10]


def _data_label(task: str, split: str, metadata: dict) -> str:
    """Our tasks read the official MedQA files unless --metadata gave a data_file or shuffled the choices."""
    if task not in TASKS or not task.startswith("m2_"):
        return f"lm-eval:{task}"  # a task of lm-eval's own, with its own copy of the data
    data_file, seed = metadata.get("data_file"), metadata.get("shuffle_choices")
    label = custom_data_label(data_file) if data_file else MEDQA[split].name
    return label + (f" (choices shuffled, seed {seed})" if seed not in (None, "") else "")


def lmeval_rows(path: str | Path, model: str | None = None) -> list[dict]:
    """Results rows (one per task) from one lm-eval results JSON."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise DataError(path, "not an lm-eval results file", field="results")
    counts = data.get("n-samples") or {}
    rows = []
    for task, results in data["results"].items():
        found = next((m for name in SCORE_METRICS if (m := _metric(results, name))), None)
        if found is None:
            continue  # a group row or a task without an accuracy-like metric
        benchmark, subset, split = TASKS.get(task, (task, "", ""))
        count = counts.get(task) or {}
        n = count.get("effective", results.get("sample_len"))
        original = count.get("original")
        rows.append(
            {
                "model": model or _model_name(data),
                "benchmark": benchmark,
                "subset": subset,
                "split": split,
                "score": found[0],
                "stderr": found[1],
                "n": int(n) if n is not None else None,
                "epochs": 1,
                "data": _data_label(task, split, ((data.get("configs") or {}).get(task) or {}).get("metadata") or {}),
                "limited": None if n is None or original is None else int(n) < int(original),
                "grader": "",
                "grader_profile": "",
                "harness": "lm-eval",
                "date": _date(data),
                "log": f"{path.resolve()}#{task}",
            }
        )
    return rows


def lmeval_table(paths, model: str | None = None) -> pd.DataFrame:
    rows = [row for f in result_files(paths) for row in lmeval_rows(f, model)]
    return normalize(pd.DataFrame(rows, columns=RESULT_COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.lmeval.results", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="lm-eval results JSON files or --output_path folders")
    parser.add_argument("--csv", help="merge the rows into this results CSV")
    parser.add_argument("--model", help="model name to record (default: from the results file)")
    args = parser.parse_args(argv)
    if not result_files(args.paths):
        raise DataError(", ".join(args.paths), "no lm-eval results file (results_*.json) found")
    table = lmeval_table(args.paths, args.model)
    if table.empty:
        raise DataError(
            ", ".join(args.paths), "no task with an accuracy-like metric (acc, exact_match, acc_norm) in these results"
        )
    if args.csv:
        append_results(table, args.csv)
    print(table.drop(columns=["log"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    run_cli(main)
