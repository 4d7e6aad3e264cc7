"""The report command line: own runs into the results table, Pareto charts and tables, the index.

    python -m harness.tools.report pareto --benchmark healthbench_hard [--params total|active] [--logs DIR ...] [--out reports/]
    python -m harness.tools.report add-runs --logs DIR ... [--lmeval OUT ...]   # append to runs/own_runs.csv (git-ignored)
    python -m harness.tools.report index [--out reports/]      # reports/README.md linking every chart and table

Logs are turned into results rows by the adapters (``harness.evals.logs`` for Inspect,
``harness.lmeval.results`` for lm-eval); the charts themselves (``harness.reporting``) read only tables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from harness.errors import ArgumentError, DataError, run_cli
from harness.evals.logs import incomplete_runs, results_table
from harness.lmeval.results import lmeval_table
from harness.reporting.leaderboard import LEADERBOARD_DIR, load_published
from harness.reporting.pareto import PARAM_KINDS
from harness.reporting.report import REPORTS_DIR, build, write_index, write_pareto
from harness.results import RESULT_COLUMNS, append_results, check_scores, normalize


def run_results(logs: Iterable[str | Path], lmeval: Iterable[str | Path] = ()) -> pd.DataFrame:
    """Results table of Inspect logs and lm-eval results (files or folders)."""
    frames = [f for f in (results_table(list(logs)), lmeval_table(list(lmeval))) if len(f)]
    return normalize(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame(columns=RESULT_COLUMNS)


# where add-runs appends by default: a git-ignored file under the working directory, so trying the
# command never edits the project's leaderboard (pass --own-runs leaderboards/own_runs.csv for that)
LOCAL_OWN_RUNS = Path("runs") / "own_runs.csv"


def add_own_runs(logs: Iterable[str | Path], path: str | Path | None = None, lmeval: Iterable[str | Path] = ()) -> pd.DataFrame:
    """Append Inspect logs and lm-eval results (files or folders) to own_runs.csv, deduplicated.

    Only finished Inspect runs are added (the others are listed on stderr with their status), and
    every row's figures are checked before the file is touched.
    """
    path = Path(path) if path else LOCAL_OWN_RUNS
    logs = list(logs)
    for run in incomplete_runs(logs):
        print(f"skipped: {run.line()}", file=sys.stderr)
    table = run_results(logs, lmeval)
    check_scores(table)
    return append_results(table, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.tools.report", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pareto", help="chart + table of score vs parameters for one or more benchmarks")
    p.add_argument("--benchmark", nargs="+", required=True, help="e.g. healthbench_hard (or 'all')")
    p.add_argument("--params", default="total", choices=PARAM_KINDS, help="total or active (MoE) parameters")
    p.add_argument("--logs", nargs="*", default=[], help="Inspect log files or folders (own runs, this chart only)")
    p.add_argument("--lmeval", nargs="*", default=[], help="lm-eval results JSON files or --output_path folders")
    p.add_argument("--own-runs", default=None, help="own results CSV (default leaderboards/own_runs.csv)")
    p.add_argument("--leaderboards", default=None, help="folder with published.csv and models.csv")
    p.add_argument("--out", default=str(REPORTS_DIR))
    a = sub.add_parser("add-runs", help="append Inspect logs to the own-runs CSV")
    a.add_argument("--logs", nargs="*", default=[], help="Inspect log files or folders")
    a.add_argument("--lmeval", nargs="*", default=[], help="lm-eval results JSON files or folders")
    a.add_argument("--own-runs", default=None, help=f"own results CSV (default {LOCAL_OWN_RUNS}, git-ignored)")
    i = sub.add_parser("index", help="write <out>/README.md linking every report")
    i.add_argument("--out", default=str(REPORTS_DIR))
    args = parser.parse_args(argv)

    try:
        if args.command == "add-runs":
            if not args.logs and not args.lmeval:
                parser.error("add-runs needs --logs and/or --lmeval")
            table = add_own_runs(args.logs, args.own_runs, args.lmeval)
            print(f"{args.own_runs or LOCAL_OWN_RUNS}: {len(table)} rows")
            return 0
        if args.command == "index":
            print(write_index(args.out))
            return 0
        benchmarks = args.benchmark
        if benchmarks == ["all"]:
            directory = Path(args.leaderboards) if args.leaderboards else LEADERBOARD_DIR
            benchmarks = sorted(set(load_published(directory / "published.csv")["benchmark"]))
        runs = run_results(args.logs, args.lmeval)
        for benchmark in benchmarks:
            report = build(benchmark, args.params, runs, args.own_runs, args.leaderboards)
            command = (
                f"python -m harness.tools.report pareto --benchmark {benchmark} --params {args.params}"
                + (" --logs " + " ".join(args.logs) if args.logs else "")
                + (" --lmeval " + " ".join(args.lmeval) if args.lmeval else "")
            )
            png, md = write_pareto(report, args.out, command)
            for message in report.messages:
                print(f"note: {message}", file=sys.stderr)
            print(f"{png}\n{md}\n  {len(report.points)} plotted, {len(report.unknown)} unknown")
            for group, labels in report.frontiers().items():
                print(f"  frontier of {group}: {', '.join(labels)}")
        print(write_index(args.out))
    except (DataError, ArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_cli(main)
